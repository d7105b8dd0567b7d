/* pw/offsets.h: per-partition ledger deciding which Kafka offsets may be committed.
 *
 * Contract: an offset becomes committable only when it and every earlier message of its
 * partition that this process received are done (terminal reply or dead-letter message
 * acknowledged by the broker).  Offsets of one partition must be tracked in increasing
 * order (the order the consumer delivers them); gaps (compaction, control records) are
 * fine.  Pure bookkeeping: no Kafka calls, so it is unit-tested alone. */
#ifndef PW_OFFSETS_H
#define PW_OFFSETS_H

#include <stddef.h>
#include <stdint.h>
#include "pw/status.h"

typedef struct pw_offsets pw_offsets;

/* Failures: PW_ERR_NOMEM; PW_ERR_ORDER (track: an offset not above the last tracked one);
 * PW_ERR_UNKNOWN (done: partition or offset not tracked, revoked, or done twice);
 * PW_ERR_ARG (topic too long or empty, negative partition or offset). */

pw_offsets *pw_offsets_new(void);
void pw_offsets_free(pw_offsets *ledger); /* accepts NULL */

/* Records a received message.  A partition seen for the first time starts empty. */
pw_status pw_offsets_track(pw_offsets *ledger, const char *topic, int32_t partition,
                           int64_t offset);

/* Marks a tracked message done.  When that moves the partition's commit point, returns
 * PW_OK with *commit_next = the offset to store (last contiguous done + 1);
 * otherwise *commit_next = -1.  O(1) amortised when done in order, O(n) worst case. */
pw_status pw_offsets_done(pw_offsets *ledger, const char *topic, int32_t partition, int64_t offset,
                          int64_t *commit_next);

/* The partition's commit point: the offset after the last contiguous done message (its
 * first pending one, or one past the last tracked when none is pending); -1 when the
 * partition is not tracked.  Committing it never skips a message that is not done. */
int64_t pw_offsets_commit_point(const pw_offsets *ledger, const char *topic, int32_t partition);

/* What a message writes, for the order of replays: the hashes of its lane keys (pw/plan.h;
 * operations on one key are ordered, on different keys not).  A tracked message starts
 * with its targets unknown, which orders it before everything after it; n = 0 says it
 * writes nothing (a rejection, a dead letter); more than PW_OFFSETS_TARGETS_MAX keys, or
 * keys NULL, leave them unknown. */
#define PW_OFFSETS_TARGETS_MAX 16
pw_status pw_offsets_targets(pw_offsets *ledger, const char *topic, int32_t partition,
                             int64_t offset, const uint64_t *keys, size_t n);

/* The messages above the commit point that a later owner may skip: done, and every earlier
 * pending message that shares a target with one is itself skippable (so on every target
 * the skipped messages are the first ones and a replay of the rest, in order, ends with
 * the last value).  Ascending, at most cap; any prefix of the answer keeps that property.
 * Returns how many. */
size_t pw_offsets_skippable(const pw_offsets *ledger, const char *topic, int32_t partition,
                            int64_t *out, size_t cap);

/* The last offset tracked in the partition, -1 when none (or not tracked). */
int64_t pw_offsets_last_tracked(const pw_offsets *ledger, const char *topic, int32_t partition);

/* Commit metadata: who wrote the commit (a token, [0-9a-z], at most
 * PW_OFFSETS_TOKEN_MAX characters) and the offsets above the commit offset `at` that a
 * later owner may skip (ascending, as pw_offsets_skippable gives them):
 * "pw2:<token>:<d>,<d1>-<d2>,..." with distances from at.  encode writes at most cap - 1
 * characters and drops the highest offsets that do not fit (a prefix stays skippable); it
 * returns the length, or 0 when even the token does not fit.  decode fills token (at
 * least PW_OFFSETS_TOKEN_MAX + 1 bytes; "" when the metadata is not ours) and at most cap
 * offsets, and returns how many; what it cannot read ends the list. */
#define PW_OFFSETS_TOKEN_MAX 32
size_t pw_offsets_metadata_encode(char *buf, size_t cap, const char *token, int64_t at,
                                  const int64_t *skip, size_t n);
size_t pw_offsets_metadata_decode(const char *meta, int64_t at, char *token, int64_t *out,
                                  size_t cap);

/* Forgets a partition (revoked): later done() calls for it return PW_ERR_UNKNOWN. */
void pw_offsets_drop(pw_offsets *ledger, const char *topic, int32_t partition);

/* Messages tracked and not yet behind the commit point: in one partition, and in all. */
size_t pw_offsets_pending(const pw_offsets *ledger, const char *topic, int32_t partition);
size_t pw_offsets_pending_total(const pw_offsets *ledger);

#endif
