/* test_reply.c: pw_reply_dump_fit cuts an event to a size, says so with "truncated", keeps
 * its frame, never splits a UTF-8 sequence, and the result still follows reply.v1.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pw/reply.h"
#include "pw/schema.h"

static pw_schema_registry *reg;
static pw_schema *reply_schema;

static int setup(void **state)
{
    (void)state;
    char err[256], path[512];
    reg = pw_schema_registry_new();
    snprintf(path, sizeof path, "%s/schemas/reply.v1.json", PW_SOURCE_DIR);
    if (pw_schema_registry_add_file(reg, NULL, path, err, sizeof err)) fail_msg("%s", err);
    reply_schema = pw_schema_compile(reg, "https://adx-policy-worker.example/schemas/reply.v1.json",
                                     NULL, err, sizeof err);
    if (!reply_schema) fail_msg("reply schema: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pw_schema_free(reply_schema);
    pw_schema_registry_free(reg);
    return 0;
}

/* n bytes of "é" (2-byte sequences) after one ASCII byte, so byte cuts land mid-sequence. */
static char *long_text(size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    size_t i = 1;
    s[0] = 'a';
    for (; i + 2 <= n; i += 2)
        memcpy(s + i, "\xC3\xA9", 2);
    s[i] = '\0';
    return s;
}

/* A `failed` event with ops operations, each with an Azure error message of msg_len bytes. */
static json_t *failed_event(size_t ops, size_t msg_len)
{
    json_t *ev = pw_reply_frame("chg-1", "failed", 3, "w1");
    json_t *arr = json_array();
    char *msg = long_text(msg_len);
    for (size_t i = 0; i < ops; i++) {
        json_t *target =
            json_pack("{s:s, s:s}", "clusterUri", "https://mykustocluster.westus.kusto.windows.net",
                      "database", "mykustodatabase");
        json_t *op = json_pack("{s:I, s:s, s:s, s:o, s:s, s:o}", "index", (json_int_t)i, "kind",
                               "table.caching", "route", "kusto", "target", target, "status",
                               "failed", "error", pw_reply_error("OperationFailed", msg, 0));
        json_array_append_new(arr, op);
    }
    json_object_set_new(ev, "operations", arr);
    json_t *err = pw_reply_error("OperationFailed", msg, 0);
    json_object_set_new(err, "operationIndex", json_integer(0));
    json_object_set_new(ev, "error", err);
    free(msg);
    return ev;
}

static json_t *load_checked(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr); /* jansson refuses invalid UTF-8 */
    if (!j) fail_msg("not JSON: %s", jerr.text);
    if (pw_schema_validate(reply_schema, j, NULL) != PW_SCHEMA_VALID)
        fail_msg("does not follow reply.v1.json: %.300s", text);
    return j;
}

static void test_fits_unchanged(void **state)
{
    (void)state;
    json_t *ev = failed_event(2, 100);
    char *whole = json_dumps(ev, JSON_COMPACT);
    int cut = -1;
    char *text = pw_reply_dump_fit(ev, strlen(whole), &cut);
    assert_non_null(text);
    assert_int_equal(cut, 0);
    assert_string_equal(text, whole);
    free(text);
    free(whole);
    json_decref(ev);
}

/* A 200 kB Azure error body: strings are cut, the frame is not, the event says so. */
static void test_long_strings_cut(void **state)
{
    (void)state;
    json_t *ev = failed_event(3, 200000);
    char *before = json_dumps(ev, JSON_COMPACT);
    int cut = 0;
    char *text = pw_reply_dump_fit(ev, 20000, &cut);
    assert_non_null(text);
    assert_int_equal(cut, 1);
    assert_true(strlen(text) <= 20000);
    json_t *j = load_checked(text);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_string_equal(json_string_value(json_object_get(j, "requestId")), "chg-1");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "failed");
    assert_int_equal(json_array_size(json_object_get(j, "operations")), 3);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    assert_true(strlen(msg) > 0 && strlen(msg) <= 4096);
    /* The event itself is left as it was. */
    char *after = json_dumps(ev, JSON_COMPACT);
    assert_string_equal(before, after);
    free(after);
    free(before);
    json_decref(j);
    free(text);
    json_decref(ev);
}

