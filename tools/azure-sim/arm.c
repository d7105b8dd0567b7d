/* arm.c: azure-sim's ARM (management.azure.com) for Microsoft.Kusto databases and principals.
 *
 * Routes (matched case-insensitively; {C} = /subscriptions/{sub}/resourceGroups/{rg}/
 * providers/Microsoft.Kusto/clusters/{cluster}):
 *   GET {C}/databases (pages: $top, $skiptoken, nextLink), GET|PUT|PATCH|DELETE {C}/databases/{db}
 *   POST {C}/databases/{db}/addPrincipals | removePrincipals | listPrincipals
 *   GET {C}/databases/{db}/principalAssignments, GET|PUT|DELETE .../principalAssignments/{name}
 *   GET {C}/principalAssignments,                GET|PUT|DELETE {C}/principalAssignments/{name}
 *   GET /subscriptions/{sub}/providers/Microsoft.Kusto/locations/{loc}/operationResults/{id}
 *       [&operationResultResponseType=Location]
 *
 * Order of checks (as ARM's front door, then the resource provider):
 *   api-version present (400 MissingApiVersionParameter) -> route known (404
 *   InvalidResourceType / 400 InvalidResourceNamespace) -> method allowed (405
 *   MethodNotAllowed) -> api-version well formed (400 InvalidApiVersionParameter) and
 *   supported (400 NoRegisteredProviderFound) -> subscription exists (404
 *   SubscriptionNotFound) -> throttling (429 SubscriptionRequestsThrottled) -> RBAC (403
 *   AuthorizationFailed) -> resource group / cluster / resource exist (404
 *   ResourceGroupNotFound / ResourceNotFound) -> body (413 RequestEntityTooLarge, 400
 *   InvalidRequestContent for JSON that does not parse or has wrong JSON types, 400
 *   BadRequest for values the spec rejects: missing required field, enum, duration -
 *   XSD durations as .NET's XmlConvert reads them: P[nY][nM][nD][T[nH][nM][n[.f]S]], no W).
 *
 * Answers: database PUT/PATCH/DELETE 202 (PUT/PATCH with the database as it will be,
 * provisioningState Creating/Running); principalAssignment PUT 201 (new) / 200 (update)
 * with the assignment, DELETE 202; DELETE of a missing resource 204.  Every LRO answer
 * carries Azure-AsyncOperation (.../operationResults/{guid}?api-version=<the request's>),
 * Location (the same + &operationResultResponseType=Location) and Retry-After.
 * operationResults: 200 {id, name, status Running|Succeeded|Failed, startTime, endTime,
 * percentComplete, properties{operationKind, provisioningState, operationState}, error};
 * the Location variant: 202 while running, 200 without body when Succeeded, 400 with the
 * operation's error when Failed.  GET shows the old values (provisioningState Running or
 * Deleting) until the operation succeeded; a created database appears only then.
 *
 * Bodies: read-only members (provisioningState, statistics, isFollowed, suspensionDetails,
 * tenantName, principalName, aadObjectId) and unknown members are ignored, as ARM RPs do
 * so that a GET body can be PUT back.  PATCH merges (JSON null unsets a period); PUT
 * replaces softDeletePeriod, hotCachePeriod and keyVaultProperties (tables, policies and
 * principals stay).  kind cannot change; ReadOnlyFollowing databases cannot be created
 * here and their softDeletePeriod is read-only.  PUT of a new database adds the caller as
 * Admin principal (fqn aadapp=<appId>;<tenantId>) unless callerRole=None.
 * addPrincipals/removePrincipals answer the database's whole principal list afterwards;
 * identity = role + fqn (case-insensitive; "aadapp=X" matches "aadapp=X;<tenant>").
 *
 * Settings (state.settings): lroDurationMs (1500), lroRetryAfterSeconds (1),
 * armWriteBucket (200) / armWriteRefillPerSecond (10) for PUT/PATCH/DELETE/POST,
 * armReadBucket (250) / armReadRefillPerSecond (25) for GET; one bucket per (caller appId,
 * subscription, reads|writes); a bucket of 0 turns that throttling off.  Answers carry
 * x-ms-ratelimit-remaining-subscription-writes or -reads; an empty bucket gets 429
 * SubscriptionRequestsThrottled with Retry-After (seconds to the next token; 60 when the
 * refill is 0).  RBAC: state.apps[].armRoles, scope = path prefix at a segment boundary;
 * Owner/Contributor may do everything, Reader only GET (POST actions are not reads).
 * Operation results may be read by the operation's starter or by anyone who may read
 * its resource.
 *
 * Long-running operations (database PUT/PATCH/DELETE, principalAssignment PUT/DELETE) are
 * kept in state.root["armRuntime"]["operations"] (visible in /_sim/state): each runs for
 * settings.lroDurationMs, then sim_arm_tick (before every ARM request and every Kusto
 * command) applies its change and marks it Succeeded, endTime = start + lroDurationMs
 * (or Failed when its target vanished meanwhile); operations apply in the order they
 * were started.  Finished operations stay answerable for ARM_OP_KEEP_MS (6 hours; Azure
 * keeps results for hours) and while at most ARM_MAX_OPERATIONS (100000) are kept; beyond
 * that the oldest finished go first; a finished one drops its payload.  dueMs/startMs/doneMs
 * are this process's monotonic milliseconds; firstRunning indexes the oldest running one.
 * Throttling buckets live in state.root["armRuntime"]["throttle"]; replacing the state
 * resets both.
 *
 * Lost writes (sim_request.ignore_write, faults.ignoreWrites): a PUT/PATCH/DELETE answers as
 * usual (the body shows the resource as it stays when it exists) and its operation succeeds
 * without applying anything; addPrincipals/removePrincipals answer the unchanged list. */
#include "sim.h"
#include "kusto.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARM_HOST_URL "https://management.azure.com"
#define ARM_MAX_SEGMENTS 16
#define ARM_MAX_SEGMENT_LEN 260            /* ARM resource names are at most 260 characters */
#define ARM_MAX_BODY (1024 * 1024)         /* larger bodies get 413 RequestEntityTooLarge */
#define ARM_MAX_PRINCIPALS 1000            /* per addPrincipals / removePrincipals request */
#define ARM_MAX_DB_PRINCIPALS 10000        /* per database, total */
#define ARM_MAX_OPERATIONS 100000          /* operations kept; the oldest finished go first */
#define ARM_OP_KEEP_MS (6LL * 3600 * 1000) /* a finished operation is kept this long at least */
#define ARM_MAX_THROTTLE_KEYS 4096         /* buckets (principal x subscription x kind) */
#define ARM_MAX_ASSIGNMENTS 1000           /* principal assignments per database / cluster */

/* Stable api-versions the simulator accepts, newest first. */
static const char *const arm_api_versions[] = {"2025-02-14", "2024-04-13", "2023-08-15",
                                               "2023-05-02", "2022-12-29", "2022-11-11"};
static const char arm_api_versions_text[] =
    "2025-02-14, 2024-04-13, 2023-08-15, 2023-05-02, 2022-12-29, 2022-11-11";

static const char *const db_roles[] = {
    "Admin", "Ingestor", "Monitor", "User", "UnrestrictedViewer", "Viewer", NULL};
static const char *const cluster_roles[] = {"AllDatabasesAdmin", "AllDatabasesViewer",
                                            "AllDatabasesMonitor", NULL};
static const char *const principal_types[] = {"App", "Group", "User", NULL};
static const char *const db_kinds[] = {"ReadWrite", "ReadOnlyFollowing", NULL};

typedef enum {
    R_NONE,
    R_DB,
    R_DB_ADD,
    R_DB_REMOVE,
    R_DB_LIST_PRINCIPALS,
    R_DB_LIST,
    R_DB_PA_LIST,
    R_DB_PA,
    R_CL_PA_LIST,
    R_CL_PA,
    R_OPRESULT
} arm_route;

/* One request in flight: parsed route, looked-up state nodes (borrowed), answer. */
typedef struct arm_ctx {
    sim_state *st;
    const sim_request *req;
    sim_response *resp;
    const char *api_version;
    arm_route route;
    int is_write;
    char sub[ARM_MAX_SEGMENT_LEN + 1];
    char rg[ARM_MAX_SEGMENT_LEN + 1];
    char cluster[ARM_MAX_SEGMENT_LEN + 1];
    char db[ARM_MAX_SEGMENT_LEN + 1];
    char pa[ARM_MAX_SEGMENT_LEN + 1];
    char location[ARM_MAX_SEGMENT_LEN + 1];
    char opid[ARM_MAX_SEGMENT_LEN + 1];
    char scope[2048]; /* request path without a trailing slash (403 messages) */
    json_t *jsub, *jrg, *jcluster, *jdb;
} arm_ctx;

/* ---------- small helpers ---------- */

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int in_enum(const char *v, const char *const *vals)
{
    for (size_t i = 0; vals[i]; i++)
        if (strcmp(v, vals[i]) == 0) return 1;
    return 0;
}

/* Finds the element of array arr whose string field key equals name (case-insensitive). */
static json_t *find_named(json_t *arr, const char *key, const char *name, size_t *index)
{
    size_t i;
    json_t *el;
    if (!name) return NULL;
    json_array_foreach(arr, i, el)
    {
        const char *n = jstr(el, key);
        if (n && strcasecmp(n, name) == 0) {
            if (index) *index = i;
            return el;
        }
    }
    return NULL;
}

