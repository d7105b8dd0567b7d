/* test_schema.c: pw_schema API behaviour, error locations and messages, and bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pw/schema.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j) fail_msg("bad test JSON: %s: %s", text, je.text);
    return j;
}

static pw_schema *compile_text(const char *text, const pw_schema_options *opts, char *err,
                               size_t errlen)
{
    json_t *doc = J(text);
    pw_schema *s = pw_schema_compile_json(NULL, doc, opts, err, errlen);
    json_decref(doc);
    return s;
}

static pw_schema_status check(pw_schema *s, const char *inst, pw_schema_result *r)
{
    json_t *i = J(inst);
    pw_schema_status st = pw_schema_validate(s, i, r);
    json_decref(i);
    return st;
}

static void test_basic_valid_invalid(void **state)
{
    (void)state;
    char err[256];
    pw_schema *s = compile_text("{\"type\":\"object\",\"required\":[\"a\"],"
                                "\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":1}}}",
                                NULL, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(check(s, "{\"a\":1}", NULL), PW_SCHEMA_VALID);
    assert_int_equal(check(s, "{\"a\":1.0}", NULL), PW_SCHEMA_VALID); /* 1.0 is an integer */
    assert_int_equal(check(s, "{\"a\":0}", NULL), PW_SCHEMA_INVALID);
    pw_schema_result r;
    assert_int_equal(check(s, "{}", &r), PW_SCHEMA_INVALID);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.errors[0].instance_location, "");
    assert_string_equal(r.errors[0].keyword_location, "/required");
    assert_string_equal(r.errors[0].message, "required property \"a\" is missing");
    pw_schema_result_clear(&r);
    assert_int_equal(r.count, 0);
    pw_schema_free(s);
    pw_schema_free(NULL);
    pw_schema_registry_free(NULL);
    pw_schema_result_clear(NULL);
}

static void test_duration_message(void **state)
{
    (void)state;
    char err[256];
    const char *schema =
        "{\"properties\":{\"operations\":{\"items\":{\"properties\":{\"softDeletePeriod\":"
        "{\"type\":\"string\",\"format\":\"duration\"}}}}}}";
    const char *inst = "{\"operations\":[{\"softDeletePeriod\":\"P10X\"}]}";
    pw_schema *s = compile_text(schema, NULL, err, sizeof err);
    assert_non_null(s);
    /* format is an annotation by default */
    assert_int_equal(check(s, inst, NULL), PW_SCHEMA_VALID);
    pw_schema_free(s);

    pw_schema_options o = {0};
    o.format_assertion = 1;
    s = compile_text(schema, &o, err, sizeof err);
    assert_non_null(s);
    pw_schema_result r;
    assert_int_equal(check(s, inst, &r), PW_SCHEMA_INVALID);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.errors[0].instance_location, "/operations/0/softDeletePeriod");
    assert_string_equal(r.errors[0].keyword_location,
                        "/properties/operations/items/properties/softDeletePeriod/format");
    assert_string_equal(r.errors[0].message, "\"P10X\" is not an ISO-8601 duration");
    assert_string_equal(r.errors[0].absolute_keyword_location,
                        "urn:pw-schema:anonymous#/properties/operations/items/properties/"
                        "softDeletePeriod/format");
    json_t *basic = pw_schema_result_to_basic(&r);
    assert_true(json_is_false(json_object_get(basic, "valid")));
    json_t *e0 = json_array_get(json_object_get(basic, "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e0, "instanceLocation")),
                        "/operations/0/softDeletePeriod");
    assert_string_equal(json_string_value(json_object_get(e0, "error")),
                        "\"P10X\" is not an ISO-8601 duration");
    assert_non_null(json_object_get(e0, "keywordLocation"));
    assert_non_null(json_object_get(e0, "absoluteKeywordLocation"));
    json_decref(basic);
    pw_schema_result_clear(&r);
    assert_int_equal(check(s, "{\"operations\":[{\"softDeletePeriod\":\"P1DT12H\"}]}", NULL),
                     PW_SCHEMA_VALID);
    pw_schema_free(s);
    basic = pw_schema_result_to_basic(NULL);
    assert_true(json_is_true(json_object_get(basic, "valid")));
    json_decref(basic);
}

