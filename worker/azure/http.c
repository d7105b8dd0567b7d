/* http.c: HTTPS exchanges over libcurl multi (socket API) driven by pw_loop, plus Azure protocol
 * helpers. */
#include "http.h"
#include "pw/config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

/* Pools: libcurl keys its per-host connection limit (CURLMOPT_MAX_HOST_CONNECTIONS) and the
 * eviction that comes with it by the connect-to target, not by the URL's host (7.88's
 * conncache hashkey takes conn_to_host when set), so with connect_to pointing AAD, ARM and every
 * cluster at one address they shared one bundle of max_host_connections and evicted each
 * other's idle connections.  The limit is therefore kept here, per real host: curl gets no
 * per-host limit, and an exchange over the limit waits in its host's FIFO without an easy
 * handle in the multi. */
#define POOL_SLOTS 64
#define POOL_KEY_MAX 520 /* "host:port" of a URL; URLs here are bounded well below */
#define IDLE_EASY_MAX 64 /* easy handles kept for reuse (curl_easy_reset keeps their caches) */
#define CACHE_PER_HOST                                                                             \
    4 /* CURLMOPT_MAXCONNECTS = max_host_connections x this (256 at the default 64): idle          \
         connections for AAD, ARM and a few busy clusters survive a lull */

typedef struct host_pool host_pool;

struct host_pool {
    char key[POOL_KEY_MAX];
    size_t active;                 /* exchanges in the multi */
    pw_http_xfer *q_head, *q_tail; /* waiting for one of them to end */
    host_pool *next;
};

struct pw_http_xfer {
    pw_http *http;
    CURL *easy;
    host_pool *pool; /* NULL once it left its pool */
    int queued;      /* waiting in pool->q_* (not in the multi) */
    int added;       /* in the multi */
    int failed;      /* on http->failed: its start failed after it was queued */
    pw_http_xfer *qnext;
    struct curl_slist *headers;
    pw_http_cb cb;
    void *ctx;
    char *body;
    size_t body_len, body_cap;
    int too_large;
    pw_http_resp resp;
    char errbuf[CURL_ERROR_SIZE];
    pw_http_xfer *prev, *next;
};

struct pw_http {
    pw_loop *loop;
    CURLM *multi;
    pw_timer *timer;
    struct curl_slist *connect_to;
    char *ca_file;
    long connect_timeout_ms;
    size_t max_response_bytes;
    char *secret[PW_HTTP_SECRET_SLOTS], *secret_form[PW_HTTP_SECRET_SLOTS]; /* what
                                 pw_http_redact removes besides its patterns (raw, form-encoded) */
    char *plain_origin; /* "http://host:port" of the one endpoint plain HTTP may reach */
    pw_http_xfer *xfers;
    long max_host;
    host_pool *pools[POOL_SLOTS];
    CURL *idle[IDLE_EASY_MAX];
    size_t n_idle;
    CURLSH *share;        /* TLS sessions and DNS answers, across easy handles */
    pw_http_xfer *failed; /* queued exchanges whose curl_multi_add_handle failed */
    pw_timer *fail_timer; /* delivers their callbacks from the loop */
};

static void pool_leave(pw_http *http, pw_http_xfer *x);

