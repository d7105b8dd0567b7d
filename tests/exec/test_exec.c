/* test_exec.c: the executor against the real azure-sim (forked on a free loopback port):
 * each operation through each route, checking reply events (validated against
 * schemas/reply.v1.json), azure-sim's state, and the exact URLs, bodies and KQL it logged;
 * dry runs; failure with skipped operations; lane ordering across requests and routes. */
#include <curl/curl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim_proc.h"

#include "pw/azure.h"
#include "pw/config.h"
#include "pw/exec.h"
#include "pw/log.h"
#include "pw/loop.h"
#include "pw/request.h"
#include "pw/schema.h"

#define SUB "22222222-2222-2222-2222-222222222222"
#define DB_PATH                                                                                    \
    "/subscriptions/" SUB "/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/"             \
    "mykustocluster/databases/mykustodatabase"
#define CLUSTER "https://mykustocluster.westus.kusto.windows.net"
#define KUSTO_HOST "mykustocluster.westus.kusto.windows.net"
#define ARM_TARGET                                                                                 \
    "{\"subscriptionId\":\"" SUB "\",\"resourceGroup\":\"testrg\",\"cluster\":\"mykustocluster\"," \
    "\"database\":\"mykustodatabase\"}"
#define KUSTO_DB_TARGET "{\"clusterUri\":\"" CLUSTER "\",\"database\":\"mykustodatabase\"}"
#define KUSTO_TABLE_TARGET(t)                                                                      \
    "{\"clusterUri\":\"" CLUSTER "\",\"database\":\"mykustodatabase\",\"table\":\"" t "\"}"

static test_sim sim;

static pw_config cfg;
static pw_request_checker *checker;
static pw_schema_registry *reply_reg;
static pw_schema *reply_schema;

/* ---- azure-sim process and its /_sim/ API ---- */

static json_t *sim_admin(const char *method, const char *path, const char *body)
{
    json_t *j = test_sim_admin_ok(&sim, method, path, body);
    if (!j) fail_msg("sim_admin %s %s failed", method, path);
    return j;
}

static void sim_admin_do(const char *method, const char *path, const char *body)
{
    json_decref(sim_admin(method, path, body));
}

static json_t *default_state;

static void sim_reset(void)
{
    sim_admin_do("DELETE", "/_sim/faults", NULL);
    char *st = json_dumps(default_state, JSON_COMPACT);
    sim_admin_do("PUT", "/_sim/state", st);
    free(st);
    sim_admin_do("PATCH", "/_sim/settings",
                 "{\"lroDurationMs\": 600, \"lroRetryAfterSeconds\": 1}");
    sim_admin_do("DELETE", "/_sim/requests", NULL);
}

static json_t *sim_database(void)
{
    json_t *st = sim_admin("GET", "/_sim/state", NULL);
    json_t *db = json_array_get(
        json_object_get(
            json_array_get(
                json_object_get(
                    json_array_get(
                        json_object_get(json_array_get(json_object_get(st, "subscriptions"), 0),
                                        "resourceGroups"),
                        0),
                    "clusters"),
                0),
            "databases"),
        0);
    json_incref(db);
    json_decref(st);
    return db;
}

static json_t *sim_table_policy(const char *table, const char *policy)
{
    json_t *db = sim_database();
    json_t *out = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(db, "tables"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "name")), table) == 0)
            out = json_incref(json_object_get(json_object_get(t, "policies"), policy));
    }
    json_decref(db);
    return out;
}

/* The logged requests other than AAD's and /_sim's, in order. */
static json_t *sim_calls(void)
{
    json_t *j = sim_admin("GET", "/_sim/requests", NULL);
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(j, "requests"), i, r)
    {
        const char *host = json_string_value(json_object_get(r, "host"));
        const char *path = json_string_value(json_object_get(r, "path"));
        if (!host || !path || strstr(host, "login.") || strncmp(path, "/_sim", 5) == 0) continue;
        json_array_append(out, r);
    }
    json_decref(j);
    return out;
}

static json_t *logged_body(const json_t *call)
{
    json_t *b = json_object_get(call, "body");
    if (json_is_string(b)) return json_loads(json_string_value(b), 0, NULL);
    return json_incref(b);
}

/* Index of the first logged call from `from` on with method, exact path (query included)
 * or host+csl; -1 when none. */
static long find_call(const json_t *calls, size_t from, const char *method, const char *path,
                      const char *csl)
{
    for (size_t i = from; i < json_array_size(calls); i++) {
        const json_t *c = json_array_get(calls, i);
        if (strcmp(json_string_value(json_object_get(c, "method")), method) != 0) continue;
        if (path && strcmp(json_string_value(json_object_get(c, "path")), path) != 0) continue;
        if (csl) {
            if (strcmp(json_string_value(json_object_get(c, "host")), KUSTO_HOST) != 0) continue;
            json_t *b = logged_body(c);
            int same = b && json_is_string(json_object_get(b, "csl")) &&
                       strcmp(json_string_value(json_object_get(b, "csl")), csl) == 0 &&
                       strcmp(json_string_value(json_object_get(b, "db")), "mykustodatabase") == 0;
            json_decref(b);
            if (!same) continue;
        }
        return (long)i;
    }
    return -1;
}

static size_t count_method(const json_t *calls, const char *method)
{
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "method")), method) == 0) n++;
    }
    return n;
}

static void dump_calls(const json_t *calls)
{
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        json_t *b = logged_body(c);
        char *bt = b ? json_dumps(b, JSON_COMPACT) : NULL;
        fprintf(stderr, "  %s %s %s %s\n", json_string_value(json_object_get(c, "method")),
                json_string_value(json_object_get(c, "host")),
                json_string_value(json_object_get(c, "path")), bt ? bt : "");
        free(bt);
        json_decref(b);
    }
}

/* ---- executor harness ---- */

#define MAX_EVENTS 512

typedef struct harness {
    pw_loop *loop;
    pw_azure *az;
    pw_exec *ex;
    json_t *events[MAX_EVENTS]; /* every event of every request, in callback order */
    size_t n_events;
    size_t terminals;
} harness;

static harness H;

static void on_event(void *ctx, json_t *event, int terminal)
{
    harness *h = ctx;
    assert_non_null(event);
    pw_schema_result res = {0};
    if (pw_schema_validate(reply_schema, event, &res) != PW_SCHEMA_VALID) {
        char *t = json_dumps(event, JSON_INDENT(1));
        fprintf(stderr, "event breaks reply.v1.json: %s\n", t);
        free(t);
        for (size_t i = 0; i < res.count; i++)
            fprintf(stderr, "  %s: %s\n", res.errors[i].instance_location, res.errors[i].message);
        pw_schema_result_clear(&res);
        fail();
    }
    const char *status = json_string_value(json_object_get(event, "status"));
    int is_terminal = strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0;
    assert_int_equal(terminal, is_terminal);
    if (getenv("PW_TEST_DUMP_EVENTS")) { /* for reading the events a person will see */
        char *t = json_dumps(event, JSON_COMPACT);
        fprintf(stderr, "EVENT %s\n", t);
        free(t);
    }
    assert_true(h->n_events < MAX_EVENTS);
    h->events[h->n_events++] = event;
    if (terminal) h->terminals++;
}

static unsigned max_attempts = 4;

static void harness_open(void)
{
    char err[256];
    memset(&H, 0, sizeof H);
    H.loop = pw_loop_new(err, sizeof err);
    assert_non_null(H.loop);
    pw_azure_config az;
    pw_azure_config_defaults(&az);
    test_sim_identity(&sim, &az);
    az.backoff_base_ms = 50;
    az.backoff_max_ms = 400;
    az.lro_poll_default_ms = 200;
    az.max_attempts = max_attempts;
    H.az = pw_azure_new(H.loop, &az, err, sizeof err);
    if (!H.az) fail_msg("pw_azure_new: %s", err);
    H.ex = pw_exec_new(H.loop, H.az, &cfg, err, sizeof err);
    assert_non_null(H.ex);
}

static void harness_close(void)
{
    pw_exec_free(H.ex);
    pw_azure_free(H.az);
    pw_loop_free(H.loop);
    for (size_t i = 0; i < H.n_events; i++)
        json_decref(H.events[i]);
    memset(&H, 0, sizeof H);
}

static void submit(const char *text)
{
    pw_rejection rej;
    pw_request *req = pw_request_decode(checker, text, strlen(text), &rej);
    if (!req) fail_msg("request rejected: %s %s", rej.code, rej.message);
    size_t before = H.n_events;
    pw_exec_submit(H.ex, req, on_event, &H);
    assert_int_equal(H.n_events, before); /* never an event from inside submit */
}

static void run_until_terminals(size_t want)
{
    uint64_t start = pw_loop_now_ms(H.loop);
    while (H.terminals < want && pw_loop_now_ms(H.loop) - start < 180000)
        assert_int_equal(pw_loop_run_once(H.loop, 100), 0);
    assert_int_equal(H.terminals, want);
    assert_int_equal(pw_exec_in_flight(H.ex), 0);
}