/* Array member key of obj, created empty when absent (so callers can append). */
static json_t *ensure_array(json_t *obj, const char *key)
{
    json_t *a = json_object_get(obj, key);
    if (!json_is_array(a)) {
        a = json_array();
        json_object_set_new(obj, key, a);
    }
    return a;
}

static json_t *ensure_object(json_t *obj, const char *key)
{
    json_t *o = json_object_get(obj, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(obj, key, o);
    }
    return o;
}

static void set_body(sim_response *resp, json_t *body)
{
    json_decref(resp->body);
    resp->body = body;
}

json_t *sim_arm_error_body(const char *code, const char *target, const char *message)
{
    char msg[8192]; /* long enough for an echoed header (faults: echo) */
    snprintf(msg, sizeof msg, "%s", message ? message : "");
    sim_utf8_scrub(msg);
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (target) {
        char t[256];
        snprintf(t, sizeof t, "%s", target);
        sim_utf8_scrub(t);
        json_object_set_new(err, "target", json_string(t));
    }
    return json_pack("{s:o}", "error", err);
}

static void arm_error_target(arm_ctx *c, int status, const char *code, const char *target,
                             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void arm_error_target(arm_ctx *c, int status, const char *code, const char *target,
                             const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->resp->status = status;
    set_body(c->resp, sim_arm_error_body(code, target, msg));
}

#define arm_error(c, status, code, ...) arm_error_target(c, status, code, NULL, __VA_ARGS__)

/* ---------- ISO-8601 durations ---------- */

/* Accepts P[nY][nM][nD][T[nH][nM][n[.f]S]] with at least one component, components in
 * order, fractions on seconds only: the XSD duration lexical form that .NET's
 * XmlConvert.ToTimeSpan (behind the swagger "duration" format of the RP) accepts, minus
 * negative values.  No weeks: "P2W" is ISO-8601 but not XSD, so the RP rejects it; a
 * client must send "P14D". */
static int iso_duration_ok(const char *s)
{
    size_t len = strlen(s);
    if (len < 3 || len > 64 || s[0] != 'P') return 0;
    const char *date_units = "YMD", *time_units = "HMS";
    int in_time = 0, any = 0, last = -1;
    s++;
    while (*s) {
        if (*s == 'T') {
            if (in_time) return 0;
            in_time = 1;
            last = -1;
            s++;
            if (!*s) return 0;
            continue;
        }
        size_t digits = 0;
        while (isdigit((unsigned char)*s)) {
            s++;
            digits++;
        }
        if (digits == 0 || digits > 9) return 0;
        int frac = 0;
        if (*s == '.') {
            s++;
            size_t fd = 0;
            while (isdigit((unsigned char)*s)) {
                s++;
                fd++;
            }
            if (fd == 0 || fd > 7) return 0;
            frac = 1;
        }
        const char *units = in_time ? time_units : date_units;
        const char *u = *s ? strchr(units, *s) : NULL;
        if (!u) return 0;
        int idx = (int)(u - units);
        if (idx <= last) return 0;
        if (frac && !(in_time && *s == 'S')) return 0;
        last = idx;
        any = 1;
        s++;
    }
    return any && !(in_time && last == -1);
}

/* ---------- state lookups ---------- */

static json_t *runtime(sim_state *st)
{
    if (!json_is_object(st->root)) return NULL;
    json_t *rt = ensure_object(st->root, "armRuntime");
    ensure_array(rt, "operations");
    ensure_object(rt, "throttle");
    return rt;
}

static json_t *find_sub(sim_state *st, const char *sub)
{
    return find_named(json_object_get(st->root, "subscriptions"), "id", sub, NULL);
}

static json_t *find_cluster(sim_state *st, const char *sub, const char *rg, const char *cl)
{
    json_t *s = find_sub(st, sub);
    json_t *r = s ? find_named(json_object_get(s, "resourceGroups"), "name", rg, NULL) : NULL;
    return r ? find_named(json_object_get(r, "clusters"), "name", cl, NULL) : NULL;
}

static json_t *find_app(sim_state *st, const char *app_id)
{
    if (!app_id) return NULL;
    return find_named(json_object_get(st->root, "apps"), "appId", app_id, NULL);
}

static const char *tenant_domain(sim_state *st, const char *tenant_id)
{
    if (!tenant_id) return NULL;
    json_t *t = find_named(json_object_get(st->root, "tenants"), "id", tenant_id, NULL);
    return jstr(t, "domain");
}

/* ---------- rendering ---------- */

static json_t *cluster_id(const char *sub, const char *rg, const char *cl)
{
    return json_sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Kusto/Clusters/%s",
                        sub, rg, cl);
}

/* Database resource as ARM shows it; prov = provisioningState. */
static json_t *render_db(const char *sub, const char *rg, json_t *cluster, json_t *db,
                         const char *prov)
{
    const char *cl = jstr(cluster, "name"), *name = jstr(db, "name");
    const char *kind = jstr(db, "kind") ? jstr(db, "kind") : "ReadWrite";
    json_t *id = cluster_id(sub, rg, cl);
    json_t *out =
        json_pack("{s:s++, s:s++, s:s, s:s, s:s}", "id", json_string_value(id), "/Databases/", name,
                  "name", cl, "/", name, "type", "Microsoft.Kusto/Clusters/Databases", "kind", kind,
                  "location", jstr(cluster, "location") ? jstr(cluster, "location") : "westus");
    json_decref(id);
    json_t *props = json_object();
    const char *sd = jstr(db, "softDeletePeriod"), *hc = jstr(db, "hotCachePeriod");
    if (sd) json_object_set_new(props, "softDeletePeriod", json_string(sd));
    if (hc) json_object_set_new(props, "hotCachePeriod", json_string(hc));
    json_t *kv = json_object_get(db, "keyVaultProperties");
    if (json_is_object(kv)) json_object_set(props, "keyVaultProperties", kv);
    json_object_set_new(props, "provisioningState", json_string(prov));
    if (strcmp(kind, "ReadWrite") == 0) json_object_set_new(props, "isFollowed", json_false());
    json_object_set_new(out, "properties", props);
    return out;
}

static json_t *render_principal(json_t *p)
{
    static const char *const keys[] = {"role",  "name",  "type",      "fqn",
                                       "email", "appId", "tenantName"};
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = jstr(p, keys[i]);
        if (v) json_object_set_new(out, keys[i], json_string(v));
    }
    return out;
}

static json_t *render_principal_list(json_t *db)
{
    json_t *value = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(db, "principals"), i, p)
        json_array_append_new(value, render_principal(p));
    return json_pack("{s:o}", "value", value);
}

/* Principal assignment; db NULL for a cluster-level one. */
static json_t *render_pa(sim_state *st, const char *sub, const char *rg, json_t *cluster,
                         json_t *db, json_t *pa, const char *prov)
{
    const char *cl = jstr(cluster, "name"), *name = jstr(pa, "name");
    const char *pid = jstr(pa, "principalId") ? jstr(pa, "principalId") : "";
    const char *tid = jstr(pa, "tenantId") ? jstr(pa, "tenantId") : "";
    const char *ptype = jstr(pa, "principalType") ? jstr(pa, "principalType") : "App";
    const char *domain = tenant_domain(st, tid);
    json_t *app = strcmp(ptype, "App") == 0 ? find_app(st, pid) : NULL;
    const char *pname = jstr(app, "displayName") ? jstr(app, "displayName") : pid;
    json_t *cid = cluster_id(sub, rg, cl);
    json_t *out;
    if (db)
        out = json_pack("{s:s+++++, s:s++++, s:s}", "id", json_string_value(cid), "/Databases/",
                        jstr(db, "name"), "/PrincipalAssignments/", name, "", "name", cl, "/",
                        jstr(db, "name"), "/", name, "type",
                        "Microsoft.Kusto/Clusters/Databases/PrincipalAssignments");
    else
        out = json_pack("{s:s+++, s:s+++, s:s}", "id", json_string_value(cid),
                        "/PrincipalAssignments/", name, "", "name", cl, "/", name, "", "type",
                        "Microsoft.Kusto/Clusters/PrincipalAssignments");
    json_decref(cid);
    json_object_set_new(out, "properties",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "principalId", pid,
                                  "role", jstr(pa, "role") ? jstr(pa, "role") : "", "tenantId", tid,
                                  "principalType", ptype, "tenantName", domain ? domain : tid,
                                  "principalName", pname, "provisioningState", prov, "aadObjectId",
                                  pid));
    return out;
}

/* ---------- long-running operations ---------- */

#define OP_URL_FMT                                                                                 \
    ARM_HOST_URL "/subscriptions/%s/providers/Microsoft.Kusto/locations/%s/operationResults/%s"    \
                 "?api-version=%s%s"

static void lro_headers(arm_ctx *c, json_t *op)
{
    const char *sub = jstr(op, "subscriptionId"), *loc = jstr(op, "location"),
               *id = jstr(op, "name");
    sim_response_header(c->resp, "Azure-AsyncOperation", OP_URL_FMT, sub, loc, id, c->api_version,
                        "");
    sim_response_header(c->resp, "Location", OP_URL_FMT, sub, loc, id, c->api_version,
                        "&operationResultResponseType=Location");
    sim_response_header(c->resp, "Retry-After", "%ld",
                        sim_setting(c->st, "lroRetryAfterSeconds", 1));
}

static int op_running(json_t *op)
{
    const char *status = jstr(op, "status");
    return status && strcmp(status, "Running") == 0;
}

/* armRuntime.firstRunning: every operation before this index has finished, so the work done
 * per request (ticks, provisioning states) does not grow with the finished ones kept.  A
 * value that cannot be right (a state PUT by hand) counts as 0. */
