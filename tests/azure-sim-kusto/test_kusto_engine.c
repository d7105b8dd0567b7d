/* test_kusto_engine.c: the Kusto engine's commands against a simulated cluster:
 * every policy command form, database mapping (ISO <-> timespan), inheritance,
 * quoting, injection, bounds, role commands and role checks. */
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
                  "{\"DataHotSpan\":\"31.00:00:00\",\"IndexHotSpan\":\"31.00:00:00\"}");
    expect_policy(".alter database mykustodatabase policy caching hot = 7d",
                  "{\"DataHotSpan\":\"7.00:00:00\",\"IndexHotSpan\":\"7.00:00:00\"}");
    assert_string_equal(db_field("hotCachePeriod"), "P7D");
    expect_policy(".alter database mykustodatabase policy caching hot = 90m",
                  "{\"DataHotSpan\":\"01:30:00\",\"IndexHotSpan\":\"01:30:00\"}");
    assert_string_equal(db_field("hotCachePeriod"), "PT1H30M");
    expect_policy(
        ".alter database mykustodatabase policy caching hot = 1d, hot_window = "
        "datetime(2021-01-01) .. datetime(2021-02-01)",
        "{\"DataHotSpan\":\"1.00:00:00\",\"IndexHotSpan\":\"1.00:00:00\",\"HotWindows\":"
        "[{\"MinDate\":\"2021-01-01T00:00:00.0000000Z\",\"MaxDate\":\"2021-02-01T00:00:00."
        "0000000Z\"}]}");
    assert_string_equal(db_field("hotCachePeriod"), "P1D");
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
    expect_policy(".alter table StormEvents policy caching hot = 12h",
                  "{\"DataHotSpan\":\"12:00:00\",\"IndexHotSpan\":\"12:00:00\"}");
    expect_policy(".alter table StormEvents policy caching hotdata = 2d hotindex = 1d",
                  "{\"DataHotSpan\":\"2.00:00:00\",\"IndexHotSpan\":\"1.00:00:00\"}");
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
    expect_policy(".alter table ['My Table'] policy caching hot = 1d",
                  "{\"DataHotSpan\":\"1.00:00:00\",\"IndexHotSpan\":\"1.00:00:00\"}");
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
                        "{\"DataHotSpan\":\"1.00:00:00\",\"IndexHotSpan\":\"1.00:00:00\","
                        "\"HotWindows\":[{\"MinDate\":\"2021-01-01T00:00:00.0000000Z\",\"MaxDate\":"
                        "\"2021-02-01T00:00:00.0000000Z\"},{\"MinDate\":\"2022-01-01T10:00:00."
                        "0000000Z\",\"MaxDate\":\"2022-01-02T00:00:00.0000000Z\"}]}");
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
    expect_policy(".alter materialized-view DailyStorms policy caching hot = 2d",
                  "{\"DataHotSpan\":\"2.00:00:00\",\"IndexHotSpan\":\"2.00:00:00\"}");
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
    assert_string_equal(cell(b, 0, 2),
                        "{\"DataHotSpan\":\"3.00:00:00\",\"IndexHotSpan\":\"3.00:00:00\"}");
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
        ".set table StormEvents admins none",
        ".set database mykustodatabase policy caching hot = 1d",
        ".alter table StormEvents policy ingestiontime yes",
        ".alter-merge table StormEvents policy ingestiontime true",
        ".alter database mykustodatabase policy ingestiontime true",
        ".add table StormEvents admins ('aadapp=x;y')",
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
