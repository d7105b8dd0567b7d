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
    expect_cmd(pw_kql_entity(PW_SCOPE_CLUSTER, NULL, NULL, NULL, NULL), "cluster");
    expect_cmd(pw_kql_entity(PW_SCOPE_DATABASE, "mykustodatabase", NULL, NULL, NULL),
               "database ['mykustodatabase']");
    expect_cmd(pw_kql_entity(PW_SCOPE_TABLE, "db", "Storm Events-2.x", NULL, NULL),
               "table ['Storm Events-2.x']");
    expect_cmd(pw_kql_entity(PW_SCOPE_COLUMN, "db", "T", NULL, "C 1"), "column ['T'].['C 1']");
    expect_cmd(pw_kql_entity(PW_SCOPE_MATERIALIZED_VIEW, "db", NULL, "V", NULL),
               "materialized-view ['V']");
    expect_cmd(pw_kql_entity(PW_SCOPE_EXTERNAL_TABLE, "db", NULL, "E", NULL), "external table ['E']");
    expect_cmd(pw_kql_policy_command(".alter", "table ['T']", "caching", "hot = 5d"),
               ".alter table ['T'] policy caching hot = 5d");
    expect_cmd(pw_kql_policy_command(".show", "cluster", "callout", NULL),
               ".show cluster policy callout");
    expect_cmd(pw_kql_policy_command(".delete", "database ['D']", "merge", NULL),
               ".delete database ['D'] policy merge");
    expect_cmd(pw_kql_workload_group(".create-or-alter", "wg 1", "@'{}'"),
               ".create-or-alter workload_group ['wg 1'] @'{}'");
    expect_cmd(pw_kql_workload_group(".show", "wg", NULL), ".show workload_group ['wg']");
}

static void principals(void **state)
{
    (void)state;
    expect_cmd(pw_kql_show_principals("database ['db']"), ".show database ['db'] principals");
    expect_cmd(pw_kql_principal_change(".add", "database ['db']", "Admin", "aadapp=abc;contoso.com"),
               ".add database ['db'] admins ('aadapp=abc;contoso.com')");
    expect_cmd(pw_kql_principal_change(".add", "database ['db']", "UnrestrictedViewer", "aaduser=a@b.c"),
               ".add database ['db'] unrestrictedviewers ('aaduser=a@b.c')");
    expect_cmd(pw_kql_principal_change(".drop", "table ['T']", "Ingestor", "aaduser=a@b.c"),
               ".drop table ['T'] ingestors ('aaduser=a@b.c')");
    assert_null(pw_kql_principal_change(".add", "database ['db']", "Root", "aaduser=a@b.c"));
    assert_null(pw_kql_principal_change(".add", "database ['db']", "Admin", "aaduser=x') ; .drop table T //"));
    assert_null(pw_kql_principal_change(".add", "database ['db']", "Admin", "a\\b"));
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
        assert_null(pw_kql_entity(PW_SCOPE_TABLE, "db", bad[i], NULL, NULL));
        assert_null(pw_kql_entity(PW_SCOPE_DATABASE, bad[i], NULL, NULL, NULL));
        assert_null(pw_kql_entity(PW_SCOPE_TABLE, bad[i], "T", NULL, NULL));
        assert_null(pw_kql_entity(PW_SCOPE_COLUMN, "db", "T", NULL, bad[i]));
        assert_null(pw_kql_entity(PW_SCOPE_MATERIALIZED_VIEW, "db", NULL, bad[i], NULL));
        assert_null(pw_kql_workload_group(".show", bad[i], NULL));
        char buf[64];
        assert_int_equal(pw_kql_quote_name(bad[i], buf, sizeof buf), -1);
    }
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

/* The Policy cell read as JSON, whatever form it has; NULL for "not set". */
static void expect_policy(const char *cell, const char *want_json)
{
    json_t *v = answer(cell), *doc = (json_t *)1;
    char err[128];
    assert_int_equal(pw_kql_parse_policy(v, &doc, err, sizeof err), 0);
    if (!want_json) {
        assert_null(doc);
    } else {
        json_t *want = json_loads(want_json, JSON_DECODE_ANY, NULL);
        assert_true(json_equal(doc, want));
        json_decref(want);
    }
    json_decref(doc);
    json_decref(v);
}

static void parses_answers(void **state)
{
    (void)state;
    expect_policy("\"{\\\"SoftDeletePeriod\\\":\\\"365.00:00:00\\\"}\"",
                  "{\"SoftDeletePeriod\":\"365.00:00:00\"}");
    expect_policy("null", NULL);
    expect_policy("\"null\"", NULL);
    expect_policy("\"\"", NULL);
    /* a policy object directly in the cell (dynamic column) */
    expect_policy("{\"SoftDeletePeriod\":\"10.00:00:00\"}", "{\"SoftDeletePeriod\":\"10.00:00:00\"}");
    expect_policy("\"[1,2]\"", "[1,2]");

    json_t *v = answer("\"not json\""), *doc = NULL;
    char err[128] = "";
    assert_int_equal(pw_kql_parse_policy(v, &doc, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    json_decref(v);
    json_t *empty = json_loads("{\"Tables\":[]}", 0, NULL);
    assert_int_equal(pw_kql_parse_policy(empty, &doc, NULL, 0), -1);
    json_decref(empty);

    /* workload groups: a row, or none when the group does not exist */
    json_t *wg = json_loads("{\"Tables\":[{\"Columns\":[{\"ColumnName\":\"WorkloadGroupName\"},"
                            "{\"ColumnName\":\"WorkloadGroup\"}],\"Rows\":[[\"g\","
                            "\"{\\\"RequestLimitsPolicy\\\":{}}\"]]}]}",
                            0, NULL);
    assert_int_equal(pw_kql_parse_workload_group(wg, &doc, err, sizeof err), 0);
    assert_non_null(json_object_get(doc, "RequestLimitsPolicy"));
    json_decref(doc);
    json_array_clear(json_object_get(json_array_get(json_object_get(wg, "Tables"), 0), "Rows"));
    assert_int_equal(pw_kql_parse_workload_group(wg, &doc, err, sizeof err), 0);
    assert_null(doc);
    json_decref(wg);
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