static size_t first_running(json_t *rt)
{
    json_t *ops = json_object_get(rt, "operations");
    json_int_t h = json_integer_value(json_object_get(rt, "firstRunning"));
    if (h < 0 || (size_t)h > json_array_size(ops)) return 0;
    if (h > 0 && op_running(json_array_get(ops, (size_t)h - 1))) return 0;
    return (size_t)h;
}

/* Pending (Running) operation that targets resource_id, or NULL. */
static json_t *pending_op_for(sim_state *st, const char *resource_id)
{
    json_t *rt = json_object_get(st->root, "armRuntime");
    json_t *ops = json_object_get(rt, "operations");
    for (size_t i = first_running(rt); i < json_array_size(ops); i++) {
        json_t *op = json_array_get(ops, i);
        const char *rid = jstr(op, "resourceId");
        if (rid && op_running(op) && strcasecmp(rid, resource_id) == 0) return op;
    }
    return NULL;
}

/* Forgets finished operations: those finished more than ARM_OP_KEEP_MS ago, and the oldest
 * finished ones while more than ARM_MAX_OPERATIONS are kept (then 1% more at once, so that
 * the O(n) rebuild is rare).  Cheap when there is nothing to do: only the oldest operation
 * and the count are looked at. */
static void prune_ops(json_t *rt)
{
    json_t *ops = json_object_get(rt, "operations");
    size_t n = json_array_size(ops);
    uint64_t now = sim_now_ms();
    json_t *oldest = json_array_get(ops, 0);
    json_int_t done = json_integer_value(json_object_get(oldest, "doneMs"));
    int aged = oldest && !op_running(oldest) && (uint64_t)done + ARM_OP_KEEP_MS < now;
    if (n <= ARM_MAX_OPERATIONS && !aged) return;
    size_t excess = n > ARM_MAX_OPERATIONS ? n - ARM_MAX_OPERATIONS + ARM_MAX_OPERATIONS / 100 : 0;
    json_t *keep = json_array(), *op;
    size_t i, first = (size_t)-1;
    json_array_foreach(ops, i, op)
    {
        int running = op_running(op);
        json_int_t d = json_integer_value(json_object_get(op, "doneMs"));
        if (!running && (excess > 0 || (uint64_t)d + ARM_OP_KEEP_MS < now)) {
            if (excess > 0) excess--;
            continue;
        }
        if (running && first == (size_t)-1) first = json_array_size(keep);
        json_array_append(keep, op);
    }
    json_object_set_new(
        rt, "firstRunning",
        json_integer((json_int_t)(first == (size_t)-1 ? json_array_size(keep) : first)));
    json_object_set_new(rt, "operations", keep);
}

/* Starts an operation (takes ownership of payload). action names what the tick applies. */
static json_t *start_op(arm_ctx *c, const char *action, const char *kind, const char *resource_id,
                        json_t *payload)
{
    json_t *rt = runtime(c->st);
    char guid[37], now[64];
    sim_guid(guid, sizeof guid);
    sim_now_iso(now, sizeof now);
    uint64_t t = sim_now_ms();
    long dur = sim_setting(c->st, "lroDurationMs", 1500);
    if (dur < 0) dur = 0;
    const char *loc = jstr(c->jcluster, "location") ? jstr(c->jcluster, "location") : "westus";
    json_t *op = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:{s:s, s:s, s:s, s:s, s:s}, s:o}",
        "name", guid, "subscriptionId", jstr(c->jsub, "id"), "location", loc, "operationKind", kind,
        "action", action, "resourceId", resource_id, "status", "Running", "startTime", now,
        "startMs", (json_int_t)t, "dueMs", (json_int_t)(t + (uint64_t)dur), "target", "sub",
        jstr(c->jsub, "id"), "rg", jstr(c->jrg, "name"), "cluster", jstr(c->jcluster, "name"), "db",
        c->db, "pa", c->pa, "payload", payload ? payload : json_null());
    json_object_set_new(op, "callerAppId",
                        json_string(c->req->caller_app_id ? c->req->caller_app_id : ""));
    if (c->req->ignore_write && c->req->ignore_write(c->req))
        json_object_set_new(op, "ignored", json_true()); /* faults.ignoreWrites: lost */
    json_t *ops = json_object_get(rt, "operations");
    json_array_append_new(ops, op);
    prune_ops(rt);
    return op;
}

/* Marks op finished. endTime is when it fell due (start + lroDurationMs), not when a later
 * request happened to notice it: Azure reports when the operation ended. */
static void op_finish(json_t *op, const char *code, const char *message)
{
    char end[64];
    json_int_t due = json_integer_value(json_object_get(op, "dueMs"));
    uint64_t now = sim_now_ms();
    sim_iso_ago(end, sizeof end, due > 0 && (uint64_t)due < now ? now - (uint64_t)due : 0);
    json_object_set_new(op, "endTime", json_string(end));
    json_object_set_new(op, "doneMs", json_integer((json_int_t)(due > 0 ? due : (json_int_t)now)));
    json_object_del(op, "payload"); /* applied; kept operations stay small */
    if (code) {
        json_object_set_new(op, "status", json_string("Failed"));
        json_object_set_new(op, "error", json_pack("{s:s, s:s}", "code", code, "message", message));
    } else {
        json_object_set_new(op, "status", json_string("Succeeded"));
    }
}

/* The Kusto database a new database starts as (state layout of sim.h). */
static json_t *new_database(const char *name)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:[], s:[], s:[], s:[]}", "name", name, "kind",
                     "ReadWrite", "recoverability", "Enabled", "policies", json_object(),
                     "principals", "principalAssignments", "tables", "materializedViews");
}

/* ARM's hotCachePeriod is the caching policy: setting or clearing it replaces the whole
 * policy, hot windows (a Kusto-only part of it) included. */
static void apply_db_fields(json_t *db, json_t *fields)
{
    const char *key;
    json_t *v;
    json_object_foreach(fields, key, v)
    {
        if (json_is_null(v))
            json_object_del(db, key);
        else
            json_object_set(db, key, v);
        if (!strcmp(key, "hotCachePeriod")) json_object_del(db, "hotWindows");
    }
}

/* Applies one due operation to the state; marks it Succeeded or Failed. */
static void apply_op(sim_state *st, json_t *op)
{
    json_t *t = json_object_get(op, "target"), *payload = json_object_get(op, "payload");
    const char *action = jstr(op, "action");
    const char *db_name = jstr(t, "db"), *pa_name = jstr(t, "pa");
    json_t *cluster = find_cluster(st, jstr(t, "sub"), jstr(t, "rg"), jstr(t, "cluster"));
    if (json_is_true(json_object_get(op, "ignored"))) { /* acknowledged, never applied */
        op_finish(op, NULL, NULL);
        return;
    }
    if (!cluster || !action) {
        op_finish(op, "ResourceNotFound", "The cluster of this operation no longer exists.");
        return;
    }
    json_t *dbs = ensure_array(cluster, "databases");
    size_t dbi = 0;
    json_t *db = db_name && *db_name ? find_named(dbs, "name", db_name, &dbi) : NULL;

    if (strcmp(action, "dbPut") == 0) {
        json_t *fields = json_object_get(payload, "fields");
        if (!db) {
            db = new_database(db_name);
            json_t *admin = json_object_get(payload, "callerAdmin");
            if (json_is_object(admin)) json_array_append(json_object_get(db, "principals"), admin);
            json_array_append_new(dbs, db);
        } else {
            json_object_del(db, "softDeletePeriod");
            json_object_del(db, "hotCachePeriod");
            json_object_del(db, "hotWindows");
            json_object_del(db, "keyVaultProperties");
        }
        apply_db_fields(db, fields);
        op_finish(op, NULL, NULL);
        return;
    }
    if (strcmp(action, "dbClusterPaPut") == 0 || strcmp(action, "clPaDelete") == 0) {
        json_t *arr = ensure_array(cluster, "principalAssignments");
        size_t i;
        json_t *cur = find_named(arr, "name", pa_name, &i);
        if (strcmp(action, "clPaDelete") == 0) {
            if (cur) json_array_remove(arr, i);
        } else if (cur) {
            json_array_set(arr, i, payload);
        } else {
            json_array_append(arr, payload);
        }
        op_finish(op, NULL, NULL);
        return;
    }
    if (!db) {
        op_finish(op, "ResourceNotFound", "The database of this operation no longer exists.");
        return;
    }
    if (strcmp(action, "dbUpdate") == 0) {
        apply_db_fields(db, json_object_get(payload, "fields"));
    } else if (strcmp(action, "dbDelete") == 0) {
        json_array_remove(dbs, dbi);
    } else if (strcmp(action, "dbPaPut") == 0 || strcmp(action, "dbPaDelete") == 0) {
        json_t *arr = ensure_array(db, "principalAssignments");
        size_t i;
        json_t *cur = find_named(arr, "name", pa_name, &i);
        if (strcmp(action, "dbPaDelete") == 0) {
            if (cur) json_array_remove(arr, i);
        } else if (cur) {
            json_array_set(arr, i, payload);
        } else {
            json_array_append(arr, payload);
        }
    } else {
        op_finish(op, "InternalServerError", "Unknown operation.");
        return;
    }
    op_finish(op, NULL, NULL);
}

