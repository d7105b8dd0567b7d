/* azure.c: ARM and Kusto management calls: tokens, retries with full-jitter backoff, Retry-After,
 * ARM long-running operations, pacing and the call deadline, on top of pw_http, pw_aad and
 * pw_pace. */
#include "pw/azure.h"
#include "pw/config.h"
#include "pw/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aad.h"
#include "pw/reply.h"
#include "http.h"
#include "pace.h"
#include "pw/log.h"
#include "pw/metrics.h"

enum { MAX_PATH_BYTES = PW_AZ_ARM_PATH_MAX, MAX_CSL_BYTES = 1 << 20, MAX_ID_BYTES = 128 };

#define LRO_POLL_MIN_MS 100 /* the shortest wait between polls (and poll retries) */

typedef enum phase { PH_MAIN, PH_POLL, PH_FINAL } phase;

typedef struct az_call az_call;

struct az_call {
    pw_azure *az;
    az_call *prev, *next;
    int kusto;
    char method[8];
    char *url;      /* main request (also the final GET of a PUT/PATCH) */
    char *body;     /* JSON text or NULL */
    char *audience; /* token audience */
    char *poll_url;
    char poll_shown[2048]; /* poll_url redacted, for logs and messages (it came from Azure) */
    int poll_async;        /* 1: Azure-AsyncOperation status body; 0: Location */
    phase ph;
    unsigned phase_attempts; /* attempts in the current phase (retries are per phase) */
    unsigned polls;
    int refreshed; /* the one 401-driven token refresh was used */
    unsigned token_gen;
    const char *last_cause; /* PW_AZ_CODE_* of the last retryable failure, NULL after progress */
    pw_http_xfer *xfer;
    pw_aad_wait *wait;
    pw_timer *timer;    /* start / retry / poll delay */
    pw_timer *deadline; /* NULL without a deadline */
    uint64_t deadline_ms;
    uint64_t started_ms;
    char request_id[MAX_ID_BYTES];
    pw_azure_progress_cb on_progress;
    pw_azure_progress_cb on_queued;
    pw_azure_done_cb on_done;
    void *ctx;
    long queue_timeout_ms; /* > 0: queue time stops the deadline (pw_azure_call) */
    uint64_t queued_at;    /* when the current wait for admission began; 0: not waiting */
    uint64_t left_ms;      /* deadline time left when that wait began */
    int queue_expired;     /* the deadline timer fired for the queue bound */
    int read_only;         /* pw_azure_call.read_only */
    int no_final_get;      /* pw_azure_call.no_final_get */
    pw_pace_ticket ticket; /* the current request's admission (pace.h) */
    unsigned queued_told;  /* bit per pw_azure_pace_kind: on_queued was called for it */
    pw_azure_result res;
};

struct pw_azure {
    pw_loop *loop;
    pw_http *http;
    pw_aad *aad;
    pw_azure_config cfg; /* string fields below are owned copies */
    char *arm_endpoint;  /* no trailing slash */
    char *arm_api_version;
    az_call *calls;
    size_t n_calls;
    pw_pace *pace;
    pw_timer *pace_timer; /* admits what can go when it fires */
    uint64_t pace_due_ms;
    pw_aad_wait *check_wait; /* pw_azure_check_credential's */
    pw_azure_check_cb check_cb;
    void *check_ctx;
    /* Requests of kinds that are not paced (the budget set to 0), for pw_azure_stats. */
    uint64_t unpaced_sent[PW_AZ_PACE_KINDS], unpaced_429[PW_AZ_PACE_KINDS];
};

static const char *const pace_names[PW_AZ_PACE_KINDS] = {"ARM write budget", "ARM read budget",
                                                         "Kusto cluster concurrency"};
static const char *const pace_queued[PW_AZ_PACE_KINDS] = {
    "queued: ARM write budget", "queued: ARM read budget", "queued: Kusto cluster concurrency"};

void pw_azure_config_defaults(pw_azure_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->authority_host = PW_AZ_AUTHORITY_HOST;
    cfg->arm_endpoint = "https://management.azure.com";
    cfg->arm_api_version = "2025-02-14";
    cfg->connect_timeout_ms = 10000;
    cfg->request_timeout_ms = 60000;
    cfg->max_response_bytes = 4u << 20;
    cfg->max_attempts = 8;
    cfg->backoff_base_ms = 500;
    cfg->backoff_max_ms = 30000;
    cfg->max_retry_after_ms = 60000;
    cfg->lro_poll_default_ms = 5000;
    cfg->token_refresh_margin_ms = 300000;
    cfg->max_host_connections = PW_CONFIG_HOST_CONNECTIONS_MAX;
    /* ARM's documented defaults per principal and subscription (token-bucket model, 2024). */
    cfg->arm_write_bucket = 200;
    cfg->arm_write_refill_per_s = 10;
    cfg->arm_read_bucket = 250;
    cfg->arm_read_refill_per_s = 25;
    /* Kusto's default workload group admits Cores-Per-Node x 10 concurrent requests (request
     * rate limit policy), queries and commands of every caller together: 20 on the smallest
     * 2-core SKUs.  8 leaves more than half of that to everyone else (and matches azure-sim's
     * kustoMaxConcurrent); raise it for big clusters the worker has to itself. */
    cfg->kusto_concurrent_max = 8;
}

static const char *host_class(const az_call *c)
{
    return c->kusto ? PW_METRICS_HOST_KUSTO : PW_METRICS_HOST_ARM;
}

static void count_poll(az_call *c)
{
    c->polls++;
    pw_metrics_add(PW_M_AZURE_LRO_POLLS, 1, NULL, NULL, NULL);
}

static const char *rid(const az_call *c)
{
    return c->request_id[0] ? c->request_id : NULL;
}

/* A URL's host and path (without the query) for a log line's "host" and "path" keys. */
typedef struct url_shown {
    char host[256], path[2048];
} url_shown;

static const url_shown *url_parts(const char *url, url_shown *u)
{
    u->host[0] = u->path[0] = '\0';
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p) return u;
    p += 3;
    size_t h = strcspn(p, "/?#");
    snprintf(u->host, sizeof u->host, "%.*s", (int)(h < sizeof u->host ? h : sizeof u->host - 1),
             p);
    p += h;
    size_t n = strcspn(p, "?#");
    snprintf(u->path, sizeof u->path, "%.*s", (int)(n < sizeof u->path ? n : sizeof u->path - 1),
             p);
    return u;
}

static int valid_origin(const char *url)
{
    /* An https origin: scheme and host (optional port), nothing after but an optional "/". */
    if (!url || strncasecmp(url, "https://", 8) != 0 || strlen(url) > 512) return 0;
    const char *rest = url + 8;
    if (!*rest || strpbrk(rest, "@?#\\ ")) return 0;
    const char *slash = strchr(rest, '/');
    return !slash || slash[1] == '\0';
}

static char *strip_slash_dup(const char *s)
{
    char *d = strdup(s);
    if (d) {
        size_t n = strlen(d);
        while (n > 8 && d[n - 1] == '/')
            d[--n] = '\0';
    }
    return d;
}

