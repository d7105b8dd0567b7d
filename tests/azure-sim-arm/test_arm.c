/* test_arm.c: cmocka unit tests of azure-sim's ARM handler (sim_arm_handle) without HTTP. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "arm_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V "?api-version=2025-02-14"

static int setup(void **state)
{
    arm_fake_caller(ARM_WRITER);
    *state = arm_fake_state();
    return 0;
}

static int teardown(void **state)
{
    arm_fake_state_free(*state);
    return 0;
}

static void set_setting(sim_state *st, const char *name, long v)
{
    json_object_set_new(json_object_get(st->root, "settings"), name, json_integer(v));
}

/* The database object in the state (borrowed). */
static json_t *state_db(sim_state *st, const char *name)
{
    json_t *cl = json_array_get(
        json_object_get(
            json_array_get(
                json_object_get(json_array_get(json_object_get(st->root, "subscriptions"), 0),
                                "resourceGroups"),
                1),
            "clusters"),
        0);
    size_t i;
    json_t *db;
    json_array_foreach(json_object_get(cl, "databases"), i,
                       db) if (strcmp(json_string_value(json_object_get(db, "name")), name) ==
                               0) return db;
    return NULL;
}

static json_t *state_cluster(sim_state *st)
{
    return json_array_get(
        json_object_get(
            json_array_get(
                json_object_get(json_array_get(json_object_get(st->root, "subscriptions"), 0),
                                "resourceGroups"),
                1),
            "clusters"),
        0);
}

/* Makes every running operation due now (instead of waiting lroDurationMs). */
static void expire_ops(sim_state *st)
{
    size_t i;
    json_t *op;
    json_array_foreach(json_object_get(json_object_get(st->root, "armRuntime"), "operations"), i,
                       op) json_object_set_new(op, "dueMs", json_integer(0));
}

static const char *prop(const arm_answer *a, const char *key)
{
    return json_string_value(json_object_get(json_object_get(a->resp.body, "properties"), key));
}

/* "https://management.azure.com/subscriptions/..?.." -> path+query after the host. */
static const char *after_host(const char *url)
{
    const char *p = "https://management.azure.com";
    assert_non_null(url);
    assert_int_equal(strncmp(url, p, strlen(p)), 0);
    return url + strlen(p);
}

static void expect_error(sim_state *st, const char *method, const char *url, const char *body,
                         int status, const char *code)
{
    arm_answer a;
    arm_call(st, method, url, body, &a);
    if (a.resp.status != status || strcmp(arm_error_code(&a), code) != 0)
        fprintf(stderr, "%s %s -> %d %s (wanted %d %s)\n", method, url, a.resp.status, a.text,
                status, code);
    assert_int_equal(a.resp.status, status);
    assert_string_equal(arm_error_code(&a), code);
    assert_non_null(
        json_string_value(json_object_get(json_object_get(a.resp.body, "error"), "message")));
    assert_string_equal(arm_header(&a, "Content-Type"), "application/json; charset=utf-8");
    arm_answer_clear(&a);
}

/* Each of the n bodies sent as method url is refused with 400 (whatever the error code). */
static void expect_400_each(sim_state *st, const char *method, const char *url,
                            const char *const *bodies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        arm_answer a;
        arm_call(st, method, url, bodies[i], &a);
        if (a.resp.status != 400) fprintf(stderr, "%s -> %s\n", bodies[i], a.text);
        assert_int_equal(a.resp.status, 400);
        arm_answer_clear(&a);
    }
}

static void test_get_database(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    arm_call(st, "GET", ARM_DB V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "id")),
                        "/subscriptions/" ARM_SUB "/resourceGroups/testrg/providers/"
                        "Microsoft.Kusto/Clusters/mykustocluster/Databases/mykustodatabase");
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "name")),
                        "mykustocluster/mykustodatabase");
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "type")),
                        "Microsoft.Kusto/Clusters/Databases");
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "kind")), "ReadWrite");
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "location")), "westus");
    assert_string_equal(prop(&a, "softDeletePeriod"), "P365D");
    assert_string_equal(prop(&a, "hotCachePeriod"), "P31D");
    assert_string_equal(prop(&a, "provisioningState"), "Succeeded");
    assert_string_equal(arm_header(&a, "x-ms-request-id"), "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    assert_int_equal(strlen(arm_header(&a, "x-ms-correlation-request-id")), 36);
    assert_non_null(arm_header(&a, "x-ms-ratelimit-remaining-subscription-reads"));
    assert_null(arm_header(&a, "x-ms-ratelimit-remaining-subscription-writes"));
    arm_answer_clear(&a);

    /* correlation id is echoed */
    arm_fake_next_header("x-ms-correlation-request-id", "corr-123");
    arm_call(st, "GET", ARM_DB V, NULL, &a);
    assert_string_equal(arm_header(&a, "x-ms-correlation-request-id"), "corr-123");
    arm_answer_clear(&a);
}

static void test_list_databases(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    arm_call(st, "GET", ARM_C "/databases" V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    json_t *v = json_object_get(a.resp.body, "value");
    assert_int_equal(json_array_size(v), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "name")),
                        "mykustocluster/mykustodatabase");
    arm_answer_clear(&a);
    expect_error(st, "PUT", ARM_C "/databases" V, "{}", 405, "MethodNotAllowed");
}

static void test_case_insensitive_paths(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    arm_call(st, "GET",
             "/SUBSCRIPTIONS/" ARM_SUB "/RESOURCEGROUPS/TestRG/Providers/microsoft.kusto/"
             "Clusters/MyKustoCluster/Databases/MYKUSTODATABASE" V,
             NULL, &a);
    assert_int_equal(a.resp.status, 200);
    /* ids use the stored names and the examples' casing */
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "name")),
                        "mykustocluster/mykustodatabase");
    arm_answer_clear(&a);
    arm_call(st, "POST", ARM_C "/DATABASES/mykustodatabase/LISTPRINCIPALS" V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
    arm_call(st, "GET", ARM_DB "/" V, NULL, &a); /* trailing slash */
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
}

