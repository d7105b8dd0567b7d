/* aad.c: access tokens from Entra ID (secret, certificate, workload identity) or a managed-identity
 * endpoint, one shared fetch and one cache entry per audience. */
#include "aad.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cred.h"
#include "pw/log.h"
#include "pw/metrics.h"
#include "pw/status.h"

enum {
    MAX_AUDIENCES = 256,
    MAX_TOKEN_BYTES = 16384,
    MAX_TOKEN_LIFETIME_S = 86400,
    RETRY_FLOOR_MS = 50, /* the shortest wait between fetch attempts near a deadline */
};

typedef struct aad_entry aad_entry;

struct pw_aad_wait {
    pw_aad_wait **list; /* the list it is on: entry->waiters or entry->delivering */
    pw_aad_wait *prev, *next;
    pw_aad_cb cb;
    void *ctx;
    uint64_t deadline_ms; /* the waiting call's; 0 = none (then max_attempts bounds its wait) */
};

struct aad_entry {
    pw_aad *aad;
    char *audience;
    char *token;            /* NULL when none cached */
    uint64_t refresh_at_ms; /* a fetch starts in the background from then on (loop clock) */
    uint64_t expires_at_ms; /* the token is used until then */
    uint64_t next_bg_ms;    /* after a failed background refresh: no new one before then */
    unsigned gen;
    pw_http_xfer *xfer; /* fetch in flight */
    pw_timer *retry;    /* backoff before the next fetch attempt */
    pw_timer *kick;     /* delivers a cached token asynchronously */
    unsigned attempts;
    int delivering_now; /* inside deliver(): the entry must not be evicted */
    pw_aad_wait *waiters, *delivering;
    char last_request_id[128];
    const char *retry_cause; /* set while backing off after a retryable failure */
    char retry_message[600];
    aad_entry *next;
};

struct pw_aad {
    pw_loop *loop;
    pw_http *http;
    pw_azure_credential cred;
    char *token_url; /* Entra ID's token endpoint; managed identity: the identity endpoint */
    char *client_id, *client_secret; /* client_id may be NULL (system-assigned identity) */
    pw_cred_cert *cert;              /* certificate */
    char *token_file;                /* workload: read again at each fetch */
    char *identity_header;           /* managed, App Service form; NULL: the IMDS form */
    int send_chain;
    long request_timeout_ms, backoff_base_ms, backoff_max_ms, max_retry_after_ms;
    long margin_ms;
    unsigned max_attempts;
    aad_entry *entries;
    size_t n_entries;
};

/* Wipes and frees a malloc'd secret (NULL ok).  explicit_bzero: a plain memset right
 * before free is a dead store the compiler may drop. */
static void secret_free(char *s)
{
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void entry_free(pw_aad *aad, aad_entry *e)
{
    pw_http_cancel(aad->http, e->xfer);
    pw_loop_timer_cancel(aad->loop, e->retry);
    pw_loop_timer_cancel(aad->loop, e->kick);
    for (pw_aad_wait **l = &e->waiters; l; l = l == &e->waiters ? &e->delivering : NULL) {
        while (*l) {
            pw_aad_wait *w = *l;
            *l = w->next;
            free(w);
        }
    }
    secret_free(e->token);
    free(e->audience);
    free(e);
}

/* A managed-identity endpoint: https://, or http:// on a loopback or link-local address
 * (IMDS at 169.254.169.254, App Service's and Arc's on localhost); no user-info, query or
 * fragment. */
static int identity_endpoint_ok(const char *url)
{
    if (!url || strlen(url) > 1000 || strpbrk(url, "@?#\\ \t\r\n")) return 0;
    if (!strncasecmp(url, "https://", 8)) return url[8] != '\0' && url[8] != '/';
    if (strncasecmp(url, "http://", 7)) return 0;
    const char *h = url + 7;
    size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
    char host[256];
    if (n == 0 || n >= sizeof host) return 0;
    memcpy(host, h, n);
    host[n] = '\0';
    if (!strcasecmp(host, "localhost") || !strcmp(host, "[::1]")) return 1;
    unsigned a, b, c, d;
    char tail;
    if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 ||
        c > 255 || d > 255)
        return 0;
    return a == 127 || (a == 169 && b == 254);
}

