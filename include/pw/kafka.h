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

/* Sizes on the wire (Kafka's v2 record format), for what must fit a producer's and a
 * broker's limits.  A record's own framing around its key, value and headers (varint lengths,
 * attributes, timestamp and offset deltas) is at most PW_KAFKA_RECORD_OVERHEAD bytes;
 * librdkafka counts that much against message.max.bytes.  Each header adds at most
 * PW_KAFKA_HEADER_OVERHEAD (its name's and value's varint lengths).  A broker checks the
 * whole record batch (PW_KAFKA_BATCH_OVERHEAD of its own) against the topic's
 * max.message.bytes, whose Kafka default is PW_KAFKA_BROKER_MESSAGE_MAX_BYTES. */
#define PW_KAFKA_RECORD_OVERHEAD 36
#define PW_KAFKA_HEADER_OVERHEAD 10
#define PW_KAFKA_BATCH_OVERHEAD 61
#define PW_KAFKA_BROKER_MESSAGE_MAX_BYTES 1048588

/* The value librdkafka will use for a numeric property (cfg's kafka.* key, else librdkafka's
 * default), or -1 when it has none or it is not a number. */
long long pw_kafka_conf_number(const pw_config *cfg, const char *name);

/* The largest record, framing included, that the producer hands over (message.max.bytes)
 * and a broker with Kafka's default max.message.bytes stores: a message of key, value and
 * headers fits when their sizes plus the overheads above are at most this. */
size_t pw_kafka_record_max(const pw_config *cfg);

/* Where the worker's limits and librdkafka's disagree (worker.message.max.bytes against
 * message.max.bytes and the consumer's receive limit): warn runs once per finding with a
 * sentence naming the keys and what follows.  Returns the number of findings. */
size_t pw_kafka_check_limits(const pw_config *cfg, void (*warn)(void *ctx, const char *text),
                             void *ctx);

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