static void test_api_versions(void **state)
{
    sim_state *st = *state;
    static const char *const ok[] = {"2025-02-14", "2024-04-13", "2023-08-15",
                                     "2023-05-02", "2022-12-29", "2022-11-11"};
    char url[512];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        arm_answer a;
        snprintf(url, sizeof url, ARM_DB "?api-version=%s", ok[i]);
        arm_call(st, "GET", url, NULL, &a);
        assert_int_equal(a.resp.status, 200);
        arm_answer_clear(&a);
    }
    expect_error(st, "GET", ARM_DB, NULL, 400, "MissingApiVersionParameter");
    expect_error(st, "GET", ARM_DB "?api-version=", NULL, 400, "MissingApiVersionParameter");
    expect_error(st, "GET", ARM_DB "?api-version=2022-07-07", NULL, 400,
                 "NoRegisteredProviderFound");
    expect_error(st, "GET", ARM_DB "?api-version=2030-01-01", NULL, 400,
                 "NoRegisteredProviderFound");
    expect_error(st, "GET", ARM_DB "?api-version=2025-02-14-preview", NULL, 400,
                 "NoRegisteredProviderFound");
    expect_error(st, "GET", ARM_DB "?api-version=latest", NULL, 400, "InvalidApiVersionParameter");
    expect_error(st, "PATCH", ARM_DB "?api-version=2025-2-14", "{}", 400,
                 "InvalidApiVersionParameter");
}

static void test_not_found(void **state)
{
    sim_state *st = *state;
    expect_error(st, "GET",
                 "/subscriptions/99999999-2222-2222-2222-222222222222/resourceGroups/testrg/"
                 "providers/Microsoft.Kusto/clusters/mykustocluster/databases/x" V,
                 NULL, 404, "SubscriptionNotFound");
    expect_error(st, "GET",
                 "/subscriptions/" ARM_SUB "/resourceGroups/nope/providers/Microsoft.Kusto/"
                 "clusters/mykustocluster/databases/mykustodatabase" V,
                 NULL, 404, "ResourceGroupNotFound");
    expect_error(st, "GET",
                 "/subscriptions/" ARM_SUB "/resourceGroups/testrg/providers/Microsoft.Kusto/"
                 "clusters/nocluster/databases/mykustodatabase" V,
                 NULL, 404, "ResourceNotFound");
    expect_error(st, "GET", ARM_C "/databases/nodb" V, NULL, 404, "ResourceNotFound");
    expect_error(st, "PATCH", ARM_C "/databases/nodb" V, "{\"kind\":\"ReadWrite\"}", 404,
                 "ResourceNotFound");
    expect_error(st, "POST", ARM_C "/databases/nodb/addPrincipals" V, "{\"value\":[]}", 404,
                 "ResourceNotFound");
    expect_error(st, "GET", ARM_DB "/principalAssignments/nopa" V, NULL, 404, "ResourceNotFound");
    expect_error(st, "GET", ARM_C "/principalAssignments/nopa" V, NULL, 404, "ResourceNotFound");
    expect_error(st, "GET", ARM_DB "/tables" V, NULL, 404, "InvalidResourceType");
    expect_error(st, "GET", "/" V, NULL, 404, "InvalidResourceType");
    expect_error(st, "GET",
                 "/subscriptions/" ARM_SUB "/resourceGroups/testrg/providers/Microsoft.Storage/"
                 "storageAccounts/x" V,
                 NULL, 400, "InvalidResourceNamespace");
    expect_error(st, "POST", ARM_DB V, "{}", 405, "MethodNotAllowed");
    expect_error(st, "GET",
                 "/subscriptions/" ARM_SUB "/providers/Microsoft.Kusto/locations/westus/"
                 "operationResults/00000000-0000-0000-0000-000000000000" V,
                 NULL, 404, "ResourceNotFound");
    /* DELETE of a missing database or assignment: 204 (ARM's "already gone") */
    arm_answer a;
    arm_call(st, "DELETE", ARM_C "/databases/nodb" V, NULL, &a);
    assert_int_equal(a.resp.status, 204);
    arm_answer_clear(&a);
    arm_call(st, "DELETE", ARM_DB "/principalAssignments/nopa" V, NULL, &a);
    assert_int_equal(a.resp.status, 204);
    arm_answer_clear(&a);
}

