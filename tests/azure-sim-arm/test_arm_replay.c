/* test_arm_replay.c: replays every request of ../shared/reference/arm/examples against
 * azure-sim's ARM and checks the answer's status and shape against the example and spec.
 *
 *   test_arm_replay inproc            calls sim_arm_handle directly
 *   test_arm_replay https AZURE_SIM   starts the real azure-sim on a free loopback port and
 *                                     sends the requests over HTTPS with libcurl to
 *                                     https://management.azure.com (connect-to + its CA)
 *
 * Per example: the operation (method + path template) comes from the spec's x-ms-examples
 * (falling back to the example's operationId); a state holding the example's subscription,
 * resource group, cluster, database, principal assignment, principals and operation is
 * seeded; the example's request is sent; the status must be one the example lists, and the
 * body must have every key of the example's body (top level, "properties", first "value"
 * element) with the same JSON type, and no key the spec's schema does not define.
 * Exits 77 when the reference directory is absent. */
#include "arm_fake.h"
#include "sim_proc.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PW_REFERENCE_DIR
#define PW_REFERENCE_DIR "../shared/reference"
#endif

#define REPLAY_MAX_EXAMPLES 256

typedef struct answer {
    int status;
    json_t *body;    /* NULL when empty */
    json_t *headers; /* lower-case name -> value */
} answer;

static int failures;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "FAIL: " __VA_ARGS__);                                                     \
        fputc('\n', stderr);                                                                       \
        failures++;                                                                                \
    } while (0)

/* ---------- transports ---------- */

static int inproc_send(json_t *seed, const char *method, const char *url, const char *body,
                       answer *out)
{
    sim_state *st = arm_fake_state();
    json_decref(st->root);
    st->root = json_deep_copy(seed);
    arm_fake_caller(ARM_WRITER);
    arm_answer a;
    arm_call(st, method, url, body, &a);
    out->status = a.resp.status;
    out->body = json_incref(a.resp.body);
    out->headers = json_object();
    for (size_t i = 0; i < a.resp.header_count; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s", a.resp.headers[i].name);
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        json_object_set_new(out->headers, name, json_string(a.resp.headers[i].value));
    }
    arm_answer_clear(&a);
    arm_fake_state_free(st);
    return 0;
}