pw_aad *pw_aad_new(pw_loop *loop, pw_http *http, const pw_azure_config *cfg, char *err,
                   size_t errlen)
{
    pw_aad *aad = calloc(1, sizeof *aad);
    if (!aad) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    aad->loop = loop;
    aad->http = http;
    if (pw_azure_credential_select(cfg, &aad->cred, err, errlen)) {
        pw_aad_free(aad);
        return NULL;
    }
    int oom = 0;
    if (cfg->client_id && *cfg->client_id) oom |= !(aad->client_id = strdup(cfg->client_id));
    if (aad->cred == PW_AZ_CRED_MANAGED) {
        const char *ep = pw_aad_identity_endpoint(cfg);
        if (!identity_endpoint_ok(ep)) {
            pw_err_set(err, errlen,
                       "managed identity endpoint \"%.200s\": must be an https:// URL, or an "
                       "http:// URL on a loopback or link-local address, without user-info, "
                       "query or fragment",
                       ep);
            pw_aad_free(aad);
            return NULL;
        }
        oom |= !(aad->token_url = strdup(ep));
        if (cfg->identity_endpoint && *cfg->identity_endpoint) {
            oom |= !(aad->identity_header = strdup(cfg->identity_header));
            if (!oom && pw_http_set_secret(http, PW_HTTP_SECRET_IDENTITY, cfg->identity_header))
                oom = 1;
        }
    } else {
        const char *authority = cfg->authority_host ? cfg->authority_host : PW_AZ_AUTHORITY_HOST;
        size_t alen = strlen(authority);
        while (alen > 0 && authority[alen - 1] == '/')
            alen--;
        size_t n = alen + strlen(cfg->tenant_id) + 64;
        if ((aad->token_url = malloc(n)))
            snprintf(aad->token_url, n, "%.*s/%s/oauth2/v2.0/token", (int)alen, authority,
                     cfg->tenant_id);
        oom |= !aad->token_url;
    }
    if (aad->cred == PW_AZ_CRED_SECRET) oom |= !(aad->client_secret = strdup(cfg->client_secret));
    if (aad->cred == PW_AZ_CRED_WORKLOAD)
        oom |= !(aad->token_file = strdup(cfg->federated_token_file));
    if (oom) {
        pw_err_set(err, errlen, "out of memory");
        pw_aad_free(aad);
        return NULL;
    }
    if (aad->cred == PW_AZ_CRED_CERTIFICATE) {
        aad->cert = pw_cred_cert_load(cfg->client_certificate_path,
                                      cfg->client_certificate_password, err, errlen);
        if (!aad->cert) {
            pw_aad_free(aad);
            return NULL;
        }
        aad->send_chain = cfg->send_certificate_chain;
    }
    if (aad->cred == PW_AZ_CRED_WORKLOAD) {
        /* Read once now so that a missing or malformed file stops the start with its name;
         * every fetch reads it again (Kubernetes rotates it). */
        char *t = pw_cred_read_token_file(aad->token_file, err, errlen);
        if (!t) {
            pw_aad_free(aad);
            return NULL;
        }
        pw_cred_wipe(t);
    }
    pw_log(PW_LOG_INFO, NULL, "aad.credential", "credential %s%s%s (%s)",
           pw_azure_credential_name(aad->cred), aad->client_id ? ", client id " : "",
           aad->client_id ? aad->client_id : "",
           aad->cred == PW_AZ_CRED_MANAGED
               ? (aad->identity_header ? "App Service identity endpoint" : "IMDS endpoint")
               : "Entra ID token endpoint");
    aad->request_timeout_ms = cfg->request_timeout_ms;
    aad->backoff_base_ms = cfg->backoff_base_ms;
    aad->backoff_max_ms = cfg->backoff_max_ms;
    aad->max_retry_after_ms = cfg->max_retry_after_ms;
    aad->margin_ms = cfg->token_refresh_margin_ms;
    aad->max_attempts = cfg->max_attempts ? cfg->max_attempts : 1;
    return aad;
}

