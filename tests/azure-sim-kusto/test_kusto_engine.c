/* test_kusto_engine.c: the Kusto engine's commands against a simulated cluster:
 * every policy command form, database mapping (ISO <-> timespan), inheritance,
 * quoting, injection, bounds, role commands and role checks; a data-driven walk over every
 * policy, scope and action of the operation catalogue (/work/spec/catalogue.md) with the
 * exact JSON .show answers; workload groups; table and view roles; the ignore-writes hook. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kusto_test_util.h"

#define DB "mykustodatabase"

static json_t *g_cluster;

static int setup(void **state)
{
    (void)state;
    g_cluster = test_cluster();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(g_cluster);
    g_cluster = NULL;
    return 0;
}

/* Runs as the database admin and expects 200; returns the body (caller frees). */
static json_t *ok(const char *csl)
{
    json_t *b = NULL;
    int st = run_as(g_cluster, &TEST_ADMIN, DB, csl, &b);
    if (st != 200) {
        char *s = json_dumps(b, JSON_COMPACT);
        fail_msg("%s -> %d %s", csl, st, s);
    }
    return b;
}

/* Expects status and error code; returns the body (caller frees). */
static json_t *err_as(const sim_kusto_caller *who, const char *db, const char *csl, int status,
                      const char *code)
{
    json_t *b = NULL;
    int st = run_as(g_cluster, who, db, csl, &b);
    if (st != status || !err_code(b) || strcmp(err_code(b), code)) {
        char *s = json_dumps(b, JSON_COMPACT);
        fail_msg("%s -> %d %s (wanted %d %s)", csl, st, s, status, code);
    }
    json_t *e = json_object_get(b, "error");
    assert_non_null(json_object_get(e, "message"));
    assert_non_null(json_object_get(e, "@type"));
    assert_non_null(json_object_get(e, "@message"));
    assert_true(json_is_boolean(json_object_get(e, "@permanent")));
    json_t *ctx = json_object_get(e, "@context");
    assert_string_equal(json_string_value(json_object_get(ctx, "clientRequestId")),
                        "KGC.execute;test");
    assert_string_equal(json_string_value(json_object_get(ctx, "activityId")), "act-1");
    assert_non_null(json_string_value(json_object_get(ctx, "timestamp")));
    return b;
}

static void expect_err(const char *csl, int status, const char *code)
{
    json_decref(err_as(&TEST_ADMIN, DB, csl, status, code));
}

/* Policy cell (row 0) of a command run as admin. */
static char *policy_of(const char *csl)
{
    json_t *b = ok(csl);
    const char *p = cell(b, 0, 2);
    char *copy = p ? strdup(p) : NULL;
    json_decref(b);
    return copy;
}

static void expect_policy(const char *csl, const char *expect)
{
    char *p = policy_of(csl);
    if (!expect) {
        if (p) fail_msg("%s: expected null Policy, got %s", csl, p);
        return;
    }
    if (!p || strcmp(p, expect)) fail_msg("%s:\n got  %s\n want %s", csl, p ? p : "null", expect);
    free(p);
}

static json_t *db_obj(const char *name)
{
    size_t i;
    json_t *d;
    json_array_foreach(
        json_object_get(g_cluster, "databases"), i,
        d) if (!strcmp(json_string_value(json_object_get(d, "name")), name)) return d;
    return NULL;
}

static const char *db_field(const char *field)
{
    return json_string_value(json_object_get(db_obj(DB), field));
}

/* ------------------------------------------------------------ database policies */

static void test_database_retention(void **state)
{
    (void)state;
    json_t *b = ok(".show database mykustodatabase policy retention");
    assert_int_equal(nrows(b), 1);
    assert_string_equal(cell(b, 0, 0), "RetentionPolicy");
    assert_string_equal(cell(b, 0, 1), "[mykustodatabase]");
    assert_string_equal(cell(b, 0, 2),
                        "{\"SoftDeletePeriod\":\"365.00:00:00\",\"Recoverability\":\"Enabled\"}");
    assert_string_equal(cell(b, 0, 3), "[\"StormEvents\",\"Logs\",\"My Table\"]");
    assert_string_equal(cell(b, 0, 4), "Database");
    json_decref(b);

    /* special syntax; database names are case-insensitive */
    expect_policy(".alter-merge database MyKustoDatabase policy retention softdelete = 10d",
                  "{\"SoftDeletePeriod\":\"10.00:00:00\",\"Recoverability\":\"Enabled\"}");
    assert_string_equal(db_field("softDeletePeriod"), "P10D");
    expect_policy(
        ".alter-merge database ['mykustodatabase'] policy retention recoverability = disabled",
        "{\"SoftDeletePeriod\":\"10.00:00:00\",\"Recoverability\":\"Disabled\"}");
    assert_string_equal(db_field("recoverability"), "Disabled");
    expect_policy(".alter-merge database mykustodatabase policy retention softdelete = 1.5h "
                  "recoverability = enabled",
                  "{\"SoftDeletePeriod\":\"01:30:00\",\"Recoverability\":\"Enabled\"}");
    assert_string_equal(db_field("softDeletePeriod"), "PT1H30M");
    expect_policy(".alter-merge database mykustodatabase policy retention softdelete = "
                  "time(1.12:00:00)",
                  "{\"SoftDeletePeriod\":\"1.12:00:00\",\"Recoverability\":\"Enabled\"}");
    assert_string_equal(db_field("softDeletePeriod"), "P1DT12H");

    /* J forms */
    expect_policy(".alter database mykustodatabase policy retention "
                  "@'{\"SoftDeletePeriod\":\"30.00:00:00\",\"Recoverability\":\"Disabled\"}'",
                  "{\"SoftDeletePeriod\":\"30.00:00:00\",\"Recoverability\":\"Disabled\"}");
    assert_string_equal(db_field("softDeletePeriod"), "P30D");
    expect_policy(".alter database mykustodatabase policy retention '{}'",
                  "{\"SoftDeletePeriod\":\"365000.00:00:00\",\"Recoverability\":\"Enabled\"}");
    assert_string_equal(db_field("softDeletePeriod"), "P365000D");
    expect_policy(".alter-merge database mykustodatabase policy retention "
                  "'{\"SoftDeletePeriod\":\"00:00:30.5\"}'",
                  "{\"SoftDeletePeriod\":\"00:00:30.5000000\",\"Recoverability\":\"Enabled\"}");
    assert_string_equal(db_field("softDeletePeriod"), "PT30.5S");

    /* .delete: no policy at that level */
    expect_policy(".delete database mykustodatabase policy retention", NULL);
    assert_null(db_field("softDeletePeriod"));
    expect_policy(".show database mykustodatabase policy retention", NULL);
}

static void test_database_caching(void **state)
{
    (void)state;
    expect_policy(".show database mykustodatabase policy caching",
                  "{\"DataHotSpan\":{\"Value\":\"31.00:00:00\"},\"IndexHotSpan\":{\"Value\":\"31."
                  "00:00:00\"}}");
    expect_policy(
        ".alter database mykustodatabase policy caching hot = 7d",
        "{\"DataHotSpan\":{\"Value\":\"7.00:00:00\"},\"IndexHotSpan\":{\"Value\":\"7.00:00:00\"}}");
    assert_string_equal(db_field("hotCachePeriod"), "P7D");
    expect_policy(
        ".alter database mykustodatabase policy caching hot = 90m",
        "{\"DataHotSpan\":{\"Value\":\"01:30:00\"},\"IndexHotSpan\":{\"Value\":\"01:30:00\"}}");
    assert_string_equal(db_field("hotCachePeriod"), "PT1H30M");
    expect_policy(
        ".alter database mykustodatabase policy caching hot = 1d, hot_window = "
        "datetime(2021-01-01) .. datetime(2021-02-01)",
        "{\"DataHotSpan\":{\"Value\":\"1.00:00:00\"},\"IndexHotSpan\":{\"Value\":"
        "\"1.00:00:00\"},\"HotWindows\":[{\"MinValue\":\"2021-01-01T00:00:00Z\",\"MaxValue\":"
        "\"2021-02-01T00:00:00Z\"}]}");
    assert_string_equal(db_field("hotCachePeriod"), "P1D");
    /* the windows live next to hotCachePeriod, in Kusto's form */
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(db_obj(DB), "hotWindows"), 0), "MinValue")),
        "2021-01-01T00:00:00Z");
    expect_policy(".delete database mykustodatabase policy caching", NULL);
    assert_null(db_field("hotCachePeriod"));
    expect_policy(".show database mykustodatabase policy caching", NULL);
    /* caching has no .alter-merge; a bare number is no timespan */
    expect_err(".alter-merge database mykustodatabase policy caching hot = 1d", 400,
               "BadRequest_SyntaxError");
    expect_err(".alter database mykustodatabase policy caching hot = 30", 400,
               "BadRequest_SyntaxError");
    expect_err(".alter database mykustodatabase policy caching hot = 1d, hot_window = "
               "datetime(2021-02-01) .. datetime(2021-01-01)",
               400, "General_BadRequest");
}

static void test_database_other_policies(void **state)
{
    (void)state;
    expect_policy(".show database mykustodatabase policy merge", NULL);
    expect_policy(".alter database mykustodatabase policy merge "
                  "'{\"RowCountUpperBoundForMerge\":16000000,\"MaxExtentsToMerge\":100,"
                  "\"Lookback\":{\"Kind\":\"Default\",\"CustomPeriod\":null}}'",
                  "{\"RowCountUpperBoundForMerge\":16000000,\"MaxExtentsToMerge\":100,"
                  "\"Lookback\":{\"Kind\":\"Default\",\"CustomPeriod\":null}}");
    expect_policy(".alter-merge database mykustodatabase policy merge '{\"MaxExtentsToMerge\":5}'",
                  "{\"RowCountUpperBoundForMerge\":16000000,\"MaxExtentsToMerge\":5,"
                  "\"Lookback\":{\"Kind\":\"Default\",\"CustomPeriod\":null}}");
    expect_policy(".alter database mykustodatabase policy ingestionbatching "
                  "'{\"MaximumBatchingTimeSpan\":\"00:00:30\"}'",
                  "{\"MaximumBatchingTimeSpan\":\"00:00:30\",\"MaximumNumberOfItems\":500,"
                  "\"MaximumRawDataSizeMB\":1024}");
    expect_policy(".alter database mykustodatabase policy streamingingestion disable",
                  "{\"IsEnabled\":false,\"HintAllocatedRate\":null}");
    expect_policy(".alter database mykustodatabase policy sharding "
                  "'{\"ShardEngineMaxRowCount\":750000}'",
                  "{\"ShardEngineMaxRowCount\":750000}");
    expect_policy(".alter database mykustodatabase policy extent_tags_retention "
                  "'[{\"TagPrefix\":\"drop-by:\",\"RetentionPeriod\":\"3.00:00:00\"}]'",
                  "[{\"TagPrefix\":\"drop-by:\",\"RetentionPeriod\":\"3.00:00:00\"}]");
    json_t *pol = json_object_get(db_obj(DB), "policies");
    assert_non_null(json_object_get(pol, "merge"));
    assert_non_null(json_object_get(pol, "sharding"));
    expect_policy(".delete database mykustodatabase policy merge", NULL);
    assert_null(json_object_get(pol, "merge"));
    /* policies without a database scope */
    expect_err(".alter database mykustodatabase policy update '[]'", 400, "BadRequest_SyntaxError");
    expect_err(".show database mykustodatabase policy auto_delete", 400, "BadRequest_SyntaxError");
}

static void test_database_wildcard(void **state)
{
    (void)state;
    json_t *b = NULL;
    assert_int_equal(
        run_as(g_cluster, &TEST_CLUSTER_ADMIN, NULL, ".show database * policy retention", &b), 200);
    assert_int_equal(nrows(b), 2);
    assert_string_equal(cell(b, 0, 1), "[mykustodatabase]");
    assert_string_equal(cell(b, 1, 1), "[otherdb]");
    assert_string_equal(cell(b, 1, 2),
                        "{\"SoftDeletePeriod\":\"30.00:00:00\",\"Recoverability\":\"Enabled\"}");
    json_decref(b);
    /* a viewer or admin of one database sees only that one */
    assert_int_equal(run_as(g_cluster, &TEST_ADMIN, DB, ".show database * policy caching", &b),
                     200);
    assert_int_equal(nrows(b), 1);
    json_decref(b);
    assert_int_equal(run_as(g_cluster, &TEST_VIEWER, DB, ".show database * policy caching", &b),
                     200);
    assert_int_equal(nrows(b), 1);
    json_decref(b);
}

/* ------------------------------------------------------------ table policies */