/* The events of one request, checked for sequence 1..n, accepted first, one terminal last. */
static size_t request_events(const char *id, json_t **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < H.n_events; i++) {
        if (strcmp(json_string_value(json_object_get(H.events[i], "requestId")), id) != 0) continue;
        assert_true(n < cap);
        out[n++] = H.events[i];
        assert_int_equal(json_integer_value(json_object_get(H.events[i], "sequence")), n);
    }
    assert_true(n >= 2);
    assert_string_equal(json_string_value(json_object_get(out[0], "status")), "accepted");
    for (size_t i = 1; i + 1 < n; i++)
        assert_string_equal(json_string_value(json_object_get(out[i], "status")), "running");
    return n;
}

static size_t event_pos(const char *id, const char *status)
{
    for (size_t i = 0; i < H.n_events; i++)
        if (strcmp(json_string_value(json_object_get(H.events[i], "requestId")), id) == 0 &&
            strcmp(json_string_value(json_object_get(H.events[i], "status")), status) == 0)
            return i;
    fail_msg("no %s event for %s", status, id);
    return 0;
}

static const json_t *terminal_op(json_t **evs, size_t n, size_t i)
{
    return json_array_get(json_object_get(evs[n - 1], "operations"), i);
}

static void check_value(const json_t *op, const char *which, const char *field, const char *want)
{
    const json_t *v = json_object_get(json_object_get(op, which), field);
    if (!want) {
        if (!json_is_null(v)) fail_msg("%s.%s: expected null", which, field);
        return;
    }
    if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0) {
        char *t = json_dumps(op, JSON_INDENT(1));
        fail_msg("%s.%s: expected %s in %s", which, field, want, t);
    }
}

static char *request_text(const char *id, int dry_run, const char *ops)
{
    char *t = malloc(strlen(ops) + strlen(id) + 320);
    sprintf(
        t,
        "{\"schema\":\"adx-policy-request/v1\",\"id\":\"%s\",\"requestedBy\":\"exec@contoso.com\","
        "\"dryRun\":%s,\"operations\":[%s]}",
        id, dry_run ? "true" : "false", ops);
    return t;
}

static void submit_ops(const char *id, int dry_run, const char *ops)
{
    char *t = request_text(id, dry_run, ops);
    submit(t);
    free(t);
}

/* ---- tests ---- */

static void database_retention_arm(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    submit_ops("r-arm-1", 0,
               "{\"kind\":\"database.retention\",\"target\":" ARM_TARGET
               ",\"softDeletePeriod\":\"P10D\"}");
    run_until_terminals(1);
    json_t *evs[64];
    size_t n = request_events("r-arm-1", evs, 64);
    assert_string_equal(json_string_value(json_object_get(evs[n - 1], "status")), "succeeded");
    /* accepted carries the plan */
    const json_t *plan =
        json_object_get(json_array_get(json_object_get(evs[0], "operations"), 0), "plan");
    assert_string_equal(json_string_value(json_object_get(json_object_get(plan, "apply"), "path")),
                        DB_PATH);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(plan, "apply"), "method")), "PATCH");
    const json_t *op = terminal_op(evs, n, 0);
    assert_string_equal(json_string_value(json_object_get(op, "status")), "succeeded");
    assert_string_equal(json_string_value(json_object_get(op, "route")), "arm");
    check_value(op, "before", "softDeletePeriod", "P365D");
    check_value(op, "after", "softDeletePeriod", "P10D");
    assert_true(json_integer_value(json_object_get(op, "attempts")) >= 1);
    assert_true(
        strlen(json_string_value(json_object_get(json_object_get(op, "azure"), "requestId"))) > 0);
    assert_true(strlen(json_string_value(
                    json_object_get(json_object_get(op, "azure"), "correlationId"))) > 0);
    /* at least one running event per LRO poll, with its status */
    int saw_lro = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        const json_t *lro =
            json_object_get(json_array_get(json_object_get(evs[i], "operations"), 0), "lro");
        if (lro && json_integer_value(json_object_get(lro, "polls")) >= 1) saw_lro = 1;
    }
    assert_true(saw_lro);

    json_t *db = sim_database();
    assert_string_equal(json_string_value(json_object_get(db, "softDeletePeriod")), "P10D");
    assert_string_equal(json_string_value(json_object_get(db, "hotCachePeriod")), "P31D");
    json_decref(db);
    json_t *calls = sim_calls();
    long get = find_call(calls, 0, "GET", DB_PATH "?api-version=2025-02-14", NULL);
    long patch = find_call(calls, 0, "PATCH", DB_PATH "?api-version=2025-02-14", NULL);
    if (get < 0 || patch < 0 || get > patch) {
        dump_calls(calls);
        fail_msg("expected GET then PATCH of the database");
    }
    json_t *body = logged_body(json_array_get(calls, (size_t)patch));
    json_t *want = json_loads(
        "{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"P10D\"}}", 0, NULL);
    assert_true(json_equal(body, want));
    json_decref(body);
    json_decref(want);
    assert_int_equal(count_method(calls, "PATCH"), 1);
    json_decref(calls);
    harness_close();
}

static void database_caching_arm(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    submit_ops("c-arm-1", 0,
               "{\"kind\":\"database.caching\",\"target\":" ARM_TARGET
               ",\"hotCachePeriod\":\"P1DT12H\"}");
    run_until_terminals(1);
    json_t *evs[64];
    size_t n = request_events("c-arm-1", evs, 64);
    const json_t *op = terminal_op(evs, n, 0);
    assert_string_equal(json_string_value(json_object_get(op, "status")), "succeeded");
    check_value(op, "before", "hotCachePeriod", "P31D");
    check_value(op, "after", "hotCachePeriod", "P1DT12H");
    json_t *calls = sim_calls();
    long patch = find_call(calls, 0, "PATCH", DB_PATH "?api-version=2025-02-14", NULL);
    assert_true(patch >= 0);
    json_t *body = logged_body(json_array_get(calls, (size_t)patch));
    json_t *want = json_loads(
        "{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"P1DT12H\"}}", 0, NULL);
    assert_true(json_equal(body, want));
    json_decref(body);
    json_decref(want);
    json_decref(calls);
    json_t *db = sim_database();
    assert_string_equal(json_string_value(json_object_get(db, "hotCachePeriod")), "P1DT12H");
    json_decref(db);
    harness_close();
}

static void kusto_routes(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    submit_ops("k-1", 0,
               "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                   "StormEvents") ",\"hotCachePeriod\":\"P5D\"},"
                                  "{\"kind\":\"table.retention\",\"target\":" KUSTO_TABLE_TARGET(
                                      "Logs") ",\"softDeletePeriod\":\"P1DT12H\"},"
                                              "{\"kind\":\"database.retention\",\"via\":\"kusto\","
                                              "\"target\":" KUSTO_DB_TARGET
                                              ",\"softDeletePeriod\":\"P10D\"},"
                                              "{\"kind\":\"database.caching\",\"via\":\"kusto\","
                                              "\"target\":" KUSTO_DB_TARGET
                                              ",\"hotCachePeriod\":\"PT12H\"}");
    run_until_terminals(1);
    json_t *evs[64];
    size_t n = request_events("k-1", evs, 64);
    if (strcmp(json_string_value(json_object_get(evs[n - 1], "status")), "succeeded") != 0) {
        char *t = json_dumps(evs[n - 1], JSON_INDENT(1));
        fail_msg("not succeeded: %s", t);
    }
    const json_t *op = terminal_op(evs, n, 0);
    assert_string_equal(json_string_value(json_object_get(op, "route")), "kusto");
    check_value(op, "before", "hotCachePeriod", NULL); /* no table-level policy yet */
    check_value(op, "after", "hotCachePeriod", "P5D");
    op = terminal_op(evs, n, 1);
    check_value(op, "after", "softDeletePeriod", "P1DT12H");
    op = terminal_op(evs, n, 2);
    check_value(op, "before", "softDeletePeriod", "P365D");
    check_value(op, "after", "softDeletePeriod", "P10D");
    op = terminal_op(evs, n, 3);
    check_value(op, "before", "hotCachePeriod", "P31D");
    check_value(op, "after", "hotCachePeriod", "PT12H");

    json_t *calls = sim_calls();
    const char *csl[] = {
        ".show table ['StormEvents'] policy caching",
        ".alter table ['StormEvents'] policy caching hot = 5d",
        ".show table ['Logs'] policy retention",
        ".alter-merge table ['Logs'] policy retention softdelete = 36h",
        ".show database ['mykustodatabase'] policy retention",
        ".alter-merge database ['mykustodatabase'] policy retention softdelete = 10d",
        ".show database ['mykustodatabase'] policy caching",
        ".alter database ['mykustodatabase'] policy caching hot = 12h",
    };
    long at = 0;
    for (size_t i = 0; i < sizeof csl / sizeof *csl; i++) {
        long k = find_call(calls, (size_t)at, "POST", "/v1/rest/mgmt", csl[i]);
        if (k < 0) {
            dump_calls(calls);
            fail_msg("no (or out of order) Kusto call: %s", csl[i]);
        }
        at = k + 1;
    }
    assert_int_equal(json_array_size(calls), 8); /* nothing through ARM */
    json_decref(calls);

    json_t *db = sim_database();
    assert_string_equal(json_string_value(json_object_get(db, "softDeletePeriod")), "P10D");
    assert_string_equal(json_string_value(json_object_get(db, "hotCachePeriod")), "PT12H");
    json_decref(db);
    json_t *pol = sim_table_policy("StormEvents", "caching");
    assert_non_null(pol);
    json_decref(pol);
    harness_close();
}

