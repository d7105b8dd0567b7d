/* sim_server.c: azure-sim's HTTPS front: routes by Host to AAD, ARM and each Kusto cluster,
 * checks bearer tokens, serves the Kusto HTTP endpoint, injects faults, logs every request
 * and answers the /_sim/ inspection API. */
#include "sim_core.h"
#include "kusto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOG_CAP 10000                     /* request log ring size */
#define LOG_BYTES_MAX (64u * 1024 * 1024) /* the whole log: oldest entries go first */
#define LOG_BODY_MAX (64 * 1024)          /* logged bodies are cut here (bodyTruncated: true) */
#define HEADER_MEMORY (64 * 1024)         /* MHD per-connection memory: bounds request headers */
#define MAX_SLEEP_MS 600000               /* latency settings are capped at ten minutes */
#define ECHO_MAX 4096                     /* an echoing fault repeats at most this much input */
#define TOKEN_APPEND_MAX 256              /* faults.tokenAppend is at most this long */

#define AAD_HOST "login.microsoftonline.com"
#define ARM_HOST "management.azure.com"

enum host_kind { HOST_OTHER, HOST_AAD, HOST_ARM, HOST_KUSTO, HOST_IDENTITY };

struct sim_server {
    struct MHD_Daemon *d;
    struct MHD_Daemon *identity; /* plain HTTP, managed-identity endpoints; NULL when off */
    unsigned identity_port;
    sim_state *st;
    const sim_certs *certs;
    unsigned port;
    /* Under st->lock: */
    json_t *faults;   /* the /_sim/faults document */
    json_t *inflight; /* cluster host -> Kusto commands in flight */
    unsigned rand_seed;
    /* Under log_lock: */
    pthread_mutex_t log_lock;
    json_t *log[LOG_CAP];
    size_t log_size[LOG_CAP]; /* bytes each entry holds, roughly */
    size_t log_head, log_count, log_bytes;
    json_int_t log_seq;
};

typedef struct req_ctx {
    char *raw_uri; /* path with query, as sent */
    char *body;
    size_t len, cap;
    int started, too_large;
    uint64_t start_ms;
    char start_iso[32];
    char host[256];
    char activity_id[40];
    struct MHD_Connection *conn;
    sim_server *srv;
    int write_lost; /* faults.ignoreWrites took this request's write (logged) */
} req_ctx;

/* ---- helpers ---------------------------------------------------------------- */

static const char *req_header(const sim_request *req, const char *name)
{
    req_ctx *rc = req->impl;
    return MHD_lookup_connection_value(rc->conn, MHD_HEADER_KIND, name);
}

