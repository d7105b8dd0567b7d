/* test_kusto_lex.c: the Kusto engine's tokenizer and time conversions (KQL timespan
 * literals, .NET TimeSpan text, ISO-8601 durations, datetimes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kusto.h"

#include <stdlib.h>
#include <string.h>

#define TICKS_H (3600LL * SIM_KUSTO_TICKS_PER_SECOND)
#define TICKS_M (60LL * SIM_KUSTO_TICKS_PER_SECOND)

static int64_t lit(const char *s)
{
    int64_t t = -1;
    assert_int_equal(sim_kusto_timespan_literal(s, strlen(s), &t), 0);
    return t;
}

static void test_timespan_literals(void **state)
{
    (void)state;
    assert_true(lit("30d") == 30 * SIM_KUSTO_TICKS_PER_DAY);
    assert_true(lit("12h") == 12 * TICKS_H);
    assert_true(lit("1.5h") == 90 * TICKS_M);
    assert_true(lit("90m") == 90 * TICKS_M);
    assert_true(lit("30s") == 30 * SIM_KUSTO_TICKS_PER_SECOND);
    assert_true(lit("100ms") == 1000000);
    assert_true(lit("10microsecond") == 100);
    assert_true(lit("1tick") == 1);
    assert_true(lit("2days") == 2 * SIM_KUSTO_TICKS_PER_DAY);
    assert_true(lit("0.5d") == 12 * TICKS_H);
    /* the worker writes odd spans in ticks: 365000 days and one tick */
    assert_true(lit("315360000000000001tick") == 365000LL * SIM_KUSTO_TICKS_PER_DAY + 1);
    assert_true(lit("0d") == 0);
    int64_t t;
    assert_int_equal(sim_kusto_timespan_literal("30", 2, &t), -1); /* no unit */
    assert_int_equal(sim_kusto_timespan_literal("3w", 2, &t), -1); /* no 'w' unit */
    assert_int_equal(sim_kusto_timespan_literal("d", 1, &t), -1);
    assert_int_equal(sim_kusto_timespan_literal("99999999999d", 12, &t), -1); /* too big */
    assert_int_equal(sim_kusto_timespan_literal("99999999999999999999999tick", 27, &t), -1);
    assert_int_equal(sim_kusto_timespan_literal("1.5x", 4, &t), -1);
}

static void test_timespan_fn(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(sim_kusto_timespan_fn("1.12:00:00", &t), 0);
    assert_true(t == SIM_KUSTO_TICKS_PER_DAY + 12 * TICKS_H);
    assert_int_equal(sim_kusto_timespan_fn("0.12:34:56.7", &t), 0);
    assert_true(t == 12 * TICKS_H + 34 * TICKS_M + 56 * SIM_KUSTO_TICKS_PER_SECOND + 7000000);
    assert_int_equal(sim_kusto_timespan_fn("15 seconds", &t), 0);
    assert_true(t == 15 * SIM_KUSTO_TICKS_PER_SECOND);
    assert_int_equal(sim_kusto_timespan_fn("2d", &t), 0);
    assert_true(t == 2 * SIM_KUSTO_TICKS_PER_DAY);
    assert_int_equal(sim_kusto_timespan_fn("abc", &t), -1);
}

static void check_net(const char *in, const char *expect)
{
    int64_t t;
    char out[64];
    assert_int_equal(sim_kusto_timespan_parse_net(in, &t), 0);
    sim_kusto_timespan_format_net(t, out, sizeof out);
    assert_string_equal(out, expect);
}

static void test_net_timespans(void **state)
{
    (void)state;
    check_net("365.00:00:00", "365.00:00:00");
    check_net("00:05:00", "00:05:00");
    check_net("00:00:30", "00:00:30");
    check_net("10", "10.00:00:00");
    check_net("365000.00:00:00", "365000.00:00:00");
    check_net("1.02:03:04.5", "1.02:03:04.5000000");
    check_net("-01:00:00", "-01:00:00");
    check_net("12:30", "12:30:00");
    int64_t t;
    assert_int_equal(sim_kusto_timespan_parse_net("24:00:00", &t), -1);
    assert_int_equal(sim_kusto_timespan_parse_net("1.00:60:00", &t), -1);
    assert_int_equal(sim_kusto_timespan_parse_net("1.00:00:00.12345678", &t), -1);
    assert_int_equal(sim_kusto_timespan_parse_net("", &t), -1);
    assert_int_equal(sim_kusto_timespan_parse_net("P1D", &t), -1);
    assert_int_equal(sim_kusto_timespan_parse_net("1.00:00:00x", &t), -1);
    assert_int_equal(sim_kusto_timespan_parse_net(NULL, &t), -1);
}

static void check_iso(const char *in, int64_t expect_ticks, const char *expect_text)
{
    int64_t t;
    char out[64];
    assert_int_equal(sim_kusto_iso_parse(in, &t), 0);
    assert_true(t == expect_ticks);
    sim_kusto_iso_format(t, out, sizeof out);
    assert_string_equal(out, expect_text);
}