static void test_table_policies(void **state)
{
    (void)state;
    json_t *b = ok(".show table StormEvents policy retention");
    assert_int_equal(nrows(b), 1);
    assert_string_equal(cell(b, 0, 0), "RetentionPolicy");
    assert_string_equal(cell(b, 0, 1), "[mykustodatabase].[StormEvents]");
    assert_null(cell(b, 0, 2));
    assert_string_equal(cell(b, 0, 4), "Table");
    json_decref(b);

    expect_policy(".alter table StormEvents policy retention "
                  "@'{\"SoftDeletePeriod\":\"10.00:00:00\",\"Recoverability\":\"disabled\"}'",
                  "{\"SoftDeletePeriod\":\"10.00:00:00\",\"Recoverability\":\"Disabled\"}");
    expect_policy(".alter-merge table StormEvents policy retention softdelete = 30d",
                  "{\"SoftDeletePeriod\":\"30.00:00:00\",\"Recoverability\":\"Disabled\"}");
    expect_policy(
        ".alter table StormEvents policy caching hot = 12h",
        "{\"DataHotSpan\":{\"Value\":\"12:00:00\"},\"IndexHotSpan\":{\"Value\":\"12:00:00\"}}");
    expect_policy(
        ".alter table StormEvents policy caching hotdata = 2d hotindex = 1d",
        "{\"DataHotSpan\":{\"Value\":\"2.00:00:00\"},\"IndexHotSpan\":{\"Value\":\"1.00:00:00\"}}");
    expect_policy(".alter table StormEvents policy merge '{\"AllowRebuild\":true}'",
                  "{\"AllowRebuild\":true}");
    expect_policy(".alter-merge table StormEvents policy merge '{\"AllowMerge\":false}'",
                  "{\"AllowRebuild\":true,\"AllowMerge\":false}");
    expect_policy(".alter table StormEvents policy partitioning "
                  "'{\"PartitionKeys\":[{\"ColumnName\":\"TenantId\",\"Kind\":\"Hash\"}]}'",
                  "{\"PartitionKeys\":[{\"ColumnName\":\"TenantId\",\"Kind\":\"Hash\"}]}");
    expect_policy(".alter-merge table StormEvents policy partitioning "
                  "'{\"EffectiveDateTime\":\"2024-01-01\"}'",
                  "{\"PartitionKeys\":[{\"ColumnName\":\"TenantId\",\"Kind\":\"Hash\"}],"
                  "\"EffectiveDateTime\":\"2024-01-01T00:00:00.0000000Z\"}");
    expect_policy(".alter table StormEvents policy ingestionbatching "
                  "'{\"MaximumNumberOfItems\":20}'",
                  "{\"MaximumBatchingTimeSpan\":\"00:05:00\",\"MaximumNumberOfItems\":20,"
                  "\"MaximumRawDataSizeMB\":1024}");
    expect_policy(".alter-merge table StormEvents policy ingestionbatching "
                  "'{\"MaximumBatchingTimeSpan\":\"00:01:00\"}'",
                  "{\"MaximumBatchingTimeSpan\":\"00:01:00\",\"MaximumNumberOfItems\":20,"
                  "\"MaximumRawDataSizeMB\":1024}");
    expect_policy(".alter table StormEvents policy streamingingestion enable",
                  "{\"IsEnabled\":true,\"HintAllocatedRate\":null}");
    expect_policy(".alter table StormEvents policy streamingingestion "
                  "'{\"IsEnabled\":true,\"HintAllocatedRate\":2.5}'",
                  "{\"IsEnabled\":true,\"HintAllocatedRate\":2.5}");
    expect_policy(
        ".alter-merge table StormEvents policy streamingingestion '{\"IsEnabled\":false}'",
        "{\"IsEnabled\":false,\"HintAllocatedRate\":2.5}");
    expect_policy(".alter table StormEvents policy sharding '{\"ShardEngineMaxRowCount\":1000}'",
                  "{\"ShardEngineMaxRowCount\":1000}");
    expect_policy(".alter-merge table StormEvents policy sharding "
                  "'{\"ShardEngineMaxExtentSizeInMb\":512}'",
                  "{\"ShardEngineMaxRowCount\":1000,\"ShardEngineMaxExtentSizeInMb\":512}");
    expect_policy(".alter table StormEvents policy auto_delete "
                  "'{\"ExpiryDate\":\"2030-06-01\",\"DeleteIfNotEmpty\":true}'",
                  "{\"ExpiryDate\":\"2030-06-01T00:00:00.0000000Z\",\"DeleteIfNotEmpty\":true}");
    expect_policy(".alter table StormEvents policy extent_tags_retention "
                  "'[{\"TagPrefix\":\"ingest-by:\",\"RetentionPeriod\":\"1.00:00:00\"}]'",
                  "[{\"TagPrefix\":\"ingest-by:\",\"RetentionPeriod\":\"1.00:00:00\"}]");

    /* update: .alter replaces, .alter-merge appends */
    const char *u1 = "{\"IsEnabled\":true,\"Source\":\"Logs\",\"Query\":\"Logs | take 1\","
                     "\"IsTransactional\":false,\"PropagateIngestionProperties\":false}";
    const char *u2 = "{\"IsEnabled\":false,\"Source\":\"Logs\",\"Query\":\"Logs\","
                     "\"IsTransactional\":true,\"PropagateIngestionProperties\":false}";
    char want[1024];
    snprintf(want, sizeof want, "[%s]", u1);
    expect_policy(".alter table StormEvents policy update "
                  "@'[{\"IsEnabled\":true,\"Source\":\"Logs\",\"Query\":\"Logs | take 1\"}]'",
                  want);
    snprintf(want, sizeof want, "[%s,%s]", u1, u2);
    expect_policy(".alter-merge table StormEvents policy update "
                  "'[{\"Source\":\"Logs\",\"Query\":\"Logs\",\"IsTransactional\":true}]'",
                  want);
    snprintf(want, sizeof want, "[%s]", u2);
    expect_policy(".alter table StormEvents policy update "
                  "'[{\"Source\":\"Logs\",\"Query\":\"Logs\",\"IsTransactional\":true}]' "
                  "with (distributed = true)",
                  want);

    /* bare true/false policies */
    expect_policy(".alter table StormEvents policy ingestiontime true", "{\"IsEnabled\":true}");
    expect_policy(".alter table StormEvents policy restricted_view_access false",
                  "{\"IsEnabled\":false}");
    json_t *mb = ok(".alter tables (StormEvents, Logs) policy ingestiontime false");
    assert_int_equal(nrows(mb), 2);
    assert_string_equal(cell(mb, 1, 0), "IngestionTimePolicy");
    json_decref(mb);
    expect_policy(".delete table StormEvents policy ingestiontime", NULL);
    expect_policy(".delete table StormEvents policy restricted_view_access", NULL);

    /* .delete makes Policy null (the database's applies) */
    const char *kws[] = {"retention",    "caching",           "merge",
                         "partitioning", "ingestionbatching", "streamingingestion",
                         "sharding",     "auto_delete",       "extent_tags_retention",
                         "update"};
    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, ".delete table StormEvents policy %s", kws[i]);
        expect_policy(cmd, NULL);
        snprintf(cmd, sizeof cmd, ".show table StormEvents policy %s", kws[i]);
        expect_policy(cmd, NULL);
    }
    /* the database's own policy is untouched */
    expect_policy(".show database mykustodatabase policy retention",
                  "{\"SoftDeletePeriod\":\"365.00:00:00\",\"Recoverability\":\"Enabled\"}");
}

static void test_table_names_and_wildcard(void **state)
{
    (void)state;
    expect_policy(
        ".alter table ['My Table'] policy caching hot = 1d",
        "{\"DataHotSpan\":{\"Value\":\"1.00:00:00\"},\"IndexHotSpan\":{\"Value\":\"1.00:00:00\"}}");
    json_t *b = ok(".show table [\"My Table\"] policy caching");
    assert_string_equal(cell(b, 0, 1), "[mykustodatabase].[My Table]");
    json_decref(b);
    b = ok(".show table ['MYKUSTODATABASE'].['My Table'] policy caching");
    assert_string_equal(cell(b, 0, 1), "[mykustodatabase].[My Table]");
    assert_non_null(cell(b, 0, 2));
    json_decref(b);
    b = ok(".show table mykustodatabase.StormEvents policy caching");
    assert_string_equal(cell(b, 0, 1), "[mykustodatabase].[StormEvents]");
    json_decref(b);
    b = ok(".show table ['My' ' Table'] policy caching"); /* adjacent literals join */
    assert_string_equal(cell(b, 0, 1), "[mykustodatabase].[My Table]");
    json_decref(b);
    /* another database, qualified, from this context */
    assert_int_equal(run_as(g_cluster, &TEST_CLUSTER_ADMIN, DB,
                            ".alter table otherdb.T1 policy retention "
                            "'{\"SoftDeletePeriod\":\"1.00:00:00\"}'",
                            &b),
                     200);
    assert_string_equal(cell(b, 0, 1), "[otherdb].[T1]");
    json_decref(b);

    b = ok(".show table * policy caching");
    assert_int_equal(nrows(b), 3);
    assert_string_equal(cell(b, 0, 1), "[mykustodatabase].[StormEvents]");
    assert_null(cell(b, 0, 2));
    assert_string_equal(cell(b, 2, 1), "[mykustodatabase].[My Table]");
    assert_non_null(cell(b, 2, 2));
    json_decref(b);

    /* table names are case-sensitive */
    json_t *e = err_as(&TEST_ADMIN, DB, ".show table stormevents policy caching", 400,
                       "BadRequest_EntityNotFound");
    assert_string_equal(err_message(e), "Entity ID 'stormevents' of kind 'Table' was not found.");
    assert_true(json_is_true(json_object_get(json_object_get(e, "error"), "@permanent")));
    json_decref(e);
    expect_err(".show table ['Nope'] policy retention", 400, "BadRequest_EntityNotFound");
    expect_err(".alter table Nope policy caching hot = 1d", 400, "BadRequest_EntityNotFound");
    expect_err(".show table nodb.StormEvents policy retention", 400, "BadRequest_EntityNotFound");
}

static void test_multi_table(void **state)
{
    (void)state;
    json_t *b = ok(".alter tables (StormEvents, ['Logs']) policy caching hot = 1d, hot_window = "
                   "datetime(2021-01-01) .. datetime(2021-02-01), hot_window = "
                   "datetime(2022-01-01 10:00) .. datetime(2022-01-02)");
    assert_int_equal(nrows(b), 2);
    assert_string_equal(cell(b, 0, 1), "[mykustodatabase].[StormEvents]");
    assert_string_equal(cell(b, 1, 1), "[mykustodatabase].[Logs]");
    assert_string_equal(cell(b, 1, 2),
                        "{\"DataHotSpan\":{\"Value\":\"1.00:00:00\"},\"IndexHotSpan\":"
                        "{\"Value\":\"1.00:00:00\"},\"HotWindows\":[{\"MinValue\":"
                        "\"2021-01-01T00:00:00Z\",\"MaxValue\":\"2021-02-01T00:00:00Z\"},"
                        "{\"MinValue\":\"2022-01-01T10:00:00Z\",\"MaxValue\":"
                        "\"2022-01-02T00:00:00Z\"}]}");
    json_decref(b);
    b = ok(".alter tables (StormEvents, Logs) policy retention "
           "'{\"SoftDeletePeriod\":\"7.00:00:00\"}'");
    assert_int_equal(nrows(b), 2);
    json_decref(b);
    b = ok(".alter tables (StormEvents) policy merge '{\"MaxRangeInHours\":24}'");
    json_decref(b);
    b = ok(".alter tables (StormEvents, Logs) policy ingestionbatching '{}'");
    assert_int_equal(nrows(b), 2);
    json_decref(b);
    /* one unknown table: error, and nothing changed */
    expect_err(".alter tables (StormEvents, Missing) policy retention "
               "'{\"SoftDeletePeriod\":\"1.00:00:00\"}'",
               400, "BadRequest_EntityNotFound");
    expect_policy(".show table StormEvents policy retention",
                  "{\"SoftDeletePeriod\":\"7.00:00:00\",\"Recoverability\":\"Enabled\"}");
    b = ok(".alter-merge tables (StormEvents, Logs) policy ingestionbatching "
           "'{\"MaximumNumberOfItems\":7}'");
    assert_int_equal(nrows(b), 2);
    assert_string_equal(cell(b, 1, 2),
                        "{\"MaximumBatchingTimeSpan\":\"00:05:00\",\"MaximumNumberOfItems\":7,"
                        "\"MaximumRawDataSizeMB\":1024}");
    json_decref(b);
    expect_err(".alter-merge tables (StormEvents) policy merge '{}'", 400,
               "BadRequest_SyntaxError");
    expect_err(".alter tables (StormEvents) policy update '[]'", 400, "BadRequest_SyntaxError");
    expect_err(".alter tables () policy caching hot = 1d", 400, "BadRequest_SyntaxError");
    expect_err(".alter-merge tables (StormEvents) policy retention softdelete = 1d", 400,
               "BadRequest_SyntaxError");
}

static void test_materialized_view(void **state)
{
    (void)state;
    json_t *b = ok(".show materialized-view DailyStorms policy retention");
    assert_string_equal(cell(b, 0, 1), "[mykustodatabase].[DailyStorms]");
    assert_string_equal(cell(b, 0, 4), "MaterializedView");
    assert_null(cell(b, 0, 2));
    json_decref(b);
    /* .alter (not -merge) takes only J for retention */
    expect_err(".alter materialized-view DailyStorms policy retention softdelete = 5d", 400,
               "BadRequest_SyntaxError");
}

static void test_materialized_view_writes(void **state)
{
    (void)state;
    expect_policy(
        ".alter materialized-view DailyStorms policy caching hot = 2d",
        "{\"DataHotSpan\":{\"Value\":\"2.00:00:00\"},\"IndexHotSpan\":{\"Value\":\"2.00:00:00\"}}");
    expect_policy(".alter-merge materialized-view ['DailyStorms'] policy retention softdelete = 5d",
                  "{\"SoftDeletePeriod\":\"5.00:00:00\",\"Recoverability\":\"Enabled\"}");
    expect_policy(
        ".alter materialized-view DailyStorms policy partitioning '{\"PartitionKeys\":[]}'",
        "{\"PartitionKeys\":[]}");
    expect_policy(".delete materialized-view DailyStorms policy caching", NULL);
    json_t *e = err_as(&TEST_ADMIN, DB, ".show materialized-view Nope policy retention", 400,
                       "BadRequest_EntityNotFound");
    assert_string_equal(err_message(e),
                        "Entity ID 'Nope' of kind 'MaterializedView' was not found.");
    json_decref(e);
    expect_err(".alter materialized-view DailyStorms policy update '[]'", 400,
               "BadRequest_SyntaxError");
}