static const char *req_query(const sim_request *req, const char *name)
{
    req_ctx *rc = req->impl;
    return MHD_lookup_connection_value(rc->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Set when the server stops: injected sleeps end early so shutdown never waits them out. */
static volatile sig_atomic_t g_stopping;

static void sleep_ms(long ms)
{
    if (ms <= 0) return;
    if (ms > MAX_SLEEP_MS) ms = MAX_SLEEP_MS;
    uint64_t end = sim_now_ms() + (uint64_t)ms;
    while (!g_stopping) {
        uint64_t now = sim_now_ms();
        if (now >= end) break;
        uint64_t left = end - now < 50 ? end - now : 50;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static double rand01(sim_server *srv)
{
    return (double)rand_r(&srv->rand_seed) / ((double)RAND_MAX + 1.0);
}

static json_t *arm_error(const char *code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static json_t *arm_error(const char *code, const char *fmt, ...)
{
    char msg[ECHO_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sim_arm_error_body(code, NULL, msg);
}

/* A Kusto OneApi error body, in the engine's shape (sim_kusto_error_body): host names the
 * cluster (its first label becomes serviceAlias); never NULL, whatever bytes the client
 * request id or the message hold. */
static json_t *kusto_error(const char *host, const char *code, const char *type, int permanent,
                           const char *client_request_id, const char *activity_id, const char *fmt,
                           ...) __attribute__((format(printf, 7, 8)));
static json_t *kusto_error(const char *host, const char *code, const char *type, int permanent,
                           const char *client_request_id, const char *activity_id, const char *fmt,
                           ...)
{
    char msg[ECHO_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sim_kusto_error_body(strcmp(code, "NotFound") == 0 ? 404 : 400, host, code, type,
                                permanent, client_request_id, activity_id, NULL, msg);
}

/* An error body in the shape the host's service uses. */
static json_t *host_error(enum host_kind kind, const char *host, int status,
                          const char *activity_id, const char *crid, const char *why,
                          const char *code_given)
{
    const char *code = code_given && *code_given ? code_given
                       : status == 429           ? "TooManyRequests"
                       : status == 500           ? "InternalServerError"
                       : status == 503           ? "ServiceUnavailable"
                       : status == 413           ? "RequestEntityTooLarge"
                                                 : "InjectedFault";
    switch (kind) {
    case HOST_AAD:
        if (status == 413)
            return sim_aad_error("invalid_request", 900144, "The request body is too large.");
        return sim_aad_error("temporarily_unavailable", 90033,
                             "A transient error has occurred. Please try again. (%s)", why);
    case HOST_KUSTO:
        if (status == 413)
            return kusto_error(host, "PayloadTooLarge",
                               "Kusto.Data.Exceptions.KustoBadRequestException", 1, crid,
                               activity_id, "%s", why);
        return kusto_error(host, status == 429 && !(code_given && *code_given) ? "TooManyRequests" : code,
                           status == 429
                               ? "Kusto.DataNode.Exceptions.ControlCommandThrottledException"
                               : "Kusto.Data.Exceptions.KustoServiceException",
                           0, crid, activity_id, "%s", why);
    default:
        return arm_error(code, "%s", why);
    }
}

/* ---- request log -------------------------------------------------------------- */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    json_t *h = cls;
    if (!key) return MHD_YES;
    char v[600];
    if (strcasecmp(key, "Authorization") == 0) {
        size_t n = value ? strcspn(value, " ") : 0;
        snprintf(v, sizeof(v), "%.*s ***", (int)(n < 20 ? n : 20), value ? value : "");
    } else if (strcasecmp(key, "X-IDENTITY-HEADER") == 0) {
        snprintf(v, sizeof(v), "***");
    } else {
        snprintf(v, sizeof(v), "%s", value ? value : "");
    }
    char k[256];
    snprintf(k, sizeof(k), "%s", key);
    sim_utf8_scrub(k);
    sim_utf8_scrub(v);
    json_t *old = json_object_get(h, k);
    if (old) {
        char *joined = NULL;
        if (asprintf(&joined, "%s, %s", json_string_value(old), v) > 0) {
            json_object_set_new(h, k, json_string(joined));
            free(joined);
        }
    } else {
        json_object_set_new(h, k, json_string(v));
    }
    return MHD_YES;
}

/* A JSON string of n bytes of client data: invalid UTF-8 becomes '?' (a string that is
 * not UTF-8 would make the whole /_sim/requests document fail to serialize). */
static json_t *lossy_string(const char *p, size_t n)
{
    char *copy = malloc(n + 1);
    if (!copy) return json_string("");
    memcpy(copy, p, n);
    copy[n] = '\0';
    sim_utf8_scrub_n(copy, n);
    json_t *j = json_stringn(copy, n);
    free(copy);
    return j ? j : json_string("");
}

/* The body as logged: bounded, AAD secrets masked. */
static json_t *logged_body(const req_ctx *rc, enum host_kind kind, int *truncated)
{
    size_t n = rc->len < LOG_BODY_MAX ? rc->len : LOG_BODY_MAX;
    *truncated = rc->len > LOG_BODY_MAX || rc->too_large;
    if (kind != HOST_AAD) return lossy_string(rc->body ? rc->body : "", n);
    /* form body: client_secret=***, client_assertion=*** */
    char *out = malloc(n + 1);
    if (!out) return json_string("");
    size_t o = 0;
    const char *p = rc->body ? rc->body : "", *end = p + n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t len = amp ? (size_t)(amp - p) : (size_t)(end - p);
        int mask = (len >= 14 && strncmp(p, "client_secret=", 14) == 0) ||
                   (len >= 17 && strncmp(p, "client_assertion=", 17) == 0);
        if (mask) {
            size_t k = (size_t)((const char *)memchr(p, '=', len) - p) + 1;
            memcpy(out + o, p, k);
            o += k;
            if (len > k) {
                memcpy(out + o, "***", len - k < 3 ? len - k : 3);
                o += len - k < 3 ? len - k : 3;
            }
        } else {
            memcpy(out + o, p, len);
            o += len;
        }
        if (amp) out[o++] = '&';
        p += len + (amp ? 1 : 0);
    }
    json_t *j = lossy_string(out, o);
    free(out);
    return j;
}

/* Drops the oldest log entry (caller holds log_lock, log_count > 0). */
static void log_drop_oldest(sim_server *srv)
{
    json_decref(srv->log[srv->log_head]);
    srv->log[srv->log_head] = NULL;
    srv->log_bytes -= srv->log_size[srv->log_head];
    srv->log_head = (srv->log_head + 1) % LOG_CAP;
    srv->log_count--;
}

static void log_request(sim_server *srv, req_ctx *rc, const char *method, enum host_kind kind,
                        int status, int reset)
{
    json_t *hdrs = json_object();
    MHD_get_connection_values(rc->conn, MHD_HEADER_KIND, collect_header, hdrs);
    int truncated = 0;
    json_t *body = logged_body(rc, kind, &truncated);
    /* method, host and path as sent may hold any bytes; the log keeps every request */
    json_t *jm = lossy_string(method ? method : "", method ? strlen(method) : 0);
    json_t *jh = lossy_string(rc->host, strlen(rc->host));
    json_t *jp =
        lossy_string(rc->raw_uri ? rc->raw_uri : "", rc->raw_uri ? strlen(rc->raw_uri) : 0);
    json_t *e = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:b,s:i,s:I,s:b,s:s}", "time", rc->start_iso,
                          "method", jm, "host", jh, "path", jp, "headers", hdrs, "body", body,
                          "bodyTruncated", truncated, "status", status, "durationMs",
                          (json_int_t)(sim_now_ms() - rc->start_ms), "reset", reset, "activityId",
                          rc->activity_id);
    if (!e) return;
    if (rc->write_lost) json_object_set_new(e, "writeLost", json_true());
    /* Bytes this entry holds, roughly: body + path + headers (up to 64 KiB of them). */
    size_t size = json_string_length(body) + strlen(rc->raw_uri ? rc->raw_uri : "") + 512;
    const char *hk;
    json_t *hv;
    json_object_foreach(hdrs, hk, hv) size += strlen(hk) + json_string_length(hv) + 64;
    pthread_mutex_lock(&srv->log_lock);
    json_object_set_new(e, "seq", json_integer(++srv->log_seq));
    while (srv->log_count > 0 &&
           (srv->log_count == LOG_CAP || srv->log_bytes + size > LOG_BYTES_MAX))
        log_drop_oldest(srv);
    size_t idx = (srv->log_head + srv->log_count) % LOG_CAP;
    srv->log[idx] = e;
    srv->log_size[idx] = size;
    srv->log_bytes += size;
    srv->log_count++;
    pthread_mutex_unlock(&srv->log_lock);
}

/* ---- faults ------------------------------------------------------------------- */

/* Checks a faults document; 0 = ok. */
static int faults_check(json_t *f, char *err, size_t errlen)
{
    if (!json_is_object(f)) {
        snprintf(err, errlen, "faults must be a JSON object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(f, key, v)
    {
        if (!strcmp(key, "latencyMs") || !strcmp(key, "tokenDelayMs") ||
            !strcmp(key, "resetNext")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > MAX_SLEEP_MS) {
                snprintf(err, errlen, "faults.%s must be an integer 0..%d", key, MAX_SLEEP_MS);
                return -1;
            }
        } else if (!strcmp(key, "resetShare")) {
            if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
                snprintf(err, errlen, "faults.resetShare must be a number 0..1");
                return -1;
            }
        } else if (!strcmp(key, "errorShare")) {
            const char *k;
            json_t *s;
            double sum = 0;
            if (!json_is_object(v)) {
                snprintf(err, errlen, "faults.errorShare must be an object");
                return -1;
            }
            json_object_foreach(v, k, s)
            {
                if ((strcmp(k, "429") && strcmp(k, "500") && strcmp(k, "503")) ||
                    !json_is_number(s) || json_number_value(s) < 0) {
                    snprintf(err, errlen,
                             "faults.errorShare keys are \"429\", \"500\", \"503\" with "
                             "shares 0..1");
                    return -1;
                }
                sum += json_number_value(s);
            }
            if (sum > 1.0 + 1e-9) {
                snprintf(err, errlen, "faults.errorShare must sum to at most 1");
                return -1;
            }
        } else if (!strcmp(key, "failNext")) {
            size_t i;
            json_t *r;
            if (!json_is_array(v) || json_array_size(v) > 64) {
                snprintf(err, errlen, "faults.failNext must be an array of at most 64 rules");
                return -1;
            }
            json_array_foreach(v, i, r)
            {
                json_t *c = json_object_get(r, "count"), *s = json_object_get(r, "status");
                json_t *h = json_object_get(r, "host"), *ra = json_object_get(r, "retryAfter");
                const char *echo = json_string_value(json_object_get(r, "echo"));
                json_t *code = json_object_get(r, "code"), *match = json_object_get(r, "match");
                if ((code && (!json_is_string(code) || json_string_length(code) < 1 ||
                              json_string_length(code) > 63)) ||
                    (match && (!json_is_string(match) || json_string_length(match) < 1 ||
                               json_string_length(match) > 256)) ||
                    !json_is_integer(c) || json_integer_value(c) < 0 || !json_is_integer(s) ||
                    json_integer_value(s) < 400 || json_integer_value(s) > 599 ||
                    (h && !json_is_string(h)) || (ra && !json_is_integer(ra)) ||
                    (json_object_get(r, "echo") &&
                     (!echo || (strcmp(echo, "body") && strcmp(echo, "authorization"))))) {
                    snprintf(err, errlen,
                             "faults.failNext[%zu] needs count (>= 0), status (400..599), "
                             "optional host (string), retryAfter (integer), code (1-63 "
                             "characters), match (1-256 characters) and echo (\"body\" or "
                             "\"authorization\")",
                             i);
                    return -1;
                }
            }
        } else if (!strcmp(key, "ignoreWrites")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > 1000000000) {
                snprintf(err, errlen, "faults.ignoreWrites must be an integer 0..1000000000");
                return -1;
            }
        } else if (!strcmp(key, "ignoreWritesHost")) {
            if (!json_is_string(v) || json_string_length(v) > 255) {
                snprintf(err, errlen, "faults.ignoreWritesHost must be a host name");
                return -1;
            }
        } else if (!strcmp(key, "tokenAppend")) {
            if (!json_is_string(v) || json_string_length(v) > TOKEN_APPEND_MAX) {
                snprintf(err, errlen, "faults.tokenAppend must be a string of at most %d bytes",
                         TOKEN_APPEND_MAX);
                return -1;
            }
        } else if (!strcmp(key, "hosts")) {
            size_t i;
            json_t *h;
            if (!json_is_array(v)) {
                snprintf(err, errlen, "faults.hosts must be an array of host names");
                return -1;
            }
            json_array_foreach(v, i, h) if (!json_is_string(h))
            {
                snprintf(err, errlen, "faults.hosts must be an array of host names");
                return -1;
            }
        } else {
            snprintf(err, errlen, "unknown fault '%s'", key);
            return -1;
        }
    }
    return 0;
}

static int host_in(json_t *hosts, const char *host)
{
    if (!json_is_array(hosts)) return 1;
    size_t i;
    json_t *h;
    json_array_foreach(hosts, i, h) if (json_is_string(h) &&
                                        !strcasecmp(json_string_value(h), host)) return 1;
    return 0;
}

typedef struct fault_plan {
    int reset;
    int status;
    long retry_after;
    long latency_ms;
    long token_delay_ms;
    char echo[16];                           /* failNext "echo": "body", "authorization" or "" */
    char code[64];                           /* failNext "code": the error code, or "" */
    char token_append[TOKEN_APPEND_MAX + 1]; /* faults.tokenAppend */
} fault_plan;

/* Decides this request's faults (caller holds st->lock). */
static void faults_plan(sim_server *srv, const char *host, const char *body, fault_plan *fp)
{
    json_t *f = srv->faults;
    memset(fp, 0, sizeof(*fp));
    fp->token_delay_ms = (long)json_integer_value(json_object_get(f, "tokenDelayMs"));
    const char *append = json_string_value(json_object_get(f, "tokenAppend"));
    if (append) snprintf(fp->token_append, sizeof(fp->token_append), "%s", append);
    /* failNext rules have their own host filter. */
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(f, "failNext"), i, r)
    {
        json_t *c = json_object_get(r, "count");
        const char *h = json_string_value(json_object_get(r, "host"));
        const char *m = json_string_value(json_object_get(r, "match"));
        if (json_integer_value(c) <= 0 || (h && strcasecmp(h, host) != 0)) continue;
        if (m && (!body || !strstr(body, m))) continue;
        json_integer_set(c, json_integer_value(c) - 1);
        fp->status = (int)json_integer_value(json_object_get(r, "status"));
        json_t *ra = json_object_get(r, "retryAfter");
        fp->retry_after = ra ? (long)json_integer_value(ra) : 1;
        const char *echo = json_string_value(json_object_get(r, "echo"));
        snprintf(fp->echo, sizeof(fp->echo), "%s", echo ? echo : "");
        const char *code = json_string_value(json_object_get(r, "code"));
        snprintf(fp->code, sizeof(fp->code), "%s", code ? code : "");
        break;
    }
    if (!host_in(json_object_get(f, "hosts"), host)) return;
    fp->latency_ms = (long)json_integer_value(json_object_get(f, "latencyMs"));
    json_t *rn = json_object_get(f, "resetNext");
    if (json_integer_value(rn) > 0) {
        json_integer_set(rn, json_integer_value(rn) - 1);
        fp->reset = 1;
        return;
    }
    json_t *rs = json_object_get(f, "resetShare");
    if (rs && rand01(srv) < json_number_value(rs)) {
        fp->reset = 1;
        return;
    }
    if (fp->status) return;
    json_t *es = json_object_get(f, "errorShare");
    if (!es) return;
    double x = rand01(srv), acc = 0;
    static const char *const codes[] = {"429", "500", "503"};
    for (int k = 0; k < 3; k++) {
        acc += json_number_value(json_object_get(es, codes[k]));
        if (x < acc) {
            fp->status = atoi(codes[k]);
            fp->retry_after = 1;
            break;
        }
    }
}

/* faults.ignoreWrites: called (st->lock held) by ARM and the Kusto engine for a write that
 * passed its checks; 1 = lose it.  Counts down the fault (filtered by ignoreWritesHost). */
static int take_ignore_write(req_ctx *rc)
{
    json_t *f = rc->srv->faults;
    json_t *n = json_object_get(f, "ignoreWrites");
    const char *h = json_string_value(json_object_get(f, "ignoreWritesHost"));
    if (json_integer_value(n) <= 0 || (h && strcasecmp(h, rc->host) != 0)) return 0;
    json_integer_set(n, json_integer_value(n) - 1);
    rc->write_lost = 1;
    return 1;
}

static int req_ignore_write(const sim_request *req)
{
    return take_ignore_write(req->impl);
}

static int kusto_ignore_write(void *arg)
{
    return take_ignore_write(arg);
}

/* ---- token checks --------------------------------------------------------------- */

typedef struct token_info {
    json_t *claims; /* owned; the request's strings point into it */
    long long exp;
} token_info;

/* Verifies the bearer token and fills req's token fields. */
static void check_token(sim_server *srv, sim_request *req, token_info *ti)
{
    const char *auth = req->header(req, "Authorization");
    ti->claims = NULL;
    req->token_state = 0;
    if (!auth) return;
    req->token_state = 3;
    if (strncasecmp(auth, "Bearer ", 7) != 0) return;
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    json_t *hdr = NULL;
    if (sim_jwt_verify(tok, srv->certs->signing_key, &hdr, &ti->claims) != 0) return;
    json_decref(hdr);
    json_t *exp = json_object_get(ti->claims, "exp");
    json_t *nbf = json_object_get(ti->claims, "nbf");
    const char *aud = json_string_value(json_object_get(ti->claims, "aud"));
    if (!json_is_integer(exp) || !aud) return;
    ti->exp = (long long)json_integer_value(exp);
    long long now = sim_wall_s();
    req->caller_app_id = json_string_value(json_object_get(ti->claims, "appid"));
    req->caller_tenant_id = json_string_value(json_object_get(ti->claims, "tid"));
    req->token_audience = aud;
    if (json_is_integer(nbf) && json_integer_value(nbf) > now + 300) return;
    req->token_state = ti->exp < now ? 2 : 1;
}

static bool arm_audience(const char *aud)
{
    return sim_uri_eq(aud, "https://management.azure.com") ||
           sim_uri_eq(aud, "https://management.core.windows.net");
}

static void iso_of(long long t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, outlen, "%m/%d/%Y %H:%M:%S", &tm);
}

