/* test_kusto_fixtures.c: the engine's v1 frames and OneApi error bodies have the
 * structure of real Kusto answers (the fixtures under PW_REFERENCE_DIR/kusto/fixtures):
 * same keys, same JSON types, same DataType/ColumnType pairs, same error codes.
 * Skips (exit 77) when the reference directory is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kusto_test_util.h"

#include <ctype.h>
#include <sys/stat.h>

#define DB "mykustodatabase"

static char g_dir[1024];

static json_t *fixture(const char *name)
{
    char path[1200];
    json_error_t e;
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    json_t *j = json_load_file(path, 0, &e);
    if (!j) fail_msg("cannot load %s: %s", path, e.text);
    return j;
}

/* Every key of want exists in got with the same JSON type, recursively (arrays:
 * each element of got against want's first element). */
static void same_shape(json_t *want, json_t *got, const char *path)
{
    if (json_typeof(want) != json_typeof(got) && !(json_is_boolean(want) && json_is_boolean(got)) &&
        !(json_is_null(got) || json_is_null(want)))
        fail_msg("%s: type %d in the fixture, %d here", path, json_typeof(want), json_typeof(got));
    if (json_is_object(want)) {
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
            char sub[512];
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            json_t *g = json_object_get(got, k);
            if (!g) fail_msg("%s: missing here", sub);
            same_shape(v, g, sub);
        }
    } else if (json_is_array(want) && json_array_size(want)) {
        size_t i;
        json_t *g;
        json_array_foreach(got, i, g)
        {
            char sub[512];
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            same_shape(json_array_get(want, 0), g, sub);
        }
    }
}

/* No key in got that the fixture lacks (at one object level). */
static void no_extra_keys(json_t *want, json_t *got, const char *path)
{
    const char *k;
    json_t *v;
    json_object_foreach(got, k, v) if (!json_object_get(want, k))
        fail_msg("%s.%s: not in the fixture", path, k);
}

static json_t *run(const sim_kusto_caller *who, const char *db, const char *csl, int status)
{
    json_t *cluster = test_cluster(), *b = NULL;
    int st = run_as(cluster, who, db, csl, &b);
    json_decref(cluster);
    if (st != status) fail_msg("%s -> %d, wanted %d", csl, st, status);
    return b;
}

/* A frame as the engine answers: checked against go_v1_success.json's first table
 * (which carries ColumnType) and the DataType-only mgmt fixture. */
static void check_frame(json_t *ours, size_t ncols)
{
    json_t *real = fixture("go_v1_success.json");
    json_t *mgmt = fixture("python_versionshowcommandresult.json");
    no_extra_keys(real, ours, "$");
    assert_int_equal(json_object_size(ours), 1);
    json_t *tables = json_object_get(ours, "Tables");
    assert_int_equal(json_array_size(tables), 1); /* management commands: one table */
    json_t *t = json_array_get(tables, 0);
    json_t *rt = json_array_get(json_object_get(real, "Tables"), 0);
    /* the table object: same keys, same name as a mgmt answer */
    same_shape(json_object_get(rt, "TableName"), json_object_get(t, "TableName"), "$.TableName");
    assert_string_equal(json_string_value(json_object_get(t, "TableName")),
                        json_string_value(json_object_get(
                            json_array_get(json_object_get(mgmt, "Tables"), 0), "TableName")));
    no_extra_keys(rt, t, "$.Tables[0]");
    const char *k;
    json_t *v;
    json_object_foreach(rt, k, v) assert_non_null(json_object_get(t, k));
    /* columns: the fixture's keys, and DataType/ColumnType pairs the fixtures use */
    json_t *cols = json_object_get(t, "Columns");
    assert_int_equal(json_array_size(cols), ncols);
    json_t *rcol = json_array_get(json_object_get(rt, "Columns"), 0);
    size_t i;
    json_t *col;
    json_array_foreach(cols, i, col)
    {
        same_shape(rcol, col, "$.Columns[i]");
        no_extra_keys(rcol, col, "$.Columns[i]");
        const char *dt = json_string_value(json_object_get(col, "DataType"));
        const char *ct = json_string_value(json_object_get(col, "ColumnType"));
        int seen = 0;
        size_t ti;
        json_t *ft;
        json_array_foreach(json_object_get(real, "Tables"), ti, ft)
        {
            size_t ci;
            json_t *fc;
            json_array_foreach(json_object_get(ft, "Columns"), ci, fc)
            {
                if (!strcmp(json_string_value(json_object_get(fc, "DataType")), dt)) {
                    assert_string_equal(json_string_value(json_object_get(fc, "ColumnType")), ct);
                    seen = 1;
                }
            }
        }
        if (!seen) fail_msg("DataType %s does not appear in the fixtures", dt);
    }
    /* rows: arrays as wide as the columns, cells string or null */
    json_t *row;
    json_array_foreach(json_object_get(t, "Rows"), i, row)
    {
        assert_true(json_is_array(row));
        assert_int_equal(json_array_size(row), ncols);
        size_t ci;
        json_t *cellv;
        json_array_foreach(row, ci, cellv)
            assert_true(json_is_string(cellv) || json_is_null(cellv));
    }
    json_decref(real);
    json_decref(mgmt);
}

