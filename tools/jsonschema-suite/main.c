/* jsonschema-suite: runs the official JSON Schema Test Suite (draft 2020-12) against pw_schema. */
#include "pw/schema.h"
#include "pw/version.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REMOTE_BASE "http://localhost:1234/"

typedef struct counts {
    unsigned long passed, failed, skipped;
} counts;

static int verbose;

static json_t *load_json(const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j) /* the bignum tests hold integers beyond 64 bits */
        j = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    if (!j) snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
    return j;
}

static void run_file(pw_schema_registry *reg, const char *path, const char *label, int fmt,
                     counts *cnt)
{
    char err[1024];
    json_t *groups = load_json(path, err, sizeof err);
    if (!groups) {
        printf("FAIL %s: cannot load: %s\n", label, err);
        cnt->failed++;
        return;
    }
    pw_schema_options opts = {0};
    opts.format_assertion = fmt;
    size_t gi;
    json_t *g;
    json_array_foreach(groups, gi, g)
    {
        const char *gdesc = json_string_value(json_object_get(g, "description"));
        json_t *tests = json_object_get(g, "tests");
        pw_schema *s =
            pw_schema_compile_json(reg, json_object_get(g, "schema"), &opts, err, sizeof err);
        size_t ti;
        json_t *t;
        json_array_foreach(tests, ti, t)
        {
            const char *tdesc = json_string_value(json_object_get(t, "description"));
            int want = json_is_true(json_object_get(t, "valid"));
            if (!s) {
                printf("FAIL %s: %s: %s: schema did not compile: %s\n", label, gdesc, tdesc, err);
                cnt->failed++;
                continue;
            }
            pw_schema_result r;
            pw_schema_status st = pw_schema_validate(s, json_object_get(t, "data"), &r);
            int got = st == PW_SCHEMA_VALID;
            if (got == want) {
                cnt->passed++;
            } else {
                cnt->failed++;
                printf("FAIL %s: %s: %s: expected %s, got %s\n", label, gdesc, tdesc,
                       want ? "valid" : "invalid", got ? "valid" : "invalid");
                for (size_t i = 0; i < r.count; i++)
                    printf("    %s: %s (%s)\n", r.errors[i].instance_location, r.errors[i].message,
                           r.errors[i].keyword_location);
            }
            if (verbose && got == want && !got && r.count)
                printf("ok %s: %s: %s: %s: %s\n", label, gdesc, tdesc,
                       r.errors[0].instance_location, r.errors[0].message);
            pw_schema_result_clear(&r);
        }
        pw_schema_free(s);
    }
    json_decref(groups);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every *.json in dir (sorted).  For optional/format with format assertion, a
 * file is attempted only when its format is implemented; otherwise counted skipped. */
static void run_dir(pw_schema_registry *reg, const char *dir, const char *label, int fmt,
                    int format_dir, counts *cnt)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char *names[512];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 512) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".json")) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_str);
    for (size_t i = 0; i < n; i++) {
        char path[4096], lab[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(lab, sizeof lab, "%s%s", label, names[i]);
        if (format_dir) {
            char fname[256];
            snprintf(fname, sizeof fname, "%.*s", (int)(strlen(names[i]) - 5), names[i]);
            if (!strcmp(fname, "ecmascript-regex")) /* ECMA-262 specifics of format "regex" */
                snprintf(fname, sizeof fname, "regex");
            /* "unknown": formats nobody knows must be ignored, which is checkable */
            if (!fmt || (!pw_schema_format_supported(fname) && strcmp(fname, "unknown"))) {
                char err[256];
                json_t *groups = load_json(path, err, sizeof err);
                size_t gi;
                json_t *g;
                json_array_foreach(groups, gi, g) cnt->skipped +=
                    json_array_size(json_object_get(g, "tests"));
                json_decref(groups);
                printf("skipped %s (format \"%s\" is %s)\n", lab, fname,
                       fmt ? "not implemented" : "an annotation without --format-assertion");
                free(names[i]);
                continue;
            }
        }
        run_file(reg, path, lab, fmt, cnt);
        free(names[i]);
    }
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: jsonschema-suite [--format-assertion] [--optional] [--only PATH]\n"
            "                        [--meta DIR] [-v] SUITE_DIR\n"
            "  runs SUITE_DIR/tests/draft2020-12/*.json (with --optional also optional/ and\n"
            "  optional/format/; --only runs one file or directory relative to draft2020-12/;\n"
            "  --format-assertion applies to optional/format/ and to --only)\n"
            "usage: jsonschema-suite --help | --version\n");
}

