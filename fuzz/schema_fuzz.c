/* schema_fuzz: libFuzzer target for pw_schema compile + validation.
 *
 * Input: a schema JSON text, optionally followed by a line "---" and an instance
 * JSON text.  Without an instance the schema is validated against a few fixed
 * values and against itself.  Both the fast (yes/no) and the error-collecting
 * paths run, with and without format assertion. */
#include "pw/schema.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(pw_schema *s, json_t *inst)
{
    pw_schema_result r;
    pw_schema_status a = pw_schema_validate(s, inst, NULL);
    pw_schema_status b = pw_schema_validate(s, inst, &r);
    /* both paths agree on valid / not valid (a bound may be hit on either) */
    if ((a == PW_SCHEMA_VALID) != (b == PW_SCHEMA_VALID) && a != PW_SCHEMA_LIMIT &&
        b != PW_SCHEMA_LIMIT)
        abort();
    if (b != PW_SCHEMA_VALID && r.count == 0) abort();
    json_t *basic = pw_schema_result_to_basic(&r);
    json_decref(basic);
    pw_schema_result_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    const char *text = (const char *)data;
    size_t split = size;
    for (size_t i = 0; i + 4 < size; i++)
        if (!memcmp(text + i, "\n---\n", 5)) {
            split = i;
            break;
        }
    json_error_t je;
    json_t *schema = json_loadb(text, split, JSON_DECODE_ANY, &je);
    if (!schema) return 0;
    json_t *inst = split < size ? json_loadb(text + split + 5, size - split - 5,
                                             JSON_DECODE_ANY | JSON_ALLOW_NUL, &je)
                                : NULL;
    char err[256];
    for (int fmt = 0; fmt < 2; fmt++) {
        pw_schema_options o = {0};
        o.format_assertion = fmt;
        o.max_errors = 16;
        pw_schema_registry *reg = pw_schema_registry_new();
        pw_schema_registry_add(reg, "https://fuzz.example/root.json", schema, err, sizeof err);
        pw_schema *s = (size & 1) ? pw_schema_compile(reg, "https://fuzz.example/root.json", &o,
                                                      err, sizeof err)
                                  : pw_schema_compile_json(reg, schema, &o, err, sizeof err);
        pw_schema_registry_free(reg);
        if (!s) break;
        if (inst) {
            run(s, inst);
        } else {
            static const char *const fixed[] = {"null", "true",
                                                "0",    "-1.5",
                                                "\"\"", "\"P1D\"",
                                                "[]",   "[1,\"a\",[null]]",
                                                "{}",   "{\"a\":1,\"b\":[{}]}"};
            for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
                json_t *v = json_loads(fixed[i], JSON_DECODE_ANY, NULL);
                run(s, v);
                json_decref(v);
            }
            run(s, schema);
        }
        pw_schema_free(s);
    }
    json_decref(inst);
    json_decref(schema);
    return 0;
}