/* Wipes and frees a malloc'd secret (NULL ok); explicit_bzero survives dead-store removal. */
static void secret_free(char *s)
{
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void xfer_unlink(pw_http *http, pw_http_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        http->xfers = x->next;
    if (x->next) x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Frees an exchange that is on no list (removing its handle from the multi is a no-op
 * when it was never added or is already removed). */
static void xfer_destroy(pw_http *http, pw_http_xfer *x)
{
    if (x->added) curl_multi_remove_handle(http->multi, x->easy);
    x->added = 0;
    pool_leave(http, x);
    if (x->failed) { /* still on http->failed (cancelled before its callback) */
        for (pw_http_xfer **pp = &http->failed; *pp; pp = &(*pp)->qnext)
            if (*pp == x) {
                *pp = x->qnext;
                break;
            }
    }
    if (x->easy) {
        if (http->n_idle < IDLE_EASY_MAX) {
            curl_easy_reset(x->easy);
            http->idle[http->n_idle++] = x->easy;
        } else {
            curl_easy_cleanup(x->easy);
        }
    }
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
}

static void xfer_free(pw_http *http, pw_http_xfer *x)
{
    if (!x) return;
    xfer_unlink(http, x);
    xfer_destroy(http, x);
}

static pw_status classify(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return PW_OK;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
        return PW_ERR_TLS;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        return PW_ERR_TRANSPORT;
    default:
        return PW_ERR_INTERNAL;
    }
}

typedef struct url_parts {
    char *scheme, *user, *password, *host, *port, *path, *query, *fragment;
} url_parts;

static void parts_free(url_parts *p);
static int parse_url(const char *url, url_parts *p);

static void finish(pw_http *http, CURL *easy, CURLcode rc)
{
    pw_http_xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (!x) return;
    pw_http_resp *r = &x->resp;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
    r->fail = classify(rc);
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        r->fail = PW_ERR_RANGE;
        snprintf(r->error, sizeof r->error, "response body larger than %zu bytes",
                 http->max_response_bytes);
    } else if (r->fail == PW_ERR_TLS) {
        /* Name what was checked: the host and the trust anchors it was checked against. */
        char *url = NULL;
        url_parts p = {0};
        curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
        int parsed = url && parse_url(url, &p) == 0;
        snprintf(r->error, sizeof r->error, "%s (host %s, %s%s)",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc), parsed ? p.host : "?",
                 http->ca_file ? "CA file " : "no CA file: the system trust store",
                 http->ca_file ? http->ca_file : "");
        if (parsed) parts_free(&p);
    } else if (rc != CURLE_OK) {
        snprintf(r->error, sizeof r->error, "%s",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
    }
    if (r->error[0]) pw_http_redact(http, r->error, sizeof r->error, r->error, strlen(r->error));
    r->body = x->body ? x->body : (char *)"";
    r->body_len = x->body_len;
    pw_http_cb cb = x->cb;
    void *ctx = x->ctx;
    /* The callback may start or cancel other exchanges; this one is done either way (and
     * its place in the pool goes to the next exchange waiting for the host). */
    curl_multi_remove_handle(http->multi, easy);
    x->added = 0;
    pool_leave(http, x);
    xfer_unlink(http, x);
    cb(ctx, r);
    xfer_destroy(http, x);
}

static void check_done(pw_http *http)
{
    CURLMsg *msg;
    int left;
    /* One message at a time: a callback may remove other handles, which drops their messages. */
    while ((msg = curl_multi_info_read(http->multi, &left))) {
        if (msg->msg == CURLMSG_DONE) finish(http, msg->easy_handle, msg->data.result);
    }
}

static void on_fd(pw_loop *loop, int fd, unsigned events, void *ctx)
{
    pw_http *http = ctx;
    (void)loop;
    int mask = 0, running;
    if (events & PW_LOOP_READ) mask |= CURL_CSELECT_IN;
    if (events & PW_LOOP_WRITE) mask |= CURL_CSELECT_OUT;
    curl_multi_socket_action(http->multi, fd, mask, &running);
    check_done(http);
}

static void on_timer(pw_loop *loop, void *ctx)
{
    pw_http *http = ctx;
    (void)loop;
    http->timer = NULL;
    int running;
    curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(http);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    pw_http *http = userp;
    (void)easy;
    (void)socketp;
    unsigned ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= PW_LOOP_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= PW_LOOP_WRITE;
    pw_loop_fd_watch(http->loop, s, ev, ev ? on_fd : NULL, http);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    pw_http *http = userp;
    (void)multi;
    pw_loop_timer_cancel(http->loop, http->timer);
    http->timer = NULL;
    /* Never drive curl from inside its own callback: a 0 ms timer runs on the next iteration. */
    if (timeout_ms >= 0)
        http->timer = pw_loop_timer_add(http->loop, (uint64_t)timeout_ms, on_timer, http);
    return 0;
}

