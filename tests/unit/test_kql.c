/* test_kql.c: policy commands are bracket-quoted and exact; policy answers read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pw/duration.h"
#include "pw/kql.h"

#define DAY PW_TICKS_PER_DAY
#define HOUR (INT64_C(3600) * PW_TICKS_PER_SECOND)

static void expect_cmd(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void builds_commands(void **state)
{
    (void)state;
    expect_cmd(pw_kql_alter(PW_KQL_RETENTION, "mykustodatabase", NULL, 10 * DAY),
               ".alter-merge database ['mykustodatabase'] policy retention softdelete = 10d");
    expect_cmd(pw_kql_alter(PW_KQL_CACHING, "mykustodatabase", NULL, 5 * DAY),
               ".alter database ['mykustodatabase'] policy caching hot = 5d");
    expect_cmd(pw_kql_alter(PW_KQL_CACHING, "db", "StormEvents", 5 * DAY),
               ".alter table ['StormEvents'] policy caching hot = 5d");
    expect_cmd(pw_kql_alter(PW_KQL_RETENTION, "db", "Storm Events-2.x", 36 * HOUR),
               ".alter-merge table ['Storm Events-2.x'] policy retention softdelete = 36h");
    expect_cmd(pw_kql_alter(PW_KQL_CACHING, "db", "T", 0),
               ".alter table ['T'] policy caching hot = 0d");
    expect_cmd(pw_kql_show(PW_KQL_RETENTION, "mykustodatabase", NULL),
               ".show database ['mykustodatabase'] policy retention");
    expect_cmd(pw_kql_show(PW_KQL_CACHING, "db", "Logs"), ".show table ['Logs'] policy caching");
}

static void principals(void **state)
{
    (void)state;
    expect_cmd(pw_kql_show_principals("db"), ".show database ['db'] principals");
    expect_cmd(pw_kql_add_principal("db", "Admin", "aadapp=abc;contoso.com"),
               ".add database ['db'] admins ('aadapp=abc;contoso.com')");
    expect_cmd(pw_kql_add_principal("db", "UnrestrictedViewer", "aaduser=a@b.c"),
               ".add database ['db'] unrestrictedviewers ('aaduser=a@b.c')");
    assert_null(pw_kql_add_principal("db", "Root", "aaduser=a@b.c"));
    assert_null(pw_kql_add_principal("db", "Admin", "aaduser=x') ; .drop table T //"));
    assert_null(pw_kql_add_principal("db", "Admin", "a\\b"));
    assert_null(pw_kql_add_principal("d'b", "Admin", "aaduser=a"));
    json_t *v1 = json_loads(
        "{\"Tables\":[{\"Columns\":[{\"ColumnName\":\"Role\"},{\"ColumnName\":\"PrincipalType\"},"
        "{\"ColumnName\":\"PrincipalDisplayName\"},{\"ColumnName\":\"PrincipalObjectId\"},"
        "{\"ColumnName\":\"PrincipalFQN\"}],\"Rows\":[[\"Database db Admin\",\"AAD Application\","
        "\"bot\",\"abc\",\"aadapp=abc;tenant\"],[\"Database db Viewer\",\"AAD User\",\"Ann\",\"x\","
        "\"aaduser=ann@c.com\"]]}]}",
        0, NULL);
    json_t *list = pw_kql_parse_principals(v1, NULL, 0);
    json_t *want =
        json_loads("{\"value\":[{\"role\":\"Admin\",\"type\":\"App\",\"name\":\"bot\","
                   "\"fqn\":\"aadapp=abc;tenant\",\"appId\":\"abc\"},{\"role\":\"Viewer\","
                   "\"type\":\"User\",\"name\":\"Ann\",\"fqn\":\"aaduser=ann@c.com\"}]}",
                   0, NULL);
    assert_true(json_equal(list, want));
    json_decref(list);
    json_decref(want);
    json_decref(v1);
    json_t *bad = json_loads("{\"Tables\":[{\"Columns\":[],\"Rows\":[]}]}", 0, NULL);
    char err[64] = "";
    assert_null(pw_kql_parse_principals(bad, err, sizeof err));
    assert_true(err[0] != '\0');
    json_decref(bad);
}

static void refuses_bad_names(void **state)
{
    (void)state;
    const char *bad[] = {
        "'] ; .drop table X", "a'b", "a]b", "a\\b", "a\nb", "__x", "x__", "", "a;b", "a\"b",
        "\xc3\xa9t\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_null(pw_kql_alter(PW_KQL_CACHING, "db", bad[i], DAY));
        assert_null(pw_kql_alter(PW_KQL_CACHING, bad[i], NULL, DAY));
        assert_null(pw_kql_alter(PW_KQL_CACHING, bad[i], "T", DAY));
        assert_null(pw_kql_show(PW_KQL_RETENTION, "db", bad[i]));
        char buf[64];
        assert_int_equal(pw_kql_quote_name(bad[i], buf, sizeof buf), -1);
    }
    assert_null(pw_kql_alter(PW_KQL_RETENTION, "db", "T", -DAY));
    char buf[8];
    assert_int_equal(pw_kql_quote_name("abcdefgh", buf, sizeof buf), -1);
}

static json_t *answer(const char *policy_cell_json)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"Tables\":[{\"TableName\":\"Table_0\",\"Columns\":["
             "{\"ColumnName\":\"PolicyName\",\"DataType\":\"String\"},"
             "{\"ColumnName\":\"EntityName\",\"DataType\":\"String\"},"
             "{\"ColumnName\":\"Policy\",\"DataType\":\"String\"},"
             "{\"ColumnName\":\"ChildEntities\",\"DataType\":\"String\"},"
             "{\"ColumnName\":\"EntityType\",\"DataType\":\"String\"}],"
             "\"Rows\":[[\"P\",\"[db]\",%s,null,\"Database\"]]}]}",
             policy_cell_json);
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    return v;
}

static void expect_policy(const char *cell, pw_kql_policy policy, int want_set, int64_t want)
{
    json_t *v = answer(cell);
    int is_set = -1;
    int64_t ticks = -1;
    char err[128];
    assert_int_equal(pw_kql_parse_policy(v, policy, &is_set, &ticks, err, sizeof err), 0);
    assert_int_equal(is_set, want_set);
    if (want_set) assert_true(ticks == want);
    json_decref(v);
}

static void parses_answers(void **state)
{
    (void)state;
    expect_policy("\"{\\\"SoftDeletePeriod\\\":\\\"365.00:00:00\\\",\\\"Recoverability\\\":"
                  "\\\"Enabled\\\"}\"",
                  PW_KQL_RETENTION, 1, 365 * DAY);
    expect_policy("\"{\\\"DataHotSpan\\\":\\\"4.00:00:00\\\"}\"", PW_KQL_CACHING, 1, 4 * DAY);
    expect_policy("\"{\\\"DataHotSpan\\\":{\\\"Value\\\":\\\"30.00:00:00\\\"},\\\"IndexHotSpan\\\":"
                  "{\\\"Value\\\":\\\"30.00:00:00\\\"}}\"",
                  PW_KQL_CACHING, 1, 30 * DAY);
    expect_policy("\"{\\\"DataHotSpan\\\":\\\"1.12:00:00\\\"}\"", PW_KQL_CACHING, 1, 36 * HOUR);
    expect_policy("null", PW_KQL_CACHING, 0, 0);
    expect_policy("\"null\"", PW_KQL_RETENTION, 0, 0);
    /* a policy object directly in the cell (dynamic column) */
    expect_policy("{\"SoftDeletePeriod\":\"10.00:00:00\"}", PW_KQL_RETENTION, 1, 10 * DAY);

    const char *bad[] = {"\"not json\"", "\"{\\\"SoftDeletePeriod\\\":5}\"",
                         "\"{\\\"SoftDeletePeriod\\\":\\\"P5D\\\"}\"", "\"{}\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *v = answer(bad[i]);
        int is_set;
        int64_t ticks;
        char err[128] = "";
        assert_int_equal(pw_kql_parse_policy(v, PW_KQL_RETENTION, &is_set, &ticks, err, sizeof err),
                         -1);
        assert_true(err[0] != '\0');
        json_decref(v);
    }
    json_t *empty = json_loads("{\"Tables\":[]}", 0, NULL);
    int is_set;
    int64_t ticks;
    assert_int_equal(pw_kql_parse_policy(empty, PW_KQL_CACHING, &is_set, &ticks, NULL, 0), -1);
    json_decref(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builds_commands),
        cmocka_unit_test(refuses_bad_names),
        cmocka_unit_test(principals),
        cmocka_unit_test(parses_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
