/* pw/producer.h: the worker's Kafka producer for reply, rejection and dead-letter messages.
 *
 * An idempotent producer (enable.idempotence=true, acks=all, forced over kafka.*) driven by
 * the event loop: its queue wakes the loop through a pipe, delivery reports are served there.
 * Messages leave in the order they were sent.  A message sent with must_deliver (a terminal
 * reply, a dead-letter message) is produced again after worker.reply.retry.backoff.ms each
 * time its delivery fails, until the broker acknowledges it; its callback runs once, on that
 * acknowledgement, or with ok=0 when it can never be produced: librdkafka refuses it (e.g.
 * larger than message.max.bytes), or the broker refused it for its content (too large,
 * invalid) PW_PRODUCER_REFUSED_ATTEMPTS times.  Failures that depend on the broker's state
 * (down, timed out, not leader) are retried without bound. */
#ifndef PW_PRODUCER_H
#define PW_PRODUCER_H

#include <stddef.h>

#include "pw/config.h"
#include "pw/loop.h"

typedef struct pw_producer pw_producer;

typedef struct pw_producer_header {
    const char *name;
    const void *value;
    size_t len;
} pw_producer_header;

typedef void (*pw_producer_acked_cb)(void *ctx, int ok);

/* Produce attempts of a must_deliver message the broker refuses for its content. */
#define PW_PRODUCER_REFUSED_ATTEMPTS 3

/* loop and cfg are borrowed and must outlive the producer. */
pw_producer *pw_producer_new(pw_loop *loop, const pw_config *cfg, char *err, size_t errlen);

/* Copies topic, key, value and headers.  cb (may be NULL) runs from the loop, never from
 * inside this call.  Returns 0, or -1 (err filled) when the message cannot be queued at all. */
int pw_producer_send(pw_producer *pr, const char *topic, const char *key, const void *value,
                     size_t len, const pw_producer_header *headers, size_t header_count,
                     int must_deliver, pw_producer_acked_cb cb, void *ctx, char *err,
                     size_t errlen);

/* One message for pw_producer_produce; everything is copied. */
typedef struct pw_producer_msg {
    const char *topic;
    int partition;   /* -1: the partitioner's choice (by key); else that partition */
    const void *key; /* key_len bytes of any content; NULL: no key */
    size_t key_len;
    const char *log_id; /* the request id the producer's log lines about it carry, or NULL */
    const void *value;
    size_t len;
    const pw_producer_header *headers;
    size_t header_count;
} pw_producer_msg;

/* pw_producer_send for any message: a given partition, a binary key.  Same contract. */
int pw_producer_produce(pw_producer *pr, const pw_producer_msg *msg, int must_deliver,
                        pw_producer_acked_cb cb, void *ctx, char *err, size_t errlen);

/* The most value bytes a message with a key of key_len bytes and these headers may carry and still
 * fit what the producer sends and a broker with Kafka's default limit stores (pw_kafka_record_max,
 * framing included); 0 when the key and headers alone do not fit. */
size_t pw_producer_value_room(const pw_producer *pr, size_t key_len,
                              const pw_producer_header *headers, size_t header_count);

/* Messages sent and not yet acknowledged or given up. */
size_t pw_producer_pending(const pw_producer *pr);

/* Blocks up to timeout_ms handing over queued messages and serving delivery reports
 * (shutdown only).  Returns the number still pending. */
size_t pw_producer_flush(pw_producer *pr, int timeout_ms);

/* 1 when nothing can be produced any more: librdkafka reported a fatal error (e.g. the
 * idempotent producer's sequence lost sync with the broker) and a new producer instance could
 * not be created.  After a fatal error the instance is replaced on the loop and every
 * must_deliver message it held is produced again; progress events it held are dropped. */
int pw_producer_fatal(const pw_producer *pr);

/* Accepts NULL.  Pending messages are dropped without their callbacks. */
void pw_producer_free(pw_producer *pr);

#endif