static void test_cluster_policies(void **state)
{
    (void)state;
    json_t *b = NULL;
    assert_int_equal(
        run_as(g_cluster, &TEST_CLUSTER_ADMIN, NULL, ".alter cluster policy caching hot = 3d", &b),
        200);
    assert_string_equal(cell(b, 0, 1), "");
    assert_string_equal(cell(b, 0, 3), "[\"mykustodatabase\",\"otherdb\"]");
    assert_string_equal(cell(b, 0, 4), "Cluster");
    assert_string_equal(
        cell(b, 0, 2),
        "{\"DataHotSpan\":{\"Value\":\"3.00:00:00\"},\"IndexHotSpan\":{\"Value\":\"3.00:00:00\"}}");
    json_decref(b);
    assert_int_equal(run_as(g_cluster, &TEST_CLUSTER_ADMIN, "",
                            ".alter-merge cluster policy sharding '{\"ShardEngineMaxRowCount\":5}'",
                            &b),
                     200);
    json_decref(b);
    assert_int_equal(
        run_as(g_cluster, &TEST_CLUSTER_ADMIN, NULL, ".delete cluster policy caching", &b), 200);
    assert_null(cell(b, 0, 2));
    json_decref(b);
    assert_int_equal(
        run_as(g_cluster, &TEST_CLUSTER_ADMIN, NULL, ".show cluster policy sharding", &b), 200);
    assert_string_equal(cell(b, 0, 2), "{\"ShardEngineMaxRowCount\":5}");
    json_decref(b);
    /* database admins are no cluster admins; retention has no cluster scope */
    json_decref(
        err_as(&TEST_ADMIN, DB, ".alter cluster policy caching hot = 1d", 403, "Forbidden"));
    json_decref(err_as(&TEST_CLUSTER_ADMIN, NULL, ".show cluster policy retention", 400,
                       "BadRequest_SyntaxError"));
    json_decref(err_as(&TEST_CLUSTER_ADMIN, NULL, ".delete cluster policy ingestionbatching", 400,
                       "BadRequest_SyntaxError"));
}

/* ------------------------------------------------------------ errors */

static void test_syntax_and_injection(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "   ",
        "show table StormEvents policy retention",
        ". show table StormEvents policy retention",
        ".show",
        ".show table",
        ".show table StormEvents",
        ".show table StormEvents policy",
        ".show table StormEvents policy nosuch",
        ".show table StormEvents; .drop table StormEvents",
        ".show table StormEvents policy retention;",
        ".show table StormEvents policy retention; .drop database mykustodatabase",
        ".show table StormEvents policy retention | where 1 == 1",
        ".show table StormEvents | take 1",
        ".show table StormEvents policy retention extra",
        ".show table ['StormEvents'] policy retention ['x']",
        ".alter table StormEvents policy caching hot = 1d; .delete table Logs policy caching",
        ".alter table StormEvents policy caching hot = 1d garbage",
        ".alter table StormEvents policy retention '{}' '{}' x",
        ".alter table StormEvents policy retention {\"SoftDeletePeriod\":\"1.00:00:00\"}",
        ".alter table StormEvents policy retention",
        ".alter table StormEvents policy caching '{\"DataHotSpan\":\"1.00:00:00\"}'",
        ".alter table StormEvents policy caching hot 1d",
        ".alter table StormEvents policy caching hotdata = 1d",
        ".alter table StormEvents policy caching hotdata = 1d hotindex 1d",
        ".alter table StormEvents policy caching hot = 1w",
        ".alter table StormEvents policy caching hot = -1d",
        ".alter table StormEvents policy caching hot = 1d, hot_window = datetime(2021-01-01)",
        ".alter table StormEvents policy caching hot = 1d, hot_window = datetime(2021-13-01) .. "
        "datetime(2021-12-01)",
        ".alter-merge table StormEvents policy retention softdelete = 1d recoverability = maybe",
        ".alter-merge table StormEvents policy retention softdelete",
        ".alter table Storm-Events policy caching hot = 1d",
        ".alter table ['StormEvents' policy caching hot = 1d",
        ".alter table StormEvents. policy caching hot = 1d",
        ".alter table a.b.c policy caching hot = 1d",
        ".drop table StormEvents",
        ".create table X (a:string)",
        ".show databases",
        ".set database mykustodatabase admins",
        ".set database mykustodatabase admins none none",
        ".set database mykustodatabase policy caching hot = 1d",
        ".alter table StormEvents policy ingestiontime yes",
        ".alter-merge table StormEvents policy ingestiontime true",
        ".alter database mykustodatabase policy ingestiontime true",
        ".add database mykustodatabase owners ('aadapp=x;y')",
        ".add database mykustodatabase admins 'aadapp=x;y'",
        ".add database mykustodatabase admins ('aadapp=x;y'",
        ".add database mykustodatabase admins ()",
        ".add database mykustodatabase admins ('aadapp=x;y') 'notes' extra",
        ".show database mykustodatabase principals; .drop database x",
        ".show database * principals",
        ".alter table StormEvents policy streamingingestion enable now",
        ".alter-merge table StormEvents policy streamingingestion enable",
        ".alter table StormEvents policy update '[]' with (",
        ".alter table StormEvents policy update '[]' with (a = )",
        ".show table StormEvents policy retention \x01",
        ".show table St\xc3\xb6rm policy retention",
        ".\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = err_as(&TEST_ADMIN, DB, bad[i], 400, "BadRequest_SyntaxError");
        assert_true(json_is_true(json_object_get(json_object_get(b, "error"), "@permanent")));
        json_decref(b);
    }
    /* nothing above changed the state */
    expect_policy(".show table Logs policy caching", NULL);
    expect_policy(".show table StormEvents policy caching", NULL);
    json_t *b = ok(".show database mykustodatabase principals");
    assert_int_equal(nrows(b), 2);
    json_decref(b);
    /* the syntax error says where */
    b = err_as(&TEST_ADMIN, DB, ".show table StormEvents; .drop", 400, "BadRequest_SyntaxError");
    assert_non_null(strstr(err_message(b), "';'"));
    assert_non_null(strstr(err_message(b), "[1,24]"));
    json_decref(b);
    /* comments and odd spacing are fine */
    json_decref(ok("  .show   table\tStormEvents\n policy   retention // why\n"));
}