pw_azure *pw_azure_new(pw_loop *loop, const pw_azure_config *cfg, char *err, size_t errlen)
{
    pw_azure_credential cred;
    if (pw_azure_credential_select(cfg, &cred, err, errlen)) return NULL;
    if (cred != PW_AZ_CRED_MANAGED && strpbrk(cfg->tenant_id, "/?#@ ")) {
        pw_err_set(err, errlen, "azure tenant id malformed");
        return NULL;
    }
    pw_azure_config d;
    pw_azure_config_defaults(&d);
    const char *authority = cfg->authority_host ? cfg->authority_host : d.authority_host;
    const char *arm = cfg->arm_endpoint ? cfg->arm_endpoint : d.arm_endpoint;
    if (!valid_origin(authority)) {
        pw_err_set(err, errlen, "azure authority host must be an https://host URL");
        return NULL;
    }
    if (!valid_origin(arm)) {
        pw_err_set(err, errlen, "azure ARM endpoint must be an https://host URL");
        return NULL;
    }
    pw_azure *az = calloc(1, sizeof *az);
    if (!az) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    az->loop = loop;
    az->cfg = *cfg;
#define DEF(f)                                                                                     \
    if (az->cfg.f <= 0) az->cfg.f = d.f
    DEF(connect_timeout_ms);
    DEF(request_timeout_ms);
    DEF(max_response_bytes);
    DEF(max_attempts);
    DEF(backoff_max_ms);
    DEF(lro_poll_default_ms);
    DEF(max_host_connections);
#undef DEF
    if (az->cfg.backoff_base_ms < 0) az->cfg.backoff_base_ms = d.backoff_base_ms;
    if (az->cfg.max_retry_after_ms < 0) az->cfg.max_retry_after_ms = d.max_retry_after_ms;
    if (az->cfg.token_refresh_margin_ms < 0)
        az->cfg.token_refresh_margin_ms = d.token_refresh_margin_ms;
        /* Pacing: 0 turns it off, below 0 means the default; a bucket needs a refill. */
#define DEF_NEG(f)                                                                                 \
    if (az->cfg.f < 0) az->cfg.f = d.f
    DEF_NEG(arm_write_bucket);
    DEF_NEG(arm_read_bucket);
    DEF_NEG(kusto_concurrent_max);
#undef DEF_NEG
    if (az->cfg.arm_write_refill_per_s <= 0)
        az->cfg.arm_write_refill_per_s = d.arm_write_refill_per_s;
    if (az->cfg.arm_read_refill_per_s <= 0) az->cfg.arm_read_refill_per_s = d.arm_read_refill_per_s;
    pw_pace_limits lim = {.arm_write_bucket = az->cfg.arm_write_bucket,
                          .arm_write_refill_per_s = az->cfg.arm_write_refill_per_s,
                          .arm_read_bucket = az->cfg.arm_read_bucket,
                          .arm_read_refill_per_s = az->cfg.arm_read_refill_per_s,
                          .kusto_concurrent_max = az->cfg.kusto_concurrent_max,
                          .max_retry_after_ms = az->cfg.max_retry_after_ms};
    /* ARM counts per principal: a system-assigned identity has no client id here. */
    az->pace = pw_pace_new(&lim, cfg->client_id && *cfg->client_id ? cfg->client_id
                                                                    : "managed-identity");
    az->cfg.authority_host = authority;
    az->arm_endpoint = strip_slash_dup(arm);
    az->arm_api_version = strdup(cfg->arm_api_version ? cfg->arm_api_version : d.arm_api_version);
    if (!az->arm_endpoint || !az->arm_api_version || !az->pace) {
        pw_err_set(err, errlen, "out of memory");
        pw_azure_free(az);
        return NULL;
    }
    az->cfg.arm_endpoint = az->arm_endpoint;
    az->cfg.arm_api_version = az->arm_api_version;
    pw_http_opts ho = {.ca_file = cfg->ca_file,
                       .connect_to = cfg->connect_to,
                       .connect_to_count = cfg->connect_to_count,
                       .connect_timeout_ms = az->cfg.connect_timeout_ms,
                       .max_host_connections = az->cfg.max_host_connections,
                       .max_response_bytes = az->cfg.max_response_bytes,
                       .secret = cred == PW_AZ_CRED_SECRET ? cfg->client_secret : NULL,
                       .plain_http_endpoint =
                           cred == PW_AZ_CRED_MANAGED ? pw_aad_identity_endpoint(cfg) : NULL};
    az->http = pw_http_new(loop, &ho, err, errlen);
    if (az->http) az->aad = pw_aad_new(loop, az->http, &az->cfg, err, errlen);
    /* Secrets, tenant and client id now live in pw_aad; drop the borrowed pointers. */
    az->cfg.client_secret = az->cfg.client_certificate_password = NULL;
    az->cfg.client_certificate_path = az->cfg.federated_token_file = NULL;
    az->cfg.imds_endpoint = az->cfg.identity_endpoint = az->cfg.identity_header = NULL;
    az->cfg.credential = NULL;
    az->cfg.tenant_id = az->cfg.client_id = NULL;
    az->cfg.authority_host = NULL;
    az->cfg.ca_file = NULL;
    az->cfg.connect_to = NULL;
    if (!az->aad) {
        pw_azure_free(az);
        return NULL;
    }
    return az;
}

/* Frees a call's memory; it must hold no transfer, wait or timer and be on no list. */
static void call_discard(az_call *c)
{
    free(c->url);
    free(c->body);
    free(c->audience);
    free(c->poll_url);
    free(c);
}

static void call_release(az_call *c)
{
    pw_azure *az = c->az;
    if (c->prev)
        c->prev->next = c->next;
    else
        az->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    az->n_calls--;
    pw_http_cancel(az->http, c->xfer);
    pw_aad_cancel(az->aad, c->wait);
    pw_pace_cancel(az->pace, &c->ticket);
    pw_loop_timer_cancel(az->loop, c->timer);
    pw_loop_timer_cancel(az->loop, c->deadline);
    call_discard(c);
}

void pw_azure_free(pw_azure *az)
{
    if (!az) return;
    while (az->calls)
        call_release(az->calls);
    pw_loop_timer_cancel(az->loop, az->pace_timer);
    pw_pace_free(az->pace);
    pw_aad_free(az->aad);
    pw_http_free(az->http);
    free(az->arm_endpoint);
    free(az->arm_api_version);
    free(az);
}

size_t pw_azure_in_flight(const pw_azure *az)
{
    return az ? az->n_calls : 0;
}

void pw_azure_stats_get(const pw_azure *az, pw_azure_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!az) return;
    pw_pace_stats(az->pace, pw_loop_now_ms(az->loop), out);
    for (int k = 0; k < PW_AZ_PACE_KINDS; k++) {
        out->admitted[k] += az->unpaced_sent[k];
        out->throttled[k] += az->unpaced_429[k];
    }
}

size_t pw_azure_budgets(const pw_azure *az, pw_azure_budget *out, size_t max)
{
    return az ? pw_pace_budgets(az->pace, pw_loop_now_ms(az->loop), out, max) : 0;
}

/* ---- completion ---- */