/* ARM's 401 answers; returns 1 when the request was refused. */
static int arm_auth_refused(sim_server *srv, sim_request *req, token_info *ti, sim_response *resp)
{
    const char *code = NULL, *desc = NULL;
    char msg[512];
    if (req->token_state == 0) {
        code = "AuthenticationFailed";
        desc = "The authentication failed because of missing 'Authorization' header.";
        snprintf(msg, sizeof(msg), "Authentication failed. The 'Authorization' header is missing.");
    } else if (req->token_state == 3) {
        code = "InvalidAuthenticationToken";
        desc = "The access token is invalid.";
        snprintf(msg, sizeof(msg), "The access token is invalid.");
    } else if (req->token_state == 2) {
        char a[32], b[32];
        iso_of(ti->exp, a, sizeof(a));
        iso_of(sim_wall_s(), b, sizeof(b));
        code = "ExpiredAuthenticationToken";
        desc = "The access token expiry UTC time is earlier than current UTC time.";
        snprintf(msg, sizeof(msg),
                 "The access token expiry UTC time '%s' is earlier than current UTC time '%s'.", a,
                 b);
    } else if (!arm_audience(req->token_audience)) {
        code = "InvalidAuthenticationTokenAudience";
        desc = "The access token has been obtained from wrong audience or resource.";
        snprintf(msg, sizeof(msg),
                 "The access token has been obtained for wrong audience or resource '%.200s'. It "
                 "should exactly match with one of the allowed audiences "
                 "'https://management.core.windows.net/','https://management.core.windows.net',"
                 "'https://management.azure.com/','https://management.azure.com'.",
                 req->token_audience);
    } else {
        return 0;
    }
    resp->status = 401;
    resp->body = arm_error(code, "%s", msg);
    pthread_mutex_lock(&srv->st->lock);
    json_t *t0 = json_array_get(json_object_get(srv->st->root, "tenants"), 0);
    char tid[64];
    snprintf(tid, sizeof(tid), "%s", json_string_value(json_object_get(t0, "id")) ?: "common");
    pthread_mutex_unlock(&srv->st->lock);
    sim_response_header(resp, "WWW-Authenticate",
                        "Bearer authorization_uri=\"https://login.microsoftonline.com/%s\", "
                        "error=\"invalid_token\", error_description=\"%s\"",
                        tid, desc);
    return 1;
}