static void test_authorization(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    arm_fake_caller(ARM_READER);
    arm_call(st, "GET", ARM_DB V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
    arm_call(st, "PATCH", ARM_DB V, "{\"kind\":\"ReadWrite\"}", &a);
    assert_int_equal(a.resp.status, 403);
    assert_string_equal(arm_error_code(&a), "AuthorizationFailed");
    const char *msg =
        json_string_value(json_object_get(json_object_get(a.resp.body, "error"), "message"));
    assert_non_null(strstr(msg,
                           "The client '" ARM_READER "' with object id '" ARM_READER
                           "' does not have authorization to perform action "
                           "'Microsoft.Kusto/clusters/databases/write' over scope '" ARM_DB "'"));
    arm_answer_clear(&a);
    expect_error(st, "POST", ARM_DB "/listPrincipals" V, NULL, 403, "AuthorizationFailed");
    expect_error(st, "DELETE", ARM_DB V, NULL, 403, "AuthorizationFailed");
    /* owner of another resource group only */
    arm_fake_caller(ARM_RG_ONLY);
    expect_error(st, "GET", ARM_DB V, NULL, 403, "AuthorizationFailed");
    /* 403 comes before the resource group check, as in ARM */
    expect_error(st, "GET",
                 "/subscriptions/" ARM_SUB "/resourceGroups/nope/providers/Microsoft.Kusto/"
                 "clusters/c/databases/d" V,
                 NULL, 403, "AuthorizationFailed");
    arm_fake_caller("66666666-6666-6666-6666-666666666666"); /* unknown app */
    expect_error(st, "GET", ARM_DB V, NULL, 403, "AuthorizationFailed");
}

static void check_lro_headers(const arm_answer *a, char *async_url, size_t n)
{
    const char *aa = arm_header(a, "Azure-AsyncOperation");
    const char *loc = arm_header(a, "Location");
    assert_non_null(aa);
    assert_non_null(loc);
    assert_string_equal(arm_header(a, "Retry-After"), "1");
    const char *prefix = "https://management.azure.com/subscriptions/" ARM_SUB
                         "/providers/Microsoft.Kusto/locations/westus/operationResults/";
    assert_int_equal(strncmp(aa, prefix, strlen(prefix)), 0);
    assert_non_null(strstr(aa, "?api-version=2025-02-14"));
    assert_int_equal(strncmp(loc, aa, strlen(aa)), 0);
    assert_string_equal(loc + strlen(aa), "&operationResultResponseType=Location");
    snprintf(async_url, n, "%s", after_host(aa));
}

static void test_patch_lro(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    char op_url[512], loc_url[600];
    arm_call(st, "PATCH", ARM_DB V,
             "{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"P30D\"}}", &a);
    assert_int_equal(a.resp.status, 202);
    check_lro_headers(&a, op_url, sizeof op_url);
    assert_string_equal(prop(&a, "softDeletePeriod"), "P30D");
    assert_string_equal(prop(&a, "hotCachePeriod"), "P31D");
    assert_non_null(arm_header(&a, "x-ms-ratelimit-remaining-subscription-writes"));
    snprintf(loc_url, sizeof loc_url, "%s&operationResultResponseType=Location", op_url);
    arm_answer_clear(&a);

    /* not visible yet */
    arm_call(st, "GET", ARM_DB V, NULL, &a);
    assert_string_equal(prop(&a, "softDeletePeriod"), "P365D");
    assert_string_equal(prop(&a, "provisioningState"), "Running");
    arm_answer_clear(&a);
    arm_call(st, "GET", op_url, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "status")), "Running");
    assert_true(json_is_number(json_object_get(a.resp.body, "percentComplete")));
    assert_non_null(arm_header(&a, "Retry-After"));
    arm_answer_clear(&a);
    arm_call(st, "GET", loc_url, NULL, &a);
    assert_int_equal(a.resp.status, 202);
    assert_null(a.resp.body);
    assert_non_null(arm_header(&a, "Location"));
    arm_answer_clear(&a);

    expire_ops(st);
    arm_call(st, "GET", op_url, NULL, &a);
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "status")), "Succeeded");
    assert_true(json_number_value(json_object_get(a.resp.body, "percentComplete")) == 100.0);
    assert_non_null(json_object_get(a.resp.body, "endTime"));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(a.resp.body, "properties"), "operationKind")),
                        "DatabaseUpdate");
    arm_answer_clear(&a);
    arm_call(st, "GET", loc_url, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
    arm_call(st, "GET", ARM_DB V, NULL, &a);
    assert_string_equal(prop(&a, "softDeletePeriod"), "P30D");
    assert_string_equal(prop(&a, "hotCachePeriod"), "P31D");
    assert_string_equal(prop(&a, "provisioningState"), "Succeeded");
    arm_answer_clear(&a);
    /* the Kusto view reads the same field */
    assert_string_equal(
        json_string_value(json_object_get(state_db(st, "mykustodatabase"), "softDeletePeriod")),
        "P30D");

    /* hot cache change, with location */
    arm_call(st, "PATCH", ARM_DB V,
             "{\"kind\":\"ReadWrite\",\"location\":\"westus\",\"properties\":{\"hotCachePeriod\":"
             "\"P7D\"}}",
             &a);
    assert_int_equal(a.resp.status, 202);
    arm_answer_clear(&a);
    expire_ops(st);
    sim_arm_tick(st);
    assert_string_equal(
        json_string_value(json_object_get(state_db(st, "mykustodatabase"), "hotCachePeriod")),
        "P7D");
}