static void finish(az_call *c, const char *code, int retryable, json_t *body, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void finish(az_call *c, const char *code, int retryable, json_t *body, const char *fmt, ...)
{
    pw_azure *az = c->az;
    pw_azure_result *r = &c->res;
    char why[sizeof r->message] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
    }
    if (c->poll_url) snprintf(r->operation_url, sizeof r->operation_url, "%s", c->poll_shown);
    if (code && c->ph == PH_FINAL) {
        /* The operation reported Succeeded: only the read of the result failed. */
        pw_log(PW_LOG_INFO, rid(c), "azure.lro.final_get_failed",
               "%s %s: the operation succeeded; reading the result failed: %s: %s", c->method,
               c->url, code, why);
        code = NULL;
        why[0] = '\0';
        r->azure_code[0] = '\0';
    } else if (code && c->ph == PH_POLL && strcmp(code, PW_AZ_CODE_LRO_FAILED) != 0) {
        /* ARM accepted the write; whatever stopped the polling, the change may be applied. */
        char cause[sizeof r->message];
        snprintf(cause, sizeof cause, "%s: %s", code, why);
        snprintf(why, sizeof why,
                 "the change was accepted but its outcome is unknown (%.480s); operation %.400s",
                 cause, c->poll_shown);
        code = PW_AZ_CODE_OUTCOME_UNKNOWN;
        retryable = 1;
    }
    r->ok = code == NULL;
    r->code = code;
    r->retryable = code ? retryable : 0;
    r->body = body;
    if (fmt || !code) {
        /* Formatted first (the arguments may point into r->message itself).  Azure's text
         * was redacted where it came in; this pass catches what the formatting put together
         * (and cannot be undone by a cut: redacting never leaves a prefix). */
        pw_http_redact(az->http, r->message, sizeof r->message, why, strlen(why));
        pw_reply_scrub(r->message); /* a cut at the buffer's size may split a character */
    }
    pw_http_redact(az->http, r->azure_code, sizeof r->azure_code, r->azure_code,
                   strlen(r->azure_code));
    r->duration_ms = pw_loop_now_ms(az->loop) - c->started_ms;
    pw_metrics_observe(PW_M_AZURE_CALL_SECONDS, (double)r->duration_ms / 1000, host_class(c));
    url_shown u;
    url_parts(c->url, &u);
    pw_log_field f[] = {PW_LOG_S("method", c->method),
                        PW_LOG_S("host", u.host),
                        PW_LOG_S("path", u.path),
                        PW_LOG_N("status", r->http_status),
                        PW_LOG_S("azureRequestId", r->request_id),
                        PW_LOG_S("clientRequestId", r->client_request_id),
                        PW_LOG_N("attempts", r->attempts),
                        PW_LOG_N("durationMs", r->duration_ms),
                        PW_LOG_S("code", code ? code : "")};
    size_t nf = sizeof f / sizeof f[0] - (code ? 0 : 1);
    if (code)
        pw_log_kv(
            PW_LOG_WARN, rid(c), "azure.call.failed", f, nf,
            "%s %s failed: %s (HTTP %d, azure code %s, attempts %u, %llu ms, client request id "
            "%s): %s",
            c->method, c->url, code, r->http_status, r->azure_code[0] ? r->azure_code : "-",
            r->attempts, (unsigned long long)r->duration_ms, r->client_request_id, r->message);
    else /* (debug: every operation's reply events carry its ids, attempts and time) */
        pw_log_kv(PW_LOG_DEBUG, rid(c), "azure.call.ok", f, nf,
                  "%s %s succeeded (HTTP %d, attempts %u, %llu ms, azure request id %s)", c->method,
                  c->url, r->http_status, r->attempts, (unsigned long long)r->duration_ms,
                  r->request_id[0] ? r->request_id : "-");
    pw_azure_done_cb cb = c->on_done;
    void *ctx = c->ctx;
    pw_azure_result copy = *r;
    /* Release first so the callback sees the call gone from pw_azure_in_flight. */
    call_release(c);
    cb(ctx, &copy);
    json_decref(body);
}

static void deadline_fire(pw_loop *loop, void *ctx)
{
    az_call *c = ctx;
    (void)loop;
    c->deadline = NULL;
    if (c->queue_expired) {
        finish(c, PW_AZ_CODE_DEADLINE, 1, NULL,
               "queued longer than %ld ms (worker.queue.timeout.ms) for the %s",
               c->queue_timeout_ms,
               c->ticket.gate ? pace_names[pw_pace_kind(c->ticket.gate)] : "Azure budget");
        return;
    }
    if (!c->last_cause && c->wait) {
        /* Waiting for a token whose fetch is backing off: that is the cause. */
        const char *msg = NULL;
        const char *cause = pw_aad_retry_cause(c->az->aad, c->audience, &msg);
        if (cause) {
            c->last_cause = cause;
            snprintf(c->res.message, sizeof c->res.message, "%s", msg ? msg : cause);
        }
    }
    /* Documented choice: when the deadline cuts a call that was backing off from
     * throttling or unavailability, the reply names that cause; otherwise DeadlineExceeded. */
    if (c->last_cause)
        finish(c, c->last_cause, 1, NULL, "deadline reached while retrying: %s",
               c->res.message[0] ? c->res.message : c->last_cause);
    else if (c->ticket.gate && !c->ticket.admitted)
        finish(c, PW_AZ_CODE_DEADLINE, 1, NULL, "deadline reached while queued for the %s",
               pace_names[pw_pace_kind(c->ticket.gate)]);
    else
        finish(c, PW_AZ_CODE_DEADLINE, 1, NULL, "deadline reached (%s)",
               c->ph == PH_POLL ? "long-running operation still running" : "no answer in time");
}

/* ---- sending ---- */

static void send_now(az_call *c);
static void on_response(void *ctx, const pw_http_resp *r);

/* ---- pacing (pace.h): admission before every HTTP request to ARM or a cluster ---- */

static void pace_fire(pw_loop *loop, void *ctx);

/* Makes the pacing timer fire no later than when (absolute, loop clock). */
static void pace_at(pw_azure *az, uint64_t when)
{
    uint64_t now = pw_loop_now_ms(az->loop);
    if (when < now) when = now;
    if (az->pace_timer && az->pace_due_ms <= when) return;
    pw_loop_timer_cancel(az->loop, az->pace_timer);
    az->pace_timer = pw_loop_timer_add(az->loop, when - now, pace_fire, az);
    az->pace_due_ms = when;
    if (!az->pace_timer) /* queued calls then wait for the next answer or their deadline */
        pw_log(PW_LOG_WARN, NULL, "azure.pace.timer", "out of memory arming the pacing timer");
}

static void pace_schedule(pw_azure *az)
{
    uint64_t next = pw_pace_next_ms(az->pace, pw_loop_now_ms(az->loop));
    if (next != UINT64_MAX) pace_at(az, next);
}

/* Sends what may go now, oldest first per budget. */
static void pace_fire(pw_loop *loop, void *ctx)
{
    pw_azure *az = ctx;
    az->pace_timer = NULL;
    uint64_t now = pw_loop_now_ms(loop);
    pw_pace_ticket *t;
    while ((t = pw_pace_pop_ready(az->pace, now)))
        send_now(t->owner);
    pace_schedule(az);
}

