/* sim_state.c: azure-sim's simulated state: the documented default, loading and shape
 * checks of --state files, and the lookups the front needs (tenants, apps, clusters). */
#include "sim_core.h"
#include "kusto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The default state (README.md documents it). */
static const char DEFAULT_STATE[] =
    "{"
    " \"tenants\": [{\"id\": \"11111111-1111-1111-1111-111111111111\","
    "               \"domain\": \"contoso.onmicrosoft.com\"}],"
    " \"apps\": [{\"appId\": \"33333333-3333-3333-3333-333333333333\","
    "            \"tenantId\": \"11111111-1111-1111-1111-111111111111\","
    "            \"displayName\": \"adx-policy-worker\","
    "            \"secrets\": [\"local-demo-secret\"], \"certificates\": [],"
    "            \"armRoles\": [{\"scope\": "
    "\"/subscriptions/22222222-2222-2222-2222-222222222222\", \"role\": \"Contributor\"}]}],"
    " \"subscriptions\": [{\"id\": \"22222222-2222-2222-2222-222222222222\","
    "   \"resourceGroups\": [{\"name\": \"testrg\", \"clusters\": [{"
    "     \"name\": \"mykustocluster\", \"location\": \"westus\","
    "     \"uri\": \"https://mykustocluster.westus.kusto.windows.net\","
    "     \"policies\": {}, \"principalAssignments\": [],"
    "     \"managedIdentities\": ["
    "       {\"objectId\": \"99999999-0000-4000-8000-000000000001\","
    "        \"clientId\": \"99999999-0000-4000-8000-000000000011\","
    "        \"tenantId\": \"11111111-1111-1111-1111-111111111111\","
    "        \"displayName\": \"mykustocluster\", \"isSystem\": true},"
    "       {\"objectId\": \"99999999-0000-4000-8000-000000000002\","
    "        \"clientId\": \"99999999-0000-4000-8000-000000000012\","
    "        \"tenantId\": \"11111111-1111-1111-1111-111111111111\","
    "        \"displayName\": \"ingest-identity\", \"isSystem\": false}],"
    "     \"databases\": [{"
    "       \"name\": \"mykustodatabase\", \"kind\": \"ReadWrite\","
    "       \"softDeletePeriod\": \"P365D\", \"hotCachePeriod\": \"P31D\","
    "       \"recoverability\": \"Enabled\", \"policies\": {},"
    "       \"principals\": [{\"role\": \"Admin\", \"type\": \"App\","
    "                         \"name\": \"adx-policy-worker\","
    "                         \"fqn\": \"aadapp=33333333-3333-3333-3333-333333333333;"
    "11111111-1111-1111-1111-111111111111\","
    "                         \"appId\": \"33333333-3333-3333-3333-333333333333\","
    "                         \"email\": \"\", \"tenantName\": \"contoso.onmicrosoft.com\"}],"
    "       \"principalAssignments\": [],"
    "       \"tables\": [{\"name\": \"StormEvents\", \"policies\": {}, \"principals\": [],"
    "                   \"columns\": [{\"name\": \"StartTime\", \"type\": \"datetime\"},"
    "                               {\"name\": \"State\", \"type\": \"string\"},"
    "                               {\"name\": \"EventType\", \"type\": \"string\"}]},"
    "                  {\"name\": \"Logs\", \"policies\": {}, \"principals\": [],"
    "                   \"columns\": [{\"name\": \"Timestamp\", \"type\": \"datetime\"},"
    "                               {\"name\": \"Level\", \"type\": \"string\"},"
    "                               {\"name\": \"Message\", \"type\": \"string\"}]}],"
    "       \"materializedViews\": [{\"name\": \"DailyStorms\", \"policies\": {},"
    "                              \"principals\": []}],"
    "       \"externalTables\": [{\"name\": \"ExternalLogs\", \"policies\": {}}]"
    "     }]"
    "   }]}]"
    " }],"
    " \"settings\": {\"lroDurationMs\": 1500, \"lroRetryAfterSeconds\": 1,"
    "                \"tokenLifetimeSeconds\": 3600, \"armWriteBucket\": 200,"
    "                \"armWriteRefillPerSecond\": 10, \"kustoMaxConcurrent\": 8,"
    "                \"kustoCommandLatencyMs\": 0}"
    "}";

/* Regions whose *.<region>.kusto.windows.net wildcard the server certificate always
 * carries, so clusters added at run time (PUT /_sim/state) in these regions work
 * without a restart. */
