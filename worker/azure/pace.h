/* pace.h: internal to worker/azure: client-side pacing of Azure requests - an ARM token bucket
 * per (principal, subscription, writes|reads) and a concurrency gate per Kusto cluster - as a
 * state machine with the clock passed in: no timers, no I/O (azure.c drives it, unit tests
 * drive it with a clock of their own).
 *
 * A request is admitted before it is sent (pw_pace_acquire), holds its admission while it is in
 * flight, and gives it back with what the answer said (pw_pace_done) or without (pw_pace_cancel).
 * Admission is FIFO per gate: a request is let through only when nobody queues before it.
 * Queued tickets come out through pw_pace_pop_ready; pw_pace_next_ms says when the next one can
 * come out by time alone (a refill, the end of a Retry-After), releases aside.
 *
 * Bounds: at most PW_PACE_MAX_GATES gates; a full table evicts an idle gate (nothing queued or in
 * flight, no Retry-After pending; an ARM bucket then refilled to its size, else the fullest),
 * and refuses a new scope only when every gate is busy. */
#ifndef PW_PACE_H
#define PW_PACE_H

#include <stddef.h>
#include <stdint.h>

#include "pw/azure.h"

#define PW_PACE_MAX_GATES 4096
#define PW_PACE_SCOPE_MAX 160 /* bytes of a gate's key, NUL included; longer scopes are cut */

typedef struct pw_pace pw_pace;
typedef struct pw_pace_gate pw_pace_gate;
typedef struct pw_pace_ticket pw_pace_ticket;

/* One request's place: owned by the caller (embedded in its call, zeroed), never copied while
 * gate is set. */
struct pw_pace_ticket {
    pw_pace_gate *gate;          /* NULL: neither queued nor admitted */
    pw_pace_ticket *prev, *next; /* in the gate's queue or its in-flight list */
    int admitted;                /* 1: in flight; 0: queued (when gate is set) */
    uint64_t seq;                /* admission order within the gate */
    uint64_t since_ms;           /* when it began to queue */
    void *owner;                 /* the caller's, untouched */
};

typedef struct pw_pace_limits {
    long arm_write_bucket, arm_write_refill_per_s; /* bucket 0: writes not paced */
    long arm_read_bucket, arm_read_refill_per_s;   /* bucket 0: reads not paced */
    long kusto_concurrent_max;                     /* 0: no limit */
    long max_retry_after_ms;                       /* cap on a 429's Retry-After */
} pw_pace_limits;

/* What an answer said, for pw_pace_done. */
typedef struct pw_pace_answer {
    int status;          /* HTTP status; 0 for none (transport error) */
    long remaining;      /* the x-ms-ratelimit-remaining-subscription-* count; -1 when absent */
    long retry_after_ms; /* Retry-After in ms; -1 when absent */
    long fallback_ms;    /* a Kusto 429 without Retry-After holds the gate this long */
} pw_pace_answer;

/* principal is copied (the client id; may be NULL).  NULL on out-of-memory. */
pw_pace *pw_pace_new(const pw_pace_limits *lim, const char *principal);
/* Accepts NULL.  Tickets still on gates are left dangling: cancel them first. */
void pw_pace_free(pw_pace *p);

/* The gate of kind for scope (ARM: the subscription id or "tenant", case-insensitive; Kusto:
 * the cluster origin), created full when new.  *out = NULL when that kind is not paced.
 * Returns -1 when the table is full of busy gates, 0 otherwise. */
int pw_pace_gate_get(pw_pace *p, pw_azure_pace_kind kind, const char *scope, uint64_t now_ms,
                     pw_pace_gate **out);

/* Admits t now (1) or queues it (0): at the tail, or at the head with front (a request that
 * was admitted before and must go again, e.g. after a 429).  t must be off any gate. */
int pw_pace_acquire(pw_pace *p, pw_pace_gate *g, pw_pace_ticket *t, int front, uint64_t now_ms);

/* t (admitted) got an answer: corrects an ARM bucket from a's remaining count (the level
 * becomes at most that count less the requests still in flight; a count above the bucket's
 * size enlarges it), drains it or holds a Kusto gate on a 429.  t is off its gate afterwards.
 * Returns 1 when the answer stopped the gate (a 429 whose Retry-After now holds everything queued
 * there), else 0. */
int pw_pace_done(pw_pace *p, pw_pace_ticket *t, const pw_pace_answer *a, uint64_t now_ms);

/* Takes t off its gate (queued or admitted) with no answer to learn from.  NULL/off ok. */
void pw_pace_cancel(pw_pace *p, pw_pace_ticket *t);

/* A queued ticket that may go now, admitted (FIFO within its gate); NULL when none. */
pw_pace_ticket *pw_pace_pop_ready(pw_pace *p, uint64_t now_ms);

/* The earliest time (ms, same clock) at which a queued head becomes admissible by time alone;
 * UINT64_MAX when nothing queued waits on time (a Kusto gate full of requests in flight waits on
 * releases). */
uint64_t pw_pace_next_ms(const pw_pace *p, uint64_t now_ms);

/* ARM: the bucket's level at now_ms (may be below 0); Kusto: requests in flight. */
double pw_pace_level(const pw_pace_gate *g, uint64_t now_ms);
double pw_pace_capacity(const pw_pace_gate *g);
pw_azure_pace_kind pw_pace_kind(const pw_pace_gate *g);
/* Tickets queued before t (t queued on its gate). */
size_t pw_pace_ahead(const pw_pace_ticket *t);
/* 1 while a 429's Retry-After holds g at now_ms; *until_ms gets its end. */
int pw_pace_blocked(const pw_pace_gate *g, uint64_t now_ms, uint64_t *until_ms);

void pw_pace_stats(const pw_pace *p, uint64_t now_ms, pw_azure_stats *out);
size_t pw_pace_budgets(const pw_pace *p, uint64_t now_ms, pw_azure_budget *out, size_t max);

#endif