pw_http *pw_http_new(pw_loop *loop, const pw_http_opts *opts, char *err, size_t errlen)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            pw_err_set(err, errlen, "curl_global_init failed");
            return NULL;
        }
        global_done = 1;
    }
    pw_http *http = calloc(1, sizeof *http);
    if (!http) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    http->loop = loop;
    http->connect_timeout_ms = opts->connect_timeout_ms;
    http->max_response_bytes = opts->max_response_bytes;
    if (opts->ca_file && !(http->ca_file = strdup(opts->ca_file))) goto oom;
    if (pw_http_set_secret(http, PW_HTTP_SECRET_CLIENT, opts->secret)) goto oom;
    if (opts->plain_http_endpoint && !strncasecmp(opts->plain_http_endpoint, "http://", 7)) {
        url_parts p;
        if (parse_url(opts->plain_http_endpoint, &p) == 0) {
            if (asprintf(&http->plain_origin, "http://%s:%s", p.host, p.port ? p.port : "80") < 0)
                http->plain_origin = NULL;
            parts_free(&p);
            if (!http->plain_origin) goto oom;
        }
    }
    for (size_t i = 0; i < opts->connect_to_count; i++) {
        struct curl_slist *n = curl_slist_append(http->connect_to, opts->connect_to[i]);
        if (!n) goto oom;
        http->connect_to = n;
    }
    http->multi = curl_multi_init();
    if (!http->multi) goto oom;
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    http->max_host = opts->max_host_connections > 0 ? opts->max_host_connections
                                                    : PW_CONFIG_HOST_CONNECTIONS_MAX;
    /* No per-host limit in curl (see "Pools"); the idle cache sized for several hosts. */
    curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS, http->max_host * CACHE_PER_HOST);
    curl_multi_setopt(http->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    http->share = curl_share_init();
    if (http->share) { /* an optimisation: without it every new connection handshakes afresh */
        curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    }
    return http;
oom:
    pw_err_set(err, errlen, "out of memory");
    pw_http_free(http);
    return NULL;
}

void pw_http_free(pw_http *http)
{
    if (!http) return;
    while (http->xfers)
        xfer_free(http, http->xfers);
    for (size_t i = 0; i < http->n_idle; i++)
        curl_easy_cleanup(http->idle[i]);
    if (http->multi) curl_multi_cleanup(http->multi);
    if (http->share) curl_share_cleanup(http->share);
    pw_loop_timer_cancel(http->loop, http->timer);
    pw_loop_timer_cancel(http->loop, http->fail_timer);
    curl_slist_free_all(http->connect_to);
    free(http->ca_file);
    for (unsigned i = 0; i < PW_HTTP_SECRET_SLOTS; i++) {
        secret_free(http->secret[i]);
        secret_free(http->secret_form[i]);
    }
    free(http->plain_origin);
    free(http);
}

int pw_http_set_secret(pw_http *http, unsigned slot, const char *secret)
{
    if (slot >= PW_HTTP_SECRET_SLOTS) return -1;
    secret_free(http->secret[slot]);
    secret_free(http->secret_form[slot]);
    http->secret[slot] = http->secret_form[slot] = NULL;
    if (!secret || !*secret) return 0;
    char *form = curl_easy_escape(NULL, secret, 0);
    http->secret[slot] = strdup(secret);
    http->secret_form[slot] = form ? strdup(form) : NULL;
    if (form) {
        explicit_bzero(form, strlen(form));
        curl_free(form);
    }
    if (http->secret[slot] && http->secret_form[slot]) return 0;
    secret_free(http->secret[slot]);
    secret_free(http->secret_form[slot]);
    http->secret[slot] = http->secret_form[slot] = NULL;
    return -1;
}

int pw_http_plain_allowed(const pw_http *http, const char *url)
{
    if (!http->plain_origin || !url || strncasecmp(url, "http://", 7)) return 0;
    url_parts p;
    if (parse_url(url, &p) < 0) return 0;
    char origin[600];
    int n = snprintf(origin, sizeof origin, "http://%s:%s", p.host, p.port ? p.port : "80");
    int ok = !p.user && !p.password && n > 0 && (size_t)n < sizeof origin &&
             strcasecmp(origin, http->plain_origin) == 0;
    parts_free(&p);
    return ok;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    pw_http_xfer *x = userp;
    size_t n = size * nmemb;
    if (x->body_len + n > x->http->max_response_bytes) {
        x->too_large = 1;
        return 0; /* aborts the transfer */
    }
    if (x->body_len + n + 1 > x->body_cap) {
        size_t cap = x->body_cap ? x->body_cap : 4096;
        while (cap < x->body_len + n + 1)
            cap *= 2;
        char *b = realloc(x->body, cap);
        if (!b) return 0;
        x->body = b;
        x->body_cap = cap;
    }
    memcpy(x->body + x->body_len, data, n);
    x->body_len += n;
    x->body[x->body_len] = '\0';
    return n;
}