static void test_policy_frames(void **state)
{
    (void)state;
    const char *cmds[] = {
        ".show database mykustodatabase policy retention",
        ".show table * policy caching",
        ".alter table StormEvents policy caching hot = 1d",
        ".alter-merge table ['Logs'] policy retention softdelete = 10d recoverability = disabled",
        ".delete table StormEvents policy caching",
        ".show materialized-view DailyStorms policy retention",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        json_t *b = run(&TEST_ADMIN, DB, cmds[i], 200);
        check_frame(b, 5);
        json_decref(b);
    }
}

static void test_role_frames(void **state)
{
    (void)state;
    json_t *b = run(&TEST_ADMIN, DB, ".show database mykustodatabase principals", 200);
    check_frame(b, 7);
    json_decref(b);
    b = run(&TEST_ADMIN, DB, ".add database mykustodatabase viewers ('aadapp=1;2') 'n'", 200);
    check_frame(b, 7);
    json_decref(b);
}

static int is_ts(const char *s)
{
    /* 2020-04-17T16:35:52.5095531Z */
    const char *pat = "dddd-dd-ddTdd:dd:dd.dddddddZ";
    if (!s || strlen(s) != strlen(pat)) return 0;
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i]) return 0;
    return 1;
}

/* An error body as the engine answers, against a real one. */
static void check_error(json_t *ours, json_t *real)
{
    no_extra_keys(real, ours, "$");
    json_t *e = json_object_get(ours, "error"), *re = json_object_get(real, "error");
    same_shape(re, e, "$.error");
    json_t *ctx = json_object_get(e, "@context");
    assert_true(is_ts(json_string_value(json_object_get(ctx, "timestamp"))));
    assert_true(
        is_ts(json_string_value(json_object_get(json_object_get(re, "@context"), "timestamp"))));
    assert_true(json_is_boolean(json_object_get(e, "@permanent")));
}

static void test_error_bodies(void **state)
{
    (void)state;
    json_t *enf = fixture("thirdparty_error_400_entity_not_found_function.json");
    json_t *bad = fixture("docs_error_400_general_badrequest_semantic.json");
    json_t *perm = fixture("python_error_400_wrong_endpoint_permanent_true.json");

    /* EntityNotFound: same code, message, @type as the real one; @message pattern */
    json_t *b = run(&TEST_ADMIN, DB, ".show table Nope policy retention", 400);
    check_error(b, enf);
    json_t *e = json_object_get(b, "error"), *re = json_object_get(enf, "error");
    const char *same[] = {"code", "message", "@type"};
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_object_get(e, same[i])),
                            json_string_value(json_object_get(re, same[i])));
    assert_true(json_equal(json_object_get(e, "@permanent"), json_object_get(re, "@permanent")));
    const char *rm = json_string_value(json_object_get(re, "@message"));
    assert_true(!strncmp(rm, "Entity ID '", 11) && strstr(rm, "' of kind '") &&
                strstr(rm, "' was not found."));
    assert_string_equal(json_string_value(json_object_get(e, "@message")),
                        "Entity ID 'Nope' of kind 'Table' was not found.");
    json_decref(b);

    /* General_BadRequest: code, message, @type as in the docs' example */
    b = run(&TEST_ADMIN, DB, ".alter table StormEvents policy retention '{bad'", 400);
    check_error(b, perm);
    e = json_object_get(b, "error");
    re = json_object_get(bad, "error");
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_object_get(e, same[i])),
                            json_string_value(json_object_get(re, same[i])));
    assert_true(!strncmp(json_string_value(json_object_get(e, "@message")),
                         "Request is invalid and cannot be processed: ", 44));
    json_decref(b);

    /* the other errors: same envelope */
    struct {
        const sim_kusto_caller *who;
        const char *db, *csl;
        int status;
        const char *code;
    } cases[] = {
        {&TEST_ADMIN, DB, ".show table StormEvents; .drop table StormEvents", 400,
         "BadRequest_SyntaxError"},
        {&TEST_ADMIN, "nosuchdb", ".show table StormEvents policy retention", 404, "NotFound"},
        {&TEST_STRANGER, DB, ".show table StormEvents policy retention", 403, "Forbidden"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        b = run(cases[i].who, cases[i].db, cases[i].csl, cases[i].status);
        check_error(b, perm);
        check_error(b, enf);
        assert_string_equal(json_string_value(json_object_get(json_object_get(b, "error"), "code")),
                            cases[i].code);
        assert_true(json_is_true(json_object_get(json_object_get(b, "error"), "@permanent")));
        json_decref(b);
    }
    json_decref(enf);
    json_decref(bad);
    json_decref(perm);
}

int main(void)
{
    struct stat st;
    snprintf(g_dir, sizeof g_dir, "%s/kusto/fixtures", PW_REFERENCE_DIR);
    if (stat(g_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("SKIP: %s is absent; the Kusto fixture-shape tests need it\n", g_dir);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_frames),
        cmocka_unit_test(test_role_frames),
        cmocka_unit_test(test_error_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
