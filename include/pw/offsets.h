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

/* Forgets a partition (revoked): later done() calls for it return PW_ERR_UNKNOWN. */
void pw_offsets_drop(pw_offsets *ledger, const char *topic, int32_t partition);

/* Messages tracked and not yet behind the commit point: in one partition, and in all. */
size_t pw_offsets_pending(const pw_offsets *ledger, const char *topic, int32_t partition);
size_t pw_offsets_pending_total(const pw_offsets *ledger);

#endif
