/* test_request.c: every rejection code, and what a valid request decodes to. Rejected
 * events are validated against schemas/reply.v1.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pw/azure.h"
#include "pw/duration.h"
#include "pw/plan.h"
#include "pw/reply.h"
#include "pw/request.h"
#include "pw/schema.h"

#define SUB "22222222-2222-2222-2222-222222222222"
#define URI "https://mykustocluster.westus.kusto.windows.net"

static char *allowed[] = {"team.replies"};
static pw_config cfg;
static pw_request_checker *chk;
static pw_schema_registry *reply_reg;
static pw_schema *reply_schema;

static int setup(void **state)
{
    (void)state;
    char err[512];
    memset(&cfg, 0, sizeof cfg);
    cfg.reply_topic = "adx.policy.replies";
    cfg.allowed_reply_topics = allowed;
    cfg.allowed_reply_topic_count = 1;
    cfg.schemas_dir = PW_SOURCE_DIR "/schemas";
    cfg.max_message_bytes = 8192;
    cfg.max_json_depth = 16;
    cfg.max_operations = 5;
    chk = pw_request_checker_new(&cfg, err, sizeof err);
    if (!chk) fail_msg("checker: %s", err);

    reply_reg = pw_schema_registry_new();
    const char *files[] = {"reply.v1.json"};
    for (size_t i = 0; i < 1; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/schemas/%s", PW_SOURCE_DIR, files[i]);
        if (pw_schema_registry_add_file(reply_reg, NULL, path, err, sizeof err) != 0)
            fail_msg("%s", err);
    }
    reply_schema =
        pw_schema_compile(reply_reg, "https://adx-policy-worker.example/schemas/reply.v1.json",
                          NULL, err, sizeof err);
    if (!reply_schema) fail_msg("reply schema: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pw_request_checker_free(chk);
    pw_schema_free(reply_schema);
    pw_schema_registry_free(reply_reg);
    return 0;
}

static json_t *arm_target(void)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "subscriptionId", SUB, "resourceGroup", "testrg",
                     "cluster", "mykustocluster", "database", "mykustodatabase");
}

/* A valid request with all five kinds (routes: arm, kusto, kusto, kusto, arm). */
static json_t *base(void)
{
    json_t *ops = json_pack(
        "[{s:s, s:o, s:s}, {s:s, s:s, s:{s:s, s:s}, s:s}, {s:s, s:{s:s, s:s, s:s}, s:s},"
        " {s:s, s:{s:s, s:s, s:s}, s:s}, {s:s, s:o, s:{s:s, s:s, s:s, s:s}}]",
        "kind", "database.retention", "target", arm_target(), "softDeletePeriod", "P10D", "kind",
        "database.caching", "via", "kusto", "target", "clusterUri", URI, "database",
        "mykustodatabase", "hotCachePeriod", "PT12H", "kind", "table.caching", "target",
        "clusterUri", URI "/", "database", "mykustodatabase", "table", "StormEvents",
        "hotCachePeriod", "P5D", "kind", "table.retention", "target", "clusterUri",
        "https://MyKustoCluster.westus.kusto.windows.net", "database", "mykustodatabase", "table",
        "Logs", "softDeletePeriod", "P1DT12H", "kind", "database.principal.add", "target",
        arm_target(), "principal", "role", "Admin", "name", "deploy-bot", "type", "App", "appId",
        "44444444-4444-4444-4444-444444444444");
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:o}", "schema", "adx-policy-request/v1", "id",
                     "chg-2026-000123", "requestedBy", "alice@contoso.com", "reason", "test",
                     "dryRun", 0, "operations", ops);
}

static json_t *op(json_t *req, size_t i)
{
    return json_array_get(json_object_get(req, "operations"), i);
}

/* base() with operations[i].target.key set to value (new reference). */
static json_t *with_target(size_t i, const char *key, const char *value)
{
    json_t *d = base();
    json_object_set_new(json_object_get(op(d, i), "target"), key, json_string(value));
    return d;
}

static pw_request *decode_json(json_t *doc, pw_rejection *rej)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    pw_request *req = pw_request_decode(chk, text, strlen(text), rej);
    free(text);
    return req;
}

static void check_event(const pw_rejection *rej)
{
    json_t *ev = pw_reply_rejection(rej, "worker-1");
    assert_non_null(ev);
    pw_schema_result res = {0};
    pw_schema_status st = pw_schema_validate(reply_schema, ev, &res);
    if (st != PW_SCHEMA_VALID) {
        char *text = json_dumps(ev, 0);
        fprintf(stderr, "event %s\n", text);
        free(text);
        for (size_t i = 0; i < res.count; i++)
            fprintf(stderr, "  %s: %s\n", res.errors[i].instance_location, res.errors[i].message);
    }
    assert_int_equal(st, PW_SCHEMA_VALID);
    pw_schema_result_clear(&res);
    assert_string_equal(json_string_value(json_object_get(ev, "status")), "rejected");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "error"), "code")),
                        rej->code);
    json_decref(ev);
}

/* Decodes raw bytes, expects rejection code; returns nothing, checks the event shape. */
static void expect_raw(const void *payload, size_t len, const char *code, const char *id)
{
    pw_rejection rej;
    pw_request *req = pw_request_decode(chk, payload, len, &rej);
    if (req) fail_msg("accepted, expected %s", code);
    if (strcmp(rej.code, code) != 0)
        fail_msg("got %s (%s), expected %s", rej.code, rej.message, code);
    assert_string_equal(rej.id, id);
    assert_true(rej.message[0] != '\0');
    check_event(&rej);
    pw_rejection_clear(&rej);
}

/* Decodes doc (consumed), expects code, and (when location) an error unit there. */
static void expect(json_t *doc, const char *code, const char *location)
{
    pw_rejection rej;
    pw_request *req = decode_json(doc, &rej);
    if (req) fail_msg("accepted, expected %s", code);
    if (strcmp(rej.code, code) != 0)
        fail_msg("got %s (%s), expected %s", rej.code, rej.message, code);
    assert_string_equal(rej.id, "chg-2026-000123");
    if (location) {
        int found = 0;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(rej.errors, "errors"), i, e)
        {
            const char *loc = json_string_value(json_object_get(e, "instanceLocation"));
            if (loc && strcmp(loc, location) == 0) found = 1;
        }
        if (!found) {
            char *t = json_dumps(rej.errors, 0);
            fail_msg("no error at %s in %s (%s)", location, t ? t : "null", rej.message);
        }
    }
    check_event(&rej);
    pw_rejection_clear(&rej);
}