static void test_registry_refs(void **state)
{
    (void)state;
    char err[256];
    pw_schema_registry *reg = pw_schema_registry_new();
    json_t *common = J("{\"$id\":\"https://x.example/common.json\",\"$defs\":{"
                       "\"name\":{\"type\":\"string\",\"maxLength\":3},"
                       "\"anch\":{\"$anchor\":\"small\",\"maximum\":5}}}");
    json_t *root = J("{\"properties\":{\"n\":{\"$ref\":\"common.json#/$defs/name\"},"
                     "\"m\":{\"$ref\":\"common.json#small\"}}}");
    assert_int_equal(pw_schema_registry_add(reg, NULL, common, err, sizeof err), 0);
    assert_int_equal(
        pw_schema_registry_add(reg, "https://x.example/root.json", root, err, sizeof err), 0);
    json_decref(common);
    json_decref(root);
    json_t *noid = J("{}");
    assert_int_equal(pw_schema_registry_add(reg, NULL, noid, err, sizeof err), -1);
    json_decref(noid);

    pw_schema *s = pw_schema_compile(reg, "https://x.example/root.json", NULL, err, sizeof err);
    assert_non_null(s);
    pw_schema *name =
        pw_schema_compile(reg, "https://x.example/common.json#/$defs/name", NULL, err, sizeof err);
    assert_non_null(name);
    pw_schema_registry_free(reg); /* compiled schemas outlive the registry */
    assert_int_equal(check(s, "{\"n\":\"abc\",\"m\":5}", NULL), PW_SCHEMA_VALID);
    pw_schema_result r;
    assert_int_equal(check(s, "{\"n\":\"abcd\",\"m\":6}", &r), PW_SCHEMA_INVALID);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.errors[0].instance_location, "/n");
    assert_string_equal(r.errors[0].keyword_location, "/properties/n/$ref/maxLength");
    assert_string_equal(r.errors[0].absolute_keyword_location,
                        "https://x.example/common.json#/$defs/name/maxLength");
    assert_string_equal(r.errors[1].instance_location, "/m");
    pw_schema_result_clear(&r);
    assert_int_equal(check(name, "\"toolong\"", NULL), PW_SCHEMA_INVALID);
    pw_schema_free(name);
    pw_schema_free(s);
}

static void test_compile_errors(void **state)
{
    (void)state;
    char err[256];
    assert_null(
        compile_text("{\"$ref\":\"https://nowhere.example/x.json\"}", NULL, err, sizeof err));
    assert_non_null(strstr(err, "cannot resolve $ref"));
    assert_null(compile_text("{\"$ref\":\"#/$defs/missing\"}", NULL, err, sizeof err));
    assert_null(compile_text("{\"pattern\":\"(unclosed\"}", NULL, err, sizeof err));
    assert_non_null(strstr(err, "invalid regular expression"));
    assert_null(compile_text("{\"minLength\":-1}", NULL, err, sizeof err));
    assert_null(compile_text("{\"type\":\"strnig\"}", NULL, err, sizeof err));
    assert_null(compile_text("[1]", NULL, err, sizeof err));
    /* declaring the 2020-12 dialect needs no meta-schema documents */
    pw_schema *s = compile_text(
        "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"string\"}", NULL,
        err, sizeof err);
    assert_non_null(s);
    pw_schema_free(s);
}

