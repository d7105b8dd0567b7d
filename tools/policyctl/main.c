/* policyctl: offline tools for platform teams; `validate` checks request files against schemas/. */
#include "pw/paths.h"
#include "pw/schema.h"
#include "pw/version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUEST_SCHEMA "https://adx-policy-worker.example/schemas/request.v1.json"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: policyctl validate [--schemas DIR] [--meta DIR] [--format-assertion] [--json]\n"
            "                          FILE...\n"
            "  Checks each request FILE against DIR/request.v1.json (every *.json under DIR\n"
            "  is registered by its $id; default DIR: PREFIX/share/policy-worker/schemas for\n"
            "  PREFIX/bin/policyctl, the source tree's schemas/ in a build tree).\n"
            "  --meta DIR          also register the 2020-12 meta-schemas found in DIR\n"
            "                      (needed only by schemas that $ref them)\n"
            "  --format-assertion  treat \"format\" as an assertion (the worker does not)\n"
            "  --json              print each file's result in the JSON Schema \"basic\" shape\n"
            "  exit: 0 all valid, 1 some invalid, 2 usage or I/O error\n"
            "usage: policyctl --help | --version\n");
}

static int cmd_validate(int argc, char **argv)
{
    const char *dir = pw_paths_schemas_dir(), *meta = NULL;
    int json_out = 0, first = 0;
    pw_schema_options opts = {0};
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--schemas") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--meta") && i + 1 < argc) {
            meta = argv[++i];
        } else if (!strcmp(argv[i], "--format-assertion")) {
            opts.format_assertion = 1;
        } else if (!strcmp(argv[i], "--json")) {
            json_out = 1;
        } else if (!strcmp(argv[i], "--")) {
            first = i + 1;
            break;
        } else if (argv[i][0] == '-') {
            usage(stderr);
            return 2;
        } else {
            first = i;
            break;
        }
        first = i + 1;
    }
    if (first >= argc) {
        usage(stderr);
        return 2;
    }
    char err[1024];
    pw_schema_registry *reg = pw_schema_registry_new();
    if (!reg) {
        fprintf(stderr, "policyctl: out of memory\n");
        return 2;
    }
    if (meta && pw_schema_registry_add_dir(reg, meta, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "policyctl: loading meta-schemas from %s: %s\n", meta, err);
        pw_schema_registry_free(reg);
        return 2;
    }
    if (pw_schema_registry_add_dir(reg, dir, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "policyctl: loading schemas from %s: %s\n", dir, err);
        pw_schema_registry_free(reg);
        return 2;
    }
    opts.max_errors = 100;
    pw_schema *schema = pw_schema_compile(reg, REQUEST_SCHEMA, &opts, err, sizeof err);
    pw_schema_registry_free(reg);
    if (!schema) {
        fprintf(stderr, "policyctl: compiling %s from %s: %s\n", REQUEST_SCHEMA, dir, err);
        return 2;
    }
    int rc = 0;
    for (int i = first; i < argc; i++) {
        json_error_t je;
        json_t *doc = json_load_file(argv[i], JSON_DECODE_ANY, &je);
        if (!doc) {
            fprintf(stderr, "policyctl: %s:%d:%d: %s\n", argv[i], je.line, je.column, je.text);
            rc = 2;
            continue;
        }
        pw_schema_result res;
        pw_schema_status st = pw_schema_validate(schema, doc, &res);
        if (json_out) {
            json_t *basic = pw_schema_result_to_basic(&res);
            json_object_set_new(basic, "file", json_string(argv[i]));
            char *s = json_dumps(basic, JSON_COMPACT);
            printf("%s\n", s ? s : "{}");
            free(s);
            json_decref(basic);
        } else if (st == PW_SCHEMA_VALID) {
            printf("%s: valid\n", argv[i]);
        } else {
            for (size_t e = 0; e < res.count; e++) {
                const pw_schema_error *er = &res.errors[e];
                printf("%s: %s: %s  [%s]\n", argv[i],
                       er->instance_location[0] ? er->instance_location : "(root)", er->message,
                       er->keyword_location);
            }
            if (res.truncated) printf("%s: (more errors not shown)\n", argv[i]);
        }
        if (st != PW_SCHEMA_VALID && rc == 0) rc = 1;
        pw_schema_result_clear(&res);
        json_decref(doc);
    }
    pw_schema_free(schema);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "validate")) return cmd_validate(argc - 2, argv + 2);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        pw_version_print(stdout, "policyctl");
        return 0;
    }
    usage(stderr);
    return 2;
}