/* Copies a header value (trimmed) into dst when the line's name matches. */
static int take_header(const char *line, size_t len, const char *name, char *dst, size_t dstlen)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0) return 0;
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    size_t n = (size_t)(end - v);
    if (n >= dstlen)
        n = dstlen - 1; /* truncated values are treated as unusable by callers that check */
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 1;
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *userp)
{
    pw_http_xfer *x = userp;
    size_t len = size * nitems;
    pw_http_resp *r = &x->resp;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new response (after 100-continue): forget the previous one's headers. */
        r->retry_after[0] = r->retry_after_ms[0] = r->x_ms_retry_after_ms[0] = '\0';
        r->request_id[0] = r->correlation_id[0] = r->activity_id[0] = '\0';
        r->async_operation[0] = r->location[0] = '\0';
        r->ratelimit_writes[0] = r->ratelimit_reads[0] = '\0';
        return len;
    }
    static const struct {
        const char *name;
        size_t off, len;
    } want[] = {
        {"Retry-After", offsetof(pw_http_resp, retry_after), sizeof r->retry_after},
        {"retry-after-ms", offsetof(pw_http_resp, retry_after_ms), sizeof r->retry_after_ms},
        {"x-ms-retry-after-ms", offsetof(pw_http_resp, x_ms_retry_after_ms),
         sizeof r->x_ms_retry_after_ms},
        {"x-ms-request-id", offsetof(pw_http_resp, request_id), sizeof r->request_id},
        {"x-ms-correlation-request-id", offsetof(pw_http_resp, correlation_id),
         sizeof r->correlation_id},
        {"x-ms-activity-id", offsetof(pw_http_resp, activity_id), sizeof r->activity_id},
        {"Azure-AsyncOperation", offsetof(pw_http_resp, async_operation),
         sizeof r->async_operation},
        {"Location", offsetof(pw_http_resp, location), sizeof r->location},
        {"x-ms-ratelimit-remaining-subscription-writes", offsetof(pw_http_resp, ratelimit_writes),
         sizeof r->ratelimit_writes},
        {"x-ms-ratelimit-remaining-subscription-reads", offsetof(pw_http_resp, ratelimit_reads),
         sizeof r->ratelimit_reads},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (take_header(line, len, want[i].name, (char *)r + want[i].off, want[i].len)) break;
    return len;
}

/* ---- pools ---- */

/* "host:port" (lower case, port 443 when none) of an http(s) URL; "" when it has none. */
static void origin_key(const char *url, char out[POOL_KEY_MAX])
{
    out[0] = '\0';
    const char *p = strstr(url, "://");
    if (!p) return;
    p += 3;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n); /* (user-info is refused earlier; be safe anyway) */
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    if (n + 5 >= POOL_KEY_MAX) n = POOL_KEY_MAX - 6;
    int has_port = 0;
    for (size_t i = n; i > 0 && p[i - 1] != ']'; i--)
        if (p[i - 1] == ':') {
            has_port = 1;
            break;
        }
    snprintf(out, POOL_KEY_MAX, "%.*s%s", (int)n, p, has_port ? "" : ":443");
    for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
}

static unsigned pool_slot(const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *c = key; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    return h % POOL_SLOTS;
}

static host_pool *pool_get(pw_http *http, const char *url)
{
    char key[POOL_KEY_MAX];
    origin_key(url, key);
    unsigned s = pool_slot(key);
    for (host_pool *p = http->pools[s]; p; p = p->next)
        if (strcmp(p->key, key) == 0) return p;
    host_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    memcpy(p->key, key, sizeof key);
    p->next = http->pools[s];
    http->pools[s] = p;
    return p;
}

