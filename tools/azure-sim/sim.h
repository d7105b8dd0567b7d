/* sim.h: what azure-sim's parts share: the request/response shapes the HTTPS front
 * hands to each service (AAD, ARM, Kusto) and the layout of the simulated state.
 *
 * Threading: the front serves connections on several threads and holds
 * sim_state.lock while a service handler runs; handlers never block or sleep.
 *
 * State layout (the --state FILE format; GET /_sim/state returns the same):
 * {
 *   "tenants": [{"id": "<guid>", "domain": "contoso.onmicrosoft.com"}],
 *   "apps": [{"appId": "<guid>", "tenantId": "<guid>", "displayName": "...",
 *             "secrets": ["..."], "certificates": ["-----BEGIN CERTIFICATE-----..."],
 *             "armRoles": [{"scope": "/subscriptions/<sub>[/resourceGroups/<rg>...]",
 *                           "role": "Owner"|"Contributor"|"Reader"}]}],
 *   "subscriptions": [{"id": "<guid>", "resourceGroups": [{"name": "testrg", "clusters": [{
 *       "name": "mykustocluster", "location": "westus",
 *       "uri": "https://mykustocluster.westus.kusto.windows.net",
 *       "policies": {"<kusto policy keyword>": <policy JSON object>},   cluster-level
 *       "principalAssignments": [{"name", "principalId", "role", "tenantId", "principalType"}],
 *       "databases": [{
 *           "name": "mykustodatabase", "kind": "ReadWrite",
 *           "softDeletePeriod": "P365D",    ISO-8601; THE database retention (ARM and Kusto views)
 *           "hotCachePeriod": "P31D",       ISO-8601; THE database caching policy; absent = unset
 *           "hotWindows": [{"MinValue": "2021-01-01T00:00:00Z", "MaxValue": ...}],  the caching
 *                                           policy's hot windows (Kusto only; ARM setting
 *                                           hotCachePeriod replaces the policy, windows go)
 *           "recoverability": "Enabled",    retention policy's other field
 *           "policies": {"merge": {...}, ...},  other database-level policies by keyword
 *           "principals": [{"role": "Admin", "type": "App", "name": "...",
 *                           "fqn": "aadapp=<appId>;<tenantId>", "appId": "...", "email": "",
 *                           "tenantName": "..."}],   shared by ARM addPrincipals/listPrincipals
 *                                                    and Kusto .add/.drop/.show database principals
 *           "principalAssignments": [{"name", "principalId", "role", "tenantId", "principalType"}],
 *           "tables": [{"name": "StormEvents", "policies": {"caching": {"DataHotSpan": ...}},
 *                       "principals": [...as above, roles Admin/Ingestor],
 *                       "columns": [{"name": "StartTime", "type": "datetime",
 *                                    "policies": {"encoding": {...}}} or "StartTime"]}],
 *           "materializedViews": [{"name": "...", "policies": {}, "principals": [...Admin]}],
 *           "externalTables": [{"name": "ExternalLogs", "policies": {}}]
 *       }],
 *       "workloadGroups": [{"name": "default", "definition": {<workload group JSON>}}],
 *       "managedIdentities": [{"objectId", "clientId", "tenantId", "displayName",
 *                              "isSystem"}]     identities assigned to the cluster
 *       }]}]}],
 *   "settings": {"lroDurationMs": 1500, "lroRetryAfterSeconds": 1, "tokenLifetimeSeconds": 3600,
 *                "armWriteBucket": 200, "armWriteRefillPerSecond": 10,
 *                "kustoMaxConcurrent": 8, "kustoCommandLatencyMs": 0}
 * }
 * Kusto policy objects are stored in Kusto's JSON form (timespans "d.hh:mm:ss"); a key
 * absent from "policies" means the policy is not set at that level.
 * ARM role mapping to Kusto database roles: Admin=admins, User=users, Viewer=viewers,
 * UnrestrictedViewer=unrestrictedviewers, Ingestor=ingestors, Monitor=monitors. */
#ifndef SIM_H
#define SIM_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_HEADERS 24

typedef struct sim_request sim_request;

/* A request as the front parsed it.  All strings are valid for the handler call. */
struct sim_request {
    const char *method; /* "GET", "POST", ... */
    const char *host;   /* from Host, lower-cased, port removed */
    const char *path;   /* URL path, percent-decoded, no query */
    const char *body;   /* raw body (NUL-terminated), "" when none */
    size_t body_len;
    /* Looks up a header (case-insensitive) or a query parameter; NULL when absent. */
    const char *(*header)(const sim_request *req, const char *name);
    const char *(*query)(const sim_request *req, const char *name);
    void *impl; /* the front's own data behind header()/query() */
    /* From the bearer token, verified by the front (signature, expiry); NULL/0 when none. */
    int token_state;              /* 0 none, 1 valid, 2 expired, 3 invalid */
    const char *caller_app_id;    /* the token's appid claim */
    const char *caller_tenant_id; /* the token's tid claim */
    const char *token_audience;   /* the token's aud claim */
    const char *activity_id;      /* a fresh GUID for this request (x-ms-request-id / activity) */
    /* Asked once by a handler for a write that passed its checks, just before it changes the
     * state: 1 = lose it (answer as usual, from the unchanged state; an LRO then succeeds
     * without applying anything).  The front counts faults.ignoreWrites down; NULL = never. */
    int (*ignore_write)(const sim_request *req);
};

typedef struct sim_response {
    int status;
    json_t *body; /* owned; NULL = empty body */
    size_t header_count;
    struct {
        char name[64];
        char value[512];
    } headers[SIM_MAX_HEADERS];
} sim_response;

typedef struct sim_state {
    pthread_mutex_t lock;
    json_t *root;       /* the layout above */
    char base_url[128]; /* "https://127.0.0.1:PORT" the simulator listens on */
} sim_state;

/* Sets a response header: replaces one of the same name (case-insensitive), else adds it
 * (a new one past SIM_MAX_HEADERS is silently ignored). Front provides it. */
void sim_response_header(sim_response *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Random GUID "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (out >= 37 bytes). Front provides. */
void sim_guid(char *out, size_t outlen);
/* Monotonic milliseconds; wall-clock ISO-8601 UTC "2026-11-24T15:00:00.000Z". Front provides. */
uint64_t sim_now_ms(void);
void sim_now_iso(char *out, size_t outlen);
/* The wall-clock time ago_ms milliseconds before now, in sim_now_iso's format. */
void sim_iso_ago(char *out, size_t outlen, uint64_t ago_ms);
/* Integer setting from state.settings, or def when absent. Front provides. */
long sim_setting(const sim_state *st, const char *name, long def);

/* ARM (arm.c): management.azure.com.  Called with st->lock held, after the front
 * checked that a token is present (token_state 1) with audience management.azure.com. */
void sim_arm_handle(sim_state *st, const sim_request *req, sim_response *resp);
/* The ARM error body {"error": {"code", "message"[, "target"]}} (new reference); message
 * and target may hold any bytes (invalid UTF-8 becomes '?'); target NULL = none. */
json_t *sim_arm_error_body(const char *code, const char *target, const char *message);
/* ARM's periodic work (LRO completion), with the lock held: sim_arm_handle runs it before
 * every ARM request; the front before every Kusto command and GET /_sim/state; may also
 * be called at any time. */
void sim_arm_tick(sim_state *st);

#endif
