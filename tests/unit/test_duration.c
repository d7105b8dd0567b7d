/* test_duration.c: ISO-8601 / KQL / .NET timespan conversions are strict and exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pw/duration.h"

#define DAY PW_TICKS_PER_DAY
#define HOUR (INT64_C(3600) * PW_TICKS_PER_SECOND)

static int64_t iso(const char *s)
{
    int64_t t = -12345;
    assert_int_equal(pw_duration_parse_iso(s, &t, NULL, 0), PW_OK);
    return t;
}

static void parse_iso_accepts(void **state)
{
    (void)state;
    assert_true(iso("P10D") == 10 * DAY);
    assert_true(iso("PT12H") == 12 * HOUR);
    assert_true(iso("P1DT12H") == 36 * HOUR);
    assert_true(iso("P2W") == 14 * DAY);
    assert_true(iso("PT90M") == 90 * 60 * PW_TICKS_PER_SECOND);
    assert_true(iso("PT1.5S") == 15000000);
    assert_true(iso("PT0.0000001S") == 1);
    assert_true(iso("P0D") == 0);
    assert_true(iso("-P5D") == -5 * DAY);
    assert_true(iso("P1W2DT3H4M5S") ==
                9 * DAY + 3 * HOUR + 4 * 60 * PW_TICKS_PER_SECOND + 5 * PW_TICKS_PER_SECOND);
}

static void parse_iso_rejects(void **state)
{
    (void)state;
    int64_t t;
    char err[200];
    const char *syntax[] = {"P10X", "10D",           "P",     "PT",     "P1DT",  "P1H",   "PT1D",
                            "p10d", "P10d",          "P1D2D", "PT1S1M", "P1.5D", "PT1.S", "P 1D",
                            "P1D ", "PT1.12345678S", "P10DT", "",       "--P1D", "P-1D",  "PTT1H"};
    for (size_t i = 0; i < sizeof syntax / sizeof *syntax; i++) {
        err[0] = '\0';
        if (pw_duration_parse_iso(syntax[i], &t, err, sizeof err) != PW_ERR_SYNTAX)
            fail_msg("accepted or misclassified: \"%s\"", syntax[i]);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(pw_duration_parse_iso("P1Y", &t, err, sizeof err), PW_ERR_AMBIGUOUS);
    assert_non_null(strstr(err, "ambiguous"));
    assert_int_equal(pw_duration_parse_iso("P2M", &t, err, sizeof err), PW_ERR_AMBIGUOUS);
    assert_int_equal(pw_duration_parse_iso("P1Y2M3D", &t, err, sizeof err), PW_ERR_AMBIGUOUS);
    assert_int_equal(pw_duration_parse_iso("P9999999999999999D", &t, err, sizeof err),
                     PW_ERR_RANGE);
    assert_int_equal(pw_duration_parse_iso("P999999999999999D", &t, err, sizeof err), PW_ERR_RANGE);
}

static void check_fmt(int64_t ticks, const char *want_iso, const char *want_kql,
                      const char *want_dotnet)
{
    char buf[64];
    assert_int_equal(pw_duration_format_iso(ticks, buf, sizeof buf), 0);
    assert_string_equal(buf, want_iso);
    int64_t back;
    assert_int_equal(pw_duration_parse_iso(buf, &back, NULL, 0), PW_OK);
    assert_true(back == ticks);
    assert_int_equal(pw_duration_format_kql(ticks, buf, sizeof buf), 0);
    assert_string_equal(buf, want_kql);
    assert_int_equal(pw_duration_format_dotnet(ticks, buf, sizeof buf), 0);
    assert_string_equal(buf, want_dotnet);
    assert_int_equal(pw_duration_parse_dotnet(buf, &back), 0);
    assert_true(back == ticks);
}

static void formats_are_exact(void **state)
{
    (void)state;
    check_fmt(5 * DAY, "P5D", "5d", "5.00:00:00");
    check_fmt(12 * HOUR, "PT12H", "12h", "0.12:00:00");
    check_fmt(36 * HOUR, "P1DT12H", "36h", "1.12:00:00");
    check_fmt(365 * DAY, "P365D", "365d", "365.00:00:00");
    check_fmt(90 * 60 * PW_TICKS_PER_SECOND, "PT1H30M", "90m", "0.01:30:00");
    check_fmt(30 * PW_TICKS_PER_SECOND, "PT30S", "30s", "0.00:00:30");
    check_fmt(1000000, "PT0.1S", "100ms", "0.00:00:00.1000000");
    check_fmt(15, "PT0.0000015S", "15tick", "0.00:00:00.0000015");
    check_fmt(20, "PT0.000002S", "2microsecond", "0.00:00:00.0000020");
    check_fmt(0, "PT0S", "0d", "0.00:00:00");
    check_fmt(DAY + 1, "P1DT0.0000001S", "864000000001tick", "1.00:00:00.0000001");
    char buf[8];
    assert_int_equal(pw_duration_format_kql(-DAY, buf, sizeof buf), -1);
    assert_int_equal(pw_duration_format_iso(365 * DAY, buf, 4), -1);
}

static void parse_dotnet(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(pw_duration_parse_dotnet("365.00:00:00", &t), 0);
    assert_true(t == 365 * DAY);
    assert_int_equal(pw_duration_parse_dotnet("00:05:00", &t), 0);
    assert_true(t == 5 * 60 * PW_TICKS_PER_SECOND);
    assert_int_equal(pw_duration_parse_dotnet("365000.00:00:00", &t), 0);
    assert_int_equal(pw_duration_parse_dotnet("1.12:00:00.5", &t), 0);
    assert_true(t == 36 * HOUR + 5000000);
    assert_int_equal(pw_duration_parse_dotnet("-1.00:00:00", &t), 0);
    assert_true(t == -DAY);
    /* TimeSpan.MaxValue is exactly INT64_MAX ticks; anything past it is refused, not wrapped */
    assert_int_equal(pw_duration_parse_dotnet("10675199.02:48:05.4775807", &t), 0);
    assert_true(t == INT64_MAX);
    assert_int_equal(pw_duration_parse_dotnet("10675199.02:48:05.4775808", &t), -1);
    assert_int_equal(pw_duration_parse_dotnet("10675199.23:59:59.9999999", &t), -1);
    const char *bad[] = {"",
                         "5",
                         "5d",
                         "1.24:00:00",
                         "00:60:00",
                         "0:05:00",
                         "1.00:00:00.",
                         "00:00:00.12345678",
                         "1.00:00:00x",
                         "P5D"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (pw_duration_parse_dotnet(bad[i], &t) != -1) fail_msg("accepted \"%s\"", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_iso_accepts),
        cmocka_unit_test(parse_iso_rejects),
        cmocka_unit_test(formats_are_exact),
        cmocka_unit_test(parse_dotnet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