static void pool_drop_if_empty(pw_http *http, host_pool *p)
{
    if (p->active || p->q_head) return;
    for (host_pool **pp = &http->pools[pool_slot(p->key)]; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    free(p);
}

static void fail_fire(pw_loop *loop, void *ctx)
{
    pw_http *http = ctx;
    (void)loop;
    http->fail_timer = NULL;
    while (http->failed) {
        pw_http_xfer *x = http->failed;
        http->failed = x->qnext;
        x->failed = 0;
        pw_http_resp *r = &x->resp;
        r->fail = PW_ERR_INTERNAL;
        snprintf(r->error, sizeof r->error, "curl refused to start the transfer");
        r->body = (char *)"";
        r->body_len = 0;
        xfer_unlink(http, x);
        x->cb(x->ctx, r);
        xfer_destroy(http, x);
    }
}

/* Gives the pools' free places to waiting exchanges, oldest first. */
static void pool_promote(pw_http *http, host_pool *p)
{
    while (p->q_head && p->active < (size_t)http->max_host) {
        pw_http_xfer *y = p->q_head;
        p->q_head = y->qnext;
        if (!p->q_head) p->q_tail = NULL;
        y->qnext = NULL;
        y->queued = 0;
        if (curl_multi_add_handle(http->multi, y->easy) == CURLM_OK) {
            y->added = 1;
            p->active++;
            continue;
        }
        /* Never a callback from here (this may run inside pw_http_cancel): from the loop. */
        y->pool = NULL;
        y->failed = 1;
        y->qnext = http->failed;
        http->failed = y;
        if (!http->fail_timer) http->fail_timer = pw_loop_timer_add(http->loop, 0, fail_fire, http);
    }
}

/* x leaves its pool (queued or active); a freed place goes to the next one waiting. */
static void pool_leave(pw_http *http, pw_http_xfer *x)
{
    host_pool *p = x->pool;
    if (!p) return;
    x->pool = NULL;
    if (x->queued) {
        pw_http_xfer **pp = &p->q_head, *prev = NULL;
        while (*pp && *pp != x) {
            prev = *pp;
            pp = &(*pp)->qnext;
        }
        if (*pp) *pp = x->qnext;
        if (p->q_tail == x) p->q_tail = prev;
        x->qnext = NULL;
        x->queued = 0;
    } else if (p->active) {
        p->active--;
        pool_promote(http, p);
    }
    pool_drop_if_empty(http, p);
}

pw_http_xfer *pw_http_start(pw_http *http, const pw_http_req *req, pw_http_cb cb, void *ctx)
{
    pw_http_xfer *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->http = http;
    x->cb = cb;
    x->ctx = ctx;
    x->easy = http->n_idle ? http->idle[--http->n_idle] : curl_easy_init();
    if (!x->easy) goto fail;
    for (size_t i = 0; i < req->header_count; i++) {
        struct curl_slist *n = curl_slist_append(x->headers, req->headers[i]);
        if (!n) goto fail;
        x->headers = n;
    }
    /* libcurl adds "Expect: 100-continue" for larger bodies; Azure does not need it. */
    struct curl_slist *n = curl_slist_append(x->headers, "Expect:");
    if (!n) goto fail;
    x->headers = n;

    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    /* https only, except the configured identity endpoint's own origin (see http.h). */
    int plain = pw_http_plain_allowed(http, req->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, plain ? "http" : "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (http->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, http->ca_file);
    if (http->connect_to && !plain) curl_easy_setopt(e, CURLOPT_CONNECT_TO, http->connect_to);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     plain ? (long)CURL_HTTP_VERSION_1_1 : (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, http->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 60000L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "adx-policy-worker/1");
    /* Refuse early when the server announces a body over the cap (write_cb catches the rest). */
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)http->max_response_bytes);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
        /* COPYPOSTFIELDS: the caller's buffer need not outlive this call. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(req->body ? req->body_len : 0));
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
    }
    if (http->share) curl_easy_setopt(e, CURLOPT_SHARE, http->share);
    host_pool *pool = pool_get(http, req->url);
    if (!pool) goto fail;
    if (pool->active < (size_t)http->max_host) {
        if (curl_multi_add_handle(http->multi, e) != CURLM_OK) {
            pool_drop_if_empty(http, pool);
            goto fail;
        }
        x->added = 1;
        pool->active++;
    } else {
        x->queued = 1;
        if (pool->q_tail)
            pool->q_tail->qnext = x;
        else
            pool->q_head = x;
        pool->q_tail = x;
    }
    x->pool = pool;
    x->next = http->xfers;
    if (x->next) x->next->prev = x;
    http->xfers = x;
    return x;
fail:
    xfer_destroy(http, x);
    return NULL;
}

void pw_http_cancel(pw_http *http, pw_http_xfer *xfer)
{
    xfer_free(http, xfer);
}

/* ---- helpers ---- */

long pw_http_header_count(const char *s)
{
    if (!s || !isdigit((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    while (*end == ' ')
        end++;
    if (errno || *end || v > 1000000000ull) return -1;
    return (long)v;
}

static long parse_ms(const char *s)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (errno || *end || !(v >= 0) || v > 1e12) return -1;
    return (long)v;
}

long pw_http_retry_after_ms(const char *retry_after, const char *retry_after_ms,
                            const char *x_ms_retry_after_ms, time_t now)
{
    long ms = parse_ms(retry_after_ms);
    if (ms >= 0) return ms;
    ms = parse_ms(x_ms_retry_after_ms);
    if (ms >= 0) return ms;
    if (!retry_after || !*retry_after) return -1;
    if (isdigit((unsigned char)retry_after[0])) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(retry_after, &end, 10);
        if (errno || *end || s > 1000000000ull) return -1;
        return (long)(s * 1000ull);
    }
    /* HTTP-date (IMF-fixdate): "Sun, 06 Nov 1994 08:49:37 GMT". */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(retry_after, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return -1;
    time_t when = timegm(&tm);
    if (when == (time_t)-1) return -1;
    return when <= now ? 0 : (long)(when - now) * 1000L;
}

long pw_http_backoff_ms(long base_ms, long max_ms, unsigned n, uint64_t rnd)
{
    if (base_ms <= 0 || max_ms <= 0) return 0;
    long cap = base_ms;
    for (unsigned i = 0; i < n && cap < max_ms; i++)
        cap = cap > max_ms / 2 ? max_ms : cap * 2;
    if (cap > max_ms) cap = max_ms;
    return (long)(rnd % ((uint64_t)cap + 1));
}

static void parts_free(url_parts *p)
{
    curl_free(p->scheme);
    curl_free(p->user);
    curl_free(p->password);
    curl_free(p->host);
    curl_free(p->port);
    curl_free(p->path);
    curl_free(p->query);
    curl_free(p->fragment);
    memset(p, 0, sizeof *p);
}

static int parse_url(const char *url, url_parts *p)
{
    memset(p, 0, sizeof *p);
    CURLU *u = curl_url();
    if (!u) return -1;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &p->scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &p->host, 0) != CURLUE_OK)
        goto out;
    curl_url_get(u, CURLUPART_USER, &p->user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &p->password, 0);
    curl_url_get(u, CURLUPART_PORT, &p->port, CURLU_DEFAULT_PORT);
    curl_url_get(u, CURLUPART_PATH, &p->path, 0);
    curl_url_get(u, CURLUPART_QUERY, &p->query, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &p->fragment, 0);
    rc = 0;
out:
    curl_url_cleanup(u);
    if (rc) parts_free(p);
    return rc;
}

int pw_http_same_origin(const char *url, const char *endpoint)
{
    if (!url || !endpoint) return 0;
    url_parts a, b;
    if (parse_url(url, &a) < 0) return 0;
    if (parse_url(endpoint, &b) < 0) {
        parts_free(&a);
        return 0;
    }
    int ok = strcasecmp(a.scheme, "https") == 0 && strcasecmp(b.scheme, "https") == 0 && !a.user &&
             !a.password && strcasecmp(a.host, b.host) == 0 && a.port && b.port &&
             strcmp(a.port, b.port) == 0;
    parts_free(&a);
    parts_free(&b);
    return ok;
}

int pw_http_cluster_uri(const char *uri, char *out, size_t outlen, char *err, size_t errlen)
{
    if (!uri || !*uri || strlen(uri) > 512) {
        pw_err_set(err, errlen, "cluster URI missing or too long");
        return -1;
    }
    for (const char *c = uri; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == '\\' || (unsigned char)*c >= 0x7f) {
            pw_err_set(err, errlen, "cluster URI contains a forbidden character");
            return -1;
        }
    }
    if (strncasecmp(uri, "https://", 8) != 0) {
        pw_err_set(err, errlen, "cluster URI must be https://");
        return -1;
    }
    /* Reject syntactically before parsing: '@' (user-info), ':' after the scheme (port),
     * '?'/'#' anywhere; curl's parser is lenient about some of these. */
    const char *rest = uri + 8;
    if (strpbrk(rest, "@:?#%")) {
        snprintf(err, errlen,
                 "cluster URI must not carry user-info, port, query, fragment or escapes");
        return -1;
    }
    const char *slash = strchr(rest, '/');
    if (slash && slash[1] != '\0') {
        pw_err_set(err, errlen, "cluster URI must not carry a path");
        return -1;
    }
    url_parts p;
    if (parse_url(uri, &p) < 0) {
        pw_err_set(err, errlen, "cluster URI does not parse");
        return -1;
    }
    int ok = p.host[0] && !p.user && !p.password && !p.query && !p.fragment &&
             (!p.path || strcmp(p.path, "/") == 0 || !p.path[0]);
    if (ok && snprintf(out, outlen, "https://%s", p.host) >= (int)outlen) ok = 0;
    parts_free(&p);
    if (!ok) {
        pw_err_set(err, errlen, "cluster URI is not an https://host URI");
        return -1;
    }
    for (char *c = out + 8; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return 0;
}

/* Copies a JSON string, redacted, cut at a character boundary (see pw_http_redact). */
static void copy_str(const pw_http *http, json_t *v, char *dst, size_t len)
{
    if (!json_is_string(v) || !len) return;
    pw_http_redact(http, dst, len, json_string_value(v), json_string_length(v));
}

void pw_http_parse_error(const pw_http *http, const char *body, size_t len, char *code,
                         size_t codelen, char *msg, size_t msglen, int *permanent)
{
    if (codelen) code[0] = '\0';
    if (msglen) msg[0] = '\0';
    *permanent = -1;
    if (!body || !len) return;
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) {
        copy_str(http, json_object_get(e, "code"), code, codelen);
        json_t *m = json_object_get(e, "@message");
        copy_str(http, json_is_string(m) ? m : json_object_get(e, "message"), msg, msglen);
        json_t *p = json_object_get(e, "@permanent");
        if (json_is_boolean(p)) *permanent = json_is_true(p);
    } else if (json_is_string(e)) { /* AAD */
        copy_str(http, e, code, codelen);
        copy_str(http, json_object_get(root, "error_description"), msg, msglen);
    }
    json_decref(root);
}