int main(int argc, char **argv)
{
    int fmt = 0, optional = 0;
    const char *meta = NULL, *only = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            pw_version_print(stdout, "jsonschema-suite");
            return 0;
        } else if (!strcmp(argv[i], "--format-assertion"))
            fmt = 1;
        else if (!strcmp(argv[i], "--optional"))
            optional = 1;
        else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!strcmp(argv[i], "--meta") && i + 1 < argc)
            meta = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (argv[i][0] == '-' || dir) {
            usage(stderr);
            return 2;
        } else
            dir = argv[i];
    }
    if (!dir) {
        usage(stderr);
        return 2;
    }
    char path[4096], metabuf[4096];
    if (!meta) {
        snprintf(metabuf, sizeof metabuf, "%s/../json-schema-meta", dir);
        meta = metabuf;
    }
    char err[1024];
    pw_schema_registry *reg = pw_schema_registry_new();
    snprintf(path, sizeof path, "%s/remotes", dir);
    if (!reg || pw_schema_registry_add_dir(reg, path, REMOTE_BASE, err, sizeof err) < 0) {
        fprintf(stderr, "jsonschema-suite: %s\n", reg ? err : "out of memory");
        pw_schema_registry_free(reg);
        return 2;
    }
    struct stat st;
    snprintf(path, sizeof path, "%s/schema.json", meta);
    if (stat(path, &st) == 0) {
        if (pw_schema_registry_add_dir(reg, meta, NULL, err, sizeof err) < 0) {
            fprintf(stderr, "jsonschema-suite: %s\n", err);
            pw_schema_registry_free(reg);
            return 2;
        }
    } else {
        fprintf(stderr, "jsonschema-suite: no meta-schemas in %s (tests that $ref them fail)\n",
                meta);
    }
    counts cnt = {0};
    char tests[4096];
    snprintf(tests, sizeof tests, "%s/tests/draft2020-12", dir);
    if (only) {
        snprintf(path, sizeof path, "%s/%s", tests, only);
        if (stat(path, &st) < 0) {
            fprintf(stderr, "jsonschema-suite: %s: %s\n", path, strerror(errno));
            pw_schema_registry_free(reg);
            return 2;
        }
        if (S_ISDIR(st.st_mode)) {
            char lab[4096];
            snprintf(lab, sizeof lab, "%s/", only);
            run_dir(reg, path, lab, fmt, strstr(only, "format") != NULL, &cnt);
        } else {
            run_file(reg, path, only, fmt, &cnt);
        }
    } else {
        if (stat(tests, &st) < 0) {
            fprintf(stderr, "jsonschema-suite: %s: %s\n", tests, strerror(errno));
            pw_schema_registry_free(reg);
            return 2;
        }
        run_dir(reg, tests, "", 0, 0, &cnt); /* format.json: annotation semantics */
        if (optional) {
            snprintf(path, sizeof path, "%s/optional", tests);
            run_dir(reg, path, "optional/", 0, 0, &cnt);
            snprintf(path, sizeof path, "%s/optional/format", tests);
            run_dir(reg, path, "optional/format/", fmt, 1, &cnt);
        }
    }
    pw_schema_registry_free(reg);
    if (cnt.skipped)
        printf("%lu passed, %lu failed, %lu skipped\n", cnt.passed, cnt.failed, cnt.skipped);
    else
        printf("%lu passed, %lu failed\n", cnt.passed, cnt.failed);
    return cnt.failed ? 1 : 0;
}