/* The subscription id of an ARM URL's path into out ("" when it names none: tenant level). */
static void arm_subscription(const char *url, char *out, size_t len)
{
    out[0] = '\0';
    const char *p = url ? strcasestr(url, "/subscriptions/") : NULL;
    if (!p) return;
    p += strlen("/subscriptions/");
    size_t n = strcspn(p, "/?#");
    if (n >= len) n = len - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* With call.queue_timeout_ms, the deadline stops while a request waits for admission: the
 * deadline timer then guards the queue bound instead, and the time left is kept. */
static void queue_pause(az_call *c, uint64_t now)
{
    pw_azure *az = c->az;
    if (c->queue_timeout_ms <= 0 || !c->deadline_ms || c->queued_at) return;
    long bound = c->queue_timeout_ms - (long)c->res.queued_ms;
    if (bound < 0) bound = 0;
    c->queued_at = now;
    c->left_ms = c->deadline_ms > now ? c->deadline_ms - now : 0;
    pw_loop_timer_cancel(az->loop, c->deadline);
    c->deadline_ms = now + (uint64_t)bound;
    c->queue_expired = 1;
    c->deadline = pw_loop_timer_add(az->loop, (uint64_t)bound, deadline_fire, c);
}

/* Admitted after a wait: the deadline runs again with the time it had left. */
static void queue_resume(az_call *c, uint64_t now)
{
    pw_azure *az = c->az;
    if (!c->queued_at) return;
    c->res.queued_ms += now - c->queued_at;
    c->queued_at = 0;
    c->queue_expired = 0;
    pw_loop_timer_cancel(az->loop, c->deadline);
    c->deadline_ms = now + c->left_ms;
    c->deadline = pw_loop_timer_add(az->loop, c->left_ms, deadline_fire, c);
}

static void tell_queued(az_call *c, pw_pace_gate *g, uint64_t now)
{
    pw_azure_pace_kind kind = pw_pace_kind(g);
    double level = pw_pace_level(g, now);
    size_t ahead = pw_pace_ahead(&c->ticket);
    pw_log(PW_LOG_DEBUG, rid(c), "azure.pace.queued",
           "%s %s: queued for the %s (level %.1f of %.0f, %zu ahead)", c->method,
           c->ph == PH_POLL ? c->poll_shown : c->url, pace_names[kind], level, pw_pace_capacity(g),
           ahead);
    if (!c->on_queued || (c->queued_told & (1u << kind))) return;
    c->queued_told |= 1u << kind;
    pw_azure_progress p = {.lro_status = NULL,
                           .polls = c->polls,
                           .percent_complete = -1,
                           .queued = pace_queued[kind],
                           .queued_kind = kind,
                           .level = level,
                           .capacity = pw_pace_capacity(g),
                           .ahead = ahead};
    c->on_queued(c->ctx, &p);
}

/* The budget the call's next request counts against. */
static pw_azure_pace_kind call_kind(const az_call *c)
{
    if (c->kusto) return PW_AZ_PACE_KUSTO;
    return c->ph == PH_MAIN && strcmp(c->method, "GET") != 0 ? PW_AZ_PACE_ARM_WRITE
                                                             : PW_AZ_PACE_ARM_READ;
}

/* Admits the request the call is about to send: 1 when it may go (or is not paced), 0 when it
 * was queued (pace_fire sends it), -1 when the call has been finished. */
static int admit(az_call *c, int front)
{
    pw_azure *az = c->az;
    if (c->ticket.gate) return c->ticket.admitted;
    pw_azure_pace_kind kind = call_kind(c);
    char scope[PW_PACE_SCOPE_MAX];
    if (c->kusto)
        snprintf(scope, sizeof scope, "%s", c->audience);
    else
        arm_subscription(c->ph == PH_POLL ? c->poll_url : c->url, scope, sizeof scope);
    uint64_t now = pw_loop_now_ms(az->loop);
    pw_pace_gate *g;
    if (pw_pace_gate_get(az->pace, kind, scope, now, &g) < 0) {
        finish(c, PW_AZ_CODE_THROTTLED, 1, NULL,
               "more than %d ARM subscriptions and Kusto clusters are paced at once",
               PW_PACE_MAX_GATES);
        return -1;
    }
    if (!g) {
        az->unpaced_sent[kind]++;
        return 1;
    }
    c->ticket.owner = c;
    if (pw_pace_acquire(az->pace, g, &c->ticket, front, now)) return 1;
    queue_pause(c, now);
    tell_queued(c, g, now);
    pace_schedule(az);
    return 0;
}

static void timer_send(pw_loop *loop, void *ctx)
{
    az_call *c = ctx;
    (void)loop;
    c->timer = NULL;
    send_now(c);
}

static void send_with(az_call *c, const char *token, unsigned gen);

static void on_token(void *ctx, const pw_aad_result *t)
{
    az_call *c = ctx;
    c->wait = NULL;
    if (!t->token) {
        c->res.http_status = t->http_status;
        c->res.azure_code[0] = '\0';
        finish(c, t->code, t->retryable, NULL, "token: %s", t->message ? t->message : "failed");
        return;
    }
    send_with(c, t->token, t->gen);
}

/* Sends the current phase's request, first waiting for a token when none is cached. */
static void send_now(az_call *c)
{
    pw_azure *az = c->az;
    unsigned gen = 0;
    /* Due timers run in order: the start (or a retry) can come up after the deadline did. */
    if (c->ticket.gate && c->ticket.admitted) queue_resume(c, pw_loop_now_ms(az->loop));
    if (c->deadline_ms && pw_loop_now_ms(az->loop) >= c->deadline_ms) {
        pw_loop_timer_cancel(az->loop, c->deadline);
        deadline_fire(az->loop, c);
        return;
    }
    if (admit(c, 0) <= 0) return; /* queued (pace_fire comes back here) or finished */
    const char *token = pw_aad_cached(az->aad, c->audience, &gen);
    if (!token) {
        c->wait = pw_aad_get(az->aad, c->audience, rid(c), c->deadline_ms, on_token, c);
        if (!c->wait) finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "out of memory");
        return;
    }
    send_with(c, token, gen);
}

static void send_with(az_call *c, const char *token, unsigned gen)
{
    pw_azure *az = c->az;
    c->token_gen = gen;
    const char *url = c->ph == PH_POLL ? c->poll_url : c->url;
    const char *method = c->ph == PH_MAIN ? c->method : "GET";
    char *auth = NULL;
    if (asprintf(&auth, "Authorization: Bearer %s", token) < 0) {
        finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "out of memory");
        return;
    }
    char crid[160];
    snprintf(crid, sizeof crid, "x-ms-client-request-id: %s", c->res.client_request_id);
    const char *headers[6];
    size_t nh = 0;
    headers[nh++] = auth;
    headers[nh++] = "Accept: application/json";
    headers[nh++] = crid;
    int has_body = c->ph == PH_MAIN && c->body;
    if (has_body) headers[nh++] = "Content-Type: application/json; charset=utf-8";
    if (c->kusto) headers[nh++] = "x-ms-app: adx-policy-worker";
    long timeout = az->cfg.request_timeout_ms;
    if (c->deadline_ms) {
        uint64_t now = pw_loop_now_ms(az->loop);
        long left = c->deadline_ms > now ? (long)(c->deadline_ms - now) : 1;
        if (left < timeout) timeout = left;
    }
    pw_http_req req = {.method = method,
                       .url = url,
                       .headers = headers,
                       .header_count = nh,
                       .body = has_body ? c->body : NULL,
                       .body_len = has_body ? strlen(c->body) : 0,
                       .timeout_ms = timeout};
    c->phase_attempts++;
    if (c->ph == PH_MAIN) c->res.attempts++;
    url_shown u;
    url_parts(url, &u);
    pw_log_kv(PW_LOG_DEBUG, rid(c), "azure.http.send",
              (pw_log_field[]){PW_LOG_S("method", method), PW_LOG_S("host", u.host),
                               PW_LOG_S("path", u.path), PW_LOG_N("attempt", c->phase_attempts)},
              4, "%s %s (attempt %u)", method, url, c->phase_attempts);
    c->xfer = pw_http_start(az->http, &req, on_response, c);
    explicit_bzero(auth, strlen(auth)); /* not memset: a store before free may be dropped */
    free(auth);
    if (!c->xfer) finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "out of memory");
}

