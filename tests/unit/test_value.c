/* test_value.c: desired values, reading Kusto policy JSON, and the unchanged / verified
 * comparisons (Kusto's normalisation: timespans by value, keys case-insensitively, the
 * defaults an .alter resets, a merge over what it sets, array merges appending). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pw/request.h"
#include "checker_support.h"
#include "pw/value.h"


#define KT                                                                                         \
    "\"target\":{\"clusterUri\":\"https://mykustocluster.westus.kusto.windows.net\","              \
    "\"database\":\"db\",\"table\":\"T\"}"

static pw_request *decode(const char *op)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"schema\":\"adx-policy-request/v1\",\"id\":\"v1\",\"requestedBy\":\"t@c.com\","
             "\"operations\":[{%s}]}",
             op);
    pw_rejection rej;
    pw_request *req = pw_request_decode(chk, text, strlen(text), &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    return req;
}

static json_t *j(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v) fail_msg("bad test JSON %s", text);
    return v;
}

/* The value read from Kusto policy JSON text (NULL: not set). */
static json_t *read_policy(const pw_request_op *op, const char *policy)
{
    json_t *doc = policy ? j(policy) : NULL, *value = NULL;
    char err[128];
    if (pw_value_from_policy(op, doc, &value, err, sizeof err) != 0) fail_msg("%s", err);
    json_decref(doc);
    return value;
}

static void check(const char *op_text, const char *before, int unchanged, const char *after,
                  int verified)
{
    pw_request *req = decode(op_text);
    const pw_request_op *op = pw_request_op_at(req, 0);
    json_t *desired = pw_value_desired(op);
    json_t *b = read_policy(op, before);
    if (pw_value_unchanged(op, desired, b) != unchanged)
        fail_msg("%s\n before %s: unchanged should be %d", op_text, before ? before : "null",
                 unchanged);
    if (after) {
        json_t *a = read_policy(op, after);
        if (pw_value_verified(op, desired, a) != verified)
            fail_msg("%s\n after %s: verified should be %d", op_text, after, verified);
        json_decref(a);
    }
    json_decref(b);
    json_decref(desired);
    pw_request_free(req);
}

#define CACHING "\"kind\":\"table.caching\"," KT ",\"hotCachePeriod\":\"P5D\""
#define RETENTION "\"kind\":\"table.retention\"," KT ",\"softDeletePeriod\":\"P10D\""
#define BATCHING                                                                                   \
    "\"kind\":\"table.ingestionbatching\"," KT ",\"policy\":{\"MaximumBatchingTimeSpan\":\"00:01:00\"}"

static void special_syntax(void **state)
{
    (void)state;
    check(CACHING, "{\"DataHotSpan\":{\"Value\":\"5.00:00:00\"},\"IndexHotSpan\":{\"Value\":\"5.00:00:00\"}}",
          1, NULL, 0);
    check(CACHING, "{\"DataHotSpan\":\"5.00:00:00.0000000\"}", 1, NULL, 0);
    check(CACHING, "{\"DataHotSpan\":\"4.00:00:00\"}", 0, "{\"DataHotSpan\":\"5.00:00:00\"}", 1);
    check(CACHING, NULL, 0, "{\"DataHotSpan\":\"6.00:00:00\"}", 0);
    /* an .alter without hot windows replaces those in place */
    check(CACHING,
          "{\"DataHotSpan\":\"5.00:00:00\",\"HotWindows\":[{\"MinValue\":\"2021-01-01T00:00:00Z\","
          "\"MaxValue\":\"2021-02-01T00:00:00Z\"}]}",
          0, NULL, 0);
    check(CACHING ",\"hotWindows\":[{\"from\":\"2021-01-01\",\"to\":\"2021-02-01T00:00:00Z\"}]",
          "{\"DataHotSpan\":\"5.00:00:00\",\"HotWindows\":[{\"MinValue\":\"2021-01-01T00:00:00.0000000Z\","
          "\"MaxValue\":\"2021-02-01T00:00:00Z\"}]}",
          1, NULL, 0);
    /* retention sets what it names: recoverability not given is left as it is */
    check(RETENTION, "{\"SoftDeletePeriod\":\"10.00:00:00\",\"Recoverability\":\"Disabled\"}", 1,
          NULL, 0);
    check(RETENTION ",\"recoverability\":\"Enabled\"",
          "{\"SoftDeletePeriod\":\"10.00:00:00\",\"Recoverability\":\"Disabled\"}", 0,
          "{\"SoftDeletePeriod\":\"10.00:00:00\",\"Recoverability\":\"Enabled\"}", 1);
    check("\"kind\":\"table.ingestiontime\"," KT ",\"enabled\":true", "{\"IsEnabled\":true}", 1,
          NULL, 0);
    check("\"kind\":\"table.ingestiontime\"," KT ",\"enabled\":true", "{\"IsEnabled\":false}", 0,
          "{\"IsEnabled\":false}", 0);
    check("\"kind\":\"table.roworder\"," KT ",\"rowOrder\":[{\"column\":\"A\",\"order\":\"desc\"}]",
          "{\"OrderBy\":[{\"ColumnName\":\"A\",\"Order\":\"Desc\"}]}", 1, NULL, 0);
    check("\"kind\":\"table.row_level_security\"," KT ",\"enabled\":true,\"query\":\"F\"",
          "{\"IsEnabled\":true,\"Query\":\"G\"}", 0, "{\"IsEnabled\":true,\"Query\":\"F\"}", 1);
}