static void test_iso_durations(void **state)
{
    (void)state;
    check_iso("P365D", 365 * SIM_KUSTO_TICKS_PER_DAY, "P365D");
    check_iso("P31D", 31 * SIM_KUSTO_TICKS_PER_DAY, "P31D");
    check_iso("PT12H", 12 * TICKS_H, "PT12H");
    check_iso("PT1H30M", 90 * TICKS_M, "PT1H30M");
    check_iso("P1DT2H3M4.5S", SIM_KUSTO_TICKS_PER_DAY + 2 * TICKS_H + 3 * TICKS_M + 45000000,
              "P1DT2H3M4.5S");
    check_iso("PT0.0000001S", 1, "PT0.0000001S");
    check_iso("PT0S", 0, "PT0S");
    check_iso("P1W", 7 * SIM_KUSTO_TICKS_PER_DAY, "P7D");
    check_iso("PT36H", 36 * TICKS_H, "P1DT12H");
    int64_t t;
    assert_int_equal(sim_kusto_iso_parse("P", &t), -1);
    assert_int_equal(sim_kusto_iso_parse("PT", &t), -1);
    assert_int_equal(sim_kusto_iso_parse("P1H", &t), -1);
    assert_int_equal(sim_kusto_iso_parse("PT1D", &t), -1);
    assert_int_equal(sim_kusto_iso_parse("365D", &t), -1);
    assert_int_equal(sim_kusto_iso_parse("P1X", &t), -1);
    assert_int_equal(sim_kusto_iso_parse("P99999999999D", &t), -1);
}

static void test_datetimes(void **state)
{
    (void)state;
    char out[40];
    assert_int_equal(sim_kusto_datetime_parse("2021-01-01", out, sizeof out), 0);
    assert_string_equal(out, "2021-01-01T00:00:00.0000000Z");
    assert_int_equal(sim_kusto_datetime_parse("2021-01-01 12:30", out, sizeof out), 0);
    assert_string_equal(out, "2021-01-01T12:30:00.0000000Z");
    assert_int_equal(sim_kusto_datetime_parse("2024-02-29T23:59:59.5Z", out, sizeof out), 0);
    assert_string_equal(out, "2024-02-29T23:59:59.5000000Z");
    assert_int_equal(sim_kusto_datetime_parse("2023-02-29", out, sizeof out), -1);
    assert_int_equal(sim_kusto_datetime_parse("2021-13-01", out, sizeof out), -1);
    assert_int_equal(sim_kusto_datetime_parse("2021-01-01T25:00", out, sizeof out), -1);
    assert_int_equal(sim_kusto_datetime_parse("yesterday", out, sizeof out), -1);
}

/* Lexes s (must succeed) into t. */
static void lex_ok(const char *s, sim_kusto_tokens *t)
{
    size_t pos;
    char err[128];
    int rc = sim_kusto_lex(s, strlen(s), t, &pos, err, sizeof err);
    if (rc) fail_msg("lex failed at %zu: %s", pos, err);
}

static int lex_fails(const char *s, size_t len)
{
    sim_kusto_tokens t;
    size_t pos;
    char err[128];
    int rc = sim_kusto_lex(s, len, &t, &pos, err, sizeof err);
    if (rc == 0) sim_kusto_tokens_free(&t);
    return rc != 0;
}

static void test_lex_command(void **state)
{
    (void)state;
    sim_kusto_tokens t;
    lex_ok(".alter-merge table ['My Table'] policy retention softdelete = 1.5h // note\n", &t);
    assert_int_equal(t.n, 10);
    assert_true(t.v[0].type == SK_TOK_PUNCT && !strcmp(t.v[0].text, "."));
    assert_true(t.v[1].type == SK_TOK_IDENT && !strcmp(t.v[1].text, "alter-merge"));
    assert_true(t.v[3].type == SK_TOK_QNAME && !strcmp(t.v[3].text, "My Table"));
    assert_true(t.v[8].type == SK_TOK_NUMBER && !strcmp(t.v[8].text, "1.5h"));
    assert_true(t.v[9].type == SK_TOK_EOF);
    sim_kusto_tokens_free(&t);

    lex_ok("[\"Db\"].['T'] datetime( 2021-01-01 ) .. time(1.12:00:00) timespan(15 seconds)", &t);
    assert_true(t.v[0].type == SK_TOK_QNAME && !strcmp(t.v[0].text, "Db"));
    assert_true(t.v[1].type == SK_TOK_PUNCT && !strcmp(t.v[1].text, "."));
    assert_true(t.v[2].type == SK_TOK_QNAME && !strcmp(t.v[2].text, "T"));
    assert_true(t.v[3].type == SK_TOK_DATETIME && !strcmp(t.v[3].text, "2021-01-01"));
    assert_true(t.v[4].type == SK_TOK_PUNCT && !strcmp(t.v[4].text, ".."));
    assert_true(t.v[5].type == SK_TOK_TIMESPAN && !strcmp(t.v[5].text, "1.12:00:00"));
    assert_true(t.v[6].type == SK_TOK_TIMESPAN && !strcmp(t.v[6].text, "15 seconds"));
    sim_kusto_tokens_free(&t);

    lex_ok("T; .drop | x", &t);
    assert_true(t.v[1].type == SK_TOK_PUNCT && !strcmp(t.v[1].text, ";"));
    assert_true(t.v[4].type == SK_TOK_PUNCT && !strcmp(t.v[4].text, "|"));
    sim_kusto_tokens_free(&t);

    /* "<|": the rest of the text is one raw token, whatever it holds (an open quote too) */
    lex_ok("'{}' <|\n iff(x == \"a'\", 'b', \"default\") // c\n", &t);
    assert_int_equal(t.n, 3);
    assert_true(t.v[0].type == SK_TOK_STRING);
    assert_true(t.v[1].type == SK_TOK_BODY);
    assert_string_equal(t.v[1].text, "\n iff(x == \"a'\", 'b', \"default\") // c\n");
    assert_true(t.v[2].type == SK_TOK_EOF);
    sim_kusto_tokens_free(&t);
    lex_ok("x <|", &t);
    assert_true(t.v[1].type == SK_TOK_BODY && t.v[1].len == 0);
    sim_kusto_tokens_free(&t);
    lex_ok("a < | b", &t); /* apart they are two punctuation tokens */
    assert_true(t.v[1].type == SK_TOK_PUNCT && !strcmp(t.v[1].text, "<"));
    sim_kusto_tokens_free(&t);
}