void pw_aad_free(pw_aad *aad)
{
    if (!aad) return;
    while (aad->entries) {
        aad_entry *e = aad->entries;
        aad->entries = e->next;
        entry_free(aad, e);
    }
    secret_free(aad->client_secret);
    secret_free(aad->identity_header);
    pw_cred_cert_free(aad->cert);
    free(aad->token_file);
    free(aad->client_id);
    free(aad->token_url);
    free(aad);
}

const char *pw_aad_identity_endpoint(const pw_azure_config *cfg)
{
    if (cfg->identity_endpoint && *cfg->identity_endpoint) return cfg->identity_endpoint;
    if (cfg->imds_endpoint && *cfg->imds_endpoint) return cfg->imds_endpoint;
    return PW_AZ_IMDS_ENDPOINT;
}

static int entry_idle(const aad_entry *e)
{
    return !e->xfer && !e->retry && !e->kick && !e->waiters && !e->delivering && !e->delivering_now;
}

/* At MAX_AUDIENCES entries: frees the idle entry whose token is the first to be refreshed
 * (failed or expired ones first).  Returns 0, or -1 when every entry is busy.  O(n). */
static int evict_one(pw_aad *aad)
{
    aad_entry **victim = NULL;
    for (aad_entry **pp = &aad->entries; *pp; pp = &(*pp)->next)
        if (entry_idle(*pp) && (!victim || (*pp)->refresh_at_ms < (*victim)->refresh_at_ms))
            victim = pp;
    if (!victim) return -1;
    aad_entry *e = *victim;
    *victim = e->next;
    aad->n_entries--;
    entry_free(aad, e);
    return 0;
}

static aad_entry *find_entry(pw_aad *aad, const char *audience, int create)
{
    for (aad_entry *e = aad->entries; e; e = e->next)
        if (strcmp(e->audience, audience) == 0) return e;
    if (!create) return NULL;
    /* A worker meets any number of clusters over its life; the cache holds a bounded set. */
    if (aad->n_entries >= MAX_AUDIENCES && evict_one(aad) != 0) return NULL;
    aad_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->aad = aad;
    e->audience = strdup(audience);
    if (!e->audience) {
        free(e);
        return NULL;
    }
    e->next = aad->entries;
    aad->entries = e;
    aad->n_entries++;
    return e;
}

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".  A token
 * goes verbatim into an Authorization header: anything else (CR/LF above all, which would
 * start a header of the token endpoint's choosing) is refused. */
static int b64token_ok(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (isalnum((unsigned char)s[i]) || strchr("-._~+/", s[i])))
        i++;
    if (i == 0) return 0;
    while (i < n && s[i] == '=')
        i++;
    return i == n;
}

static int token_usable(pw_aad *aad, const aad_entry *e)
{
    return e->token && pw_loop_now_ms(aad->loop) < e->expires_at_ms;
}

/* A usable token whose refresh time has come, with no fetch under way or held back. */
static int refresh_due(pw_aad *aad, const aad_entry *e)
{
    uint64_t now = pw_loop_now_ms(aad->loop);
    return token_usable(aad, e) && now >= e->refresh_at_ms && now >= e->next_bg_ms && !e->xfer &&
           !e->retry;
}

static void kick_fire(pw_loop *loop, void *ctx);

