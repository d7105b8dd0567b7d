/* offsets.c: per-partition ledger of received messages; tells when an offset may be committed. */
#include "pw/offsets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFFSETS_TOPIC_MAX 249 /* Kafka's own topic name limit */

#define OFFSETS_UNKNOWN ((uint8_t)0xff) /* targets not known: orders before everything */
#define OFFSETS_BLOCKED_MAX 4096         /* target keys a skippable walk holds in mind */

typedef struct entry {
    int64_t offset;
    int done;
    uint8_t ntargets; /* OFFSETS_UNKNOWN, or how many of targets[] */
    uint64_t *targets;
} entry;

/* Pending messages of one partition: a ring buffer in increasing offset order. */
typedef struct part {
    char *topic;
    int32_t partition;
    entry *ring;
    size_t cap, head, len;
    int64_t last_tracked; /* -1: none yet */
} part;

struct pw_offsets {
    part *parts;
    size_t count, cap;
    size_t pending_total;
};

pw_offsets *pw_offsets_new(void)
{
    return calloc(1, sizeof(pw_offsets));
}

static entry *at(part *p, size_t i)
{
    return &p->ring[(p->head + i) % p->cap];
}

static const entry *at_c(const part *p, size_t i)
{
    return &p->ring[(p->head + i) % p->cap];
}

static void part_clear(part *p)
{
    for (size_t i = 0; i < p->len; i++)
        free(at(p, i)->targets);
    free(p->topic);
    free(p->ring);
}

void pw_offsets_free(pw_offsets *ledger)
{
    if (!ledger) return;
    for (size_t i = 0; i < ledger->count; i++)
        part_clear(&ledger->parts[i]);
    free(ledger->parts);
    free(ledger);
}

static part *find_part(const pw_offsets *ledger, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < ledger->count; i++)
        if (ledger->parts[i].partition == partition && !strcmp(ledger->parts[i].topic, topic))
            return &ledger->parts[i];
    return NULL;
}

static int bad_args(const char *topic, int32_t partition, int64_t offset)
{
    return !topic || !*topic || strlen(topic) > OFFSETS_TOPIC_MAX || partition < 0 || offset < 0;
}

pw_status pw_offsets_track(pw_offsets *ledger, const char *topic, int32_t partition, int64_t offset)
{
    if (bad_args(topic, partition, offset)) return PW_ERR_ARG;
    part *p = find_part(ledger, topic, partition);
    if (!p) {
        if (ledger->count == ledger->cap) {
            size_t ncap = ledger->cap ? ledger->cap * 2 : 8;
            part *grown = realloc(ledger->parts, ncap * sizeof *grown);
            if (!grown) return PW_ERR_NOMEM;
            ledger->parts = grown;
            ledger->cap = ncap;
        }
        p = &ledger->parts[ledger->count];
        memset(p, 0, sizeof *p);
        p->topic = strdup(topic);
        if (!p->topic) return PW_ERR_NOMEM;
        p->partition = partition;
        p->last_tracked = -1;
        ledger->count++;
    }
    if (offset <= p->last_tracked) return PW_ERR_ORDER;
    if (p->len == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        entry *ring = malloc(ncap * sizeof *ring);
        if (!ring) return PW_ERR_NOMEM;
        for (size_t i = 0; i < p->len; i++)
            ring[i] = *at(p, i);
        free(p->ring);
        p->ring = ring;
        p->cap = ncap;
        p->head = 0;
    }
    p->ring[(p->head + p->len) % p->cap] = (entry){offset, 0, OFFSETS_UNKNOWN, NULL};
    p->len++;
    p->last_tracked = offset;
    ledger->pending_total++;
    return PW_OK;
}

/* The pending entry of offset (binary search: the ring holds increasing offsets), or NULL. */
static entry *find_entry(part *p, int64_t offset)
{
    size_t lo = 0, hi = p->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at(p, mid)->offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->len && at(p, lo)->offset == offset ? at(p, lo) : NULL;
}