/* Kusto accepts the cluster URI, kusto.kusto.windows.net and api.kusto.windows.net. */
static bool kusto_audience(const char *aud, const char *cluster_uri)
{
    return sim_uri_eq(aud, cluster_uri) || sim_uri_eq(aud, "https://kusto.kusto.windows.net") ||
           sim_uri_eq(aud, "https://api.kusto.windows.net");
}

/* ---- Kusto endpoint ----------------------------------------------------------------- */

static void kusto_metadata(sim_response *resp)
{
    resp->status = 200;
    resp->body = json_pack(
        "{s:{s:s,s:b,s:s,s:s,s:s,s:s},s:{s:s,s:s,s:s,s:s,s:s}}", "AzureAD", "LoginEndpoint",
        "https://login.microsoftonline.com", "LoginMfaRequired", 0, "KustoClientAppId",
        "db662dc1-0cfe-4e1c-a843-19a68e65be58", "KustoClientRedirectUri",
        "https://microsoft/kustoclient", "KustoServiceResourceId",
        "https://kusto.kusto.windows.net", "FirstPartyAuthorityUrl",
        "https://login.microsoftonline.com/f8cdef31-a31e-4b4a-93e4-5f571e91255a", "dSTS",
        "CloudEndpointSuffix", "windows.net", "DstsRealm", "realm://dsts.core.windows.net",
        "DstsInstance", "prod-dsts.dsts.core.windows.net", "KustoDnsHostName", "kusto.windows.net",
        "ServiceName", "kusto");
}

static void kusto_mgmt(sim_server *srv, sim_request *req, const char *crid, sim_response *resp)
{
    sim_state *st = srv->st;
    json_error_t je;
    const char *aid = req->activity_id;
    json_t *doc = json_loadb(req->body, req->body_len, 0, &je);
    json_t *props_parsed = NULL;
    if (!doc || !json_is_object(doc)) {
        resp->status = 400;
        resp->body = kusto_error(req->host, "General_BadRequest",
                                 "Kusto.Data.Exceptions.KustoBadRequestException", 1, crid, aid,
                                 "Request is invalid and cannot be processed: the body is not a "
                                 "JSON object (%s).",
                                 doc ? "not an object" : je.text);
        json_decref(doc);
        return;
    }
    json_t *csl = json_object_get(doc, "csl"), *db = json_object_get(doc, "db");
    json_t *props = json_object_get(doc, "properties");
    const char *bad = NULL;
    if (!json_is_string(csl) || json_string_length(csl) == 0)
        bad = "'csl' must be a non-empty string";
    else if (db && !json_is_string(db) && !json_is_null(db))
        bad = "'db' must be a string";
    else if (props && json_is_string(props)) {
        props_parsed = json_loads(json_string_value(props), 0, NULL);
        if (!json_is_object(props_parsed))
            bad = "'properties' given as a string must hold a JSON object";
    } else if (props && !json_is_object(props) && !json_is_null(props))
        bad = "'properties' must be an object or a JSON string";
    if (bad) {
        resp->status = 400;
        resp->body = kusto_error(req->host, "General_BadRequest",
                                 "Kusto.Data.Exceptions.KustoBadRequestException", 1, crid, aid,
                                 "Request is invalid and cannot be processed: %s.", bad);
        json_decref(doc);
        json_decref(props_parsed);
        return;
    }
    json_decref(props_parsed);

    /* Admission: the concurrency limit counts commands waiting and running. */
    pthread_mutex_lock(&st->lock);
    long max = sim_setting(st, "kustoMaxConcurrent", 8);
    long latency = sim_setting(st, "kustoCommandLatencyMs", 0);
    json_t *n = json_object_get(srv->inflight, req->host);
    json_int_t cur = json_integer_value(n);
    if (cur >= max) {
        pthread_mutex_unlock(&st->lock);
        resp->status = 429;
        resp->body = kusto_error(
            req->host, "TooManyRequests",
            "Kusto.DataNode.Exceptions.ControlCommandThrottledException", 0, crid, aid,
            "The control command was aborted due to throttling. Retrying after some backoff "
            "might succeed. CommandType: 'AdminCommand', Capacity: %ld, Origin: "
            "'CapacityPolicy/ControlCommand'.",
            max);
        sim_response_header(resp, "Retry-After", "1");
        json_decref(doc);
        return;
    }
    json_object_set_new(srv->inflight, req->host, json_integer(cur + 1));
    pthread_mutex_unlock(&st->lock);

    /* Wait out kustoCommandLatencyMs, re-reading it so that lowering the setting releases
     * commands already waiting. */
    uint64_t t0 = sim_now_ms();
    while (!g_stopping && latency > 0 && sim_now_ms() - t0 < (uint64_t)latency) {
        sleep_ms(latency - (long)(sim_now_ms() - t0) < 50 ? latency - (long)(sim_now_ms() - t0)
                                                          : 50);
        pthread_mutex_lock(&st->lock);
        latency = sim_setting(st, "kustoCommandLatencyMs", 0);
        pthread_mutex_unlock(&st->lock);
    }

    pthread_mutex_lock(&st->lock);
    /* ARM operations that are due have finished: their changes show in Kusto too, whether
     * or not anyone polled ARM since (one state behind both front doors, as in Azure). */
    sim_arm_tick(st);
    json_t *cluster = sim_state_cluster_by_host(st->root, req->host);
    if (!cluster) {
        resp->status = 404;
        resp->body =
            kusto_error(req->host, "NotFound", "Kusto.Data.Exceptions.EntityNotFoundException", 1,
                        crid, aid, "The cluster '%s' no longer exists.", req->host);
    } else {
        sim_kusto_caller caller = {req->caller_app_id, req->caller_tenant_id};
        sim_kusto_hooks hooks = {kusto_ignore_write, req->impl};
        json_t *out = NULL;
        const char *dbname = json_string_value(db);
        resp->status = sim_kusto_execute_hooked(cluster, dbname, json_string_value(csl), &caller,
                                                crid, aid, &hooks, &out);
        resp->body = out;
    }
    n = json_object_get(srv->inflight, req->host);
    json_object_set_new(srv->inflight, req->host,
                        json_integer(json_integer_value(n) > 0 ? json_integer_value(n) - 1 : 0));
    pthread_mutex_unlock(&st->lock);
    json_decref(doc);
}