void sim_arm_tick(sim_state *st)
{
    if (!st || !json_is_object(st->root)) return;
    json_t *rt = json_object_get(st->root, "armRuntime");
    json_t *ops = json_object_get(rt, "operations");
    if (!json_is_object(rt) || !json_is_array(ops)) return;
    uint64_t now = sim_now_ms();
    size_t first = first_running(rt), n = json_array_size(ops);
    /* In creation order, so two changes to one resource land in the order they came. */
    for (size_t i = first; i < n; i++) {
        json_t *op = json_array_get(ops, i);
        json_int_t due = json_integer_value(json_object_get(op, "dueMs"));
        if (op_running(op) && (uint64_t)due <= now) apply_op(st, op);
    }
    while (first < n && !op_running(json_array_get(ops, first)))
        first++;
    json_object_set_new(rt, "firstRunning", json_integer((json_int_t)first));
}

/* ---------- throttling ---------- */

/* Takes one token from the caller's bucket; 0 = allowed, else 429 already answered. */
static int throttle(arm_ctx *c)
{
    const char *kind = c->is_write ? "writes" : "reads";
    long cap = c->is_write ? sim_setting(c->st, "armWriteBucket", 200)
                           : sim_setting(c->st, "armReadBucket", 250);
    long refill = c->is_write ? sim_setting(c->st, "armWriteRefillPerSecond", 10)
                              : sim_setting(c->st, "armReadRefillPerSecond", 25);
    char header[64];
    snprintf(header, sizeof header, "x-ms-ratelimit-remaining-subscription-%s", kind);
    if (cap <= 0) return 0; /* a bucket of 0 turns throttling off */
    json_t *buckets = json_object_get(runtime(c->st), "throttle");
    char key[600];
    snprintf(key, sizeof key, "%s|%s|%s", kind, c->req->caller_app_id ? c->req->caller_app_id : "-",
             jstr(c->jsub, "id"));
    for (char *p = key; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    json_t *b = json_object_get(buckets, key);
    uint64_t now = sim_now_ms();
    double tokens = (double)cap;
    if (json_is_object(b)) {
        tokens = json_number_value(json_object_get(b, "tokens"));
        json_int_t at = json_integer_value(json_object_get(b, "atMs"));
        if ((uint64_t)at < now && refill > 0)
            tokens += (double)(now - (uint64_t)at) / 1000.0 * (double)refill;
        if (tokens > (double)cap) tokens = (double)cap;
    } else {
        if (json_object_size(buckets) >= ARM_MAX_THROTTLE_KEYS) json_object_clear(buckets);
        b = json_object();
        json_object_set_new(buckets, key, b);
    }
    json_object_set_new(b, "atMs", json_integer((json_int_t)now));
    if (tokens < 1.0) {
        json_object_set_new(b, "tokens", json_real(tokens));
        long wait = refill > 0 ? (long)ceil((1.0 - tokens) / (double)refill) : 60;
        if (wait < 1) wait = 1;
        sim_response_header(c->resp, header, "0");
        sim_response_header(c->resp, "Retry-After", "%ld", wait);
        arm_error(c, 429, "SubscriptionRequestsThrottled",
                  "Number of '%s' requests for subscription '%s' actor '%s' exceeded. Please "
                  "try again after '%ld' seconds after the last request.",
                  c->is_write ? "write" : "read", jstr(c->jsub, "id"),
                  c->req->caller_app_id ? c->req->caller_app_id : "", wait);
        return -1;
    }
    tokens -= 1.0;
    json_object_set_new(b, "tokens", json_real(tokens));
    sim_response_header(c->resp, header, "%ld", (long)floor(tokens));
    return 0;
}

/* ---------- authorization ---------- */

/* 1 when one of the caller's armRoles covers scope (prefix at a segment boundary) with
 * enough rights: Reader reads, Contributor/Owner everything. */
static int authorized(sim_state *st, const char *app_id, const char *scope, int write)
{
    json_t *app = find_app(st, app_id);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(app, "armRoles"), i, r)
    {
        const char *s = jstr(r, "scope"), *role = jstr(r, "role");
        if (!s || !role) continue;
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '/')
            n--;
        if (n > 0 && (strncasecmp(scope, s, n) != 0 || (scope[n] != '/' && scope[n] != '\0')))
            continue;
        if (strcasecmp(role, "Owner") == 0 || strcasecmp(role, "Contributor") == 0) return 1;
        if (!write && strcasecmp(role, "Reader") == 0) return 1;
    }
    return 0;
}

static int authorize(arm_ctx *c, const char *action)
{
    const char *app = c->req->caller_app_id ? c->req->caller_app_id : "";
    if (authorized(c->st, app, c->scope, c->is_write)) return 0;
    arm_error(c, 403, "AuthorizationFailed",
              "The client '%s' with object id '%s' does not have authorization to perform "
              "action '%s' over scope '%s' or the scope is invalid. If access was recently "
              "granted, please refresh your credentials.",
              app, app, action, c->scope);
    return -1;
}

/* ---------- routing ---------- */

static int seg_is(const char *seg, const char *word)
{
    return strcasecmp(seg, word) == 0;
}

/* Splits the path into segments; returns the count, or -1 when too long or malformed. */
static int split_path(const char *path, char segs[][ARM_MAX_SEGMENT_LEN + 1])
{
    int n = 0;
    const char *p = path;
    if (*p != '/') return -1;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p) break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n >= ARM_MAX_SEGMENTS || len > ARM_MAX_SEGMENT_LEN) return -1;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) return -1;
        memcpy(segs[n], p, len);
        segs[n][len] = '\0';
        n++;
        p += len;
    }
    return n;
}

static void copy(char *dst, const char *src)
{
    snprintf(dst, ARM_MAX_SEGMENT_LEN + 1, "%s", src);
}

/* Fills c->route and the names; 0 = known route, else an error answer was set. */
static int parse_route(arm_ctx *c)
{
    char segs[ARM_MAX_SEGMENTS][ARM_MAX_SEGMENT_LEN + 1];
    int n = split_path(c->req->path, segs);
    if (n < 0) {
        arm_error(c, 400, "InvalidRequestUri", "The request URI '%.200s' is not valid.",
                  c->req->path);
        return -1;
    }
    c->route = R_NONE;
    if (n >= 2 && seg_is(segs[0], "subscriptions")) {
        copy(c->sub, segs[1]);
        if (n >= 4 && seg_is(segs[2], "providers") && !seg_is(segs[3], "Microsoft.Kusto")) {
            arm_error(c, 400, "InvalidResourceNamespace", "The resource namespace '%s' is invalid.",
                      segs[3]);
            return -1;
        }
        if (n == 8 && seg_is(segs[2], "providers") && seg_is(segs[4], "locations") &&
            seg_is(segs[6], "operationResults")) {
            copy(c->location, segs[5]);
            copy(c->opid, segs[7]);
            c->route = R_OPRESULT;
        } else if (n >= 6 && seg_is(segs[2], "resourceGroups") && seg_is(segs[4], "providers") &&
                   !seg_is(segs[5], "Microsoft.Kusto")) {
            arm_error(c, 400, "InvalidResourceNamespace", "The resource namespace '%s' is invalid.",
                      segs[5]);
            return -1;
        } else if (n >= 9 && seg_is(segs[2], "resourceGroups") && seg_is(segs[4], "providers") &&
                   seg_is(segs[6], "clusters")) {
            copy(c->rg, segs[3]);
            copy(c->cluster, segs[7]);
            if (seg_is(segs[8], "databases") && n == 9) {
                c->route = R_DB_LIST;
            } else if (seg_is(segs[8], "databases") && n >= 10) {
                copy(c->db, segs[9]);
                if (n == 10)
                    c->route = R_DB;
                else if (n == 11 && seg_is(segs[10], "addPrincipals"))
                    c->route = R_DB_ADD;
                else if (n == 11 && seg_is(segs[10], "removePrincipals"))
                    c->route = R_DB_REMOVE;
                else if (n == 11 && seg_is(segs[10], "listPrincipals"))
                    c->route = R_DB_LIST_PRINCIPALS;
                else if (n == 11 && seg_is(segs[10], "principalAssignments"))
                    c->route = R_DB_PA_LIST;
                else if (n == 12 && seg_is(segs[10], "principalAssignments")) {
                    copy(c->pa, segs[11]);
                    c->route = R_DB_PA;
                }
            } else if (seg_is(segs[8], "principalAssignments")) {
                if (n == 9)
                    c->route = R_CL_PA_LIST;
                else if (n == 10) {
                    copy(c->pa, segs[9]);
                    c->route = R_CL_PA;
                }
            }
        }
    }
    if (c->route == R_NONE) {
        /* the resource type: every other segment after the namespace */
        char type[512] = "";
        int start = (n >= 6 && seg_is(segs[2], "resourceGroups")) ? 6 : 4;
        for (int i = start; i < n; i += 2) {
            size_t l = strlen(type);
            snprintf(type + l, sizeof type - l, "%s%.64s", l ? "/" : "", segs[i]);
        }
        arm_error(c, 404, "InvalidResourceType",
                  "The resource type '%s' could not be found in the namespace "
                  "'Microsoft.Kusto' for api version '%s'.",
                  type, c->api_version);
        return -1;
    }
    /* scope: the path as sent, trailing slashes dropped */
    snprintf(c->scope, sizeof c->scope, "%s", c->req->path);
    size_t l = strlen(c->scope);
    while (l > 1 && c->scope[l - 1] == '/')
        c->scope[--l] = '\0';
    return 0;
}

static const char *route_type(arm_route r)
{
    switch (r) {
    case R_OPRESULT:
        return "locations/operationResults";
    case R_DB_PA:
    case R_DB_PA_LIST:
        return "clusters/databases/principalAssignments";
    case R_CL_PA:
    case R_CL_PA_LIST:
        return "clusters/principalAssignments";
    default:
        return "clusters/databases";
    }
}

