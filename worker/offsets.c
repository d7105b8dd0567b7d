/* offsets.c: per-partition ledger of received messages; tells when an offset may be committed. */
#include "pw/offsets.h"

#include <stdlib.h>
#include <string.h>

#define OFFSETS_TOPIC_MAX 249 /* Kafka's own topic name limit */

typedef struct entry {
    int64_t offset;
    int done;
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

void pw_offsets_free(pw_offsets *ledger)
{
    if (!ledger) return;
    for (size_t i = 0; i < ledger->count; i++) {
        free(ledger->parts[i].topic);
        free(ledger->parts[i].ring);
    }
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

static entry *at(part *p, size_t i)
{
    return &p->ring[(p->head + i) % p->cap];
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
    p->ring[(p->head + p->len) % p->cap] = (entry){offset, 0};
    p->len++;
    p->last_tracked = offset;
    ledger->pending_total++;
    return PW_OK;
}

pw_status pw_offsets_done(pw_offsets *ledger, const char *topic, int32_t partition, int64_t offset,
                          int64_t *commit_next)
{
    *commit_next = -1;
    if (bad_args(topic, partition, offset)) return PW_ERR_ARG;
    part *p = find_part(ledger, topic, partition);
    if (!p || !p->len) return PW_ERR_UNKNOWN;
    /* Binary search: the ring holds increasing offsets. */
    size_t lo = 0, hi = p->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at(p, mid)->offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->len || at(p, lo)->offset != offset || at(p, lo)->done) return PW_ERR_UNKNOWN;
    at(p, lo)->done = 1;
    int64_t last = -1;
    while (p->len && at(p, 0)->done) {
        last = at(p, 0)->offset;
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
    free(p->topic);
    free(p->ring);
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