static void kusto_handle(sim_server *srv, sim_request *req, const char *cluster_uri,
                         const char *crid, sim_response *resp)
{
    const char *aid = req->activity_id;
    if (!strcasecmp(req->path, "/v1/rest/auth/metadata")) {
        if (strcmp(req->method, "GET") != 0) goto method;
        kusto_metadata(resp);
        return;
    }
    if (!strcasecmp(req->path, "/v1/rest/mgmt")) {
        if (strcmp(req->method, "POST") != 0) goto method;
        if (req->token_state != 1 || !kusto_audience(req->token_audience, cluster_uri)) {
            resp->status = 401; /* Kusto answers 401 with an empty body */
            return;
        }
        kusto_mgmt(srv, req, crid, resp);
        return;
    }
    resp->status = 404;
    resp->body = kusto_error(req->host, "NotFound",
                             "Kusto.Common.Svc.Exceptions.EndpointNotFoundException", 1, crid, aid,
                             "azure-sim serves only POST /v1/rest/mgmt and GET "
                             "/v1/rest/auth/metadata on a cluster; '%.200s' is not served.",
                             req->path);
    return;
method:
    resp->status = 405;
    resp->body =
        kusto_error(req->host, "BadRequest", "Kusto.Data.Exceptions.KustoBadRequestException", 1,
                    crid, aid, "Method '%s' is not allowed on '%s'.", req->method, req->path);
    sim_response_header(resp, "Allow", "%s",
                        strcasecmp(req->path, "/v1/rest/mgmt") ? "GET" : "POST");
}

/* ---- /_sim/ -------------------------------------------------------------------------- */

static const char *const SETTING_KEYS[] = {
    "lroDurationMs",         "lroRetryAfterSeconds",    "tokenLifetimeSeconds",
    "armWriteBucket",        "armWriteRefillPerSecond", "kustoMaxConcurrent",
    "kustoCommandLatencyMs", "armReadBucket",           "armReadRefillPerSecond",
    "armListPageSize",
};

static void admin_error(sim_response *resp, int status, const char *code, const char *msg)
{
    resp->status = status;
    resp->body = arm_error(code, "%s", msg);
}

static json_t *parse_body(const sim_request *req, sim_response *resp)
{
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        char msg[300];
        snprintf(msg, sizeof(msg), "The body is not valid JSON: %s (line %d).", je.text, je.line);
        admin_error(resp, 400, "InvalidJson", msg);
    }
    return j;
}

static json_t *default_settings(void)
{
    json_t *d = sim_state_default();
    json_t *s = json_incref(json_object_get(d, "settings"));
    json_decref(d);
    return s;
}

static void admin_settings(sim_server *srv, const sim_request *req, sim_response *resp)
{
    sim_state *st = srv->st;
    if (!strcmp(req->method, "GET")) {
        pthread_mutex_lock(&st->lock);
        resp->body = json_deep_copy(json_object_get(st->root, "settings"));
        pthread_mutex_unlock(&st->lock);
        resp->status = 200;
        return;
    }
    if (strcmp(req->method, "PATCH") && strcmp(req->method, "PUT")) {
        admin_error(resp, 405, "MethodNotAllowed", "Use GET, PUT or PATCH on /_sim/settings.");
        return;
    }
    json_t *in = parse_body(req, resp);
    if (!in) return;
    const char *key;
    json_t *v;
    if (!json_is_object(in)) {
        admin_error(resp, 400, "InvalidSettings", "Settings must be a JSON object.");
        json_decref(in);
        return;
    }
    json_object_foreach(in, key, v)
    {
        size_t i, nk = sizeof(SETTING_KEYS) / sizeof(SETTING_KEYS[0]);
        for (i = 0; i < nk; i++)
            if (!strcmp(key, SETTING_KEYS[i])) break;
        if (i == nk || !json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > 1000000000) {
            char msg[300];
            snprintf(msg, sizeof(msg),
                     "Setting '%.100s' is unknown or not an integer 0..1000000000.", key);
            admin_error(resp, 400, "InvalidSettings", msg);
            json_decref(in);
            return;
        }
    }
    pthread_mutex_lock(&st->lock);
    json_t *s = json_object_get(st->root, "settings");
    if (!json_is_object(s)) {
        s = default_settings();
        json_object_set_new(st->root, "settings", s);
    }
    json_object_update(s, in);
    resp->body = json_deep_copy(s);
    pthread_mutex_unlock(&st->lock);
    json_decref(in);
    resp->status = 200;
}

static void admin_state(sim_server *srv, const sim_request *req, sim_response *resp)
{
    sim_state *st = srv->st;
    if (!strcmp(req->method, "GET")) {
        pthread_mutex_lock(&st->lock);
        sim_arm_tick(st); /* show ARM operations that are due as finished */
        resp->body = json_deep_copy(st->root);
        pthread_mutex_unlock(&st->lock);
        resp->status = 200;
        return;
    }
    if (strcmp(req->method, "PUT")) {
        admin_error(resp, 405, "MethodNotAllowed", "Use GET or PUT on /_sim/state.");
        return;
    }
    json_t *in = parse_body(req, resp);
    if (!in) return;
    char err[300];
    if (sim_state_check(in, err, sizeof(err)) != 0) {
        admin_error(resp, 400, "InvalidState", err);
        json_decref(in);
        return;
    }
    /* Settings absent from the new state keep their defaults. */
    json_t *defs = default_settings();
    json_t *s = json_object_get(in, "settings");
    if (!s) {
        json_object_set(in, "settings", defs);
    } else {
        json_object_update_missing(s, defs);
    }
    json_decref(defs);
    pthread_mutex_lock(&st->lock);
    json_decref(st->root);
    st->root = in;
    resp->body = json_deep_copy(in);
    pthread_mutex_unlock(&st->lock);
    resp->status = 200;
}

static void admin_requests(sim_server *srv, const sim_request *req, sim_response *resp)
{
    if (!strcmp(req->method, "DELETE")) {
        pthread_mutex_lock(&srv->log_lock);
        for (size_t i = 0; i < srv->log_count; i++) {
            size_t idx = (srv->log_head + i) % LOG_CAP;
            json_decref(srv->log[idx]);
            srv->log[idx] = NULL;
        }
        srv->log_head = srv->log_count = srv->log_bytes = 0;
        pthread_mutex_unlock(&srv->log_lock);
        resp->status = 204;
        return;
    }
    if (strcmp(req->method, "GET")) {
        admin_error(resp, 405, "MethodNotAllowed", "Use GET or DELETE on /_sim/requests.");
        return;
    }
    const char *since_s = req->query(req, "since"), *host = req->query(req, "host");
    json_int_t since = since_s ? strtoll(since_s, NULL, 10) : 0;
    json_t *arr = json_array();
    pthread_mutex_lock(&srv->log_lock);
    for (size_t i = 0; i < srv->log_count; i++) {
        json_t *e = srv->log[(srv->log_head + i) % LOG_CAP];
        if (json_integer_value(json_object_get(e, "seq")) <= since) continue;
        if (host && strcasecmp(host, json_string_value(json_object_get(e, "host")))) continue;
        json_array_append(arr, e);
    }
    json_int_t last = srv->log_seq;
    pthread_mutex_unlock(&srv->log_lock);
    /* The entries are immutable once logged, so sharing them is safe; dumping happens
     * after this function, while the log may drop them: the array holds references. */
    resp->body = json_pack("{s:o,s:I}", "requests", arr, "lastSeq", last);
    resp->status = 200;
}