/* ---- redaction ---- */

#define REDACTED "***"

static int b64url_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_';
}

static int b64token_char(unsigned char c)
{
    return isalnum(c) || (c && strchr("-._~+/=", c));
}

/* Length of the JWT-shaped text at s ("eyJ" + base64url, '.', base64url, optionally '.' and
 * more): two segments are enough, since a cut may have dropped the third; 0 when none. */
static size_t jwt_len(const char *s, size_t n)
{
    if (n < 3 || memcmp(s, "eyJ", 3) != 0) return 0;
    size_t i = 3, dots = 0;
    while (i < n && b64url_char((unsigned char)s[i]))
        i++;
    while (i < n && s[i] == '.' && dots < 2) {
        size_t j = i + 1;
        while (j < n && b64url_char((unsigned char)s[j]))
            j++;
        if (j == i + 1 && dots == 0) break; /* "eyJx." alone is no token */
        dots++;
        i = j;
    }
    return dots ? i : 0;
}

/* Length of the form value at s (up to '&', a quote, a separator or whitespace). */
static size_t form_value_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !strchr("&\"' ,;<>\t\r\n", s[i]))
        i++;
    return i;
}

/* Appends n bytes to out (capacity cap, one kept for the NUL) at *o; 1 when it is full. */
static int emit(char *out, size_t cap, size_t *o, const char *p, size_t n)
{
    int full = 0;
    if (*o + n >= cap) {
        n = cap - 1 - *o;
        full = 1;
    }
    memcpy(out + *o, p, n);
    *o += n;
    return full;
}