static const char *const REGIONS[] = {
    "westus",
    "westus2",
    "westus3",
    "eastus",
    "eastus2",
    "centralus",
    "northcentralus",
    "southcentralus",
    "westcentralus",
    "canadacentral",
    "canadaeast",
    "brazilsouth",
    "northeurope",
    "westeurope",
    "uksouth",
    "ukwest",
    "francecentral",
    "germanywestcentral",
    "swedencentral",
    "switzerlandnorth",
    "norwayeast",
    "polandcentral",
    "italynorth",
    "eastasia",
    "southeastasia",
    "japaneast",
    "japanwest",
    "australiaeast",
    "australiasoutheast",
    "centralindia",
    "southindia",
    "koreacentral",
    "uaenorth",
    "southafricanorth",
    "qatarcentral",
};

json_t *sim_state_default(void)
{
    json_error_t e;
    json_t *root = json_loads(DEFAULT_STATE, 0, &e);
    if (!root) {
        fprintf(stderr, "azure-sim: default state does not parse: %s (line %d)\n", e.text, e.line);
        abort();
    }
    /* the cluster's built-in "default" workload group, as the engine defines it */
    json_t *sub = json_array_get(json_object_get(root, "subscriptions"), 0);
    json_t *rg = json_array_get(json_object_get(sub, "resourceGroups"), 0);
    json_t *cl = json_array_get(json_object_get(rg, "clusters"), 0);
    json_object_set_new(cl, "workloadGroups",
                        json_pack("[{s:s, s:o}]", "name", "default", "definition",
                                  sim_kusto_default_workload_group()));
    return root;
}

static int check_array_of_objects(const json_t *parent, const char *key, const char *need,
                                  const char *where, char *err, size_t errlen)
{
    json_t *a = json_object_get(parent, key);
    if (!a) return 0;
    if (!json_is_array(a)) {
        snprintf(err, errlen, "%s.%s must be an array", where, key);
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_object(v)) {
            snprintf(err, errlen, "%s.%s[%zu] must be an object", where, key, i);
            return -1;
        }
        if (need && !json_is_string(json_object_get(v, need))) {
            snprintf(err, errlen, "%s.%s[%zu].%s must be a string", where, key, i, need);
            return -1;
        }
    }
    return 0;
}

int sim_state_check(const json_t *root, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        snprintf(err, errlen, "the state must be a JSON object");
        return -1;
    }
    if (check_array_of_objects(root, "tenants", "id", "state", err, errlen) ||
        check_array_of_objects(root, "apps", "appId", "state", err, errlen) ||
        check_array_of_objects(root, "subscriptions", "id", "state", err, errlen))
        return -1;
    json_t *s = json_object_get(root, "settings");
    if (s && !json_is_object(s)) {
        snprintf(err, errlen, "state.settings must be an object");
        return -1;
    }
    size_t i, j, k;
    json_t *app, *sub, *rg, *cl;
    json_array_foreach(json_object_get(root, "apps"), i, app)
    {
        json_t *a = json_object_get(app, "secrets");
        json_t *c = json_object_get(app, "certificates");
        if ((a && !json_is_array(a)) || (c && !json_is_array(c))) {
            snprintf(err, errlen, "apps[%zu].secrets/certificates must be arrays", i);
            return -1;
        }
    }
    json_array_foreach(json_object_get(root, "subscriptions"), i, sub)
    {
        if (check_array_of_objects(sub, "resourceGroups", "name", "subscription", err, errlen))
            return -1;
        json_array_foreach(json_object_get(sub, "resourceGroups"), j, rg)
        {
            if (check_array_of_objects(rg, "clusters", "name", "resourceGroup", err, errlen))
                return -1;
            json_array_foreach(json_object_get(rg, "clusters"), k, cl)
            {
                const char *uri = json_string_value(json_object_get(cl, "uri"));
                if (!uri || strncasecmp(uri, "https://", 8) != 0 || strlen(uri) > 200) {
                    snprintf(err, errlen, "cluster '%s' needs a \"uri\" https://...",
                             json_string_value(json_object_get(cl, "name")));
                    return -1;
                }
                if (check_array_of_objects(cl, "databases", "name", "cluster", err, errlen))
                    return -1;
            }
        }
    }
    return 0;
}