static void test_bad_policy_values(void **state)
{
    (void)state;
    const char *bad[] = {
        ".alter table StormEvents policy retention '{bad'",
        ".alter table StormEvents policy retention '[]'",
        ".alter table StormEvents policy retention '\"x\"'",
        ".alter table StormEvents policy retention '{\"SoftDeletePeriod\":\"10 days\"}'",
        ".alter table StormEvents policy retention '{\"SoftDeletePeriod\":10}'",
        ".alter table StormEvents policy retention '{\"SoftDeletePeriod\":null}'",
        ".alter table StormEvents policy retention '{\"Recoverability\":\"Sometimes\"}'",
        ".alter table StormEvents policy retention '{\"a\":1,\"a\":2}'",
        ".alter table StormEvents policy retention '{\"SoftDeletePeriod\":\"1.00:00:00\"} x'",
        ".alter table StormEvents policy merge '{\"MaxExtentsToMerge\":-1}'",
        ".alter table StormEvents policy merge '{\"MaxExtentsToMerge\":\"5\"}'",
        ".alter table StormEvents policy merge '{\"AllowRebuild\":1}'",
        ".alter table StormEvents policy partitioning '{}'",
        ".alter table StormEvents policy ingestionbatching '{\"MaximumNumberOfItems\":1.5}'",
        ".alter table StormEvents policy streamingingestion '{\"HintAllocatedRate\":\"fast\"}'",
        ".alter table StormEvents policy auto_delete '{}'",
        ".alter table StormEvents policy auto_delete '{\"ExpiryDate\":\"soon\"}'",
        ".alter table StormEvents policy extent_tags_retention '{}'",
        ".alter table StormEvents policy extent_tags_retention '[{\"TagPrefix\":\"x\"}]'",
        ".alter table StormEvents policy extent_tags_retention '[1]'",
        ".alter table StormEvents policy update '{}'",
        ".alter table StormEvents policy update '[{\"Source\":\"Logs\"}]'",
        ".alter table StormEvents policy update '[{\"Source\":1,\"Query\":\"q\"}]'",
        ".alter table StormEvents policy sharding '{\"ShardEngineMaxRowCount\":true}'",
        ".alter table StormEvents policy retention ''",
        ".alter table StormEvents policy retention '\\u0000'",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_err(bad[i], 400, "General_BadRequest");
    expect_policy(".show table StormEvents policy retention", NULL);
    expect_policy(".show table StormEvents policy update", NULL);
}

static void test_unknown_context_database(void **state)
{
    (void)state;
    json_t *b = err_as(&TEST_ADMIN, "nosuchdb", ".show table StormEvents policy retention", 404,
                       "NotFound");
    assert_string_equal(err_message(b),
                        "Entity name 'nosuchdb' of kind 'Database' does not exist.");
    json_decref(b);
    /* database names match case-insensitively */
    json_t *ok_b = NULL;
    assert_int_equal(run_as(g_cluster, &TEST_ADMIN, "MYKUSTODATABASE",
                            ".show table StormEvents policy retention", &ok_b),
                     200);
    json_decref(ok_b);
    b = err_as(&TEST_ADMIN, DB, ".show database nosuchdb policy retention", 400,
               "BadRequest_EntityNotFound");
    assert_string_equal(err_message(b), "Entity ID 'nosuchdb' of kind 'Database' was not found.");
    json_decref(b);
    /* a table command with no database anywhere */
    json_decref(err_as(&TEST_ADMIN, NULL, ".show table StormEvents policy retention", 400,
                       "General_BadRequest"));
    json_decref(
        err_as(&TEST_ADMIN, "", ".show table * policy retention", 400, "General_BadRequest"));
}

static void test_bounds(void **state)
{
    (void)state;
    /* over the csl cap */
    size_t big = SIM_KUSTO_MAX_CSL + 100;
    char *s = malloc(big + 1);
    assert_non_null(s);
    memset(s, ' ', big);
    memcpy(s, ".show table StormEvents policy retention", 40);
    s[big] = '\0';
    expect_err(s, 400, "BadRequest_SyntaxError");

    /* names: 1024 characters are fine (not found), 1025 are not */
    char *cmd = malloc(3000);
    assert_non_null(cmd);
    char name[1100];
    memset(name, 'n', 1025);
    name[1024] = '\0';
    snprintf(cmd, 3000, ".show table ['%s'] policy retention", name);
    expect_err(cmd, 400, "BadRequest_EntityNotFound");
    name[1024] = 'n';
    name[1025] = '\0';
    snprintf(cmd, 3000, ".show table ['%s'] policy retention", name);
    expect_err(cmd, 400, "BadRequest_SyntaxError");
    /* multi-byte characters count as one each */
    char *wide = malloc(1024 * 2 + 1);
    assert_non_null(wide);
    for (int i = 0; i < 1024; i++)
        memcpy(wide + 2 * i, "\xc3\xa9", 2);
    wide[2048] = '\0';
    snprintf(cmd, 3000, ".show table ['%s'] policy retention", wide);
    expect_err(cmd, 400, "BadRequest_EntityNotFound");
    free(wide);
    /* NUL and control characters inside a bracketed name */
    expect_err(".show table ['a\\x00b'] policy retention", 400, "BadRequest_SyntaxError");
    expect_err(".show table ['a\\nb'] policy retention", 400, "BadRequest_SyntaxError");

    /* deeply nested JSON: refused, not recursed into */
    size_t depth = 20000;
    char *deep = malloc(2 * depth + 200);
    assert_non_null(deep);
    size_t n = (size_t)sprintf(deep, ".alter table StormEvents policy merge '");
    for (size_t i = 0; i < depth; i++)
        deep[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[n++] = ']';
    deep[n++] = '\'';
    deep[n] = '\0';
    expect_err(deep, 400, "General_BadRequest");
    n = (size_t)sprintf(deep, ".alter table StormEvents policy merge '");
    for (size_t i = 0; i < 40; i++)
        n += (size_t)sprintf(deep + n, "{\"a\":");
    n += (size_t)sprintf(deep + n, "1");
    for (size_t i = 0; i < 40; i++)
        deep[n++] = '}';
    deep[n++] = '\'';
    deep[n] = '\0';
    expect_err(deep, 400, "General_BadRequest");
    free(deep);

    /* too many tables in one list */
    size_t m = (size_t)sprintf(s, ".alter tables (");
    for (int i = 0; i < SIM_KUSTO_MAX_LIST + 1; i++)
        m += (size_t)sprintf(s + m, "%sT%d", i ? "," : "", i);
    sprintf(s + m, ") policy caching hot = 1d");
    expect_err(s, 400, "General_BadRequest");
    free(s);
    free(cmd);
}

/* Mutations of valid commands and random bytes: any answer, never a crash. */
static void test_no_crash(void **state)
{
    (void)state;
    const char *seeds[] = {
        ".alter tables (StormEvents, ['Logs']) policy caching hot = 1d, hot_window = "
        "datetime(2021-01-01) .. datetime(2021-02-01)",
        ".alter-merge table ['My Table'] policy retention softdelete = 10d recoverability = "
        "disabled",
        ".alter table StormEvents policy update @'[{\"Source\":\"Logs\",\"Query\":\"x\"}]' with "
        "(a=1)",
        ".add database mykustodatabase viewers ('aadapp=1;2', 'aaduser=a@b.c') skip-results 'n'",
        ".show database * policy retention",
        ".alter database mykustodatabase policy ingestionbatching "
        "```{\"MaximumNumberOfItems\":1}```",
        ".alter column ['StormEvents'].['State'] policy encoding type = 'Identifier'",
        ".alter table ['StormEvents'] policy roworder (['State'] asc, StartTime desc)",
        ".alter external table ['ExternalLogs'] policy row_level_security enable with (a=1) 'q'",
        ".alter cluster policy request_classification @'{\"IsEnabled\":true}' <|\n"
        "iff(request_properties.current_application == 'x', 'a', 'default')",
        ".create-or-alter workload_group ['g'] @'{\"RequestQueuingPolicy\":{\"IsEnabled\":true}}'",
        ".add table ['StormEvents'] admins ('aadapp=1;2') 'n'",
    };
    unsigned seed = 12345;
    char buf[512];
    for (int round = 0; round < 4000; round++) {
        const char *src = seeds[round % (sizeof seeds / sizeof seeds[0])];
        size_t len = strlen(src);
        memcpy(buf, src, len + 1);
        int edits = 1 + round % 4;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            switch ((seed >> 16) % 3) {
            case 0:
                buf[at] = (char)(seed >> 4);
                break; /* replace a byte */
            case 1:
                buf[at] = '\0';
                len = at ? at : 1;
                break; /* cut */
            default:
                buf[at] = "'\"[]();|.,=@`\\ "[(seed >> 5) % 15];
                break;
            }
        }
        json_t *b = NULL;
        const sim_kusto_caller *who = round % 2 ? &TEST_ADMIN : &TEST_CLUSTER_ADMIN;
        int st = run_as(g_cluster, who, round % 7 ? DB : NULL, buf, &b);
        assert_true(st == 200 || st == 400 || st == 403 || st == 404);
        assert_non_null(b);
        json_decref(b);
    }
}

/* ------------------------------------------------------------ roles */

static void test_principals(void **state)
{
    (void)state;
    json_t *b = ok(".show database mykustodatabase principals");
    json_t *cols = json_object_get(json_array_get(json_object_get(b, "Tables"), 0), "Columns");
    const char *names[] = {
        "Role",         "PrincipalType", "PrincipalDisplayName",    "PrincipalObjectId",
        "PrincipalFQN", "Notes",         "RoleAssignmentIdentifier"};
    assert_int_equal(json_array_size(cols), 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(cols, i), "ColumnName")), names[i]);
    assert_int_equal(nrows(b), 2);
    assert_string_equal(cell(b, 0, 0), "Database mykustodatabase Admin");
    assert_string_equal(cell(b, 0, 1), "AAD Application");
    assert_string_equal(cell(b, 0, 3), ADMIN_APP);
    assert_string_equal(cell(b, 0, 4), "aadapp=" ADMIN_APP ";" TENANT);
    char id[40];
    snprintf(id, sizeof id, "%s", cell(b, 0, 6));
    assert_int_equal(strlen(id), 36);
    json_decref(b);
    /* the assignment id is stable */
    b = ok(".show database mykustodatabase principals");
    assert_string_equal(cell(b, 0, 6), id);
    json_decref(b);

    b = ok(".add database mykustodatabase ingestors "
           "('aadapp=77777777-7777-7777-7777-777777777777;" TENANT
           "', 'AADUSER=someone@contoso.com') 'provisioned by worker'");
    assert_int_equal(nrows(b), 4);
    assert_string_equal(cell(b, 2, 0), "Database mykustodatabase Ingestor");
    assert_string_equal(cell(b, 2, 4), "aadapp=77777777-7777-7777-7777-777777777777;" TENANT);
    assert_string_equal(cell(b, 2, 5), "provisioned by worker");
    assert_string_equal(cell(b, 3, 1), "AAD User");
    assert_string_equal(cell(b, 3, 4), "aaduser=someone@contoso.com");
    json_decref(b);
    /* shared with ARM: the state entry has the ARM shape */
    json_t *p = json_array_get(json_object_get(db_obj(DB), "principals"), 2);
    assert_string_equal(json_string_value(json_object_get(p, "role")), "Ingestor");
    assert_string_equal(json_string_value(json_object_get(p, "type")), "App");
    assert_string_equal(json_string_value(json_object_get(p, "appId")),
                        "77777777-7777-7777-7777-777777777777");
    assert_string_equal(json_string_value(json_object_get(p, "tenantName")), TENANT);

    /* adding again is idempotent; skip-results answers no rows */
    b = ok(".add database ['mykustodatabase'] ingestors "
           "('aadapp=77777777-7777-7777-7777-777777777777;" TENANT "') skip-results");
    assert_int_equal(nrows(b), 0);
    json_decref(b);
    b = ok(".show database mykustodatabase principals");
    assert_int_equal(nrows(b), 4);
    json_decref(b);

    /* every role keyword */
    const char *roles[] = {"admins",    "users",   "viewers", "unrestrictedviewers",
                           "ingestors", "monitors"};
    const char *labels[] = {"Admin", "User", "Viewer", "UnrestrictedViewer", "Ingestor", "Monitor"};
    for (size_t i = 0; i < 6; i++) {
        char cmd[256], want[128];
        snprintf(cmd, sizeof cmd, ".add database mykustodatabase %s ('aadgroup=g%zu;" TENANT "')",
                 roles[i], i);
        b = ok(cmd);
        snprintf(want, sizeof want, "Database mykustodatabase %s", labels[i]);
        assert_string_equal(cell(b, nrows(b) - 1, 0), want);
        assert_string_equal(cell(b, nrows(b) - 1, 1), "AAD Group");
        json_decref(b);
        snprintf(cmd, sizeof cmd, ".drop database mykustodatabase %s ('aadgroup=g%zu;" TENANT "')",
                 roles[i], i);
        json_decref(ok(cmd));
    }
    /* drop; dropping someone absent is a no-op */
    b = ok(".drop database mykustodatabase ingestors ('aaduser=someone@contoso.com')");
    assert_int_equal(nrows(b), 3);
    json_decref(b);
    b = ok(".drop database mykustodatabase ingestors ('aaduser=someone@contoso.com')");
    assert_int_equal(nrows(b), 3);
    json_decref(b);
    /* the context database when the name is left out */
    b = ok(".add database monitors ('aadapp=88888888-8888-8888-8888-888888888888;" TENANT "')");
    assert_int_equal(nrows(b), 4);
    json_decref(b);

    /* .set replaces a role's members; none empties it */
    b = ok(".set database mykustodatabase viewers ('aadapp=v1;" TENANT "', 'aadapp=v2;" TENANT
           "') 'set'");
    assert_int_equal(nrows(b), 5); /* admin, ingestor app, monitor, v1, v2 (the old viewer gone) */
    for (size_t i = 0; i < nrows(b); i++)
        assert_true(strcmp(cell(b, i, 4), "aadapp=" VIEWER_APP ";" TENANT) != 0);
    json_decref(b);
    b = ok(".set database mykustodatabase viewers none skip-results");
    assert_int_equal(nrows(b), 0);
    json_decref(b);
    b = ok(".show database mykustodatabase principals");
    assert_int_equal(nrows(b), 3);
    json_decref(b);
    json_decref(
        err_as(&TEST_VIEWER, DB, ".set database mykustodatabase admins none", 403, "Forbidden"));

    /* bad FQNs */
    expect_err(".add database mykustodatabase admins ('bob')", 400, "General_BadRequest");
    expect_err(".add database mykustodatabase admins ('aadapp=abc')", 400, "General_BadRequest");
    expect_err(".add database mykustodatabase admins ('aadapp=;t')", 400, "General_BadRequest");
    expect_err(".add database mykustodatabase admins ('aadapp=a;t', 'nope=x')", 400,
               "General_BadRequest");
    expect_err(".add database nosuchdb admins ('aadapp=a;t')", 400, "BadRequest_EntityNotFound");
    b = ok(".show database mykustodatabase principals");
    assert_int_equal(nrows(b), 3);
    json_decref(b);
}

static void test_role_checks(void **state)
{
    (void)state;
    json_t *b = NULL;
    /* viewer: .show yes, writes no */
    assert_int_equal(
        run_as(g_cluster, &TEST_VIEWER, DB, ".show table StormEvents policy retention", &b), 200);
    json_decref(b);
    assert_int_equal(
        run_as(g_cluster, &TEST_VIEWER, DB, ".show database mykustodatabase principals", &b), 200);
    json_decref(b);
    b = err_as(&TEST_VIEWER, DB, ".alter table StormEvents policy caching hot = 1d", 403,
               "Forbidden");
    assert_true(json_is_true(json_object_get(json_object_get(b, "error"), "@permanent")));
    assert_non_null(strstr(err_message(b), VIEWER_APP));
    json_decref(b);
    json_decref(err_as(&TEST_VIEWER, DB, ".delete database mykustodatabase policy caching", 403,
                       "Forbidden"));
    json_decref(err_as(&TEST_VIEWER, DB,
                       ".add database mykustodatabase admins ('aadapp=" VIEWER_APP ";" TENANT "')",
                       403, "Forbidden"));
    /* stranger: nothing, and no hint whether a table exists */
    json_decref(
        err_as(&TEST_STRANGER, DB, ".show table StormEvents policy retention", 403, "Forbidden"));
    json_decref(
        err_as(&TEST_STRANGER, DB, ".show table NoSuchTable policy retention", 403, "Forbidden"));
    json_decref(
        err_as(&TEST_STRANGER, DB, ".show database mykustodatabase principals", 403, "Forbidden"));
    assert_int_equal(run_as(g_cluster, &TEST_STRANGER, DB, ".show database * policy caching", &b),
                     200);
    assert_int_equal(nrows(b), 0);
    json_decref(b);
    /* the database admin has no rights on another database */
    json_decref(err_as(&TEST_ADMIN, DB, ".alter table otherdb.T1 policy caching hot = 1d", 403,
                       "Forbidden"));
    json_decref(err_as(&TEST_ADMIN, "otherdb", ".show table T1 policy caching", 403, "Forbidden"));
    /* the cluster's AllDatabasesAdmin may do anything in any database */
    assert_int_equal(run_as(g_cluster, &TEST_CLUSTER_ADMIN, "otherdb",
                            ".alter table T1 policy caching hot = 1d", &b),
                     200);
    json_decref(b);
    assert_int_equal(run_as(g_cluster, &TEST_CLUSTER_ADMIN, DB,
                            ".add database otherdb admins ('aadapp=" STRANGER_APP ";" TENANT "')",
                            &b),
                     200);
    json_decref(b);
    /* ... which made the stranger an admin of otherdb */
    assert_int_equal(run_as(g_cluster, &TEST_STRANGER, "otherdb",
                            ".alter-merge table T1 policy retention softdelete = 2d", &b),
                     200);
    json_decref(b);
    /* a database principalAssignment (ARM) counts too */
    json_array_append_new(json_object_get(db_obj(DB), "principalAssignments"),
                          json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "pa", "principalId",
                                    STRANGER_APP, "role", "Viewer", "tenantId", TENANT,
                                    "principalType", "App"));
    assert_int_equal(
        run_as(g_cluster, &TEST_STRANGER, DB, ".show table StormEvents policy caching", &b), 200);
    json_decref(b);
    json_decref(err_as(&TEST_STRANGER, DB, ".alter table StormEvents policy caching hot = 1d", 403,
                       "Forbidden"));
    /* a caller without an app id */
    static const sim_kusto_caller nobody = {NULL, NULL};
    json_decref(err_as(&nobody, DB, ".show table StormEvents policy caching", 403, "Forbidden"));
    /* NULL caller: in-process, no checks */
    assert_int_equal(sim_kusto_execute(g_cluster, DB,
                                       ".alter table StormEvents policy caching hot = 1d", NULL,
                                       NULL, NULL, &b),
                     200);
    json_decref(b);
    /* dropping the admin's own role takes effect at once */
    json_decref(ok(".drop database mykustodatabase admins ('aadapp=" ADMIN_APP ";" TENANT "')"));
    json_decref(err_as(&TEST_ADMIN, DB, ".alter table StormEvents policy caching hot = 1d", 403,
                       "Forbidden"));
}

static void test_null_inputs(void **state)
{
    (void)state;
    json_t *b = NULL;
    assert_int_equal(sim_kusto_execute(g_cluster, DB, NULL, &TEST_ADMIN, NULL, NULL, &b), 400);
    json_decref(b);
    assert_int_equal(sim_kusto_execute(NULL, DB, ".show table StormEvents policy retention",
                                       &TEST_ADMIN, NULL, NULL, &b),
                     400);
    json_decref(b);
    /* request ids that are not UTF-8 (or very long) still give a JSON error body */
    char longid[2000];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    longid[5] = '\xff';
    assert_int_equal(sim_kusto_execute(g_cluster, DB, ".show table Nope policy retention",
                                       &TEST_ADMIN, longid, "\xc3", &b),
                     400);
    assert_string_equal(err_code(b), "BadRequest_EntityNotFound");
    const char *crid = json_string_value(json_object_get(
        json_object_get(json_object_get(b, "error"), "@context"), "clientRequestId"));
    assert_non_null(crid);
    assert_true(!strncmp(crid, "xxxxx?xx", 8));
    json_decref(b);
    json_t *empty = json_object();
    assert_int_equal(
        sim_kusto_execute(empty, DB, ".show database * policy retention", NULL, NULL, NULL, &b),
        404);
    json_decref(b);
    assert_int_equal(
        sim_kusto_execute(empty, NULL, ".show database * policy retention", NULL, NULL, NULL, &b),
        200);
    assert_int_equal(nrows(b), 0);
    json_decref(b);
    json_decref(empty);
}

