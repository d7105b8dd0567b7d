/* kafka.c: librdkafka plumbing shared by intake and reply: configuration and loop wake-ups. */
#include "pw/kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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
            snprintf(err, errlen, "kafka.%s: %s", cfg->kafka[i].key, rderr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
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
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        pw_kafka_wake_stop(w);
        return -1;
    }
    rd_kafka_queue_io_event_enable(queue, w->pipe[1], "1", 1);
    if (pw_loop_fd_watch(loop, w->pipe[0], PW_LOOP_READ, wake_cb, w)) {
        snprintf(err, errlen, "loop watch: %s", strerror(errno));
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