/* Schedules another attempt of the current phase, or fails with cause when none is left. */
static void retry_or_fail(az_call *c, const char *cause, const pw_http_resp *r, const char *why)
{
    pw_azure *az = c->az;
    c->last_cause = cause;
    snprintf(c->res.message, sizeof c->res.message, "%s", why);
    /* Polling an accepted write goes on until the deadline (when there is one). */
    int polling = c->ph == PH_POLL && c->deadline_ms;
    if (!polling && c->phase_attempts >= az->cfg.max_attempts) {
        finish(c, cause, 1, NULL, "%s (gave up after %u attempts)", why, c->phase_attempts);
        return;
    }
    long delay = r ? pw_http_retry_after_ms(r->retry_after, r->retry_after_ms,
                                            r->x_ms_retry_after_ms, time(NULL))
                   : -1;
    if (delay > az->cfg.max_retry_after_ms) delay = az->cfg.max_retry_after_ms;
    uint64_t now = pw_loop_now_ms(az->loop);
    if (delay >= 0) pw_metrics_add(PW_M_AZURE_RETRY_AFTER, (double)delay / 1000, host_class(c), NULL, NULL);
    if (delay < 0) {
        delay = pw_http_backoff_ms(az->cfg.backoff_base_ms, az->cfg.backoff_max_ms,
                                   c->phase_attempts - 1, pw_http_random());
        /* Polls keep coming until the deadline: each wait at most half the time left. */
        long half = c->deadline_ms > now ? (long)((c->deadline_ms - now) / 2) : 0;
        if (polling && delay > half) delay = half > LRO_POLL_MIN_MS ? half : LRO_POLL_MIN_MS;
    }
    if (c->deadline_ms && now + (uint64_t)delay >= c->deadline_ms) {
        finish(c, cause, 1, NULL, "%s (the deadline passes before the next attempt)", why);
        return;
    }
    pw_metrics_add(PW_M_AZURE_RETRIES, 1, host_class(c), NULL, NULL);
    pw_log(PW_LOG_INFO, rid(c), "azure.retry", "%s %s: %s; attempt %u in %ld ms", c->method,
           c->ph == PH_POLL ? c->poll_shown : c->url, why, c->phase_attempts + 1, delay);
    c->timer = pw_loop_timer_add(az->loop, (uint64_t)delay, timer_send, c);
    if (!c->timer) finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "out of memory");
}

/* After a 429 that stopped the call's budget: the call goes back to the head of its queue,
 * sent when the budget's Retry-After has passed (an attempt was spent; waiting is none). */
static void retry_queued(az_call *c, const char *cause, const char *why)
{
    pw_azure *az = c->az;
    c->last_cause = cause;
    snprintf(c->res.message, sizeof c->res.message, "%.*s", (int)sizeof c->res.message - 1, why);
    int polling = c->ph == PH_POLL && c->deadline_ms;
    if (!polling && c->phase_attempts >= az->cfg.max_attempts) {
        finish(c, cause, 1, NULL, "%s (gave up after %u attempts)", why, c->phase_attempts);
        return;
    }
    int a = admit(c, 1);
    if (a < 0) return;
    uint64_t until = 0;
    if (!a && c->deadline_ms && pw_pace_blocked(c->ticket.gate, pw_loop_now_ms(az->loop), &until) &&
        until >= c->deadline_ms) {
        finish(c, cause, 1, NULL, "%s (the deadline passes before the next attempt)", why);
        return;
    }
    pw_metrics_add(PW_M_AZURE_RETRIES, 1, host_class(c), NULL, NULL);
    pw_log(PW_LOG_INFO, rid(c), "azure.retry", "%s %s: %s; attempt %u when the budget allows",
           c->method, c->ph == PH_POLL ? c->poll_shown : c->url, why, c->phase_attempts + 1);
    if (a) { /* the hold was already over: go from the loop */
        c->timer = pw_loop_timer_add(az->loop, 0, timer_send, c);
        if (!c->timer) finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "out of memory");
    }
}

/* Error codes that mean "busy or in maintenance for a while": retried whatever else the answer
 * says (see pw/azure.h, Pacing). */
static int busy_code(const char *code)
{
    return code && (strcasecmp(code, "ServiceIsInMaintenance") == 0 ||
                    strcasecmp(code, "ServiceBusy") == 0 || strcasecmp(code, "ServerBusy") == 0);
}

/* ARM 409 codes of a conflicting operation in progress, worth another try. */
static int arm_conflict_code(const char *code)
{
    return !code[0] || strcasecmp(code, "Conflict") == 0 ||
           strcasecmp(code, "AnotherOperationInProgress") == 0 ||
           strcasecmp(code, "RetryableErrorDueToAnotherOperation") == 0;
}

/* An operation that ended Failed because the cluster was busy changed nothing: sends the main
 * request again after a backoff.  0 when no attempt or time is left for it. */
static int restart_main(az_call *c, const char *why)
{
    pw_azure *az = c->az;
    if (c->res.attempts >= az->cfg.max_attempts) return 0;
    long delay = pw_http_backoff_ms(az->cfg.backoff_base_ms, az->cfg.backoff_max_ms,
                                    c->res.attempts ? c->res.attempts - 1 : 0, pw_http_random());
    if (delay < LRO_POLL_MIN_MS) delay = LRO_POLL_MIN_MS;
    uint64_t now = pw_loop_now_ms(az->loop);
    if (c->deadline_ms && now + (uint64_t)delay >= c->deadline_ms) return 0;
    pw_log(PW_LOG_INFO, rid(c), "azure.lro.restart",
           "%s %s: the operation failed (%s) and changed nothing; attempt %u in %ld ms", c->method,
           c->url, why, c->res.attempts + 1, delay);
    free(c->poll_url);
    c->poll_url = NULL;
    c->poll_shown[0] = '\0';
    c->ph = PH_MAIN;
    c->phase_attempts = c->res.attempts; /* max_attempts bounds the main request in all */
    c->last_cause = PW_AZ_CODE_UNAVAILABLE;
    snprintf(c->res.message, sizeof c->res.message, "%s", why);
    c->timer = pw_loop_timer_add(az->loop, (uint64_t)delay, timer_send, c);
    if (!c->timer) finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "out of memory");
    return 1;
}

/* Parses a success body: NULL for an empty body; *bad set when it is not JSON. */
static json_t *parse_body(const pw_http_resp *r, int *bad)
{
    *bad = 0;
    size_t i = 0;
    while (i < r->body_len && (r->body[i] == ' ' || r->body[i] == '\r' || r->body[i] == '\n'))
        i++;
    if (i == r->body_len) return NULL;
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    if (!j) *bad = 1;
    return j;
}

