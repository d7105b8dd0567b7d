/* reply.c: the reply contract: every reply event, its frame, operations, plans and errors. */
#include "pw/reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pw_reply_time(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

json_t *pw_reply_frame(const char *request_id, const char *status, unsigned sequence,
                       const char *worker_id)
{
    char now[40];
    pw_reply_time(now, sizeof now);
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "schema", PW_REPLY_SCHEMA, "requestId",
                     request_id ? request_id : "", "status", status, "sequence",
                     (json_int_t)sequence, "time", now, "workerId",
                     worker_id && *worker_id ? worker_id : "policy-worker");
}

size_t pw_reply_utf8_seq(const unsigned char *s, size_t avail)
{
    if (avail == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (need >= avail || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k <= need; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return need + 1;
}

void pw_reply_scrub(char *s)
{
    if (!s) return;
    unsigned char *u = (unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = pw_reply_utf8_seq(u + i, n - i);
        if (k == 0) u[i] = '?';
        i += k ? k : 1;
    }
}

json_t *pw_reply_string(const char *s)
{
    if (!s) s = "";
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, bad = 0;
    while (i < n) {
        size_t k = pw_reply_utf8_seq(u + i, n - i);
        bad += k == 0;
        i += k ? k : 1;
    }
    if (!bad) return json_string(s);
    /* each bad byte becomes U+FFFD (3 bytes) */
    char *fixed = malloc(n + 2 * bad + 1);
    if (!fixed) return NULL;
    size_t o = 0;
    for (i = 0; i < n;) {
        size_t k = pw_reply_utf8_seq(u + i, n - i);
        if (k) {
            memcpy(fixed + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(fixed + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    fixed[o] = '\0';
    json_t *j = json_string(fixed);
    free(fixed);
    return j;
}

json_t *pw_reply_error(const char *code, const char *message, int retryable)
{
    return json_pack("{s:o, s:o, s:b}", "code", pw_reply_string(code), "message",
                     pw_reply_string(message), "retryable", retryable);
}

/* ---- fitting an event to a size ---- */

/* Cut steps, largest first; the last one is the documented minimum. */
static const struct {
    size_t string_max, array_max;
} fit_steps[] = {
    {4096, 1000},
    {512, 64},
    {PW_REPLY_FIT_STRING_MIN, PW_REPLY_FIT_ARRAY_MIN},
};

/* The frame: never cut (each is bounded where it is made). */
static int is_frame_key(const char *key)
{
    static const char *const frame[] = {"schema",      "requestId", "status", "sequence",
                                        "time",        "workerId",  "dryRun", "operationIndex",
                                        "requestedBy", "reason",    "source", "deliveryAttempt"};
    for (size_t i = 0; i < sizeof frame / sizeof frame[0]; i++)
        if (!strcmp(key, frame[i])) return 1;
    return 0;
}

/* Cuts v's strings (on a UTF-8 boundary) and arrays in place. */
static void shrink(json_t *v, size_t string_max, size_t array_max)
{
    if (json_is_string(v)) {
        const char *str = json_string_value(v);
        size_t len = json_string_length(v);
        if (len <= string_max) return;
        size_t cut = string_max;
        while (cut > 0 && ((unsigned char)str[cut] & 0xC0) == 0x80)
            cut--; /* str[cut] starts a sequence: everything before it is whole */
        json_string_setn(v, str, cut);
    } else if (json_is_array(v)) {
        while (json_array_size(v) > array_max)
            json_array_remove(v, json_array_size(v) - 1);
        for (size_t i = 0; i < json_array_size(v); i++)
            shrink(json_array_get(v, i), string_max, array_max);
    } else if (json_is_object(v)) {
        const char *key;
        json_t *member;
        json_object_foreach(v, key, member) shrink(member, string_max, array_max);
    }
}

/* Dumps j; when it fits, *out takes the text and 1 is returned. */
static int dump_if_fits(const json_t *j, size_t max_bytes, char **out)
{
    char *text = json_dumps(j, JSON_COMPACT);
    if (!text) return -1;
    if (strlen(text) <= max_bytes) {
        *out = text;
        return 1;
    }
    free(text);
    return 0;
}

/* The smallest form: the frame, the error's code and a cut message, no operations. */
static json_t *minimal_event(const json_t *event)
{
    json_t *min = json_object();
    if (!min) return NULL;
    const char *key;
    json_t *member;
    json_object_foreach((json_t *)event, key, member)
    {
        if (is_frame_key(key)) json_object_set(min, key, member);
    }
    if (json_object_get(event, "operations")) json_object_set_new(min, "operations", json_array());
    json_t *error = json_object_get(event, "error");
    if (json_is_object(error)) {
        json_t *e = json_object();
        const char *fields[] = {"code", "message", "retryable"};
        for (size_t i = 0; e && i < sizeof fields / sizeof fields[0]; i++) {
            json_t *f = json_object_get(error, fields[i]);
            if (f) json_object_set_new(e, fields[i], json_deep_copy(f));
        }
        if (e) shrink(e, PW_REPLY_FIT_STRING_MIN, 0);
        json_object_set_new(min, "error", e);
    }
    json_object_set_new(min, "truncated", json_true());
    return min;
}

char *pw_reply_dump_fit(const json_t *event, size_t max_bytes, int *cut)
{
    char *text = NULL;
    *cut = 0;
    int rc = dump_if_fits(event, max_bytes, &text);
    if (rc) return rc > 0 ? text : NULL;
    *cut = 1;
    for (size_t step = 0; step < sizeof fit_steps / sizeof fit_steps[0]; step++) {
        json_t *copy = json_deep_copy(event);
        if (!copy) return NULL;
        const char *key;
        json_t *member;
        json_object_foreach(copy, key, member)
        {
            if (!is_frame_key(key))
                shrink(member, fit_steps[step].string_max, fit_steps[step].array_max);
        }
        json_object_set_new(copy, "truncated", json_true());
        rc = dump_if_fits(copy, max_bytes, &text);
        json_decref(copy);
        if (rc) return rc > 0 ? text : NULL;
    }
    json_t *min = minimal_event(event);
    if (!min) return NULL;
    text = json_dumps(min, JSON_COMPACT);
    json_decref(min);
    return text;
}

json_t *pw_reply_operation(const pw_reply_op *o)
{
    const pw_request_op *op = o->op;
    json_t *j =
        json_pack("{s:I, s:s, s:s, s:s, s:O, s:s, s:O, s:O, s:I, s:I}", "index",
                  (json_int_t)o->index, "kind", op->kind_name, "action",
                  pw_ops_action_name(op->action), "route", pw_ops_route_name(op->route), "target",
                  op->target, "status", o->status, "before", o->before ? o->before : json_null(),
                  "after", o->after ? o->after : json_null(), "attempts", (json_int_t)o->attempts,
                  "durationMs", (json_int_t)o->duration_ms);
    if (!j) return NULL;
    if (o->plan) json_object_set_new(j, "plan", pw_reply_plan(o->plan, o->index));
    if (o->az_request_id[0] || o->az_correlation_id[0] || o->az_client_request_id[0])
        json_object_set_new(j, "azure",
                            json_pack("{s:o, s:o, s:o}", "requestId",
                                      pw_reply_string(o->az_request_id), "correlationId",
                                      pw_reply_string(o->az_correlation_id), "clientRequestId",
                                      pw_reply_string(o->az_client_request_id)));
    if (o->has_lro) {
        json_t *lro = json_pack("{s:o, s:I}", "status", pw_reply_string(o->lro_status), "polls",
                                (json_int_t)o->polls);
        if (lro && o->percent >= 0 && o->percent <= 100)
            json_object_set_new(lro, "percentComplete", json_integer(o->percent));
        json_object_set_new(j, "lro", lro);
    }
    if (o->queued)
        json_object_set_new(j, "queue",
                            json_pack("{s:s, s:f, s:f, s:I}", "waitingFor", o->queued, "level",
                                      o->queue_level, "capacity", o->queue_capacity, "ahead",
                                      (json_int_t)o->queue_ahead));
    if (o->queued_ms) json_object_set_new(j, "queuedMs", json_integer((json_int_t)o->queued_ms));
    if (o->error) json_object_set_new(j, "error", json_deep_copy(o->error));
    return j;
}

static json_t *call_json(const pw_plan_call *c, const char *api_version)
{
    if (c->route == PW_ROUTE_ARM) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "route", "arm", "method", c->method, "path",
                              c->path, "apiVersion", api_version);
        if (j && c->body) json_object_set_new(j, "body", json_deep_copy(c->body));
        return j;
    }
    json_t *j = json_pack("{s:s, s:s, s:s}", "route", "kusto", "clusterUri", c->cluster_uri,
                          "command", c->command);
    if (j && c->database) json_object_set_new(j, "database", json_string(c->database));
    return j; /* (no database: a cluster-scope command) */
}

json_t *pw_reply_plan(const pw_plan *plan, size_t i)
{
    const pw_plan_op *pop = pw_plan_op_at(plan, i);
    if (!pop) return NULL;
    const char *v = pw_plan_api_version(plan);
    return json_pack("{s:o, s:o}", "read", call_json(&pop->read, v), "apply",
                     call_json(&pop->apply, v));
}

/* Adds r's error (operationIndex = error_index) to ev; NULL (ev released) out of memory. */
static json_t *request_error(json_t *ev, const pw_reply_request *r)
{
    if (!r->error) return ev;
    json_t *err = json_deep_copy(r->error);
    if (err && r->error_index >= 0)
        json_object_set_new(err, "operationIndex", json_integer(r->error_index));
    if (!err || json_object_set_new(ev, "error", err)) {
        json_decref(ev);
        return NULL;
    }
    return ev;
}

json_t *pw_reply_request_event(const pw_reply_request *r)
{
    json_t *ev = pw_reply_frame(r->request_id, r->status, r->sequence, r->worker_id);
    if (!ev) {
        json_decref(r->rollout);
        return NULL;
    }
    if (r->dry_run) json_object_set_new(ev, "dryRun", json_true());
    if (r->rollout) {
        if (json_object_set_new(ev, "rollout", r->rollout)) {
            json_decref(ev);
            return NULL;
        }
        return request_error(ev, r);
    }
    if (r->operation_index >= 0)
        json_object_set_new(ev, "operationIndex", json_integer(r->operation_index));
    json_t *ops = json_array();
    for (size_t i = 0; ops && i < r->count; i++)
        if (json_array_append_new(ops, pw_reply_operation(&r->ops[i]))) {
            json_decref(ops);
            ops = NULL;
        }
    if (!ops || json_object_set_new(ev, "operations", ops)) {
        json_decref(ev);
        return NULL;
    }
    return request_error(ev, r);
}

json_t *pw_reply_counts_json(const pw_reply_counts *c)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "targets", (json_int_t)c->targets,
                     "succeeded", (json_int_t)c->succeeded, "unchanged", (json_int_t)c->unchanged,
                     "planned", (json_int_t)c->planned, "failed", (json_int_t)c->failed,
                     "skipped", (json_int_t)c->skipped);
}

json_t *pw_reply_target_result(const pw_reply_target *t)
{
    json_t *ops = json_array();
    for (size_t i = 0; ops && i < t->count; i++)
        if (json_array_append_new(ops, pw_reply_operation(&t->ops[i]))) {
            json_decref(ops);
            ops = NULL;
        }
    if (!ops) return NULL;
    return json_pack("{s:I, s:I, s:s, s:O, s:o}", "index", (json_int_t)t->index, "wave",
                     (json_int_t)t->wave, "status", t->status, "target", t->target, "operations",
                     ops);
}

int pw_reply_results_add(json_t *results, size_t *bytes, json_t *result)
{
    if (!result) return -1;
    size_t size = json_dumpb(result, NULL, 0, JSON_COMPACT) + 1; /* (the comma) */
    if (json_array_size(results) &&
        (json_array_size(results) >= PW_REPLY_RESULTS_MAX || *bytes + size > PW_REPLY_RESULTS_BYTES)) {
        json_decref(result);
        return 0;
    }
    if (json_array_append_new(results, result)) return -1;
    *bytes += size;
    return 1;
}

json_t *pw_reply_op_error(const char *code, const char *message, int retryable, int http_status,
                          const char *azure_code, const char *operation_url)
{
    json_t *e = pw_reply_error(code, message, retryable);
    if (e && http_status > 0) json_object_set_new(e, "httpStatus", json_integer(http_status));
    if (e && azure_code && *azure_code)
        json_object_set_new(e, "azureCode", pw_reply_string(azure_code));
    if (e && operation_url && *operation_url)
        json_object_set_new(e, "operationUrl", pw_reply_string(operation_url));
    return e;
}

json_t *pw_reply_rejection(const pw_rejection *rej, const char *worker_id)
{
    json_t *ev = pw_reply_frame(rej->id, "rejected", 1, worker_id);
    json_t *error = pw_reply_error(rej->code, rej->message, 0);
    if (!ev || !error) {
        json_decref(ev);
        json_decref(error);
        return NULL;
    }
    json_t *errors = json_object_get(rej->errors, "errors");
    if (json_is_array(errors) && json_array_size(errors) > 0)
        json_object_set(error, "errors", errors);
    json_object_set_new(ev, "error", error);
    return ev;
}

int pw_reply_audit_add(json_t *event, const pw_reply_audit *a)
{
    int rc = 0;
    if (a->requested_by)
        rc |= json_object_set_new(event, "requestedBy", pw_reply_string(a->requested_by));
    if (a->reason) rc |= json_object_set_new(event, "reason", pw_reply_string(a->reason));
    json_t *src = json_object();
    if (src) {
        rc |= json_object_set_new(src, "topic", pw_reply_string(a->topic));
        rc |= json_object_set_new(src, "partition", json_integer(a->partition));
        rc |= json_object_set_new(src, "offset", json_integer(a->offset));
    }
    rc |= json_object_set_new(event, "source", src);
    rc |= json_object_set_new(event, "deliveryAttempt",
                              json_integer(a->delivery_attempt ? a->delivery_attempt : 1));
    return rc ? -1 : 0;
}
