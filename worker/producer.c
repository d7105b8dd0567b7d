/* producer.c: idempotent Kafka producer on the event loop; ordered sends, retried terminal
 * messages. */
#include "pw/producer.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/kafka.h"
#include "pw/log.h"
#include "pw/status.h"

#define REPLY_POLL_BATCH 10000    /* events served per wake-up before yielding to the loop */
#define REPLY_SAFETY_POLL_MS 1000 /* a poll even without a wake-up, in case one was missed */
#define REPLY_QUEUE_FULL_RETRY_MS 50

typedef struct out_msg {
    struct out_msg *next;
    char *topic;
    int32_t partition; /* RD_KAFKA_PARTITION_UA: the partitioner's (by key) */
    char *key;         /* key_len bytes (any), or NULL for none */
    size_t key_len;
    char *log_id; /* the request id its log lines carry, or NULL */
    void *value;
    size_t len;
    rd_kafka_headers_t *headers; /* template; a copy goes with each produce */
    int must_deliver;
    unsigned attempts;
    pw_producer_acked_cb cb;
    void *ctx;
} out_msg;

struct pw_producer {
    pw_loop *loop;
    const pw_config *cfg;
    rd_kafka_t *rk;
    pw_kafka_wake wake; /* the main queue's (delivery reports) loop wake-up */
    pw_timer *drain_timer;
    /* Not yet handed to librdkafka, in send order: a message waits here while any earlier
     * one does, so the order on the wire is the order of pw_producer_send. */
    out_msg *fifo_head, *fifo_tail;
    size_t pending;         /* sent and not yet finished (fifo + librdkafka) */
    uint64_t hold_until_ms; /* after a failed delivery: the fifo waits until then */
    int closing;
    int fatal;           /* librdkafka raised a fatal error: the instance must be replaced */
    int dead;            /* it could not be replaced: nothing can be produced any more */
    unsigned generation; /* producer instances created so far */
    size_t record_max;   /* pw_kafka_record_max of the configuration */
};

static void out_free(out_msg *m)
{
    if (!m) return;
    free(m->topic);
    free(m->key);
    free(m->log_id);
    free(m->value);
    if (m->headers) rd_kafka_headers_destroy(m->headers);
    free(m);
}

/* Finishes a message: its callback, then it is gone. */
static void out_finish(pw_producer *pr, out_msg *m, int ok)
{
    pr->pending--;
    pw_producer_acked_cb cb = m->cb;
    void *ctx = m->ctx;
    out_free(m);
    if (cb) cb(ctx, ok);
}

static void fifo_push(pw_producer *pr, out_msg *m)
{
    m->next = NULL;
    if (pr->fifo_tail)
        pr->fifo_tail->next = m;
    else
        pr->fifo_head = m;
    pr->fifo_tail = m;
}

static void drain_fifo(pw_producer *pr);

static void drain_timer_cb(pw_loop *loop, void *ctx)
{
    pw_producer *pr = ctx;
    pr->drain_timer = NULL;
    drain_fifo(pr);
}

static void arm_drain(pw_producer *pr, uint64_t ms)
{
    if (!pr->drain_timer) pr->drain_timer = pw_loop_timer_add(pr->loop, ms, drain_timer_cb, pr);
}

/* Hands one message to librdkafka.  0: handed over; 1: try again later; -1: never. */
static int produce_one(pw_producer *pr, out_msg *m)
{
    rd_kafka_headers_t *hdrs = m->headers ? rd_kafka_headers_copy(m->headers) : NULL;
    m->attempts++;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        pr->rk, RD_KAFKA_V_TOPIC(m->topic), RD_KAFKA_V_PARTITION(m->partition),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->value, m->len),
        RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
    if (!e) return 0; /* hdrs now owned by librdkafka */
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) return 1;
    if (e == RD_KAFKA_RESP_ERR__FATAL) {
        pr->fatal = 1; /* replaced on the next drain; the message waits for the new instance */
        return 1;
    }
    pw_log(PW_LOG_ERROR, m->log_id, "reply.produce_failed", "topic %s: %s", m->topic,
           rd_kafka_err2str(e));
    return -1;
}

static void producer_replace(pw_producer *pr);

static void drain_fifo(pw_producer *pr)
{
    producer_replace(pr); /* only after a fatal error */
    if (pr->dead) {
        /* No producer any more: nothing queued can ever be delivered. */
        while (pr->fifo_head) {
            out_msg *m = pr->fifo_head;
            pr->fifo_head = m->next;
            if (!pr->fifo_head) pr->fifo_tail = NULL;
            out_finish(pr, m, 0);
        }
        return;
    }
    uint64_t now = pw_loop_now_ms(pr->loop);
    if (pr->fifo_head && now < pr->hold_until_ms) {
        arm_drain(pr, pr->hold_until_ms - now);
        return;
    }
    while (pr->fifo_head) {
        out_msg *m = pr->fifo_head;
        int rc = produce_one(pr, m);
        if (rc == 1) {
            arm_drain(pr, REPLY_QUEUE_FULL_RETRY_MS);
            return;
        }
        pr->fifo_head = m->next;
        if (!pr->fifo_head) pr->fifo_tail = NULL;
        if (rc < 0) out_finish(pr, m, 0);
    }
}