pw_status pw_offsets_targets(pw_offsets *ledger, const char *topic, int32_t partition,
                             int64_t offset, const uint64_t *keys, size_t n)
{
    if (bad_args(topic, partition, offset)) return PW_ERR_ARG;
    part *p = find_part(ledger, topic, partition);
    entry *e = p ? find_entry(p, offset) : NULL;
    if (!e) return PW_ERR_UNKNOWN;
    free(e->targets);
    e->targets = NULL;
    e->ntargets = OFFSETS_UNKNOWN;
    if (n > PW_OFFSETS_TARGETS_MAX || (n && !keys)) return PW_OK; /* unknown: orders all */
    if (n) {
        e->targets = malloc(n * sizeof *keys);
        if (!e->targets) return PW_ERR_NOMEM; /* (left unknown: the safe side) */
        memcpy(e->targets, keys, n * sizeof *keys);
    }
    e->ntargets = (uint8_t)n;
    return PW_OK;
}

/* A small open-addressed set of target keys (0 stands for itself through a flag). */
typedef struct key_set {
    uint64_t slot[OFFSETS_BLOCKED_MAX * 2];
    size_t count;
    int has_zero;
} key_set;

static int key_set_has(const key_set *ks, uint64_t k)
{
    if (!k) return ks->has_zero;
    for (size_t i = k % (OFFSETS_BLOCKED_MAX * 2);; i = (i + 1) % (OFFSETS_BLOCKED_MAX * 2)) {
        if (ks->slot[i] == k) return 1;
        if (!ks->slot[i]) return 0;
    }
}

/* Adds k; 0 when the set is full (the caller stops: what follows counts as blocked). */
static int key_set_add(key_set *ks, uint64_t k)
{
    if (!k) {
        ks->has_zero = 1;
        return 1;
    }
    if (key_set_has(ks, k)) return 1;
    if (ks->count == OFFSETS_BLOCKED_MAX) return 0;
    size_t i = k % (OFFSETS_BLOCKED_MAX * 2);
    while (ks->slot[i])
        i = (i + 1) % (OFFSETS_BLOCKED_MAX * 2);
    ks->slot[i] = k;
    ks->count++;
    return 1;
}

size_t pw_offsets_skippable(const pw_offsets *ledger, const char *topic, int32_t partition,
                            int64_t *out, size_t cap)
{
    const part *p = find_part(ledger, topic, partition);
    if (!p || !cap) return 0;
    key_set *blocked = calloc(1, sizeof *blocked); /* targets of what must be replayed */
    if (!blocked) return 0;
    size_t n = 0;
    for (size_t i = 0; i < p->len && n < cap; i++) {
        const entry *e = at_c(p, i);
        if (e->ntargets == OFFSETS_UNKNOWN) {
            /* it may share a target with anything: skippable only when nothing before it
             * is replayed, and when it is replayed, so is everything after it */
            if (!e->done || blocked->count || blocked->has_zero) break;
            out[n++] = e->offset;
            continue;
        }
        int skip = e->done;
        for (size_t k = 0; skip && k < e->ntargets; k++)
            if (key_set_has(blocked, e->targets[k])) skip = 0;
        if (skip) {
            out[n++] = e->offset;
            continue;
        }
        int full = 0;
        for (size_t k = 0; k < e->ntargets && !full; k++)
            full = !key_set_add(blocked, e->targets[k]);
        if (full) break;
    }
    free(blocked);
    return n;
}

int64_t pw_offsets_last_tracked(const pw_offsets *ledger, const char *topic, int32_t partition)
{
    const part *p = find_part(ledger, topic, partition);
    return p ? p->last_tracked : -1;
}

pw_status pw_offsets_done(pw_offsets *ledger, const char *topic, int32_t partition, int64_t offset,
                          int64_t *commit_next)
{
    *commit_next = -1;
    if (bad_args(topic, partition, offset)) return PW_ERR_ARG;
    part *p = find_part(ledger, topic, partition);
    entry *e = p ? find_entry(p, offset) : NULL;
    if (!e || e->done) return PW_ERR_UNKNOWN;
    e->done = 1;
    int64_t last = -1;
    while (p->len && at(p, 0)->done) {
        last = at(p, 0)->offset;
        free(at(p, 0)->targets);
        p->head = (p->head + 1) % p->cap;
        p->len--;
        ledger->pending_total--;
    }
    if (last >= 0) *commit_next = last + 1;
    return PW_OK;
}