static int method_allowed(arm_route r, const char *m)
{
    switch (r) {
    case R_DB:
        return !strcmp(m, "GET") || !strcmp(m, "PUT") || !strcmp(m, "PATCH") ||
               !strcmp(m, "DELETE");
    case R_DB_ADD:
    case R_DB_REMOVE:
    case R_DB_LIST_PRINCIPALS:
        return !strcmp(m, "POST");
    case R_DB_PA:
    case R_CL_PA:
        return !strcmp(m, "GET") || !strcmp(m, "PUT") || !strcmp(m, "DELETE");
    default:
        return !strcmp(m, "GET");
    }
}

static const char *route_action(arm_route r, const char *m)
{
    int get = !strcmp(m, "GET"), del = !strcmp(m, "DELETE");
    switch (r) {
    case R_OPRESULT:
        return "Microsoft.Kusto/locations/operationResults/read";
    case R_DB_ADD:
        return "Microsoft.Kusto/clusters/databases/addPrincipals/action";
    case R_DB_REMOVE:
        return "Microsoft.Kusto/clusters/databases/removePrincipals/action";
    case R_DB_LIST_PRINCIPALS:
        return "Microsoft.Kusto/clusters/databases/listPrincipals/action";
    case R_DB_PA:
    case R_DB_PA_LIST:
        return get   ? "Microsoft.Kusto/clusters/databases/principalAssignments/read"
               : del ? "Microsoft.Kusto/clusters/databases/principalAssignments/delete"
                     : "Microsoft.Kusto/clusters/databases/principalAssignments/write";
    case R_CL_PA:
    case R_CL_PA_LIST:
        return get   ? "Microsoft.Kusto/clusters/principalAssignments/read"
               : del ? "Microsoft.Kusto/clusters/principalAssignments/delete"
                     : "Microsoft.Kusto/clusters/principalAssignments/write";
    default:
        return get   ? "Microsoft.Kusto/clusters/databases/read"
               : del ? "Microsoft.Kusto/clusters/databases/delete"
                     : "Microsoft.Kusto/clusters/databases/write";
    }
}

static int check_api_version(arm_ctx *c)
{
    const char *v = c->api_version;
    int well_formed = strlen(v) >= 10 && strlen(v) <= 32;
    for (size_t i = 0; well_formed && i < 10; i++)
        well_formed = (i == 4 || i == 7) ? v[i] == '-' : isdigit((unsigned char)v[i]);
    if (well_formed && v[10] != '\0') well_formed = strcmp(v + 10, "-preview") == 0;
    if (!well_formed) {
        arm_error(c, 400, "InvalidApiVersionParameter",
                  "The api-version '%.64s' is invalid. The supported versions are '%s'.", v,
                  arm_api_versions_text);
        return -1;
    }
    for (size_t i = 0; i < sizeof arm_api_versions / sizeof arm_api_versions[0]; i++)
        if (strcmp(v, arm_api_versions[i]) == 0) return 0;
    arm_error(c, 400, "NoRegisteredProviderFound",
              "No registered resource provider found for location '%s' and API version '%s' "
              "for type '%s'. The supported api-versions are '%s'. The supported locations "
              "are 'westus'.",
              c->location[0] ? c->location : "westus", v, route_type(c->route),
              arm_api_versions_text);
    return -1;
}

/* ---------- body parsing and validation ---------- */

/* Parses the body as a JSON object; NULL after answering 400/413. */
static json_t *parse_body(arm_ctx *c, int required)
{
    if (c->req->body_len > ARM_MAX_BODY) {
        arm_error(c, 413, "RequestEntityTooLarge",
                  "The request content size %zu exceeds the maximum of %d bytes.", c->req->body_len,
                  ARM_MAX_BODY);
        return NULL;
    }
    const char *b = c->req->body ? c->req->body : "";
    size_t len = c->req->body ? c->req->body_len : 0;
    size_t ws = 0;
    while (ws < len && isspace((unsigned char)b[ws]))
        ws++;
    if (ws == len) {
        if (!required) return json_object();
        arm_error(c, 400, "InvalidRequestContent",
                  "The request content was invalid and could not be deserialized: 'The "
                  "request body is required and must be a JSON object.'.");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(b, len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        arm_error(c, 400, "InvalidRequestContent",
                  "The request content was invalid and could not be deserialized: '%s, line "
                  "%d, position %d.'.",
                  e.text, e.line, e.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        arm_error(c, 400, "InvalidRequestContent",
                  "The request content was invalid and could not be deserialized: 'Expected a "
                  "JSON object at path ''.'.");
        return NULL;
    }
    return j;
}

/* Optional member of type string: 0 ok (absent or string), -1 answered 400. */
static int opt_string(arm_ctx *c, json_t *obj, const char *key, const char *path)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_string(v)) return 0;
    arm_error_target(c, 400, "InvalidRequestContent", path,
                     "The request content was invalid and could not be deserialized: "
                     "'Error converting value to type 'System.String'. Path '%s'.'.",
                     path);
    return -1;
}

/* Required string member holding one of vals (vals NULL = any non-empty string). */
static int req_enum(arm_ctx *c, json_t *obj, const char *key, const char *path,
                    const char *const *vals)
{
    if (opt_string(c, obj, key, path)) return -1;
    const char *v = jstr(obj, key);
    if (!v || !*v) {
        arm_error_target(c, 400, "BadRequest", path, "The '%s' property is required.", path);
        return -1;
    }
    if (vals && !in_enum(v, vals)) {
        char allowed[256] = "";
        for (size_t i = 0; vals[i]; i++) {
            strncat(allowed, i ? ", " : "", sizeof allowed - strlen(allowed) - 1);
            strncat(allowed, vals[i], sizeof allowed - strlen(allowed) - 1);
        }
        arm_error_target(c, 400, "BadRequest", path,
                         "The value '%.100s' of '%s' is not valid. Allowed values: %s.", v, path,
                         allowed);
        return -1;
    }
    return 0;
}

static int check_duration(arm_ctx *c, json_t *props, const char *key, int allow_null)
{
    json_t *v = json_object_get(props, key);
    char path[64];
    snprintf(path, sizeof path, "properties.%s", key);
    if (!v || (allow_null && json_is_null(v))) return 0;
    if (opt_string(c, props, key, path)) return -1;
    if (!iso_duration_ok(json_string_value(v))) {
        arm_error_target(c, 400, "BadRequest", path,
                         "The value '%.64s' of '%s' is not a valid ISO-8601 duration (for "
                         "example 'P365D' or 'PT12H').",
                         json_string_value(v), path);
        return -1;
    }
    return 0;
}

/* Validates a Database body (PUT and PATCH) and returns the writable fields to store
 * (new reference; JSON null = unset, PATCH only), or NULL after answering 400.
 * Read-only properties (provisioningState, statistics, isFollowed, suspensionDetails) are
 * ignored, as ARM RPs do so that a GET body can be sent back; unknown members too. */
static json_t *db_fields(arm_ctx *c, json_t *body, int patch, const char *existing_kind)
{
    if (req_enum(c, body, "kind", "kind", db_kinds)) return NULL;
    if (opt_string(c, body, "location", "location")) return NULL;
    const char *kind = jstr(body, "kind");
    if (existing_kind && strcmp(existing_kind, kind) != 0) {
        arm_error_target(c, 400, "BadRequest", "kind",
                         "The database kind cannot be changed from '%s' to '%s'.", existing_kind,
                         kind);
        return NULL;
    }
    if (!existing_kind && strcmp(kind, "ReadWrite") != 0) {
        arm_error_target(c, 400, "BadRequest", "kind",
                         "A database of kind '%s' cannot be created with this operation; "
                         "follower databases are created by attaching a database "
                         "configuration.",
                         kind);
        return NULL;
    }
    json_t *props = json_object_get(body, "properties");
    if (props && !json_is_object(props) && !json_is_null(props)) {
        arm_error_target(c, 400, "InvalidRequestContent", "properties",
                         "The request content was invalid and could not be deserialized: "
                         "'Expected an object for 'properties'.'.");
        return NULL;
    }
    if (check_duration(c, props, "softDeletePeriod", patch) ||
        check_duration(c, props, "hotCachePeriod", patch))
        return NULL;
    json_t *kv = json_object_get(props, "keyVaultProperties");
    if (kv && !json_is_object(kv) && !(patch && json_is_null(kv))) {
        arm_error_target(c, 400, "InvalidRequestContent", "properties.keyVaultProperties",
                         "The request content was invalid and could not be deserialized: "
                         "'Expected an object for 'properties.keyVaultProperties'.'.");
        return NULL;
    }
    if (json_is_object(kv)) {
        static const char *const kvk[] = {"keyName", "keyVersion", "keyVaultUri", "userIdentity",
                                          "federatedIdentityClientId"};
        for (size_t i = 0; i < sizeof kvk / sizeof kvk[0]; i++) {
            char path[96];
            snprintf(path, sizeof path, "properties.keyVaultProperties.%s", kvk[i]);
            if (opt_string(c, kv, kvk[i], path)) return NULL;
        }
    }
    if (strcmp(kind, "ReadOnlyFollowing") == 0 && json_object_get(props, "softDeletePeriod")) {
        arm_error_target(c, 400, "BadRequest", "properties.softDeletePeriod",
                         "The 'softDeletePeriod' property is read-only on a database of kind "
                         "'ReadOnlyFollowing'.");
        return NULL;
    }
    json_t *fields = json_object();
    static const char *const writable[] = {"softDeletePeriod", "hotCachePeriod",
                                           "keyVaultProperties"};
    for (size_t i = 0; i < sizeof writable / sizeof writable[0]; i++) {
        json_t *v = json_object_get(props, writable[i]);
        if (v) json_object_set(fields, writable[i], v);
    }
    return fields;
}