static const char *one_string(const char *s, sim_kusto_tokens *t)
{
    lex_ok(s, t);
    assert_int_equal(t->n, 2);
    assert_true(t->v[0].type == SK_TOK_STRING || t->v[0].type == SK_TOK_QNAME);
    return t->v[0].text;
}

static void test_lex_strings(void **state)
{
    (void)state;
    sim_kusto_tokens t;
    assert_string_equal(one_string("'it\\'s \\\"q\\\" \\\\ \\n\\t'", &t), "it's \"q\" \\ \n\t");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("\"d\\u00e9j\\u00E0 \\x41\\101\"", &t), "d\xc3\xa9j\xc3\xa0 AA");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("'\\uD83D\\uDE00'", &t), "\xf0\x9f\x98\x80");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("@'C:\\dir\\ it''s'", &t), "C:\\dir\\ it's");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("@\"say \"\"hi\"\"\"", &t), "say \"hi\"");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("```line1\nline2 'x' \\n```", &t), "line1\nline2 'x' \\n");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("h'secret'", &t), "secret");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("H@'se''cret'", &t), "se'cret");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("'a' \"b\"\n@'c' ```d```", &t), "abcd");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("['it\\'s']", &t), "it's");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("[@'x''y']", &t), "x'y");
    sim_kusto_tokens_free(&t);
    assert_string_equal(one_string("''", &t), "");
    sim_kusto_tokens_free(&t);
}

static void test_lex_errors(void **state)
{
    (void)state;
    const char *bad[] = {"'open",
                         "'a\nb'",
                         "\"x\\q\"",
                         "'\\uD800'",
                         "'\\uDC00x'",
                         "```open",
                         "['x'",
                         "[@'x'",
                         "datetime(2021",
                         "'\\U00110000'",
                         "'\\u12'",
                         "time("
                         "0123456789012345678901234567890123456789012345678901234567890123456789)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!lex_fails(bad[i], strlen(bad[i]))) fail_msg("should not lex: %s", bad[i]);
}

static void test_lex_bounds(void **state)
{
    (void)state;
    /* over the command cap */
    size_t big = SIM_KUSTO_MAX_CSL + 1;
    char *s = malloc(big + 1);
    assert_non_null(s);
    memset(s, 'a', big);
    s[big] = '\0';
    assert_true(lex_fails(s, big));
    /* too many tokens */
    for (size_t i = 0; i < SIM_KUSTO_MAX_CSL; i += 2) {
        s[i] = ',';
        s[i + 1] = ' ';
    }
    assert_true(lex_fails(s, SIM_KUSTO_MAX_CSL));
    /* a long number is refused, a long identifier is one token */
    memset(s, '7', 100);
    assert_true(lex_fails(s, 100));
    memset(s, 'x', 5000);
    sim_kusto_tokens t;
    size_t pos;
    char err[64];
    assert_int_equal(sim_kusto_lex(s, 5000, &t, &pos, err, sizeof err), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.v[0].len, 5000);
    sim_kusto_tokens_free(&t);
    /* every byte value, in every position, never crashes */
    for (int b = 0; b < 256; b++) {
        char in[8] = {'.', 's', (char)b, '\'', (char)b, '[', (char)b, '\\'};
        if (sim_kusto_lex(in, sizeof in, &t, &pos, err, sizeof err) == 0) sim_kusto_tokens_free(&t);
    }
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timespan_literals), cmocka_unit_test(test_timespan_fn),
        cmocka_unit_test(test_net_timespans),     cmocka_unit_test(test_iso_durations),
        cmocka_unit_test(test_datetimes),         cmocka_unit_test(test_lex_command),
        cmocka_unit_test(test_lex_strings),       cmocka_unit_test(test_lex_errors),
        cmocka_unit_test(test_lex_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