static int is_transient_status(long s)
{
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504 || s == 520;
}

static void start_poll(az_call *c, const pw_http_resp *r, int first)
{
    pw_azure *az = c->az;
    long delay = pw_http_retry_after_ms(r->retry_after, r->retry_after_ms, r->x_ms_retry_after_ms,
                                        time(NULL));
    if (delay > az->cfg.max_retry_after_ms) delay = az->cfg.max_retry_after_ms;
    if (delay < 0) delay = az->cfg.lro_poll_default_ms;
    /* A status URL answering "Retry-After: 0" must not turn polling into a busy loop. */
    if (delay < LRO_POLL_MIN_MS) delay = LRO_POLL_MIN_MS;
    if (first) c->ph = PH_POLL;
    c->phase_attempts = 0;
    c->timer = pw_loop_timer_add(az->loop, (uint64_t)delay, timer_send, c);
    if (!c->timer) finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "out of memory");
}

static void after_lro_success(az_call *c, json_t *body)
{
    if (strcmp(c->method, "PUT") == 0 || strcmp(c->method, "PATCH") == 0) {
        json_decref(body);
        if (c->no_final_get) { /* the caller reads the resource itself */
            finish(c, NULL, 0, NULL, NULL);
            return;
        }
        c->ph = PH_FINAL;
        c->phase_attempts = 0;
        send_now(c);
        return;
    }
    finish(c, NULL, 0, body, NULL);
}

static void report_progress(az_call *c, const char *status, int percent)
{
    if (!c->on_progress) return;
    pw_azure_progress p = {
        .lro_status = status, .polls = c->polls, .percent_complete = percent, .queued = NULL};
    c->on_progress(c->ctx, &p);
}