static test_sim hx; /* the azure-sim of the https mode */

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t on_body(char *d, size_t sz, size_t nm, void *u)
{
    buf *b = u;
    size_t n = sz * nm;
    if (b->n + n > 8 * 1024 * 1024) return 0;
    char *np = realloc(b->p, b->n + n + 1);
    if (!np) return 0;
    b->p = np;
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static size_t on_header(char *d, size_t sz, size_t nm, void *u)
{
    json_t *h = u;
    size_t n = sz * nm;
    char line[1024];
    if (n >= sizeof line) return n;
    memcpy(line, d, n);
    line[n] = '\0';
    char *colon = strchr(line, ':');
    if (!colon) return n;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ')
        v++;
    size_t vl = strlen(v);
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        v[--vl] = '\0';
    for (char *p = line; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    json_object_set_new(h, line, json_string(v));
    return n;
}

/* One HTTPS exchange; 0 = got an answer. */
static int https_do(const char *method, const char *url, const char *body, const char *bearer,
                    answer *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL, *ct = NULL;
    buf b = {NULL, 0};
    char auth[4096];
    out->headers = json_object();
    out->body = NULL;
    ct = curl_slist_append(NULL, hx.connect_to);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CONNECT_TO, ct);
    curl_easy_setopt(c, CURLOPT_CAINFO, hx.ca_file);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out->headers);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    out->status = (int)status;
    if (rc == CURLE_OK && b.n > 0) out->body = json_loadb(b.p, b.n, 0, NULL);
    if (rc != CURLE_OK) fprintf(stderr, "curl %s %s: %s\n", method, url, curl_easy_strerror(rc));
    free(b.p);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(ct);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

static void answer_clear(answer *a)
{
    json_decref(a->body);
    json_decref(a->headers);
    memset(a, 0, sizeof *a);
}

/* Seeds the state (unless seed is NULL), mints a management token for the writer, sends. */
static int https_send(json_t *seed, const char *method, const char *url, const char *body,
                      answer *out)
{
    answer a;
    memset(&a, 0, sizeof a);
    int rc;
    if (seed) {
        char *state = json_dumps(seed, JSON_COMPACT);
        rc = https_do("PUT", "https://management.azure.com/_sim/state", state, NULL, &a);
        free(state);
        if (rc || a.status != 200) {
            FAIL("seeding the state: %d", a.status);
            answer_clear(&a);
            return -1;
        }
        answer_clear(&a);
    }
    rc = https_do("POST", "https://management.azure.com/_sim/token",
                  "{\"appId\":\"" ARM_WRITER "\",\"tenantId\":\"" ARM_TENANT
                  "\",\"aud\":\"https://management.azure.com\"}",
                  NULL, &a);
    const char *tok = json_string_value(json_object_get(a.body, "access_token"));
    if (rc || !tok) {
        FAIL("minting a token: %d", a.status);
        answer_clear(&a);
        return -1;
    }
    char *token = strdup(tok);
    answer_clear(&a);
    char full[2048];
    if (strncmp(url, "https://", 8) == 0)
        snprintf(full, sizeof full, "%s", url);
    else
        snprintf(full, sizeof full, "https://management.azure.com%s", url);
    rc = https_do(method, full, body, token, out);
    free(token);
    return rc;
}

/* ---------- spec lookups ---------- */

typedef struct opinfo {
    const char *method; /* "get", ... */
    const char *path;   /* template, may carry "?k=v" (x-ms-paths) */
    json_t *op;         /* borrowed */
} opinfo;

/* Finds the operation whose x-ms-examples names file, or whose operationId is op_id. */
static int find_op(json_t *spec, const char *file, const char *op_id, opinfo *out)
{
    static const char *const groups[] = {"paths", "x-ms-paths"};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t g = 0; g < 2; g++) {
            const char *path;
            json_t *item;
            json_object_foreach(json_object_get(spec, groups[g]), path, item)
            {
                const char *m;
                json_t *op;
                json_object_foreach(item, m, op)
                {
                    if (!json_is_object(op)) continue;
                    if (pass == 0) {
                        const char *k;
                        json_t *ex;
                        json_object_foreach(json_object_get(op, "x-ms-examples"), k, ex)
                        {
                            const char *ref = json_string_value(json_object_get(ex, "$ref"));
                            const char *slash = ref ? strrchr(ref, '/') : NULL;
                            if (slash && strcmp(slash + 1, file) == 0) {
                                out->method = m;
                                out->path = path;
                                out->op = op;
                                return 0;
                            }
                        }
                    } else if (op_id) {
                        const char *id = json_string_value(json_object_get(op, "operationId"));
                        if (id && strcmp(id, op_id) == 0) {
                            out->method = m;
                            out->path = path;
                            out->op = op;
                            return 0;
                        }
                    }
                }
            }
        }
    }
    return -1;
}

/* Adds the property names a schema allows (following local $ref, allOf and discriminator
 * subtypes) to keys; props collects the same for the member "properties". */
