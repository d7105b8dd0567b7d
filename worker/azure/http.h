/* http.h: internal to worker/azure: HTTPS exchanges over libcurl multi driven by pw_loop,
 * and the pure Azure protocol helpers (Retry-After, backoff, URL checks, error bodies). */
#ifndef PW_HTTP_H
#define PW_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pw/loop.h"
#include "pw/status.h"

typedef struct pw_http pw_http;
typedef struct pw_http_xfer pw_http_xfer;

typedef struct pw_http_opts {
    const char *ca_file;           /* NULL: system store */
    const char *const *connect_to; /* CURLOPT_CONNECT_TO entries */
    size_t connect_to_count;
    long connect_timeout_ms;
    long max_host_connections; /* exchanges in flight per real host (the URL's host and port,
                                  whatever connect_to says); the rest wait in FIFO order */
    size_t max_response_bytes;
    const char *secret; /* the client secret, copied: pw_http_redact removes it; may be NULL */
    /* The managed-identity endpoint (an http:// or https:// URL) or NULL.  When it is http://,
     * its origin (scheme, host, port) alone may be reached over plain HTTP (IMDS and the App
     * Service identity endpoint are plain HTTP on a local address); every other http:// URL
     * is refused, and connect_to does not apply to it (the endpoint is an address already). */
    const char *plain_http_endpoint;
} pw_http_opts;

/* What pw_http_redact removes literally besides its patterns, one slot per kind. */
enum {
    PW_HTTP_SECRET_CLIENT,    /* the client secret (pw_http_opts.secret) */
    PW_HTTP_SECRET_ASSERTION, /* the latest client assertion sent */
    PW_HTTP_SECRET_FEDERATED, /* the latest federated token read */
    PW_HTTP_SECRET_IDENTITY,  /* the managed-identity endpoint's X-IDENTITY-HEADER */
    PW_HTTP_SECRET_SLOTS
};

typedef struct pw_http_req {
    const char *method;
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    size_t header_count;
    const char *body; /* may be NULL */
    size_t body_len;
    long timeout_ms; /* whole exchange */
} pw_http_req;

typedef struct pw_http_resp {
    /* PW_OK: an HTTP status was received (any status); PW_ERR_TRANSPORT: connect refused,
     * reset, timeout (worth retrying); PW_ERR_TLS: verification or handshake (not retried);
     * PW_ERR_RANGE: body over max_response_bytes; PW_ERR_INTERNAL: anything else curl
     * refused (bad URL, out of memory). */
    pw_status fail;
    long status;
    char error[512]; /* curl's message when fail != OK; for PW_ERR_TLS it also names the
                        host and the CA file (or the system trust store) */
    char *body;      /* NUL-terminated, owned by the transport, valid during the callback */
    size_t body_len;
    char retry_after[64], retry_after_ms[32], x_ms_retry_after_ms[32];
    char request_id[128], correlation_id[128], activity_id[128];
    char async_operation[2048], location[2048];
    char ratelimit_writes[24], ratelimit_reads[24]; /* x-ms-ratelimit-remaining-subscription-* */
} pw_http_resp;

/* Called once per started exchange unless cancelled; never inside pw_http_start or
 * pw_http_cancel. */
typedef void (*pw_http_cb)(void *ctx, const pw_http_resp *resp);

pw_http *pw_http_new(pw_loop *loop, const pw_http_opts *opts, char *err, size_t errlen);
void pw_http_free(pw_http *http); /* abandons exchanges in flight without callbacks */

/* Replaces the secret of a slot (copied; NULL or "" clears it).  -1 on out-of-memory
 * (the slot is then cleared). */
int pw_http_set_secret(pw_http *http, unsigned slot, const char *secret);

/* 1 when url may be fetched over plain HTTP: http:// on the origin of
 * opts.plain_http_endpoint (see above). */
int pw_http_plain_allowed(const pw_http *http, const char *url);

/* NULL only on out-of-memory. */
pw_http_xfer *pw_http_start(pw_http *http, const pw_http_req *req, pw_http_cb cb, void *ctx);
void pw_http_cancel(pw_http *http, pw_http_xfer *xfer); /* NULL ok; no callback afterwards */

/* ---- pure helpers (unit-tested) ---- */

/* Milliseconds to wait from Retry-After (delta-seconds or HTTP-date, relative to now),
 * retry-after-ms or x-ms-retry-after-ms (the ms headers win); -1 when none is usable.
 * Any argument may be NULL or empty.  The result is not capped. */
long pw_http_retry_after_ms(const char *retry_after, const char *retry_after_ms,
                            const char *x_ms_retry_after_ms, time_t now);

/* A header's non-negative decimal count ("199"); -1 when s is NULL, empty or not one. */
long pw_http_header_count(const char *s);

/* Full-jitter backoff for retry number n (0 = first retry): rnd mapped into
 * [0, min(max_ms, base_ms * 2^n)]. */
long pw_http_backoff_ms(long base_ms, long max_ms, unsigned n, uint64_t rnd);

/* 1 when url is https and names the same host and port as endpoint (an https URL), no user-info. */
int pw_http_same_origin(const char *url, const char *endpoint);

/* Kusto cluster URI check: https, no user-info, no port, path empty or "/", no query or
 * fragment.  On success writes "https://host" to out and returns 0; -1 with err otherwise. */
int pw_http_cluster_uri(const char *uri, char *out, size_t outlen, char *err, size_t errlen);

/* Azure error body ({"error":{...}} for ARM and Kusto OneApi, {"error":"x","error_description":..}
 * for AAD).  Fills code/message when present (empty otherwise), both through pw_http_redact
 * (http may be NULL: patterns only); *permanent = 1 / 0 from Kusto's @permanent, -1 when
 * absent.  Never fails: a non-JSON body leaves them empty. */
void pw_http_parse_error(const pw_http *http, const char *body, size_t len, char *code,
                         size_t codelen, char *msg, size_t msglen, int *permanent);

/* The one scrubber for text that came from Azure (or a proxy in between) before it reaches
 * a log line or a reply.  Copies src (srclen bytes) into dst, NUL-terminated, cut to
 * dstlen - 1 bytes on a character boundary, with "***" in place of: http's secret (as
 * configured and form-encoded, and every other slot of pw_http_set_secret), the values after
 * "client_secret=" and "client_assertion=",
 * the credentials after "Bearer ", and JWT-shaped text ("eyJ" + base64url with at least a
 * second '.'-separated segment).  Redaction happens before the cut, so a secret cut in two
 * is still found.  http may be NULL (patterns only); src may be dst.  Out of memory leaves
 * dst empty. */
void pw_http_redact(const pw_http *http, char *dst, size_t dstlen, const char *src, size_t srclen);

/* Case-insensitive ARM LRO terminal states: 1 Succeeded, 2 Failed, 3 Canceled, 0 other. */
int pw_http_lro_terminal(const char *status);

/* Random 128-bit GUID text (36 chars + NUL). */
void pw_http_guid(char out[37]);
uint64_t pw_http_random(void);

#endif
