/* log.c: one JSON object per line on stderr, written with a single write(2). */
#include "pw/log.h"

#include "pw/reply.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pw_log_level min_level = PW_LOG_INFO;
static char worker_id[128] = "policy-worker";

/* Live request contexts, newest first.  A list: there are at most as many as requests in
 * flight, and a line looks one up by a string compare each. */
struct pw_log_context {
    pw_log_context *next;
    char *request_id;
    json_t *fields; /* object */
};
static pw_log_context *contexts;
static pthread_mutex_t contexts_lock = PTHREAD_MUTEX_INITIALIZER;

void pw_log_set_level(pw_log_level min)
{
    min_level = min;
}

void pw_log_set_worker_id(const char *id)
{
    snprintf(worker_id, sizeof worker_id, "%s", id ? id : "policy-worker");
}

static const char *level_name(pw_log_level level)
{
    switch (level) {
    case PW_LOG_DEBUG:
        return "debug";
    case PW_LOG_INFO:
        return "info";
    case PW_LOG_WARN:
        return "warn";
    default:
        return "error";
    }
}

/* A field's value; text that is not UTF-8 is repaired (pw_reply_string). */
static json_t *field_value(const pw_log_field *f)
{
    return f->str ? pw_reply_string(f->str) : json_integer(f->num);
}

pw_log_context *pw_log_context_push(const char *request_id, const pw_log_field *f, size_t n)
{
    if (!request_id) return NULL;
    pw_log_context *c = calloc(1, sizeof *c);
    if (!c || !(c->request_id = strdup(request_id)) || !(c->fields = json_object())) goto oom;
    for (size_t i = 0; i < n && i < PW_LOG_CONTEXT_FIELDS; i++)
        json_object_set_new(c->fields, f[i].key, field_value(&f[i]));
    pthread_mutex_lock(&contexts_lock);
    c->next = contexts;
    contexts = c;
    pthread_mutex_unlock(&contexts_lock);
    return c;
oom:
    if (c) {
        free(c->request_id);
        json_decref(c->fields);
    }
    free(c);
    return NULL;
}

void pw_log_context_pop(pw_log_context *ctx)
{
    if (!ctx) return;
    pthread_mutex_lock(&contexts_lock);
    for (pw_log_context **p = &contexts; *p; p = &(*p)->next) {
        if (*p == ctx) {
            *p = ctx->next;
            break;
        }
    }
    pthread_mutex_unlock(&contexts_lock);
    free(ctx->request_id);
    json_decref(ctx->fields);
    free(ctx);
}

/* Adds the newest context of request_id to line (keys the line has win). */
static void add_context(json_t *line, const char *request_id)
{
    pthread_mutex_lock(&contexts_lock);
    for (pw_log_context *c = contexts; c; c = c->next) {
        if (strcmp(c->request_id, request_id)) continue;
        const char *key;
        json_t *v;
        json_object_foreach(c->fields, key, v)
        {
            if (!json_object_get(line, key)) json_object_set(line, key, v);
        }
        break;
    }
    pthread_mutex_unlock(&contexts_lock);
}

static void log_line(pw_log_level level, const char *request_id, const char *event,
                     const pw_log_field *f, size_t n, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);

    char when[40];
    pw_reply_time(when, sizeof when);

    /* json_string fails on invalid UTF-8: fall back to a marker rather than lose the line. */
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(when));
    json_object_set_new(line, "level", json_string(level_name(level)));
    json_object_set_new(line, "worker", json_string(worker_id));
    if (request_id) {
        json_t *rid = json_string(request_id);
        json_object_set_new(line, "requestId", rid ? rid : json_string("<invalid utf-8>"));
    }
    json_object_set_new(line, "event", json_string(event ? event : "log"));
    json_t *m = json_string(msg);
    json_object_set_new(line, "msg", m ? m : json_string("<invalid utf-8>"));
    for (size_t i = 0; i < n; i++)
        if (f[i].key && !json_object_get(line, f[i].key))
            json_object_set_new(line, f[i].key, field_value(&f[i]));
    if (request_id) add_context(line, request_id);

    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (!text) return;
    size_t len = strlen(text);
    text[len] = '\n'; /* the NUL becomes the newline: one write(2), one whole line */
    ssize_t w = write(STDERR_FILENO, text, len + 1);
    (void)w;
    free(text);
}

void pw_log(pw_log_level level, const char *request_id, const char *event, const char *fmt, ...)
{
    if (level < min_level) return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, request_id, event, NULL, 0, fmt, ap);
    va_end(ap);
}

void pw_log_kv(pw_log_level level, const char *request_id, const char *event, const pw_log_field *f,
               size_t n, const char *fmt, ...)
{
    if (level < min_level) return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, request_id, event, f, n, fmt, ap);
    va_end(ap);
}
