/* kafka.c: librdkafka plumbing shared by intake and reply: configuration and loop wake-ups. */
#include "pw/kafka.h"
#include "pw/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pw/log.h"

/* librdkafka log callback writing through pw_log. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    pw_log_level l = level <= 3   ? PW_LOG_ERROR
                     : level == 4 ? PW_LOG_WARN
                     : level <= 6 ? PW_LOG_INFO
                                  : PW_LOG_DEBUG;
    /* One kafka.* list serves both clients, so each one ignores the other's properties:
     * expected, not worth a warning. */
    if (l == PW_LOG_WARN && !strcmp(fac, "CONFWARN") && strstr(buf, "property and will be ignored"))
        l = PW_LOG_DEBUG;
    pw_log(l, NULL, "kafka.log", "%s %s: %s", rk ? rd_kafka_name(rk) : "rdkafka", fac, buf);
}

rd_kafka_conf_t *pw_kafka_conf_new(const pw_config *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char rderr[512];
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, rderr, sizeof rderr) !=
            RD_KAFKA_CONF_OK) {
            pw_err_set(err, errlen, "kafka.%s: %s", cfg->kafka[i].key, rderr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}

long long pw_kafka_conf_number(const pw_config *cfg, const char *name)
{
    char err[256], buf[64];
    size_t len = sizeof buf;
    rd_kafka_conf_t *conf = pw_kafka_conf_new(cfg, err, sizeof err);
    if (!conf) return -1;
    rd_kafka_conf_res_t res = rd_kafka_conf_get(conf, name, buf, &len);
    rd_kafka_conf_destroy(conf);
    if (res != RD_KAFKA_CONF_OK) return -1;
    char *end = NULL;
    long long v = strtoll(buf, &end, 10);
    return end != buf && !*end ? v : -1;
}

size_t pw_kafka_record_max(const pw_config *cfg)
{
    size_t max = PW_KAFKA_BROKER_MESSAGE_MAX_BYTES - PW_KAFKA_BATCH_OVERHEAD;
    long long producer = pw_kafka_conf_number(cfg, "message.max.bytes");
    if (producer > 0 && (unsigned long long)producer < max) max = (size_t)producer;
    return max;
}

size_t pw_kafka_check_limits(const pw_config *cfg, void (*warn)(void *ctx, const char *text),
                             void *ctx)
{
    char text[512];
    size_t n = 0;
    size_t worker_max = cfg->max_message_bytes;
    size_t record_max = pw_kafka_record_max(cfg);
    if (worker_max + PW_KAFKA_RECORD_OVERHEAD > record_max) {
        snprintf(text, sizeof text,
                 "worker.message.max.bytes (%zu) accepts messages larger than the producer can "
                 "send (kafka.message.max.bytes %lld, a default broker's max.message.bytes %d): "
                 "their dead letters are cut to about %zu bytes, headers included",
                 worker_max, pw_kafka_conf_number(cfg, "message.max.bytes"),
                 PW_KAFKA_BROKER_MESSAGE_MAX_BYTES, record_max - PW_KAFKA_RECORD_OVERHEAD);
        warn(ctx, text);
        n++;
    }
    /* A fetch response larger than this fails as a whole, again and again: the partition
     * would stall on the message. */
    long long receive = pw_kafka_conf_number(cfg, "receive.message.max.bytes");
    if (receive > 0 && (unsigned long long)receive <
                           worker_max + PW_KAFKA_BATCH_OVERHEAD + PW_KAFKA_RECORD_OVERHEAD) {
        snprintf(text, sizeof text,
                 "kafka.receive.message.max.bytes (%lld) is below worker.message.max.bytes "
                 "(%zu): the consumer cannot receive the largest messages the worker accepts",
                 receive, worker_max);
        warn(ctx, text);
        n++;
    }
    /* Larger batches still arrive (KIP-74), one at a time: slower, not stuck. */
    const char *fetch_keys[] = {"fetch.max.bytes", "max.partition.fetch.bytes"};
    for (size_t i = 0; i < sizeof fetch_keys / sizeof fetch_keys[0]; i++) {
        long long v = pw_kafka_conf_number(cfg, fetch_keys[i]);
        if (v > 0 && (unsigned long long)v < worker_max) {
            snprintf(text, sizeof text,
                     "kafka.%s (%lld) is below worker.message.max.bytes (%zu): a larger "
                     "message still arrives, but alone in its fetch (slower)",
                     fetch_keys[i], v, worker_max);
            warn(ctx, text);
            n++;
        }
    }
    return n;
}

static void wake_cb(pw_loop *loop, int fd, unsigned events, void *ctx)
{
    pw_kafka_wake *w = ctx;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    w->serve(w->ctx);
}

static void safety_cb(pw_loop *loop, void *ctx)
{
    pw_kafka_wake *w = ctx;
    w->safety = pw_loop_timer_add(loop, w->safety_ms, safety_cb, w);
    w->serve(w->ctx);
}

int pw_kafka_wake_start(pw_kafka_wake *w, pw_loop *loop, rd_kafka_queue_t *queue,
                        uint64_t safety_ms, void (*serve)(void *ctx), void *ctx, char *err,
                        size_t errlen)
{
    *w = (pw_kafka_wake){.loop = loop,
                         .queue = queue,
                         .pipe = {-1, -1},
                         .safety_ms = safety_ms,
                         .serve = serve,
                         .ctx = ctx};
    if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC)) {
        pw_err_set(err, errlen, "pipe: %s", strerror(errno));
        pw_kafka_wake_stop(w);
        return -1;
    }
    rd_kafka_queue_io_event_enable(queue, w->pipe[1], "1", 1);
    if (pw_loop_fd_watch(loop, w->pipe[0], PW_LOOP_READ, wake_cb, w)) {
        pw_err_set(err, errlen, "loop watch: %s", strerror(errno));
        pw_kafka_wake_stop(w);
        return -1;
    }
    w->safety = pw_loop_timer_add(loop, safety_ms, safety_cb, w);
    return 0;
}

void pw_kafka_wake_stop(pw_kafka_wake *w)
{
    if (!w->loop) return; /* zeroed, or already stopped */
    pw_loop_timer_cancel(w->loop, w->safety);
    w->safety = NULL;
    if (w->pipe[0] >= 0) pw_loop_fd_watch(w->loop, w->pipe[0], 0, NULL, NULL);
    if (w->queue) {
        rd_kafka_queue_io_event_enable(w->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(w->queue);
        w->queue = NULL;
    }
    for (int i = 0; i < 2; i++) {
        if (w->pipe[i] >= 0) close(w->pipe[i]);
        w->pipe[i] = -1;
    }
    w->loop = NULL;
}