const char *pw_aad_cached(pw_aad *aad, const char *audience, unsigned *gen)
{
    aad_entry *e = find_entry(aad, audience, 0);
    if (!e || !token_usable(aad, e)) return NULL;
    /* Due for refresh: fetch in the background (from the loop, never inside this call) and
     * keep handing out this token until it expires. */
    if (refresh_due(aad, e) && !e->kick) e->kick = pw_loop_timer_add(aad->loop, 0, kick_fire, e);
    *gen = e->gen;
    return e->token;
}

static void wait_unlink(pw_aad_wait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        *w->list = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->list = NULL;
}

/* Hands res to every current waiter (only_undated: to those without a deadline).  Waiters
 * added by the callbacks go to e->waiters and wait for the next outcome; callbacks may
 * cancel waiters still on the delivering list.  Returns how many were handed res. */
static size_t deliver_to(aad_entry *e, const pw_aad_result *res, int only_undated)
{
    size_t n = 0;
    pw_aad_wait *last = NULL;
    for (pw_aad_wait *w = e->waiters, *next; w; w = next) {
        next = w->next;
        if (only_undated && w->deadline_ms) continue;
        wait_unlink(w); /* appended to e->delivering, in order */
        w->list = &e->delivering;
        w->prev = last;
        if (last)
            last->next = w;
        else
            e->delivering = w;
        last = w;
        n++;
    }
    e->delivering_now = 1;
    while (e->delivering) {
        pw_aad_wait *w = e->delivering;
        wait_unlink(w);
        pw_aad_cb cb = w->cb;
        void *ctx = w->ctx;
        free(w);
        cb(ctx, res);
    }
    e->delivering_now = 0;
    return n;
}

static void deliver(aad_entry *e, const pw_aad_result *res)
{
    deliver_to(e, res, 0);
}

static void start_fetch(aad_entry *e);

/* The request id for log lines: that of the latest pw_aad_get for this audience. */
static const char *rid(const aad_entry *e)
{
    return e->last_request_id[0] ? e->last_request_id : NULL;
}

/* Fails the waiters (only_undated: those without a deadline; the others wait on). */
static void fail_waiters(aad_entry *e, int only_undated, const char *code, int retryable,
                         int status, const char *text)
{
    char msg[1200]; /* whatever the endpoint said, redacted before it is logged or handed on */
    pw_http_redact(e->aad->http, msg, sizeof msg, text, strlen(text));
    pw_aad_result res = {
        .code = code, .retryable = retryable, .http_status = status, .message = msg};
    size_t n = deliver_to(e, &res, only_undated);
    if (n || !only_undated)
        pw_log(PW_LOG_WARN, rid(e), "aad.token.failed",
               "token for audience %s failed: %s (HTTP %d), %zu waiting call(s) failed%s: %s",
               e->audience, code, status, n,
               e->token ? " (the cached token is still used until it expires)" : "", msg);
}

/* A failure that retrying will not cure (or out of memory): every waiter fails now; a still
 * valid cached token is kept, and no background refresh is tried for backoff_max_ms. */
static void fail_all(aad_entry *e, const char *code, int retryable, int status, const char *msg)
{
    pw_aad *aad = e->aad;
    e->attempts = 0;
    e->next_bg_ms = pw_loop_now_ms(aad->loop) + (uint64_t)aad->backoff_max_ms;
    fail_waiters(e, 0, code, retryable, status, msg);
}

static void retry_fire(pw_loop *loop, void *ctx)
{
    aad_entry *e = ctx;
    (void)loop;
    e->retry = NULL;
    if (!e->waiters && !token_usable(e->aad, e)) {
        /* Everyone waiting gave up (deadline, free) and no valid token is being refreshed:
         * stop; the next caller starts afresh. */
        e->attempts = 0;
        e->retry_cause = NULL;
        return;
    }
    start_fetch(e);
}

/* What bounds the retries now: the earliest deadline of a waiting call, else (no dated
 * waiter, a refresh in the background) the cached token's expiry; 0 when nothing does. */
