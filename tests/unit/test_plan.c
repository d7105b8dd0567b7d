/* test_plan.c: the exact requests/commands planned per operation, lane keys, and reading
 * before/after values from ARM, Kusto and principal-list answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pw/plan.h"
#include "pw/reply.h"
#include "pw/request.h"

#define SUB "22222222-2222-2222-2222-222222222222"
#define DB_PATH                                                                                    \
    "/subscriptions/" SUB "/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/"             \
    "mykustocluster/databases/"

static pw_config cfg;
static pw_request_checker *chk;

static int setup(void **state)
{
    (void)state;
    char err[256];
    memset(&cfg, 0, sizeof cfg);
    cfg.reply_topic = "r";
    cfg.schemas_dir = PW_SOURCE_DIR "/schemas";
    chk = pw_request_checker_new(&cfg, err, sizeof err);
    if (!chk) fail_msg("%s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pw_request_checker_free(chk);
    return 0;
}

static pw_request *decode(const char *ops)
{
    char text[4096];
    snprintf(
        text, sizeof text,
        "{\"schema\":\"adx-policy-request/v1\",\"id\":\"p1\",\"requestedBy\":\"plan@contoso.com\","
        "\"operations\":[%s]}",
        ops);
    pw_rejection rej;
    pw_request *req = pw_request_decode(chk, text, strlen(text), &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    return req;
}

#define ARM_T(db)                                                                                  \
    "{\"subscriptionId\":\"" SUB "\",\"resourceGroup\":\"testrg\",\"cluster\":\"mykustocluster\"," \
    "\"database\":\"" db "\"}"
#define KUSTO_T(db, extra)                                                                         \
    "{\"clusterUri\":\"https://MyKustoCluster.westus.kusto.windows.net\",\"database\":\"" db       \
    "\"" extra "}"

static void json_is(const json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("got %s, want %s", g, want_text);
    }
    json_decref(want);
}

static void plans_each_kind(void **state)
{
    (void)state;
    pw_request *req = decode("{\"kind\":\"database.retention\",\"target\":" ARM_T(
        "My DB") ",\"softDeletePeriod\":\"P2W\"},"
                 "{\"kind\":\"database.caching\",\"via\":\"kusto\",\"target\":" KUSTO_T(
                     "My DB",
                     "") ",\"hotCachePeriod\":\"PT36H\"},"
                         "{\"kind\":\"table.caching\",\"target\":" KUSTO_T(
                             "db",
                             ",\"table\":\"StormEvents\"") ",\"hotCachePeriod\":\"P5D\"},"
                                                           "{\"kind\":\"database.principal.add\","
                                                           "\"target\":" ARM_T(
                                                               "db") ",\"principal\":{\"role\":"
                                                                     "\"Admin\",\"name\":\"bot\","
                                                                     "\"type\":\"App\",\"appId\":"
                                                                     "\"AB-12\"}}");
    char err[256];
    pw_plan *plan = pw_plan_new(req, NULL, err, sizeof err);
    assert_non_null(plan);
    assert_int_equal(pw_plan_count(plan), 4);

    const pw_plan_op *p = pw_plan_op_at(plan, 0);
    assert_string_equal(p->lane, "mykustocluster/my db");
    assert_string_equal(p->read.method, "GET");
    assert_string_equal(p->read.path, DB_PATH "My%20DB");
    assert_string_equal(p->apply.method, "PATCH");
    json_is(p->apply.body,
            "{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"P14D\"}}");
    json_is(p->desired, "{\"softDeletePeriod\":\"P14D\"}");

    p = pw_plan_op_at(plan, 1); /* same database by the kusto route: the same lane */
    assert_string_equal(p->lane, "mykustocluster/my db");
    assert_string_equal(p->apply.cluster_uri, "https://mykustocluster.westus.kusto.windows.net");
    assert_string_equal(p->apply.database, "My DB");
    assert_string_equal(p->read.command, ".show database ['My DB'] policy caching");
    assert_string_equal(p->apply.command, ".alter database ['My DB'] policy caching hot = 36h");
    json_is(p->desired, "{\"hotCachePeriod\":\"P1DT12H\"}");

    p = pw_plan_op_at(plan, 2);
    assert_string_equal(p->lane, "mykustocluster/db/StormEvents");
    assert_string_equal(p->apply.command, ".alter table ['StormEvents'] policy caching hot = 5d");

    p = pw_plan_op_at(plan, 3);
    assert_string_equal(p->lane, "mykustocluster/db");
    assert_string_equal(p->read.method, "POST");
    assert_string_equal(p->read.path, DB_PATH "db/listPrincipals");
    assert_null(p->read.body);
    assert_string_equal(p->apply.path, DB_PATH "db/addPrincipals");
    json_is(
        p->apply.body,
        "{\"value\":[{\"role\":\"Admin\",\"name\":\"bot\",\"type\":\"App\",\"appId\":\"AB-12\"}]}");
    assert_int_equal(p->after_from_reread, 0); /* addPrincipals answers with the list */

    json_t *j = pw_reply_plan(plan, 0);
    json_is(j, "{\"read\":{\"route\":\"arm\",\"method\":\"GET\",\"path\":\"" DB_PATH "My%20DB\","
               "\"apiVersion\":\"2025-02-14\"},\"apply\":{\"route\":\"arm\",\"method\":\"PATCH\","
               "\"path\":\"" DB_PATH "My%20DB\",\"apiVersion\":\"2025-02-14\",\"body\":{\"kind\":"
               "\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"P14D\"}}}}");
    json_decref(j);
    j = pw_reply_plan(plan, 2);
    json_is(j, "{\"read\":{\"route\":\"kusto\",\"clusterUri\":\"https://"
               "mykustocluster.westus.kusto.windows.net\","
               "\"database\":\"db\",\"command\":\".show table ['StormEvents'] policy caching\"},"
               "\"apply\":{\"route\":\"kusto\",\"clusterUri\":\"https://"
               "mykustocluster.westus.kusto.windows.net\","
               "\"database\":\"db\",\"command\":\".alter table ['StormEvents'] policy caching hot "
               "= 5d\"}}");
    json_decref(j);
    assert_null(pw_reply_plan(plan, 4));

    /* values from answers */
    json_t *v = NULL;
    json_t *arm = json_loads(
        "{\"properties\":{\"softDeletePeriod\":\"P365D\",\"hotCachePeriod\":\"P31D\"}}", 0, NULL);
    assert_int_equal(pw_plan_value(pw_plan_op_at(plan, 0), arm, &v, err, sizeof err), 0);
    json_is(v, "{\"softDeletePeriod\":\"P365D\"}");
    json_decref(v);
    json_decref(arm);
    arm = json_loads("{\"properties\":{}}", 0, NULL);
    assert_int_equal(pw_plan_value(pw_plan_op_at(plan, 0), arm, &v, err, sizeof err), 0);
    json_is(v, "{\"softDeletePeriod\":null}");
    json_decref(v);
    json_decref(arm);
    arm = json_loads("{\"error\":{}}", 0, NULL);
    assert_int_equal(pw_plan_value(pw_plan_op_at(plan, 0), arm, &v, err, sizeof err), -1);
    json_decref(arm);

    json_t *kq = json_loads("{\"Tables\":[{\"Columns\":[{\"ColumnName\":\"Policy\"}],\"Rows\":"
                            "[[\"{\\\"DataHotSpan\\\":{\\\"Value\\\":\\\"1.12:00:00\\\"}}\"]]}]}",
                            0, NULL);
    assert_int_equal(pw_plan_value(pw_plan_op_at(plan, 1), kq, &v, err, sizeof err), 0);
    json_is(v, "{\"hotCachePeriod\":\"P1DT12H\"}");
    json_decref(v);
    json_decref(kq);

    json_t *list = json_loads(
        "{\"value\":[{\"role\":\"Admin\",\"name\":\"x\",\"type\":\"App\",\"appId\":\"zz\"},"
        "{\"role\":\"admin\",\"name\":\"Bot\",\"type\":\"App\",\"fqn\":\"aadapp=ab-12;tenant\"}]}",
        0, NULL);
    assert_int_equal(pw_plan_value(pw_plan_op_at(plan, 3), list, &v, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "principal"), "fqn")),
                        "aadapp=ab-12;tenant");
    json_decref(v);
    json_decref(list);
    list = json_loads(
        "{\"value\":[{\"role\":\"Viewer\",\"name\":\"bot\",\"type\":\"App\",\"appId\":\"AB-12\"}]}",
        0, NULL);
    assert_int_equal(pw_plan_value(pw_plan_op_at(plan, 3), list, &v, err, sizeof err), 0);
    json_is(v, "{\"principal\":null}"); /* another role is another assignment */
    json_decref(v);
    json_decref(list);

    pw_plan_free(plan);
    pw_request_free(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plans_each_kind),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