/* Validates one DatabasePrincipal; fills a normalized copy or answers 400. */
static json_t *principal_from(arm_ctx *c, json_t *p, size_t i)
{
    char path[80];
    snprintf(path, sizeof path, "value[%zu]", i);
    if (!json_is_object(p)) {
        arm_error_target(c, 400, "InvalidRequestContent", path,
                         "The request content was invalid and could not be deserialized: "
                         "'Expected an object at '%s'.'.",
                         path);
        return NULL;
    }
    static const char *const str_keys[] = {"fqn", "email", "appId", "tenantName"};
    for (size_t k = 0; k < sizeof str_keys / sizeof str_keys[0]; k++) {
        char sp[96];
        snprintf(sp, sizeof sp, "%s.%s", path, str_keys[k]);
        if (opt_string(c, p, str_keys[k], sp)) return NULL;
    }
    char rp[96], np[96], tp[96];
    snprintf(rp, sizeof rp, "%s.role", path);
    snprintf(np, sizeof np, "%s.name", path);
    snprintf(tp, sizeof tp, "%s.type", path);
    if (req_enum(c, p, "role", rp, db_roles) || req_enum(c, p, "name", np, NULL) ||
        req_enum(c, p, "type", tp, principal_types))
        return NULL;
    const char *type = jstr(p, "type"), *fqn = jstr(p, "fqn"), *app = jstr(p, "appId"),
               *email = jstr(p, "email");
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "role", jstr(p, "role"), "name", jstr(p, "name"),
                  "type", type, "email", email ? email : "", "appId", app ? app : "");
    if (fqn && *fqn) {
        json_object_set_new(out, "fqn", json_string(fqn));
    } else if (strcmp(type, "App") == 0 && app && *app) {
        json_object_set_new(out, "fqn", json_sprintf("aadapp=%s", app));
    } else if (email && *email) {
        json_object_set_new(
            out, "fqn",
            json_sprintf("%s=%s", strcmp(type, "Group") == 0 ? "aadgroup" : "aaduser", email));
    } else {
        json_decref(out);
        arm_error_target(c, 400, "BadRequest", path,
                         "The principal '%.100s' needs 'fqn', or 'appId' (App) or 'email' "
                         "(User, Group) to be identified.",
                         jstr(p, "name"));
        return NULL;
    }
    const char *tn = jstr(p, "tenantName");
    if (tn) json_object_set_new(out, "tenantName", json_string(tn));
    return out;
}

/* fqn identity compare: case-insensitive; "aadapp=X" equals "aadapp=X;tenant". */
static int fqn_same(const char *a, const char *b)
{
    if (!a || !b) return 0;
    if (strcasecmp(a, b) == 0) return 1;
    const char *sa = strchr(a, ';'), *sb = strchr(b, ';');
    if (sa && sb) return 0;
    size_t la = sa ? (size_t)(sa - a) : strlen(a), lb = sb ? (size_t)(sb - b) : strlen(b);
    return la == lb && strncasecmp(a, b, la) == 0;
}

static int principal_same(json_t *a, json_t *b)
{
    const char *ra = jstr(a, "role"), *rb = jstr(b, "role");
    return ra && rb && strcasecmp(ra, rb) == 0 && fqn_same(jstr(a, "fqn"), jstr(b, "fqn"));
}

/* ---------- handlers ---------- */

static int need_rg_cluster(arm_ctx *c)
{
    json_t *rg = find_named(json_object_get(c->jsub, "resourceGroups"), "name", c->rg, NULL);
    if (!rg) {
        arm_error(c, 404, "ResourceGroupNotFound", "Resource group '%s' could not be found.",
                  c->rg);
        return -1;
    }
    c->jrg = rg;
    c->jcluster = find_named(json_object_get(rg, "clusters"), "name", c->cluster, NULL);
    if (!c->jcluster) {
        arm_error(c, 404, "ResourceNotFound",
                  "The Resource 'Microsoft.Kusto/clusters/%s' under resource group '%s' was "
                  "not found. For more details please go to "
                  "https://aka.ms/ARMResourceNotFoundFix",
                  c->cluster, jstr(rg, "name"));
        return -1;
    }
    c->jdb = c->db[0] ? find_named(json_object_get(c->jcluster, "databases"), "name", c->db, NULL)
                      : NULL;
    return 0;
}

static void db_not_found(arm_ctx *c)
{
    arm_error(c, 404, "ResourceNotFound",
              "The Resource 'Microsoft.Kusto/clusters/%s/databases/%s' under resource group "
              "'%s' was not found. For more details please go to "
              "https://aka.ms/ARMResourceNotFoundFix",
              jstr(c->jcluster, "name"), c->db, jstr(c->jrg, "name"));
}

static json_t *db_resource_id(arm_ctx *c, const char *db_name)
{
    json_t *cid = cluster_id(jstr(c->jsub, "id"), jstr(c->jrg, "name"), jstr(c->jcluster, "name"));
    json_t *id = json_sprintf("%s/Databases/%s", json_string_value(cid), db_name);
    json_decref(cid);
    return id;
}

static int valid_resource_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 260) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)n[i];
        if (!isalnum(ch) && ch != ' ' && ch != '.' && ch != '-' && ch != '_') return 0;
    }
    return 1;
}

/* Provisioning state a resource shows while an operation on it runs. */
static const char *db_prov(arm_ctx *c, json_t *db)
{
    json_t *id = db_resource_id(c, jstr(db, "name"));
    json_t *op = pending_op_for(c->st, json_string_value(id));
    json_decref(id);
    if (!op) return "Succeeded";
    return strcmp(jstr(op, "action"), "dbDelete") == 0 ? "Deleting" : "Running";
}

static void handle_db(arm_ctx *c)
{
    const char *m = c->req->method;
    const char *sub = jstr(c->jsub, "id"), *rg = jstr(c->jrg, "name");
    if (!strcmp(m, "GET")) {
        if (!c->jdb) {
            db_not_found(c);
            return;
        }
        c->resp->status = 200;
        set_body(c->resp, render_db(sub, rg, c->jcluster, c->jdb, db_prov(c, c->jdb)));
        return;
    }
    if (!strcmp(m, "DELETE")) {
        if (!c->jdb) {
            c->resp->status = 204;
            return;
        }
        json_t *id = db_resource_id(c, jstr(c->jdb, "name"));
        copy(c->db, jstr(c->jdb, "name"));
        json_t *op = start_op(c, "dbDelete", "DatabaseDelete", json_string_value(id), NULL);
        json_decref(id);
        c->resp->status = 202;
        lro_headers(c, op);
        return;
    }
    /* PUT or PATCH */
    int patch = !strcmp(m, "PATCH");
    if (patch && !c->jdb) {
        db_not_found(c);
        return;
    }
    const char *caller_role = c->req->query ? c->req->query(c->req, "callerRole") : NULL;
    if (caller_role && strcmp(caller_role, "Admin") != 0 && strcmp(caller_role, "None") != 0) {
        arm_error_target(c, 400, "BadRequest", "callerRole",
                         "The value '%.64s' of 'callerRole' is not valid. Allowed values: "
                         "Admin, None.",
                         caller_role);
        return;
    }
    json_t *body = parse_body(c, 1);
    if (!body) return;
    const char *existing_kind =
        c->jdb ? (jstr(c->jdb, "kind") ? jstr(c->jdb, "kind") : "ReadWrite") : NULL;
    json_t *fields = db_fields(c, body, patch, existing_kind);
    json_decref(body);
    if (!fields) return;
    if (!c->jdb && !valid_resource_name(c->db)) {
        json_decref(fields);
        arm_error_target(c, 400, "InvalidResourceName", "databaseName",
                         "The database name '%.100s' is invalid: use 1 to 260 letters, digits, "
                         "spaces, '.', '-' or '_'.",
                         c->db);
        return;
    }
    if (c->jdb) copy(c->db, jstr(c->jdb, "name"));
    const char *name = c->db;
    /* The 202 body shows the database as it will be once the operation succeeded. */
    json_t *preview = c->jdb ? json_deep_copy(c->jdb) : new_database(name);
    if (!patch) {
        json_object_del(preview, "softDeletePeriod");
        json_object_del(preview, "hotCachePeriod");
        json_object_del(preview, "keyVaultProperties");
    }
    apply_db_fields(preview, fields);
    json_t *payload = json_pack("{s:o}", "fields", fields);
    if (!patch && !c->jdb && !(caller_role && strcmp(caller_role, "None") == 0) &&
        c->req->caller_app_id) {
        json_t *app = find_app(c->st, c->req->caller_app_id);
        const char *tid = c->req->caller_tenant_id
                              ? c->req->caller_tenant_id
                              : (jstr(app, "tenantId") ? jstr(app, "tenantId") : "");
        const char *dn =
            jstr(app, "displayName") ? jstr(app, "displayName") : c->req->caller_app_id;
        const char *domain = tenant_domain(c->st, tid);
        json_t *admin =
            json_pack("{s:s, s:s, s:s, s:s+++, s:s, s:s, s:s}", "role", "Admin", "type", "App",
                      "name", dn, "fqn", "aadapp=", c->req->caller_app_id, ";", tid, "appId",
                      c->req->caller_app_id, "email", "", "tenantName", domain ? domain : tid);
        json_object_set_new(payload, "callerAdmin", admin);
    }
    json_t *id = db_resource_id(c, name);
    json_t *op = start_op(c, patch ? "dbUpdate" : "dbPut",
                          patch ? "DatabaseUpdate" : (c->jdb ? "DatabaseUpdate" : "DatabaseCreate"),
                          json_string_value(id), payload);
    json_decref(id);
    c->resp->status = 202;
    /* a lost write (faults.ignoreWrites) shows the database as it stays */
    int lost = json_is_true(json_object_get(op, "ignored")) && c->jdb;
    set_body(c->resp, render_db(sub, rg, c->jcluster, lost ? c->jdb : preview,
                                c->jdb ? "Running" : "Creating"));
    json_decref(preview);
    lro_headers(c, op);
}