static uint64_t retry_horizon(pw_aad *aad, const aad_entry *e)
{
    uint64_t h = 0;
    for (const pw_aad_wait *w = e->waiters; w; w = w->next)
        if (w->deadline_ms && (!h || w->deadline_ms < h)) h = w->deadline_ms;
    if (!h && token_usable(aad, e)) h = e->expires_at_ms;
    return h;
}

/* After a retryable failure.  Waiters without a deadline fail once max_attempts were made;
 * the fetch goes on while a dated waiter or a valid token remains, each backoff cut to half
 * the time left before the horizon, so that attempts keep coming until it passes (an
 * outage that ends before a call's deadline fails no call).  Retry-After is honoured as
 * sent (capped by max_retry_after_ms).  Returns 0 when no retry was scheduled. */
static int schedule_retry(aad_entry *e, const pw_http_resp *r)
{
    pw_aad *aad = e->aad;
    if (e->attempts >= aad->max_attempts)
        fail_waiters(e, 1, r->status == 429 ? PW_AZ_CODE_THROTTLED : PW_AZ_CODE_UNAVAILABLE, 1,
                     (int)r->status, r->fail != PW_OK ? r->error : "token endpoint unavailable");
    uint64_t horizon = retry_horizon(aad, e);
    if (!horizon && !e->waiters) return 0;
    long delay = pw_http_retry_after_ms(r->retry_after, r->retry_after_ms, r->x_ms_retry_after_ms,
                                        time(NULL));
    if (delay > aad->max_retry_after_ms) delay = aad->max_retry_after_ms;
    if (delay < 0) {
        delay = pw_http_backoff_ms(aad->backoff_base_ms, aad->backoff_max_ms, e->attempts - 1,
                                   pw_http_random());
        uint64_t now = pw_loop_now_ms(aad->loop);
        long half = horizon > now ? (long)((horizon - now) / 2) : 0;
        if (horizon && delay > half) delay = half > RETRY_FLOOR_MS ? half : RETRY_FLOOR_MS;
    }
    e->retry = pw_loop_timer_add(aad->loop, (uint64_t)delay, retry_fire, e);
    if (!e->retry) return 0;
    e->retry_cause =
        r->fail == PW_OK && r->status == 429 ? PW_AZ_CODE_THROTTLED : PW_AZ_CODE_UNAVAILABLE;
    char what[sizeof r->error];
    if (r->fail != PW_OK)
        snprintf(what, sizeof what, "%s", r->error);
    else
        snprintf(what, sizeof what, "HTTP %ld", r->status);
    snprintf(e->retry_message, sizeof e->retry_message, "token: %s", what);
    pw_log(PW_LOG_INFO, rid(e), "aad.token.retry", "token fetch attempt %u: %s", e->attempts, what);
    return 1;
}

