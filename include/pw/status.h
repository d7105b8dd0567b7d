/* pw/status.h: the worker's one status convention.
 *
 * A function that can fail returns pw_status: PW_OK (0) or the code of what went wrong,
 * checked at once by the caller (`if (st) return st;`).  Where text helps, the caller also
 * passes `char *err, size_t errlen` and the callee fills it with pw_err_set.  The codes say
 * what kind of failure it was, so a caller can choose among the three error levels: log and
 * go on; fail this request with a reply code (PW_ERR_SYNTAX ... PW_ERR_NOT_ALLOWED: the
 * input's fault); leave the unit of work unfinished, to be retried or redelivered
 * (PW_ERR_NOMEM, PW_ERR_INTERNAL: the worker's own).  Fatal errors exist at start-up only.
 * (The JSON Schema validator, a library of its own in worker/schema/, keeps its own
 * result type.) */
#ifndef PW_STATUS_H
#define PW_STATUS_H

#include <stddef.h>

typedef enum pw_status {
    PW_OK = 0,
    PW_ERR_NOMEM,       /* out of memory */
    PW_ERR_ARG,         /* an argument outside its domain: the caller's mistake */
    PW_ERR_SYNTAX,      /* input that does not parse (a duration, a cluster URI) */
    PW_ERR_INVALID,     /* input that parses but breaks its rule (a name) */
    PW_ERR_AMBIGUOUS,   /* input with no single meaning (a duration in years or months) */
    PW_ERR_RANGE,       /* a value or a size beyond its bound */
    PW_ERR_NOT_ALLOWED, /* the configuration does not allow it (a cluster host) */
    PW_ERR_ORDER,       /* out of the required order */
    PW_ERR_UNKNOWN,     /* not tracked, not found */
    PW_ERR_TRANSPORT,   /* the network: connect, reset, timeout (worth retrying) */
    PW_ERR_TLS,         /* TLS verification or handshake (not retried) */
    PW_ERR_INTERNAL,    /* a library refused unexpectedly */
} pw_status;

/* A short text for st ("out of memory", ...); never NULL. */
const char *pw_status_str(pw_status st);

/* Fills err (when err and errlen) with the formatted text, cut to errlen. */
void pw_err_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