static void json_policies(void **state)
{
    (void)state;
    /* an .alter resets what it omits: the defaults take part in "unchanged" */
    check(BATCHING,
          "{\"MaximumBatchingTimeSpan\":\"00:01:00\",\"MaximumNumberOfItems\":500,"
          "\"MaximumRawDataSizeMB\":1024}",
          1, NULL, 0);
    check(BATCHING,
          "{\"maximumbatchingtimespan\":\"00:01:00.0000000\",\"MaximumNumberOfItems\":500.0,"
          "\"MaximumRawDataSizeMB\":1024}",
          1, NULL, 0);
    check(BATCHING,
          "{\"MaximumBatchingTimeSpan\":\"00:01:00\",\"MaximumNumberOfItems\":20,"
          "\"MaximumRawDataSizeMB\":1024}",
          0,
          /* verification looks only at what the request gave */
          "{\"MaximumBatchingTimeSpan\":\"00:01:00\",\"MaximumNumberOfItems\":17}", 1);
    /* a merge compares only what it overlays */
    check("\"kind\":\"table.ingestionbatching\",\"action\":\"merge\"," KT
          ",\"policy\":{\"MaximumNumberOfItems\":20}",
          "{\"MaximumBatchingTimeSpan\":\"00:09:00\",\"MaximumNumberOfItems\":20}", 1, NULL, 0);
    /* delete: unchanged when nothing is set at this level */
    check("\"kind\":\"table.merge\",\"action\":\"delete\"," KT, NULL, 1, NULL, 0);
    check("\"kind\":\"table.merge\",\"action\":\"delete\"," KT, "{\"MaxRangeInHours\":24}", 0,
          "{\"MaxRangeInHours\":24}", 0);
}

#define UPDATE_ENTRY "{\"Source\":\"S\",\"Query\":\"S | take 1\",\"IsEnabled\":true}"

static void array_merge_appends_only_missing(void **state)
{
    (void)state;
    pw_request *req = decode("\"kind\":\"table.update\",\"action\":\"merge\"," KT
                             ",\"policy\":[" UPDATE_ENTRY ",{\"Source\":\"R\",\"Query\":\"R\"}]");
    const pw_request_op *op = pw_request_op_at(req, 0);
    json_t *desired = pw_value_desired(op);
    json_t *before = read_policy(op, "[{\"IsEnabled\":true,\"Source\":\"S\",\"Query\":\"S | take "
                                     "1\",\"IsTransactional\":false}]");
    assert_false(pw_value_unchanged(op, desired, before));
    json_t *missing = pw_value_entries_missing(op, desired, before);
    assert_int_equal(json_array_size(missing), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(missing, 0), "Source")), "R");
    json_decref(missing);
    json_decref(before);
    json_decref(desired);
    pw_request_free(req);
}

static void literals(void **state)
{
    (void)state;
    char *s = pw_value_kql_string("a'b\\c\nd\te\x01");
    assert_string_equal(s, "'a\\'b\\\\c\\nd\\te\\u0001'");
    free(s);
    json_t *v = j("{\"Q\":\"it's\",\"R\":2.1}");
    s = pw_value_json_literal(v);
    assert_string_equal(s, "@'{\"Q\":\"it''s\",\"R\":2.1}'");
    free(s);
    json_decref(v);
    char dt[40];
    assert_int_equal(pw_value_datetime("2021-01-01", dt, sizeof dt), 0);
    assert_string_equal(dt, "2021-01-01T00:00:00Z");
    assert_int_equal(pw_value_datetime("2024-02-29T12:30:00.5Z", dt, sizeof dt), 0);
    assert_string_equal(dt, "2024-02-29T12:30:00.5000000Z");
    assert_int_equal(pw_value_datetime("2023-02-29", dt, sizeof dt), -1);
    assert_int_equal(pw_value_datetime("2021-13-01", dt, sizeof dt), -1);
    assert_int_equal(pw_value_datetime("2021-01-01T24:00:00Z", dt, sizeof dt), -1);
    assert_int_equal(pw_value_datetime("2021-01-01T00:00:00+01:00", dt, sizeof dt), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(special_syntax),
        cmocka_unit_test(json_policies),
        cmocka_unit_test(array_merge_appends_only_missing),
        cmocka_unit_test(literals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