/* With a tiny lroDurationMs the operation completes on its own: poll, bounded. */
static void test_lro_completes_in_time(void **state)
{
    sim_state *st = *state;
    set_setting(st, "lroDurationMs", 20);
    set_setting(st, "lroRetryAfterSeconds", 3);
    arm_answer a;
    char op_url[512];
    arm_call(st, "PATCH", ARM_DB V,
             "{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"PT12H\"}}", &a);
    assert_int_equal(a.resp.status, 202);
    assert_string_equal(arm_header(&a, "Retry-After"), "3");
    snprintf(op_url, sizeof op_url, "%s", after_host(arm_header(&a, "Azure-AsyncOperation")));
    arm_answer_clear(&a);
    int done = 0;
    for (int i = 0; i < 3000 && !done; i++) { /* up to ~30 s on a loaded machine */
        arm_call(st, "GET", op_url, NULL, &a);
        done = strcmp(json_string_value(json_object_get(a.resp.body, "status")), "Succeeded") == 0;
        arm_answer_clear(&a);
        if (!done) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(done);
    arm_call(st, "GET", ARM_DB V, NULL, &a);
    assert_string_equal(prop(&a, "hotCachePeriod"), "PT12H");
    arm_answer_clear(&a);
}

static void test_put_create_delete(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    arm_call(st, "PUT", ARM_C "/databases/NewDb" V,
             "{\"kind\":\"ReadWrite\",\"location\":\"westus\",\"properties\":{\"softDeletePeriod\":"
             "\"P1D\"}}",
             &a);
    assert_int_equal(a.resp.status, 202);
    assert_string_equal(prop(&a, "provisioningState"), "Creating");
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "name")),
                        "mykustocluster/NewDb");
    arm_answer_clear(&a);
    expect_error(st, "GET", ARM_C "/databases/NewDb" V, NULL, 404, "ResourceNotFound");
    expire_ops(st);
    arm_call(st, "GET", ARM_C "/databases/newdb" V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(prop(&a, "softDeletePeriod"), "P1D");
    assert_null(prop(&a, "hotCachePeriod"));
    arm_answer_clear(&a);
    /* callerRole Admin (default): the caller became database Admin */
    json_t *db = state_db(st, "NewDb");
    assert_non_null(db);
    json_t *p = json_array_get(json_object_get(db, "principals"), 0);
    assert_string_equal(json_string_value(json_object_get(p, "role")), "Admin");
    assert_string_equal(json_string_value(json_object_get(p, "fqn")),
                        "aadapp=" ARM_WRITER ";" ARM_TENANT);
    assert_non_null(json_object_get(db, "tables"));

    /* PUT on an existing database replaces its writable properties */
    arm_call(st, "PUT", ARM_DB V,
             "{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"P2D\"}}", &a);
    assert_int_equal(a.resp.status, 202);
    arm_answer_clear(&a);
    expire_ops(st);
    sim_arm_tick(st);
    db = state_db(st, "mykustodatabase");
    assert_string_equal(json_string_value(json_object_get(db, "softDeletePeriod")), "P2D");
    assert_null(json_object_get(db, "hotCachePeriod"));
    assert_non_null(json_object_get(db, "tables")); /* Kusto content kept */

    /* callerRole=None: no principal added */
    arm_call(st, "PUT", ARM_C "/databases/quiet" V "&callerRole=None", "{\"kind\":\"ReadWrite\"}",
             &a);
    assert_int_equal(a.resp.status, 202);
    arm_answer_clear(&a);
    expect_error(st, "PUT", ARM_C "/databases/x" V "&callerRole=Boss", "{\"kind\":\"ReadWrite\"}",
                 400, "BadRequest");
    expect_error(st, "PUT", ARM_C "/databases/bad%2Fname" V, "{\"kind\":\"ReadWrite\"}", 400,
                 "InvalidResourceName");
    expire_ops(st);
    sim_arm_tick(st);
    assert_int_equal(json_array_size(json_object_get(state_db(st, "quiet"), "principals")), 0);

    /* DELETE: 202, then gone */
    arm_call(st, "DELETE", ARM_C "/databases/NewDb" V, NULL, &a);
    assert_int_equal(a.resp.status, 202);
    assert_non_null(arm_header(&a, "Azure-AsyncOperation"));
    assert_null(a.resp.body);
    arm_answer_clear(&a);
    arm_call(st, "GET", ARM_C "/databases/NewDb" V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(prop(&a, "provisioningState"), "Deleting");
    arm_answer_clear(&a);
    expire_ops(st);
    expect_error(st, "GET", ARM_C "/databases/NewDb" V, NULL, 404, "ResourceNotFound");
}

static void test_operation_fails_when_target_vanishes(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    char op_url[512], loc_url[600];
    arm_call(st, "PATCH", ARM_DB V,
             "{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"P1D\"}}", &a);
    snprintf(op_url, sizeof op_url, "%s", after_host(arm_header(&a, "Azure-AsyncOperation")));
    snprintf(loc_url, sizeof loc_url, "%s", after_host(arm_header(&a, "Location")));
    arm_answer_clear(&a);
    json_array_clear(json_object_get(state_cluster(st), "databases"));
    expire_ops(st);
    arm_call(st, "GET", op_url, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "status")), "Failed");
    assert_non_null(
        json_string_value(json_object_get(json_object_get(a.resp.body, "error"), "code")));
    arm_answer_clear(&a);
    arm_call(st, "GET", loc_url, NULL, &a);
    assert_int_equal(a.resp.status, 400);
    arm_answer_clear(&a);
}

static void test_body_validation(void **state)
{
    sim_state *st = *state;
    static const struct {
        const char *body;
        const char *code;
    } bad[] = {
        {"", "InvalidRequestContent"},
        {"{", "InvalidRequestContent"},
        {"[1]", "InvalidRequestContent"},
        {"\"x\"", "InvalidRequestContent"},
        {"{\"kind\":\"ReadWrite\",\"kind\":\"ReadWrite\"}", "InvalidRequestContent"},
        {"{}", "BadRequest"},
        {"{\"properties\":{\"softDeletePeriod\":\"P1D\"}}", "BadRequest"},
        {"{\"kind\":\"readwrite\"}", "BadRequest"},
        {"{\"kind\":\"Bogus\"}", "BadRequest"},
        {"{\"kind\":5}", "InvalidRequestContent"},
        {"{\"kind\":\"ReadWrite\",\"location\":1}", "InvalidRequestContent"},
        {"{\"kind\":\"ReadWrite\",\"properties\":\"x\"}", "InvalidRequestContent"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":30}}",
         "InvalidRequestContent"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"30d\"}}", "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"P\"}}", "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"PT\"}}", "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"P1DT\"}}", "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"P1H\"}}", "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"PT1D\"}}", "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"P1D2M\"}}", "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"-P1D\"}}", "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"P1.5D\"}}", "BadRequest"},
        /* weeks are ISO-8601 but not XSD durations (XmlConvert.ToTimeSpan): refused */
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"P2W\"}}", "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"P1W2D\"}}", "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"P1234567890D\"}}",
         "BadRequest"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"keyVaultProperties\":[]}}",
         "InvalidRequestContent"},
        {"{\"kind\":\"ReadWrite\",\"properties\":{\"keyVaultProperties\":{\"keyName\":1}}}",
         "InvalidRequestContent"},
        {"{\"kind\":\"ReadOnlyFollowing\"}", "BadRequest"}, /* kind cannot change */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_error(st, "PATCH", ARM_DB V, bad[i].body, 400, bad[i].code);
        expect_error(st, "PUT", ARM_DB V, bad[i].body, 400, bad[i].code);
    }
    expect_error(st, "PUT", ARM_C "/databases/follower" V, "{\"kind\":\"ReadOnlyFollowing\"}", 400,
                 "BadRequest");
    /* error target names the field */
    arm_answer a;
    arm_call(st, "PATCH", ARM_DB V,
             "{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"10 days\"}}", &a);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a.resp.body, "error"), "target")),
        "properties.softDeletePeriod");
    arm_answer_clear(&a);
    /* valid durations and ignored read-only / unknown members */
    static const char *const good[] = {"P1D",    "PT12H", "P1Y2M4DT5H6M7.5S",
                                       "PT0.5S", "P365D", "PT90M"};
    char body[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"%s\","
                 "\"provisioningState\":\"Failed\",\"statistics\":{\"size\":1.5},"
                 "\"isFollowed\":true,\"somethingNew\":1}}",
                 good[i]);
        arm_call(st, "PATCH", ARM_DB V, body, &a);
        if (a.resp.status != 202) fprintf(stderr, "%s -> %s\n", good[i], a.text);
        assert_int_equal(a.resp.status, 202);
        assert_string_equal(prop(&a, "provisioningState"), "Running");
        arm_answer_clear(&a);
    }
    /* PATCH with null unsets the hot cache */
    arm_call(st, "PATCH", ARM_DB V,
             "{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":null}}", &a);
    assert_int_equal(a.resp.status, 202);
    arm_answer_clear(&a);
    expire_ops(st);
    sim_arm_tick(st);
    assert_null(json_object_get(state_db(st, "mykustodatabase"), "hotCachePeriod"));
    /* oversized body */
    size_t big = 1024 * 1024 + 16;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    expect_error(st, "PATCH", ARM_DB V, huge, 413, "RequestEntityTooLarge");
    free(huge);
    /* deep nesting is refused by the parser, not a crash */
    char *deep = malloc(40001);
    memset(deep, '[', 40000);
    deep[40000] = '\0';
    expect_error(st, "PATCH", ARM_DB V, deep, 400, "InvalidRequestContent");
    free(deep);
}