static void principal_add_arm(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    const char *ops =
        "{\"kind\":\"database.principal.add\",\"target\":" ARM_TARGET
        ",\"principal\":{\"role\":\"Viewer\",\"name\":\"deploy-bot\",\"type\":\"App\","
        "\"appId\":\"44444444-4444-4444-4444-444444444444\"}}";
    submit_ops("p-1", 0, ops);
    run_until_terminals(1);
    json_t *evs[64];
    size_t n = request_events("p-1", evs, 64);
    const json_t *op = terminal_op(evs, n, 0);
    if (strcmp(json_string_value(json_object_get(op, "status")), "succeeded") != 0) {
        char *t = json_dumps(op, JSON_INDENT(1));
        fail_msg("not succeeded: %s", t);
    }
    assert_true(json_is_null(json_object_get(json_object_get(op, "before"), "principal")));
    const json_t *after = json_object_get(json_object_get(op, "after"), "principal");
    assert_string_equal(json_string_value(json_object_get(after, "role")), "Viewer");
    json_t *calls = sim_calls();
    long list = find_call(calls, 0, "POST", DB_PATH "/listPrincipals?api-version=2025-02-14", NULL);
    long add = find_call(calls, 0, "POST", DB_PATH "/addPrincipals?api-version=2025-02-14", NULL);
    if (list < 0 || add < 0 || list > add) {
        dump_calls(calls);
        fail_msg("expected listPrincipals then addPrincipals");
    }
    /* addPrincipals answers with the list: no second listPrincipals */
    if (find_call(calls, (size_t)add + 1, "POST", DB_PATH "/listPrincipals?api-version=2025-02-14",
                  NULL) >= 0) {
        dump_calls(calls);
        fail_msg("listPrincipals again after addPrincipals");
    }
    json_t *body = logged_body(json_array_get(calls, (size_t)add));
    json_t *want =
        json_loads("{\"value\":[{\"role\":\"Viewer\",\"name\":\"deploy-bot\",\"type\":\"App\","
                   "\"appId\":\"44444444-4444-4444-4444-444444444444\"}]}",
                   0, NULL);
    assert_true(json_equal(body, want));
    json_decref(body);
    json_decref(want);
    json_decref(calls);
    json_t *db = sim_database();
    assert_int_equal(json_array_size(json_object_get(db, "principals")), 2);
    json_decref(db);

    /* the same request again (a redelivery): already there, nothing added twice */
    sim_admin_do("DELETE", "/_sim/requests", NULL);
    submit_ops("p-2", 0, ops);
    run_until_terminals(2);
    calls = sim_calls();
    assert_int_equal(
        find_call(calls, 0, "POST", DB_PATH "/addPrincipals?api-version=2025-02-14", NULL), -1);
    json_decref(calls);
    n = request_events("p-2", evs, 64);
    assert_string_equal(json_string_value(json_object_get(evs[n - 1], "status")), "succeeded");
    harness_close();
}

static void principal_add_kusto(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    const char *ops =
        "{\"kind\":\"database.principal.add\",\"via\":\"kusto\",\"target\":" KUSTO_DB_TARGET
        ",\"principal\":{\"role\":\"Ingestor\",\"name\":\"loader\",\"type\":\"App\","
        "\"appId\":\"55555555-5555-5555-5555-555555555555\",\"tenantName\":\"contoso.onmicrosoft."
        "com\"}}";
    submit_ops("pk-1", 0, ops);
    run_until_terminals(1);
    json_t *evs[64];
    size_t n = request_events("pk-1", evs, 64);
    const json_t *op = terminal_op(evs, n, 0);
    if (strcmp(json_string_value(json_object_get(op, "status")), "succeeded") != 0) {
        char *t = json_dumps(op, JSON_INDENT(1));
        fail_msg("not succeeded: %s", t);
    }
    assert_string_equal(json_string_value(json_object_get(op, "route")), "kusto");
    assert_true(json_is_null(json_object_get(json_object_get(op, "before"), "principal")));
    const json_t *after = json_object_get(json_object_get(op, "after"), "principal");
    assert_string_equal(json_string_value(json_object_get(after, "role")), "Ingestor");
    assert_string_equal(json_string_value(json_object_get(after, "appId")),
                        "55555555-5555-5555-5555-555555555555");
    json_t *calls = sim_calls();
    long show = find_call(calls, 0, "POST", "/v1/rest/mgmt",
                          ".show database ['mykustodatabase'] principals");
    long add = find_call(calls, 0, "POST", "/v1/rest/mgmt",
                         ".add database ['mykustodatabase'] ingestors "
                         "('aadapp=55555555-5555-5555-5555-555555555555;contoso.onmicrosoft.com')");
    if (show < 0 || add < 0 || show > add) {
        dump_calls(calls);
        fail_msg("expected .show principals then .add");
    }
    assert_int_equal(json_array_size(calls), 2);
    json_decref(calls);
    json_t *db = sim_database();
    assert_int_equal(json_array_size(json_object_get(db, "principals")), 2);
    json_decref(db);

    /* again: already there, no second .add */
    sim_admin_do("DELETE", "/_sim/requests", NULL);
    submit_ops("pk-2", 0, ops);
    run_until_terminals(2);
    calls = sim_calls();
    assert_int_equal(json_array_size(calls), 1);
    json_decref(calls);
    harness_close();
}

static void dry_run_changes_nothing(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    submit_ops("d-1", 1,
               "{\"kind\":\"database.retention\",\"target\":" ARM_TARGET
               ",\"softDeletePeriod\":\"P10D\"},"
               "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                   "StormEvents") ",\"hotCachePeriod\":\"P5D\"}");
    run_until_terminals(1);
    json_t *evs[64];
    size_t n = request_events("d-1", evs, 64);
    assert_true(json_is_true(json_object_get(evs[n - 1], "dryRun")));
    assert_string_equal(json_string_value(json_object_get(evs[n - 1], "status")), "succeeded");
    const json_t *op = terminal_op(evs, n, 0);
    assert_string_equal(json_string_value(json_object_get(op, "status")), "planned");
    check_value(op, "before", "softDeletePeriod", "P365D");
    check_value(op, "after", "softDeletePeriod", "P10D");
    op = terminal_op(evs, n, 1);
    assert_string_equal(json_string_value(json_object_get(op, "status")), "planned");
    json_t *calls = sim_calls();
    assert_int_equal(count_method(calls, "PATCH"), 0);
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        json_t *b = logged_body(c);
        const char *csl = json_string_value(json_object_get(b, "csl"));
        if (csl && strncmp(csl, ".show ", 6) != 0) fail_msg("dry run sent %s", csl);
        json_decref(b);
    }
    json_decref(calls);
    json_t *db = sim_database();
    assert_string_equal(json_string_value(json_object_get(db, "softDeletePeriod")), "P365D");
    json_decref(db);
    harness_close();
}

static void failure_skips_the_rest(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    submit_ops(
        "f-1", 0,
        "{\"kind\":\"database.retention\",\"target\":{\"subscriptionId\":\"" SUB
        "\",\"resourceGroup\":\"testrg\",\"cluster\":\"mykustocluster\",\"database\":\"nosuchdb\"}"
        ",\"softDeletePeriod\":\"P10D\"},"
        "{\"kind\":\"database.caching\",\"target\":" ARM_TARGET ",\"hotCachePeriod\":\"P5D\"}");
    run_until_terminals(1);
    json_t *evs[64];
    size_t n = request_events("f-1", evs, 64);
    json_t *last = evs[n - 1];
    assert_string_equal(json_string_value(json_object_get(last, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "error"), "code")),
                        "NotFound");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(last, "error"), "operationIndex")), 0);
    const json_t *op = terminal_op(evs, n, 0);
    assert_string_equal(json_string_value(json_object_get(op, "status")), "failed");
    assert_false(json_is_true(json_object_get(json_object_get(op, "error"), "retryable")));
    op = terminal_op(evs, n, 1);
    assert_string_equal(json_string_value(json_object_get(op, "status")), "skipped");
    json_t *calls = sim_calls();
    assert_int_equal(count_method(calls, "PATCH"), 0);
    json_decref(calls);
    json_t *db = sim_database();
    assert_string_equal(json_string_value(json_object_get(db, "hotCachePeriod")), "P31D");
    json_decref(db);
    harness_close();
}

/* Same database through ARM then Kusto, from two requests: one lane, arrival order, so the
 * second request's read comes after the first one's change and the last value wins.  A
 * request on another table runs meanwhile. */