static void admin_faults(sim_server *srv, const sim_request *req, sim_response *resp)
{
    sim_state *st = srv->st;
    if (!strcmp(req->method, "GET")) {
        pthread_mutex_lock(&st->lock);
        resp->body = json_deep_copy(srv->faults);
        pthread_mutex_unlock(&st->lock);
        resp->status = 200;
        return;
    }
    if (!strcmp(req->method, "DELETE")) {
        pthread_mutex_lock(&st->lock);
        json_decref(srv->faults);
        srv->faults = json_object();
        pthread_mutex_unlock(&st->lock);
        resp->status = 200;
        resp->body = json_object();
        return;
    }
    if (strcmp(req->method, "PUT") && strcmp(req->method, "PATCH")) {
        admin_error(resp, 405, "MethodNotAllowed",
                    "Use GET, PUT, PATCH or DELETE on /_sim/faults.");
        return;
    }
    json_t *in = parse_body(req, resp);
    if (!in) return;
    char err[300];
    pthread_mutex_lock(&st->lock);
    json_t *next = !strcmp(req->method, "PATCH") ? json_deep_copy(srv->faults) : json_object();
    if (json_is_object(in)) json_object_update(next, in);
    if (!json_is_object(in) || faults_check(next, err, sizeof(err)) != 0) {
        pthread_mutex_unlock(&st->lock);
        admin_error(resp, 400, "InvalidFaults",
                    json_is_object(in) ? err : "faults must be a JSON object");
        json_decref(next);
        json_decref(in);
        return;
    }
    json_decref(srv->faults);
    srv->faults = next;
    resp->body = json_deep_copy(next);
    pthread_mutex_unlock(&st->lock);
    json_decref(in);
    resp->status = 200;
}

/* POST /_sim/token {"appId", "tenantId"?, "aud", "lifetimeSeconds"?}: mints an access token
 * without AAD (for tests: expired or wrong-audience tokens). */
static void admin_token(sim_server *srv, const sim_request *req, sim_response *resp)
{
    if (strcmp(req->method, "POST")) {
        admin_error(resp, 405, "MethodNotAllowed", "Use POST on /_sim/token.");
        return;
    }
    json_t *in = parse_body(req, resp);
    if (!in) return;
    const char *app = json_string_value(json_object_get(in, "appId"));
    const char *aud = json_string_value(json_object_get(in, "aud"));
    const char *tid = json_string_value(json_object_get(in, "tenantId"));
    json_t *life = json_object_get(in, "lifetimeSeconds");
    if (!app || !aud || (life && !json_is_integer(life))) {
        admin_error(resp, 400, "InvalidRequest",
                    "Needs appId and aud (strings), optional tenantId and lifetimeSeconds "
                    "(integer, may be negative).");
        json_decref(in);
        return;
    }
    if (!tid) tid = "11111111-1111-1111-1111-111111111111";
    long long now = sim_wall_s();
    json_int_t l = life ? json_integer_value(life) : 3600;
    char iss[128];
    snprintf(iss, sizeof(iss), "https://sts.windows.net/%s/", tid);
    json_t *claims = json_pack(
        "{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s}", "aud", aud, "iss", iss, "iat", (json_int_t)now,
        "nbf", (json_int_t)(l < 0 ? now + l - 60 : now), "exp", (json_int_t)(now + l), "tid", tid,
        "appid", app, "oid", app, "idtyp", "app", "ver", "1.0");
    char *tok =
        claims ? sim_jwt_sign(srv->certs->signing_key, srv->certs->signing_kid, claims) : NULL;
    json_decref(claims);
    json_decref(in);
    if (!tok) {
        admin_error(resp, 500, "InternalError", "The token could not be signed.");
        return;
    }
    resp->status = 200;
    resp->body = json_pack("{s:s,s:I}", "access_token", tok, "expires_in", l);
    free(tok);
}

/* POST /_sim/federated-token {"subject", "audience"?, "issuer"?, "lifetimeSeconds"?}: a token
 * of the test OIDC issuer (SIM_TEST_ISSUER; audience default api://AzureADTokenExchange,
 * lifetime 3600, may be negative), what a Kubernetes projected service account token is to
 * Entra ID's workload identity federation.  Another issuer's name may be given: the token is
 * still signed with the test issuer's key (Entra ID then fails its signature). */
static void admin_federated_token(sim_server *srv, const sim_request *req, sim_response *resp)
{
    if (strcmp(req->method, "POST")) {
        admin_error(resp, 405, "MethodNotAllowed", "Use POST on /_sim/federated-token.");
        return;
    }
    json_t *in = parse_body(req, resp);
    if (!in) return;
    const char *sub = json_string_value(json_object_get(in, "subject"));
    const char *aud = json_string_value(json_object_get(in, "audience"));
    const char *iss = json_string_value(json_object_get(in, "issuer"));
    json_t *life = json_object_get(in, "lifetimeSeconds");
    if (!sub || (life && !json_is_integer(life)) ||
        (json_object_get(in, "audience") && !aud) || (json_object_get(in, "issuer") && !iss)) {
        admin_error(resp, 400, "InvalidRequest",
                    "Needs subject (string); optional audience, issuer (strings) and "
                    "lifetimeSeconds (integer, may be negative).");
        json_decref(in);
        return;
    }
    long l = life ? (long)json_integer_value(life) : 3600;
    char *tok = sim_federated_token(srv->certs, iss ? iss : SIM_TEST_ISSUER, sub,
                                    aud ? aud : SIM_FEDERATED_AUDIENCE, l);
    if (!tok) {
        admin_error(resp, 500, "InternalError", "The token could not be signed.");
        json_decref(in);
        return;
    }
    resp->status = 200;
    resp->body = json_pack("{s:s,s:s,s:s,s:I}", "token", tok, "issuer", iss ? iss : SIM_TEST_ISSUER,
                           "audience", aud ? aud : SIM_FEDERATED_AUDIENCE, "expires_in",
                           (json_int_t)l);
    free(tok);
    json_decref(in);
}

static void admin_handle(sim_server *srv, const sim_request *req, sim_response *resp)
{
    const char *p = req->path + 5; /* after "/_sim" */
    if (!strcmp(p, "/state"))
        admin_state(srv, req, resp);
    else if (!strcmp(p, "/settings"))
        admin_settings(srv, req, resp);
    else if (!strcmp(p, "/requests"))
        admin_requests(srv, req, resp);
    else if (!strcmp(p, "/faults"))
        admin_faults(srv, req, resp);
    else if (!strcmp(p, "/token"))
        admin_token(srv, req, resp);
    else if (!strcmp(p, "/federated-token"))
        admin_federated_token(srv, req, resp);
    else if (!strcmp(p, "/health")) {
        resp->status = 200;
        pthread_mutex_lock(&srv->st->lock);
        json_t *inflight = json_deep_copy(srv->inflight);
        pthread_mutex_unlock(&srv->st->lock);
        resp->body = json_pack("{s:s,s:s,s:o}", "status", "ok", "baseUrl", srv->st->base_url,
                               "kustoInFlight", inflight);
    } else
        admin_error(resp, 404, "NotFound",
                    "Unknown /_sim endpoint; see tools/azure-sim/README.md (state, settings, "
                    "requests, faults, token, federated-token, health).");
}

/* ---- dispatch --------------------------------------------------------------------------- */