static const char principals_body[] =
    "{\"value\":[{\"name\":\"Some User\",\"type\":\"User\",\"appId\":\"\","
    "\"email\":\"user@microsoft.com\",\"fqn\":\"aaduser=some_guid\",\"role\":\"Admin\"},"
    "{\"name\":\"SomeApp\",\"type\":\"App\",\"appId\":\"app-1\",\"role\":\"Viewer\"}]}";

static void test_principals(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    arm_call(st, "POST", ARM_DB "/addPrincipals" V, principals_body, &a);
    assert_int_equal(a.resp.status, 200);
    assert_int_equal(json_array_size(json_object_get(a.resp.body, "value")), 2);
    assert_non_null(arm_header(&a, "x-ms-ratelimit-remaining-subscription-writes"));
    arm_answer_clear(&a);
    /* idempotent */
    arm_call(st, "POST", ARM_DB "/addPrincipals" V, principals_body, &a);
    assert_int_equal(a.resp.status, 200);
    assert_int_equal(json_array_size(json_object_get(a.resp.body, "value")), 2);
    arm_answer_clear(&a);
    /* same identity with a tenant suffix is the same principal; other role is not */
    arm_call(st, "POST", ARM_DB "/addPrincipals" V,
             "{\"value\":[{\"name\":\"SomeApp\",\"type\":\"App\",\"fqn\":\"aadapp=APP-1;" ARM_TENANT
             "\",\"role\":\"Viewer\"},{\"name\":\"SomeApp\",\"type\":\"App\",\"appId\":\"app-1\","
             "\"role\":\"Ingestor\"}]}",
             &a);
    assert_int_equal(json_array_size(json_object_get(a.resp.body, "value")), 3);
    arm_answer_clear(&a);
    json_t *db = state_db(st, "mykustodatabase");
    json_t *p1 = json_array_get(json_object_get(db, "principals"), 1);
    assert_string_equal(json_string_value(json_object_get(p1, "fqn")), "aadapp=app-1");

    arm_call(st, "POST", ARM_DB "/listPrincipals" V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    json_t *first = json_array_get(json_object_get(a.resp.body, "value"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "name")), "Some User");
    assert_string_equal(json_string_value(json_object_get(first, "email")), "user@microsoft.com");
    arm_answer_clear(&a);

    arm_call(st, "POST", ARM_DB "/removePrincipals" V, principals_body, &a);
    assert_int_equal(a.resp.status, 200);
    assert_int_equal(json_array_size(json_object_get(a.resp.body, "value")), 1);
    arm_answer_clear(&a);
    /* removing what is not there is fine */
    arm_call(st, "POST", ARM_DB "/removePrincipals" V, principals_body, &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);

    static const char *const bad[] = {
        "{}",
        "{\"value\":{}}",
        "{\"value\":[1]}",
        "{\"value\":[{\"name\":\"x\",\"type\":\"App\",\"appId\":\"a\"}]}",
        "{\"value\":[{\"name\":\"x\",\"type\":\"App\",\"appId\":\"a\",\"role\":\"Owner\"}]}",
        "{\"value\":[{\"name\":\"x\",\"type\":\"Robot\",\"appId\":\"a\",\"role\":\"Admin\"}]}",
        "{\"value\":[{\"type\":\"App\",\"appId\":\"a\",\"role\":\"Admin\"}]}",
        "{\"value\":[{\"name\":\"x\",\"type\":\"App\",\"role\":\"Admin\"}]}",
        "{\"value\":[{\"name\":\"x\",\"type\":\"App\",\"appId\":7,\"role\":\"Admin\"}]}",
        "{\"value\":[{\"name\":\"x\",\"type\":\"App\",\"fqn\":\"aadapp=z\",\"role\":\"Admin\"},"
        "{\"name\":\"y\",\"role\":\"Admin\"}]}",
    };
    expect_400_each(st, "POST", ARM_DB "/addPrincipals" V, bad, sizeof bad / sizeof bad[0]);
    /* nothing of a rejected batch was added */
    assert_int_equal(json_array_size(json_object_get(db, "principals")), 1);
}