static void on_token(void *ctx, const pw_http_resp *r)
{
    aad_entry *e = ctx;
    pw_aad *aad = e->aad;
    e->xfer = NULL;
    e->retry_cause = NULL;
    pw_metrics_add(PW_M_AZURE_REQUESTS, 1, PW_METRICS_HOST_AAD,
                   pw_metrics_status_class(r->fail == PW_OK ? r->status : 0), NULL);
    if (r->fail == PW_OK && r->status == 429)
        pw_metrics_add(PW_M_AZURE_THROTTLED, 1, PW_METRICS_HOST_AAD, NULL, NULL);
    pw_metrics_add(PW_M_TOKEN_REQUESTS, 1, r->fail == PW_OK && r->status == 200 ? "ok" : "failed",
                   NULL, NULL);
    if (r->fail == PW_ERR_TLS) {
        fail_all(e, PW_AZ_CODE_TLS, 0, 0, r->error);
        return;
    }
    /* IMDS answers 404 and 410 while it is being updated (the SDKs retry them). */
    int imds_busy = aad->cred == PW_AZ_CRED_MANAGED && (r->status == 404 || r->status == 410);
    if (r->fail != PW_OK || r->status == 429 || r->status >= 500 || imds_busy) {
        if (r->fail != PW_ERR_RANGE && r->fail != PW_ERR_INTERNAL && schedule_retry(e, r)) return;
        const char *code = r->status == 429 ? PW_AZ_CODE_THROTTLED : PW_AZ_CODE_UNAVAILABLE;
        if (r->fail == PW_ERR_RANGE || r->fail == PW_ERR_INTERNAL) code = PW_AZ_CODE_PROTOCOL;
        fail_all(e, code, 1, (int)r->status,
                 r->fail != PW_OK ? r->error : "token endpoint unavailable");
        return;
    }
    if (r->status != 200) {
        char code[128], msg[1024];
        int perm;
        pw_http_parse_error(aad->http, r->body, r->body_len, code, sizeof code, msg, sizeof msg,
                            &perm);
        char text[1200];
        snprintf(text, sizeof text, "%s%s%s", code[0] ? code : "HTTP error", msg[0] ? ": " : "",
                 msg);
        fail_all(e, PW_AZ_CODE_AUTH, 0, (int)r->status, text);
        return;
    }
    json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *tok = json_object_get(root, "access_token");
    json_t *exp = json_object_get(root, "expires_in");
    json_t *exp_on = json_object_get(root, "expires_on");
    long long expires_in = json_is_integer(exp)  ? json_integer_value(exp)
                           : json_is_string(exp) ? strtoll(json_string_value(exp), NULL, 10)
                                                 : -1;
    if (!exp) {
        /* The App Service identity endpoint (2019-08-01) sends only expires_on (epoch
         * seconds, as a string); IMDS sends both. */
        long long on = json_is_integer(exp_on)  ? json_integer_value(exp_on)
                       : json_is_string(exp_on) ? strtoll(json_string_value(exp_on), NULL, 10)
                                                : 0;
        expires_in = on > 0 ? on - (long long)time(NULL) : 3600;
    }
    /* AAD access tokens live 1-24 h; a larger figure is not believed (and would overflow) */
    if (expires_in > MAX_TOKEN_LIFETIME_S) expires_in = MAX_TOKEN_LIFETIME_S;
    if (!json_is_string(tok) || json_string_length(tok) == 0 ||
        json_string_length(tok) > MAX_TOKEN_BYTES || expires_in <= 0) {
        json_decref(root);
        fail_all(e, PW_AZ_CODE_PROTOCOL, 1, 200, "token response without a usable access_token");
        return;
    }
    if (!b64token_ok(json_string_value(tok), json_string_length(tok))) {
        json_decref(root);
        fail_all(e, PW_AZ_CODE_PROTOCOL, 0, 200,
                 "token response's access_token holds characters a bearer token cannot "
                 "(RFC 6750 b64token); refused");
        return;
    }
    secret_free(e->token);
    e->token = strdup(json_string_value(tok));
    json_decref(root);
    if (!e->token) {
        fail_all(e, PW_AZ_CODE_PROTOCOL, 1, 200, "out of memory");
        return;
    }
    long long life_ms = expires_in * 1000;
    long long margin = aad->margin_ms;
    if (margin > life_ms / 2)
        margin = life_ms / 2; /* short-lived tokens: still use them for half their life */
    uint64_t now = pw_loop_now_ms(aad->loop);
    e->refresh_at_ms = now + (uint64_t)(life_ms - margin);
    e->expires_at_ms = now + (uint64_t)life_ms;
    e->next_bg_ms = 0;
    e->gen++;
    pw_log(PW_LOG_INFO, rid(e), "aad.token.ok",
           "token for audience %s, expires in %llds, attempts %u", e->audience, expires_in,
           e->attempts);
    e->attempts = 0;
    pw_aad_result res = {.token = e->token, .gen = e->gen, .http_status = 200};
    deliver(e, &res);
}