static void valid_request_decodes(void **state)
{
    (void)state;
    pw_rejection rej;
    pw_request *req = decode_json(base(), &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    assert_string_equal(pw_request_id(req), "chg-2026-000123");
    assert_null(pw_request_reply_to(req));
    assert_int_equal(pw_request_dry_run(req), 0);
    assert_int_equal(pw_request_op_count(req), 5);
    const pw_request_op *o = pw_request_op_at(req, 0);
    assert_string_equal(o->kind_name, "database.retention");
    assert_int_equal(o->route, PW_ROUTE_ARM);
    assert_string_equal(o->cluster, "mykustocluster");
    assert_string_equal(o->subscription_id, SUB);
    assert_null(o->cluster_uri);
    assert_true(o->period_ticks == 10 * PW_TICKS_PER_DAY);
    o = pw_request_op_at(req, 1);
    assert_string_equal(o->kind_name, "database.caching");
    assert_int_equal(o->route, PW_ROUTE_KUSTO);
    assert_string_equal(o->cluster_uri, URI);
    assert_string_equal(o->cluster, "mykustocluster");
    assert_true(o->period_ticks == 12 * 3600 * PW_TICKS_PER_SECOND);
    o = pw_request_op_at(req, 2);
    assert_int_equal(o->route, PW_ROUTE_KUSTO);
    assert_string_equal(o->cluster_uri, URI); /* trailing slash dropped */
    assert_string_equal(o->table, "StormEvents");
    o = pw_request_op_at(req, 3);
    assert_string_equal(o->cluster_uri, URI); /* host lower-cased */
    assert_string_equal(o->kind_name, "table.retention");
    o = pw_request_op_at(req, 4);
    assert_string_equal(o->kind_name, "database.principal.add");
    assert_string_equal(json_string_value(json_object_get(o->principal, "name")), "deploy-bot");
    assert_null(pw_request_op_at(req, 5));
    char kname[PW_OPS_KIND_NAME_MAX];
    assert_string_equal(pw_ops_kind_name(pw_request_op_at(req, 0)->kind, kname, sizeof kname),
                        "database.retention");
    pw_request_free(req);

    /* replyTo allowed: kept; dryRun read. */
    json_t *doc = base();
    json_object_set_new(doc, "replyTo", json_string("team.replies"));
    json_object_set_new(doc, "dryRun", json_true());
    req = decode_json(doc, &rej);
    assert_non_null(req);
    assert_string_equal(pw_request_reply_to(req), "team.replies");
    assert_int_equal(pw_request_dry_run(req), 1);
    pw_request_free(req);
}

static void bounds_and_json(void **state)
{
    (void)state;
    char big[9000];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[sizeof big - 1] = '}';
    expect_raw(big, sizeof big, "MessageTooLarge", "");

    const char bad_utf8[] = "{\"id\":\"x\",\"reason\":\"\xff\xfe\"}";
    expect_raw(bad_utf8, strlen(bad_utf8), "InvalidUtf8", "");
    const char overlong[] = "{\"id\":\"x\",\"reason\":\"\xc0\xaf\"}";
    expect_raw(overlong, strlen(overlong), "InvalidUtf8", "");
    const char surrogate[] = "{\"id\":\"x\",\"reason\":\"\xed\xa0\x80\"}";
    expect_raw(surrogate, strlen(surrogate), "InvalidUtf8", "");
    const char truncated[] = "{\"id\":\"x\",\"reason\":\"\xe2\x82\"}";
    expect_raw(truncated, strlen(truncated), "InvalidUtf8", "");

    char deep[4000];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "{\"id\":\"chg-1\",\"x\":");
    for (int i = 0; i < 1000; i++)
        deep[n++] = '[';
    for (int i = 0; i < 1000; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    expect_raw(deep, n, "NestingTooDeep", "");
    /* brackets inside strings do not count */
    char shallow[200];
    n = (size_t)snprintf(shallow, sizeof shallow,
                         "{\"id\":\"chg-1\",\"reason\":\"[[[[[[[[[[[[[[[[[[[[[[\\\"[[[\"}");
    expect_raw(shallow, n, "SchemaViolation", "chg-1");

    expect_raw("not json", 8, "InvalidJson", "");
    expect_raw("", 0, "InvalidJson", "");
    expect_raw("{\"id\":\"a\",\"id\":\"b\"}", 19, "InvalidJson", "");
    expect_raw("[1,2]", 5, "NotAnObject", "");
    expect_raw("42", 2, "NotAnObject", "");
    expect_raw("\"str\"", 5, "NotAnObject", "");
}

static void ids(void **state)
{
    (void)state;
    const char no_id[] = "{\"schema\":\"adx-policy-request/"
                         "v1\",\"requestedBy\":\"a@contoso.com\",\"operations\":[]}";
    expect_raw(no_id, strlen(no_id), "MissingId", "");
    const char *bad_ids[] = {"{\"id\":\"\"}", "{\"id\":\"has space\"}", "{\"id\":42}",
                             "{\"id\":\"a/b\"}", "{\"id\":null}"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++)
        expect_raw(bad_ids[i], strlen(bad_ids[i]), "InvalidId", "");
    char long_id[200];
    int n = snprintf(long_id, sizeof long_id, "{\"id\":\"%0129d\"}", 0);
    expect_raw(long_id, (size_t)n, "InvalidId", "");
}

static void schema_violations(void **state)
{
    (void)state;
    json_t *d = base();
    json_object_del(json_object_get(op(d, 0), "target"), "cluster");
    expect(d, "SchemaViolation", "/operations/0/target");

    d = base(); /* kusto route without clusterUri */
    json_object_del(json_object_get(op(d, 1), "target"), "clusterUri");
    expect(d, "SchemaViolation", "/operations/1/target");

    d = base(); /* table kinds have no ARM route */
    json_object_set_new(op(d, 2), "via", json_string("arm"));
    expect(d, "SchemaViolation", "/operations/2/via");

    d = base(); /* a typo in a field name */
    json_object_set_new(op(d, 0), "softDeletePerod", json_string("P1D"));
    expect(d, "SchemaViolation", "/operations/0");

    d = base(); /* who asked is required, for the audit trail */
    json_object_del(d, "requestedBy");
    expect(d, "SchemaViolation", "");
    d = base();
    json_object_set_new(d, "requestedBy", json_string(""));
    expect(d, "SchemaViolation", "/requestedBy");

    d = base();
    json_object_set_new(d, "schema", json_string("adx-policy-request/v2"));
    expect(d, "SchemaViolation", "/schema");

    d = base();
    json_object_set_new(d, "operations", json_array());
    expect(d, "SchemaViolation", "/operations");

    d = base();
    json_object_set_new(json_object_get(op(d, 4), "principal"), "role", json_string("Root"));
    expect(d, "SchemaViolation", "/operations/4/principal/role");

    d = base();
    json_object_set_new(op(d, 1), "kind", json_string("database.drop"));
    expect(d, "UnknownOperationKind", "/operations/1/kind");

    d = base();
    json_t *ops = json_object_get(d, "operations");
    for (int i = 0; i < 3; i++)
        json_array_append(ops, op(d, 0));
    expect(d, "TooManyOperations", "/operations");
}

static void durations(void **state)
{
    (void)state;
    json_t *d = base();
    json_object_set_new(op(d, 0), "softDeletePeriod", json_string("P10X"));
    expect(d, "InvalidDuration", "/operations/0/softDeletePeriod");
    d = base();
    json_object_set_new(op(d, 1), "hotCachePeriod", json_string("P1Y"));
    expect(d, "InvalidDuration", "/operations/1/hotCachePeriod");
    d = base();
    json_object_set_new(op(d, 2), "hotCachePeriod", json_string("5d"));
    expect(d, "InvalidDuration", "/operations/2/hotCachePeriod");
    d = base();
    json_object_set_new(op(d, 0), "softDeletePeriod", json_string("-P5D"));
    expect(d, "DurationOutOfRange", "/operations/0/softDeletePeriod");
    d = base();
    json_object_set_new(op(d, 3), "softDeletePeriod", json_string("P0D"));
    expect(d, "DurationOutOfRange", "/operations/3/softDeletePeriod");
    d = base();
    json_object_set_new(op(d, 0), "softDeletePeriod", json_string("P36501D"));
    expect(d, "DurationOutOfRange", "/operations/0/softDeletePeriod");
    d = base();
    json_object_set_new(op(d, 2), "hotCachePeriod", json_string("P99999999999D"));
    expect(d, "DurationOutOfRange", "/operations/2/hotCachePeriod");
    d = base(); /* hot cache of zero is a legitimate policy (nothing hot) */
    json_object_set_new(op(d, 2), "hotCachePeriod", json_string("P0D"));
    pw_rejection rej;
    pw_request *req = decode_json(d, &rej);
    assert_non_null(req);
    pw_request_free(req);
}

static void names(void **state)
{
    (void)state;
    expect(with_target(2, "table", "'] ; .drop table X"), "InvalidName",
           "/operations/2/target/table");
    expect(with_target(3, "table", "__reserved"), "InvalidName", "/operations/3/target/table");
    expect(with_target(1, "database", "db\"x"), "InvalidName", "/operations/1/target/database");
    expect(with_target(0, "resourceGroup", "testrg/../other"), "InvalidName",
           "/operations/0/target/resourceGroup");
    expect(with_target(0, "resourceGroup", "a..b"), "InvalidName",
           "/operations/0/target/resourceGroup");
    expect(with_target(0, "resourceGroup", "rg?x=1"), "InvalidName",
           "/operations/0/target/resourceGroup");
    expect(with_target(0, "subscriptionId", "not-a-guid"), "InvalidName",
           "/operations/0/target/subscriptionId");
    expect(with_target(4, "cluster", "My/Cluster"), "InvalidName", "/operations/4/target/cluster");
    expect(with_target(0, "database", ".."), "InvalidName", "/operations/0/target/database");
    expect(with_target(0, "database", "a\tb"), "InvalidName", "/operations/0/target/database");
    /* ARM path normalization would turn ".../databases/db." into ".../databases/db" */
    expect(with_target(0, "database", "db."), "InvalidName", "/operations/0/target/database");
    expect(with_target(4, "database", "."), "InvalidName", "/operations/4/target/database");
    /* the kusto route brackets the name: allowed there */
    pw_rejection rej;
    pw_request *req = decode_json(with_target(1, "database", "db."), &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    pw_request_free(req);
}

static void principal_fqns(void **state)
{
    (void)state;
    /* kusto route: the FQN goes into a string literal, so it is held to a strict rule */
    json_t *d = base();
    json_object_set_new(op(d, 4), "via", json_string("kusto"));
    json_object_set_new(op(d, 4), "target",
                        json_pack("{s:s, s:s}", "clusterUri", URI, "database", "db"));
    json_object_set_new(json_object_get(op(d, 4), "principal"), "appId",
                        json_string("x') ; .drop table X //"));
    expect(d, "InvalidName", "/operations/4/principal/appId");
    d = base();
    json_object_set_new(op(d, 4), "via", json_string("kusto"));
    json_object_set_new(op(d, 4), "target",
                        json_pack("{s:s, s:s}", "clusterUri", URI, "database", "db"));
    json_object_set_new(json_object_get(op(d, 4), "principal"), "fqn", json_string("aaduser=a b"));
    expect(d, "InvalidName", "/operations/4/principal/fqn");
    d = base(); /* a User on the kusto route needs an e-mail or FQN */
    json_object_set_new(op(d, 4), "via", json_string("kusto"));
    json_object_set_new(op(d, 4), "target",
                        json_pack("{s:s, s:s}", "clusterUri", URI, "database", "db"));
    json_object_set_new(json_object_get(op(d, 4), "principal"), "type", json_string("User"));
    expect(d, "SchemaViolation", "/operations/4/principal");

    d = base();
    json_object_set_new(op(d, 4), "via", json_string("kusto"));
    json_object_set_new(op(d, 4), "target",
                        json_pack("{s:s, s:s}", "clusterUri", URI, "database", "db"));
    json_object_set_new(json_object_get(op(d, 4), "principal"), "tenantName",
                        json_string("contoso.onmicrosoft.com"));
    pw_rejection rej;
    pw_request *req = decode_json(d, &rej);
    if (!req) fail_msg("%s %s", rej.code, rej.message);
    assert_string_equal(pw_request_op_at(req, 4)->principal_fqn,
                        "aadapp=44444444-4444-4444-4444-444444444444;contoso.onmicrosoft.com");
    pw_request_free(req);
}

/* Request text quoted in a message must not make the rejection unbuildable: a bounded
 * quote (%.40s, %.64s) or the message buffer can split a multi-byte character, and a
 * designator can be a byte of one.  Every case must still give a schema-valid event
 * (expect() builds and validates it) whose texts are valid UTF-8. */
static void non_ascii_in_messages(void **state)
{
    (void)state;
    json_t *d = base();
    json_object_set_new(op(d, 0), "softDeletePeriod", json_string("P1\xc3\xa9"));
    expect(d, "InvalidDuration", "/operations/0/softDeletePeriod");

    /* 39 ASCII bytes then "é": the 40-byte quote ends inside the character */
    char text[64];
    snprintf(text, sizeof text, "P1X%s\xc3\xa9", "000000000000000000000000000000000000");
    assert_int_equal(strlen(text), 41);
    d = base();
    json_object_set_new(op(d, 0), "softDeletePeriod", json_string(text));
    expect(d, "InvalidDuration", "/operations/0/softDeletePeriod");

    /* an unknown kind of 33 two-byte characters: the 64-byte quote ends inside one */
    char kind[80] = "x";
    for (int i = 0; i < 33; i++)
        strcat(kind, "\xc3\xa9");
    d = base();
    json_object_set_new(op(d, 1), "kind", json_string(kind));
    pw_rejection rej;
    assert_null(decode_json(d, &rej));
    assert_string_equal(rej.code, "UnknownOperationKind");
    check_event(&rej);
    json_t *msg = json_string(rej.message); /* NULL when not valid UTF-8 */
    assert_non_null(msg);
    json_decref(msg);
    pw_rejection_clear(&rej);

    /* The same for errors built from Azure's text (exec): a cut character, a stray byte. */
    json_t *e = pw_reply_error("Throttled", "ab\xc3", 1);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "message")), "ab\xef\xbf\xbd");
    json_decref(e);
    char buf[] = "x\xff\xc3\xa9\xe2\x82";
    pw_reply_scrub(buf);
    assert_string_equal(buf, "x?\xc3\xa9??");

    /* pw_reply_utf8_seq keeps to the bytes it is given: a whole sequence, a cut one. */
    const unsigned char four[] = "\xf0\x9f\x98\x80";
    assert_int_equal(pw_reply_utf8_seq(four, 4), 4);
    assert_int_equal(pw_reply_utf8_seq(four, 3), 0);
    assert_int_equal(pw_reply_utf8_seq((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
    assert_int_equal(pw_reply_utf8_seq((const unsigned char *)"a", 0), 0);
}

static int reply_valid(json_t *ev)
{
    pw_schema_status st = pw_schema_validate(reply_schema, ev, NULL);
    json_decref(ev);
    return st == PW_SCHEMA_VALID;
}

static json_t *failed_event(const char *code, const char *op_code)
{
    json_t *ev = pw_reply_frame("r-1", "failed", 3, "w");
    json_t *op = json_pack("{s:i, s:s, s:s, s:{}, s:s}", "index", 0, "kind", "database.retention",
                           "route", "arm", "target", "status", "failed");
    if (op_code) json_object_set_new(op, "error", pw_reply_error(op_code, "m", 0));
    json_object_set_new(ev, "operations", json_pack("[o]", op));
    if (code) json_object_set_new(ev, "error", pw_reply_error(code, "m", 0));
    return ev;
}

/* Every code the executor and the Azure client can put into a failed event is listed in
 * reply.v1.json's operationErrorCode, and the schema holds failed events to that list. */
static void reply_codes_listed(void **state)
{
    (void)state;
    const char *codes[] = {PW_AZ_CODE_THROTTLED,   PW_AZ_CODE_UNAVAILABLE, PW_AZ_CODE_TLS,
                           PW_AZ_CODE_AUTH,        PW_AZ_CODE_FORBIDDEN,   PW_AZ_CODE_NOT_FOUND,
                           PW_AZ_CODE_BAD_REQUEST, PW_AZ_CODE_DEADLINE,    PW_AZ_CODE_LRO_FAILED,
                           PW_AZ_CODE_PROTOCOL,    "InternalError",        "RolloutHalted",
                           "TargetsFailed",        "TooManyTargets",       "InvalidTarget"};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        if (!reply_valid(failed_event(codes[i], codes[i]))) fail_msg("%s not accepted", codes[i]);
    }
    assert_false(reply_valid(failed_event("NoSuchCode", PW_AZ_CODE_THROTTLED)));
    assert_false(reply_valid(failed_event(PW_AZ_CODE_THROTTLED, "NoSuchCode")));
    assert_false(reply_valid(failed_event(PW_REJECT_SCHEMA, NULL)));     /* a rejection code */
    assert_false(reply_valid(failed_event(NULL, PW_AZ_CODE_THROTTLED))); /* no error */
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

/* A looser schema (worker.schemas.dir is configurable) must not let a table operation onto
 * the arm route: its plan would PATCH the whole database's period. */
static void table_kinds_only_via_kusto(void **state)
{
    (void)state;
    char dir[] = "/tmp/pw-schemas-XXXXXX", cmd[512], path[600];
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "cp -r '%s/schemas/.' '%s/'", PW_SOURCE_DIR, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/ops/table.retention.v1.json", dir);
    char *text = slurp(path);
    assert_non_null(text);
    char *via = strstr(text, "{\"const\": \"kusto\", \"default\": \"kusto\"}");
    assert_non_null(via);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "%.*s{\"enum\": [\"arm\", \"kusto\", \"other\"]}%s", (int)(via - text), text,
            via + strlen("{\"const\": \"kusto\", \"default\": \"kusto\"}"));
    fclose(f);
    free(text);

    pw_config c2 = cfg;
    c2.schemas_dir = dir;
    char err[256];
    pw_request_checker *k2 = pw_request_checker_new(&c2, err, sizeof err);
    if (!k2) fail_msg("%s", err);
    const char *vias[] = {"arm", "other"};
    for (size_t i = 0; i < 2; i++) {
        json_t *d = base();
        json_t *o = op(d, 3);
        json_object_set_new(o, "via", json_string(vias[i]));
        json_t *t = json_object_get(o, "target");
        json_object_set_new(t, "subscriptionId", json_string(SUB));
        json_object_set_new(t, "resourceGroup", json_string("testrg"));
        json_object_set_new(t, "cluster", json_string("mykustocluster"));
        char *req = json_dumps(d, JSON_COMPACT);
        json_decref(d);
        pw_rejection rej;
        pw_request *r = pw_request_decode(k2, req, strlen(req), &rej);
        free(req);
        if (r) fail_msg("table.retention via %s accepted", vias[i]);
        assert_string_equal(rej.code, "SchemaViolation");
        assert_string_equal(
            json_string_value(json_object_get(
                json_array_get(json_object_get(rej.errors, "errors"), 0), "instanceLocation")),
            "/operations/3/via");
        check_event(&rej);
        pw_rejection_clear(&rej);
    }
    pw_request_checker_free(k2);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void cluster_uris(void **state)
{
    (void)state;
    struct {
        const char *uri, *code;
    } cases[] = {
        {"https://evil.example.com", "ClusterHostNotAllowed"},
        {"https://kusto.windows.net", "ClusterHostNotAllowed"},
        {"https://x.kusto.windows.net.evil.com", "ClusterHostNotAllowed"},
        {"https://xkusto.windows.net", "ClusterHostNotAllowed"},
        {"http://mykustocluster.westus.kusto.windows.net", "InvalidClusterUri"},
        {"https://user:pw@mykustocluster.westus.kusto.windows.net", "InvalidClusterUri"},
        {"https://evil.com@mykustocluster.westus.kusto.windows.net", "InvalidClusterUri"},
        {"https://mykustocluster.westus.kusto.windows.net:8443", "InvalidClusterUri"},
        {"https://mykustocluster.westus.kusto.windows.net/v1/rest", "InvalidClusterUri"},
        {"https://mykustocluster.westus.kusto.windows.net?x=1", "InvalidClusterUri"},
        {"https://mykustocluster.westus.kusto.windows.net#f", "InvalidClusterUri"},
        {"https://", "InvalidClusterUri"},
        {"mykustocluster.westus.kusto.windows.net", "InvalidClusterUri"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        expect(with_target(2, "clusterUri", cases[i].uri), cases[i].code,
               "/operations/2/target/clusterUri");
    }
}

static void reply_to(void **state)
{
    (void)state;
    json_t *d = base();
    json_object_set_new(d, "replyTo", json_string("someone.elses.topic"));
    pw_rejection rej;
    assert_null(decode_json(d, &rej));
    assert_string_equal(rej.code, "ReplyToNotAllowed");
    assert_string_equal(rej.reply_to, ""); /* the rejection goes to the default topic */
    check_event(&rej);
    pw_rejection_clear(&rej);

    /* an allowed replyTo routes even the rejection */
    d = base();
    json_object_set_new(d, "replyTo", json_string("team.replies"));
    json_object_set_new(op(d, 0), "softDeletePeriod", json_string("P10X"));
    assert_null(decode_json(d, &rej));
    assert_string_equal(rej.code, "InvalidDuration");
    assert_string_equal(rej.reply_to, "team.replies");
    pw_rejection_clear(&rej);

    d = base(); /* the default reply topic is always allowed */
    json_object_set_new(d, "replyTo", json_string("adx.policy.replies"));
    pw_request *req = decode_json(d, &rej);
    assert_non_null(req);
    assert_string_equal(pw_request_reply_to(req), "adx.policy.replies");
    pw_request_free(req);
}

static void host_suffix_config(void **state)
{
    (void)state;
    char *suffixes[] = {".kusto.localtest"};
    pw_config c2 = cfg;
    c2.kusto_host_suffixes = suffixes;
    c2.kusto_host_suffix_count = 1;
    char err[256];
    pw_request_checker *k2 = pw_request_checker_new(&c2, err, sizeof err);
    assert_non_null(k2);
    json_t *d = base();
    char *text = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    pw_rejection rej;
    assert_null(pw_request_decode(k2, text, strlen(text), &rej));
    assert_string_equal(rej.code, "ClusterHostNotAllowed");
    pw_rejection_clear(&rej);
    free(text);
    pw_request_checker_free(k2);

    c2.schemas_dir = "/nonexistent";
    assert_null(pw_request_checker_new(&c2, err, sizeof err));
    assert_non_null(strstr(err, "worker.schemas.dir"));
}

static int known_code(const char *code)
{
    static const char *const codes[] = {
        "MessageTooLarge",      "InvalidUtf8",     "NestingTooDeep",    "InvalidJson",
        "NotAnObject",          "MissingId",       "InvalidId",         "TooManyOperations",
        "UnknownOperationKind", "SchemaViolation", "ReplyToNotAllowed", "InvalidDuration",
        "DurationOutOfRange",   "InvalidName",     "InvalidClusterUri", "ClusterHostNotAllowed"};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (strcmp(code, codes[i]) == 0) return 1;
    return 0;
}

/* Every prefix of a valid request, and many random byte mutations of it, either decode or
 * are rejected with a documented code (and never crash: this runs under ASan/UBSan). */
static void truncations_and_mutations(void **state)
{
    (void)state;
    json_t *d = base();
    char *text = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    for (size_t n = 0; n < len; n++) {
        memcpy(copy, text, n);
        pw_rejection rej;
        pw_request *req = pw_request_decode(chk, copy, n, &rej);
        assert_null(req);
        if (!known_code(rej.code)) fail_msg("prefix %zu: unknown code '%s'", n, rej.code);
        pw_rejection_clear(&rej);
    }
    unsigned seed = 12345;
    static const char alphabet[] = "{}[]\":,\\ 0aZ'-._/\x01\xff\xc3";
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, text, len);
        int flips = 1 + round % 3;
        for (int k = 0; k < flips; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            copy[at] = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
        }
        pw_rejection rej;
        pw_request *req = pw_request_decode(chk, copy, len, &rej);
        if (req) {
            pw_request_free(req);
            continue;
        }
        if (!known_code(rej.code)) fail_msg("mutation %d: unknown code '%s'", round, rej.code);
        json_t *ev = pw_reply_rejection(&rej, "w");
        assert_non_null(ev);
        assert_int_equal(pw_schema_validate(reply_schema, ev, NULL), PW_SCHEMA_VALID);
        json_decref(ev);
        pw_rejection_clear(&rej);
    }
    free(copy);
    free(text);
}

/* Decodes raw bytes or doc (consumed), expects code and a message containing each of says
 * (NULL-terminated) and none of avoid. */
static void expect_message(const char *raw, json_t *doc, const pw_config *c, const char *code,
                           const char *const *says, const char *avoid)
{
    pw_request_checker *k = chk;
    char err[256];
    if (c && !(k = pw_request_checker_new(c, err, sizeof err))) fail_msg("%s", err);
    char *text = raw ? NULL : json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    pw_rejection rej;
    pw_request *req = pw_request_decode(k, raw ? raw : text, strlen(raw ? raw : text), &rej);
    free(text);
    if (req) fail_msg("accepted, expected %s", code);
    if (strcmp(rej.code, code) != 0)
        fail_msg("got %s (%s), expected %s", rej.code, rej.message, code);
    for (size_t i = 0; says[i]; i++)
        if (!strstr(rej.message, says[i]))
            fail_msg("%s: \"%s\" does not say \"%s\"", code, rej.message, says[i]);
    if (avoid && strstr(rej.message, avoid))
        fail_msg("%s: \"%s\" says \"%s\"", code, rej.message, avoid);
    pw_rejection_clear(&rej);
    if (k != chk) pw_request_checker_free(k);
}

/* Messages a person can act on: each says what is wrong and, where there is one, the
 * limit or the configuration key. */
static void messages_a_person_can_act_on(void **state)
{
    (void)state;
    expect_message("", NULL, NULL, "InvalidJson", (const char *[]){"empty", NULL}, "token");
    expect_message(" \n", NULL, NULL, "InvalidJson", (const char *[]){"whitespace", NULL}, NULL);
    expect_message("{\"id\":42}", NULL, NULL, "InvalidId",
                   (const char *[]){"must be a string, got a number", NULL}, NULL);
    expect_message("{\"id\":[\"a\"]}", NULL, NULL, "InvalidId",
                   (const char *[]){"got an array", NULL}, NULL);
    char long_id[200];
    snprintf(long_id, sizeof long_id, "{\"id\":\"%0129d\"}", 0);
    expect_message(long_id, NULL, NULL, "InvalidId", (const char *[]){"128", "129", NULL}, NULL);

    json_t *d = base();
    json_object_set_new(op(d, 2), "hotCachePeriod", json_string("P99999999999D"));
    expect_message(NULL, d, NULL, "DurationOutOfRange", (const char *[]){"36500 days", NULL},
                   "absurd");

    d = base(); /* an error at the root names it, not an empty location */
    json_object_del(d, "requestedBy");
    expect_message(NULL, d, NULL, "SchemaViolation",
                   (const char *[]){"(root): required property \"requestedBy\"", NULL}, ": :");

    expect_message(NULL, with_target(2, "clusterUri", "https://evil.example.com"), NULL,
                   "ClusterHostNotAllowed",
                   (const char *[]){"evil.example.com", "allowed: .kusto.windows.net, ",
                                    ".kustomfa.windows.net)", NULL},
                   NULL);
    /* a long list: at most 8 named, the rest counted */
    char *many[12] = {".a.example", ".b.example", ".c.example", ".d.example",
                      ".e.example", ".f.example", ".g.example", ".h.example",
                      ".i.example", ".j.example", ".k.example", ".l.example"};
    pw_config c2 = cfg;
    c2.kusto_host_suffixes = many;
    c2.kusto_host_suffix_count = 12;
    expect_message(NULL, with_target(2, "clusterUri", "https://evil.example.com"), &c2,
                   "ClusterHostNotAllowed", (const char *[]){".h.example and 4 more)", NULL},
                   ".i.example");

    d = base();
    json_object_set_new(d, "replyTo", json_string("someone.elses.topic"));
    expect_message(NULL, d, NULL, "ReplyToNotAllowed",
                   (const char *[]){"\"someone.elses.topic\"", "worker.replyto.allowed",
                                    "worker.reply.topic", NULL},
                   NULL);
    char topic[250];
    memset(topic, 'x', 249);
    topic[249] = '\0';
    d = base();
    json_object_set_new(d, "replyTo", json_string(topic));
    topic[65] = '\0'; /* quoted up to 64 bytes */
    expect_message(NULL, d, NULL, "ReplyToNotAllowed", (const char *[]){"xxx...\"", NULL}, topic);
}

/* A database name within its rule (1,024 characters) can still make an ARM path longer
 * than the Azure client sends (a space is 3 bytes encoded): refused at validation, with
 * the limit, instead of failing later with InternalError. */
static void arm_path_limit(void **state)
{
    (void)state;
    static const char head[] = "/subscriptions/" SUB "/resourceGroups/testrg/providers/"
                               "Microsoft.Kusto/clusters/mykustocluster/databases/";
    char db[1025];
    db[0] = 'a';
    memset(db + 1, ' ', 1022);
    db[1023] = 'b';
    db[1024] = '\0';
    expect(with_target(0, "database", db), "InvalidName", "/operations/0/target/database");
    pw_rejection rej;
    assert_null(decode_json(with_target(0, "database", db), &rej));
    assert_non_null(strstr(rej.message, "2048"));
    pw_rejection_clear(&rej);
    /* the kusto route puts it in no path */
    pw_request *req = decode_json(with_target(1, "database", db), &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    pw_request_free(req);

    /* At the limit exactly (operation 4 reads with .../listPrincipals): planned, and the
     * path is PW_PLAN_ARM_PATH_MAX bytes; one byte more is refused. */
    size_t budget = PW_PLAN_ARM_PATH_MAX - (sizeof head - 1) - strlen("/listPrincipals");
    size_t spaces = 450, rest = budget - 2 - 3 * spaces;
    assert_true(2 + spaces + rest < sizeof db);
    db[0] = 'a';
    memset(db + 1, ' ', spaces);
    db[1 + spaces] = 'b';
    memset(db + 2 + spaces, 'c', rest);
    db[2 + spaces + rest] = '\0';
    req = decode_json(with_target(4, "database", db), &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    assert_int_equal(pw_plan_arm_path_len(pw_request_op_at(req, 4)), PW_PLAN_ARM_PATH_MAX);
    char err[128];
    pw_plan *plan = pw_plan_new(req, NULL, err, sizeof err);
    if (!plan) fail_msg("%s", err);
    const pw_plan_op *pop = pw_plan_op_at(plan, 4);
    assert_int_equal(strlen(pop->read.path), PW_PLAN_ARM_PATH_MAX);
    assert_int_equal(strncmp(pop->read.path, head, sizeof head - 1), 0);
    assert_non_null(strstr(pop->read.path, "a%20%20"));
    assert_int_equal(strlen(pop->apply.path), PW_PLAN_ARM_PATH_MAX - 1); /* /addPrincipals */
    pw_plan_free(plan);
    pw_request_free(req);
    db[2 + spaces + rest] = 'c';
    db[3 + spaces + rest] = '\0';
    expect(with_target(4, "database", db), "InvalidName", "/operations/4/target/database");
}

/* base() as text with the first `from` replaced by `to` (raw JSON text), decoded. */
static pw_request *decode_edited(const char *from, const char *to, pw_rejection *rej)
{
    json_t *d = base();
    json_object_set_new(d, "replyTo", json_string("team.replies"));
    char *text = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    char *at = strstr(text, from);
    if (!at) fail_msg("%s not in the request", from);
    size_t n = strlen(text) + strlen(to) + 1;
    char *edited = malloc(n);
    snprintf(edited, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    pw_request *req = pw_request_decode(chk, edited, strlen(edited), rej);
    free(edited);
    free(text);
    return req;
}

/* Expects the edit rejected with code, keyed by the id (id_kept) or not, the error at
 * location (NULL: none asked) and the message naming what it found. */
static void expect_edited(const char *from, const char *to, const char *code, int id_kept,
                          const char *location, const char *says)
{
    pw_rejection rej;
    pw_request *req = decode_edited(from, to, &rej);
    if (req) fail_msg("%s -> %s accepted, expected %s", from, to, code);
    if (strcmp(rej.code, code) != 0)
        fail_msg("%s -> %s: got %s (%s), expected %s", from, to, rej.code, rej.message, code);
    assert_string_equal(rej.id, id_kept ? "chg-2026-000123" : "");
    assert_int_equal(rej.internal, 0);
    if (location) {
        const json_t *first = json_array_get(json_object_get(rej.errors, "errors"), 0);
        const char *loc = json_string_value(json_object_get(first, "instanceLocation"));
        if (!loc || strcmp(loc, location) != 0)
            fail_msg("%s -> %s: location %s, expected %s (%s)", from, to, loc ? loc : "none",
                     location, rej.message);
    }
    if (says && !strstr(rej.message, says))
        fail_msg("%s -> %s: message \"%s\" does not say \"%s\"", from, to, rej.message, says);
    if (id_kept) check_event(&rej);
    pw_rejection_clear(&rej);
}

/* A NUL (\u0000) would cut a name short where it is used as a C string ("Storm" instead of
 * "Storm\0Events"); a lone surrogate escape makes jansson refuse the document.  Either is a
 * rejection keyed by the id: InvalidName in a name, InvalidJson elsewhere. */
static void nul_and_surrogate_escapes(void **state)
{
    (void)state;
    const char *nul = "NUL character", *lone = "lone UTF-16 surrogate";
    expect_edited("\"StormEvents\"", "\"Storm\\u0000Events\"", "InvalidName", 1,
                  "/operations/2/target/table", nul);
    expect_edited("\"StormEvents\"", "\"Storm\\uD800Events\"", "InvalidName", 1,
                  "/operations/2/target/table", lone);
    expect_edited("\"StormEvents\"", "\"StormEvents\\uDFFF\"", "InvalidName", 1,
                  "/operations/2/target/table", lone);
    expect_edited("\"mykustocluster\"", "\"mykusto\\u0000cluster\"", "InvalidName", 1,
                  "/operations/0/target/cluster", nul);
    expect_edited("\"deploy-bot\"", "\"deploy\\ud83d-bot\"", "InvalidName", 1,
                  "/operations/4/principal/name", lone);
    expect_edited("\"reason\":\"test\"", "\"reason\":\"te\\u0000st\"", "InvalidJson", 1, "/reason",
                  nul);
    expect_edited("\"reason\":\"test\"", "\"reason\":\"\\uDC00\\uD800\"", "InvalidJson", 1,
                  "/reason", lone);
    /* both kinds in one message: the message says it may be either */
    expect_edited("\"reason\":\"test\"", "\"reason\":\"\\u0000\\uD800\"", "InvalidJson", 1,
                  "/reason", "or a lone");
    /* in a key: jansson keeps no NUL in keys; the rejection still has the id */
    expect_edited("\"reason\":", "\"rea\\u0000son\":", "InvalidJson", 1, NULL, "object key");
    expect_edited("\"reason\":", "\"rea\\uDBFFson\" :", "InvalidJson", 1, NULL, "object key");
    /* in the id itself: no usable id (dead letter) */
    expect_edited("\"chg-2026-000123\"", "\"chg-2026-000123\\u0000x\"", "InvalidId", 0, NULL, NULL);
    expect_edited("\"chg-2026-000123\"", "\"chg-2026\\uD800-000123\"", "InvalidId", 0, NULL, NULL);
    /* in replyTo: the topic is not used, the rejection goes to the default reply topic */
    pw_rejection rej;
    assert_null(decode_edited("\"team.replies\"", "\"team.replies\\u0000x\"", &rej));
    assert_string_equal(rej.code, "InvalidJson");
    assert_string_equal(rej.reply_to, "");
    pw_rejection_clear(&rej);

    /* not NULs or lone surrogates: a pair, an escaped backslash before "u0000" */
    pw_request *req = decode_edited("\"reason\":\"test\"", "\"reason\":\"\\uD83D\\uDE00\"", &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    pw_request_free(req);
    req = decode_edited("\"reason\":\"test\"", "\"reason\":\"a\\\\u0000\\\\uD800\"", &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    pw_request_free(req);
    /* a bad escape stays the parser's to report */
    const char bad_escape[] = "{\"id\":\"x\",\"reason\":\"\\uD80\"}";
    expect_raw(bad_escape, strlen(bad_escape), "InvalidJson", "");
}

/* Jansson's allocator, failing the allocation numbered fail_at (counted from 1; 0: none). */
static size_t alloc_count, fail_at;
static int alloc_failed;

static void *failing_malloc(size_t n)
{
    if (++alloc_count == fail_at) {
        alloc_failed = 1;
        return NULL;
    }
    return malloc(n);
}

/* Out of memory while decoding is the worker's failure, never the message's: each jansson
 * allocation of a good request's decode fails in turn, and each time the request comes back
 * internal (not to be answered or committed) - never rejected, and never decoded either
 * (jansson can go on with a token cut short). */
static void out_of_memory_is_internal(void **state)
{
    (void)state;
    json_t *plain = base(), *with_reply = base();
    json_object_set_new(with_reply, "replyTo", json_string("team.replies"));
    json_t *docs[2] = {plain, with_reply};
    char *texts[2];
    for (size_t d = 0; d < 2; d++)
        assert_non_null(texts[d] = json_dumps(docs[d], JSON_COMPACT));
    json_decref(plain);
    json_decref(with_reply);

    /* The checker is made under the failing allocator (not failing yet): the decoder wraps
     * whatever allocator it finds. */
    fail_at = 0;
    json_set_alloc_funcs(failing_malloc, free);
    char err[256];
    pw_request_checker *k2 = pw_request_checker_new(&cfg, err, sizeof err);
    if (!k2) fail_msg("%s", err);
    for (size_t d = 0; d < 2; d++) {
        for (fail_at = 1;; fail_at++) {
            alloc_count = 0;
            alloc_failed = 0;
            pw_rejection rej;
            pw_request *req = pw_request_decode(k2, texts[d], strlen(texts[d]), &rej);
            pw_request_free(req);
            if (alloc_failed && (req || !rej.internal || strcmp(rej.code, "InternalError") != 0))
                fail_msg("allocation %zu of %zu failed: %s (%s), expected an internal error",
                         fail_at, alloc_count, req ? "decoded" : rej.code, rej.message);
            if (!alloc_failed && !req) fail_msg("%s: %s", rej.code, rej.message);
            pw_rejection_clear(&rej);
            if (!alloc_failed) break; /* every allocation has had its turn */
        }
        assert_true(fail_at > 10);
        free(texts[d]);
    }
    fail_at = 0;
    pw_request_checker_free(k2);
    json_set_alloc_funcs(malloc, free);

    /* A rejection is a verdict: not internal. */
    pw_rejection rej;
    assert_null(pw_request_decode(chk, "not json", 8, &rej));
    assert_string_equal(rej.code, "InvalidJson");
    assert_int_equal(rej.internal, 0);
    pw_rejection_clear(&rej);
}


/* ------------------------------------------------------------------ rollouts */

/* A rollout request over n database targets db0.. (ARM form) with one template each of
 * database.caching and database.retention, and waves (NULL: none).  New reference. */
static json_t *rollout(size_t n, json_t *waves)
{
    json_t *targets = json_array();
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "db%zu", i);
        json_t *t = arm_target();
        json_object_set_new(t, "database", json_string(name));
        json_array_append_new(targets, t);
    }
    json_t *r = json_pack("{s:s, s:s, s:s, s:{s:o, s:[{s:s, s:s}, {s:s, s:s}]}}", "schema",
                          "adx-policy-request/v1", "id", "chg-2026-000123", "requestedBy", "me",
                          "rollout", "targets", targets, "operations", "kind", "database.caching",
                          "hotCachePeriod", "P5D", "kind", "database.retention",
                          "softDeletePeriod", "P10D");
    if (waves) json_object_set_new(json_object_get(r, "rollout"), "waves", waves);
    return r;
}

static json_t *ro_member(json_t *r, const char *key)
{
    return json_object_get(json_object_get(r, "rollout"), key);
}

static json_t *selector(const char *kind, json_t *fields)
{
    json_t *r = rollout(1, NULL);
    json_object_set_new(json_object_get(r, "rollout"), "targets",
                        json_pack("{s:{s:o}}", "selector", kind, fields));
    return r;
}

static void rollouts_decode(void **state)
{
    (void)state;
    pw_rejection rej;
    /* a list: target-major operations, each checked and planned like an operation */
    pw_request *req = decode_json(
        rollout(3, json_pack("{s:i, s:[s, s], s:i, s:i}", "canary", 0, "steps", "50%", "100%",
                             "failureBudget", 2, "pauseBetweenWavesSeconds", 5)),
        &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    const pw_request_rollout *ro = pw_request_rollout_of(req);
    assert_non_null(ro);
    assert_int_equal(ro->source, PW_REQUEST_TARGET_LIST);
    assert_int_equal(ro->templates, 2);
    assert_int_equal(ro->targets, 3);
    assert_int_equal(ro->canary, 0);
    assert_int_equal(ro->step_count, 2);
    assert_int_equal(ro->steps[0], 50);
    assert_int_equal(ro->failure_budget, 2);
    assert_int_equal(ro->pause_s, 5);
    assert_int_equal(pw_request_op_count(req), 6);
    assert_string_equal(pw_request_op_at(req, 3)->kind_name, "database.retention");
    assert_string_equal(pw_request_op_at(req, 3)->database, "db1");
    assert_string_equal(pw_request_op_at(req, 4)->database, "db2");
    assert_int_equal(pw_request_op_at(req, 5)->route, PW_ROUTE_ARM);
    assert_string_equal(json_string_value(json_object_get(pw_request_target_at(req, 2), "database")),
                        "db2");
    pw_plan *plan = pw_plan_new(req, NULL, NULL, 0);
    assert_non_null(plan);
    assert_int_equal(pw_plan_count(plan), 6);
    pw_plan_free(plan);
    pw_request_free(req);

    /* defaults: canary 1, steps [100%], budget 0, no pause */
    req = decode_json(rollout(2, NULL), &rej);
    assert_non_null(req);
    ro = pw_request_rollout_of(req);
    assert_int_equal(ro->canary, 1);
    assert_int_equal(ro->step_count, 1);
    assert_int_equal(ro->steps[0], 100);
    assert_int_equal(ro->failure_budget, 0);
    pw_request_free(req);
    req = decode_json(base(), &rej);
    assert_null(pw_request_rollout_of(req)); /* a plain request */
    pw_request_free(req);

    /* limits: targets (worker.rollout.targets.max), templates (worker.operations.max) */
    cfg.rollout_targets_max = 4;
    req = decode_json(rollout(4, NULL), &rej);
    assert_non_null(req);
    pw_request_free(req);
    expect(rollout(5, NULL), PW_REJECT_TOO_MANY_TARGETS, "/rollout/targets");
    cfg.rollout_targets_max = 0; /* (the default, 10000) */
    json_t *r = rollout(1, NULL);
    for (int i = 0; i < 4; i++)
        json_array_append(ro_member(r, "operations"), json_array_get(ro_member(r, "operations"), 0));
    expect(r, PW_REJECT_TOO_MANY_OPERATIONS, "/rollout/operations");

    /* one bad target rejects the request, located at the target */
    r = rollout(3, NULL);
    json_object_set_new(json_array_get(ro_member(r, "targets"), 1), "cluster", json_string("Bad"));
    expect(r, PW_REJECT_INVALID_NAME, "/rollout/targets/1/cluster");
    r = rollout(2, NULL);
    json_array_append_new(ro_member(r, "targets"),
                          json_pack("{s:s, s:s}", "clusterUri", "https://evil.example.com",
                                    "database", "d"));
    json_array_set_new(ro_member(r, "operations"), 0,
                       json_pack("{s:s, s:s, s:s}", "kind", "database.caching", "via", "kusto",
                                 "hotCachePeriod", "P1D"));
    json_array_remove(ro_member(r, "operations"), 1);
    expect(r, PW_REJECT_SCHEMA, "/rollout/targets/0"); /* kusto route: no clusterUri */
    r = rollout(1, NULL);
    json_object_set_new(json_array_get(ro_member(r, "operations"), 1), "softDeletePeriod",
                        json_string("P1Y"));
    expect(r, PW_REJECT_INVALID_DURATION, "/rollout/operations/1/softDeletePeriod");
    r = rollout(1, NULL);
    json_object_set_new(json_array_get(ro_member(r, "operations"), 0), "kind",
                        json_string("database.nosuch"));
    expect(r, PW_REJECT_UNKNOWN_KIND, NULL);
    r = rollout(1, NULL);
    json_object_set_new(json_array_get(ro_member(r, "operations"), 0), "target", arm_target());
    expect(r, PW_REJECT_SCHEMA, "/rollout/operations/0"); /* a template has no target */
    r = rollout(1, NULL);
    json_t *plain = base();
    json_object_set(r, "operations", json_object_get(plain, "operations"));
    json_decref(plain);
    expect(r, PW_REJECT_SCHEMA, NULL); /* operations and rollout: one or the other */

    /* waves: rising steps, the last 100% */
    expect(rollout(2, json_pack("{s:[s, s]}", "steps", "50%", "50%")), PW_REJECT_SCHEMA,
           "/rollout/waves/steps/1");
    expect(rollout(2, json_pack("{s:[s]}", "steps", "50%")), PW_REJECT_SCHEMA,
           "/rollout/waves/steps/0");
    expect(rollout(2, json_pack("{s:[s]}", "steps", "0%")), PW_REJECT_SCHEMA,
           "/rollout/waves/steps/0");
    expect(rollout(2, json_pack("{s:i}", "canary", -1)), PW_REJECT_SCHEMA, "/rollout/waves/canary");

    /* selectors: the shapes, the selector's names checked at decode, the listing later */
    req = decode_json(selector("databasesOf", json_pack("{s:s, s:s, s:s}", "subscriptionId", SUB,
                                                        "resourceGroup", "testrg", "cluster",
                                                        "mykustocluster")),
                      &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    ro = pw_request_rollout_of(req);
    assert_int_equal(ro->source, PW_REQUEST_DATABASES_OF);
    assert_int_equal(pw_request_op_count(req), 0);
    assert_int_equal(pw_request_targets_max(req), PW_CONFIG_ROLLOUT_TARGETS_MAX);
    json_t *listed = json_pack("[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]", "subscriptionId",
                               SUB, "resourceGroup", "testrg", "cluster", "mykustocluster",
                               "database", "a", "subscriptionId", SUB, "resourceGroup", "testrg",
                               "cluster", "mykustocluster", "database", "b");
    assert_int_equal(pw_request_expand(req, listed, &rej), 0);
    assert_int_equal(pw_request_op_count(req), 4);
    assert_int_equal(pw_request_rollout_of(req)->targets, 2);
    assert_string_equal(pw_request_op_at(req, 2)->database, "b");
    json_object_set_new(json_array_get(listed, 1), "database", json_string("__bad__"));
    assert_int_equal(pw_request_expand(req, listed, &rej), -1); /* nothing changed */
    assert_string_equal(rej.code, PW_REJECT_INVALID_NAME);
    assert_int_equal(pw_request_op_count(req), 4);
    pw_rejection_clear(&rej);
    cfg.rollout_targets_max = 1;
    assert_int_equal(pw_request_expand(req, listed, &rej), -1);
    assert_string_equal(rej.code, PW_REJECT_TOO_MANY_TARGETS);
    pw_rejection_clear(&rej);
    cfg.rollout_targets_max = 0;
    json_decref(listed);
    pw_request_free(req);

    r = selector("tablesOf", json_pack("{s:s, s:s}", "clusterUri", URI, "database", "db"));
    json_array_set_new(ro_member(r, "operations"), 0,
                       json_pack("{s:s, s:s}", "kind", "table.caching", "hotCachePeriod", "P1D"));
    json_array_remove(ro_member(r, "operations"), 1);
    req = decode_json(r, &rej);
    if (!req) fail_msg("%s: %s", rej.code, rej.message);
    assert_int_equal(pw_request_rollout_of(req)->source, PW_REQUEST_TABLES_OF);
    pw_request_free(req);
    expect(selector("databasesOf", json_pack("{s:s, s:s, s:s}", "subscriptionId", SUB,
                                             "resourceGroup", "testrg", "cluster", "Bad")),
           PW_REJECT_INVALID_NAME, "/rollout/targets/selector/databasesOf/cluster");
    expect(selector("tablesOf", json_pack("{s:s, s:s}", "clusterUri", "https://x.example.com",
                                          "database", "db")),
           PW_REJECT_SCHEMA, NULL); /* a table selector under database kinds */
    expect(selector("viewsOf", json_pack("{s:s}", "clusterUri", URI)), PW_REJECT_SCHEMA, NULL);
    expect(selector("databasesOf", json_pack("{s:s}", "cluster", "mykustocluster")),
           PW_REJECT_SCHEMA, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_request_decodes),
        cmocka_unit_test(bounds_and_json),
        cmocka_unit_test(ids),
        cmocka_unit_test(schema_violations),
        cmocka_unit_test(durations),
        cmocka_unit_test(non_ascii_in_messages),
        cmocka_unit_test(reply_codes_listed),
        cmocka_unit_test(table_kinds_only_via_kusto),
        cmocka_unit_test(names),
        cmocka_unit_test(cluster_uris),
        cmocka_unit_test(principal_fqns),
        cmocka_unit_test(reply_to),
        cmocka_unit_test(host_suffix_config),
        cmocka_unit_test(truncations_and_mutations),
        cmocka_unit_test(out_of_memory_is_internal),
        cmocka_unit_test(nul_and_surrogate_escapes),
        cmocka_unit_test(arm_path_limit),
        cmocka_unit_test(messages_a_person_can_act_on),
        cmocka_unit_test(rollouts_decode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
