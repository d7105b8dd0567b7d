/* arm_fake.c: hand-made sim_request / sim_state for calling sim_arm_handle in tests. */
#include "arm_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAKE_MAX_PARAMS 16

typedef struct fake_impl {
    char *qk[FAKE_MAX_PARAMS], *qv[FAKE_MAX_PARAMS];
    size_t nq;
    const char *hk, *hv;
} fake_impl;

static const char *fake_caller = ARM_WRITER;
static int fake_lose = 0; /* writes still to lose (arm_fake_lose_writes) */
static int fake_asked = 0;
static char next_hk[128], next_hv[512];

static const char fake_state_json[] =
    "{\"tenants\": [{\"id\": \"" ARM_TENANT "\", \"domain\": \"contoso.onmicrosoft.com\"}],"
    " \"apps\": ["
    "  {\"appId\": \"" ARM_WRITER "\", \"tenantId\": \"" ARM_TENANT "\","
    "   \"displayName\": \"policy-worker\", \"secrets\": [\"s\"], \"certificates\": [],"
    "   \"armRoles\": [{\"scope\": \"/subscriptions/" ARM_SUB "\", \"role\": \"Contributor\"}]},"
    "  {\"appId\": \"" ARM_READER "\", \"tenantId\": \"" ARM_TENANT "\","
    "   \"displayName\": \"reader\", \"secrets\": [], \"certificates\": [],"
    "   \"armRoles\": [{\"scope\": \"/subscriptions/" ARM_SUB "\", \"role\": \"Reader\"}]},"
    "  {\"appId\": \"" ARM_RG_ONLY "\", \"tenantId\": \"" ARM_TENANT "\","
    "   \"displayName\": \"other\", \"secrets\": [], \"certificates\": [],"
    "   \"armRoles\": [{\"scope\": \"/subscriptions/" ARM_SUB "/resourceGroups/otherrg\","
    "                   \"role\": \"Owner\"}]}],"
    " \"subscriptions\": [{\"id\": \"" ARM_SUB "\", \"resourceGroups\": ["
    "  {\"name\": \"otherrg\", \"clusters\": []},"
    "  {\"name\": \"testrg\", \"clusters\": [{\"name\": \"mykustocluster\","
    "   \"location\": \"westus\", \"uri\": \"https://mykustocluster.westus.kusto.windows.net\","
    "   \"policies\": {}, \"principalAssignments\": [],"
    "   \"databases\": [{\"name\": \"mykustodatabase\", \"kind\": \"ReadWrite\","
    "     \"softDeletePeriod\": \"P365D\", \"hotCachePeriod\": \"P31D\","
    "     \"recoverability\": \"Enabled\", \"policies\": {}, \"principals\": [],"
    "     \"principalAssignments\": [], \"tables\": [{\"name\": \"StormEvents\","
    "     \"policies\": {}}], \"materializedViews\": []}]}]}]}],"
    " \"settings\": {\"lroDurationMs\": 1500, \"lroRetryAfterSeconds\": 1,"
    "   \"armWriteBucket\": 200, \"armWriteRefillPerSecond\": 10}}";

sim_state *arm_fake_state(void)
{
    sim_state *st = calloc(1, sizeof *st);
    if (!st) abort();
    pthread_mutex_init(&st->lock, NULL);
    json_error_t e;
    st->root = json_loads(fake_state_json, 0, &e);
    if (!st->root) {
        fprintf(stderr, "fake state: %s at %d\n", e.text, e.position);
        abort();
    }
    snprintf(st->base_url, sizeof st->base_url, "https://127.0.0.1:1");
    return st;
}

void arm_fake_state_free(sim_state *st)
{
    if (!st) return;
    json_decref(st->root);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

void arm_fake_caller(const char *app_id)
{
    fake_caller = app_id;
}

static int fake_ignore_write(const sim_request *req)
{
    (void)req;
    fake_asked++;
    if (fake_lose <= 0) return 0;
    fake_lose--;
    return 1;
}

void arm_fake_lose_writes(int n)
{
    fake_lose = n;
    fake_asked = 0;
}

int arm_fake_writes_asked(void)
{
    return fake_asked;
}

void arm_fake_next_header(const char *name, const char *value)
{
    snprintf(next_hk, sizeof next_hk, "%s", name);
    snprintf(next_hv, sizeof next_hv, "%s", value);
}

static const char *fake_header(const sim_request *req, const char *name)
{
    const fake_impl *f = req->impl;
    if (f->hk && strcasecmp(f->hk, name) == 0) return f->hv;
    return NULL;
}

static const char *fake_query(const sim_request *req, const char *name)
{
    const fake_impl *f = req->impl;
    for (size_t i = 0; i < f->nq; i++)
        if (strcmp(f->qk[i], name) == 0) return f->qv[i];
    return NULL;
}

void arm_call(sim_state *st, const char *method, const char *url, const char *body, arm_answer *out)
{
    fake_impl f;
    memset(&f, 0, sizeof f);
    char *path = strdup(url);
    char *q = strchr(path, '?');
    if (q) {
        *q++ = '\0';
        char *save = NULL;
        for (char *kv = strtok_r(q, "&", &save); kv && f.nq < FAKE_MAX_PARAMS;
             kv = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(kv, '=');
            f.qk[f.nq] = strndup(kv, eq ? (size_t)(eq - kv) : strlen(kv));
            f.qv[f.nq] = strdup(eq ? eq + 1 : "");
            f.nq++;
        }
    }
    if (next_hk[0]) {
        f.hk = next_hk;
        f.hv = next_hv;
    }
    sim_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.host = "management.azure.com";
    req.path = path;
    req.body = body ? body : "";
    req.body_len = strlen(req.body);
    req.header = fake_header;
    req.query = fake_query;
    req.impl = &f;
    req.token_state = 1;
    req.caller_app_id = fake_caller;
    req.caller_tenant_id = ARM_TENANT;
    req.token_audience = "https://management.azure.com";
    req.activity_id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    req.ignore_write = fake_ignore_write;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->lock);
    sim_arm_tick(st);
    sim_arm_handle(st, &req, &out->resp);
    pthread_mutex_unlock(&st->lock);
    out->text =
        out->resp.body ? json_dumps(out->resp.body, JSON_COMPACT | JSON_SORT_KEYS) : strdup("");
    for (size_t i = 0; i < f.nq; i++) {
        free(f.qk[i]);
        free(f.qv[i]);
    }
    free(path);
    next_hk[0] = '\0';
}

void arm_answer_clear(arm_answer *a)
{
    json_decref(a->resp.body);
    free(a->text);
    memset(a, 0, sizeof *a);
}

const char *arm_header(const arm_answer *a, const char *name)
{
    for (size_t i = 0; i < a->resp.header_count; i++)
        if (strcasecmp(a->resp.headers[i].name, name) == 0) return a->resp.headers[i].value;
    return NULL;
}

const char *arm_error_code(const arm_answer *a)
{
    const char *c =
        json_string_value(json_object_get(json_object_get(a->resp.body, "error"), "code"));
    return c ? c : "";
}
