/* rollout.c: a rollout's wave boundaries, and the listing of a selector's targets from Azure. */
#include "pw/rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/kql.h"
#include "pw/plan.h"
#include "pw/status.h"

size_t pw_rollout_waves(const pw_request_rollout *ro, size_t targets,
                        size_t ends[PW_ROLLOUT_WAVES_MAX])
{
    size_t n = 0, prev = 0;
    if (!targets) return 0;
    if (ro->canary) {
        prev = ro->canary < targets ? ro->canary : targets;
        ends[n++] = prev;
    }
    for (size_t k = 0; k < ro->step_count && n < PW_ROLLOUT_WAVES_MAX; k++) {
        size_t end = (ro->steps[k] * targets + 99) / 100; /* rounded up */
        if (end <= prev) end = prev + 1;                  /* at least one target a wave */
        if (end > targets) end = targets;
        if (end > prev) ends[n++] = prev = end;
    }
    if (prev < targets) { /* (steps not ending at 100%: decode refuses them) the rest as well */
        if (n < PW_ROLLOUT_WAVES_MAX)
            ends[n++] = targets;
        else
            ends[n - 1] = targets;
    }
    return n;
}

struct pw_rollout_lister {
    pw_azure *az;
    const pw_request *req;
    const pw_request_rollout *ro;
    uint64_t deadline_ms;
    pw_rollout_listed_cb cb;
    void *ctx;
    json_t *targets;
    size_t pages, max;
};

void pw_rollout_lister_free(pw_rollout_lister *l)
{
    if (!l) return;
    json_decref(l->targets);
    free(l);
}

static void finish(pw_rollout_lister *l, const char *code, const char *message)
{
    json_t *targets = code ? NULL : l->targets;
    if (!code) l->targets = NULL;
    l->cb(l->ctx, targets, code, message);
    pw_rollout_lister_free(l);
}

/* A target: the selector's fields and the listed name under key. */
static int add_target(pw_rollout_lister *l, const char *key, const char *name)
{
    json_t *t = json_copy((json_t *)l->ro->selector);
    if (!t || json_object_set_new(t, key, json_string(name)) != 0 ||
        json_array_append_new(l->targets, t) != 0) {
        json_decref(t);
        return -1;
    }
    return 0;
}

static int next_call(pw_rollout_lister *l, const char *next_link, char *err, size_t errlen);

static void on_page(void *ctx, const pw_azure_result *r)
{
    pw_rollout_lister *l = ctx;
    char err[256];
    if (!r->ok) {
        finish(l, r->code ? r->code : PW_AZ_CODE_PROTOCOL, r->message);
        return;
    }
    if (l->ro->source == PW_REQUEST_TABLES_OF) {
        json_t *names = pw_kql_parse_column(r->body, "TableName", l->max, err, sizeof err);
        if (!names) {
            finish(l, PW_AZ_CODE_PROTOCOL, err);
            return;
        }
        size_t i;
        json_t *name;
        int rc = 0;
        json_array_foreach(names, i, name)
        {
            if (rc == 0) rc = add_target(l, "table", json_string_value(name));
        }
        json_decref(names);
        finish(l, rc ? "InternalError" : NULL, rc ? "out of memory" : NULL);
        return;
    }
    const json_t *value = json_object_get(r->body, "value");
    const char *next = json_string_value(json_object_get(r->body, "nextLink"));
    if (!json_is_array(value)) {
        finish(l, PW_AZ_CODE_PROTOCOL, "the database list has no value array");
        return;
    }
    size_t i;
    const json_t *db;
    json_array_foreach(value, i, db)
    {
        /* name: "<cluster>/<database>" */
        const char *name = json_string_value(json_object_get(db, "name"));
        const char *slash = name ? strrchr(name, '/') : NULL;
        if (!name || !slash || !slash[1]) {
            finish(l, PW_AZ_CODE_PROTOCOL, "a listed database has no <cluster>/<database> name");
            return;
        }
        if (json_array_size(l->targets) > l->max) break;
        if (add_target(l, "database", slash + 1) != 0) {
            finish(l, "InternalError", "out of memory");
            return;
        }
    }
    if (!next || !*next || json_array_size(l->targets) > l->max) {
        finish(l, NULL, NULL);
        return;
    }
    if (++l->pages >= PW_ROLLOUT_PAGES_MAX) {
        snprintf(err, sizeof err, "the database list has more than %d pages", PW_ROLLOUT_PAGES_MAX);
        finish(l, PW_AZ_CODE_PROTOCOL, err);
        return;
    }
    if (next_call(l, next, err, sizeof err) != 0) finish(l, PW_AZ_CODE_PROTOCOL, err);
}

/* The first call (next_link NULL) or the next page. */
static int next_call(pw_rollout_lister *l, const char *next_link, char *err, size_t errlen)
{
    pw_azure_call call = {.request_id = pw_request_id(l->req),
                          .deadline_ms = l->deadline_ms,
                          .on_done = on_page,
                          .ctx = l};
    const json_t *sel = l->ro->selector;
#define SEL(key) json_string_value(json_object_get(sel, key))
    if (l->ro->source == PW_REQUEST_TABLES_OF)
        return pw_azure_kusto_mgmt(l->az, SEL("clusterUri"), SEL("database"), ".show tables", &call,
                                   err, errlen);
    if (next_link) return pw_azure_arm_next(l->az, next_link, &call, err, errlen);
    char *path =
        pw_plan_arm_databases_path(SEL("subscriptionId"), SEL("resourceGroup"), SEL("cluster"));
#undef SEL
    if (!path) {
        pw_err_set(err, errlen, "out of memory");
        return -1;
    }
    int rc = pw_azure_arm(l->az, "GET", path, NULL, &call, err, errlen);
    free(path);
    return rc;
}

pw_rollout_lister *pw_rollout_list(pw_azure *az, const pw_request *req, uint64_t deadline_ms,
                                   pw_rollout_listed_cb cb, void *ctx, char *err, size_t errlen)
{
    const pw_request_rollout *ro = pw_request_rollout_of(req);
    if (!ro || ro->source == PW_REQUEST_TARGET_LIST) {
        pw_err_set(err, errlen, "the request has no selector");
        return NULL;
    }
    pw_rollout_lister *l = calloc(1, sizeof *l);
    if (!l || !(l->targets = json_array())) {
        free(l);
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    l->az = az;
    l->req = req;
    l->ro = ro;
    l->deadline_ms = deadline_ms;
    l->cb = cb;
    l->ctx = ctx;
    l->max = pw_request_targets_max(req);
    if (next_call(l, NULL, err, errlen) != 0) {
        pw_rollout_lister_free(l);
        return NULL;
    }
    return l;
}