/* GET {C}/databases (Databases_ListByCluster): pageable, as ARM lists it.  A page holds $top
 * databases (5..1000; others: 400 InvalidParameter) or settings.armListPageSize (1000), in
 * state order; while more remain, nextLink is the same URL with $skiptoken (opaque to
 * clients: here the offset) and the request's $top. */
static void handle_db_list(arm_ctx *c)
{
    const char *top_s = c->req->query ? c->req->query(c->req, "$top") : NULL;
    const char *skip_s = c->req->query ? c->req->query(c->req, "$skiptoken") : NULL;
    long top = sim_setting(c->st, "armListPageSize", 1000), skip = 0;
    char *end = NULL;
    if (top_s) {
        top = strtol(top_s, &end, 10);
        if (!*top_s || *end || top < 5 || top > 1000) {
            arm_error_target(c, 400, "InvalidParameter", "$top",
                             "The value of $top must be an integer from 5 to 1000.");
            return;
        }
    }
    if (top < 1) top = 1;
    if (skip_s) {
        skip = strtol(skip_s, &end, 10);
        if (!*skip_s || *end || skip < 0) {
            arm_error_target(c, 400, "InvalidParameter", "$skiptoken",
                             "The $skiptoken is not valid.");
            return;
        }
    }
    json_t *value = json_array(), *all = json_object_get(c->jcluster, "databases");
    size_t i, listed = 0, remaining = 0;
    json_t *db;
    json_array_foreach(all, i, db)
    {
        if (!jstr(db, "name") || i < (size_t)skip) continue;
        if (listed == (size_t)top) {
            remaining = 1;
            break;
        }
        json_array_append_new(value, render_db(jstr(c->jsub, "id"), jstr(c->jrg, "name"),
                                               c->jcluster, db, db_prov(c, db)));
        listed++;
    }
    json_t *body = json_pack("{s:o}", "value", value);
    if (remaining) {
        char next[2048];
        snprintf(next, sizeof next,
                 ARM_HOST_URL "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Kusto/"
                              "clusters/%s/databases?api-version=%s&$skiptoken=%zu%s%s",
                 jstr(c->jsub, "id"), jstr(c->jrg, "name"), jstr(c->jcluster, "name"),
                 c->api_version, i, top_s ? "&$top=" : "", top_s ? top_s : "");
        json_object_set_new(body, "nextLink", json_string(next));
    }
    c->resp->status = 200;
    set_body(c->resp, body);
}

static void handle_principals(arm_ctx *c)
{
    if (!c->jdb) {
        db_not_found(c);
        return;
    }
    if (c->route == R_DB_LIST_PRINCIPALS) {
        c->resp->status = 200;
        set_body(c->resp, render_principal_list(c->jdb));
        return;
    }
    json_t *body = parse_body(c, 1);
    if (!body) return;
    json_t *value = json_object_get(body, "value");
    if (!json_is_array(value)) {
        json_decref(body);
        arm_error_target(c, 400, value ? "InvalidRequestContent" : "BadRequest", "value",
                         value ? "The request content was invalid and could not be "
                                 "deserialized: 'Expected an array for 'value'.'."
                               : "The 'value' property is required.");
        return;
    }
    if (json_array_size(value) > ARM_MAX_PRINCIPALS) {
        json_decref(body);
        arm_error_target(c, 400, "BadRequest", "value",
                         "At most %d principals may be given in one request.", ARM_MAX_PRINCIPALS);
        return;
    }
    /* Validate everything first, so a bad element changes nothing. */
    json_t *list = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(value, i, p)
    {
        json_t *np = principal_from(c, p, i);
        if (!np) {
            json_decref(list);
            json_decref(body);
            return;
        }
        json_array_append_new(list, np);
    }
    json_decref(body);
    if (c->req->ignore_write && c->req->ignore_write(c->req)) { /* faults.ignoreWrites */
        json_decref(list);
        c->resp->status = 200;
        set_body(c->resp, render_principal_list(c->jdb));
        return;
    }
    json_t *have = ensure_array(c->jdb, "principals");
    if (c->route == R_DB_ADD) {
        size_t extra = 0;
        json_array_foreach(list, i, p)
        {
            size_t j;
            json_t *h;
            int dup = 0;
            json_array_foreach(have, j, h) dup |= principal_same(h, p);
            extra += !dup;
        }
        if (json_array_size(have) + extra > ARM_MAX_DB_PRINCIPALS) {
            json_decref(list);
            arm_error(c, 400, "BadRequest", "A database may have at most %d principals.",
                      ARM_MAX_DB_PRINCIPALS);
            return;
        }
        json_array_foreach(list, i, p)
        {
            size_t j;
            json_t *h;
            int dup = 0;
            json_array_foreach(have, j, h) dup |= principal_same(h, p);
            if (!dup) json_array_append(have, p);
        }
    } else {
        json_array_foreach(list, i, p)
        {
            for (size_t j = json_array_size(have); j-- > 0;)
                if (principal_same(json_array_get(have, j), p)) json_array_remove(have, j);
        }
    }
    json_decref(list);
    c->resp->status = 200;
    set_body(c->resp, render_principal_list(c->jdb));
}

static void pa_not_found(arm_ctx *c)
{
    if (c->jdb)
        arm_error(c, 404, "ResourceNotFound",
                  "The Resource 'Microsoft.Kusto/clusters/%s/databases/%s/principalAssignments/"
                  "%s' under resource group '%s' was not found. For more details please go to "
                  "https://aka.ms/ARMResourceNotFoundFix",
                  jstr(c->jcluster, "name"), jstr(c->jdb, "name"), c->pa, jstr(c->jrg, "name"));
    else
        arm_error(c, 404, "ResourceNotFound",
                  "The Resource 'Microsoft.Kusto/clusters/%s/principalAssignments/%s' under "
                  "resource group '%s' was not found. For more details please go to "
                  "https://aka.ms/ARMResourceNotFoundFix",
                  jstr(c->jcluster, "name"), c->pa, jstr(c->jrg, "name"));
}

static void handle_pa(arm_ctx *c)
{
    int at_db = c->route == R_DB_PA || c->route == R_DB_PA_LIST;
    if (at_db && !c->jdb) {
        db_not_found(c);
        return;
    }
    json_t *holder = at_db ? c->jdb : c->jcluster;
    json_t *dbarg = at_db ? c->jdb : NULL;
    json_t *arr = json_object_get(holder, "principalAssignments");
    const char *sub = jstr(c->jsub, "id"), *rg = jstr(c->jrg, "name");
    const char *m = c->req->method;
    if (c->route == R_DB_PA_LIST || c->route == R_CL_PA_LIST) {
        json_t *value = json_array();
        size_t i;
        json_t *pa;
        json_array_foreach(arr, i, pa) json_array_append_new(
            value, render_pa(c->st, sub, rg, c->jcluster, dbarg, pa, "Succeeded"));
        c->resp->status = 200;
        set_body(c->resp, json_pack("{s:o}", "value", value));
        return;
    }
    json_t *cur = find_named(arr, "name", c->pa, NULL);
    json_t *cid = cluster_id(sub, rg, jstr(c->jcluster, "name"));
    json_t *rid =
        at_db ? json_sprintf("%s/Databases/%s/PrincipalAssignments/%s", json_string_value(cid),
                             jstr(c->jdb, "name"), cur ? jstr(cur, "name") : c->pa)
              : json_sprintf("%s/PrincipalAssignments/%s", json_string_value(cid),
                             cur ? jstr(cur, "name") : c->pa);
    json_decref(cid);
    if (at_db) copy(c->db, jstr(c->jdb, "name"));
    if (!strcmp(m, "GET")) {
        if (!cur) {
            pa_not_found(c);
        } else {
            json_t *op = pending_op_for(c->st, json_string_value(rid));
            c->resp->status = 200;
            set_body(c->resp, render_pa(c->st, sub, rg, c->jcluster, dbarg, cur,
                                        op ? (strcmp(jstr(op, "action"), "dbPaDelete") == 0 ||
                                                      strcmp(jstr(op, "action"), "clPaDelete") == 0
                                                  ? "Deleting"
                                                  : "Running")
                                           : "Succeeded"));
        }
        json_decref(rid);
        return;
    }
    if (!strcmp(m, "DELETE")) {
        if (!cur) {
            c->resp->status = 204;
        } else {
            copy(c->pa, jstr(cur, "name"));
            json_t *op = start_op(c, at_db ? "dbPaDelete" : "clPaDelete",
                                  at_db ? "DatabasePrincipalAssignmentDelete"
                                        : "ClusterPrincipalAssignmentDelete",
                                  json_string_value(rid), NULL);
            c->resp->status = 202;
            lro_headers(c, op);
        }
        json_decref(rid);
        return;
    }
    /* PUT */
    json_t *body = parse_body(c, 1);
    if (!body) {
        json_decref(rid);
        return;
    }
    json_t *props = json_object_get(body, "properties");
    int bad = 0;
    if (!json_is_object(props)) {
        arm_error_target(c, 400, props ? "InvalidRequestContent" : "BadRequest", "properties",
                         props ? "The request content was invalid and could not be "
                                 "deserialized: 'Expected an object for 'properties'.'."
                               : "The 'properties' property is required.");
        bad = 1;
    } else if (req_enum(c, props, "principalId", "properties.principalId", NULL) ||
               req_enum(c, props, "role", "properties.role", at_db ? db_roles : cluster_roles) ||
               req_enum(c, props, "principalType", "properties.principalType", principal_types) ||
               opt_string(c, props, "tenantId", "properties.tenantId")) {
        bad = 1;
    } else if (!cur && !valid_resource_name(c->pa)) {
        arm_error_target(c, 400, "InvalidResourceName", "principalAssignmentName",
                         "The principal assignment name '%.100s' is invalid.", c->pa);
        bad = 1;
    } else if (!cur && json_array_size(arr) >= ARM_MAX_ASSIGNMENTS) {
        arm_error(c, 400, "BadRequest", "At most %d principal assignments are allowed here.",
                  ARM_MAX_ASSIGNMENTS);
        bad = 1;
    }
    if (bad) {
        json_decref(body);
        json_decref(rid);
        return;
    }
    const char *tid = jstr(props, "tenantId");
    if (!tid || !*tid) tid = c->req->caller_tenant_id;
    if (!tid) tid = "";
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", cur ? jstr(cur, "name") : c->pa,
                            "principalId", jstr(props, "principalId"), "role", jstr(props, "role"),
                            "tenantId", tid, "principalType", jstr(props, "principalType"));
    json_decref(body);
    copy(c->pa, jstr(rec, "name"));
    c->resp->status = cur ? 200 : 201;
    json_t *op = start_op(c, at_db ? "dbPaPut" : "dbClusterPaPut",
                          at_db ? "DatabasePrincipalAssignmentCreateOrUpdate"
                                : "ClusterPrincipalAssignmentCreateOrUpdate",
                          json_string_value(rid), rec);
    /* a lost write (faults.ignoreWrites) shows the assignment as it stays, when it exists */
    int lost = json_is_true(json_object_get(op, "ignored")) && cur;
    set_body(c->resp, render_pa(c->st, sub, rg, c->jcluster, dbarg, lost ? cur : rec,
                                cur ? "Running" : "Creating"));
    json_decref(rid);
    lro_headers(c, op);
}

