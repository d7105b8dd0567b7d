/* pw/intake.h: the worker's Kafka consumer on the event loop.
 *
 * Subscribes to worker.request.topic in the group kafka.group.id with
 * enable.auto.offset.store=false (forced): an offset is committed only after the caller
 * stores it with pw_intake_store (auto commit, if enabled, then commits what is stored).
 * The consumer queue wakes the loop through a pipe.  Rebalances are handled here (eager or
 * cooperative; cooperative-sticky by default from librdkafka 2.10 on, see intake.c;
 * kafka.partition.assignment.strategy chooses);
 * every partition assigned starts in the intake's pause state, whatever state
 * librdkafka kept for it from an earlier assignment. */
#ifndef PW_INTAKE_H
#define PW_INTAKE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "pw/config.h"
#include "pw/loop.h"

typedef struct pw_intake pw_intake;

typedef struct pw_intake_handlers {
    /* A request message; msg is borrowed for the duration of the call. */
    void (*on_message)(void *ctx, const rd_kafka_message_t *msg);
    /* A partition taken away from this consumer.  It stays assigned (paused, its late
     * messages dropped) until the caller calls pw_intake_release: the caller finishes or
     * drops its work of that partition first.  lost: the group already gave it to another
     * member (session timeout), so nothing of it can be committed any more. */
    void (*on_revoked)(void *ctx, const char *topic, int32_t partition, int lost);
    /* A partition given to this consumer (assigned, its pause state set); may be NULL. */
    void (*on_assigned)(void *ctx, const char *topic, int32_t partition);
    void *ctx; /* passed to each */
} pw_intake_handlers;

/* loop and cfg are borrowed; handlers copied. */
pw_intake *pw_intake_new(pw_loop *loop, const pw_config *cfg, const pw_intake_handlers *h,
                         char *err, size_t errlen);

/* Pauses (1) or resumes (0) every assigned partition; idempotent. */
void pw_intake_pause(pw_intake *in, int paused);
int pw_intake_paused(const pw_intake *in);

/* Stores next_offset (the offset after the last done message) for commit. */
int pw_intake_store(pw_intake *in, const char *topic, int32_t partition, int64_t next_offset);

/* Ends the revoke on_revoked announced: commits what is stored (unless the partitions were
 * lost) and unassigns them.  No-op when no revoke waits. */
void pw_intake_release(pw_intake *in);
int pw_intake_revoking(const pw_intake *in); /* a revoke waits for pw_intake_release */

/* The consumer's session.timeout.ms as librdkafka holds it (-1 if unreadable). */
long pw_intake_session_timeout_ms(const pw_intake *in);

/* librdkafka already knows the assignment was lost (session timeout, fenced member). */
int pw_intake_assignment_lost(const pw_intake *in);

/* Commits what is stored now, asynchronously (besides auto-commit's timer). */
void pw_intake_commit(pw_intake *in);

/* Ownership probe: commits offsets the caller knows to be safe (each partition's current
 * commit point) with the consumer's group generation.  A commit the group accepts proves
 * this member still owned those partitions when it was answered; any error (assignment
 * lost, unknown member, illegal generation, rebalance in progress) does not.  cb runs from
 * the loop with error NULL or its text.  One probe at a time; -1 when one is outstanding,
 * n is 0, or it could not be sent. */
typedef struct pw_intake_position {
    const char *topic;
    int32_t partition;
    int64_t offset;
} pw_intake_position;
typedef void (*pw_intake_probe_cb)(void *ctx, const char *error);
int pw_intake_probe(pw_intake *in, const pw_intake_position *pos, size_t n, pw_intake_probe_cb cb,
                    void *ctx);

/* Stops delivering messages (drain): later ones are dropped uncommitted and redelivered. */
void pw_intake_stop(pw_intake *in);

/* Shutdown: commits what is stored, closes the consumer (leaves the group), both within
 * timeout_ms altogether (blocking); past it the consumer is abandoned (what is not committed
 * is redelivered, the group notices the absence after session.timeout.ms).
 * Returns 0, or -1 when the commit failed or the close timed out (logged). */
int pw_intake_close(pw_intake *in, int timeout_ms);

void pw_intake_free(pw_intake *in); /* accepts NULL */

#endif
