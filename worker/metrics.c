/* metrics.c: the registry behind pw/metrics.h and its Prometheus text exposition. */
#include "pw/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_LABEL_MAX 128
#define METRICS_BUCKETS 15

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } mtype;

typedef struct family {
    const char *name;
    mtype type;
    const char *help;
    const char *labels[PW_METRICS_LABELS_MAX]; /* label names, NULL-terminated early */
} family;

/* The families, in pw_metric order: the one place each is defined. */
static const family families[PW_M_FAMILIES] = {
    [PW_M_REQUESTS] = {"pw_requests_total", M_COUNTER,
                       "Requests by terminal status (succeeded, failed, rejected) and code "
                       "(the rejection or failure code; empty on success).",
                       {"status", "code"}},
    [PW_M_OPERATIONS] = {"pw_operations_total", M_COUNTER,
                         "Operations by kind, route and how they ended (succeeded, unchanged, "
                         "failed, unknown, skipped, planned).",
                         {"kind", "route", "status"}},
    [PW_M_AZURE_REQUESTS] = {"pw_azure_http_requests_total", M_COUNTER,
                             "HTTP requests to Azure by host class (aad, arm, kusto) and answer "
                             "status class (2xx..5xx, transport: no answer).",
                             {"host", "class"}},
    [PW_M_AZURE_RETRIES] = {"pw_azure_retries_total", M_COUNTER,
                            "Attempts of Azure calls after their first, by host class.",
                            {"host"}},
    [PW_M_AZURE_THROTTLED] = {"pw_azure_throttled_total", M_COUNTER,
                              "Azure answers 429 (throttled), by host class.",
                              {"host"}},
    [PW_M_AZURE_RETRY_AFTER] = {"pw_azure_retry_after_seconds_total", M_COUNTER,
                                "Seconds Azure calls waited because Azure said Retry-After.",
                                {"host"}},
    [PW_M_AZURE_LRO_POLLS] = {"pw_azure_lro_polls_total", M_COUNTER,
                              "Status polls of ARM long-running operations.",
                              {NULL}},
    [PW_M_AZURE_CALL_SECONDS] = {"pw_azure_call_duration_seconds", M_HISTOGRAM,
                                 "Azure calls (retries and polls included) from start to "
                                 "result, by host class.",
                                 {"host"}},
    [PW_M_REQUEST_SECONDS] = {"pw_request_duration_seconds", M_HISTOGRAM,
                              "Requests from their arrival to their terminal reply, by status.",
                              {"status"}},
    [PW_M_REQUESTS_IN_FLIGHT] = {"pw_requests_in_flight", M_GAUGE,
                                 "Request messages taken and not finished.",
                                 {NULL}},
    [PW_M_OPERATIONS_IN_FLIGHT] = {"pw_operations_in_flight", M_GAUGE,
                                   "Requests the executor is running.",
                                   {NULL}},
    [PW_M_PARTITIONS_PAUSED] = {"pw_partitions_paused", M_GAUGE,
                                "Assigned partitions paused now (back-pressure, a revoke being "
                                "drained, a claim not yet accepted).",
                                {NULL}},
    [PW_M_DEAD_LETTERS] = {"pw_dead_letters_total", M_COUNTER,
                           "Messages sent to the dead-letter topic, by code.",
                           {"code"}},
    [PW_M_TOKEN_REQUESTS] = {"pw_token_requests_total", M_COUNTER,
                             "Token endpoint answers (refreshes included), by result (ok, "
                             "failed).",
                             {"result"}},
    [PW_M_CONSUMER_LAG] = {"pw_consumer_lag", M_GAUGE,
                           "Messages behind the partition's end, as librdkafka's statistics "
                           "report it (statistics.interval.ms).",
                           {"topic", "partition"}},
    [PW_M_SKIPPED_DONE] = {"pw_redelivered_skipped_total", M_COUNTER,
                           "Redelivered request messages skipped because they were done "
                           "already (commit metadata).",
                           {NULL}},
};

/* Upper bounds of histogram buckets, in seconds (+Inf is the count). */
static const double bounds[METRICS_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                               2.5,   5,    10,    30,    60,  120,  300};

typedef struct series {
    pw_metric m;
    char labels[PW_METRICS_LABELS_MAX][METRICS_LABEL_MAX + 1];
    double value; /* counter, gauge; histogram: sum */
    unsigned long long count, buckets[METRICS_BUCKETS];
} series;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static series **all;
static size_t n_all, cap_all;
static unsigned long long dropped;

static size_t label_count(pw_metric m)
{
    size_t n = 0;
    while (n < PW_METRICS_LABELS_MAX && families[m].labels[n])
        n++;
    return n;
}

/* The series of m with these labels, created when new; NULL past the bound or out of memory
 * (counted as dropped).  Caller holds the lock. */
static series *find(pw_metric m, const char *const *vals)
{
    size_t nl = label_count(m);
    for (size_t i = 0; i < n_all; i++) {
        series *s = all[i];
        if (s->m != m) continue;
        size_t k = 0;
        while (k < nl && !strncmp(s->labels[k], vals[k] ? vals[k] : "", METRICS_LABEL_MAX))
            k++;
        if (k == nl) return s;
    }
    if (n_all == PW_METRICS_SERIES_MAX) {
        dropped++;
        return NULL;
    }
    if (n_all == cap_all) {
        size_t ncap = cap_all ? cap_all * 2 : 64;
        series **grown = realloc(all, ncap * sizeof *grown);
        if (!grown) {
            dropped++;
            return NULL;
        }
        all = grown;
        cap_all = ncap;
    }
    series *s = calloc(1, sizeof *s);
    if (!s) {
        dropped++;
        return NULL;
    }
    s->m = m;
    for (size_t k = 0; k < nl; k++)
        snprintf(s->labels[k], sizeof s->labels[k], "%s", vals[k] ? vals[k] : "");
    all[n_all++] = s;
    return s;
}