static void collect_keys(json_t *spec, json_t *schema, json_t *keys, json_t *props, int depth)
{
    if (!schema || depth > 8) return;
    json_t *defs = json_object_get(spec, "definitions");
    const char *ref = json_string_value(json_object_get(schema, "$ref"));
    if (ref) {
        const char *local = "#/definitions/";
        if (strncmp(ref, local, strlen(local)) == 0) {
            const char *name = ref + strlen(local);
            collect_keys(spec, json_object_get(defs, name), keys, props, depth + 1);
            /* subtypes of a discriminated base */
            const char *dn;
            json_t *d;
            json_object_foreach(defs, dn, d)
            {
                size_t i;
                json_t *a;
                json_array_foreach(json_object_get(d, "allOf"), i, a)
                {
                    const char *r2 = json_string_value(json_object_get(a, "$ref"));
                    if (r2 && strcmp(r2, ref) == 0 &&
                        json_object_get(json_object_get(defs, name), "discriminator")) {
                        json_t *sub = json_object_get(d, "properties");
                        const char *k;
                        json_t *v;
                        json_object_foreach(sub, k, v)
                        {
                            json_object_set_new(keys, k, json_true());
                            if (!strcmp(k, "properties"))
                                collect_keys(spec, v, props, NULL, depth + 1);
                        }
                    }
                }
            }
        } else if (strstr(ref, "ProxyResource") || strstr(ref, "Resource")) {
            static const char *const base[] = {"id", "name", "type", "systemData"};
            for (size_t i = 0; i < 4; i++)
                json_object_set_new(keys, base[i], json_true());
        }
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(schema, "properties"), k, v)
    {
        json_object_set_new(keys, k, json_true());
        if (props && !strcmp(k, "properties")) collect_keys(spec, v, props, NULL, depth + 1);
    }
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(schema, "allOf"), i, a)
        collect_keys(spec, a, keys, props, depth + 1);
}

static const char *jtype(json_t *v)
{
    if (json_is_object(v)) return "object";
    if (json_is_array(v)) return "array";
    if (json_is_string(v)) return "string";
    if (json_is_number(v)) return "number";
    if (json_is_boolean(v)) return "boolean";
    return "null";
}

/* Every key of want is in got with the same type; every key of got is in allowed. */
static void same_shape(const char *ex, const char *where, json_t *want, json_t *got,
                       json_t *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        json_t *g = json_object_get(got, k);
        if (!g)
            FAIL("%s: %s: key '%s' missing", ex, where, k);
        else if (strcmp(jtype(v), jtype(g)) != 0)
            FAIL("%s: %s: key '%s' is %s, example has %s", ex, where, k, jtype(g), jtype(v));
    }
    if (!allowed) return;
    json_object_foreach(got, k, v)
    {
        if (!json_object_get(allowed, k))
            FAIL("%s: %s: key '%s' is not in the spec's schema", ex, where, k);
    }
}

/* The items schema of a list result schema ({"$ref": "#/definitions/XListResult"}). */
static json_t *list_items_schema(json_t *spec, json_t *schema)
{
    const char *ref = json_string_value(json_object_get(schema, "$ref"));
    const char *slash = ref ? strrchr(ref, '/') : NULL;
    if (!slash) return NULL;
    json_t *def = json_object_get(json_object_get(spec, "definitions"), slash + 1);
    return json_object_get(json_object_get(json_object_get(def, "properties"), "value"), "items");
}

/* ---------- one example ---------- */