/* Thousands of operations: arrays are cut too. */
static void test_many_operations_cut(void **state)
{
    (void)state;
    json_t *ev = failed_event(5000, 300);
    int cut = 0;
    char *text = pw_reply_dump_fit(ev, 100000, &cut);
    assert_non_null(text);
    assert_int_equal(cut, 1);
    assert_true(strlen(text) <= 100000);
    json_t *j = load_checked(text);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    size_t n = json_array_size(json_object_get(j, "operations"));
    assert_true(n >= PW_REPLY_FIT_ARRAY_MIN && n < 5000);
    json_decref(j);
    free(text);
    json_decref(ev);
}

/* Nothing but the frame fits: the smallest form, still a valid event. */
static void test_smallest_form(void **state)
{
    (void)state;
    json_t *ev = failed_event(50, 5000);
    int cut = 0;
    char *text = pw_reply_dump_fit(ev, 400, &cut);
    assert_non_null(text);
    assert_int_equal(cut, 1);
    assert_true(strlen(text) <= 400);
    json_t *j = load_checked(text);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_int_equal(json_array_size(json_object_get(j, "operations")), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "OperationFailed");
    assert_int_equal(json_integer_value(json_object_get(j, "sequence")), 3);
    json_decref(j);
    free(text);
    /* Smaller than even that: the smallest form all the same, for the producer to refuse. */
    text = pw_reply_dump_fit(ev, 10, &cut);
    assert_non_null(text);
    assert_int_equal(cut, 1);
    assert_true(strlen(text) > 10);
    free(text);
    json_decref(ev);
}

/* The audit fields are set, follow reply.v1.json, and stay in the smallest form. */
static void test_audit_kept(void **state)
{
    (void)state;
    json_t *ev = failed_event(50, 5000);
    pw_reply_audit a = {.requested_by = "alice@contoso.com",
                        .reason = "CHG-1",
                        .topic = "adx.policy.requests",
                        .partition = 3,
                        .offset = 1234567890123LL,
                        .delivery_attempt = 2};
    assert_int_equal(pw_reply_audit_add(ev, &a), 0);
    int cut = 0;
    char *text = pw_reply_dump_fit(ev, 600, &cut);
    assert_non_null(text);
    assert_int_equal(cut, 1);
    json_t *j = load_checked(text);
    assert_int_equal(json_array_size(json_object_get(j, "operations")), 0); /* the smallest */
    assert_string_equal(json_string_value(json_object_get(j, "requestedBy")), "alice@contoso.com");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "CHG-1");
    json_t *src = json_object_get(j, "source");
    assert_string_equal(json_string_value(json_object_get(src, "topic")), "adx.policy.requests");
    assert_int_equal(json_integer_value(json_object_get(src, "partition")), 3);
    assert_true(json_integer_value(json_object_get(src, "offset")) == 1234567890123LL);
    assert_int_equal(json_integer_value(json_object_get(j, "deliveryAttempt")), 2);
    json_decref(j);
    free(text);
    /* without requestedBy/reason: left out, still valid */
    json_t *ev2 = pw_reply_frame("chg-2", "rejected", 1, "w1");
    json_object_set_new(ev2, "error", pw_reply_error("InvalidJson", "x", 0));
    pw_reply_audit b = {.topic = "t", .partition = 0, .offset = 0, .delivery_attempt = 1};
    assert_int_equal(pw_reply_audit_add(ev2, &b), 0);
    text = pw_reply_dump_fit(ev2, 100000, &cut);
    j = load_checked(text);
    assert_null(json_object_get(j, "requestedBy"));
    assert_null(json_object_get(j, "reason"));
    json_decref(j);
    free(text);
    json_decref(ev2);
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fits_unchanged),      cmocka_unit_test(test_long_strings_cut),
        cmocka_unit_test(test_many_operations_cut), cmocka_unit_test(test_smallest_form),
        cmocka_unit_test(test_audit_kept),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