static void lanes_order_same_target(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PATCH", "/_sim/settings", "{\"lroDurationMs\": 1500}");
    harness_open();
    submit_ops("l-1", 0,
               "{\"kind\":\"database.retention\",\"target\":" ARM_TARGET
               ",\"softDeletePeriod\":\"P40D\"}");
    submit_ops(
        "l-2", 0,
        "{\"kind\":\"database.retention\",\"via\":\"kusto\",\"target\":{\"clusterUri\":\"" CLUSTER
        "\",\"database\":\"MyKustoDatabase\"},\"softDeletePeriod\":\"P50D\"}");
    submit_ops("l-3", 0,
               "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                   "Logs") ",\"hotCachePeriod\":\"P2D\"}");
    run_until_terminals(3);
    json_t *evs[64];
    size_t n = request_events("l-2", evs, 64);
    const json_t *op = terminal_op(evs, n, 0);
    if (strcmp(json_string_value(json_object_get(op, "status")), "succeeded") != 0) {
        char *t = json_dumps(op, JSON_INDENT(1));
        fail_msg("l-2: %s", t);
    }
    check_value(op, "before", "softDeletePeriod", "P40D"); /* saw l-1's change */
    check_value(op, "after", "softDeletePeriod", "P50D");
    /* l-2 started only after l-1 ended */
    assert_true(event_pos("l-2", "running") > event_pos("l-1", "succeeded"));
    /* l-3 (another target) started while l-1 was still in flight: it did not wait */
    assert_true(event_pos("l-3", "running") < event_pos("l-1", "succeeded"));
    json_t *db = sim_database();
    assert_string_equal(json_string_value(json_object_get(db, "softDeletePeriod")), "P50D");
    json_decref(db);
    json_t *calls = sim_calls();
    long patch = find_call(calls, 0, "PATCH", DB_PATH "?api-version=2025-02-14", NULL);
    long show = find_call(calls, 0, "POST", "/v1/rest/mgmt", NULL);
    assert_true(patch >= 0 && show >= 0);
    json_decref(calls);
    harness_close();
}

/* Within one request, operations run in order even on different lanes; a second request on
 * the first request's second target waits for it. */
static void request_order_across_lanes(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    submit_ops("o-1", 0,
               "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                   "StormEvents") ",\"hotCachePeriod\":\"P3D\"},"
                                  "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                                      "Logs") ",\"hotCachePeriod\":\"P4D\"}");
    submit_ops("o-2", 0,
               "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                   "Logs") ",\"hotCachePeriod\":\"P6D\"}");
    run_until_terminals(2);
    json_t *evs[64];
    size_t n = request_events("o-2", evs, 64);
    check_value(terminal_op(evs, n, 0), "before", "hotCachePeriod", "P4D");
    n = request_events("o-1", evs, 64);
    assert_int_equal(n, 4); /* accepted, running (op 0), running (op 1), succeeded */
    json_t *calls = sim_calls();
    long a = find_call(calls, 0, "POST", "/v1/rest/mgmt",
                       ".alter table ['StormEvents'] policy caching hot = 3d");
    long b = find_call(calls, 0, "POST", "/v1/rest/mgmt",
                       ".alter table ['Logs'] policy caching hot = 4d");
    long c = find_call(calls, 0, "POST", "/v1/rest/mgmt",
                       ".alter table ['Logs'] policy caching hot = 6d");
    assert_true(a >= 0 && b > a && c > b);
    json_decref(calls);
    harness_close();
}

/* Only reads went out: ARM GETs and listPrincipals, Kusto .show commands. */
static void assert_only_reads(const json_t *calls)
{
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        const char *m = json_string_value(json_object_get(c, "method"));
        const char *path = json_string_value(json_object_get(c, "path"));
        json_t *b = logged_body(c);
        const char *csl = json_string_value(json_object_get(b, "csl"));
        int read = strcmp(m, "GET") == 0 || (path && strstr(path, "/listPrincipals?")) ||
                   (csl && strncmp(csl, ".show ", 6) == 0);
        if (!read) {
            dump_calls(calls);
            fail_msg("a dry run sent %s %s %s", m, path ? path : "", csl ? csl : "");
        }
        json_decref(b);
    }
}

#define EVERY_KIND_OPS(arm_days, table)                                                            \
    "{\"kind\":\"database.retention\",\"target\":" ARM_TARGET ",\"softDeletePeriod\":\"P" arm_days \
    "D\"},"                                                                                        \
    "{\"kind\":\"database.caching\",\"target\":" ARM_TARGET ",\"hotCachePeriod\":\"P6D\"},"        \
    "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(                                  \
        table) ",\"hotCachePeriod\":\"P4D\"},"                                                     \
               "{\"kind\":\"table.retention\",\"target\":" KUSTO_TABLE_TARGET(                     \
                   table) ",\"softDeletePeriod\":"                                                 \
                          "\"P9D\"},"                                                              \
                          "{\"kind\":\"database.caching\",\"via\":\"kusto\","                      \
                          "\"target\":" KUSTO_DB_TARGET ",\"hotCachePeriod\":\"P6D\"},"            \
                          "{\"kind\":\"database.principal.add\",\"target\":" ARM_TARGET            \
                          ",\"principal\":{\"role\":\"Viewer\",\"name\":\"bot\",\"type\":\"App\"," \
                          "\"appId\":\"66666666-6666-6666-6666-666666666666\"}},"                  \
                          "{\"kind\":\"database.principal.add\",\"via\":\"kusto\","                \
                          "\"target\":" KUSTO_DB_TARGET ",\"principal\":{\"role\":\"Monitor\","    \
                          "\"name\":\"mon\",\"type\":\"App\","                                     \
                          "\"appId\":\"77777777-7777-7777-7777-777777777777\",\"tenantName\":"     \
                          "\"contoso.onmicrosoft.com\"}}"

/* A dry run of every kind through every route: each operation planned, its before read
 * (null where nothing is set at that level), after = the planned value; only reads sent;
 * the simulator's state unchanged. */
static void dry_run_every_kind(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    json_t *st0 = sim_admin("GET", "/_sim/state", NULL);
    submit_ops("d-all", 1, EVERY_KIND_OPS("20", "StormEvents"));
    run_until_terminals(1);
    json_t *evs[64];
    size_t n = request_events("d-all", evs, 64);
    assert_string_equal(json_string_value(json_object_get(evs[n - 1], "status")), "succeeded");
    for (size_t i = 0; i < 7; i++) {
        const json_t *op = terminal_op(evs, n, i);
        if (strcmp(json_string_value(json_object_get(op, "status")), "planned") != 0)
            fail_msg("op %zu: %s", i, json_dumps(op, JSON_INDENT(1)));
    }
    check_value(terminal_op(evs, n, 0), "before", "softDeletePeriod", "P365D");
    check_value(terminal_op(evs, n, 0), "after", "softDeletePeriod", "P20D");
    check_value(terminal_op(evs, n, 1), "before", "hotCachePeriod", "P31D");
    check_value(terminal_op(evs, n, 1), "after", "hotCachePeriod", "P6D");
    check_value(terminal_op(evs, n, 2), "before", "hotCachePeriod", NULL);
    check_value(terminal_op(evs, n, 2), "after", "hotCachePeriod", "P4D");
    check_value(terminal_op(evs, n, 3), "before", "softDeletePeriod", NULL);
    check_value(terminal_op(evs, n, 3), "after", "softDeletePeriod", "P9D");
    check_value(terminal_op(evs, n, 4), "before", "hotCachePeriod", "P31D");
    check_value(terminal_op(evs, n, 4), "after", "hotCachePeriod", "P6D");
    for (size_t i = 5; i < 7; i++) {
        const json_t *op = terminal_op(evs, n, i);
        assert_true(json_is_null(json_object_get(json_object_get(op, "before"), "principal")));
        assert_true(json_is_object(json_object_get(json_object_get(op, "after"), "principal")));
    }
    json_t *calls = sim_calls();
    assert_only_reads(calls);
    assert_int_equal(json_array_size(calls), 7);
    json_decref(calls);
    json_t *st1 = sim_admin("GET", "/_sim/state", NULL);
    /* (armRuntime holds the simulator's throttle buckets, which reads drain) */
    json_t *dbs0 = json_object_get(st0, "subscriptions"),
           *dbs1 = json_object_get(st1, "subscriptions");
    assert_non_null(dbs0);
    assert_true(json_equal(dbs0, dbs1));
    json_decref(st0);
    json_decref(st1);
    harness_close();
}

/* The same request (same id) delivered twice at once, as after a rebalance, then once
 * more: every processing succeeds, the changes are made once and the state converges; a
 * later processing reads what the earlier one wrote (before == after). */
static void redelivery_same_id_converges(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    submit_ops("dup-1", 0, EVERY_KIND_OPS("21", "Logs"));
    submit_ops("dup-1", 0, EVERY_KIND_OPS("21", "Logs"));
    run_until_terminals(2);
    submit_ops("dup-1", 0, EVERY_KIND_OPS("21", "Logs"));
    run_until_terminals(3);
    const json_t *last = NULL;
    size_t terminals = 0;
    for (size_t i = 0; i < H.n_events; i++) {
        const char *st = json_string_value(json_object_get(H.events[i], "status"));
        if (strcmp(st, "succeeded") != 0 && strcmp(st, "failed") != 0) continue;
        terminals++;
        if (strcmp(st, "succeeded") != 0)
            fail_msg("processing %zu: %s", terminals, json_dumps(H.events[i], JSON_INDENT(1)));
        last = H.events[i];
    }
    assert_int_equal(terminals, 3);
    /* the last processing found everything in place */
    const char *fields[] = {"softDeletePeriod", "hotCachePeriod", "hotCachePeriod",
                            "softDeletePeriod", "hotCachePeriod"};
    const char *want[] = {"P21D", "P6D", "P4D", "P9D", "P6D"};
    for (size_t i = 0; i < 5; i++) {
        const json_t *op = json_array_get(json_object_get(last, "operations"), i);
        check_value(op, "before", fields[i], want[i]);
        check_value(op, "after", fields[i], want[i]);
    }
    for (size_t i = 5; i < 7; i++) {
        const json_t *op = json_array_get(json_object_get(last, "operations"), i);
        assert_true(json_is_object(json_object_get(json_object_get(op, "before"), "principal")));
        assert_true(json_is_object(json_object_get(json_object_get(op, "after"), "principal")));
    }
    json_t *calls = sim_calls();
    size_t adds = 0, kadds = 0, i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        const char *path = json_string_value(json_object_get(c, "path"));
        json_t *b = logged_body(c);
        const char *csl = json_string_value(json_object_get(b, "csl"));
        if (path && strstr(path, "/addPrincipals?")) adds++;
        if (csl && strncmp(csl, ".add ", 5) == 0) kadds++;
        json_decref(b);
    }
    assert_int_equal(adds, 1);
    assert_int_equal(kadds, 1);
    json_decref(calls);
    json_t *db = sim_database();
    assert_string_equal(json_string_value(json_object_get(db, "softDeletePeriod")), "P21D");
    assert_string_equal(json_string_value(json_object_get(db, "hotCachePeriod")), "P6D");
    assert_int_equal(json_array_size(json_object_get(db, "principals")), 3);
    json_decref(db);
    harness_close();
}

