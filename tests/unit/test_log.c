/* test_log.c: the logger's lines are the JSON objects jansson would write for the same fields,
 * byte for byte (escapes, UTF-8, the invalid-UTF-8 marker), one line per call. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pw/log.h"

/* Runs one pw_log with stderr sent to a file; returns the line written (malloc'd). */
static char *logged(const char *request_id, const char *event, const char *msg)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = tmpfile();
    assert_non_null(f);
    dup2(fileno(f), STDERR_FILENO);
    pw_log(PW_LOG_WARN, request_id, event, "%s", msg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    long n = ftell(f);
    assert_true(n > 0);
    char *text = calloc(1, (size_t)n + 1);
    rewind(f);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

/* What the jansson-built line was for the same call (ts taken from the line itself). */
static char *expected(const char *line, const char *request_id, const char *event, const char *msg)
{
    json_t *got = json_loads(line, 0, NULL);
    assert_non_null(got);
    json_t *want = json_object();
    json_object_set_new(want, "ts", json_string(json_string_value(json_object_get(got, "ts"))));
    json_object_set_new(want, "level", json_string("warn"));
    json_object_set_new(want, "worker", json_string("log-test"));
    if (request_id) {
        json_t *rid = json_string(request_id);
        json_object_set_new(want, "requestId", rid ? rid : json_string("<invalid utf-8>"));
    }
    json_object_set_new(want, "event", json_string(event));
    json_t *m = json_string(msg);
    json_object_set_new(want, "msg", m ? m : json_string("<invalid utf-8>"));
    char *text = json_dumps(want, JSON_COMPACT);
    json_decref(want);
    json_decref(got);
    char *out = malloc(strlen(text) + 2);
    sprintf(out, "%s\n", text);
    free(text);
    return out;
}

static void check(const char *request_id, const char *event, const char *msg)
{
    char *line = logged(request_id, event, msg);
    char *want = expected(line, request_id, event, msg);
    assert_string_equal(line, want);
    free(line);
    free(want);
}

static void lines_as_jansson_writes_them(void **state)
{
    (void)state;
    pw_log_set_worker_id("log-test");
    check("req-1", "op.finished", "operation 0 database.caching: succeeded in 12 ms");
    check(NULL, "kafka.assigned", "adx.policy.requests [3]");
    check("r", "e", "quote \" backslash \\ slash / newline \n tab \t cr \r bs \b ff \f end");
    check("r", "e", "controls \x01\x1f del \x7f");
    check("r", "e", "utf-8: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    check("r", "e", "invalid: \xff here");
    check("r", "e", "cut: \xe2\x82");
    check("r", "e", "surrogate: \xed\xa0\x80");
    check("r", "e", "overlong: \xc0\xaf");
    check("id-\xff", "e", "an invalid request id");
    check("r", "e", "");
}

static void long_message_is_one_whole_line(void **state)
{
    (void)state;
    pw_log_set_worker_id("log-test");
    char msg[5000];
    memset(msg, '"', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    char *line = logged("r", "e", msg);
    size_t n = strlen(line);
    assert_true(n > 2 && line[n - 1] == '\n' && strchr(line, '\n') == line + n - 1);
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j); /* (the message is cut at 2047 bytes, as before) */
    assert_int_equal(strlen(json_string_value(json_object_get(j, "msg"))), 2047);
    json_decref(j);
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_as_jansson_writes_them),
        cmocka_unit_test(long_message_is_one_whole_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