static char *form_escape(const char *s)
{
    return curl_easy_escape(NULL, s, 0);
}

/* The client-credentials form: the secret, or a client assertion (a certificate's, or the
 * federated token as Kubernetes last wrote it).  NULL with why filled on failure. */
static char *token_form(pw_aad *aad, const char *scope, char *why, size_t whylen)
{
    char *cred = NULL; /* the credential value, before form-encoding */
    if (aad->cred == PW_AZ_CRED_SECRET) {
        cred = strdup(aad->client_secret);
    } else if (aad->cred == PW_AZ_CRED_CERTIFICATE) {
        char jti[37];
        pw_http_guid(jti);
        cred = pw_cred_assertion(aad->cert, aad->client_id, aad->token_url,
                                 (long long)time(NULL), jti, aad->send_chain);
        if (cred && pw_http_set_secret(aad->http, PW_HTTP_SECRET_ASSERTION, cred)) {
            pw_cred_wipe(cred);
            cred = NULL;
        }
    } else {
        cred = pw_cred_read_token_file(aad->token_file, why, whylen);
        if (!cred) return NULL;
        if (pw_http_set_secret(aad->http, PW_HTTP_SECRET_FEDERATED, cred)) {
            pw_cred_wipe(cred);
            cred = NULL;
        }
    }
    if (!cred) {
        pw_err_set(why, whylen, "out of memory (or the assertion could not be signed)");
        return NULL;
    }
    char *cid = form_escape(aad->client_id);
    char *val = form_escape(cred);
    char *scp = form_escape(scope);
    char *form = NULL;
    int rc = -1;
    if (cid && val && scp) {
        if (aad->cred == PW_AZ_CRED_SECRET)
            rc = asprintf(&form,
                          "grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s",
                          cid, val, scp);
        else
            rc = asprintf(&form,
                          "grant_type=client_credentials&client_id=%s&client_assertion_type=%s"
                          "&client_assertion=%s&scope=%s",
                          cid, "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
                          val, scp);
    }
    if (rc < 0) form = NULL;
    if (val) {
        explicit_bzero(val, strlen(val));
        curl_free(val);
    }
    pw_cred_wipe(cred);
    curl_free(cid);
    curl_free(scp);
    if (!form) pw_err_set(why, whylen, "out of memory");
    return form;
}