/* 429 and 503 for a while, then recovery: the operation succeeds, the retries counted. */
static void throttled_then_recovers(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 2, \"status\": 429, \"host\": \"" KUSTO_HOST
                 "\", \"retryAfter\": 0}, {\"count\": 1, \"status\": 503, \"host\": \"" KUSTO_HOST
                 "\", \"retryAfter\": 0}]}");
    harness_open();
    submit_ops("t-1", 0,
               "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                   "StormEvents") ",\"hotCachePeriod\":\"P7D\"}");
    run_until_terminals(1);
    json_t *evs[64];
    size_t n = request_events("t-1", evs, 64);
    const json_t *op = terminal_op(evs, n, 0);
    if (strcmp(json_string_value(json_object_get(op, "status")), "succeeded") != 0) {
        char *t = json_dumps(op, JSON_INDENT(1));
        fail_msg("t-1: %s", t);
    }
    assert_int_equal(json_integer_value(json_object_get(op, "attempts")), 5); /* 4 reads + 1 */
    check_value(op, "after", "hotCachePeriod", "P7D");
    harness_close();

    /* throttled past the attempts: failed, Throttled, retryable */
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 100, \"status\": 429, \"host\": "
                 "\"management.azure.com\", \"retryAfter\": 0}]}");
    harness_open();
    submit_ops("t-2", 0,
               "{\"kind\":\"database.caching\",\"target\":" ARM_TARGET
               ",\"hotCachePeriod\":\"P5D\"}");
    run_until_terminals(1);
    n = request_events("t-2", evs, 64);
    const json_t *err = json_object_get(evs[n - 1], "error");
    assert_string_equal(json_string_value(json_object_get(evs[n - 1], "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "Throttled");
    assert_true(json_is_true(json_object_get(err, "retryable")));
    assert_int_equal(json_integer_value(json_object_get(err, "httpStatus")), 429);
    harness_close();
    sim_admin_do("DELETE", "/_sim/faults", NULL);
}

/* Azure unavailable past the operation deadline: failed with a retryable code. */
static void deadline_exceeded(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 100000, \"status\": 503, \"host\": \"" KUSTO_HOST
                 "\", \"retryAfter\": 0}]}");
    long saved = cfg.operation_timeout_ms;
    cfg.operation_timeout_ms = 1500;
    max_attempts = 1000;
    harness_open();
    submit_ops("x-1", 0,
               "{\"kind\":\"table.retention\",\"target\":" KUSTO_TABLE_TARGET(
                   "Logs") ",\"softDeletePeriod\":\"P7D\"},"
                           "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                               "Logs") ",\"hotCachePeriod\":\"P7D\"}");
    run_until_terminals(1);
    cfg.operation_timeout_ms = saved;
    max_attempts = 4;
    json_t *evs[64];
    size_t n = request_events("x-1", evs, 64);
    const json_t *err = json_object_get(evs[n - 1], "error");
    assert_string_equal(json_string_value(json_object_get(evs[n - 1], "status")), "failed");
    /* pw_azure names the cause it saw until the deadline cut the retries short */
    const char *code = json_string_value(json_object_get(err, "code"));
    if (strcmp(code, "AzureUnavailable") != 0 && strcmp(code, "DeadlineExceeded") != 0)
        fail_msg("code %s", code);
    assert_true(json_is_true(json_object_get(err, "retryable")));
    assert_true(json_integer_value(json_object_get(terminal_op(evs, n, 0), "attempts")) > 1);
    assert_string_equal(json_string_value(json_object_get(terminal_op(evs, n, 1), "status")),
                        "skipped");
    harness_close();
    sim_admin_do("DELETE", "/_sim/faults", NULL);
}

/* ---- ownership gate and progress pacing ---- */

/* One request's owner, as the worker's partition bookkeeping would answer for it. */
typedef struct owned {
    int drop, hold;
    int dropped;
} owned;

static pw_exec_gate owned_gate(void *ctx)
{
    owned *o = ctx;
    return o->drop ? PW_EXEC_DROP : o->hold ? PW_EXEC_HOLD : PW_EXEC_GO;
}

static void owned_dropped(void *ctx)
{
    owned *o = ctx;
    o->dropped++;
}

static owned owners[4];

static void owned_event(void *ctx, json_t *event, int terminal)
{
    (void)ctx;
    on_event(&H, event, terminal);
}

static void submit_owned(const char *id, owned *o, const char *ops)
{
    char *t = request_text(id, 0, ops);
    pw_rejection rej;
    pw_request *req = pw_request_decode(checker, t, strlen(t), &rej);
    free(t);
    if (!req) fail_msg("request rejected: %s %s", rej.code, rej.message);
    pw_exec_submit(H.ex, req, owned_event, o);
}

static void owned_open(void)
{
    memset(owners, 0, sizeof owners);
    harness_open();
    pw_exec_owner owner = {.gate = owned_gate, .dropped = owned_dropped};
    pw_exec_set_owner(H.ex, &owner);
}

static size_t count_events(const char *id, const char *status)
{
    size_t n = 0;
    for (size_t i = 0; i < H.n_events; i++)
        if (strcmp(json_string_value(json_object_get(H.events[i], "requestId")), id) == 0 &&
            (!status ||
             strcmp(json_string_value(json_object_get(H.events[i], "status")), status) == 0))
            n++;
    return n;
}

/* Runs the loop until cond() or 60 s. */
static void run_until(int (*cond)(void))
{
    uint64_t start = pw_loop_now_ms(H.loop);
    while (!cond() && pw_loop_now_ms(H.loop) - start < 60000)
        assert_int_equal(pw_loop_run_once(H.loop, 50), 0);
    assert_true(cond());
}

static int first_running(void)
{
    return count_events("g-1", "running") > 0;
}

static int g1_over_others_dropped(void)
{
    return H.terminals == 1 && owners[1].dropped && owners[2].dropped;
}

#define RETENTION(p)                                                                               \
    "{\"kind\":\"database.retention\",\"target\":" ARM_TARGET ",\"softDeletePeriod\":\"" p "\"}"
#define CACHING(p)                                                                                 \
    "{\"kind\":\"database.caching\",\"target\":" ARM_TARGET ",\"hotCachePeriod\":\"" p "\"}"

/* A partition revoked while its requests wait in a lane: the one running ends and is
 * reported, the waiting ones never start, emit nothing more and are handed back. */
static void revoked_waiting_requests_never_start(void **state)
{
    (void)state;
    sim_reset();
    owned_open();
    submit_owned("g-1", &owners[0], RETENTION("P41D"));
    submit_owned("g-2", &owners[1], RETENTION("P42D"));
    submit_owned("g-3", &owners[2], RETENTION("P43D"));
    run_until(first_running);
    owners[1].drop = owners[2].drop = 1;
    pw_exec_recheck(H.ex);
    run_until(g1_over_others_dropped);
    assert_int_equal(pw_exec_in_flight(H.ex), 0);
    assert_int_equal(owners[1].dropped, 1);
    assert_int_equal(count_events("g-2", "running"), 0);
    assert_int_equal(count_events("g-3", "running"), 0);
    assert_int_equal(count_events("g-2", "succeeded") + count_events("g-3", "succeeded"), 0);
    json_t *db = sim_database();
    assert_string_equal(json_string_value(json_object_get(db, "softDeletePeriod")), "P41D");
    json_decref(db);
    json_t *calls = sim_calls();
    assert_int_equal(count_method(calls, "PATCH"), 1);
    json_decref(calls);
    harness_close();
}

static int g1_dropped(void)
{
    return owners[0].dropped > 0;
}

/* g-1's write was sent: a running event shows its long-running operation. */
static int g1_lro(void)
{
    for (size_t i = 0; i < H.n_events; i++)
        if (strcmp(json_string_value(json_object_get(H.events[i], "requestId")), "g-1") == 0 &&
            json_object_get(json_array_get(json_object_get(H.events[i], "operations"), 0), "lro"))
            return 1;
    return 0;
}

/* Submits g-1 with ops, revokes it once when() holds, and checks that it was handed back
 * without a terminal event after exactly `patches` writes. */
static void revoke_g1_when(int (*when)(void), const char *ops, size_t patches)
{
    submit_owned("g-1", &owners[0], ops);
    run_until(when);
    owners[0].drop = 1;
    pw_exec_recheck(H.ex);
    run_until(g1_dropped);
    assert_int_equal(H.terminals, 0);
    assert_int_equal(pw_exec_in_flight(H.ex), 0);
    json_t *calls = sim_calls();
    assert_int_equal(count_method(calls, "PATCH"), patches);
    json_decref(calls);
}

/* Revoked as its first operation starts (announced before its read): no write is sent. */
static void revoked_before_the_write_sends_nothing(void **state)
{
    (void)state;
    sim_reset();
    owned_open();
    revoke_g1_when(first_running, RETENTION("P44D"), 0);
    harness_close();
}

/* Revoked while its first operation's write runs: that write ends, the second operation
 * never starts and the request gets no terminal event here (its next owner answers it). */
static void revoked_mid_request_stops_after_the_running_write(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PATCH", "/_sim/settings", "{\"lroDurationMs\": 3000}");
    owned_open();
    revoke_g1_when(g1_lro, RETENTION("P44D") "," CACHING("P4D"), 1);
    json_t *db = sim_database();
    assert_string_equal(json_string_value(json_object_get(db, "softDeletePeriod")), "P44D");
    json_decref(db);
    harness_close();
}

/* g-1's write was answered (429) once: it now waits for its next attempt. */
static int g1_write_throttled(void)
{
    json_t *calls = sim_calls();
    size_t n = count_method(calls, "PATCH");
    json_decref(calls);
    return n >= 1;
}

/* Revoked while its write waits to be sent again (throttled, Retry-After 30 s): nothing of
 * it is on the wire, so it is abandoned at once, not sent again, and handed back. */
static void revoked_while_backing_off_abandons_the_write(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 1, \"status\": 429, \"retryAfter\": 30, "
                 "\"host\": \"management.azure.com\", \"match\": \"softDeletePeriod\"}]}");
    owned_open();
    revoke_g1_when(g1_write_throttled, RETENTION("P45D"), 1);
    json_t *db = sim_database();
    assert_string_not_equal(json_string_value(json_object_get(db, "softDeletePeriod")), "P45D");
    json_decref(db);
    harness_close();
}