/* ------------------------------------------------------------ the catalogue walk */

/* Entity text, EntityName and EntityType per scope, in the catalogue's order. */
enum { W_CLUSTER, W_DB, W_TABLE, W_MV, W_COLUMN, W_EXT, W_NSCOPES };
#define WC (1u << W_CLUSTER)
#define WD (1u << W_DB)
#define WT (1u << W_TABLE)
#define WM (1u << W_MV)
#define WL (1u << W_COLUMN)
#define WE (1u << W_EXT)
static const struct {
    const char *text, *name, *type;
} WSCOPE[W_NSCOPES] = {
    {"cluster", "", "Cluster"},
    {"database ['mykustodatabase']", "[mykustodatabase]", "Database"},
    {"table ['StormEvents']", "[mykustodatabase].[StormEvents]", "Table"},
    {"materialized-view ['DailyStorms']", "[mykustodatabase].[DailyStorms]", "MaterializedView"},
    {"column ['StormEvents'].['State']", "[mykustodatabase].[StormEvents].[State]", "Column"},
    {"external table ['ExternalLogs']", "[mykustodatabase].[ExternalLogs]", "ExternalTable"},
};

/* One row of the catalogue: a policy at some scopes with its actions (a = alter, m = merge,
 * d = delete), the value text of each write and the exact Policy JSON .show answers after. */
typedef struct walk_case {
    const char *kw, *policy_name;
    unsigned scopes;
    const char *actions;
    const char *alter_value, *alter_show;
    const char *merge_value, *merge_show;
} walk_case;

#define CACHING_5D                                                                                 \
    "{\"DataHotSpan\":{\"Value\":\"5.00:00:00\"},\"IndexHotSpan\":{\"Value\":\"5.00:00:00\"},"     \
    "\"HotWindows\":[{\"MinValue\":\"2021-01-01T00:00:00Z\",\"MaxValue\":\"2021-02-01T00:00:"      \
    "00Z\"}]}"
#define UPDATE_1                                                                                   \
    "{\"IsEnabled\":true,\"Source\":\"Logs\",\"Query\":\"Logs | take 1\",\"IsTransactional\":"     \
    "false,\"PropagateIngestionProperties\":false}"
#define UPDATE_2                                                                                   \
    "{\"IsEnabled\":false,\"Source\":\"Logs\",\"Query\":\"Logs\",\"IsTransactional\":false,"       \
    "\"PropagateIngestionProperties\":false}"
#define MI_ENTRY(usages)                                                                           \
    "[{\"ObjectId\":\"" MI_USER "\",\"ClientId\":\"c-user\",\"TenantId\":\"" TENANT "\","          \
    "\"DisplayName\":\"ingest-identity\",\"IsSystem\":false,\"AllowedUsages\":\"" usages "\"}]"
#define QWC(pct, lag)                                                                              \
    "{\"PercentageOfNodes\":" pct ",\"MinimumNumberOfNodes\":-1,\"MaximumNumberOfNodes\":-1,"      \
    "\"SuperSlackerNumberOfNodesThreshold\":-1,\"EnableMetadataPrefetch\":false,"                  \
    "\"MaximumLagAllowedInMinutes\":" lag ",\"RefreshPeriodInSeconds\":-1}"
#define CLASSIFY(enabled)                                                                          \
    "{\"ClassificationProperties\":[\"current_application\",\"request_type\"],"                    \
    "\"IsEnabled\":" enabled                                                                       \
    ",\"ClassificationFunction\":\"iff(request_properties.current_application == "                 \
    "\\\"Kusto.Explorer\\\" and request_properties.request_type == \\\"Query\\\",\\n    "          \
    "\\\"Ad-hoc queries\\\", \\\"default\\\")\"}"

static const walk_case WALK[] = {
    {"caching", "CachingPolicy", WC | WD | WT | WM | WL, "ad",
     "hot = 5d, hot_window = datetime(2021-01-01T00:00:00Z) .. datetime(2021-02-01T00:00:00Z)",
     CACHING_5D, NULL, NULL},
    {"retention", "RetentionPolicy", WD | WT | WM, "amd",
     "@'{\"SoftDeletePeriod\":\"30.00:00:00\",\"Recoverability\":\"Disabled\"}'",
     "{\"SoftDeletePeriod\":\"30.00:00:00\",\"Recoverability\":\"Disabled\"}", "softdelete = 10d",
     "{\"SoftDeletePeriod\":\"10.00:00:00\",\"Recoverability\":\"Disabled\"}"},
    {"merge", "MergePolicy", WD | WT | WM, "amd", "@'{\"MaxRangeInHours\":24}'",
     "{\"MaxRangeInHours\":24}", "@'{\"AllowRebuild\":false}'",
     "{\"MaxRangeInHours\":24,\"AllowRebuild\":false}"},
    {"partitioning", "PartitioningPolicy", WT | WM, "amd",
     "@'{\"PartitionKeys\":[{\"ColumnName\":\"State\",\"Kind\":\"Hash\"}]}'",
     "{\"PartitionKeys\":[{\"ColumnName\":\"State\",\"Kind\":\"Hash\"}]}",
     "@'{\"EffectiveDateTime\":\"2025-01-01\"}'",
     "{\"PartitionKeys\":[{\"ColumnName\":\"State\",\"Kind\":\"Hash\"}],\"EffectiveDateTime\":"
     "\"2025-01-01T00:00:00.0000000Z\"}"},
    {"ingestionbatching", "IngestionBatchingPolicy", WC, "am",
     "@'{\"MaximumBatchingTimeSpan\":\"00:01:00\"}'",
     "{\"MaximumBatchingTimeSpan\":\"00:01:00\",\"MaximumNumberOfItems\":500,"
     "\"MaximumRawDataSizeMB\":1024}",
     "@'{\"MaximumNumberOfItems\":20}'",
     "{\"MaximumBatchingTimeSpan\":\"00:01:00\",\"MaximumNumberOfItems\":20,"
     "\"MaximumRawDataSizeMB\":1024}"},
    {"ingestionbatching", "IngestionBatchingPolicy", WD | WT, "amd",
     "@'{\"MaximumBatchingTimeSpan\":\"00:01:00\"}'",
     "{\"MaximumBatchingTimeSpan\":\"00:01:00\",\"MaximumNumberOfItems\":500,"
     "\"MaximumRawDataSizeMB\":1024}",
     "@'{\"MaximumNumberOfItems\":20}'",
     "{\"MaximumBatchingTimeSpan\":\"00:01:00\",\"MaximumNumberOfItems\":20,"
     "\"MaximumRawDataSizeMB\":1024}"},
    {"ingestiontime", "IngestionTimePolicy", WT, "ad", "true", "{\"IsEnabled\":true}", NULL, NULL},
    {"update", "UpdatePolicy", WT, "amd",
     "@'[{\"IsEnabled\":true,\"Source\":\"Logs\",\"Query\":\"Logs | take 1\"}]'", "[" UPDATE_1 "]",
     "@'[{\"Source\":\"Logs\",\"Query\":\"Logs\"}]'", "[" UPDATE_1 "," UPDATE_2 "]"},
    {"streamingingestion", "StreamingIngestionPolicy", WC | WD | WT, "amd",
     "@'{\"IsEnabled\":true,\"HintAllocatedRate\":2.1}'",
     "{\"IsEnabled\":true,\"HintAllocatedRate\":2.1}", "@'{\"IsEnabled\":false}'",
     "{\"IsEnabled\":false,\"HintAllocatedRate\":2.1}"},
    {"streamingingestion", "StreamingIngestionPolicy", WD | WT, "ad", "enable",
     "{\"IsEnabled\":true,\"HintAllocatedRate\":null}", NULL, NULL},
    {"row_level_security", "RowLevelSecurityPolicy", WT | WM | WE, "ad",
     "enable 'StormEvents | where State == \\'TEXAS\\''",
     "{\"IsEnabled\":true,\"Query\":\"StormEvents | where State == 'TEXAS'\"}", NULL, NULL},
    {"restricted_view_access", "RestrictedViewAccessPolicy", WT, "ad", "true",
     "{\"IsEnabled\":true}", NULL, NULL},
    {"auto_delete", "AutoDeletePolicy", WT, "ad",
     "@'{\"ExpiryDate\":\"2030-01-01\",\"DeleteIfNotEmpty\":true}'",
     "{\"ExpiryDate\":\"2030-01-01T00:00:00.0000000Z\",\"DeleteIfNotEmpty\":true}", NULL, NULL},
    {"extent_tags_retention", "ExtentTagsRetentionPolicy", WD | WT, "ad",
     "@'[{\"TagPrefix\":\"drop-by:\",\"RetentionPeriod\":\"3.00:00:00\"}]'",
     "[{\"TagPrefix\":\"drop-by:\",\"RetentionPeriod\":\"3.00:00:00\"}]", NULL, NULL},
    {"sharding", "ShardingPolicy", WC | WD | WT, "amd", "@'{\"ShardEngineMaxRowCount\":750000}'",
     "{\"ShardEngineMaxRowCount\":750000}", "@'{\"ShardEngineMaxExtentSizeInMb\":1024}'",
     "{\"ShardEngineMaxRowCount\":750000,\"ShardEngineMaxExtentSizeInMb\":1024}"},
    {"encoding", "EncodingPolicy", WD | WT, "amd", "@'{\"EncodingPolicyType\":\"Identifier\"}'",
     "{\"EncodingPolicyType\":\"Identifier\"}", "@'{\"MaxValueSize\":1048576}'",
     "{\"EncodingPolicyType\":\"Identifier\",\"MaxValueSize\":1048576}"},
    {"encoding", "EncodingPolicy", WL, "ad", "type = 'Identifier'",
     "{\"EncodingType\":\"Identifier\"}", NULL, NULL},
    {"roworder", "RowOrderPolicy", WT, "amd", "(['State'] asc, ['StartTime'] desc)",
     "{\"OrderBy\":[{\"ColumnName\":\"State\",\"Order\":\"asc\"},{\"ColumnName\":\"StartTime\","
     "\"Order\":\"desc\"}]}",
     "(EventType asc, ['State'] desc)",
     "{\"OrderBy\":[{\"ColumnName\":\"State\",\"Order\":\"desc\"},{\"ColumnName\":\"StartTime\","
     "\"Order\":\"desc\"},{\"ColumnName\":\"EventType\",\"Order\":\"asc\"}]}"},
    {"query_acceleration", "QueryAccelerationPolicy", WE, "amd",
     "@'{\"IsEnabled\":true,\"Hot\":\"1.00:00:00\"}'",
     "{\"IsEnabled\":true,\"Hot\":\"1.00:00:00\",\"MaxAge\":\"00:05:00\"}",
     "@'{\"MaxAge\":\"00:10:00\"}'",
     "{\"IsEnabled\":true,\"Hot\":\"1.00:00:00\",\"MaxAge\":\"00:10:00\"}"},
    {"mirroring", "MirroringPolicy", WT, "amd", "@'{\"IsEnabled\":true}'",
     "{\"Format\":\"parquet\",\"IsEnabled\":true,\"Partitions\":null}", "@'{\"IsEnabled\":false}'",
     "{\"Format\":\"parquet\",\"IsEnabled\":false,\"Partitions\":null}"},
    {"managed_identity", "ManagedIdentityPolicy", WC | WD, "amd",
     "@'[{\"ObjectId\":\"" MI_USER "\",\"AllowedUsages\":\"NativeIngestion\"}]'",
     MI_ENTRY("NativeIngestion"),
     "@'[{\"ObjectId\":\"" MI_USER "\",\"AllowedUsages\":\"externaltable\"}]'",
     MI_ENTRY("NativeIngestion, ExternalTable")},
    {"callout", "CalloutPolicy", WC, "amd",
     "@'[{\"CalloutType\":\"webapi\",\"CalloutUriRegex\":\"en.wikipedia.org\",\"CanCall\":true}]'",
     "[{\"CalloutType\":\"webapi\",\"CalloutUriRegex\":\"en.wikipedia.org\",\"CanCall\":true}]",
     "@'[{\"CalloutType\":\"sql\",\"CalloutUriRegex\":\"db.example\",\"CanCall\":false}]'",
     "[{\"CalloutType\":\"webapi\",\"CalloutUriRegex\":\"en.wikipedia.org\",\"CanCall\":true},"
     "{\"CalloutType\":\"sql\",\"CalloutUriRegex\":\"db.example\",\"CanCall\":false}]"},
    {"capacity", "CapacityPolicy", WC, "am",
     "@'{\"ExportCapacity\":{\"ClusterMaximumConcurrentOperations\":10}}'", NULL,
     "@'{\"ExtentsPartitionCapacity\":{\"ClusterMaximumConcurrentOperations\":4}}'", NULL},
    {"sandbox", "SandboxPolicy", WC, "ad",
     "@'[{\"SandboxKind\":\"PythonExecution\",\"IsEnabled\":true,\"TargetCountPerNode\":4}]'",
     "[{\"SandboxKind\":\"PythonExecution\",\"IsEnabled\":true,\"TargetCountPerNode\":4,"
     "\"MaxCpuRatePerSandbox\":50,\"MaxMemoryMbPerSandbox\":20480}]",
     NULL, NULL},
    {"request_classification", "ClusterRequestClassificationPolicy", WC, "amd",
     "@'{\"IsEnabled\":true}' <|\n  iff(request_properties.current_application == "
     "\"Kusto.Explorer\" and request_properties.request_type == \"Query\",\n    \"Ad-hoc "
     "queries\", \"default\")\n",
     CLASSIFY("true"), "@'{\"IsEnabled\":false}'", CLASSIFY("false")},
    {"query_weak_consistency", "QueryWeakConsistencyPolicy", WC, "am",
     "@'{\"PercentageOfNodes\":10}'", QWC("10", "-1"), "@'{\"MaximumLagAllowedInMinutes\":10}'",
     QWC("10", "10")},
};

