/* pw/admin.h: the worker's admin HTTP endpoint (libmicrohttpd, its own thread).
 *
 *   GET /healthz  200 {"healthy":true} while the event loop turns (pw_admin_beat within
 *                 PW_ADMIN_STALL_MS), else 503 with the reason.
 *   GET /readyz   200 {"ready":true} when every component is ready, else 503
 *                 {"ready":false,"reasons":["credential: ...", ...]}.
 *   GET /metrics  the Prometheus text exposition (pw/metrics.h).
 * Anything else: 404 (unknown path) or 405 (a method other than GET or HEAD).  Bounded: at
 * most PW_ADMIN_CONNECTIONS connections, PW_ADMIN_TIMEOUT_S idle timeout, requests larger
 * than PW_ADMIN_REQUEST_MAX bytes refused by the library.  The loop thread sets the state
 * (beat, readiness); the server thread only reads it, under a mutex. */
#ifndef PW_ADMIN_H
#define PW_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#define PW_ADMIN_STALL_MS 10000
#define PW_ADMIN_CONNECTIONS 8
#define PW_ADMIN_TIMEOUT_S 5
#define PW_ADMIN_REQUEST_MAX 16384
#define PW_ADMIN_REASON_MAX 512

typedef struct pw_admin pw_admin;

/* What must be ready for /readyz. */
typedef enum pw_admin_part {
    PW_ADMIN_CONSUMER,   /* joined its group */
    PW_ADMIN_PRODUCER,   /* not failed for good */
    PW_ADMIN_CREDENTIAL, /* a token for ARM was obtained */
    PW_ADMIN_PARTS
} pw_admin_part;

/* Listens on listen ("HOST:PORT", an IPv4 address or a bracketed IPv6 one; port 0 picks a
 * free one).  NULL with err filled when it cannot. */
pw_admin *pw_admin_start(const char *listen, char *err, size_t errlen);
int pw_admin_listen_ok(const char *listen); /* 1 when listen has that form */
void pw_admin_stop(pw_admin *a); /* accepts NULL */
int pw_admin_port(const pw_admin *a);

/* The loop turned at now_ms (pw_monotonic_ms clock). */
void pw_admin_beat(pw_admin *a, uint64_t now_ms);
/* part is ready (reason NULL) or not (reason says why, cut to PW_ADMIN_REASON_MAX). */
void pw_admin_ready(pw_admin *a, pw_admin_part part, const char *reason);

#endif
