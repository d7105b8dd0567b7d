/* pace.c: ARM token buckets and Kusto concurrency gates with FIFO admission (see pace.h). */
#include "pace.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SLOTS 256

struct pw_pace_gate {
    pw_azure_pace_kind kind;
    char key[PW_PACE_SCOPE_MAX]; /* ARM: "<principal>|<subscription>"; Kusto: the origin */
    double level;                /* ARM: tokens at at_ms (below 0 after a correction) */
    double capacity;             /* ARM: bucket size; Kusto: commands in flight at most */
    double refill_per_ms;
    uint64_t at_ms;
    uint64_t blocked_until_ms; /* a 429's Retry-After: nothing is admitted before */
    uint64_t next_seq;
    size_t in_flight, queued;
    pw_pace_ticket *q_head, *q_tail; /* queued, FIFO */
    pw_pace_ticket *f_head, *f_tail; /* in flight, in admission order */
    /* The lowest remaining count answered since the bucket last had nothing in flight, and
     * when: once every request is answered, it was counted after all of them (ARM) */
    double epoch_min;
    uint64_t epoch_min_at;
    int epoch_seen;
    pw_pace_gate *hnext;         /* hash chain */
    pw_pace_gate *bprev, *bnext; /* the busy list: gates with something queued */
    int busy;
};

struct pw_pace {
    pw_pace_limits lim;
    char principal[96];
    pw_pace_gate *slots[HASH_SLOTS];
    size_t n_gates;
    pw_pace_gate *busy;
    uint64_t admitted[PW_AZ_PACE_KINDS], waited[PW_AZ_PACE_KINDS], wait_ms[PW_AZ_PACE_KINDS],
        throttled[PW_AZ_PACE_KINDS];
};