int64_t pw_offsets_commit_point(const pw_offsets *ledger, const char *topic, int32_t partition)
{
    const part *p = find_part(ledger, topic, partition);
    if (!p || p->last_tracked < 0) return -1;
    return p->len ? p->ring[p->head].offset : p->last_tracked + 1;
}

void pw_offsets_drop(pw_offsets *ledger, const char *topic, int32_t partition)
{
    part *p = find_part(ledger, topic, partition);
    if (!p) return;
    ledger->pending_total -= p->len;
    part_clear(p);
    size_t idx = (size_t)(p - ledger->parts);
    ledger->parts[idx] = ledger->parts[ledger->count - 1];
    ledger->count--;
}

size_t pw_offsets_pending(const pw_offsets *ledger, const char *topic, int32_t partition)
{
    const part *p = find_part(ledger, topic, partition);
    return p ? p->len : 0;
}

size_t pw_offsets_pending_total(const pw_offsets *ledger)
{
    return ledger->pending_total;
}

#define OFFSETS_METADATA_PREFIX "pw2:"

size_t pw_offsets_metadata_encode(char *buf, size_t cap, const char *token, int64_t at,
                                  const int64_t *skip, size_t n)
{
    size_t tl = strlen(token);
    if (!cap || tl > PW_OFFSETS_TOKEN_MAX) return 0;
    int len = snprintf(buf, cap, "%s%s:", OFFSETS_METADATA_PREFIX, token);
    if (len < 0 || (size_t)len >= cap) {
        buf[0] = '\0';
        return 0;
    }
    size_t used = (size_t)len;
    int first = 1;
    for (size_t i = 0; i < n;) {
        if (skip[i] < at) { /* (below the commit: nothing to say) */
            i++;
            continue;
        }
        size_t j = i;
        while (j + 1 < n && skip[j + 1] == skip[j] + 1)
            j++;
        char run[48];
        int k = j > i ? snprintf(run, sizeof run, "%s%lld-%lld", first ? "" : ",",
                                 (long long)(skip[i] - at), (long long)(skip[j] - at))
                      : snprintf(run, sizeof run, "%s%lld", first ? "" : ",",
                                 (long long)(skip[i] - at));
        if (k < 0 || used + (size_t)k >= cap) break; /* the rest is replayed */
        memcpy(buf + used, run, (size_t)k + 1);
        used += (size_t)k;
        first = 0;
        i = j + 1;
    }
    return used;
}

size_t pw_offsets_metadata_decode(const char *meta, int64_t at, char *token, int64_t *out,
                                  size_t cap)
{
    token[0] = '\0';
    size_t plen = strlen(OFFSETS_METADATA_PREFIX);
    if (!meta || at < 0 || strncmp(meta, OFFSETS_METADATA_PREFIX, plen) != 0) return 0;
    const char *q = meta + plen;
    size_t tl = strspn(q, "0123456789abcdefghijklmnopqrstuvwxyz");
    if (!tl || tl > PW_OFFSETS_TOKEN_MAX || q[tl] != ':') return 0;
    memcpy(token, q, tl);
    token[tl] = '\0';
    q += tl + 1;
    size_t n = 0;
    int64_t last = -1;
    while (*q && n < cap) {
        char *end;
        long long a = strtoll(q, &end, 10), b = a;
        if (end == q || a < 0 || a <= last) break;
        if (*end == '-') {
            q = end + 1;
            b = strtoll(q, &end, 10);
            if (end == q || b < a) break;
        }
        for (long long v = a; v <= b && n < cap; v++)
            out[n++] = at + v;
        last = b;
        if (*end != ',') break;
        q = end + 1;
    }
    return n;
}