static json_t *seed_state(json_t *params, const char *op_id, json_t *example)
{
    const char *sub = json_string_value(json_object_get(params, "subscriptionId"));
    const char *rg = json_string_value(json_object_get(params, "resourceGroupName"));
    const char *cl = json_string_value(json_object_get(params, "clusterName"));
    const char *db = json_string_value(json_object_get(params, "databaseName"));
    const char *pa = json_string_value(json_object_get(params, "principalAssignmentName"));
    const char *loc = json_string_value(json_object_get(params, "location"));
    const char *opid = json_string_value(json_object_get(params, "operationId"));
    int creating = op_id && strstr(op_id, "_CreateOrUpdate") != NULL;
    char scope[300];
    snprintf(scope, sizeof scope, "/subscriptions/%s", sub ? sub : ARM_SUB);
    json_t *dbo = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}, s:[], s:[], s:[], s:[]}", "name",
                            db ? db : "KustoDatabase8", "kind", "ReadWrite", "softDeletePeriod",
                            "P1D", "hotCachePeriod", "P1D", "recoverability", "Enabled", "policies",
                            "principals", "principalAssignments", "tables", "materializedViews");
    json_t *clo = json_pack("{s:s, s:s, s:s, s:{}, s:[], s:[o]}", "name", cl ? cl : "kustoCluster",
                            "location", loc ? loc : "westus", "uri",
                            "https://kustocluster.westus.kusto.windows.net", "policies",
                            "principalAssignments", "databases", dbo);
    if (pa && !creating) {
        json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", pa, "principalId",
                                "87654321-1234-1234-1234-123456789123", "role", "Admin", "tenantId",
                                ARM_TENANT, "principalType", "App");
        json_array_append_new(json_object_get(dbo, "principalAssignments"), json_deep_copy(rec));
        json_object_set_new(rec, "role", json_string("AllDatabasesAdmin"));
        json_array_append_new(json_object_get(clo, "principalAssignments"), rec);
    }
    /* principals the example's answer lists exist beforehand (list, remove) */
    if (op_id && (strstr(op_id, "ListPrincipals") || strstr(op_id, "RemovePrincipals"))) {
        json_t *v = json_object_get(
            json_object_get(json_object_get(json_object_get(example, "responses"), "200"), "body"),
            "value");
        json_t *list = json_deep_copy(v);
        /* and the database creator, as in a real database: removePrincipals answers the
         * principals that remain */
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", "TestApp",
                                              "type", "App", "role", "Admin", "fqn",
                                              "aadapp=" ARM_WRITER ";" ARM_TENANT, "appId",
                                              ARM_WRITER, "email", ""));
        json_object_set_new(dbo, "principals", list);
    }
    json_t *root =
        json_pack("{s:[{s:s, s:s}], s:[{s:s, s:s, s:s, s:[s], s:[], s:[{s:s, s:s}]}],"
                  " s:[{s:s, s:[{s:s, s:[o]}]}], s:{s:i, s:i, s:i, s:i}}",
                  "tenants", "id", ARM_TENANT, "domain", "contoso.onmicrosoft.com", "apps", "appId",
                  ARM_WRITER, "tenantId", ARM_TENANT, "displayName", "TestApp", "secrets", "secret",
                  "certificates", "armRoles", "scope", scope, "role", "Owner", "subscriptions",
                  "id", sub ? sub : ARM_SUB, "resourceGroups", "name", rg ? rg : "kustorptest",
                  "clusters", clo, "settings", "lroDurationMs", 60000, "lroRetryAfterSeconds", 1,
                  "armWriteBucket", 200, "armWriteRefillPerSecond", 10);
    if (opid) {
        /* the operation the example asks about: failed as in the example, or still running
         * when the example has no body (the Location variant) */
        json_t *body = json_object_get(
            json_object_get(json_object_get(json_object_get(example, "responses"), "200"), "body"),
            "error");
        json_t *op =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:{}, s:n}", "name", opid,
                      "subscriptionId", sub ? sub : ARM_SUB, "location", loc ? loc : "westus",
                      "operationKind", "DatabaseUpdate", "action", "dbUpdate", "resourceId",
                      "/subscriptions/x", "status", body ? "Failed" : "Running", "startTime",
                      "2026-01-01T00:00:00.000Z", "startMs", (json_int_t)0, "dueMs",
                      (json_int_t)1 << 52, "target", "payload");
        json_object_set_new(op, "callerAppId", json_string(ARM_WRITER));
        if (body) {
            json_object_set(op, "error", body);
            json_object_set_new(op, "endTime", json_string("2026-01-01T00:00:01.000Z"));
        }
        json_object_set_new(root, "armRuntime",
                            json_pack("{s:[o], s:{}}", "operations", op, "throttle"));
    }
    return root;
}

typedef int (*send_fn)(json_t *seed, const char *method, const char *url, const char *body,
                       answer *out);