static void test_principal_assignments(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    const char *body = "{\"properties\":{\"principalId\":\"" ARM_WRITER "\",\"role\":\"Admin\","
                       "\"tenantId\":\"" ARM_TENANT "\",\"principalType\":\"App\"}}";
    arm_call(st, "PUT", ARM_DB "/principalAssignments/pa1" V, body, &a);
    assert_int_equal(a.resp.status, 201);
    assert_non_null(arm_header(&a, "Azure-AsyncOperation"));
    assert_non_null(arm_header(&a, "Location"));
    assert_non_null(arm_header(&a, "Retry-After"));
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "name")),
                        "mykustocluster/mykustodatabase/pa1");
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "type")),
                        "Microsoft.Kusto/Clusters/Databases/PrincipalAssignments");
    assert_string_equal(prop(&a, "principalName"), "policy-worker");
    assert_string_equal(prop(&a, "tenantName"), "contoso.onmicrosoft.com");
    arm_answer_clear(&a);
    expect_error(st, "GET", ARM_DB "/principalAssignments/pa1" V, NULL, 404, "ResourceNotFound");
    expire_ops(st);
    arm_call(st, "GET", ARM_DB "/PrincipalAssignments/PA1" V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "id")),
                        "/subscriptions/" ARM_SUB "/resourceGroups/testrg/providers/"
                        "Microsoft.Kusto/Clusters/mykustocluster/Databases/mykustodatabase/"
                        "PrincipalAssignments/pa1");
    assert_string_equal(prop(&a, "role"), "Admin");
    assert_string_equal(prop(&a, "provisioningState"), "Succeeded");
    arm_answer_clear(&a);
    arm_call(st, "GET", ARM_DB "/principalAssignments" V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_int_equal(json_array_size(json_object_get(a.resp.body, "value")), 1);
    arm_answer_clear(&a);
    /* update: 200 */
    arm_call(st, "PUT", ARM_DB "/principalAssignments/pa1" V,
             "{\"properties\":{\"principalId\":\"x@contoso.com\",\"role\":\"Viewer\","
             "\"principalType\":\"User\"}}",
             &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
    expire_ops(st);
    arm_call(st, "GET", ARM_DB "/principalAssignments/pa1" V, NULL, &a);
    assert_string_equal(prop(&a, "role"), "Viewer");
    assert_string_equal(prop(&a, "tenantId"), ARM_TENANT); /* defaulted to the caller's */
    arm_answer_clear(&a);
    /* delete */
    arm_call(st, "DELETE", ARM_DB "/principalAssignments/pa1" V, NULL, &a);
    assert_int_equal(a.resp.status, 202);
    arm_answer_clear(&a);
    expire_ops(st);
    expect_error(st, "GET", ARM_DB "/principalAssignments/pa1" V, NULL, 404, "ResourceNotFound");

    /* validation */
    static const char *const bad[] = {
        "{}",
        "{\"properties\":1}",
        "{\"properties\":{\"role\":\"Admin\",\"principalType\":\"App\"}}",
        "{\"properties\":{\"principalId\":\"a\",\"principalType\":\"App\"}}",
        "{\"properties\":{\"principalId\":\"a\",\"role\":\"Admin\"}}",
        "{\"properties\":{\"principalId\":\"a\",\"role\":\"AllDatabasesAdmin\",\"principalType\":"
        "\"App\"}}",
        "{\"properties\":{\"principalId\":\"a\",\"role\":\"Admin\",\"principalType\":\"Robot\"}}",
        "{\"properties\":{\"principalId\":1,\"role\":\"Admin\",\"principalType\":\"App\"}}",
        "{\"properties\":{\"principalId\":\"a\",\"role\":\"Admin\",\"principalType\":\"App\","
        "\"tenantId\":[]}}",
    };
    expect_400_each(st, "PUT", ARM_DB "/principalAssignments/pa2" V, bad,
                    sizeof bad / sizeof bad[0]);

    /* cluster level */
    arm_call(st, "PUT", ARM_C "/principalAssignments/cpa" V,
             "{\"properties\":{\"principalId\":\"" ARM_WRITER "\",\"role\":\"AllDatabasesViewer\","
             "\"principalType\":\"App\"}}",
             &a);
    assert_int_equal(a.resp.status, 201);
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "type")),
                        "Microsoft.Kusto/Clusters/PrincipalAssignments");
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "name")),
                        "mykustocluster/cpa");
    arm_answer_clear(&a);
    expect_error(
        st, "PUT", ARM_C "/principalAssignments/cpa2" V,
        "{\"properties\":{\"principalId\":\"a\",\"role\":\"Admin\",\"principalType\":\"App\"}}",
        400, "BadRequest");
    expire_ops(st);
    arm_call(st, "GET", ARM_C "/principalAssignments" V, NULL, &a);
    assert_int_equal(json_array_size(json_object_get(a.resp.body, "value")), 1);
    arm_answer_clear(&a);
    assert_int_equal(json_array_size(json_object_get(state_cluster(st), "principalAssignments")),
                     1);
    arm_call(st, "DELETE", ARM_C "/principalAssignments/cpa" V, NULL, &a);
    assert_int_equal(a.resp.status, 202);
    arm_answer_clear(&a);
    expire_ops(st);
    sim_arm_tick(st);
    assert_int_equal(json_array_size(json_object_get(state_cluster(st), "principalAssignments")),
                     0);
}