static int g1_over(void)
{
    return H.terminals == 1;
}

/* Ownership in doubt: nothing starts until the gate says go, then the request completes. */
static void held_request_waits_then_runs(void **state)
{
    (void)state;
    sim_reset();
    owned_open();
    owners[0].hold = 1;
    submit_owned("g-1", &owners[0], RETENTION("P45D"));
    uint64_t until = pw_loop_now_ms(H.loop) + 700;
    while (pw_loop_now_ms(H.loop) < until)
        assert_int_equal(pw_loop_run_once(H.loop, 50), 0);
    assert_int_equal(count_events("g-1", "running"), 0);
    json_t *calls = sim_calls();
    assert_int_equal(json_array_size(calls), 0);
    json_decref(calls);
    owners[0].hold = 0;
    pw_exec_recheck(H.ex);
    run_until(g1_over);
    assert_int_equal(count_events("g-1", "succeeded"), 1);
    harness_close();
}

/* An LRO polled without pause (Retry-After: 0) yields at most one running event per
 * second for its operation, besides the one that announces its start. */
static void running_events_are_paced(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PATCH", "/_sim/settings",
                 "{\"lroDurationMs\": 2500, \"lroRetryAfterSeconds\": 0}");
    harness_open();
    submit_ops("p-1", 0, RETENTION("P46D"));
    run_until_terminals(1);
    json_t *evs[64];
    size_t n = request_events("p-1", evs, 64);
    const json_t *op = terminal_op(evs, n, 0);
    json_int_t duration = json_integer_value(json_object_get(op, "durationMs"));
    json_int_t polls = json_integer_value(json_object_get(json_object_get(op, "lro"), "polls"));
    size_t running = count_events("p-1", "running");
    /* polled often, reported at most once a second (plus the start) */
    assert_true(polls > 3);
    if (running > 2 + (size_t)(duration / 1000))
        fail_msg("%zu running events in %lld ms (%lld polls)", running, (long long)duration,
                 (long long)polls);
    harness_close();
}

/* ARM accepted the change but the operation is still running at the deadline: the
 * operation is "unknown" (OutcomeUnknown, with the operation URL), never "failed"; the
 * request ends "failed" with that code and the next operation is skipped. */
static void outcome_unknown_not_failed(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PATCH", "/_sim/settings", "{\"lroDurationMs\": 120000}");
    long saved = cfg.operation_timeout_ms;
    cfg.operation_timeout_ms = 3000;
    harness_open();
    submit_ops("u-1", 0,
               "{\"kind\":\"database.retention\",\"target\":" ARM_TARGET
               ",\"softDeletePeriod\":\"P15D\"},"
               "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                   "Logs") ",\"hotCachePeriod\":\"P7D\"}");
    run_until_terminals(1);
    cfg.operation_timeout_ms = saved;
    json_t *evs[64];
    size_t n = request_events("u-1", evs, 64);
    assert_string_equal(json_string_value(json_object_get(evs[n - 1], "status")), "failed");
    const json_t *op = terminal_op(evs, n, 0);
    if (strcmp(json_string_value(json_object_get(op, "status")), "unknown") != 0) {
        char *t = json_dumps(op, JSON_INDENT(1));
        fail_msg("u-1 operation 0: %s", t);
    }
    const json_t *oerr = json_object_get(op, "error");
    assert_string_equal(json_string_value(json_object_get(oerr, "code")), "OutcomeUnknown");
    assert_non_null(
        strstr(json_string_value(json_object_get(oerr, "operationUrl")), "/operationResults/"));
    const json_t *err = json_object_get(evs[n - 1], "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "OutcomeUnknown");
    assert_int_equal(json_integer_value(json_object_get(err, "operationIndex")), 0);
    assert_string_equal(json_string_value(json_object_get(terminal_op(evs, n, 1), "status")),
                        "skipped");
    harness_close();
}

/* ---- rollouts ---- */

/* A rollout over the default tables StormEvents and Logs: table.caching hot = period, waves
 * as given (JSON). */
static void submit_rollout(const char *id, owned *o, int dry_run, const char *period,
                           const char *waves)
{
    char t[1024];
    snprintf(
        t, sizeof t,
        "{\"schema\":\"adx-policy-request/v1\",\"id\":\"%s\",\"requestedBy\":\"exec@contoso.com\","
        "\"dryRun\":%s,\"rollout\":{\"targets\":[" KUSTO_TABLE_TARGET(
            "StormEvents") "," KUSTO_TABLE_TARGET("Logs") "],\"operations\":[{\"kind\":\"table."
                                                          "caching\","
                                                          "\"hotCachePeriod\":\"%s\"}],\"waves\":%"
                                                          "s}}",
        id, dry_run ? "true" : "false", period, waves);
    pw_rejection rej;
    pw_request *req = pw_request_decode(checker, t, strlen(t), &rej);
    if (!req) fail_msg("request rejected: %s %s", rej.code, rej.message);
    pw_exec_submit(H.ex, req, owned_event, o);
}

static int r1_wave_over(void)
{
    return count_events("r-1", "wave") > 0;
}

/* The ownership gate treats a rollout like any request: revoked in the pause between two
 * waves, it is handed back without a terminal event, and the second wave never starts. */
static void rollout_revoked_between_waves(void **state)
{
    (void)state;
    sim_reset();
    owned_open();
    submit_rollout("r-1", &owners[0], 0, "P6D",
                   "{\"canary\":1,\"steps\":[\"100%\"],\"pauseBetweenWavesSeconds\":30}");
    run_until(r1_wave_over);
    owners[0].drop = 1;
    pw_exec_recheck(H.ex);
    run_until(g1_dropped);
    assert_int_equal(H.terminals, 0);
    assert_int_equal(pw_exec_in_flight(H.ex), 0);
    json_t *p = sim_table_policy("StormEvents", "caching");
    assert_non_null(p);
    json_decref(p);
    p = sim_table_policy("Logs", "caching");
    assert_null(p); /* the second wave's target was never written */
    harness_close();
}

static int r2_over(void)
{
    return count_events("r-2", "succeeded") + count_events("r-2", "failed") > 0;
}

/* A dry run rollout reads and plans every target: each result carries its plan, nothing is
 * written, the totals count every target planned. */
static void rollout_dry_run_plans_every_target(void **state)
{
    (void)state;
    sim_reset();
    owned_open();
    submit_rollout("r-2", &owners[0], 1, "P6D", "{\"canary\":1}");
    run_until(r2_over);
    json_t *calls = sim_calls();
    assert_only_reads(calls);
    json_decref(calls);
    size_t results = 0;
    for (size_t i = 0; i < H.n_events; i++) {
        const json_t *ro = json_object_get(H.events[i], "rollout");
        size_t k;
        const json_t *r;
        json_array_foreach(json_object_get(ro, "results"), k, r)
        {
            assert_string_equal(json_string_value(json_object_get(r, "status")), "planned");
            assert_non_null(
                json_object_get(json_array_get(json_object_get(r, "operations"), 0), "plan"));
            results++;
        }
    }
    assert_int_equal(results, 2);
    const json_t *last = H.events[H.n_events - 1];
    assert_string_equal(json_string_value(json_object_get(last, "status")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(last, "rollout"), "totals"), "planned")),
                     2);
    harness_close();
}