static void replay(json_t *spec, const char *dir, const char *file, send_fn send)
{
    char path[2400];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    json_error_t e;
    json_t *ex = json_load_file(path, 0, &e);
    if (!ex) {
        FAIL("%s: does not parse: %s", file, e.text);
        return;
    }
    json_t *params = json_object_get(ex, "parameters");
    opinfo oi;
    if (find_op(spec, file, json_string_value(json_object_get(ex, "operationId")), &oi)) {
        FAIL("%s: no operation in the spec names this example", file);
        json_decref(ex);
        return;
    }
    const char *op_id = json_string_value(json_object_get(oi.op, "operationId"));
    /* method and URL */
    char method[16], url[2048] = "";
    size_t mi = 0;
    for (; oi.method[mi] && mi < sizeof method - 1; mi++)
        method[mi] = (char)toupper((unsigned char)oi.method[mi]);
    method[mi] = '\0';
    const char *t = oi.path;
    size_t n = 0;
    while (*t && *t != '?' && n < sizeof url - 300) {
        if (*t == '{') {
            const char *end = strchr(t, '}');
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(end - t - 1), t + 1);
            const char *v = json_string_value(json_object_get(params, name));
            n += (size_t)snprintf(url + n, sizeof url - n, "%s", v ? v : "missing");
            t = end + 1;
        } else {
            url[n++] = *t++;
        }
    }
    url[n] = '\0';
    n += (size_t)snprintf(url + n, sizeof url - n, "?api-version=%s",
                          json_string_value(json_object_get(params, "api-version")));
    const char *body_text = NULL;
    char *body_alloc = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(oi.op, "parameters"), i, p)
    {
        const char *in = json_string_value(json_object_get(p, "in"));
        const char *name = json_string_value(json_object_get(p, "name"));
        if (!in || !name) continue;
        json_t *v = json_object_get(params, name);
        if (!strcmp(in, "query") && json_is_string(v))
            n += (size_t)snprintf(url + n, sizeof url - n, "&%s=%s", name, json_string_value(v));
        if (!strcmp(in, "body") && v) body_text = body_alloc = json_dumps(v, JSON_COMPACT);
    }
    if (strcmp(method, "POST") == 0 && !body_text) body_text = "";

    json_t *seed = seed_state(params, op_id, ex);
    answer a;
    memset(&a, 0, sizeof a);
    if (send(seed, method, url, body_text && *body_text ? body_text : NULL, &a) != 0) {
        FAIL("%s: %s %s: no answer", file, method, url);
        goto out;
    }
    char status[8];
    snprintf(status, sizeof status, "%d", a.status);
    json_t *responses = json_object_get(ex, "responses");
    json_t *want = json_object_get(responses, status);
    char *got_text = a.body ? json_dumps(a.body, JSON_COMPACT) : strdup("");
    printf("%-58s %-6s %d %s\n", file, method, a.status, op_id);
    if (!want) {
        FAIL("%s: status %d is not one the example lists (answer %s)", file, a.status, got_text);
        free(got_text);
        goto out;
    }
    free(got_text);
    /* headers every ARM answer carries */
    if (!json_object_get(a.headers, "x-ms-request-id") ||
        !json_object_get(a.headers, "x-ms-correlation-request-id"))
        FAIL("%s: request/correlation id headers missing", file);
    const char *hk;
    json_t *hv;
    json_object_foreach(json_object_get(want, "headers"), hk, hv)
    {
        char lower[64];
        snprintf(lower, sizeof lower, "%s", hk);
        for (char *q = lower; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        const char *got = json_string_value(json_object_get(a.headers, lower));
        if (a.status != 204 && !got)
            FAIL("%s: header %s missing", file, hk);
        else if (got && strncmp(got, "https://management.azure.com/", 29) != 0)
            FAIL("%s: header %s is not an absolute ARM URL: %s", file, hk, got);
    }
    json_t *wbody = json_object_get(want, "body");
    if (!wbody) {
        if (a.body)
            FAIL("%s: the example has no body for %d but the answer has one", file, a.status);
        goto out;
    }
    if (!a.body) {
        FAIL("%s: answer %d has no body", file, a.status);
        goto out;
    }
    json_t *schema =
        json_object_get(json_object_get(json_object_get(oi.op, "responses"), status), "schema");
    json_t *keys = json_object(), *pkeys = json_object();
    collect_keys(spec, schema, keys, pkeys, 0);
    same_shape(file, "body", wbody, a.body, json_object_size(keys) ? keys : NULL);
    json_t *wp = json_object_get(wbody, "properties"), *gp = json_object_get(a.body, "properties");
    if (json_is_object(wp) && json_is_object(gp))
        same_shape(file, "properties", wp, gp, json_object_size(pkeys) ? pkeys : NULL);
    json_t *wv = json_array_get(json_object_get(wbody, "value"), 0);
    json_t *gv = json_array_get(json_object_get(a.body, "value"), 0);
    if (json_is_object(wv)) {
        if (!json_is_object(gv)) {
            FAIL("%s: the answer's value list is empty", file);
        } else {
            json_t *ikeys = json_object(), *ipkeys = json_object();
            json_t *items = list_items_schema(spec, schema);
            collect_keys(spec, items, ikeys, ipkeys, 0);
            same_shape(file, "value[0]", wv, gv, json_object_size(ikeys) ? ikeys : NULL);
            json_decref(ikeys);
            json_decref(ipkeys);
        }
    }
    json_decref(keys);
    json_decref(pkeys);
out:
    answer_clear(&a);
    json_decref(seed);
    free(body_alloc);
    json_decref(ex);
}