static json_t *render_op(json_t *op)
{
    const char *status = jstr(op, "status") ? jstr(op, "status") : "Running";
    int running = status && strcmp(status, "Running") == 0;
    double pct = 100.0;
    if (running) {
        json_int_t start = json_integer_value(json_object_get(op, "startMs"));
        json_int_t due = json_integer_value(json_object_get(op, "dueMs"));
        uint64_t now = sim_now_ms();
        pct = due > start ? 100.0 * (double)(now - (uint64_t)start) / (double)(due - start) : 99;
        if (pct > 99) pct = 99;
        if (pct < 0) pct = 0;
    }
    json_t *out = json_pack(
        "{s:s+++++, s:s, s:s, s:s, s:f, s:{s:s, s:s, s:s}}", "id", "/subscriptions/",
        jstr(op, "subscriptionId"), "/providers/Microsoft.Kusto/locations/", jstr(op, "location"),
        "/operationresults/", jstr(op, "name"), "name", jstr(op, "name"), "status", status,
        "startTime", jstr(op, "startTime") ? jstr(op, "startTime") : "", "percentComplete", pct,
        "properties", "operationKind", jstr(op, "operationKind") ? jstr(op, "operationKind") : "",
        "provisioningState", running ? "Running" : status, "operationState",
        running ? "InProgress" : (strcmp(status, "Succeeded") == 0 ? "Completed" : "Failed"));
    if (jstr(op, "endTime")) json_object_set_new(out, "endTime", json_string(jstr(op, "endTime")));
    json_t *err = json_object_get(op, "error");
    if (json_is_object(err)) json_object_set(out, "error", err);
    return out;
}

static void handle_opresult(arm_ctx *c)
{
    json_t *rt = json_object_get(c->st->root, "armRuntime");
    json_t *ops = json_object_get(rt, "operations"), *found = NULL;
    for (size_t i = json_array_size(ops); i-- > 0;) { /* newest first: polls are recent */
        json_t *op = json_array_get(ops, i);
        const char *sub = jstr(op, "subscriptionId"), *loc = jstr(op, "location"),
                   *name = jstr(op, "name");
        if (name && sub && loc && strcasecmp(name, c->opid) == 0 && strcasecmp(sub, c->sub) == 0 &&
            strcasecmp(loc, c->location) == 0) {
            found = op;
            break;
        }
    }
    if (!found) {
        arm_error(c, 404, "ResourceNotFound",
                  "The operation '%s' could not be found in location '%s'.", c->opid, c->location);
        return;
    }
    /* The operation's starter may poll it; others need read access to its resource. */
    const char *starter = jstr(found, "callerAppId");
    const char *app = c->req->caller_app_id ? c->req->caller_app_id : "";
    if (!(starter && *starter && strcasecmp(starter, app) == 0)) {
        const char *rid = jstr(found, "resourceId") ? jstr(found, "resourceId") : c->scope;
        if (!authorized(c->st, app, rid, 0) && authorize(c, route_action(c->route, "GET"))) return;
    }
    const char *status = jstr(found, "status") ? jstr(found, "status") : "Running";
    const char *rtype = c->req->query ? c->req->query(c->req, "operationResultResponseType") : NULL;
    if (rtype && strcasecmp(rtype, "Location") == 0) {
        if (strcmp(status, "Running") == 0) {
            c->resp->status = 202;
            lro_headers(c, found);
        } else if (strcmp(status, "Succeeded") == 0) {
            c->resp->status = 200;
        } else {
            json_t *err = json_object_get(found, "error");
            arm_error(c, 400, jstr(err, "code") ? jstr(err, "code") : "OperationFailed", "%s",
                      jstr(err, "message") ? jstr(err, "message") : "The operation failed.");
        }
        return;
    }
    c->resp->status = 200;
    set_body(c->resp, render_op(found));
    if (strcmp(status, "Running") == 0)
        sim_response_header(c->resp, "Retry-After", "%ld",
                            sim_setting(c->st, "lroRetryAfterSeconds", 1));
}

/* ---------- entry point ---------- */

/* The value of request header name when it is an id safe to echo (1..128 of [A-Za-z0-9._-]),
 * else NULL. */
static const char *echoable_id(const sim_request *req, const char *name)
{
    const char *v = req->header ? req->header(req, name) : NULL;
    if (!v || !*v || strlen(v) > 128) return NULL;
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') return NULL;
    return v;
}

static void common_headers(const sim_request *req, sim_response *resp)
{
    char guid[37];
    const char *corr = echoable_id(req, "x-ms-correlation-request-id");
    if (!corr) {
        sim_guid(guid, sizeof guid);
        corr = guid;
    }
    const char *rid = req->activity_id && *req->activity_id ? req->activity_id : corr;
    sim_response_header(resp, "x-ms-request-id", "%s", rid);
    sim_response_header(resp, "x-ms-correlation-request-id", "%s", corr);
    const char *cli = echoable_id(req, "x-ms-client-request-id");
    if (cli) sim_response_header(resp, "x-ms-client-request-id", "%s", cli);
    sim_response_header(resp, "Content-Type", "application/json; charset=utf-8");
}

void sim_arm_handle(sim_state *st, const sim_request *req, sim_response *resp)
{
    arm_ctx c;
    memset(&c, 0, sizeof c);
    c.st = st;
    c.req = req;
    c.resp = resp;
    common_headers(req, resp);
    if (!json_is_object(st->root)) {
        arm_error(&c, 500, "InternalServerError", "The simulator has no state.");
        return;
    }
    sim_arm_tick(st);
    const char *m = req->method ? req->method : "";
    if (!req->path) {
        arm_error(&c, 400, "InvalidRequestUri", "The request URI is missing.");
        return;
    }
    c.api_version = req->query ? req->query(req, "api-version") : NULL;
    if (!c.api_version || !*c.api_version) {
        arm_error(&c, 400, "MissingApiVersionParameter",
                  "The api-version query parameter (?api-version=) is required for all "
                  "requests.");
        return;
    }
    if (parse_route(&c)) return;
    if (!method_allowed(c.route, m)) {
        arm_error(&c, 405, "MethodNotAllowed",
                  "The HTTP method '%.16s' is not supported for the resource type '%s'.", m,
                  route_type(c.route));
        return;
    }
    if (check_api_version(&c)) return;
    c.jsub = find_sub(st, c.sub);
    if (!c.jsub) {
        arm_error(&c, 404, "SubscriptionNotFound", "The subscription '%s' could not be found.",
                  c.sub);
        return;
    }
    c.is_write = strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
    if (throttle(&c)) return;
    if (c.route == R_OPRESULT) {
        handle_opresult(&c);
        return;
    }
    if (authorize(&c, route_action(c.route, m))) return;
    if (need_rg_cluster(&c)) return;
    switch (c.route) {
    case R_DB:
        handle_db(&c);
        break;
    case R_DB_LIST:
        handle_db_list(&c);
        break;
    case R_DB_ADD:
    case R_DB_REMOVE:
    case R_DB_LIST_PRINCIPALS:
        handle_principals(&c);
        break;
    default:
        handle_pa(&c);
        break;
    }
}