static void update(pw_metric m, double v, int set, const char *l1, const char *l2,
                   const char *l3)
{
    if (m >= PW_M_FAMILIES) return;
    const char *vals[PW_METRICS_LABELS_MAX] = {l1, l2, l3};
    pthread_mutex_lock(&lock);
    series *s = find(m, vals);
    if (s) s->value = set ? v : s->value + v;
    pthread_mutex_unlock(&lock);
}

void pw_metrics_add(pw_metric m, double v, const char *l1, const char *l2, const char *l3)
{
    update(m, v, 0, l1, l2, l3);
}

void pw_metrics_set(pw_metric m, double v, const char *l1, const char *l2, const char *l3)
{
    update(m, v, 1, l1, l2, l3);
}

void pw_metrics_observe(pw_metric m, double seconds, const char *l1)
{
    if (m >= PW_M_FAMILIES || families[m].type != M_HISTOGRAM) return;
    const char *vals[PW_METRICS_LABELS_MAX] = {l1, NULL, NULL};
    pthread_mutex_lock(&lock);
    series *s = find(m, vals);
    if (s) {
        s->value += seconds;
        s->count++;
        for (size_t b = 0; b < METRICS_BUCKETS; b++)
            if (seconds <= bounds[b]) s->buckets[b]++;
    }
    pthread_mutex_unlock(&lock);
}

void pw_metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_all; i++)
        free(all[i]);
    free(all);
    all = NULL;
    n_all = cap_all = 0;
    dropped = 0;
    pthread_mutex_unlock(&lock);
}

const char *pw_metrics_status_class(long status)
{
    switch (status / 100) {
    case 1: return "1xx";
    case 2: return "2xx";
    case 3: return "3xx";
    case 4: return "4xx";
    case 5: return "5xx";
    default: return "transport";
    }
}

/* ---- exposition ---- */

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap + (size_t)n + 1) * 2;
        char *grown = realloc(b->p, ncap);
        if (!grown) {
            b->oom = 1;
            return;
        }
        b->p = grown;
        b->cap = ncap;
    }
}

/* A label value as the format wants it: backslash, double quote and newline escaped. */
static void put_value(buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            put(b, "\\%c", *v);
        else if (*v == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *v);
    }
}

/* {a="x",b="y"[,le="..."]} or nothing. */
static void put_labels(buf *b, const series *s, const char *le)
{
    size_t nl = label_count(s->m);
    if (!nl && !le) return;
    put(b, "{");
    for (size_t k = 0; k < nl; k++) {
        put(b, "%s%s=\"", k ? "," : "", families[s->m].labels[k]);
        put_value(b, s->labels[k]);
        put(b, "\"");
    }
    if (le) put(b, "%sle=\"%s\"", nl ? "," : "", le);
    put(b, "}");
}

static int series_cmp(const void *a, const void *b)
{
    const series *x = *(series *const *)a, *y = *(series *const *)b;
    if (x->m != y->m) return x->m < y->m ? -1 : 1;
    for (size_t k = 0; k < PW_METRICS_LABELS_MAX; k++) {
        int c = strcmp(x->labels[k], y->labels[k]);
        if (c) return c;
    }
    return 0;
}

char *pw_metrics_render(size_t *len)
{
    buf b = {.cap = 4096};
    if (!(b.p = malloc(b.cap))) return NULL;
    b.p[0] = '\0';
    pthread_mutex_lock(&lock);
    qsort(all, n_all, sizeof *all, series_cmp);
    size_t i = 0;
    for (int m = 0; m < PW_M_FAMILIES; m++) {
        const family *f = &families[m];
        put(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
            f->type == M_COUNTER ? "counter" : f->type == M_GAUGE ? "gauge" : "histogram");
        for (; i < n_all && all[i]->m == (pw_metric)m; i++) {
            const series *s = all[i];
            if (f->type != M_HISTOGRAM) {
                put(&b, "%s", f->name);
                put_labels(&b, s, NULL);
                put(&b, " %.17g\n", s->value);
                continue;
            }
            for (size_t k = 0; k < METRICS_BUCKETS; k++) {
                char le[32];
                snprintf(le, sizeof le, "%g", bounds[k]);
                put(&b, "%s_bucket", f->name);
                put_labels(&b, s, le);
                put(&b, " %llu\n", s->buckets[k]);
            }
            put(&b, "%s_bucket", f->name);
            put_labels(&b, s, "+Inf");
            put(&b, " %llu\n%s_sum", s->count, f->name);
            put_labels(&b, s, NULL);
            put(&b, " %.17g\n%s_count", s->value, f->name);
            put_labels(&b, s, NULL);
            put(&b, " %llu\n", s->count);
        }
    }
    put(&b, "# HELP pw_metrics_dropped_series_total Updates lost to the series bound.\n"
            "# TYPE pw_metrics_dropped_series_total counter\n"
            "pw_metrics_dropped_series_total %llu\n",
        dropped);
    pthread_mutex_unlock(&lock);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