/* ---- shared reads and reuse (issue 10: no redundant round trips) ---- */

#define CLUSTER_PATH                                                                               \
    "/subscriptions/" SUB "/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/"             \
    "mykustocluster"
#define LIST_PATH CLUSTER_PATH "/databases?api-version=2025-02-14"

/* The default state with databases bulkdb0..bulkdb<n-1> (copies of mykustodatabase) added. */
static void sim_bulk_databases(int n)
{
    json_t *st = json_deep_copy(default_state);
    json_t *dbs = json_object_get(
        json_array_get(
            json_object_get(
                json_array_get(
                    json_object_get(json_array_get(json_object_get(st, "subscriptions"), 0),
                                    "resourceGroups"),
                    0),
                "clusters"),
            0),
        "databases");
    json_t *proto = json_array_get(dbs, 0);
    for (int i = 0; i < n; i++) {
        json_t *db = json_deep_copy(proto);
        char name[32];
        snprintf(name, sizeof name, "bulkdb%d", i);
        json_object_set_new(db, "name", json_string(name));
        json_array_append_new(dbs, db);
    }
    char *text = json_dumps(st, JSON_COMPACT);
    sim_admin_do("PUT", "/_sim/state", text);
    free(text);
    json_decref(st);
    sim_admin_do("PATCH", "/_sim/settings",
                 "{\"lroDurationMs\": 300, \"lroRetryAfterSeconds\": 1, \"armListPageSize\": 2}");
    sim_admin_do("DELETE", "/_sim/requests", NULL);
}

static void submit_bulk_caching(const char *prefix, const char *db, const char *period)
{
    char id[64], ops[512];
    snprintf(id, sizeof id, "%s-%s", prefix, db);
    snprintf(ops, sizeof ops,
             "{\"kind\":\"database.caching\",\"target\":{\"subscriptionId\":\"" SUB
             "\",\"resourceGroup\":\"testrg\",\"cluster\":\"mykustocluster\",\"database\":\"%s\"},"
             "\"hotCachePeriod\":\"%s\"}",
             db, period);
    submit_ops(id, 0, ops);
}

/* ARM GETs of one database's path (query included), and of the cluster's list (every page). */
static void count_arm_gets(const json_t *calls, size_t *single, size_t *lists)
{
    size_t i, len = strlen(CLUSTER_PATH "/databases");
    json_t *c;
    *single = *lists = 0;
    json_array_foreach(calls, i, c)
    {
        const char *m = json_string_value(json_object_get(c, "method"));
        const char *p = json_string_value(json_object_get(c, "path"));
        if (strcmp(m, "GET") != 0 || strncmp(p, CLUSTER_PATH "/databases", len)) continue;
        if (p[len] == '?')
            (*lists)++;
        else
            (*single)++;
    }
}

/* Database reads of one cluster queued at one moment go as one database list, its pages
 * followed; a database no page holds is read alone (and fails as its own GET says); each
 * operation is reported on its own with its own before and after. */
static void shared_database_reads(void **state)
{
    (void)state;
    sim_reset();
    sim_bulk_databases(5);
    harness_open();
    char db[16];
    for (int i = 0; i < 5; i++) {
        snprintf(db, sizeof db, "bulkdb%d", i);
        submit_bulk_caching("sh", db, "P7D");
    }
    submit_bulk_caching("sh", "nosuchdb", "P7D");
    run_until_terminals(6);
    json_t *evs[64];
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof id, "sh-bulkdb%d", i);
        size_t n = request_events(id, evs, 64);
        const json_t *op = terminal_op(evs, n, 0);
        assert_string_equal(json_string_value(json_object_get(op, "status")), "succeeded");
        check_value(op, "before", "hotCachePeriod", "P31D");
        check_value(op, "after", "hotCachePeriod", "P7D");
        assert_true(strlen(json_string_value(
                        json_object_get(json_object_get(op, "azure"), "requestId"))) > 0);
    }
    size_t n = request_events("sh-nosuchdb", evs, 64);
    const json_t *op = terminal_op(evs, n, 0);
    assert_string_equal(json_string_value(json_object_get(op, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(op, "error"), "code")),
                        "NotFound");
    json_t *calls = sim_calls();
    size_t single, lists;
    count_arm_gets(calls, &single, &lists);
    /* 6 databases at 2 a page: the before reads took 3 pages (nosuchdb on none), then
     * nosuchdb was read alone; no bulkdb was read alone before its write */
    long first_list = find_call(calls, 0, "GET", LIST_PATH, NULL);
    int ok = first_list == 0 && lists >= 3 &&
             find_call(calls, 0, "GET", CLUSTER_PATH "/databases/nosuchdb?api-version=2025-02-14",
                       NULL) > 0;
    for (int i = 0; i < 5; i++) {
        char path[512];
        snprintf(path, sizeof path, CLUSTER_PATH "/databases/bulkdb%d?api-version=2025-02-14", i);
        long get = find_call(calls, 0, "GET", path, NULL),
             patch = find_call(calls, 0, "PATCH", path, NULL);
        ok = ok && patch > 0 && (get < 0 || get > patch);
    }
    if (!ok) {
        dump_calls(calls);
        fail_msg("expected the before reads in list pages (%zu lists, %zu GETs alone)", lists,
                 single);
    }
    assert_int_equal(count_method(calls, "PATCH"), 5);
    json_decref(calls);
    harness_close();
}

/* Reads that wait for a shared list in flight wait as for a budget: that time does not count
 * against their deadline.  The first list (A, B) is throttled for ~4 s; C and D, ready
 * meanwhile, wait for it with 1.5 s deadlines and still succeed. */
static void waiting_for_a_shared_read_is_queue_time(void **state)
{
    (void)state;
    sim_reset();
    sim_bulk_databases(4);
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 2, \"status\": 429, \"retryAfter\": 2, "
                 "\"host\": \"management.azure.com\"}]}");
    long saved = cfg.operation_timeout_ms;
    cfg.operation_timeout_ms = 1500;
    harness_open();
    submit_bulk_caching("qw", "bulkdb0", "P7D");
    submit_bulk_caching("qw", "bulkdb1", "P7D");
    uint64_t start = pw_loop_now_ms(H.loop);
    while (pw_loop_now_ms(H.loop) - start < 500)
        assert_int_equal(pw_loop_run_once(H.loop, 50), 0);
    submit_bulk_caching("qw", "bulkdb2", "P7D");
    submit_bulk_caching("qw", "bulkdb3", "P7D");
    run_until_terminals(4);
    json_t *evs[64];
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "qw-bulkdb%d", i);
        size_t n = request_events(id, evs, 64);
        const json_t *op = terminal_op(evs, n, 0);
        if (strcmp(json_string_value(json_object_get(op, "status")), "succeeded") != 0)
            fail_msg("%s: %s", id, json_dumps(op, JSON_COMPACT));
    }
    harness_close();
    cfg.operation_timeout_ms = saved;
}

/* A shared list that fails is not the members' failure: each reads alone. */
static void shared_read_failure_falls_back(void **state)
{
    (void)state;
    sim_reset();
    sim_bulk_databases(3);
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\":[{\"count\":1,\"status\":400,\"host\":\"management.azure.com\"}]}");
    harness_open();
    char db[16];
    for (int i = 0; i < 3; i++) {
        snprintf(db, sizeof db, "bulkdb%d", i);
        submit_bulk_caching("sf", db, "P8D");
    }
    run_until_terminals(3);
    json_t *evs[64];
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "sf-bulkdb%d", i);
        size_t n = request_events(id, evs, 64);
        const json_t *op = terminal_op(evs, n, 0);
        assert_string_equal(json_string_value(json_object_get(op, "status")), "succeeded");
        check_value(op, "before", "hotCachePeriod", "P31D");
    }
    json_t *calls = sim_calls();
    int ok = find_call(calls, 0, "GET", LIST_PATH, NULL) == 0;
    for (int i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof path, CLUSTER_PATH "/databases/bulkdb%d?api-version=2025-02-14", i);
        long get = find_call(calls, 0, "GET", path, NULL),
             patch = find_call(calls, 0, "PATCH", path, NULL);
        ok = ok && get > 0 && patch > get;
    }
    if (!ok) {
        dump_calls(calls);
        fail_msg("expected the failed list first, then each database read alone before its write");
    }
    json_decref(calls);
    harness_close();
}

/* A database's PATCH followed as a long-running operation ends without the client's own
 * final GET: the read after the write is the operation's (shared) read, one per write. */
static void one_read_after_each_arm_write(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    submit_ops("rr-1", 0,
               "{\"kind\":\"database.caching\",\"target\":" ARM_TARGET
               ",\"hotCachePeriod\":\"P9D\"}");
    run_until_terminals(1);
    json_t *calls = sim_calls();
    size_t single, lists;
    count_arm_gets(calls, &single, &lists);
    if (single != 2 || lists != 0) { /* before, after: no third GET */
        dump_calls(calls);
        fail_msg("expected 2 GETs of the database: %zu (+%zu lists)", single, lists);
    }
    json_decref(calls);
    json_t *evs[64];
    size_t n = request_events("rr-1", evs, 64);
    check_value(terminal_op(evs, n, 0), "after", "hotCachePeriod", "P9D");
    harness_close();
}