/* Every verb and scope where Kusto has the policy (a superset of the catalogue: Kusto also
 * has e.g. a column's .alter-merge of encoding). */
static const struct {
    const char *kw;
    unsigned alter, merge, del, show;
} KUSTO_VERBS[] = {
    {"caching", WC | WD | WT | WM | WL, 0, WC | WD | WT | WM | WL, WC | WD | WT | WM | WL},
    {"retention", WD | WT | WM, WD | WT | WM, WD | WT | WM, WD | WT | WM},
    {"merge", WD | WT | WM, WD | WT | WM, WD | WT | WM, WD | WT | WM},
    {"partitioning", WT | WM, WT | WM, WT | WM, WT | WM},
    {"ingestionbatching", WC | WD | WT, WC | WD | WT, WD | WT, WC | WD | WT},
    {"ingestiontime", WT, 0, WT, WT},
    {"update", WT, WT, WT, WT},
    {"streamingingestion", WC | WD | WT, WC | WD | WT, WC | WD | WT, WC | WD | WT},
    {"row_level_security", WT | WM | WE, 0, WT | WM | WE, WT | WM | WE},
    {"restricted_view_access", WT, 0, WT, WT},
    {"auto_delete", WT, 0, WT, WT},
    {"extent_tags_retention", WD | WT, 0, WD | WT, WD | WT},
    {"sharding", WC | WD | WT, WC | WD | WT, WC | WD | WT, WC | WD | WT},
    {"encoding", WD | WT | WL, WD | WT | WL, WD | WT | WL, WD | WT | WL},
    {"roworder", WT, WT, WT, WT},
    {"query_acceleration", WE, WE, WE, WE},
    {"mirroring", WT, WT, WT, WT},
    {"managed_identity", WC | WD, WC | WD, WC | WD, WC | WD},
    {"callout", WC, WC, WC, WC},
    {"capacity", WC, WC, 0, WC},
    {"sandbox", WC, 0, WC, WC},
    {"request_classification", WC, WC, WC, WC},
    {"query_weak_consistency", WC, WC, 0, WC},
};

static const char *const POLICY_COLUMNS[] = {"PolicyName", "EntityName", "Policy", "ChildEntities",
                                             "EntityType"};

/* Runs csl as the cluster admin (cluster scope: no database, as the worker sends it). */
static json_t *walk_run(int scope, const char *csl, int *status)
{
    json_t *b = NULL;
    *status = run_as(g_cluster, &TEST_CLUSTER_ADMIN, scope == W_CLUSTER ? NULL : DB, csl, &b);
    return b;
}

/* The answer is the 5-column policy table, row 0 of this entity, Policy = want (NULL:
 * null; "=" followed by JSON: compared as JSON). */
static void walk_expect(const walk_case *w, int scope, const char *csl, const char *want)
{
    int st;
    json_t *b = walk_run(scope, csl, &st);
    char *dump = json_dumps(b, JSON_COMPACT);
    if (st != 200) fail_msg("%s -> %d %s", csl, st, dump);
    json_t *cols = json_object_get(json_array_get(json_object_get(b, "Tables"), 0), "Columns");
    assert_int_equal(json_array_size(cols), 5);
    for (size_t i = 0; i < 5; i++) {
        const char *want_col = POLICY_COLUMNS[i];
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(cols, i), "ColumnName")), want_col);
    }
    if (strcmp(cell(b, 0, 0), w->policy_name) || strcmp(cell(b, 0, 1), WSCOPE[scope].name) ||
        strcmp(cell(b, 0, 4), WSCOPE[scope].type))
        fail_msg("%s: row %s", csl, dump);
    const char *got = cell(b, 0, 2);
    if (!want && got) fail_msg("%s: Policy should be null, is %s", csl, got);
    if (want && want[0] == '=') {
        json_t *g = got ? json_loads(got, 0, NULL) : NULL, *x = json_loads(want + 1, 0, NULL);
        if (!g || !x || !json_equal(g, x)) fail_msg("%s:\n got  %s\n want %s", csl, got, want + 1);
        json_decref(g);
        json_decref(x);
    } else if (want && (!got || strcmp(got, want))) {
        fail_msg("%s:\n got  %s\n want %s", csl, got ? got : "null", want);
    }
    free(dump);
    json_decref(b);
}

/* The capacity policy the walk expects: the documented default with changes laid over. */
static char *capacity_want(const char *over1, const char *over2)
{
    json_t *v = sim_kusto_policy_default("capacity");
    const char *overs[] = {over1, over2};
    for (size_t i = 0; i < 2; i++) {
        if (!overs[i]) continue;
        json_t *o = json_loads(overs[i], 0, NULL), *m = sim_kusto_deep_merge(v, o);
        json_decref(o);
        json_decref(v);
        v = m;
    }
    char *s = json_dumps(v, JSON_COMPACT), *out = malloc(strlen(s) + 2);
    sprintf(out, "=%s", s);
    free(s);
    json_decref(v);
    return out;
}

static void test_catalogue_walk(void **state)
{
    (void)state;
    char csl[2048];
    for (size_t i = 0; i < sizeof WALK / sizeof WALK[0]; i++) {
        const walk_case *w = &WALK[i];
        for (int s = 0; s < W_NSCOPES; s++) {
            if (!(w->scopes & (1u << s))) continue;
            const char *ent = WSCOPE[s].text;
            char *cap1 = NULL, *cap2 = NULL;
            if (!strcmp(w->kw, "capacity")) {
                cap1 = capacity_want(
                    "{\"ExportCapacity\":{\"ClusterMaximumConcurrentOperations\":10}}", NULL);
                cap2 = capacity_want(
                    "{\"ExportCapacity\":{\"ClusterMaximumConcurrentOperations\":10}}",
                    "{\"ExtentsPartitionCapacity\":{"
                    "\"ClusterMaximumConcurrentOperations\":4}}");
            }
            const char *after_alter = cap1 ? cap1 : w->alter_show;
            const char *after_merge = cap2 ? cap2 : w->merge_show;
            /* .alter, then .show answers the same */
            snprintf(csl, sizeof csl, ".alter %s policy %s %s", ent, w->kw, w->alter_value);
            walk_expect(w, s, csl, after_alter);
            snprintf(csl, sizeof csl, ".show %s policy %s", ent, w->kw);
            walk_expect(w, s, csl, after_alter);
            if (strchr(w->actions, 'm')) {
                snprintf(csl, sizeof csl, ".alter-merge %s policy %s %s", ent, w->kw,
                         w->merge_value);
                walk_expect(w, s, csl, after_merge);
                snprintf(csl, sizeof csl, ".show %s policy %s", ent, w->kw);
                walk_expect(w, s, csl, after_merge);
            }
            if (strchr(w->actions, 'd')) {
                snprintf(csl, sizeof csl, ".delete %s policy %s", ent, w->kw);
                walk_expect(w, s, csl, NULL);
                snprintf(csl, sizeof csl, ".show %s policy %s", ent, w->kw);
                walk_expect(w, s, csl, NULL);
            }
            free(cap1);
            free(cap2);
        }
    }
    /* every verb and scope where Kusto lacks the policy does not parse */
    static const char *const verbs[] = {".show", ".alter", ".alter-merge", ".delete"};
    for (size_t i = 0; i < sizeof KUSTO_VERBS / sizeof KUSTO_VERBS[0]; i++) {
        unsigned masks[] = {KUSTO_VERBS[i].show, KUSTO_VERBS[i].alter, KUSTO_VERBS[i].merge,
                            KUSTO_VERBS[i].del};
        for (int v = 0; v < 4; v++) {
            for (int s = 0; s < W_NSCOPES; s++) {
                if (masks[v] & (1u << s)) continue;
                snprintf(csl, sizeof csl, "%s %s policy %s%s", verbs[v], WSCOPE[s].text,
                         KUSTO_VERBS[i].kw, v == 1 || v == 2 ? " @'{}'" : "");
                int st;
                json_t *b = walk_run(s, csl, &st);
                if (st != 400 || strcmp(err_code(b), "BadRequest_SyntaxError"))
                    fail_msg("%s -> %d %s (wanted a syntax error)", csl, st, err_code(b));
                json_decref(b);
            }
        }
    }
    /* the walk and Kusto's verbs agree: each catalogue action exists in Kusto */
    for (size_t i = 0; i < sizeof WALK / sizeof WALK[0]; i++) {
        size_t j = 0;
        while (strcmp(KUSTO_VERBS[j].kw, WALK[i].kw))
            j++;
        assert_true((WALK[i].scopes & KUSTO_VERBS[j].alter) == WALK[i].scopes);
        if (strchr(WALK[i].actions, 'm'))
            assert_true((WALK[i].scopes & KUSTO_VERBS[j].merge) == WALK[i].scopes);
        if (strchr(WALK[i].actions, 'd'))
            assert_true((WALK[i].scopes & KUSTO_VERBS[j].del) == WALK[i].scopes);
    }
}

/* Runs csl as the cluster admin with no database (cluster scope) and expects 200. */
static json_t *cl_ok(const char *csl)
{
    json_t *b = NULL;
    int st = run_as(g_cluster, &TEST_CLUSTER_ADMIN, NULL, csl, &b);
    if (st != 200) {
        char *s = json_dumps(b, JSON_COMPACT);
        fail_msg("%s -> %d %s", csl, st, s);
    }
    return b;
}

static void cl_err(const char *csl, int status, const char *code)
{
    json_decref(err_as(&TEST_CLUSTER_ADMIN, NULL, csl, status, code));
}

static json_t *table_obj(const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(db_obj(DB), "tables"), i, t)
    {
        if (!strcmp(json_string_value(json_object_get(t, "name")), name)) return t;
    }
    return NULL;
}

static void test_columns_and_external_tables(void **state)
{
    (void)state;
    /* unknown column / table / external table */
    json_t *e = err_as(&TEST_ADMIN, DB, ".show column ['StormEvents'].['Nope'] policy encoding",
                       400, "BadRequest_EntityNotFound");
    assert_string_equal(err_message(e), "Entity ID 'Nope' of kind 'Column' was not found.");
    json_decref(e);
    expect_err(".alter column ['Nope'].['State'] policy encoding type = 'Identifier'", 400,
               "BadRequest_EntityNotFound");
    expect_err(".alter column ['My Table'].['X'] policy caching hot = 1d", 400,
               "BadRequest_EntityNotFound");
    e = err_as(&TEST_ADMIN, DB, ".show external table ['Nope'] policy query_acceleration", 400,
               "BadRequest_EntityNotFound");
    assert_string_equal(err_message(e), "Entity ID 'Nope' of kind 'ExternalTable' was not found.");
    json_decref(e);
    /* columns are case-sensitive; Db.T.C qualifies */
    expect_err(".show column StormEvents.state policy encoding", 400, "BadRequest_EntityNotFound");
    expect_policy(".alter column mykustodatabase.StormEvents.State policy encoding type = "
                  "'bigobject'",
                  "{\"EncodingType\":\"BigObject\"}");
    /* 'Null' and a missing type both give the column its default back */
    expect_policy(".alter column ['StormEvents'].['State'] policy encoding type = 'Null'", NULL);
    expect_policy(".alter column ['StormEvents'].['State'] policy encoding type = 'Vector16'",
                  "{\"EncodingType\":\"Vector16\"}");
    expect_policy(".alter column ['StormEvents'].['State'] policy encoding", NULL);
    expect_err(".alter column ['StormEvents'].['State'] policy encoding type = 'Fast'", 400,
               "General_BadRequest");
    expect_err(".alter column ['StormEvents'].['State'] policy encoding type = Identifier", 400,
               "BadRequest_SyntaxError");
    expect_err(".alter column ['StormEvents'] policy encoding type = 'Identifier'", 400,
               "BadRequest_SyntaxError");
    /* Kusto's column .alter-merge takes J */
    expect_policy(".alter-merge column ['StormEvents'].['State'] policy encoding "
                  "@'{\"EncodingType\":\"identifier\"}'",
                  "{\"EncodingType\":\"Identifier\"}");
    /* a column kept as a bare name in the state becomes an object when it gets a policy */
    expect_policy(".alter column ['Logs'].['Level'] policy caching hot = 2d",
                  "{\"DataHotSpan\":{\"Value\":\"2.00:00:00\"},\"IndexHotSpan\":{\"Value\":"
                  "\"2.00:00:00\"}}");
    json_t *col = json_array_get(json_object_get(table_obj("Logs"), "columns"), 1);
    assert_true(json_is_object(col));
    assert_string_equal(json_string_value(json_object_get(col, "name")), "Level");
    expect_policy(".show column ['Logs'].['Message'] policy caching", NULL);
    /* roworder names existing columns only, also without brackets */
    expect_err(".alter table StormEvents policy roworder (Nope asc)", 400,
               "BadRequest_EntityNotFound");
    expect_err(".alter table StormEvents policy roworder (State asc, State desc)", 400,
               "General_BadRequest");
    expect_err(".alter table StormEvents policy roworder ()", 400, "BadRequest_SyntaxError");
    expect_err(".alter table StormEvents policy roworder (State up)", 400,
               "BadRequest_SyntaxError");
    expect_policy(".alter table StormEvents policy roworder (State)",
                  "{\"OrderBy\":[{\"ColumnName\":\"State\",\"Order\":\"asc\"}]}");
}