static void on_response(void *ctx, const pw_http_resp *r)
{
    az_call *c = ctx;
    pw_azure *az = c->az;
    c->xfer = NULL;
    int stopped = 0; /* this answer (a 429) stopped the call's budget */
    pw_metrics_add(PW_M_AZURE_REQUESTS, 1, host_class(c),
                   pw_metrics_status_class(r->fail == PW_OK ? r->status : 0), NULL);
    if (r->fail == PW_OK && r->status == 429) pw_metrics_add(PW_M_AZURE_THROTTLED, 1, host_class(c), NULL, NULL);
    if (c->ticket.gate) {
        pw_azure_pace_kind kind = pw_pace_kind(c->ticket.gate);
        int status = r->fail == PW_OK ? (int)r->status : 0;
        long ra = status == 429 ? pw_http_retry_after_ms(r->retry_after, r->retry_after_ms,
                                                         r->x_ms_retry_after_ms, time(NULL))
                                : -1;
        long fallback =
            pw_http_backoff_ms(az->cfg.backoff_base_ms, az->cfg.backoff_max_ms,
                               c->phase_attempts ? c->phase_attempts - 1 : 0, pw_http_random());
        pw_pace_answer a = {
            .status = status,
            .remaining = kind == PW_AZ_PACE_ARM_WRITE  ? pw_http_header_count(r->ratelimit_writes)
                         : kind == PW_AZ_PACE_ARM_READ ? pw_http_header_count(r->ratelimit_reads)
                                                       : -1,
            .retry_after_ms = ra,
            .fallback_ms = fallback < LRO_POLL_MIN_MS ? LRO_POLL_MIN_MS : fallback};
        stopped = pw_pace_done(az->pace, &c->ticket, &a, pw_loop_now_ms(az->loop));
        if (stopped && ra > 0)
            pw_metrics_add(PW_M_AZURE_RETRY_AFTER, (double)ra / 1000, host_class(c), NULL, NULL);
        if (stopped)
            pw_log(PW_LOG_INFO, rid(c), "azure.pace.throttled",
                   "HTTP 429: the %s waits %ld ms (Retry-After)", pace_names[kind], ra);
        pace_schedule(az); /* a place may have come free */
    } else if (r->fail == PW_OK && r->status == 429) {
        az->unpaced_429[call_kind(c)]++;
    }
    if (r->status) c->res.http_status = (int)r->status;
    if (r->fail == PW_ERR_TLS) {
        finish(c, PW_AZ_CODE_TLS, 0, NULL, "TLS: %s", r->error);
        return;
    }
    if (r->fail == PW_ERR_RANGE || r->fail == PW_ERR_INTERNAL) {
        finish(c, PW_AZ_CODE_PROTOCOL, 0, NULL, "%s", r->error);
        return;
    }
    if (r->fail == PW_ERR_TRANSPORT) {
        retry_or_fail(c, PW_AZ_CODE_UNAVAILABLE, NULL, r->error);
        return;
    }
    c->res.http_status = (int)r->status;
    if (c->ph == PH_MAIN) { /* the ids of the request that changed something, not of later GETs */
        const char *req_id = c->kusto ? r->activity_id : r->request_id;
        if (req_id[0])
            pw_http_redact(az->http, c->res.request_id, sizeof c->res.request_id, req_id,
                           strlen(req_id));
        if (!c->kusto && r->correlation_id[0])
            pw_http_redact(az->http, c->res.correlation_id, sizeof c->res.correlation_id,
                           r->correlation_id, strlen(r->correlation_id));
    }
    const char *any_id = r->request_id[0] ? r->request_id : r->activity_id;
    char shown_id[sizeof r->request_id];
    pw_http_redact(az->http, shown_id, sizeof shown_id, any_id, strlen(any_id));
    url_shown where;
    url_parts(c->ph == PH_POLL ? c->poll_shown : c->url, &where);
    pw_log_kv(PW_LOG_DEBUG, rid(c), "azure.http.done",
              (pw_log_field[]){PW_LOG_S("host", where.host), PW_LOG_S("path", where.path),
                               PW_LOG_N("status", r->status), PW_LOG_S("azureRequestId", shown_id)},
              4, "%s -> HTTP %ld (azure request id %s)", c->ph == PH_POLL ? c->poll_shown : c->url,
              r->status, shown_id[0] ? shown_id : "-");

    if (r->status == 401) {
        if (!c->refreshed) {
            /* The cached token may have been revoked or expired early: one fresh try. */
            c->refreshed = 1;
            pw_aad_invalidate(az->aad, c->audience, c->token_gen);
            pw_log(PW_LOG_INFO, rid(c), "azure.token.refresh",
                   "HTTP 401: refreshing the token once");
            send_now(c);
            return;
        }
        char code[128], msg[1024];
        int perm;
        pw_http_parse_error(az->http, r->body, r->body_len, code, sizeof code, msg, sizeof msg,
                            &perm);
        snprintf(c->res.azure_code, sizeof c->res.azure_code, "%s", code);
        finish(c, PW_AZ_CODE_AUTH, 0, NULL, "%s", msg[0] ? msg : "HTTP 401 after a token refresh");
        return;
    }
    if (r->status >= 300) {
        char code[128], msg[1024];
        int perm;
        pw_http_parse_error(az->http, r->body, r->body_len, code, sizeof code, msg, sizeof msg,
                            &perm);
        snprintf(c->res.azure_code, sizeof c->res.azure_code, "%s", code);
        char why[1200];
        snprintf(why, sizeof why, "HTTP %ld%s%s%s%s", r->status, code[0] ? " " : "", code,
                 msg[0] ? ": " : "", msg);
        const char *mapped = r->status == 403   ? PW_AZ_CODE_FORBIDDEN
                             : r->status == 404 ? PW_AZ_CODE_NOT_FOUND
                             : r->status == 429 ? PW_AZ_CODE_THROTTLED
                             : r->status >= 500 ? PW_AZ_CODE_UNAVAILABLE
                             : r->status < 400  ? PW_AZ_CODE_PROTOCOL
                                                : PW_AZ_CODE_BAD_REQUEST;
        if (c->kusto && strcasecmp(code, "BadRequest_EntityNotFound") == 0)
            mapped = PW_AZ_CODE_NOT_FOUND;
        int transient = is_transient_status(r->status);
        if (c->kusto && perm == 1) transient = 0;
        if (c->kusto && perm == 0 && r->status != 403 && r->status >= 400) transient = 1;
        /* Busy and conflicting answers (documented in pw/azure.h, Pacing). */
        int busy = 0;
        if (r->status == 409)
            busy = c->kusto ? perm != 1 || busy_code(code)
                            : arm_conflict_code(code) || busy_code(code);
        else if (busy_code(code) && r->status != 403)
            busy = 1;
        if (busy) {
            transient = 1;
            mapped = PW_AZ_CODE_UNAVAILABLE;
        }
        if (r->status == 429) transient = 1; /* throttling passes, whatever "@permanent" says */
        if (transient) {
            if (stopped && r->status == 429)
                retry_queued(c, mapped, why);
            else
                retry_or_fail(c, mapped, r, why);
            return;
        }
        finish(c, mapped, 0, NULL, "%s", msg[0] ? msg : why);
        return;
    }

    /* 2xx */
    c->last_cause = NULL;
    c->res.message[0] = '\0';
    c->res.azure_code[0] = '\0';
    int bad;
    if (c->ph == PH_MAIN && !c->kusto && (r->status == 201 || r->status == 202) &&
        (r->async_operation[0] || r->location[0])) {
        const char *u = r->async_operation[0] ? r->async_operation : r->location;
        if (!pw_http_same_origin(u, az->arm_endpoint)) {
            finish(c, PW_AZ_CODE_PROTOCOL, 0, NULL,
                   "long-running operation URL is not https on the ARM endpoint host; refused");
            return;
        }
        c->poll_url = strdup(u);
        if (!c->poll_url) {
            finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "out of memory");
            return;
        }
        pw_http_redact(az->http, c->poll_shown, sizeof c->poll_shown, u, strlen(u));
        c->poll_async = r->async_operation[0] != 0;
        pw_log(PW_LOG_INFO, rid(c), "azure.lro.start", "%s %s: HTTP %ld, polling %s (%s)",
               c->method, c->url, r->status, c->poll_shown,
               c->poll_async ? "Azure-AsyncOperation" : "Location");
        start_poll(c, r, 1);
        return;
    }
    if (c->ph == PH_POLL) {
        c->phase_attempts = 0;
        json_t *body = parse_body(r, &bad);
        if (bad) {
            finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "long-running operation status is not JSON");
            return;
        }
        c->refreshed = 0;
        if (c->poll_async) {
            json_t *st = json_object_get(body, "status");
            const char *status = json_is_string(st) ? json_string_value(st) : NULL;
            json_t *pc = json_object_get(body, "percentComplete");
            int percent = json_is_number(pc) ? (int)json_number_value(pc) : -1;
            if (!status && r->status == 202) {
                /* Not the contract (status URLs answer 200) but harmless: still running. */
                json_decref(body);
                count_poll(c);
                report_progress(c, "Running", -1);
                start_poll(c, r, 0);
                return;
            }
            if (!status) {
                json_decref(body);
                finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "operation status without a status");
                return;
            }
            count_poll(c);
            report_progress(c, status, percent);
            int term = pw_http_lro_terminal(status);
            if (term == 1) {
                after_lro_success(c, body);
            } else if (term) {
                json_t *e = json_object_get(body, "error");
                const char *ecode = json_string_value(json_object_get(e, "code"));
                const char *emsg = json_string_value(json_object_get(e, "message"));
                char shown[64], msg[sizeof c->res.message];
                pw_http_redact(az->http, c->res.azure_code, sizeof c->res.azure_code,
                               ecode ? ecode : "", ecode ? strlen(ecode) : 0);
                pw_http_redact(az->http, shown, sizeof shown, status, strlen(status));
                pw_http_redact(az->http, msg, sizeof msg, emsg ? emsg : "no message",
                               emsg ? strlen(emsg) : 10);
                json_decref(body);
                int busy = busy_code(c->res.azure_code) && term == 2;
                if (busy) {
                    char why[sizeof c->res.message];
                    snprintf(why, sizeof why, "operation %.60s: %.120s: %.800s", shown,
                             c->res.azure_code, msg);
                    if (restart_main(c, why)) return;
                }
                finish(c, PW_AZ_CODE_LRO_FAILED, busy, NULL, "operation %s: %s", shown, msg);
            } else {
                json_decref(body);
                start_poll(c, r, 0);
            }
            return;
        }
        count_poll(c);
        if (r->status == 202) {
            json_decref(body);
            report_progress(c, "Running", -1);
            start_poll(c, r, 0);
            return;
        }
        report_progress(c, "Succeeded", 100);
        after_lro_success(c, body);
        return;
    }
    json_t *body = parse_body(r, &bad);
    if (bad) {
        finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "answer is not JSON");
        return;
    }
    if (c->kusto && json_is_array(json_object_get(body, "Exceptions"))) {
        json_t *ex = json_array_get(json_object_get(body, "Exceptions"), 0);
        char msg[sizeof c->res.message];
        pw_http_redact(az->http, msg, sizeof msg,
                       json_is_string(ex) ? json_string_value(ex) : "see body",
                       json_is_string(ex) ? json_string_length(ex) : 8);
        finish(c, PW_AZ_CODE_BAD_REQUEST, 0, body, "partial failure: %s", msg);
        return;
    }
    finish(c, NULL, 0, body, NULL);
}

/* ---- starting calls ---- */

static az_call *call_new(pw_azure *az, const pw_azure_call *call, int kusto, char *err,
                         size_t errlen)
{
    if (!call || !call->on_done) {
        pw_err_set(err, errlen, "on_done callback required");
        return NULL;
    }
    az_call *c = calloc(1, sizeof *c);
    if (!c) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    c->az = az;
    c->kusto = kusto;
    c->on_done = call->on_done;
    c->on_progress = call->on_progress;
    c->on_queued = call->on_queued;
    c->ctx = call->ctx;
    c->deadline_ms = call->deadline_ms;
    c->queue_timeout_ms = call->queue_timeout_ms;
    c->read_only = call->read_only;
    c->no_final_get = call->no_final_get;
    c->started_ms = pw_loop_now_ms(az->loop);
    if (call->request_id) snprintf(c->request_id, sizeof c->request_id, "%s", call->request_id);
    char guid[37];
    pw_http_guid(guid);
    snprintf(c->res.client_request_id, sizeof c->res.client_request_id, "%s%s",
             kusto ? "PW.execute;" : "", guid);
    return c;
}