/* Kusto .show commands logged with this csl (on mykustodatabase). */
static size_t count_csl(const json_t *calls, const char *csl)
{
    size_t n = 0;
    for (size_t from = 0;; n++) {
        long i = find_call(calls, from, "POST", "/v1/rest/mgmt", csl);
        if (i < 0) return n;
        from = (size_t)i + 1;
    }
}

/* Operations on one target back to back: the next one's before is the answer the previous
 * one ended with (its read after the write, or the write's own answer), not a second read;
 * a value already in place is then unchanged without any call. */
static void before_reused_back_to_back(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    submit_ops("bb-1", 0,
               "{\"kind\":\"database.caching\",\"target\":" ARM_TARGET
               ",\"hotCachePeriod\":\"P3D\"}");
    submit_ops("bb-2", 0,
               "{\"kind\":\"database.retention\",\"target\":" ARM_TARGET
               ",\"softDeletePeriod\":\"P20D\"}");
    submit_ops("bb-3", 0,
               "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                   "Logs") ",\"hotCachePeriod\":\"P3D\"}");
    submit_ops("bb-4", 0,
               "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                   "Logs") ",\"hotCachePeriod\":\"P4D\"}");
    submit_ops("bb-5", 0,
               "{\"kind\":\"table.caching\",\"target\":" KUSTO_TABLE_TARGET(
                   "Logs") ",\"hotCachePeriod\":\"P4D\"}");
    run_until_terminals(5);
    json_t *evs[64];
    size_t n = request_events("bb-2", evs, 64);
    const json_t *op = terminal_op(evs, n, 0);
    assert_string_equal(json_string_value(json_object_get(op, "status")), "succeeded");
    check_value(op, "before", "softDeletePeriod", "P365D");
    check_value(op, "after", "softDeletePeriod", "P20D");
    n = request_events("bb-4", evs, 64);
    op = terminal_op(evs, n, 0);
    assert_string_equal(json_string_value(json_object_get(op, "status")), "succeeded");
    check_value(op, "before", "hotCachePeriod", "P3D");
    n = request_events("bb-5", evs, 64);
    op = terminal_op(evs, n, 0);
    assert_string_equal(json_string_value(json_object_get(op, "status")), "unchanged");
    check_value(op, "before", "hotCachePeriod", "P4D");
    json_t *calls = sim_calls();
    size_t single, lists;
    count_arm_gets(calls, &single, &lists);
    size_t shows = count_csl(calls, ".show table ['Logs'] policy caching");
    if (single + lists != 3 || shows != 1) { /* bb-1 before and after, bb-2 after; one .show */
        dump_calls(calls);
        fail_msg("expected 3 ARM database reads and one .show: %zu + %zu, %zu", single, lists,
                 shows);
    }
    json_decref(calls);
    harness_close();
}

/* At info, an operation logs what a reader follows it by (started, finished, the request's
 * end), not every Azure call it made: those are in its reply events. */
static void info_log_is_per_operation(void **state)
{
    (void)state;
    sim_reset();
    harness_open();
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = tmpfile();
    assert_non_null(f);
    dup2(fileno(f), STDERR_FILENO);
    pw_log_set_level(PW_LOG_INFO);
    submit_ops("lg-1", 0,
               "{\"kind\":\"database.caching\",\"target\":" ARM_TARGET
               ",\"hotCachePeriod\":\"P5D\"}");
    run_until_terminals(1);
    pw_log_set_level(PW_LOG_WARN);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(f);
    char line[4096];
    size_t lines = 0, calls = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "\"event\":\"aad.")) continue; /* (the harness's first token) */
        lines++;
        if (strstr(line, "\"event\":\"azure.call.ok\"")) calls++;
        if (lines > 4 || calls) fprintf(stderr, "logged: %s", line);
    }
    fclose(f);
    assert_int_equal(calls, 0);
    assert_true(lines <= 4); /* op.started, azure.lro.start, op.finished, request.succeeded */
    harness_close();
}

static int shared_three_dropped(void)
{
    return owners[0].dropped && owners[1].dropped && owners[2].dropped;
}

static int shared_three_running(void)
{
    return count_events("sd-bulkdb0", "running") && count_events("sd-bulkdb1", "running") &&
           count_events("sd-bulkdb2", "running");
}

/* A revoke abandons reads that went together as one database list while it is in flight:
 * every request is handed back, nothing is written. */
static void revoked_during_a_shared_read(void **state)
{
    (void)state;
    sim_reset();
    sim_bulk_databases(3);
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"latencyMs\": 1500, \"hosts\": [\"management.azure.com\"]}");
    owned_open();
    for (int i = 0; i < 3; i++) {
        char id[32], ops[512];
        snprintf(id, sizeof id, "sd-bulkdb%d", i);
        snprintf(ops, sizeof ops,
                 "{\"kind\":\"database.caching\",\"target\":{\"subscriptionId\":\"" SUB
                 "\",\"resourceGroup\":\"testrg\",\"cluster\":\"mykustocluster\","
                 "\"database\":\"bulkdb%d\"},\"hotCachePeriod\":\"P6D\"}",
                 i);
        submit_owned(id, &owners[i], ops);
    }
    run_until(shared_three_running);
    for (int i = 0; i < 3; i++)
        owners[i].drop = 1;
    pw_exec_recheck(H.ex);
    run_until(shared_three_dropped);
    assert_int_equal(H.terminals, 0);
    assert_int_equal(pw_exec_in_flight(H.ex), 0);
    /* handed back while the list was still unanswered (the simulator logs what it answered) */
    json_t *calls = sim_calls();
    assert_int_equal(json_array_size(calls), 0);
    json_decref(calls);
    sim_admin_do("DELETE", "/_sim/faults", NULL);
    harness_close();
}

static int group_setup(void **state)
{
    (void)state;
    char err[512];
    pw_log_set_level(PW_LOG_WARN);
    memset(&cfg, 0, sizeof cfg);
    cfg.worker_id = "exec-test";
    cfg.reply_topic = "adx.policy.replies";
    cfg.schemas_dir = PW_SOURCE_DIR "/schemas";
    cfg.max_message_bytes = 1 << 20;
    cfg.max_json_depth = 32;
    cfg.max_operations = 100;
    cfg.operation_timeout_ms = 120000;
    checker = pw_request_checker_new(&cfg, err, sizeof err);
    if (!checker) fail_msg("checker: %s", err);
    reply_reg = pw_schema_registry_new();
    if (pw_schema_registry_add_file(reply_reg, NULL, PW_SOURCE_DIR "/schemas/reply.v1.json", err,
                                    sizeof err) != 0)
        fail_msg("%s", err);
    reply_schema =
        pw_schema_compile(reply_reg, "https://adx-policy-worker.example/schemas/reply.v1.json",
                          NULL, err, sizeof err);
    if (!reply_schema) fail_msg("%s", err);
    default_state = sim_admin("GET", "/_sim/state", NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    json_decref(default_state);
    pw_schema_free(reply_schema);
    pw_schema_registry_free(reply_reg);
    pw_request_checker_free(checker);
    return 0;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = test_sim_start(&sim, AZURE_SIM_BIN, "pw-exec");
    if (rc != 0) {
        test_sim_stop(&sim);
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(database_retention_arm),
        cmocka_unit_test(database_caching_arm),
        cmocka_unit_test(shared_database_reads),
        cmocka_unit_test(shared_read_failure_falls_back),
        cmocka_unit_test(waiting_for_a_shared_read_is_queue_time),
        cmocka_unit_test(one_read_after_each_arm_write),
        cmocka_unit_test(before_reused_back_to_back),
        cmocka_unit_test(info_log_is_per_operation),
        cmocka_unit_test(revoked_during_a_shared_read),
        cmocka_unit_test(kusto_routes),
        cmocka_unit_test(principal_add_arm),
        cmocka_unit_test(principal_add_kusto),
        cmocka_unit_test(dry_run_changes_nothing),
        cmocka_unit_test(dry_run_every_kind),
        cmocka_unit_test(redelivery_same_id_converges),
        cmocka_unit_test(failure_skips_the_rest),
        cmocka_unit_test(lanes_order_same_target),
        cmocka_unit_test(request_order_across_lanes),
        cmocka_unit_test(throttled_then_recovers),
        cmocka_unit_test(deadline_exceeded),
        cmocka_unit_test(revoked_waiting_requests_never_start),
        cmocka_unit_test(revoked_before_the_write_sends_nothing),
        cmocka_unit_test(revoked_mid_request_stops_after_the_running_write),
        cmocka_unit_test(revoked_while_backing_off_abandons_the_write),
        cmocka_unit_test(held_request_waits_then_runs),
        cmocka_unit_test(running_events_are_paced),
        cmocka_unit_test(outcome_unknown_not_failed),
        cmocka_unit_test(rollout_revoked_between_waves),
        cmocka_unit_test(rollout_dry_run_plans_every_target),
    };
    rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    test_sim_stop(&sim);
    curl_global_cleanup();
    return rc;
}