json_t *sim_state_load(const char *path, char *err, size_t errlen)
{
    json_error_t e;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        snprintf(err, errlen, "%s: %s (line %d)", path, e.text, e.line);
        return NULL;
    }
    if (sim_state_check(root, err, errlen) != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *sim_state_tenant(json_t *root, const char *tenant)
{
    size_t i;
    json_t *t;
    if (!tenant) return NULL;
    json_array_foreach(json_object_get(root, "tenants"), i, t)
    {
        const char *id = json_string_value(json_object_get(t, "id"));
        const char *dom = json_string_value(json_object_get(t, "domain"));
        if ((id && strcasecmp(id, tenant) == 0) || (dom && strcasecmp(dom, tenant) == 0)) return t;
    }
    return NULL;
}

json_t *sim_state_app(json_t *root, const char *app_id)
{
    size_t i;
    json_t *a;
    if (!app_id) return NULL;
    json_array_foreach(json_object_get(root, "apps"), i, a)
    {
        const char *id = json_string_value(json_object_get(a, "appId"));
        if (id && strcasecmp(id, app_id) == 0) return a;
    }
    return NULL;
}

/* Calls fn for every cluster until it returns non-NULL. */
static json_t *each_cluster(json_t *root, json_t *(*fn)(json_t *cl, const char *arg),
                            const char *arg)
{
    size_t i, j, k;
    json_t *sub, *rg, *cl;
    json_array_foreach(json_object_get(root, "subscriptions"), i, sub)
    {
        json_array_foreach(json_object_get(sub, "resourceGroups"), j, rg)
        {
            json_array_foreach(json_object_get(rg, "clusters"), k, cl)
            {
                json_t *r = fn(cl, arg);
                if (r) return r;
            }
        }
    }
    return NULL;
}

/* Host part of "https://host[:port][/...]" into out. */
static void uri_host(const char *uri, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!uri) return;
    const char *p = strstr(uri, "://");
    p = p ? p + 3 : uri;
    size_t n = strcspn(p, ":/");
    if (n >= outlen) n = outlen - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static json_t *match_host(json_t *cl, const char *host)
{
    char h[256];
    uri_host(json_string_value(json_object_get(cl, "uri")), h, sizeof(h));
    return strcasecmp(h, host) == 0 ? cl : NULL;
}

static json_t *match_uri(json_t *cl, const char *uri)
{
    return sim_uri_eq(json_string_value(json_object_get(cl, "uri")), uri) ? cl : NULL;
}

json_t *sim_state_cluster_by_host(json_t *root, const char *host)
{
    return host ? each_cluster(root, match_host, host) : NULL;
}

json_t *sim_state_cluster_by_uri(json_t *root, const char *uri)
{
    return uri ? each_cluster(root, match_uri, uri) : NULL;
}

static void add_name(char **names, size_t *n, size_t max, const char *name)
{
    if (*n >= max || !name[0]) return;
    for (size_t i = 0; i < *n; i++)
        if (strcasecmp(names[i], name) == 0) return;
    names[(*n)++] = strdup(name);
}

size_t sim_state_cert_names(json_t *root, char **names, size_t max)
{
    size_t n = 0;
    add_name(names, &n, max, "login.microsoftonline.com");
    add_name(names, &n, max, "management.azure.com");
    add_name(names, &n, max, "localhost");
    add_name(names, &n, max, "127.0.0.1");
    size_t i, j, k;
    json_t *sub, *rg, *cl;
    char buf[300];
    json_array_foreach(json_object_get(root, "subscriptions"), i, sub)
    {
        json_array_foreach(json_object_get(sub, "resourceGroups"), j, rg)
        {
            json_array_foreach(json_object_get(rg, "clusters"), k, cl)
            {
                uri_host(json_string_value(json_object_get(cl, "uri")), buf, sizeof(buf));
                add_name(names, &n, max, buf);
                /* the wildcard for the host's region: "*.<rest after the first label>" */
                const char *dot = strchr(buf, '.');
                if (dot && strchr(dot + 1, '.')) {
                    char wild[310];
                    snprintf(wild, sizeof(wild), "*%s", dot);
                    add_name(names, &n, max, wild);
                }
            }
        }
    }
    for (size_t r = 0; r < sizeof(REGIONS) / sizeof(REGIONS[0]); r++) {
        snprintf(buf, sizeof(buf), "*.%s.kusto.windows.net", REGIONS[r]);
        add_name(names, &n, max, buf);
    }
    return n;
}