static void test_throttling(void **state)
{
    sim_state *st = *state;
    set_setting(st, "armWriteBucket", 3);
    set_setting(st, "armWriteRefillPerSecond", 0);
    arm_answer a;
    static const char *const remaining[] = {"2", "1", "0"};
    for (int i = 0; i < 3; i++) {
        arm_call(st, "POST", ARM_DB "/listPrincipals" V, NULL, &a);
        assert_int_equal(a.resp.status, 200);
        assert_string_equal(arm_header(&a, "x-ms-ratelimit-remaining-subscription-writes"),
                            remaining[i]);
        arm_answer_clear(&a);
    }
    arm_call(st, "PATCH", ARM_DB V, "{\"kind\":\"ReadWrite\"}", &a);
    assert_int_equal(a.resp.status, 429);
    assert_string_equal(arm_error_code(&a), "SubscriptionRequestsThrottled");
    assert_string_equal(arm_header(&a, "Retry-After"), "60");
    assert_string_equal(arm_header(&a, "x-ms-ratelimit-remaining-subscription-writes"), "0");
    arm_answer_clear(&a);
    /* reads have their own bucket; other principals theirs */
    arm_call(st, "GET", ARM_DB V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
    arm_fake_caller(ARM_READER);
    arm_call(st, "POST", ARM_DB "/listPrincipals" V, NULL, &a);
    assert_int_equal(a.resp.status, 403); /* not throttled: the reader's bucket is full */
    arm_answer_clear(&a);
    arm_fake_caller(ARM_WRITER);
    /* refill: with 1000/s the bucket refills within a few ms; poll, bounded */
    set_setting(st, "armWriteRefillPerSecond", 1000);
    int ok = 0;
    for (int i = 0; i < 3000 && !ok; i++) {
        arm_call(st, "POST", ARM_DB "/listPrincipals" V, NULL, &a);
        ok = a.resp.status == 200;
        if (!ok) assert_int_equal(a.resp.status, 429);
        if (!ok) assert_string_equal(arm_header(&a, "Retry-After"), "1");
        arm_answer_clear(&a);
        if (!ok) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(ok);
    /* read bucket */
    set_setting(st, "armReadBucket", 1);
    set_setting(st, "armReadRefillPerSecond", 0);
    arm_fake_caller(ARM_READER);
    arm_call(st, "GET", ARM_DB V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(arm_header(&a, "x-ms-ratelimit-remaining-subscription-reads"), "0");
    arm_answer_clear(&a);
    expect_error(st, "GET", ARM_DB V, NULL, 429, "SubscriptionRequestsThrottled");
}

static void test_operation_result_access(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    char op_url[512];
    arm_call(st, "PATCH", ARM_DB V, "{\"kind\":\"ReadWrite\"}", &a);
    snprintf(op_url, sizeof op_url, "%s", after_host(arm_header(&a, "Azure-AsyncOperation")));
    arm_answer_clear(&a);
    arm_fake_caller(ARM_READER); /* may read the database, so may read its operation */
    arm_call(st, "GET", op_url, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
    arm_fake_caller(ARM_RG_ONLY);
    expect_error(st, "GET", op_url, NULL, 403, "AuthorizationFailed");
    arm_fake_caller(ARM_WRITER);
    /* wrong location in the URL: not found */
    char wrong[600];
    snprintf(wrong, sizeof wrong, "%s", op_url);
    char *w = strstr(wrong, "/westus/");
    memcpy(w, "/eastus/", 8);
    expect_error(st, "GET", wrong, NULL, 404, "ResourceNotFound");
}

static void test_hostile_paths(void **state)
{
    sim_state *st = *state;
    static const char *const paths[] = {
        "" V,
        "no-slash" V,
        "//////" V,
        "/subscriptions" V,
        "/subscriptions/" V,
        "/subscriptions/" ARM_SUB V,
        "/subscriptions/" ARM_SUB "/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/"
        "mykustocluster/databases/mykustodatabase/principalAssignments/a/b/c/d/e/f/g/h/i/j" V,
        "/subscriptions/" ARM_SUB "/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/"
        "mykustocluster/databases/mykusto\x01" V,
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        arm_answer a;
        arm_call(st, "GET", paths[i], NULL, &a);
        assert_true(a.resp.status == 400 || a.resp.status == 404);
        assert_non_null(json_object_get(a.resp.body, "error"));
        arm_answer_clear(&a);
    }
    char longp[1200];
    memset(longp, 'a', sizeof longp);
    memcpy(longp, ARM_C "/databases/", strlen(ARM_C "/databases/"));
    snprintf(longp + 900, sizeof longp - 900, "%s", V);
    arm_answer a;
    arm_call(st, "GET", longp, NULL, &a);
    assert_int_equal(a.resp.status, 400);
    arm_answer_clear(&a);
}

/* A state edited by hand (or by /_sim/state) may hold anything: no crash, sane answers. */
static void test_garbage_runtime_state(void **state)
{
    sim_state *st = *state;
    json_error_t e;
    json_object_set_new(
        st->root, "armRuntime",
        json_loads("{\"operations\": [5, {\"status\": \"Running\"}, {\"name\": \"x\"},"
                   " {\"name\": \"op1\", \"subscriptionId\": \"" ARM_SUB "\","
                   "  \"location\": \"westus\", \"status\": \"Running\", \"dueMs\": 0,"
                   "  \"action\": \"dbUpdate\", \"target\": {\"sub\": 3}}],"
                   " \"throttle\": {\"writes|x|y\": 3}}",
                   0, &e));
    arm_answer a;
    arm_call(st, "GET", ARM_DB V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
    arm_call(st, "GET",
             "/subscriptions/" ARM_SUB "/providers/Microsoft.Kusto/locations/westus/"
             "operationResults/op1" V,
             NULL, &a);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "status")), "Failed");
    arm_answer_clear(&a);
    json_object_set_new(st->root, "armRuntime", json_string("nonsense"));
    arm_call(st, "PATCH", ARM_DB V, "{\"kind\":\"ReadWrite\"}", &a);
    assert_int_equal(a.resp.status, 202);
    arm_answer_clear(&a);
    /* principals that are not an array are replaced on write */
    json_object_set_new(state_db(st, "mykustodatabase"), "principals", json_integer(1));
    arm_call(st, "POST", ARM_DB "/listPrincipals" V, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
    arm_call(st, "POST", ARM_DB "/addPrincipals" V, principals_body, &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
}

/* Finished operations stay answerable well beyond a few hundred (Azure keeps results for
 * hours); the kept set is bounded, oldest finished first, and stays cheap to tick. */
static void test_operation_retention(void **state)
{
    sim_state *st = *state;
    set_setting(st, "armWriteBucket", 0); /* no throttling */
    set_setting(st, "lroDurationMs", 0);
    arm_answer a;
    char first[512] = "";
    for (int i = 0; i < 600; i++) {
        arm_call(st, "PATCH", ARM_DB V, "{\"kind\":\"ReadWrite\"}", &a);
        assert_int_equal(a.resp.status, 202);
        if (i == 0) snprintf(first, sizeof first, "%s", after_host(arm_header(&a, "Location")));
        arm_answer_clear(&a);
    }
    arm_call(st, "GET", first, NULL, &a); /* the 600th-newest: still known, and done */
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
    json_t *rt = json_object_get(st->root, "armRuntime");
    json_t *ops = json_object_get(rt, "operations");
    assert_int_equal(json_array_size(ops), 600);
    assert_int_equal(json_integer_value(json_object_get(rt, "firstRunning")), 600);
    assert_null(json_object_get(json_array_get(ops, 0), "payload")); /* finished: slim */

    /* at the bound, the oldest finished go (with some slack), the newest stay */
    json_t *pad = json_array();
    for (int i = 0; i < 100000; i++)
        json_array_append_new(pad, json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", "old",
                                             "subscriptionId", ARM_SUB, "location", "westus",
                                             "status", "Succeeded", "doneMs", (json_int_t)0));
    json_array_extend(pad, ops);
    json_object_set_new(rt, "operations", pad);
    json_object_set_new(rt, "firstRunning", json_integer(0));
    arm_call(st, "PATCH", ARM_DB V, "{\"kind\":\"ReadWrite\"}", &a);
    assert_int_equal(a.resp.status, 202);
    arm_answer_clear(&a);
    ops = json_object_get(rt, "operations");
    assert_true(json_array_size(ops) <= 100000);
    assert_true(json_array_size(ops) >= 98000);
    arm_call(st, "GET", first, NULL, &a);
    assert_int_equal(a.resp.status, 200);
    arm_answer_clear(&a);
    /* a firstRunning that cannot be right is not trusted */
    json_object_set_new(rt, "firstRunning", json_integer(-5));
    sim_arm_tick(st);
    assert_true(json_integer_value(json_object_get(rt, "firstRunning")) >= 0);
}

/* faults.ignoreWrites as the front passes it: the write answers as usual and is lost. */
static void test_lost_writes(void **state)
{
    sim_state *st = *state;
    arm_answer a;
    arm_fake_lose_writes(3);
    arm_call(st, "PATCH", ARM_DB V,
             "{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"P7D\"}}", &a);
    assert_int_equal(a.resp.status, 202);
    assert_string_equal(prop(&a, "softDeletePeriod"), "P365D"); /* the value as it stays */
    char op[512];
    snprintf(op, sizeof op, "%s", after_host(arm_header(&a, "Azure-AsyncOperation")));
    arm_answer_clear(&a);
    expire_ops(st);
    arm_call(st, "GET", op, NULL, &a);
    assert_string_equal(json_string_value(json_object_get(a.resp.body, "status")), "Succeeded");
    arm_answer_clear(&a);
    assert_string_equal(
        json_string_value(json_object_get(state_db(st, "mykustodatabase"), "softDeletePeriod")),
        "P365D");
    arm_call(st, "POST", ARM_DB "/addPrincipals" V, principals_body, &a);
    assert_int_equal(a.resp.status, 200);
    assert_int_equal(json_array_size(json_object_get(a.resp.body, "value")), 0);
    arm_answer_clear(&a);
    arm_call(st, "PUT", ARM_DB "/principalAssignments/lost" V,
             "{\"properties\":{\"principalId\":\"" ARM_WRITER "\",\"role\":\"Admin\","
             "\"principalType\":\"App\"}}",
             &a);
    assert_int_equal(a.resp.status, 201);
    arm_answer_clear(&a);
    expire_ops(st);
    expect_error(st, "GET", ARM_DB "/principalAssignments/lost" V, NULL, 404, "ResourceNotFound");
    /* reads, refused writes and a DELETE of nothing are not writes that change the state */
    arm_call(st, "POST", ARM_DB "/listPrincipals" V, NULL, &a);
    arm_answer_clear(&a);
    expect_error(st, "PATCH", ARM_DB V, "{}", 400, "BadRequest");
    arm_call(st, "DELETE", ARM_DB "/principalAssignments/none" V, NULL, &a);
    assert_int_equal(a.resp.status, 204);
    arm_answer_clear(&a);
    assert_int_equal(arm_fake_writes_asked(), 3);
    /* the budget is spent: the next write applies */
    arm_call(st, "POST", ARM_DB "/addPrincipals" V, principals_body, &a);
    assert_int_equal(json_array_size(json_object_get(a.resp.body, "value")), 2);
    arm_answer_clear(&a);
    arm_fake_lose_writes(0);
}

/* A database's hot windows (Kusto only) are part of its caching policy: ARM setting or
 * clearing hotCachePeriod replaces the policy, ARM setting only softDeletePeriod keeps them. */
static void test_hot_windows_follow_arm(void **state)
{
    sim_state *st = *state;
    json_t *db = state_db(st, "mykustodatabase");
    arm_answer a;
    json_object_set_new(db, "hotWindows",
                        json_pack("[{s:s, s:s}]", "MinValue", "2021-01-01T00:00:00Z", "MaxValue",
                                  "2021-02-01T00:00:00Z"));
    arm_call(st, "PATCH", ARM_DB V,
             "{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"P7D\"}}", &a);
    arm_answer_clear(&a);
    expire_ops(st);
    sim_arm_tick(st);
    assert_int_equal(json_array_size(json_object_get(db, "hotWindows")), 1);
    arm_call(st, "PATCH", ARM_DB V,
             "{\"kind\":\"ReadWrite\",\"properties\":{\"hotCachePeriod\":\"P3D\"}}", &a);
    arm_answer_clear(&a);
    expire_ops(st);
    sim_arm_tick(st);
    assert_null(json_object_get(db, "hotWindows"));
    assert_string_equal(json_string_value(json_object_get(db, "hotCachePeriod")), "P3D");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_databases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_case_insensitive_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authorization, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_lro, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lro_completes_in_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_create_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operation_fails_when_target_vanishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_principals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_principal_assignments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operation_result_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_runtime_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operation_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hot_windows_follow_arm, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