static void test_ref_cycle(void **state)
{
    (void)state;
    char err[256];
    assert_null(compile_text("{\"$ref\":\"#\"}", NULL, err, sizeof err));
    assert_non_null(strstr(err, "cycle"));
    assert_null(compile_text("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},"
                             "\"b\":{\"allOf\":[{\"$ref\":\"#/$defs/a\"}]}},"
                             "\"$ref\":\"#/$defs/a\"}",
                             NULL, err, sizeof err));
    assert_non_null(strstr(err, "cycle"));
    /* recursion through a property consumes input: fine */
    pw_schema *s =
        compile_text("{\"properties\":{\"next\":{\"$ref\":\"#\"}}}", NULL, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(check(s, "{\"next\":{\"next\":{}}}", NULL), PW_SCHEMA_VALID);
    pw_schema_free(s);
}

static char *nested(const char *open, const char *mid, const char *close, int depth)
{
    size_t ol = strlen(open), cl = strlen(close), ml = strlen(mid);
    char *out = malloc((ol + cl) * (size_t)depth + ml + 1), *o = out;
    for (int i = 0; i < depth; i++)
        memcpy(o, open, ol), o += ol;
    memcpy(o, mid, ml), o += ml;
    for (int i = 0; i < depth; i++)
        memcpy(o, close, cl), o += cl;
    *o = 0;
    return out;
}

static void test_depth_bounds(void **state)
{
    (void)state;
    char err[256];
    pw_schema *s = compile_text("{\"items\":{\"$ref\":\"#\"}}", NULL, err, sizeof err);
    assert_non_null(s);
    char *deep = nested("[", "1", "]", 500);
    pw_schema_result r;
    assert_int_equal(check(s, deep, &r), PW_SCHEMA_LIMIT);
    assert_true(r.count >= 1);
    assert_non_null(strstr(r.errors[r.count - 1].message, "deeper than"));
    pw_schema_result_clear(&r);
    free(deep);
    char *ok = nested("[", "1", "]", 100);
    assert_int_equal(check(s, ok, NULL), PW_SCHEMA_VALID);
    free(ok);
    pw_schema_free(s);

    pw_schema_options o = {0};
    o.max_schema_depth = 20;
    char *deep_schema = nested("{\"not\":", "{}", "}", 30);
    assert_null(compile_text(deep_schema, &o, err, sizeof err));
    assert_non_null(strstr(err, "deeper than"));
    free(deep_schema);
}

static void test_catastrophic_regex(void **state)
{
    (void)state;
    char err[256];
    pw_schema *s = compile_text("{\"pattern\":\"^(a|aa)+$\"}", NULL, err, sizeof err);
    assert_non_null(s);
    char inst[200];
    inst[0] = '"';
    memset(inst + 1, 'a', 150);
    strcpy(inst + 151, "b\"");
    pw_schema_result r;
    pw_schema_status st = check(s, inst, &r);
    assert_int_equal(st, PW_SCHEMA_LIMIT);
    assert_non_null(strstr(r.errors[0].message, "match limit"));
    pw_schema_result_clear(&r);
    pw_schema_free(s);
}

static void test_exponential_schema(void **state)
{
    (void)state;
    /* d14 = allOf of four d13, ... d0 = {}: 4^14 evaluations without a step bound */
    char text[4096], err[256];
    size_t o =
        (size_t)snprintf(text, sizeof text, "{\"$ref\":\"#/$defs/d14\",\"$defs\":{\"d0\":{}");
    for (int k = 1; k <= 14; k++) {
        o += (size_t)snprintf(text + o, sizeof text - o, ",\"d%d\":{\"allOf\":[", k);
        for (int j = 0; j < 4; j++)
            o += (size_t)snprintf(text + o, sizeof text - o, "%s{\"$ref\":\"#/$defs/d%d\"}",
                                  j ? "," : "", k - 1);
        o += (size_t)snprintf(text + o, sizeof text - o, "]}");
    }
    snprintf(text + o, sizeof text - o, "}}");
    pw_schema *s = compile_text(text, NULL, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(check(s, "1", NULL), PW_SCHEMA_LIMIT);
    pw_schema_free(s);
}

static void test_values(void **state)
{
    (void)state;
    char err[256];
    pw_schema *s = compile_text("{\"const\":{\"a\":[1,2.0]}}", NULL, err, sizeof err);
    assert_int_equal(check(s, "{\"a\":[1.0,2]}", NULL), PW_SCHEMA_VALID);
    assert_int_equal(check(s, "{\"a\":[1,3]}", NULL), PW_SCHEMA_INVALID);
    pw_schema_free(s);
    s = compile_text("{\"multipleOf\":0.01}", NULL, err, sizeof err);
    assert_int_equal(check(s, "19.99", NULL), PW_SCHEMA_VALID);
    assert_int_equal(check(s, "19.999", NULL), PW_SCHEMA_INVALID);
    pw_schema_free(s);
    s = compile_text("{\"maxLength\":2}", NULL, err, sizeof err);
    assert_int_equal(check(s, "\"\\u00e9\\u00e9\"", NULL), PW_SCHEMA_VALID); /* 4 bytes, 2 chars */
    assert_int_equal(check(s, "\"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\"", NULL),
                     PW_SCHEMA_INVALID);
    pw_schema_free(s);
    s = compile_text("{\"maximum\":9007199254740993}", NULL, err, sizeof err);
    assert_int_equal(check(s, "9007199254740993", NULL), PW_SCHEMA_VALID);
    assert_int_equal(check(s, "9007199254740994", NULL), PW_SCHEMA_INVALID);
    assert_int_equal(check(s, "1e308", NULL), PW_SCHEMA_INVALID);
    pw_schema_free(s);
}

static void test_unevaluated_and_oneof_messages(void **state)
{
    (void)state;
    char err[256];
    pw_schema *s = compile_text(
        "{\"oneOf\":[{\"properties\":{\"kind\":{\"const\":\"a\"},\"x\":{\"type\":\"string\"}},"
        "\"required\":[\"kind\"]},"
        "{\"properties\":{\"kind\":{\"const\":\"b\"},\"y\":{\"type\":\"string\"}},"
        "\"required\":[\"kind\"]}],\"unevaluatedProperties\":false}",
        NULL, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(check(s, "{\"kind\":\"a\",\"x\":\"s\"}", NULL), PW_SCHEMA_VALID);
    pw_schema_result r;
    assert_int_equal(check(s, "{\"kind\":\"a\",\"x\":1}", &r), PW_SCHEMA_INVALID);
    /* the oneOf error, then only the branch whose discriminator matched */
    assert_int_equal(r.count >= 2, 1);
    assert_string_equal(r.errors[0].keyword_location, "/oneOf");
    assert_string_equal(r.errors[1].instance_location, "/x");
    assert_string_equal(r.errors[1].keyword_location, "/oneOf/0/properties/x/type");
    for (size_t i = 1; i < r.count; i++)
        assert_null(strstr(r.errors[i].keyword_location, "/oneOf/1/"));
    pw_schema_result_clear(&r);
    assert_int_equal(check(s, "{\"kind\":\"a\",\"z\":1}", &r), PW_SCHEMA_INVALID);
    assert_string_equal(r.errors[0].message, "property \"z\" is not allowed");
    pw_schema_result_clear(&r);
    pw_schema_free(s);
}

static void test_max_errors(void **state)
{
    (void)state;
    char err[256];
    pw_schema_options o = {0};
    o.max_errors = 3;
    pw_schema *s = compile_text("{\"items\":{\"type\":\"string\"}}", &o, err, sizeof err);
    pw_schema_result r;
    assert_int_equal(check(s, "[1,2,3,4,5]", &r), PW_SCHEMA_INVALID);
    assert_int_equal(r.count, 3);
    assert_true(r.truncated);
    assert_string_equal(r.errors[2].instance_location, "/2");
    pw_schema_result_clear(&r);
    pw_schema_free(s);
    assert_true(pw_schema_format_supported("duration"));
    assert_false(pw_schema_format_supported("idn-email"));
}

typedef struct thread_arg {
    pw_schema *s;
    int bad;
} thread_arg;

static void *validate_many(void *p)
{
    thread_arg *a = p;
    json_t *good = json_loads("{\"id\":\"x\",\"n\":[\"ab\",\"cd\"]}", 0, NULL);
    json_t *bad = json_loads("{\"id\":\"x y\",\"n\":[1]}", 0, NULL);
    for (int i = 0; i < 2000; i++) {
        pw_schema_result r;
        if (pw_schema_validate(a->s, good, NULL) != PW_SCHEMA_VALID) a->bad++;
        if (pw_schema_validate(a->s, bad, &r) != PW_SCHEMA_INVALID || r.count != 2) a->bad++;
        pw_schema_result_clear(&r);
    }
    json_decref(good);
    json_decref(bad);
    return NULL;
}

/* One compiled schema shared by several threads (regex match data is per thread). */
static void test_threads(void **state)
{
    (void)state;
    char err[256];
    pw_schema *s = compile_text("{\"properties\":{\"id\":{\"pattern\":\"^[a-z]+$\"},"
                                "\"n\":{\"items\":{\"type\":\"string\"}}}}",
                                NULL, err, sizeof err);
    assert_non_null(s);
    pthread_t t[4];
    thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){s, 0};
        assert_int_equal(pthread_create(&t[i], NULL, validate_many, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    pw_schema_free(s);
}

static void test_add_dir(void **state)
{
    (void)state;
    char err[512];
    pw_schema_registry *reg = pw_schema_registry_new();
    int n = pw_schema_registry_add_dir(reg, PW_TEST_SCHEMAS_DIR, NULL, err, sizeof err);
    assert_true(n >= 2);
    pw_schema *s = pw_schema_compile(
        reg, "https://adx-policy-worker.example/schemas/request.v1.json", NULL, err, sizeof err);
    assert_non_null(s);
    pw_schema_free(s);
    assert_int_equal(pw_schema_registry_add_dir(reg, "/nonexistent-dir", NULL, err, sizeof err),
                     -1);
    pw_schema_registry_free(reg);
}

/* Validating a valid instance allocates nothing: counted with AddressSanitizer's allocator
 * hooks (make test builds with it), after one warm-up run (PCRE2's JIT stack and match data
 * are made on first use).  The project's request schema on the benchmark's four-operation
 * request, and a schema that uses unevaluated*, patterns, $dynamicRef and formats. */
#if defined(__SANITIZE_ADDRESS__)
int __sanitizer_install_malloc_and_free_hooks(void (*)(const volatile void *, size_t),
                                              void (*)(const volatile void *));
static atomic_long allocations;
static atomic_int counting;
static void count_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (atomic_load(&counting)) atomic_fetch_add(&allocations, 1);
}
static void ignore_free(const volatile void *p)
{
    (void)p;
}

static long allocations_during(const pw_schema *s, const json_t *inst, int runs)
{
    assert_int_equal(pw_schema_validate(s, inst, NULL), PW_SCHEMA_VALID); /* warm-up */
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    for (int i = 0; i < runs; i++)
        if (pw_schema_validate(s, inst, NULL) != PW_SCHEMA_VALID) break;
    atomic_store(&counting, 0);
    return atomic_load(&allocations);
}
#endif

static void test_no_allocation_on_success(void **state)
{
    (void)state;
#if !defined(__SANITIZE_ADDRESS__)
    skip(); /* the count needs AddressSanitizer's hooks; make test builds with them */
#else
    __sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free);
    char err[512];
    pw_schema_registry *reg = pw_schema_registry_new();
    assert_true(pw_schema_registry_add_dir(reg, PW_PROJECT_SCHEMAS_DIR, NULL, err, sizeof err) > 0);
    pw_schema *s = pw_schema_compile(
        reg, "https://adx-policy-worker.example/schemas/request.v1.json", NULL, err, sizeof err);
    pw_schema_registry_free(reg);
    assert_non_null(s);
    json_error_t je;
    json_t *req = json_load_file(PW_BENCH_REQUEST, 0, &je);
    assert_non_null(req);
    assert_int_equal(allocations_during(s, req, 100), 0);
    json_decref(req);
    pw_schema_free(s);

    pw_schema_options fmt = {.format_assertion = 1};
    s = compile_text("{\"$defs\": {\"node\": {\"$dynamicAnchor\": \"n\", \"type\": \"object\","
                     " \"properties\": {\"kids\": {\"type\": \"array\", \"items\":"
                     " {\"$dynamicRef\": \"#n\"}}}}},"
                     " \"$ref\": \"#/$defs/node\","
                     " \"patternProperties\": {\"^x-\": {\"type\": \"string\","
                     " \"pattern\": \"^[a-z]+\\\\d*$\"}},"
                     " \"properties\": {\"when\": {\"format\": \"date-time\"},"
                     " \"list\": {\"prefixItems\": [{\"type\": \"integer\"}],"
                     " \"contains\": {\"type\": \"string\"}, \"unevaluatedItems\": false}},"
                     " \"unevaluatedProperties\": false}",
                     &fmt, err, sizeof err);
    assert_non_null(s);
    json_t *inst = J("{\"kids\": [{\"kids\": []}], \"x-a\": \"abc12\","
                     " \"when\": \"2026-11-24T10:00:00Z\", \"list\": [1, \"two\", \"three\"]}");
    assert_int_equal(allocations_during(s, inst, 100), 0);
    json_decref(inst);
    pw_schema_free(s);
    __sanitizer_install_malloc_and_free_hooks(NULL, NULL);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_valid_invalid),
        cmocka_unit_test(test_duration_message),
        cmocka_unit_test(test_registry_refs),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_ref_cycle),
        cmocka_unit_test(test_depth_bounds),
        cmocka_unit_test(test_catastrophic_regex),
        cmocka_unit_test(test_exponential_schema),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_unevaluated_and_oneof_messages),
        cmocka_unit_test(test_max_errors),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_add_dir),
        cmocka_unit_test(test_no_allocation_on_success),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