static enum MHD_Result send_response(struct MHD_Connection *conn, sim_response *resp)
{
    char *text = NULL;
    size_t len = 0;
    int has_ct = 0;
    if (resp->body) {
        text = json_dumps(resp->body, JSON_COMPACT);
        len = text ? strlen(text) : 0;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, text ? text : (void *)"", text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    for (size_t i = 0; i < resp->header_count; i++) {
        if (!strcasecmp(resp->headers[i].name, "Content-Type")) has_ct = 1;
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    }
    if (text && !has_ct)
        MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void reset_connection(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return;
    struct linger lg = {1, 0}; /* close() then sends RST */
    setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* The message of an injected error.  With failNext "echo", it repeats part of the request
 * (the body, or the Authorization header) the way some endpoints and proxies do in their
 * errors: a client must never pass such text on unredacted. */
static void injected_why(const sim_request *req, const char *echo, char *out, size_t outlen)
{
    const char *what = NULL, *text = NULL;
    if (!strcmp(echo, "body")) {
        what = "request body";
        text = req->body;
    } else if (!strcmp(echo, "authorization")) {
        what = "Authorization header";
        text = req_header(req, "Authorization");
    }
    if (!what) {
        snprintf(out, outlen, "azure-sim injected this failure (/_sim/faults).");
        return;
    }
    snprintf(out, outlen, "azure-sim injected this failure (/_sim/faults); the %s was: %.*s", what,
             ECHO_MAX, text ? text : "");
    sim_utf8_scrub(out);
}

/* faults.tokenAppend: a 200 token answer's access_token gets the text appended (a broken
 * or hostile token endpoint, e.g. one putting CR/LF into the token). */
static void append_to_token(sim_response *resp, const char *append)
{
    const char *tok = json_string_value(json_object_get(resp->body, "access_token"));
    if (resp->status != 200 || !tok) return;
    char *both = NULL;
    if (asprintf(&both, "%s%s", tok, append) < 0) return;
    json_object_set_new(resp->body, "access_token", json_string(both));
    free(both);
}

/* properties.ClientRequestId of a Kusto body (object or JSON-string properties); 0 = found. */
static int body_client_request_id(const req_ctx *rc, char *out, size_t outlen)
{
    if (!rc->body || rc->too_large) return -1;
    json_t *doc = json_loadb(rc->body, rc->len, 0, NULL);
    json_t *props = json_object_get(doc, "properties"), *parsed = NULL;
    if (json_is_string(props)) props = parsed = json_loads(json_string_value(props), 0, NULL);
    const char *id = json_string_value(json_object_get(props, "ClientRequestId"));
    int rc_ = -1;
    if (id && id[0] && strlen(id) < outlen) {
        snprintf(out, outlen, "%s", id);
        rc_ = 0;
    }
    json_decref(parsed);
    json_decref(doc);
    return rc_;
}

static enum MHD_Result dispatch(sim_server *srv, req_ctx *rc, const char *url, const char *method)
{
    sim_state *st = srv->st;
    sim_response resp;
    memset(&resp, 0, sizeof(resp));
    sim_request req;
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.host = rc->host;
    req.path = url;
    req.body = rc->body ? rc->body : "";
    req.body_len = rc->len;
    req.header = req_header;
    req.query = req_query;
    req.impl = rc;
    req.activity_id = rc->activity_id;
    req.ignore_write = req_ignore_write;
    rc->srv = srv;
    token_info ti = {NULL, 0};

    if (!strncmp(url, "/_sim/", 6) || !strcmp(url, "/_sim")) {
        if (rc->too_large)
            admin_error(&resp, 413, "RequestEntityTooLarge", "Body over 8 MiB.");
        else
            admin_handle(srv, &req, &resp);
        enum MHD_Result r = send_response(rc->conn, &resp);
        json_decref(resp.body);
        return r;
    }

    char cluster_uri[256] = "";
    enum host_kind kind = HOST_OTHER;
    int cluster_known = 0;
    fault_plan fp;
    pthread_mutex_lock(&st->lock);
    if (!strcmp(rc->host, AAD_HOST))
        kind = HOST_AAD;
    else if (!strcmp(rc->host, ARM_HOST))
        kind = HOST_ARM;
    else {
        json_t *cl = sim_state_cluster_by_host(st->root, rc->host);
        if (cl) {
            kind = HOST_KUSTO;
            cluster_known = 1;
            snprintf(cluster_uri, sizeof(cluster_uri), "%s",
                     json_string_value(json_object_get(cl, "uri")));
        } else if (strlen(rc->host) > 18 &&
                   !strcmp(rc->host + strlen(rc->host) - 18, ".kusto.windows.net")) {
            kind = HOST_KUSTO;
        }
    }
    faults_plan(srv, rc->host, rc->body && !rc->too_large ? rc->body : NULL, &fp);
    pthread_mutex_unlock(&st->lock);

    const char *crid = req_header(&req, "x-ms-client-request-id");
    char crid_buf[256];
    if (kind == HOST_KUSTO && !crid) {
        if (body_client_request_id(rc, crid_buf, sizeof(crid_buf)) == 0) {
            crid = crid_buf;
        } else {
            char g[40];
            sim_guid(g, sizeof(g));
            snprintf(crid_buf, sizeof(crid_buf), "KSIM.execute;%s", g);
            crid = crid_buf;
        }
    }

    sleep_ms(fp.latency_ms);
    if (fp.reset) {
        log_request(srv, rc, method, kind, 0, 1);
        reset_connection(rc->conn);
        return MHD_NO;
    }

    if (rc->too_large) {
        resp.status = 413;
        resp.body = host_error(kind, rc->host, 413, rc->activity_id, crid,
                               "The request body is larger than the 1 MiB azure-sim accepts.",
                               NULL);
    } else if (fp.status) {
        char why[ECHO_MAX + 128];
        injected_why(&req, fp.echo, why, sizeof(why));
        resp.status = fp.status;
        resp.body = host_error(kind, rc->host, fp.status, rc->activity_id, crid, why, fp.code);
        if (fp.status == 429 || fp.status == 503)
            sim_response_header(&resp, "Retry-After", "%ld", fp.retry_after);
    } else if (kind == HOST_AAD) {
        sleep_ms(fp.token_delay_ms);
        pthread_mutex_lock(&st->lock);
        sim_aad_handle(st, srv->certs, &req, &resp);
        pthread_mutex_unlock(&st->lock);
        if (fp.token_append[0]) append_to_token(&resp, fp.token_append);
    } else if (kind == HOST_ARM) {
        check_token(srv, &req, &ti);
        if (!arm_auth_refused(srv, &req, &ti, &resp)) {
            pthread_mutex_lock(&st->lock);
            sim_arm_handle(st, &req, &resp); /* runs sim_arm_tick first */
            pthread_mutex_unlock(&st->lock);
        }
    } else if (kind == HOST_KUSTO && cluster_known) {
        check_token(srv, &req, &ti);
        kusto_handle(srv, &req, cluster_uri, crid, &resp);
    } else if (kind == HOST_KUSTO) {
        resp.status = 404;
        resp.body = kusto_error(
            rc->host, "NotFound", "Kusto.Data.Exceptions.EntityNotFoundException", 1, crid,
            rc->activity_id, "No cluster with host '%s' exists in azure-sim's state.", rc->host);
    } else {
        resp.status = 404;
        resp.body = arm_error("NotFound",
                              "azure-sim does not serve host '%.200s'; it serves %s, %s, the "
                              "clusters in its state and /_sim/ on any host.",
                              rc->host[0] ? rc->host : "(none)", AAD_HOST, ARM_HOST);
    }
    if (resp.status < 100 || resp.status > 599) resp.status = 500;

    if (kind == HOST_ARM) {
        const char *corr = req_header(&req, "x-ms-correlation-request-id");
        sim_response_header(&resp, "x-ms-request-id", "%s", rc->activity_id);
        sim_response_header(&resp, "x-ms-correlation-request-id", "%.100s",
                            corr ? corr : rc->activity_id);
    } else if (kind == HOST_KUSTO) {
        sim_response_header(&resp, "x-ms-client-request-id", "%.400s", crid);
        sim_response_header(&resp, "x-ms-activity-id", "%s", rc->activity_id);
    } else if (kind == HOST_AAD) {
        sim_response_header(&resp, "x-ms-request-id", "%s", rc->activity_id);
    }
    enum MHD_Result r = send_response(rc->conn, &resp);
    log_request(srv, rc, method, kind, resp.status, 0);
    json_decref(resp.body);
    json_decref(ti.claims);
    return r;
}

/* ---- MHD callbacks ------------------------------------------------------------------------ */

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *conn)
{
    req_ctx *rc = calloc(1, sizeof(*rc));
    if (!rc) return NULL;
    rc->raw_uri = strndup(uri ? uri : "", 8192);
    rc->conn = conn;
    rc->start_ms = sim_now_ms();
    sim_now_iso(rc->start_iso, sizeof(rc->start_iso));
    sim_guid(rc->activity_id, sizeof(rc->activity_id));
    return rc;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    req_ctx *rc = *con_cls;
    if (!rc) return;
    free(rc->raw_uri);
    free(rc->body);
    free(rc);
    *con_cls = NULL;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    sim_server *srv = cls;
    req_ctx *rc = *con_cls;
    if (!rc) {
        rc = uri_logger(NULL, url, conn);
        if (!rc) return MHD_NO;
        *con_cls = rc;
    }
    rc->conn = conn;
    size_t limit = strncmp(url, "/_sim", 5) ? SIM_BODY_LIMIT : SIM_ADMIN_BODY_LIMIT;
    if (!rc->started) {
        rc->started = 1;
        const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
        size_t n = 0;
        if (h) {
            if (h[0] == '[')
                n = strcspn(h, "]") + (strchr(h, ']') ? 1 : 0);
            else
                n = strcspn(h, ":");
        }
        if (n >= sizeof(rc->host)) n = sizeof(rc->host) - 1;
        for (size_t i = 0; i < n; i++)
            rc->host[i] = (char)tolower((unsigned char)h[i]);
        rc->host[n] = '\0';
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > limit) {
            rc->too_large = 1;
            rc->started = 2;                       /* later calls must not answer again */
            return dispatch(srv, rc, url, method); /* answer now; MHD closes afterwards */
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rc->too_large) {
            if (rc->len + *upload_data_size > limit) {
                rc->too_large = 1;
                free(rc->body);
                rc->body = NULL;
                rc->len = rc->cap = 0;
            } else {
                if (rc->len + *upload_data_size + 1 > rc->cap) {
                    size_t cap = rc->cap ? rc->cap : 4096;
                    while (cap < rc->len + *upload_data_size + 1)
                        cap *= 2;
                    char *nb = realloc(rc->body, cap);
                    if (!nb) return MHD_NO;
                    rc->body = nb;
                    rc->cap = cap;
                }
                memcpy(rc->body + rc->len, upload_data, *upload_data_size);
                rc->len += *upload_data_size;
                rc->body[rc->len] = '\0';
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rc->too_large && rc->started > 1) return MHD_YES; /* answered already */
    rc->started = 2;
    return dispatch(srv, rc, url, method);
}

/* The plain-HTTP identity listener: GETs only (a body is ignored), no faults. */
static enum MHD_Result identity_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **con_cls)
{
    sim_server *srv = cls;
    req_ctx *rc = *con_cls;
    (void)version;
    (void)upload_data;
    if (!rc) {
        rc = uri_logger(NULL, url, conn);
        if (!rc) return MHD_NO;
        *con_cls = rc;
    }
    rc->conn = conn;
    if (!rc->started) {
        rc->started = 1;
        const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
        size_t n = h ? strcspn(h, ":") : 0;
        if (n >= sizeof(rc->host)) n = sizeof(rc->host) - 1;
        for (size_t i = 0; i < n; i++)
            rc->host[i] = (char)tolower((unsigned char)h[i]);
        rc->host[n] = '\0';
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    sim_request req;
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.host = rc->host;
    req.path = url;
    req.body = "";
    req.header = req_header;
    req.query = req_query;
    req.impl = rc;
    req.activity_id = rc->activity_id;
    rc->srv = srv;
    sim_response resp;
    memset(&resp, 0, sizeof(resp));
    pthread_mutex_lock(&srv->st->lock);
    sim_identity_handle(srv->st, srv->certs, &req, &resp);
    pthread_mutex_unlock(&srv->st->lock);
    enum MHD_Result r = send_response(conn, &resp);
    log_request(srv, rc, method, HOST_IDENTITY, resp.status, 0);
    json_decref(resp.body);
    return r;
}

unsigned sim_server_identity_start(sim_server *srv, const char *listen, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    char host[64];
    const char *colon = strrchr(listen, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || (size_t)(colon - listen) >= sizeof(host) || !end || *end || port < 0 ||
        port > 65535) {
        snprintf(err, errlen, "--identity-listen needs 127.x.y.z:PORT, got '%s'", listen);
        return 0;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    /* Plain HTTP is served on loopback only (IMDS's contract, kept off every other address). */
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
        snprintf(err, errlen, "--identity-listen: plain HTTP on a loopback address only, got '%s'",
                 listen);
        return 0;
    }
    sa.sin_port = htons((uint16_t)port);
    srv->identity = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, identity_handler, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_URI_LOG_CALLBACK, uri_logger, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed,
        NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_END);
    if (!srv->identity) {
        snprintf(err, errlen, "cannot listen on %s", listen);
        return 0;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->identity, MHD_DAEMON_INFO_BIND_PORT);
    srv->identity_port = di ? di->port : (unsigned)port;
    return srv->identity_port;
}

sim_server *sim_server_start(sim_state *st, const sim_certs *certs, const char *listen, char *err,
                             size_t errlen)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
        snprintf(err, errlen, "--listen needs HOST:PORT, got '%s'", listen);
        return NULL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "--listen needs an IPv4 address and a port 0..65535, got '%s'",
                 listen);
        return NULL;
    }
    sa.sin_port = htons((uint16_t)port);
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errlen, "libmicrohttpd was built without TLS");
        return NULL;
    }
    sim_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->st = st;
    srv->certs = certs;
    srv->faults = json_object();
    srv->inflight = json_object();
    srv->rand_seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    pthread_mutex_init(&srv->log_lock, NULL);
    srv->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_TLS | MHD_USE_ERROR_LOG,
        0, NULL, NULL, handler, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_HTTPS_MEM_KEY, certs->server_key_pem, MHD_OPTION_HTTPS_MEM_CERT,
        certs->server_cert_pem, MHD_OPTION_URI_LOG_CALLBACK, uri_logger, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HEADER_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_END);
    if (!srv->d) {
        snprintf(err, errlen, "cannot listen on %s (address in use, or TLS setup failed)", listen);
        sim_server_stop(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : (unsigned)port;
    snprintf(st->base_url, sizeof(st->base_url), "https://%s:%u", host, srv->port);
    return srv;
}

unsigned sim_server_port(const sim_server *srv)
{
    return srv->port;
}

void sim_server_stop(sim_server *srv)
{
    if (!srv) return;
    g_stopping = 1;
    if (srv->identity) MHD_stop_daemon(srv->identity);
    if (srv->d) MHD_stop_daemon(srv->d);
    for (size_t i = 0; i < srv->log_count; i++)
        json_decref(srv->log[(srv->log_head + i) % LOG_CAP]);
    json_decref(srv->faults);
    json_decref(srv->inflight);
    pthread_mutex_destroy(&srv->log_lock);
    free(srv);
}