pw_pace *pw_pace_new(const pw_pace_limits *lim, const char *principal)
{
    pw_pace *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->lim = *lim;
    snprintf(p->principal, sizeof p->principal, "%s", principal ? principal : "-");
    for (char *c = p->principal; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return p;
}

void pw_pace_free(pw_pace *p)
{
    if (!p) return;
    for (size_t i = 0; i < HASH_SLOTS; i++) {
        pw_pace_gate *g = p->slots[i];
        while (g) {
            pw_pace_gate *n = g->hnext;
            free(g);
            g = n;
        }
    }
    free(p);
}

static unsigned slot_of(pw_azure_pace_kind kind, const char *key)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (const char *c = key; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    return h % HASH_SLOTS;
}

/* The ARM level at now without changing the gate. */
static double level_at(const pw_pace_gate *g, uint64_t now)
{
    if (g->kind == PW_AZ_PACE_KUSTO) return (double)g->in_flight;
    double l = g->level;
    if (now > g->at_ms) l += (double)(now - g->at_ms) * g->refill_per_ms;
    return l > g->capacity ? g->capacity : l;
}

static void refill(pw_pace_gate *g, uint64_t now)
{
    if (g->kind == PW_AZ_PACE_KUSTO || now <= g->at_ms) return;
    g->level = level_at(g, now);
    g->at_ms = now;
}

static int admissible(pw_pace_gate *g, uint64_t now)
{
    if (now < g->blocked_until_ms) return 0;
    if (g->kind == PW_AZ_PACE_KUSTO) return (double)g->in_flight < g->capacity;
    refill(g, now);
    return g->level >= 1.0;
}

static void busy_add(pw_pace *p, pw_pace_gate *g)
{
    if (g->busy) return;
    g->busy = 1;
    g->bprev = NULL;
    g->bnext = p->busy;
    if (p->busy) p->busy->bprev = g;
    p->busy = g;
}

static void busy_remove(pw_pace *p, pw_pace_gate *g)
{
    if (!g->busy) return;
    if (g->bprev)
        g->bprev->bnext = g->bnext;
    else
        p->busy = g->bnext;
    if (g->bnext) g->bnext->bprev = g->bprev;
    g->bprev = g->bnext = NULL;
    g->busy = 0;
}

static void unlink_ticket(pw_pace_ticket **head, pw_pace_ticket **tail, pw_pace_ticket *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        *head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        *tail = t->prev;
    t->prev = t->next = NULL;
}

static void dequeue(pw_pace *p, pw_pace_ticket *t)
{
    pw_pace_gate *g = t->gate;
    unlink_ticket(&g->q_head, &g->q_tail, t);
    g->queued--;
    if (!g->queued) busy_remove(p, g);
}

static void admit(pw_pace *p, pw_pace_gate *g, pw_pace_ticket *t, int was_queued, uint64_t now)
{
    if (was_queued) {
        dequeue(p, t);
        p->wait_ms[g->kind] += now > t->since_ms ? now - t->since_ms : 0;
    }
    t->gate = g;
    t->admitted = 1;
    t->seq = ++g->next_seq;
    t->next = NULL;
    t->prev = g->f_tail;
    if (g->f_tail)
        g->f_tail->next = t;
    else
        g->f_head = t;
    g->f_tail = t;
    g->in_flight++;
    if (g->kind != PW_AZ_PACE_KUSTO) g->level -= 1.0;
    p->admitted[g->kind]++;
}

/* An idle gate to make room with: nothing queued or in flight, no Retry-After pending; an ARM
 * bucket refilled to its size first, else the fullest one.  NULL when every gate is busy. */
static pw_pace_gate **evictable(pw_pace *p, uint64_t now)
{
    pw_pace_gate **best = NULL;
    double best_fill = -1.0;
    for (size_t i = 0; i < HASH_SLOTS; i++) {
        for (pw_pace_gate **pg = &p->slots[i]; *pg; pg = &(*pg)->hnext) {
            pw_pace_gate *g = *pg;
            if (g->queued || g->in_flight || now < g->blocked_until_ms) continue;
            double fill = g->kind == PW_AZ_PACE_KUSTO ? 1.0 : level_at(g, now) / g->capacity;
            if (fill >= 1.0) return pg;
            if (fill > best_fill) {
                best_fill = fill;
                best = pg;
            }
        }
    }
    return best;
}

int pw_pace_gate_get(pw_pace *p, pw_azure_pace_kind kind, const char *scope, uint64_t now_ms,
                     pw_pace_gate **out)
{
    *out = NULL;
    long cap = kind == PW_AZ_PACE_ARM_WRITE  ? p->lim.arm_write_bucket
               : kind == PW_AZ_PACE_ARM_READ ? p->lim.arm_read_bucket
                                             : p->lim.kusto_concurrent_max;
    if (cap <= 0) return 0;
    char key[PW_PACE_SCOPE_MAX];
    if (kind == PW_AZ_PACE_KUSTO)
        snprintf(key, sizeof key, "%s", scope ? scope : "");
    else
        snprintf(key, sizeof key, "%s|%s", p->principal, scope && *scope ? scope : "tenant");
    for (char *c = key; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    unsigned s = slot_of(kind, key);
    for (pw_pace_gate *g = p->slots[s]; g; g = g->hnext) {
        if (g->kind == kind && strcmp(g->key, key) == 0) {
            *out = g;
            return 0;
        }
    }
    if (p->n_gates >= PW_PACE_MAX_GATES) {
        pw_pace_gate **pg = evictable(p, now_ms);
        if (!pg) return -1;
        pw_pace_gate *old = *pg;
        *pg = old->hnext;
        free(old);
        p->n_gates--;
    }
    pw_pace_gate *g = calloc(1, sizeof *g);
    if (!g) return -1;
    g->kind = kind;
    memcpy(g->key, key, sizeof key);
    g->capacity = (double)cap;
    g->level = (double)cap;
    long refill_s = kind == PW_AZ_PACE_ARM_WRITE  ? p->lim.arm_write_refill_per_s
                    : kind == PW_AZ_PACE_ARM_READ ? p->lim.arm_read_refill_per_s
                                                  : 0;
    g->refill_per_ms = refill_s > 0 ? (double)refill_s / 1000.0 : 0.0;
    g->at_ms = now_ms;
    g->hnext = p->slots[s];
    p->slots[s] = g;
    p->n_gates++;
    *out = g;
    return 0;
}

int pw_pace_acquire(pw_pace *p, pw_pace_gate *g, pw_pace_ticket *t, int front, uint64_t now_ms)
{
    if ((front || !g->queued) && admissible(g, now_ms)) {
        admit(p, g, t, 0, now_ms);
        return 1;
    }
    t->gate = g;
    t->admitted = 0;
    t->since_ms = now_ms;
    if (front) {
        t->prev = NULL;
        t->next = g->q_head;
        if (g->q_head)
            g->q_head->prev = t;
        else
            g->q_tail = t;
        g->q_head = t;
    } else {
        t->next = NULL;
        t->prev = g->q_tail;
        if (g->q_tail)
            g->q_tail->next = t;
        else
            g->q_head = t;
        g->q_tail = t;
    }
    g->queued++;
    p->waited[g->kind]++;
    busy_add(p, g);
    return 0;
}

static long clamp_ra(const pw_pace *p, long ms)
{
    if (p->lim.max_retry_after_ms >= 0 && ms > p->lim.max_retry_after_ms)
        ms = p->lim.max_retry_after_ms;
    return ms < 0 ? 0 : ms;
}

int pw_pace_done(pw_pace *p, pw_pace_ticket *t, const pw_pace_answer *a, uint64_t now_ms)
{
    pw_pace_gate *g = t->gate;
    if (!g || !t->admitted) return 0;
    unlink_ticket(&g->f_head, &g->f_tail, t);
    g->in_flight--;
    t->gate = NULL;
    t->admitted = 0;
    if (a->status == 429) p->throttled[g->kind]++;
    if (g->kind == PW_AZ_PACE_KUSTO) {
        if (a->status != 429) return 0;
        long ms = a->retry_after_ms >= 0 ? clamp_ra(p, a->retry_after_ms)
                  : a->fallback_ms > 0   ? a->fallback_ms
                                         : 1000;
        if (now_ms + (uint64_t)ms > g->blocked_until_ms)
            g->blocked_until_ms = now_ms + (uint64_t)ms;
        return 1;
    }
    refill(g, now_ms);
    if (a->status == 429 && a->remaining <= 0) {
        /* The subscription's bucket is empty: everything of it waits for Retry-After. */
        long ms;
        if (a->retry_after_ms >= 0)
            ms = clamp_ra(p, a->retry_after_ms);
        else {
            ms = g->refill_per_ms > 0 ? (long)ceil(1.0 / g->refill_per_ms) : 1000;
            if (ms < 1000) ms = 1000;
        }
        if (g->level > 0.0) g->level = 0.0;
        g->at_ms = now_ms;
        g->epoch_seen = 0;
        if (now_ms + (uint64_t)ms > g->blocked_until_ms)
            g->blocked_until_ms = now_ms + (uint64_t)ms;
        return 1;
    }
    if (a->remaining >= 0) {
        /* The server's count, less the requests admitted after this one and still in flight:
         * those may have reached the server after it (parallel connections), so they may be
         * uncounted yet.  The ones admitted before it were sent before it (the client sends
         * in admission order per host) and are taken as counted: one that was not shows a
         * lower count with its own answer, which then lowers the level.  (Subtracting every
         * request in flight instead held a burst of 200 writes about 5 s below the server's
         * level: answers to the burst arrive out of order, each taken off again.)  An answer
         * can only lower the level - a stale count (an early request answered late) is higher
         * and changes nothing - unless it shows the bucket to be larger than we were told. */
        size_t later = 0;
        for (const pw_pace_ticket *u = g->f_tail; u && u->seq > t->seq; u = u->prev)
            later++;
        double seen = (double)a->remaining - (double)later;
        if ((double)a->remaining > g->capacity) {
            g->capacity = (double)a->remaining;
            if (seen > g->level) g->level = seen;
        } else if (seen < g->level) {
            g->level = seen;
        }
        g->at_ms = now_ms;
        if (!g->epoch_seen || (double)a->remaining < g->epoch_min) {
            g->epoch_min = (double)a->remaining;
            g->epoch_min_at = now_ms;
            g->epoch_seen = 1;
        }
    }
    if (g->in_flight == 0 && g->epoch_seen) {
        /* Every request admitted is answered: the lowest count among the answers is the
         * server's level after the last of them it counted, plus what refilled since - exact
         * where the estimate above took requests answered out of order off twice. */
        double exact = g->epoch_min + (double)(now_ms - g->epoch_min_at) * g->refill_per_ms;
        if (exact > g->capacity) exact = g->capacity;
        if (exact > g->level) g->level = exact;
        g->at_ms = now_ms;
        g->epoch_seen = 0;
    }
    return 0;
}

void pw_pace_cancel(pw_pace *p, pw_pace_ticket *t)
{
    if (!t || !t->gate) return;
    pw_pace_gate *g = t->gate;
    if (t->admitted) {
        unlink_ticket(&g->f_head, &g->f_tail, t);
        g->in_flight--;
    } else {
        dequeue(p, t);
    }
    t->gate = NULL;
    t->admitted = 0;
}

pw_pace_ticket *pw_pace_pop_ready(pw_pace *p, uint64_t now_ms)
{
    for (pw_pace_gate *g = p->busy; g; g = g->bnext) {
        if (!admissible(g, now_ms)) continue;
        pw_pace_ticket *t = g->q_head;
        admit(p, g, t, 1, now_ms);
        return t;
    }
    return NULL;
}

uint64_t pw_pace_next_ms(const pw_pace *p, uint64_t now_ms)
{
    uint64_t best = UINT64_MAX;
    for (const pw_pace_gate *g = p->busy; g; g = g->bnext) {
        uint64_t at;
        if (now_ms < g->blocked_until_ms) {
            at = g->blocked_until_ms;
            if (g->kind == PW_AZ_PACE_KUSTO && (double)g->in_flight >= g->capacity) continue;
        } else if (g->kind == PW_AZ_PACE_KUSTO) {
            if ((double)g->in_flight >= g->capacity) continue; /* waits on a release */
            at = now_ms;
        } else {
            double l = level_at(g, now_ms);
            if (l >= 1.0)
                at = now_ms;
            else if (g->refill_per_ms <= 0)
                continue; /* only an answer's count can refill it */
            else
                at = now_ms + (uint64_t)ceil((1.0 - l) / g->refill_per_ms);
        }
        if (at < best) best = at;
    }
    return best;
}

double pw_pace_level(const pw_pace_gate *g, uint64_t now_ms)
{
    return level_at(g, now_ms);
}

double pw_pace_capacity(const pw_pace_gate *g)
{
    return g->capacity;
}

pw_azure_pace_kind pw_pace_kind(const pw_pace_gate *g)
{
    return g->kind;
}

size_t pw_pace_ahead(const pw_pace_ticket *t)
{
    size_t n = 0;
    if (!t->gate || t->admitted) return 0;
    for (const pw_pace_ticket *x = t->prev; x; x = x->prev)
        n++;
    return n;
}

int pw_pace_blocked(const pw_pace_gate *g, uint64_t now_ms, uint64_t *until_ms)
{
    if (until_ms) *until_ms = g->blocked_until_ms;
    return now_ms < g->blocked_until_ms;
}

void pw_pace_stats(const pw_pace *p, uint64_t now_ms, pw_azure_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!p) return;
    int seen[PW_AZ_PACE_KINDS] = {0};
    for (int k = 0; k < PW_AZ_PACE_KINDS; k++) {
        out->admitted[k] = p->admitted[k];
        out->waited[k] = p->waited[k];
        out->wait_ms[k] = p->wait_ms[k];
        out->throttled[k] = p->throttled[k];
    }
    for (size_t i = 0; i < HASH_SLOTS; i++) {
        for (const pw_pace_gate *g = p->slots[i]; g; g = g->hnext) {
            int k = g->kind;
            out->queued[k] += g->queued;
            out->in_flight[k] += g->in_flight;
            out->budgets[k]++;
            double l = level_at(g, now_ms);
            if (k == PW_AZ_PACE_KUSTO) {
                if (l > out->level_min[k]) out->level_min[k] = l;
            } else if (!seen[k] || l < out->level_min[k]) {
                out->level_min[k] = l;
            }
            seen[k] = 1;
        }
    }
}

size_t pw_pace_budgets(const pw_pace *p, uint64_t now_ms, pw_azure_budget *out, size_t max)
{
    size_t n = 0;
    if (!p) return 0;
    for (size_t i = 0; i < HASH_SLOTS; i++) {
        for (const pw_pace_gate *g = p->slots[i]; g; g = g->hnext, n++) {
            if (n >= max) continue;
            pw_azure_budget *b = &out[n];
            b->kind = g->kind;
            snprintf(b->scope, sizeof b->scope, "%s", g->key);
            b->level = level_at(g, now_ms);
            b->capacity = g->capacity;
            b->in_flight = g->in_flight;
            b->queued = g->queued;
            b->blocked_ms = now_ms < g->blocked_until_ms ? g->blocked_until_ms - now_ms : 0;
        }
    }
    return n;
}