static void test_multi_table_roworder(void **state)
{
    (void)state;
    expect_err(".alter tables (StormEvents, Logs) policy roworder (['Timestamp'] desc)", 400,
               "BadRequest_EntityNotFound");
    expect_policy(".show table Logs policy roworder", NULL); /* nothing changed */
    json_t *b = ok(".alter-merge tables (Logs) policy roworder (['Timestamp'] desc)");
    assert_string_equal(cell(b, 0, 2),
                        "{\"OrderBy\":[{\"ColumnName\":\"Timestamp\",\"Order\":\"desc\"}]}");
    json_decref(b);
}

static void test_row_level_security(void **state)
{
    (void)state;
    const char *want = "{\"IsEnabled\":true,\"Query\":\"StormEvents | where State == 'X'\"}";
    /* any string literal form */
    expect_policy(".alter table StormEvents policy row_level_security enable "
                  "'StormEvents | where State == \\'X\\''",
                  want);
    expect_policy(".alter table StormEvents policy row_level_security enable "
                  "\"StormEvents | where State == 'X'\"",
                  want);
    expect_policy(".alter table StormEvents policy row_level_security enable "
                  "@'StormEvents | where State == ''X'''",
                  want);
    expect_policy(".alter table StormEvents policy row_level_security enable "
                  "h'StormEvents | where State == \\'X\\''",
                  want);
    expect_policy(".alter table StormEvents policy row_level_security enable "
                  "```StormEvents | where State == 'X'```",
                  want);
    expect_policy(".alter table StormEvents policy row_level_security disable with "
                  "(allowInnerOperators = true) 'T\\n| take 1'",
                  "{\"IsEnabled\":false,\"Query\":\"T\\n| take 1\"}");
    expect_policy(".alter materialized-view DailyStorms policy row_level_security enable 'q'",
                  "{\"IsEnabled\":true,\"Query\":\"q\"}");
    expect_policy(".alter external table ExternalLogs policy row_level_security enable 'q'",
                  "{\"IsEnabled\":true,\"Query\":\"q\"}");
    expect_err(".alter table StormEvents policy row_level_security enable ''", 400,
               "General_BadRequest");
    expect_err(".alter table StormEvents policy row_level_security 'q'", 400,
               "BadRequest_SyntaxError");
    expect_err(".alter table StormEvents policy row_level_security on 'q'", 400,
               "BadRequest_SyntaxError");
    expect_err(".alter-merge table StormEvents policy row_level_security enable 'q'", 400,
               "BadRequest_SyntaxError");
}

static void test_cluster_only_policies(void **state)
{
    (void)state;
    /* capacity and query_weak_consistency always exist: their defaults until altered */
    json_t *b = cl_ok(".show cluster policy capacity");
    json_t *v = json_loads(cell(b, 0, 2), 0, NULL), *d = sim_kusto_policy_default("capacity");
    assert_true(json_equal(v, d));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "IngestionCapacity"),
                                                        "ClusterMaximumConcurrentOperations")),
                     512);
    json_decref(v);
    json_decref(d);
    json_decref(b);
    b = cl_ok(".show cluster policy query_weak_consistency");
    assert_string_equal(cell(b, 0, 2), QWC("-1", "-1"));
    json_decref(b);
    cl_err(".alter cluster policy query_weak_consistency @'{\"PercentageOfNodes\":0}'", 400,
           "General_BadRequest");
    cl_err(".alter cluster policy query_weak_consistency @'{\"MinimumNumberOfNodes\":5,"
           "\"MaximumNumberOfNodes\":2}'",
           400, "General_BadRequest");
    cl_err(".alter cluster policy capacity @'{\"IngestionCapacity\":{"
           "\"CoreUtilizationCoefficient\":2}}'",
           400, "General_BadRequest");
    cl_err(".alter cluster policy capacity @'[]'", 400, "General_BadRequest");

    /* callout: the immutable entries come in a second row */
    b = cl_ok(".show cluster policy callout");
    assert_int_equal(nrows(b), 2);
    assert_null(cell(b, 0, 2));
    assert_string_equal(cell(b, 0, 4), "Cluster");
    assert_string_equal(cell(b, 1, 4), "Cluster immutable policy");
    assert_non_null(strstr(cell(b, 1, 2), "\"CalloutType\":\"kusto\""));
    json_decref(b);
    b = cl_ok(".alter-merge cluster policy callout @'[{\"CalloutType\":\"WebApi\","
              "\"CalloutUriRegex\":\"a\",\"CanCall\":true}]'");
    json_decref(b);
    b = cl_ok(".alter-merge cluster policy callout @'[{\"CalloutType\":\"webapi\","
              "\"CalloutUriRegex\":\"a\",\"CanCall\":false}]'");
    assert_string_equal(
        cell(b, 0, 2),
        "[{\"CalloutType\":\"webapi\",\"CalloutUriRegex\":\"a\",\"CanCall\":false}]");
    json_decref(b);
    cl_err(".alter cluster policy callout @'[{\"CalloutType\":\"ftp\",\"CalloutUriRegex\":\"a\","
           "\"CanCall\":true}]'",
           400, "General_BadRequest");
    cl_err(".alter cluster policy callout @'[{\"CalloutType\":\"sql\",\"CanCall\":true}]'", 400,
           "General_BadRequest");

    /* managed identities must be assigned to the cluster; "system" names the system one */
    b = cl_ok(".alter cluster policy managed_identity @'[{\"ObjectId\":\"system\","
              "\"AllowedUsages\":\"All\"}]'");
    assert_string_equal(cell(b, 0, 2), "[{\"ObjectId\":\"" MI_SYSTEM
                                       "\",\"ClientId\":\"c-sys\",\"TenantId\":\"" TENANT
                                       "\",\"DisplayName\":\"mykustocluster\",\"IsSystem\":true,"
                                       "\"AllowedUsages\":\"All\"}]");
    json_decref(b);
    cl_err(".alter cluster policy managed_identity @'[{\"ObjectId\":\"12345678-0000-0000-0000-"
           "000000000000\",\"AllowedUsages\":\"All\"}]'",
           400, "General_BadRequest");
    cl_err(".alter cluster policy managed_identity @'[{\"ObjectId\":\"system\","
           "\"AllowedUsages\":\"Everything\"}]'",
           400, "General_BadRequest");
    cl_err(".alter cluster policy managed_identity @'[{\"ObjectId\":\"system\"}]'", 400,
           "General_BadRequest");
    /* a database's managed_identity needs AllDatabasesAdmin too; its admin may read it */
    expect_err(".alter database mykustodatabase policy managed_identity @'[]'", 403, "Forbidden");
    expect_policy(".show database mykustodatabase policy managed_identity", NULL);

    /* sandbox checks */
    cl_err(".alter cluster policy sandbox @'[{\"SandboxKind\":\"JavaExecution\"}]'", 400,
           "General_BadRequest");
    cl_err(".alter cluster policy sandbox @'[{\"SandboxKind\":\"RExecution\","
           "\"MaxCpuRatePerSandbox\":101}]'",
           400, "General_BadRequest");
    cl_err(".alter cluster policy sandbox @'[{\"SandboxKind\":\"RExecution\"},{\"SandboxKind\":"
           "\"rexecution\"}]'",
           400, "General_BadRequest");

    /* query_acceleration checks */
    expect_err(".alter external table ExternalLogs policy query_acceleration "
               "@'{\"IsEnabled\":true,\"Hot\":\"12:00:00\"}'",
               400, "General_BadRequest");
    expect_err(".alter external table ExternalLogs policy query_acceleration "
               "@'{\"Hot\":\"2.00:00:00\"}'",
               400, "General_BadRequest");
    expect_policy(".alter external table ExternalLogs policy query_acceleration "
                  "@'{\"IsEnabled\":true,\"Hot\":\"2.00:00:00\",\"HotWindows\":[{\"MinValue\":"
                  "\"2025-07-07 07:00:00\",\"MaxValue\":\"2025-07-09 07:00:00\"}]}'",
                  "{\"IsEnabled\":true,\"Hot\":\"2.00:00:00\",\"MaxAge\":\"00:05:00\","
                  "\"HotWindows\":[{\"MinValue\":\"2025-07-07T07:00:00Z\",\"MaxValue\":"
                  "\"2025-07-09T07:00:00Z\"}]}");
    expect_err(".alter table StormEvents policy mirroring @'{\"Format\":\"csv\"}'", 400,
               "General_BadRequest");
}

static void test_request_classification(void **state)
{
    (void)state;
    /* merging into nothing, or setting the function by merge, is refused */
    cl_err(".alter-merge cluster policy request_classification @'{\"IsEnabled\":true}'", 400,
           "General_BadRequest");
    cl_err(".alter cluster policy request_classification @'{\"IsEnabled\":true}'", 400,
           "BadRequest_SyntaxError");
    cl_err(".alter cluster policy request_classification @'{\"IsEnabled\":true}' <|   \n ", 400,
           "General_BadRequest");
    json_t *b = cl_ok(".alter cluster policy request_classification '{\"IsEnabled\":true}' <|\n"
                      "case(current_principal_is_member_of('aadgroup=g@contoso.com'), 'First',\n"
                      "     request_properties.current_database == \"request_properties.x\", "
                      "'Second', request_properties.current_database == 'Db' and "
                      "request_properties.current_principal has 'aadapp=', 'Third', 'default')");
    json_t *v = json_loads(cell(b, 0, 2), 0, NULL);
    char *props = json_dumps(json_object_get(v, "ClassificationProperties"), JSON_COMPACT);
    assert_string_equal(props, "[\"current_database\",\"current_principal\"]");
    free(props);
    const char *fn = json_string_value(json_object_get(v, "ClassificationFunction"));
    assert_true(!strncmp(fn, "case(current_principal_is_member_of(", 36));
    assert_non_null(strstr(fn, "'First',\n     request_properties"));
    assert_true(fn[strlen(fn) - 1] == ')');
    json_decref(v);
    json_decref(b);
    cl_err(".alter-merge cluster policy request_classification "
           "@'{\"ClassificationFunction\":\"''default''\"}'",
           400, "General_BadRequest");
    cl_err(".alter-merge cluster policy request_classification @'{\"IsEnabled\":true}' <| x", 400,
           "BadRequest_SyntaxError");
    /* a '<|' anywhere else is a syntax error */
    expect_err(".alter table StormEvents policy merge '{}' <| x", 400, "BadRequest_SyntaxError");
    /* database admins are no cluster admins */
    expect_err(".show workload_groups", 403, "Forbidden");
    expect_err(".alter cluster policy request_classification '{}' <| 'default'", 403, "Forbidden");
}

static const char *wg_def(json_t *b, size_t row)
{
    return cell(b, row, 1);
}

