/* kusto_test_util.h: shared helpers for the Kusto engine tests: a default cluster
 * state and one-call command execution. */
#ifndef KUSTO_TEST_UTIL_H
#define KUSTO_TEST_UTIL_H

#include "kusto.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_APP "33333333-3333-3333-3333-333333333333"
#define VIEWER_APP "44444444-4444-4444-4444-444444444444"
#define CLUSTER_ADMIN_APP "55555555-5555-5555-5555-555555555555"
#define STRANGER_APP "66666666-6666-6666-6666-666666666666"
#define TENANT "11111111-1111-1111-1111-111111111111"
#define MI_SYSTEM "99999999-0000-4000-8000-000000000001" /* the cluster's system identity */
#define MI_USER "99999999-0000-4000-8000-000000000002"   /* a user-assigned identity */

/* The documented default cluster plus a viewer, a cluster-wide admin, a second
 * database, a materialized view, an external table, columns (Logs.Level as a bare name)
 * and two managed identities. */
static inline json_t *test_cluster(void)
{
    json_error_t e;
    json_t *c = json_loads(
        "{\"name\":\"mykustocluster\",\"location\":\"westus\","
        "\"uri\":\"https://mykustocluster.westus.kusto.windows.net\",\"policies\":{},"
        "\"principalAssignments\":[{\"name\":\"pa1\",\"principalId\":\"" CLUSTER_ADMIN_APP "\","
        "\"role\":\"AllDatabasesAdmin\",\"tenantId\":\"" TENANT "\",\"principalType\":\"App\"}],"
        "\"managedIdentities\":[{\"objectId\":\"" MI_SYSTEM "\",\"clientId\":\"c-sys\","
        "\"tenantId\":\"" TENANT "\",\"displayName\":\"mykustocluster\",\"isSystem\":true},"
        "{\"objectId\":\"" MI_USER "\",\"clientId\":\"c-user\",\"tenantId\":\"" TENANT "\","
        "\"displayName\":\"ingest-identity\",\"isSystem\":false}],"
        "\"databases\":[{\"name\":\"mykustodatabase\",\"kind\":\"ReadWrite\","
        "\"softDeletePeriod\":\"P365D\",\"hotCachePeriod\":\"P31D\",\"policies\":{},"
        "\"principals\":[{\"role\":\"Admin\",\"type\":\"App\",\"name\":\"demo\","
        "\"fqn\":\"aadapp=" ADMIN_APP ";" TENANT "\",\"appId\":\"" ADMIN_APP "\",\"email\":\"\","
        "\"tenantName\":\"" TENANT "\"},"
        "{\"role\":\"Viewer\",\"type\":\"App\",\"name\":\"viewer\","
        "\"fqn\":\"aadapp=" VIEWER_APP ";" TENANT "\",\"appId\":\"" VIEWER_APP "\",\"email\":\"\","
        "\"tenantName\":\"" TENANT "\"}],"
        "\"principalAssignments\":[],"
        "\"tables\":[{\"name\":\"StormEvents\",\"policies\":{},\"columns\":["
        "{\"name\":\"StartTime\",\"type\":\"datetime\"},{\"name\":\"State\",\"type\":\"string\"},"
        "{\"name\":\"EventType\",\"type\":\"string\"}]},"
        "{\"name\":\"Logs\",\"policies\":{},\"columns\":[{\"name\":\"Timestamp\"},\"Level\","
        "{\"name\":\"Message\"}]},"
        "{\"name\":\"My Table\",\"policies\":{}}],"
        "\"materializedViews\":[{\"name\":\"DailyStorms\",\"policies\":{}}],"
        "\"externalTables\":[{\"name\":\"ExternalLogs\",\"policies\":{}}]},"
        "{\"name\":\"otherdb\",\"kind\":\"ReadWrite\",\"softDeletePeriod\":\"P30D\","
        "\"tables\":[{\"name\":\"T1\",\"policies\":{}}],\"principals\":[]}]}",
        0, &e);
    if (!c) {
        fprintf(stderr, "test state: %s\n", e.text);
        abort();
    }
    return c;
}

static const sim_kusto_caller TEST_ADMIN = {ADMIN_APP, TENANT};
static const sim_kusto_caller TEST_VIEWER = {VIEWER_APP, TENANT};
static const sim_kusto_caller TEST_CLUSTER_ADMIN = {CLUSTER_ADMIN_APP, TENANT};
static const sim_kusto_caller TEST_STRANGER = {STRANGER_APP, TENANT};

/* Runs csl as caller in db; returns the status, *body owned by the caller. */
static inline int run_as(json_t *cluster, const sim_kusto_caller *who, const char *db,
                         const char *csl, json_t **body)
{
    return sim_kusto_execute(cluster, db, csl, who, "KGC.execute;test", "act-1", body);
}

/* Row r, column col of the first table, as a string (NULL for null/absent). */
static inline const char *cell(json_t *body, size_t r, size_t col)
{
    json_t *t = json_array_get(json_object_get(body, "Tables"), 0);
    return json_string_value(json_array_get(json_array_get(json_object_get(t, "Rows"), r), col));
}

static inline size_t nrows(json_t *body)
{
    json_t *t = json_array_get(json_object_get(body, "Tables"), 0);
    return json_array_size(json_object_get(t, "Rows"));
}

static inline const char *err_code(json_t *body)
{
    return json_string_value(json_object_get(json_object_get(body, "error"), "code"));
}

static inline const char *err_message(json_t *body)
{
    return json_string_value(json_object_get(json_object_get(body, "error"), "@message"));
}

#endif
