/* pw/trace.h: W3C trace context (https://www.w3.org/TR/trace-context/): a request's
 * traceparent/tracestate headers checked, and the traceparent each reply carries. */
#ifndef PW_TRACE_H
#define PW_TRACE_H

#include <stddef.h>

#define PW_TRACE_PARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define PW_TRACE_STATE_MAX 512 /* a longer tracestate is not carried */
#define PW_TRACE_STATE_MEMBERS 32

typedef struct pw_trace {
    char trace_id[33];  /* 32 lower-case hex digits, not all zero */
    char parent_id[17]; /* the request's span (16 hex), or "" when this worker started it */
    char flags[3];      /* 2 hex digits: the request's, or "00" for a trace started here */
    char state[PW_TRACE_STATE_MAX + 1]; /* the request's tracestate when valid, else "" */
    int started; /* 1: the request had no valid traceparent, the ids are random */
} pw_trace;

/* Fills t from a request's headers (either may be NULL; neither needs a NUL): version 00
 * exactly (55 bytes, lower-case hex, trace id and parent id not all zero, flags 2 hex).
 * Returns 0 when the traceparent was valid; otherwise 1 and t is a new trace with random
 * ids (a tracestate is then dropped, as the recommendation says).  tracestate is kept only
 * when at most PW_TRACE_STATE_MAX bytes of printable ASCII in at most
 * PW_TRACE_STATE_MEMBERS comma-separated key=value members. */
int pw_trace_from_headers(pw_trace *t, const char *traceparent, size_t tp_len,
                          const char *tracestate, size_t ts_len);

/* 1 when s (len bytes) is a valid version-00 traceparent. */
int pw_trace_parent_valid(const char *s, size_t len);

/* 1 when s (len bytes) is a tracestate pw_trace_from_headers keeps. */
int pw_trace_state_valid(const char *s, size_t len);

/* The traceparent of one outgoing message of t: same trace id and flags, a new random span
 * id.  out must hold PW_TRACE_PARENT_LEN + 1 bytes. */
void pw_trace_child(const pw_trace *t, char *out);

/* n random lower-case hex digits, not all zero, into out (n + 1 bytes). */
void pw_trace_random_hex(char *out, size_t n);

#endif
