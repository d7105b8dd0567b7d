/* log.c: one JSON object per line on stderr, written with a single write(2). */
#include "pw/log.h"

#include "pw/reply.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pw_log_level min_level = PW_LOG_INFO;
static char worker_id[128] = "policy-worker";

/* A copied field (a request context's). */
typedef struct field_copy {
    char *key;
    char *str; /* NULL: num */
    long long num;
} field_copy;

/* Live request contexts, newest first.  A list: there are at most as many as requests in
 * flight, and a line looks one up by a string compare each. */
struct pw_log_context {
    pw_log_context *next;
    char *request_id;
    field_copy f[PW_LOG_CONTEXT_FIELDS];
    size_t n;
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

/* Length of the valid UTF-8 sequence at s (1..4, NUL excluded), 0 when it is not one (what
 * jansson's json_string refuses: overlongs, surrogates, past U+10FFFF, cut sequences). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min, cp;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

/* Appends "key":"<value as a JSON string>" (with a leading comma unless first) to buf at *n,
 * escaped as jansson's compact dump does (", \, \b \f \n \r \t, other controls below 0x20 as
 * \u00XX, UTF-8 as it is).  Text that is not valid UTF-8 becomes "<invalid utf-8>", as json_string
 * would refuse it.  Stops at the buffer's end (the caller's buffer holds the longest line). */
static void put_string(char *buf, size_t cap, size_t *n, const char *key, const char *value,
                       int first)
{
    const unsigned char *v = (const unsigned char *)value;
    for (const unsigned char *c = v; *c;) {
        size_t l = utf8_len(c);
        if (!l) {
            v = (const unsigned char *)"<invalid utf-8>";
            break;
        }
        c += l;
    }
    size_t o = *n;
    int w = snprintf(buf + o, cap - o, "%s\"%s\":\"", first ? "" : ",", key);
    o += w > 0 ? (size_t)w : 0;
    for (; *v && o + 16 < cap; v++) { /* (room for the escapes and the line's end) */
        unsigned char c = *v;
        const char *esc = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                                      : NULL;
        if (esc) {
            memcpy(buf + o, esc, 2);
            o += 2;
        } else if (c < 0x20) {
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04X", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    if (o + 1 < cap) buf[o++] = '"';
    *n = o;
}


/* Appends "key":number. */
static void put_number(char *buf, size_t cap, size_t *n, const char *key, long long v)
{
    if (*n + 64 + strlen(key) >= cap) return;
    int w = snprintf(buf + *n, cap - *n, ",\"%s\":%lld", key, v);
    if (w > 0) *n += (size_t)w;
}

/* Keys a line already has (the fixed ones, then each field as added). */
typedef struct keys_seen {
    const char *k[8 + PW_LOG_CONTEXT_FIELDS * 2];
    size_t n;
} keys_seen;

static int seen_add(keys_seen *ks, const char *key)
{
    for (size_t i = 0; i < ks->n; i++)
        if (!strcmp(ks->k[i], key)) return 0;
    if (ks->n < sizeof ks->k / sizeof ks->k[0]) ks->k[ks->n++] = key;
    return 1;
}

static void put_field(char *buf, size_t cap, size_t *n, keys_seen *ks, const char *key,
                      const char *str, long long num)
{
    if (!key || !seen_add(ks, key)) return; /* keys the line has win */
    if (str)
        put_string(buf, cap, n, key, str, 0);
    else
        put_number(buf, cap, n, key, num);
}

pw_log_context *pw_log_context_push(const char *request_id, const pw_log_field *f, size_t n)
{
    if (!request_id) return NULL;
    pw_log_context *c = calloc(1, sizeof *c);
    if (!c || !(c->request_id = strdup(request_id))) goto oom;
    for (size_t i = 0; i < n && c->n < PW_LOG_CONTEXT_FIELDS; i++) {
        field_copy *d = &c->f[c->n];
        if (!f[i].key || !(d->key = strdup(f[i].key))) continue;
        if (f[i].str && !(d->str = strdup(f[i].str))) {
            free(d->key);
            d->key = NULL;
            continue;
        }
        d->num = f[i].num;
        c->n++;
    }
    pthread_mutex_lock(&contexts_lock);
    c->next = contexts;
    contexts = c;
    pthread_mutex_unlock(&contexts_lock);
    return c;
oom:
    if (c) free(c->request_id);
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
    for (size_t i = 0; i < ctx->n; i++) {
        free(ctx->f[i].key);
        free(ctx->f[i].str);
    }
    free(ctx->request_id);
    free(ctx);
}

static void log_line(pw_log_level level, const char *request_id, const char *event,
                     const pw_log_field *f, size_t nf, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);

    char when[40];
    pw_reply_time(when, sizeof when);

    /* Written straight into one buffer, no JSON objects: a line per event is the commonest
     * thing the worker does.  Each field at most 6 bytes a character escaped. */
    char line[sizeof msg * 6 + 8192];
    size_t n = 1;
    keys_seen ks = {{"ts", "level", "worker", "requestId", "event", "msg"}, 6};
    line[0] = '{';
    put_string(line, sizeof line, &n, "ts", when, 1);
    put_string(line, sizeof line, &n, "level", level_name(level), 0);
    put_string(line, sizeof line, &n, "worker", worker_id, 0);
    if (request_id) put_string(line, sizeof line, &n, "requestId", request_id, 0);
    put_string(line, sizeof line, &n, "event", event ? event : "log", 0);
    put_string(line, sizeof line, &n, "msg", msg, 0);
    for (size_t i = 0; i < nf; i++)
        put_field(line, sizeof line, &n, &ks, f[i].key, f[i].str, f[i].num);
    if (request_id) {
        pthread_mutex_lock(&contexts_lock);
        for (pw_log_context *c = contexts; c; c = c->next) {
            if (strcmp(c->request_id, request_id)) continue;
            for (size_t i = 0; i < c->n; i++)
                put_field(line, sizeof line, &n, &ks, c->f[i].key, c->f[i].str, c->f[i].num);
            break;
        }
        pthread_mutex_unlock(&contexts_lock);
    }
    if (n + 2 > sizeof line) n = sizeof line - 2;
    line[n++] = '}';
    line[n++] = '\n'; /* one write(2), one whole line */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
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