static void start_fetch(aad_entry *e)
{
    pw_aad *aad = e->aad;
    char scope[1200], why[600] = "";
    size_t alen = strlen(e->audience);
    while (alen > 0 && e->audience[alen - 1] == '/')
        alen--;
    pw_http_req req = {.timeout_ms = aad->request_timeout_ms};
    char *form = NULL, *url = NULL, *hdr = NULL;
    const char *headers[2];
    if (aad->cred == PW_AZ_CRED_MANAGED) {
        /* IMDS: GET <endpoint>?api-version=2018-02-01&resource=R[&client_id=C], Metadata: true.
         * App Service: GET IDENTITY_ENDPOINT?api-version=2019-08-01&resource=R[&client_id=C],
         * X-IDENTITY-HEADER: IDENTITY_HEADER. */
        char res[1200];
        snprintf(res, sizeof res, "%.*s", (int)alen, e->audience);
        char *r = form_escape(res);
        char *c = aad->client_id ? form_escape(aad->client_id) : NULL;
        if (r && (c || !aad->client_id) &&
            asprintf(&url, "%s?api-version=%s&resource=%s%s%s", aad->token_url,
                     aad->identity_header ? PW_AZ_IDENTITY_API_VERSION : PW_AZ_IMDS_API_VERSION,
                     r, c ? "&client_id=" : "", c ? c : "") < 0)
            url = NULL;
        curl_free(r);
        curl_free(c);
        if (url && aad->identity_header &&
            asprintf(&hdr, "X-IDENTITY-HEADER: %s", aad->identity_header) < 0)
            hdr = NULL;
        if (!url || (aad->identity_header && !hdr)) {
            free(url);
            fail_all(e, PW_AZ_CODE_PROTOCOL, 1, 0, "out of memory");
            return;
        }
        headers[0] = hdr ? hdr : "Metadata: true";
        headers[1] = "Accept: application/json";
        req.method = "GET";
        req.url = url;
    } else {
        snprintf(scope, sizeof scope, "%.*s/.default", (int)alen, e->audience);
        form = token_form(aad, scope, why, sizeof why);
        if (!form) {
            /* The credential cannot be had (the federated token file is missing or bad): no
             * request is sent; retryable, since the file may come back. */
            fail_all(e, aad->cred == PW_AZ_CRED_WORKLOAD ? PW_AZ_CODE_AUTH : PW_AZ_CODE_PROTOCOL,
                     1, 0, why);
            return;
        }
        headers[0] = "Content-Type: application/x-www-form-urlencoded";
        headers[1] = "Accept: application/json";
        req.method = "POST";
        req.url = aad->token_url;
        req.body = form;
        req.body_len = strlen(form);
    }
    req.headers = headers;
    req.header_count = 2;
    e->attempts++;
    e->xfer = pw_http_start(aad->http, &req, on_token, e);
    secret_free(form);
    secret_free(hdr);
    free(url);
    if (!e->xfer) fail_all(e, PW_AZ_CODE_PROTOCOL, 1, 0, "out of memory");
}

static void kick_fire(pw_loop *loop, void *ctx)
{
    aad_entry *e = ctx;
    (void)loop;
    e->kick = NULL;
    if (token_usable(e->aad, e)) {
        pw_aad_result res = {.token = e->token, .gen = e->gen, .http_status = 200};
        deliver(e, &res);
        if (refresh_due(e->aad, e)) {
            pw_log(PW_LOG_DEBUG, rid(e), "aad.token.refresh",
                   "refreshing the token for audience %s in the background", e->audience);
            start_fetch(e);
        }
    } else if (!e->xfer && !e->retry && e->waiters) {
        start_fetch(e);
    }
}

pw_aad_wait *pw_aad_get(pw_aad *aad, const char *audience, const char *request_id,
                        uint64_t deadline_ms, pw_aad_cb cb, void *ctx)
{
    aad_entry *e = find_entry(aad, audience, 1);
    if (!e) return NULL;
    pw_aad_wait *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->cb = cb;
    w->ctx = ctx;
    w->deadline_ms = deadline_ms;
    w->list = &e->waiters;
    w->next = e->waiters;
    if (w->next) w->next->prev = w;
    e->waiters = w;
    if (request_id) snprintf(e->last_request_id, sizeof e->last_request_id, "%s", request_id);
    /* Both paths run from a timer so the callback never runs inside this call. */
    if (!e->xfer && !e->retry && !e->kick) e->kick = pw_loop_timer_add(aad->loop, 0, kick_fire, e);
    return w;
}

void pw_aad_cancel(pw_aad *aad, pw_aad_wait *w)
{
    (void)aad;
    if (!w) return;
    wait_unlink(w);
    free(w);
}

void pw_aad_invalidate(pw_aad *aad, const char *audience, unsigned gen)
{
    aad_entry *e = find_entry(aad, audience, 0);
    if (!e || !e->token || e->gen != gen) return;
    secret_free(e->token);
    e->token = NULL;
    e->refresh_at_ms = e->expires_at_ms = 0;
}

const char *pw_aad_retry_cause(pw_aad *aad, const char *audience, const char **message)
{
    aad_entry *e = find_entry(aad, audience, 0);
    if (!e || !e->retry_cause) return NULL;
    if (message) *message = e->retry_message;
    return e->retry_cause;
}
