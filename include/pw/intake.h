/* pw/intake.h: the worker's Kafka consumer on the event loop.
 *
 * Subscribes to worker.request.topic in the group kafka.group.id.  Offsets are never
 * committed by librdkafka on its own (enable.auto.offset.store and enable.auto.commit are
 * forced off): every commit sends what the caller's commit_points handler says, each
 * partition's commit point with metadata (what was done above it, and who wrote it).
 *
 * Claims: a partition assigned with a committed offset stays paused until a commit of
 * the caller's commit point for it (with its metadata) is accepted under this member's
 * generation.  So every owner that may have written for a partition left its mark in the
 * group before its first message: a later owner that finds its own mark still there knows
 * that nobody worked on the partition in between (see service.c).
 * The consumer queue wakes the loop through a pipe.  Rebalances are handled here (eager or
 * cooperative; cooperative-sticky by default from librdkafka 2.10 on, see intake.c;
 * kafka.partition.assignment.strategy chooses);
 * every partition assigned starts in the intake's pause state, whatever state
 * librdkafka kept for it from an earlier assignment.
 * With the admin endpoint on, librdkafka's statistics (statistics.interval.ms, 10 s unless
 * configured) feed the consumer lag of every assigned partition (pw/metrics.h). */
#ifndef PW_INTAKE_H
#define PW_INTAKE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "pw/config.h"
#include "pw/loop.h"

typedef struct pw_intake pw_intake;

/* A partition's commit: the offset of its first message not done, and metadata. */
typedef struct pw_intake_position {
    const char *topic; /* borrowed */
    int32_t partition;
    int64_t offset;
    char *metadata; /* NUL-terminated, malloc'd, or NULL */
} pw_intake_position;

/* Commit metadata is bounded by the broker (offset.metadata.max.bytes, 4096 by default):
 * a longer one fails the whole commit.  What the caller writes stays below this. */
#define PW_INTAKE_METADATA_MAX 3900

typedef struct pw_intake_handlers {
    /* A request message; msg is borrowed for the duration of the call. */
    void (*on_message)(void *ctx, const rd_kafka_message_t *msg);
    /* A partition taken away from this consumer.  It stays assigned (paused, its late
     * messages dropped) until the caller calls pw_intake_release: the caller finishes or
     * drops its work of that partition first.  lost: the group already gave it to another
     * member (session timeout), so nothing of it can be committed any more. */
    void (*on_revoked)(void *ctx, const char *topic, int32_t partition, int lost);
    /* A partition given to this consumer, before any of its messages: committed is the
     * group's committed offset (-1: none), metadata that commit's metadata ("" when none),
     * borrowed for the call.  When the committed offset could not be read at once, the
     * call comes later (the partition stays paused until then). */
    void (*on_assigned)(void *ctx, const char *topic, int32_t partition, int64_t committed,
                        const char *metadata);
    /* What a commit sends now: fills at most cap positions (metadata malloc'd or NULL,
     * ownership passes to the intake) and returns how many. */
    size_t (*commit_points)(void *ctx, pw_intake_position *pos, size_t cap);
    void *ctx; /* passed to each */
} pw_intake_handlers;

/* loop and cfg are borrowed; handlers copied. */
pw_intake *pw_intake_new(pw_loop *loop, const pw_config *cfg, const pw_intake_handlers *h,
                         char *err, size_t errlen);

/* Pauses (1) or resumes (0) every assigned partition; idempotent. */
void pw_intake_pause(pw_intake *in, int paused);
int pw_intake_paused(const pw_intake *in);

/* Ends the revoke on_revoked announced: commits the commit points (unless the partitions
 * were lost) and unassigns them.  No-op when no revoke waits. */
void pw_intake_release(pw_intake *in);
int pw_intake_revoking(const pw_intake *in); /* a revoke waits for pw_intake_release */

/* The consumer's session.timeout.ms as librdkafka holds it (-1 if unreadable). */
long pw_intake_session_timeout_ms(const pw_intake *in);

/* librdkafka already knows the assignment was lost (session timeout, fenced member). */
int pw_intake_assignment_lost(const pw_intake *in);

/* 1 once the consumer joined its group (an assignment came, empty or not). */
int pw_intake_joined(const pw_intake *in);
/* Assigned partitions paused now (back-pressure, a revoke being drained, a claim). */
size_t pw_intake_paused_partitions(const pw_intake *in);

/* Commits the commit points now, asynchronously. */
void pw_intake_commit(pw_intake *in);

/* Ownership probe: commits the commit points with the consumer's group generation.  A
 * commit the group accepts proves this member still owned those partitions when it was
 * answered; any error (assignment lost, unknown member, illegal generation, rebalance in
 * progress) does not.  cb runs from the loop with error NULL or its text.  One probe at a
 * time; returns 1 when there was nothing to commit (cb not called), -1 when one is
 * outstanding or it could not be sent. */
typedef void (*pw_intake_probe_cb)(void *ctx, const char *error);
int pw_intake_probe(pw_intake *in, pw_intake_probe_cb cb, void *ctx);

/* Stops delivering messages (drain): later ones are dropped uncommitted and redelivered. */
void pw_intake_stop(pw_intake *in);

/* Shutdown: commits the commit points, closes the consumer (leaves the group), both within
 * timeout_ms altogether (blocking); past it the consumer is abandoned (what is not committed
 * is redelivered, the group notices the absence after session.timeout.ms).
 * Returns 0, or -1 when the commit failed or the close timed out (logged). */
int pw_intake_close(pw_intake *in, int timeout_ms);

void pw_intake_free(pw_intake *in); /* accepts NULL */

#endif