/* The broker turned the message down for what it is, not for the state it is in: producing
 * it again the same way fails the same way. */
static int refused_for_content(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           e == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
           e == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE || e == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    pw_producer *pr = opaque;
    out_msg *m = msg->_private;
    if (!m) return;
    if (pr->closing) {
        pr->pending--;
        out_free(m);
        return;
    }
    if (!msg->err) {
        out_finish(pr, m, 1);
        return;
    }
    if (!m->must_deliver) {
        pw_log(PW_LOG_WARN, m->log_id, "reply.delivery_failed",
               "topic %s: %s (progress event "
               "dropped)",
               m->topic, rd_kafka_err2str(msg->err));
        out_finish(pr, m, 0);
        return;
    }
    /* Refused for its content (e.g. a topic whose max.message.bytes is below the default):
     * a bounded number of attempts, in case the broker's limit is being raised, then it is
     * given up so that its sender can do without it. */
    if (refused_for_content(msg->err) && m->attempts >= PW_PRODUCER_REFUSED_ATTEMPTS) {
        pw_log(PW_LOG_ERROR, m->log_id, "reply.refused", "topic %s: %s, %u attempts: given up",
               m->topic, rd_kafka_err2str(msg->err), m->attempts);
        out_finish(pr, m, 0);
        return;
    }
    /* A terminal reply or dead-letter message: its offset must not be committed before it
     * is delivered, so it goes out again until it is (broker down, timeouts: no bound). */
    pw_log(PW_LOG_WARN, m->log_id, "reply.delivery_retry", "topic %s attempt %u: %s", m->topic,
           m->attempts, rd_kafka_err2str(msg->err));
    fifo_push(pr, m);
    pr->hold_until_ms = pw_loop_now_ms(pr->loop) + (uint64_t)pr->cfg->reply_retry_backoff_ms;
    arm_drain(pr, (uint64_t)pr->cfg->reply_retry_backoff_ms);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pw_producer *pr = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof buf);
        pw_log(PW_LOG_ERROR, NULL, "kafka.producer_fatal", "%s", buf);
        pr->fatal = 1;
        return;
    }
    pw_log(PW_LOG_WARN, NULL, "kafka.producer_error", "%s: %s",
           rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void serve(pw_producer *pr)
{
    for (int i = 0; i < REPLY_POLL_BATCH; i++)
        if (rd_kafka_poll(pr->rk, 0) <= 0) return;
    arm_drain(pr, 0); /* more to serve: come back after other work */
}

static void serve_cb(void *ctx)
{
    pw_producer *pr = ctx;
    serve(pr);
    drain_fifo(pr); /* (replaces the producer first after a fatal error) */
}

/* A new librdkafka producer for pr (pr->rk and its loop wake-up).  0, or -1 with err. */
static int producer_start(pw_producer *pr, char *err, size_t errlen)
{
    char rderr[512];
    rd_kafka_conf_t *conf = pw_kafka_conf_new(pr->cfg, err, errlen);
    if (!conf) return -1;
    /* Forced: replies are only acknowledged once durable, without duplicates on retry. */
    if (rd_kafka_conf_set(conf, "enable.idempotence", "true", rderr, sizeof rderr) ||
        rd_kafka_conf_set(conf, "acks", "all", rderr, sizeof rderr)) {
        pw_err_set(err, errlen, "producer configuration: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, pr);
    pr->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr); /* owns conf on success */
    if (!pr->rk) {
        rd_kafka_conf_destroy(conf);
        pw_err_set(err, errlen, "kafka producer: %s", rderr);
        return -1;
    }
    pr->generation++;
    return pw_kafka_wake_start(&pr->wake, pr->loop, rd_kafka_queue_get_main(pr->rk),
                               REPLY_SAFETY_POLL_MS, serve_cb, pr, err, errlen);
}

/* After a fatal error (e.g. the idempotent producer's sequence lost sync with the broker)
 * librdkafka's instance cannot produce again: hand every message it still holds back to the
 * fifo (terminal ones are produced again, progress events are dropped), then replace it. */
static void producer_replace(pw_producer *pr)
{
    if (!pr->fatal || pr->dead || pr->closing) return;
    pr->fatal = 0;
    pw_kafka_wake_stop(&pr->wake);
    rd_kafka_purge(pr->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    /* The purged messages' reports: dr_msg_cb puts terminal ones back on the fifo. */
    for (int i = 0; i < 50 && rd_kafka_outq_len(pr->rk) > 0; i++)
        rd_kafka_poll(pr->rk, 100);
    rd_kafka_poll(pr->rk, 0);
    rd_kafka_destroy(pr->rk);
    pr->rk = NULL;
    char err[512] = "";
    if (producer_start(pr, err, sizeof err)) {
        pw_log(PW_LOG_ERROR, NULL, "kafka.producer_replace_failed", "%s", err);
        pr->dead = 1;
        return;
    }
    pw_log(PW_LOG_WARN, NULL, "kafka.producer_replaced",
           "new producer instance %u after a fatal error; %zu messages to produce again",
           pr->generation, pr->pending);
    pr->hold_until_ms = 0;
    if (pr->drain_timer) pw_loop_timer_cancel(pr->loop, pr->drain_timer);
    pr->drain_timer = NULL;
    arm_drain(pr, 0);
}

pw_producer *pw_producer_new(pw_loop *loop, const pw_config *cfg, char *err, size_t errlen)
{
    pw_producer *pr = calloc(1, sizeof *pr);
    if (!pr) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    pr->loop = loop;
    pr->cfg = cfg;
    pr->record_max = pw_kafka_record_max(cfg);
    if (producer_start(pr, err, errlen)) goto fail;
    return pr;
fail:
    pw_producer_free(pr);
    return NULL;
}

int pw_producer_send(pw_producer *pr, const char *topic, const char *key, const void *value,
                     size_t len, const pw_producer_header *headers, size_t header_count,
                     int must_deliver, pw_producer_acked_cb cb, void *ctx, char *err, size_t errlen)
{
    pw_producer_msg msg = {.topic = topic,
                           .partition = -1,
                           .key = key,
                           .key_len = key ? strlen(key) : 0,
                           .log_id = key,
                           .value = value,
                           .len = len,
                           .headers = headers,
                           .header_count = header_count};
    return pw_producer_produce(pr, &msg, must_deliver, cb, ctx, err, errlen);
}

int pw_producer_produce(pw_producer *pr, const pw_producer_msg *msg, int must_deliver,
                        pw_producer_acked_cb cb, void *ctx, char *err, size_t errlen)
{
    out_msg *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->topic = strdup(msg->topic);
    m->partition = msg->partition >= 0 ? msg->partition : RD_KAFKA_PARTITION_UA;
    if (msg->key) {
        m->key = malloc(msg->key_len ? msg->key_len : 1);
        if (m->key) memcpy(m->key, msg->key, msg->key_len);
        m->key_len = msg->key_len;
    }
    m->log_id = msg->log_id ? strdup(msg->log_id) : NULL;
    m->value = malloc(msg->len ? msg->len : 1);
    if (!m->topic || (msg->key && !m->key) || (msg->log_id && !m->log_id) || !m->value) goto oom;
    if (msg->len) memcpy(m->value, msg->value, msg->len);
    m->len = msg->len;
    if (msg->header_count) {
        m->headers = rd_kafka_headers_new(msg->header_count);
        for (size_t i = 0; i < msg->header_count; i++)
            rd_kafka_header_add(m->headers, msg->headers[i].name, -1, msg->headers[i].value,
                                (ssize_t)msg->headers[i].len);
    }
    m->must_deliver = must_deliver;
    m->cb = cb;
    m->ctx = ctx;
    pr->pending++;
    fifo_push(pr, m);
    /* Hand over on the next loop turn, so a callback never runs inside this call. */
    arm_drain(pr, 0);
    return 0;
oom:
    out_free(m);
    pw_err_set(err, errlen, "out of memory");
    return -1;
}

size_t pw_producer_value_room(const pw_producer *pr, size_t key_len,
                              const pw_producer_header *headers, size_t header_count)
{
    size_t used = PW_KAFKA_RECORD_OVERHEAD + key_len;
    for (size_t i = 0; i < header_count; i++)
        used += PW_KAFKA_HEADER_OVERHEAD + strlen(headers[i].name) + headers[i].len;
    return used < pr->record_max ? pr->record_max - used : 0;
}

size_t pw_producer_pending(const pw_producer *pr)
{
    return pr->pending;
}

int pw_producer_fatal(const pw_producer *pr)
{
    return pr->dead;
}

size_t pw_producer_flush(pw_producer *pr, int timeout_ms)
{
    uint64_t start = pw_loop_now_ms(pr->loop);
    for (;;) {
        drain_fifo(pr);
        if (pr->rk) {
            rd_kafka_flush(pr->rk, 100);
            rd_kafka_poll(pr->rk, 0);
        }
        if (!pr->pending) break;
        /* Let retry timers fire; the loop time is refreshed by run_once. */
        pw_loop_run_once(pr->loop, 10);
        if (pw_loop_now_ms(pr->loop) - start >= (uint64_t)timeout_ms) break;
    }
    return pr->pending;
}

void pw_producer_free(pw_producer *pr)
{
    if (!pr) return;
    if (pr->drain_timer) pw_loop_timer_cancel(pr->loop, pr->drain_timer);
    pw_kafka_wake_stop(&pr->wake);
    if (pr->rk) {
        /* Purge what is left; the reports free the messages without callbacks. */
        pr->closing = 1;
        rd_kafka_purge(pr->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(pr->rk, 0);
        rd_kafka_destroy(pr->rk);
    }
    while (pr->fifo_head) {
        out_msg *m = pr->fifo_head;
        pr->fifo_head = m->next;
        out_free(m);
    }
    free(pr);
}
