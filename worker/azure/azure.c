/* azure.c: ARM and Kusto management calls: tokens, retries with full-jitter backoff, Retry-After,
 * ARM long-running operations and the call deadline, on top of pw_http and pw_aad. */
#include "pw/azure.h"
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
#include "pw/log.h"

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
    pw_azure_done_cb on_done;
    void *ctx;
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
};

void pw_azure_config_defaults(pw_azure_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->authority_host = "https://login.microsoftonline.com";
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
    cfg->max_host_connections = 16;
}

static const char *rid(const az_call *c)
{
    return c->request_id[0] ? c->request_id : NULL;
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
    if (!cfg->tenant_id || !*cfg->tenant_id || strpbrk(cfg->tenant_id, "/?#@ ")) {
        pw_err_set(err, errlen, "azure tenant id missing or malformed");
        return NULL;
    }
    if (!cfg->client_id || !*cfg->client_id) {
        pw_err_set(err, errlen, "azure client id missing");
        return NULL;
    }
    if (!cfg->client_secret || !*cfg->client_secret) {
        pw_err_set(err, errlen, "azure client secret missing");
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
    az->cfg.authority_host = authority;
    az->arm_endpoint = strip_slash_dup(arm);
    az->arm_api_version = strdup(cfg->arm_api_version ? cfg->arm_api_version : d.arm_api_version);
    if (!az->arm_endpoint || !az->arm_api_version) {
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
                       .secret = cfg->client_secret};
    az->http = pw_http_new(loop, &ho, err, errlen);
    if (az->http) az->aad = pw_aad_new(loop, az->http, &az->cfg, err, errlen);
    /* Secrets, tenant and client id now live in pw_aad; drop the borrowed pointers. */
    az->cfg.client_secret = NULL;
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
    pw_loop_timer_cancel(az->loop, c->timer);
    pw_loop_timer_cancel(az->loop, c->deadline);
    call_discard(c);
}

void pw_azure_free(pw_azure *az)
{
    if (!az) return;
    while (az->calls)
        call_release(az->calls);
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
    if (code)
        pw_log(PW_LOG_WARN, rid(c), "azure.call.failed",
               "%s %s failed: %s (HTTP %d, azure code %s, attempts %u, %llu ms, client request id "
               "%s): %s",
               c->method, c->url, code, r->http_status, r->azure_code[0] ? r->azure_code : "-",
               r->attempts, (unsigned long long)r->duration_ms, r->client_request_id, r->message);
    else
        pw_log(PW_LOG_INFO, rid(c), "azure.call.ok",
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
    else
        finish(c, PW_AZ_CODE_DEADLINE, 1, NULL, "deadline reached (%s)",
               c->ph == PH_POLL ? "long-running operation still running" : "no answer in time");
}

/* ---- sending ---- */

static void send_now(az_call *c);
static void on_response(void *ctx, const pw_http_resp *r);

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
    if (c->deadline_ms && pw_loop_now_ms(az->loop) >= c->deadline_ms) {
        pw_loop_timer_cancel(az->loop, c->deadline);
        deadline_fire(az->loop, c);
        return;
    }
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
    pw_log(PW_LOG_DEBUG, rid(c), "azure.http.send", "%s %s (attempt %u)", method, url,
           c->phase_attempts);
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
    pw_log(PW_LOG_INFO, rid(c), "azure.retry", "%s %s: %s; attempt %u in %ld ms", c->method,
           c->ph == PH_POLL ? c->poll_shown : c->url, why, c->phase_attempts + 1, delay);
    c->timer = pw_loop_timer_add(az->loop, (uint64_t)delay, timer_send, c);
    if (!c->timer) finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "out of memory");
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
    pw_azure_progress p = {.lro_status = status, .polls = c->polls, .percent_complete = percent};
    c->on_progress(c->ctx, &p);
}

static void on_response(void *ctx, const pw_http_resp *r)
{
    az_call *c = ctx;
    pw_azure *az = c->az;
    c->xfer = NULL;
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
    pw_log(PW_LOG_DEBUG, rid(c), "azure.http.done", "%s -> HTTP %ld (azure request id %s)",
           c->ph == PH_POLL ? c->poll_shown : c->url, r->status, shown_id[0] ? shown_id : "-");

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
        if (transient) {
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
                c->polls++;
                report_progress(c, "Running", -1);
                start_poll(c, r, 0);
                return;
            }
            if (!status) {
                json_decref(body);
                finish(c, PW_AZ_CODE_PROTOCOL, 1, NULL, "operation status without a status");
                return;
            }
            c->polls++;
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
                finish(c, PW_AZ_CODE_LRO_FAILED, 0, NULL, "operation %s: %s", shown, msg);
            } else {
                json_decref(body);
                start_poll(c, r, 0);
            }
            return;
        }
        c->polls++;
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
    c->ctx = call->ctx;
    c->deadline_ms = call->deadline_ms;
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
    pw_log(PW_LOG_DEBUG, rid(c), "azure.call.start", "%s %s (client request id %s)", c->method,
           c->url, c->res.client_request_id);
    return 0;
oom:
    pw_err_set(err, errlen, "out of memory");
    call_discard(c);
    return -1;
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
