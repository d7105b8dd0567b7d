/* schema_bench: validations per second of a request against schemas/request.v1.json. */
#include "pw/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REQUEST_SCHEMA "https://adx-policy-worker.example/schemas/request.v1.json"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *file = NULL;
    long iterations = 0;
    double seconds = 2.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--schemas") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--instance") && i + 1 < argc)
            file = argv[++i];
        else if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
            iterations = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else {
            fprintf(stderr, "usage: schema-bench --schemas DIR --instance FILE "
                            "[--iterations N | --seconds S]\n");
            return 2;
        }
    }
    if (!dir || !file) {
        fprintf(stderr, "schema-bench: --schemas and --instance are required\n");
        return 2;
    }
    char err[1024];
    pw_schema_registry *reg = pw_schema_registry_new();
    if (!reg || pw_schema_registry_add_dir(reg, dir, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "schema-bench: %s\n", reg ? err : "out of memory");
        return 2;
    }
    pw_schema *s = pw_schema_compile(reg, REQUEST_SCHEMA, NULL, err, sizeof err);
    pw_schema_registry_free(reg);
    if (!s) {
        fprintf(stderr, "schema-bench: %s\n", err);
        return 2;
    }
    json_error_t je;
    json_t *inst = json_load_file(file, 0, &je);
    if (!inst) {
        fprintf(stderr, "schema-bench: %s:%d: %s\n", file, je.line, je.text);
        return 2;
    }
    pw_schema_result r;
    if (pw_schema_validate(s, inst, &r) != PW_SCHEMA_VALID) {
        fprintf(stderr, "schema-bench: the instance is not valid: %s: %s\n",
                r.count ? r.errors[0].instance_location : "", r.count ? r.errors[0].message : "");
        pw_schema_result_clear(&r);
        return 2;
    }
    long n = 0;
    double t0 = now(), t1 = t0;
    if (iterations > 0) {
        for (n = 0; n < iterations; n++)
            if (pw_schema_validate(s, inst, NULL) != PW_SCHEMA_VALID) return 3;
        t1 = now();
    } else {
        while (t1 - t0 < seconds) {
            for (int k = 0; k < 1000; k++, n++)
                if (pw_schema_validate(s, inst, NULL) != PW_SCHEMA_VALID) return 3;
            t1 = now();
        }
    }
    printf("validations %ld seconds %.3f per_second %.0f\n", n, t1 - t0,
           (double)n / (t1 - t0 > 0 ? t1 - t0 : 1e-9));
    json_decref(inst);
    pw_schema_free(s);
    return 0;
}