static void test_workload_groups(void **state)
{
    (void)state;
    /* the default group exists always, also when the state lists no groups */
    json_t *b = cl_ok(".show workload_groups");
    json_t *cols = json_object_get(json_array_get(json_object_get(b, "Tables"), 0), "Columns");
    assert_int_equal(json_array_size(cols), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cols, 0), "ColumnName")),
                        "WorkloadGroupName");
    assert_string_equal(json_string_value(json_object_get(json_array_get(cols, 1), "ColumnName")),
                        "WorkloadGroup");
    assert_int_equal(nrows(b), 1);
    assert_string_equal(cell(b, 0, 0), "default");
    json_t *def = json_loads(wg_def(b, 0), 0, NULL), *builtin = sim_kusto_default_workload_group();
    assert_true(json_equal(def, builtin));
    json_decref(def);
    json_decref(builtin);
    json_decref(b);
    b = cl_ok(".show workload_group ['Nope']");
    assert_int_equal(nrows(b), 0);
    json_decref(b);
    assert_null(json_object_get(g_cluster, "workloadGroups")); /* reads change nothing */

    /* create-or-alter stores what it is given; policy names are read case-insensitively */
    b = cl_ok(
        ".create-or-alter workload_group ['My Group'] @'{\"RequestRateLimitPolicies\":["
        "{\"IsEnabled\":true,\"Scope\":\"principal\",\"LimitKind\":\"ConcurrentRequests\","
        "\"Properties\":{\"MaxConcurrentRequests\":30}}],\"RequestRateLimitsEnforcementpolicy\""
        ":{\"QueriesEnforcementLevel\":\"queryhead\",\"CommandsEnforcementLevel\":"
        "\"Cluster\"}}'");
    assert_int_equal(nrows(b), 1);
    assert_string_equal(cell(b, 0, 0), "My Group");
    assert_string_equal(wg_def(b, 0),
                        "{\"RequestRateLimitPolicies\":[{\"IsEnabled\":true,\"Scope\":"
                        "\"Principal\",\"LimitKind\":\"ConcurrentRequests\",\"Properties\":"
                        "{\"MaxConcurrentRequests\":30}}],\"RequestRateLimitsEnforcementPolicy\":"
                        "{\"QueriesEnforcementLevel\":\"QueryHead\",\"CommandsEnforcementLevel\":"
                        "\"Cluster\"}}");
    json_decref(b);
    b = cl_ok(".show workload_group ['My Group']");
    assert_int_equal(nrows(b), 1);
    json_decref(b);
    /* alter-merge merges policies member by member; an array is replaced */
    b = cl_ok(".alter-merge workload_group default @'{\"RequestLimitsPolicy\":{\"DataScope\":"
              "{\"IsRelaxable\":false,\"Value\":\"hotcache\"},\"MaxExecutionTime\":"
              "{\"IsRelaxable\":false,\"Value\":\"00:01:00\"}},\"RequestRateLimitPolicies\":[]}'");
    def = json_loads(wg_def(b, 0), 0, NULL);
    json_t *lim = json_object_get(def, "RequestLimitsPolicy");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(lim, "DataScope"), "Value")), "HotCache");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(lim, "MaxExecutionTime"), "Value")),
        "00:01:00");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(lim, "MaxResultRecords"), "Value")),
        500000);
    assert_int_equal(json_array_size(json_object_get(def, "RequestRateLimitPolicies")), 0);
    assert_non_null(json_object_get(def, "QueryConsistencyPolicy"));
    json_decref(def);
    json_decref(b);
    b = cl_ok(".show workload_groups");
    assert_int_equal(nrows(b), 2);
    assert_string_equal(cell(b, 0, 0), "default");
    assert_string_equal(cell(b, 1, 0), "My Group");
    json_decref(b);

    /* checks */
    cl_err(".alter-merge workload_group ['Nope'] @'{}'", 400, "BadRequest_EntityNotFound");
    cl_err(".drop workload_group Nope", 400, "BadRequest_EntityNotFound");
    cl_err(".drop workload_group default", 400, "General_BadRequest");
    cl_err(".drop workload_group internal", 400, "General_BadRequest");
    cl_err(".create-or-alter workload_group internal @'{}'", 400, "General_BadRequest");
    cl_err(".create-or-alter workload_group ['$materialized-views'] @'{}'", 400,
           "General_BadRequest");
    cl_err(".create-or-alter workload_group G @'[]'", 400, "General_BadRequest");
    cl_err(".create-or-alter workload_group G @'{\"RequestRateLimitPolicies\":[{\"IsEnabled\":"
           "true,\"Scope\":\"WorkloadGroup\",\"LimitKind\":\"ConcurrentRequests\",\"Properties\":"
           "{\"MaxConcurrentRequests\":10001}}]}'",
           400, "General_BadRequest");
    cl_err(".create-or-alter workload_group G "
           "@'{\"RequestLimitsPolicy\":{\"MaxFanoutNodesPercentage\":"
           "{\"IsRelaxable\":true,\"Value\":0}}}'",
           400, "General_BadRequest");
    cl_err(".create-or-alter workload_group G @'{\"QueryConsistencyPolicy\":{\"QueryConsistency\":"
           "{\"Value\":\"Eventual\"}}}'",
           400, "General_BadRequest");
    cl_err(".create-or-alter workload_group G", 400, "BadRequest_SyntaxError");
    cl_err(".alter workload_group G @'{}'", 400, "BadRequest_SyntaxError");
    cl_err(".drop workload_groups", 400, "BadRequest_SyntaxError");
    cl_err(".create-or-alter table StormEvents policy merge '{}'", 400, "BadRequest_SyntaxError");
    /* ten custom groups at most */
    for (int i = 0; i < 9; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, ".create-or-alter workload_group ['g%d'] @'{}'", i);
        json_decref(cl_ok(cmd));
    }
    cl_err(".create-or-alter workload_group ['one too many'] @'{}'", 400, "General_BadRequest");
    json_decref(cl_ok(".create-or-alter workload_group ['g0'] @'{}'")); /* updating is fine */
    /* drop answers the groups that remain */
    b = cl_ok(".drop workload_group ['My Group']");
    assert_int_equal(nrows(b), 10);
    for (size_t i = 0; i < nrows(b); i++)
        assert_true(strcmp(cell(b, i, 0), "My Group") != 0);
    json_decref(b);
    b = cl_ok(".show workload_group ['My Group']");
    assert_int_equal(nrows(b), 0);
    json_decref(b);
}

static void test_table_and_view_roles(void **state)
{
    (void)state;
    const char *stranger = "aadapp=" STRANGER_APP ";" TENANT;
    json_t *b = ok(".show table ['StormEvents'] principals");
    assert_int_equal(nrows(b), 0);
    json_decref(b);
    b = ok(".add table ['StormEvents'] admins ('aadapp=" STRANGER_APP ";" TENANT "') 'owner'");
    assert_int_equal(nrows(b), 1);
    assert_string_equal(cell(b, 0, 0), "Table mykustodatabase.StormEvents Admin");
    assert_string_equal(cell(b, 0, 1), "AAD Application");
    assert_string_equal(cell(b, 0, 3), STRANGER_APP);
    assert_string_equal(cell(b, 0, 4), stranger);
    assert_string_equal(cell(b, 0, 5), "owner");
    assert_int_equal(strlen(cell(b, 0, 6)), 36);
    json_decref(b);
    b = ok(".add table StormEvents ingestors ('aaduser=u@contoso.com')");
    assert_int_equal(nrows(b), 2);
    assert_string_equal(cell(b, 1, 0), "Table mykustodatabase.StormEvents Ingestor");
    assert_string_equal(cell(b, 1, 1), "AAD User");
    json_decref(b);
    /* the database's principals are not the table's */
    b = ok(".show database mykustodatabase principals");
    assert_int_equal(nrows(b), 2);
    json_decref(b);
    /* only admins and ingestors exist on tables, only admins on views */
    expect_err(".add table StormEvents viewers ('aaduser=u@contoso.com')", 400,
               "BadRequest_SyntaxError");
    expect_err(".add materialized-view DailyStorms ingestors ('aaduser=u@contoso.com')", 400,
               "BadRequest_SyntaxError");
    expect_err(".add table Nope admins ('aaduser=u@contoso.com')", 400,
               "BadRequest_EntityNotFound");
    expect_err(".add table StormEvents admins ('nobody')", 400, "General_BadRequest");

    /* the table admin may change that table's policies, not partitioning (Database Admin),
     * not another table, not the database */
    json_t *x = NULL;
    assert_int_equal(run_as(g_cluster, &TEST_STRANGER, DB,
                            ".alter table StormEvents policy caching hot = 1d", &x),
                     200);
    json_decref(x);
    assert_int_equal(
        run_as(g_cluster, &TEST_STRANGER, DB, ".show table StormEvents principals", &x), 200);
    json_decref(x);
    json_decref(err_as(&TEST_STRANGER, DB,
                       ".alter table StormEvents policy partitioning '{\"PartitionKeys\":[]}'", 403,
                       "Forbidden"));
    json_decref(
        err_as(&TEST_STRANGER, DB, ".alter table Logs policy caching hot = 1d", 403, "Forbidden"));
    json_decref(err_as(&TEST_STRANGER, DB,
                       ".alter database mykustodatabase policy caching hot = 1d", 403,
                       "Forbidden"));
    json_decref(err_as(&TEST_STRANGER, DB, ".show table Nope principals", 403, "Forbidden"));
    assert_int_equal(run_as(g_cluster, &TEST_STRANGER, DB,
                            ".alter column StormEvents.State policy encoding type = 'Identifier'",
                            &x),
                     200);
    json_decref(x);

    /* FQNs match case-insensitively, apps also by app id */
    b = ok(".drop table StormEvents ingestors ('AADUSER=U@CONTOSO.COM')");
    assert_int_equal(nrows(b), 1);
    json_decref(b);
    b = ok(".drop table ['StormEvents'] admins ('aadapp=" STRANGER_APP
           ";contoso.onmicrosoft.com')");
    assert_int_equal(nrows(b), 0);
    json_decref(b);
    json_decref(err_as(&TEST_STRANGER, DB, ".alter table StormEvents policy caching hot = 1d", 403,
                       "Forbidden"));

    /* materialized views: admins */
    b = ok(".add materialized-view ['DailyStorms'] admins ('aadgroup=g@contoso.com')");
    assert_int_equal(nrows(b), 1);
    assert_string_equal(cell(b, 0, 0), "Materialized View mykustodatabase.DailyStorms Admin");
    assert_string_equal(cell(b, 0, 1), "AAD Group");
    json_decref(b);
    b = ok(".show materialized-view ['DailyStorms'] principals");
    json_t *cols = json_object_get(json_array_get(json_object_get(b, "Tables"), 0), "Columns");
    assert_int_equal(json_array_size(cols), 7);
    assert_int_equal(nrows(b), 1);
    json_decref(b);
    b = ok(".drop materialized-view ['DailyStorms'] admins ('aadgroup=G@contoso.com')");
    assert_int_equal(nrows(b), 0);
    json_decref(b);
    expect_err(".show materialized-view ['Nope'] principals", 400, "BadRequest_EntityNotFound");
    /* .set on a table */
    b = ok(".set table StormEvents admins ('aadapp=a1;" TENANT "', 'aadapp=a2;" TENANT "')");
    assert_int_equal(nrows(b), 2);
    json_decref(b);
    b = ok(".set table StormEvents admins none skip-results");
    assert_int_equal(nrows(b), 0);
    json_decref(b);
    /* the database role command with a bracketed name, as the worker sends it */
    b = ok(".add database ['mykustodatabase'] monitors ('aadapp=m1;" TENANT "')");
    assert_int_equal(nrows(b), 3);
    json_decref(b);
    b = ok(".drop database ['mykustodatabase'] monitors ('AADAPP=M1;" TENANT "')");
    assert_int_equal(nrows(b), 2);
    json_decref(b);
}

/* The ignore-writes hook: a write that passed its checks answers success from the unchanged
 * state; reads and refused writes are not counted. */
static int g_ignore_budget, g_ignore_calls;
static int ignore_hook(void *arg)
{
    (void)arg;
    g_ignore_calls++;
    if (g_ignore_budget <= 0) return 0;
    g_ignore_budget--;
    return 1;
}

static json_t *hooked(const char *db, const char *csl, int *status)
{
    static const sim_kusto_hooks hooks = {ignore_hook, NULL};
    json_t *b = NULL;
    *status =
        sim_kusto_execute_hooked(g_cluster, db, csl, &TEST_CLUSTER_ADMIN, "c", "a", &hooks, &b);
    return b;
}

static void test_ignore_writes_hook(void **state)
{
    (void)state;
    int st;
    g_ignore_budget = 100;
    g_ignore_calls = 0;
    json_t *b = hooked(DB, ".show table StormEvents policy caching", &st);
    assert_int_equal(st, 200);
    json_decref(b);
    b = hooked(DB, ".alter table Nope policy caching hot = 1d", &st);
    assert_int_equal(st, 400);
    json_decref(b);
    assert_int_equal(g_ignore_calls, 0);
    /* the alter answers success with the current (unset) value and changes nothing */
    b = hooked(DB, ".alter table StormEvents policy caching hot = 1d", &st);
    assert_int_equal(st, 200);
    assert_null(cell(b, 0, 2));
    json_decref(b);
    b = hooked(DB, ".alter-merge database mykustodatabase policy retention softdelete = 1d", &st);
    assert_int_equal(st, 200);
    assert_string_equal(cell(b, 0, 2),
                        "{\"SoftDeletePeriod\":\"365.00:00:00\",\"Recoverability\":\"Enabled\"}");
    json_decref(b);
    assert_string_equal(db_field("softDeletePeriod"), "P365D");
    b = hooked(DB, ".delete database mykustodatabase policy caching", &st);
    assert_int_equal(st, 200);
    assert_non_null(cell(b, 0, 2));
    json_decref(b);
    b = hooked(DB, ".add database mykustodatabase admins ('aadapp=x1;" TENANT "')", &st);
    assert_int_equal(st, 200);
    assert_int_equal(nrows(b), 2);
    json_decref(b);
    b = hooked(NULL, ".create-or-alter workload_group G @'{}'", &st);
    assert_int_equal(st, 200);
    assert_int_equal(nrows(b), 0);
    json_decref(b);
    b = hooked(NULL, ".drop workload_group G", &st); /* it never came to exist */
    assert_int_equal(st, 400);
    json_decref(b);
    assert_int_equal(g_ignore_calls, 5);
    expect_policy(".show table StormEvents policy caching", NULL);
    /* with the budget spent, writes apply again */
    g_ignore_budget = 0;
    b = hooked(DB, ".alter table StormEvents policy caching hot = 1d", &st);
    assert_int_equal(st, 200);
    assert_non_null(cell(b, 0, 2));
    json_decref(b);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_database_retention),
        T(test_database_caching),
        T(test_database_other_policies),
        T(test_database_wildcard),
        T(test_table_policies),
        T(test_table_names_and_wildcard),
        T(test_multi_table),
        T(test_materialized_view),
        T(test_materialized_view_writes),
        T(test_cluster_policies),
        T(test_syntax_and_injection),
        T(test_bad_policy_values),
        T(test_unknown_context_database),
        T(test_bounds),
        T(test_no_crash),
        T(test_principals),
        T(test_role_checks),
        T(test_null_inputs),
        T(test_catalogue_walk),
        T(test_columns_and_external_tables),
        T(test_multi_table_roworder),
        T(test_row_level_security),
        T(test_cluster_only_policies),
        T(test_request_classification),
        T(test_workload_groups),
        T(test_table_and_view_roles),
        T(test_ignore_writes_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