void pw_http_redact(const pw_http *http, char *dst, size_t dstlen, const char *src, size_t srclen)
{
    static const char *const keys[] = {"client_secret=", "client_assertion="};
    if (!dstlen) return;
    /* Written to a scratch buffer first: src may be dst, and the text may grow (a short
     * value becomes "***"). */
    char *out = malloc(dstlen);
    if (!out) {
        dst[0] = '\0'; /* nothing rather than something unredacted */
        return;
    }
    const char *secrets[2 * PW_HTTP_SECRET_SLOTS] = {0};
    for (unsigned k = 0; http && k < PW_HTTP_SECRET_SLOTS; k++) {
        secrets[2 * k] = http->secret[k];
        secrets[2 * k + 1] = http->secret_form[k];
    }
    size_t o = 0, i = 0;
    int full = 0;
    while (i < srclen && !full) {
        const char *p = src + i;
        size_t left = srclen - i;
        unsigned char prev = i ? (unsigned char)src[i - 1] : ' ';
        size_t skip = 0;
        for (size_t k = 0; k < 2 * PW_HTTP_SECRET_SLOTS && !skip; k++) {
            size_t sl = secrets[k] ? strlen(secrets[k]) : 0;
            if (sl && sl <= left && memcmp(p, secrets[k], sl) == 0) {
                full |= emit(out, dstlen, &o, REDACTED, 3);
                skip = sl;
            }
        }
        for (size_t k = 0; k < 2 && !skip; k++) {
            size_t kl = strlen(keys[k]);
            if (kl <= left && strncasecmp(p, keys[k], kl) == 0 && !b64url_char(prev)) {
                full |= emit(out, dstlen, &o, p, kl);
                full |= emit(out, dstlen, &o, REDACTED, 3);
                skip = kl + form_value_len(p + kl, left - kl);
            }
        }
        if (!skip && left > 6 && strncasecmp(p, "bearer", 6) == 0 && !isalnum(prev) &&
            (p[6] == ' ' || p[6] == '\t')) {
            size_t j = 6;
            while (j < left && (p[j] == ' ' || p[j] == '\t'))
                j++;
            size_t t = j;
            while (t < left && b64token_char((unsigned char)p[t]))
                t++;
            if (t > j) {
                full |= emit(out, dstlen, &o, p, j);
                full |= emit(out, dstlen, &o, REDACTED, 3);
                skip = t;
            }
        }
        if (!skip && !b64url_char(prev)) {
            size_t jl = jwt_len(p, left);
            if (jl) {
                full |= emit(out, dstlen, &o, REDACTED, 3);
                skip = jl;
            }
        }
        if (!skip) {
            full |= emit(out, dstlen, &o, p, 1);
            skip = 1;
        }
        i += skip;
    }
    if (full) { /* do not leave a character cut in two at the end */
        size_t k = o;
        while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0) {
            unsigned char lead = (unsigned char)out[k - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (k - 1 + need > o) o = k - 1;
        }
    }
    out[o] = '\0';
    memcpy(dst, out, o + 1);
    explicit_bzero(out, dstlen);
    free(out);
}

int pw_http_lro_terminal(const char *status)
{
    if (!status) return 0;
    if (strcasecmp(status, "Succeeded") == 0) return 1;
    if (strcasecmp(status, "Failed") == 0) return 2;
    if (strcasecmp(status, "Canceled") == 0 || strcasecmp(status, "Cancelled") == 0) return 3;
    return 0;
}

uint64_t pw_http_random(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        /* getrandom on Linux >= 3.17 does not fail for 8 bytes; keep a weak fallback anyway. */
        static uint64_t s = 0x9e3779b97f4a7c15ull;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v = s ^ (uint64_t)time(NULL);
    }
    return v;
}

void pw_http_guid(char out[37])
{
    uint64_t a = pw_http_random(), b = pw_http_random();
    unsigned char u[16];
    memcpy(u, &a, 8);
    memcpy(u + 8, &b, 8);
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}
