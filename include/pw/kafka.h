/* pw/kafka.h: what the consumer (intake) and the producer (reply) share about librdkafka:
 * building a configuration from the kafka.* pass-through keys, and waking the event loop
 * when a librdkafka queue has something to serve. */
#ifndef PW_KAFKA_H
#define PW_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "pw/config.h"
#include "pw/loop.h"

/* A new librdkafka configuration holding every kafka.* key of cfg, with librdkafka's log
 * routed to pw_log.  NULL with err naming the offending key ("kafka.<key>: <why>"). */
rd_kafka_conf_t *pw_kafka_conf_new(const pw_config *cfg, char *err, size_t errlen);

/* Loop wake-up for one librdkafka queue: librdkafka writes to a pipe when the queue goes
 * from empty to non-empty (rd_kafka_queue_io_event_enable); the loop watches the pipe and
 * calls serve.  A periodic safety poll calls serve too, in case a wake-up was missed. */
typedef struct pw_kafka_wake {
    pw_loop *loop;
    rd_kafka_queue_t *queue;
    int pipe[2];
    pw_timer *safety;
    uint64_t safety_ms;
    void (*serve)(void *ctx);
    void *ctx;
} pw_kafka_wake;

/* Takes ownership of queue (destroyed by pw_kafka_wake_stop, also on failure).
 * Returns 0, or -1 with err filled. */
int pw_kafka_wake_start(pw_kafka_wake *w, pw_loop *loop, rd_kafka_queue_t *queue,
                        uint64_t safety_ms, void (*serve)(void *ctx), void *ctx, char *err,
                        size_t errlen);
/* Stops watching and releases the queue; safe on a zeroed or already stopped struct.
 * Call before rd_kafka_destroy of the queue's handle. */
void pw_kafka_wake_stop(pw_kafka_wake *w);

#endif
