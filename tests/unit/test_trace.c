/* test_trace.c: W3C traceparent/tracestate checks and child span ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pw/trace.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int valid(const char *s)
{
    return pw_trace_parent_valid(s, strlen(s));
}

static void traceparent_checks(void **state)
{
    (void)state;
    assert_true(valid(TP));
    assert_true(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
    assert_false(valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")); /* version */
    assert_false(valid("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    assert_false(valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01")); /* zero id */
    assert_false(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")); /* zero span */
    assert_false(valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")); /* upper */
    assert_false(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"));
    assert_false(valid(TP "-x"));
    assert_false(valid("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    assert_false(valid("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"));
    assert_false(valid(""));
    assert_false(pw_trace_parent_valid(NULL, 0));
}

static void tracestate_checks(void **state)
{
    (void)state;
    const char *ok[] = {"congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "a=1 , b=2",
                        "x@y=z"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(pw_trace_state_valid(ok[i], strlen(ok[i])));
    const char *bad[] = {"", "novalue", "=v", "k=", "k=v\x01", "k=v\xc3\xa9", ","};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(pw_trace_state_valid(bad[i], strlen(bad[i])));
    char big[PW_TRACE_STATE_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[0] = 'k';
    big[1] = '=';
    big[sizeof big - 1] = '\0';
    assert_false(pw_trace_state_valid(big, strlen(big))); /* 513 bytes */
    assert_true(pw_trace_state_valid(big, PW_TRACE_STATE_MAX));
    char many[33 * 4 + 1] = "";
    for (int i = 0; i < 33; i++)
        strcat(many, i ? ",k=v" : "k=v");
    assert_false(pw_trace_state_valid(many, strlen(many)));
}

static void from_headers(void **state)
{
    (void)state;
    pw_trace t;
    assert_int_equal(pw_trace_from_headers(&t, TP, strlen(TP), "k=v", 3), 0);
    assert_string_equal(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(t.parent_id, "00f067aa0ba902b7");
    assert_string_equal(t.flags, "01");
    assert_string_equal(t.state, "k=v");
    assert_int_equal(t.started, 0);
    char child[PW_TRACE_PARENT_LEN + 1];
    pw_trace_child(&t, child);
    assert_true(valid(child));
    assert_memory_equal(child, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
    assert_memory_not_equal(child + 36, "00f067aa0ba902b7", 16); /* a new span id */
    assert_string_equal(child + 52, "-01");
    char again[PW_TRACE_PARENT_LEN + 1];
    pw_trace_child(&t, again);
    assert_string_not_equal(child, again);

    /* invalid (or absent): a new trace; a tracestate is dropped with it */
    assert_int_equal(pw_trace_from_headers(&t, "garbage", 7, "k=v", 3), 1);
    assert_int_equal(t.started, 1);
    assert_int_equal(strlen(t.trace_id), 32);
    assert_string_equal(t.state, "");
    assert_string_equal(t.parent_id, "");
    pw_trace_child(&t, child);
    assert_true(valid(child));
    assert_int_equal(pw_trace_from_headers(&t, NULL, 0, NULL, 0), 1);
    /* valid parent, invalid state: parent kept, state not */
    assert_int_equal(pw_trace_from_headers(&t, TP, strlen(TP), "bad", 3), 0);
    assert_string_equal(t.state, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(traceparent_checks),
        cmocka_unit_test(tracestate_checks),
        cmocka_unit_test(from_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