/* Links the call and arms its timers; the first send runs from the loop, never inline. */
static int call_go(pw_azure *az, az_call *c, char *err, size_t errlen)
{
    c->timer = pw_loop_timer_add(az->loop, 0, timer_send, c);
    if (!c->timer) goto oom;
    if (c->deadline_ms) {
        uint64_t now = pw_loop_now_ms(az->loop);
        c->deadline = pw_loop_timer_add(az->loop, c->deadline_ms > now ? c->deadline_ms - now : 0,
                                        deadline_fire, c);
        if (!c->deadline) {
            pw_loop_timer_cancel(az->loop, c->timer);
            goto oom;
        }
    }
    c->next = az->calls;
    if (c->next) c->next->prev = c;
    az->calls = c;
    az->n_calls++;
    url_shown u;
    url_parts(c->url, &u);
    pw_log_kv(PW_LOG_DEBUG, rid(c), "azure.call.start",
              (pw_log_field[]){PW_LOG_S("method", c->method), PW_LOG_S("host", u.host),
                               PW_LOG_S("path", u.path),
                               PW_LOG_S("clientRequestId", c->res.client_request_id)},
              4, "%s %s (client request id %s)", c->method, c->url, c->res.client_request_id);
    return 0;
oom:
    pw_err_set(err, errlen, "out of memory");
    call_discard(c);
    return -1;
}

static void check_token(void *ctx, const pw_aad_result *t)
{
    pw_azure *az = ctx;
    az->check_wait = NULL;
    pw_azure_check_cb cb = az->check_cb;
    az->check_cb = NULL;
    if (cb) cb(az->check_ctx, t->token ? NULL : t->code, t->token ? NULL : t->message);
}

int pw_azure_check_credential(pw_azure *az, pw_azure_check_cb cb, void *ctx)
{
    pw_aad_cancel(az->aad, az->check_wait);
    az->check_cb = cb;
    az->check_ctx = ctx;
    az->check_wait = pw_aad_get(az->aad, az->arm_endpoint, "credential-check", 0, check_token, az);
    return az->check_wait ? 0 : -1;
}

int pw_azure_abandon(pw_azure *az, void *ctx)
{
    for (az_call *c = az->calls; c; c = c->next) {
        if (c->ctx != ctx) continue;
        if (c->ph != PH_MAIN || (!c->read_only && c->xfer)) return 0;
        url_shown u;
        url_parts(c->url, &u);
        pw_log_kv(PW_LOG_INFO, rid(c), "azure.call.abandoned",
                  (pw_log_field[]){PW_LOG_S("method", c->method), PW_LOG_S("host", u.host),
                                   PW_LOG_S("path", u.path), PW_LOG_N("attempts", c->res.attempts)},
                  4, "%s %s abandoned after %u attempts (%s)", c->method, c->url, c->res.attempts,
                  c->xfer ? "a read on the wire" : "nothing on the wire");
        call_release(c);
        return 1;
    }
    return 0;
}

static int path_ok(const char *path)
{
    if (!path || path[0] != '/' || strlen(path) > MAX_PATH_BYTES) return 0;
    for (const char *p = path; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= ' ' || ch >= 0x7f || ch == '?' || ch == '#' || ch == '\\' || ch == '@') return 0;
    }
    if (strstr(path, "//") || strstr(path, "/../") || strstr(path, "/./")) return 0;
    size_t n = strlen(path);
    if ((n >= 3 && strcmp(path + n - 3, "/..") == 0) || (n >= 2 && strcmp(path + n - 2, "/.") == 0))
        return 0;
    return 1;
}

int pw_azure_arm(pw_azure *az, const char *method, const char *path, const json_t *body,
                 const pw_azure_call *call, char *err, size_t errlen)
{
    static const char *const methods[] = {"GET", "PUT", "PATCH", "POST", "DELETE"};
    int mok = 0;
    for (size_t i = 0; method && i < sizeof methods / sizeof methods[0]; i++)
        mok |= strcmp(method, methods[i]) == 0;
    if (!mok) {
        pw_err_set(err, errlen, "unsupported ARM method");
        return -1;
    }
    if (!path_ok(path)) {
        snprintf(err, errlen,
                 "ARM path must start with '/' and carry no query, '..' or odd characters");
        return -1;
    }
    az_call *c = call_new(az, call, 0, err, errlen);
    if (!c) return -1;
    snprintf(c->method, sizeof c->method, "%s", method);
    if (asprintf(&c->url, "%s%s?api-version=%s", az->arm_endpoint, path, az->arm_api_version) < 0)
        c->url = NULL;
    c->audience = strdup(az->arm_endpoint);
    c->body = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!c->url || !c->audience || (body && !c->body)) {
        pw_err_set(err, errlen, "out of memory");
        call_discard(c);
        return -1;
    }
    if (!pw_http_same_origin(c->url, az->arm_endpoint)) {
        pw_err_set(err, errlen, "ARM URL would leave the ARM endpoint host");
        call_discard(c);
        return -1;
    }
    return call_go(az, c, err, errlen);
}

int pw_azure_arm_next(pw_azure *az, const char *url, const pw_azure_call *call, char *err,
                      size_t errlen)
{
    size_t n = url ? strlen(url) : 0;
    if (n == 0 || n > MAX_PATH_BYTES + 1024 || !pw_http_same_origin(url, az->arm_endpoint)) {
        pw_err_set(err, errlen, "a nextLink must be a URL on the ARM endpoint's host");
        return -1;
    }
    for (const char *p = url; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= ' ' || ch >= 0x7f || ch == '#' || ch == '\\') {
            pw_err_set(err, errlen, "a nextLink holds characters no URL may hold");
            return -1;
        }
    }
    az_call *c = call_new(az, call, 0, err, errlen);
    if (!c) return -1;
    snprintf(c->method, sizeof c->method, "GET");
    c->url = strdup(url);
    c->audience = strdup(az->arm_endpoint);
    if (!c->url || !c->audience) {
        pw_err_set(err, errlen, "out of memory");
        call_discard(c);
        return -1;
    }
    return call_go(az, c, err, errlen);
}

int pw_azure_kusto_mgmt(pw_azure *az, const char *cluster_uri, const char *db, const char *csl,
                        const pw_azure_call *call, char *err, size_t errlen)
{
    char origin[600];
    if (pw_http_cluster_uri(cluster_uri, origin, sizeof origin, err, errlen) < 0) return -1;
    if (!csl || !*csl || strlen(csl) > MAX_CSL_BYTES) {
        pw_err_set(err, errlen, "Kusto command missing or too long");
        return -1;
    }
    az_call *c = call_new(az, call, 1, err, errlen);
    if (!c) return -1;
    snprintf(c->method, sizeof c->method, "POST");
    json_t *b = json_object();
    if (b && db) json_object_set_new(b, "db", json_string(db));
    if (b) json_object_set_new(b, "csl", json_string(csl));
    c->body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (asprintf(&c->url, "%s/v1/rest/mgmt", origin) < 0) c->url = NULL;
    c->audience = strdup(origin);
    if (!c->url || !c->audience || !c->body) {
        pw_err_set(err, errlen, "out of memory or invalid UTF-8 in db/csl");
        call_discard(c);
        return -1;
    }
    return call_go(az, c, err, errlen);
}