/* Over HTTPS through the real front: an LRO followed to its end as a client would, a bad
 * body, and throttling with Retry-After.  No timing assumptions: polls are bounded. */
static void https_scenarios(void)
{
    sim_state *tmp = arm_fake_state();
    json_t *seed = json_deep_copy(tmp->root);
    arm_fake_state_free(tmp);
    json_object_set_new(json_object_get(seed, "settings"), "lroDurationMs", json_integer(300));
    answer a;
    memset(&a, 0, sizeof a);
    const char *db = ARM_DB "?api-version=2025-02-14";
    if (https_send(seed, "PATCH", db,
                   "{\"kind\":\"ReadWrite\",\"properties\":{\"softDeletePeriod\":\"P10D\"}}", &a) ||
        a.status != 202) {
        FAIL("https PATCH: %d", a.status);
        answer_clear(&a);
        json_decref(seed);
        return;
    }
    char async_url[600] = "", loc_url[700] = "";
    const char *h = json_string_value(json_object_get(a.headers, "azure-asyncoperation"));
    const char *l = json_string_value(json_object_get(a.headers, "location"));
    const char *ra = json_string_value(json_object_get(a.headers, "retry-after"));
    if (!h || !l || !ra || strcmp(ra, "1") != 0) FAIL("https PATCH: LRO headers missing");
    snprintf(async_url, sizeof async_url, "%s", h ? h : "");
    snprintf(loc_url, sizeof loc_url, "%s", l ? l : "");
    answer_clear(&a);
    int done = 0;
    for (int i = 0; i < 600 && !done && async_url[0]; i++) { /* up to ~60 s */
        if (https_send(NULL, "GET", async_url, NULL, &a) == 0 && a.status == 200) {
            const char *status = json_string_value(json_object_get(a.body, "status"));
            done = status && strcmp(status, "Succeeded") == 0;
            if (status && strcmp(status, "Running") && !done) FAIL("https LRO: %s", status);
        }
        answer_clear(&a);
        if (!done) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (!done) FAIL("https LRO: never Succeeded");
    if (https_send(NULL, "GET", loc_url, NULL, &a) || a.status != 200)
        FAIL("https Location after success: %d", a.status);
    answer_clear(&a);
    if (https_send(NULL, "GET", db, NULL, &a) || a.status != 200 ||
        !json_string_value(
            json_object_get(json_object_get(a.body, "properties"), "softDeletePeriod")) ||
        strcmp(json_string_value(
                   json_object_get(json_object_get(a.body, "properties"), "softDeletePeriod")),
               "P10D") != 0)
        FAIL("https GET after the LRO: %d", a.status);
    answer_clear(&a);
    /* a bad body gets the ARM envelope */
    if (https_send(NULL, "PATCH", db, "{\"kind\":", &a) || a.status != 400 ||
        !json_is_string(json_object_get(json_object_get(a.body, "error"), "code")))
        FAIL("https bad JSON: %d", a.status);
    answer_clear(&a);
    /* throttling through the front: bucket of 1, no refill */
    json_object_set_new(json_object_get(seed, "settings"), "armWriteBucket", json_integer(1));
    json_object_set_new(json_object_get(seed, "settings"), "armWriteRefillPerSecond",
                        json_integer(0));
    const char *lp = ARM_DB "/listPrincipals?api-version=2025-02-14";
    if (https_send(seed, "POST", lp, NULL, &a) || a.status != 200)
        FAIL("https listPrincipals: %d", a.status);
    answer_clear(&a);
    if (https_send(NULL, "POST", lp, NULL, &a) || a.status != 429 ||
        !json_object_get(a.headers, "retry-after") ||
        !json_object_get(a.headers, "x-ms-ratelimit-remaining-subscription-writes"))
        FAIL("https throttling: %d", a.status);
    answer_clear(&a);
    json_decref(seed);
    printf("https scenarios (LRO, bad body, throttling) done\n");
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "inproc";
    char dir[1024], spec_path[1024];
    snprintf(dir, sizeof dir, "%s/arm/examples", PW_REFERENCE_DIR);
    snprintf(spec_path, sizeof spec_path, "%s/arm/spec/kusto-2025-02-14.SUBSET.json",
             PW_REFERENCE_DIR);
    DIR *d = opendir(dir);
    struct stat sb;
    if (!d || stat(spec_path, &sb) != 0) {
        printf("SKIP: the ARM reference (%s) is absent\n", dir);
        if (d) closedir(d);
        return 77;
    }
    json_error_t e;
    json_t *spec = json_load_file(spec_path, 0, &e);
    if (!spec) {
        fprintf(stderr, "spec does not parse: %s\n", e.text);
        closedir(d);
        return 1;
    }
    char *files[REPLAY_MAX_EXAMPLES];
    size_t nf = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nf < REPLAY_MAX_EXAMPLES) {
        size_t l = strlen(de->d_name);
        if (l > 5 && strcmp(de->d_name + l - 5, ".json") == 0) files[nf++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(files, nf, sizeof files[0], by_name);

    send_fn send = inproc_send;
    if (strcmp(mode, "https") == 0) {
        if (argc < 3 || access(argv[2], X_OK) != 0) {
            printf("SKIP: azure-sim program not given or not built\n");
            json_decref(spec);
            for (size_t i = 0; i < nf; i++)
                free(files[i]);
            return 77;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (test_sim_start(&hx, argv[2], "arm-replay") != 0) {
            test_sim_stop(&hx);
            fprintf(stderr, "could not start %s\n", argv[2]);
            return 1;
        }
        send = https_send;
    }
    for (size_t i = 0; i < nf; i++) {
        replay(spec, dir, files[i], send);
        free(files[i]);
    }
    if (send == https_send) {
        https_scenarios();
        test_sim_stop(&hx);
        curl_global_cleanup();
    }
    json_decref(spec);
    printf("%zu examples replayed (%s), %d failure(s)\n", nf, mode, failures);
    if (nf == 0) return 77;
    return failures ? 1 : 0;
}
