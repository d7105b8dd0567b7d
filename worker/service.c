/* service.c: the worker process on one loop: intake, decode, execute, reply, commit, drain. */
#include "pw/service.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "pw/azure.h"
#include "pw/exec.h"
#include "pw/intake.h"
#include "pw/log.h"
#include "pw/loop.h"
#include "pw/offsets.h"
#include "pw/reply.h"
#include "pw/request.h"

#define SVC_CORRELATION_HEADER "kafka_correlationId"
#define SVC_CORRELATION_MAX 1024   /* a longer header is not echoed (logged instead) */
#define SVC_FLUSH_TIMEOUT_MS 10000 /* at most, and never past the drain deadline */
#define SVC_CLOSE_TIMEOUT_MS 3000  /* final commit and leaving the group, after the drain */

typedef struct svc svc;

/* One message from intake until its terminal reply is acknowledged. */
typedef struct req_ctx {
    struct req_ctx *prev, *next; /* every live context, freed at exit whatever their state */
    svc *s;
    char id[129];
    char *reply_topic;
    char *correlation; /* kafka_correlationId header value, or NULL */
    size_t correlation_len;
    char *topic;
    int32_t partition;
    int64_t offset;
    int tracked; /* in the offsets ledger */
    int terminal_sent;
} req_ctx;

struct svc {
    const pw_config *cfg;
    pw_loop *loop;
    pw_request_checker *checker;
    pw_azure *azure;
    pw_exec *exec;
    pw_reply *reply;
    pw_intake *intake;
    pw_offsets *ledger;
    size_t in_flight; /* messages taken and not yet finished (terminal acknowledged) */
    int draining;
    int stopping;
    int exit_code;
    pw_timer *drain_timer;
    uint64_t drain_deadline_ms; /* loop time the drain must end by (0: no drain begun) */
    pw_timer *watch_timer;
    int sigfd;
    req_ctx *live;
};

static void ctx_free(req_ctx *c)
{
    if (!c) return;
    if (c->s) {
        if (c->prev)
            c->prev->next = c->next;
        else
            c->s->live = c->next;
        if (c->next) c->next->prev = c->prev;
    }
    free(c->reply_topic);
    free(c->correlation);
    free(c->topic);
    free(c);
}

static void finish_loop_if_drained(svc *s)
{
    if (s->draining && !s->in_flight && !s->stopping) {
        s->stopping = 1;
        pw_log(PW_LOG_INFO, NULL, "worker.drained",
               "every request in flight has its terminal "
               "reply");
        pw_loop_stop(s->loop);
    }
}

static void update_backpressure(svc *s)
{
    if (s->draining) return;
    int over = s->in_flight >= s->cfg->max_in_flight ||
               pw_offsets_pending_total(s->ledger) >= s->cfg->max_uncommitted;
    if (over != pw_intake_paused(s->intake)) {
        if (over)
            pw_log(PW_LOG_INFO, NULL, "worker.backpressure",
                   "pausing intake: %zu in flight, "
                   "%zu uncommitted",
                   s->in_flight, pw_offsets_pending_total(s->ledger));
        pw_intake_pause(s->intake, over);
    }
}

/* One Kafka message is over (acknowledged, or given up): count it finished, free its context,
 * and let intake resume or the drain end. */
static void ctx_finished(req_ctx *c)
{
    svc *s = c->s;
    s->in_flight--;
    ctx_free(c);
    update_backpressure(s);
    finish_loop_if_drained(s);
}

/* The terminal message (reply or dead-letter) of one Kafka message is acknowledged. */
static void on_terminal_acked(void *ctx, int ok)
{
    req_ctx *c = ctx;
    svc *s = c->s;
    if (!ok) {
        /* Never deliverable (e.g. too large): the offset stays behind it; a restart retries. */
        pw_log(PW_LOG_ERROR, c->id[0] ? c->id : NULL, "reply.undeliverable",
               "terminal message for %s [%d] @ %lld could not be produced; its offset is not "
               "committed",
               c->topic, (int)c->partition, (long long)c->offset);
    } else {
        pw_log(PW_LOG_DEBUG, c->id[0] ? c->id : NULL, "reply.acked", "%s [%d] @ %lld", c->topic,
               (int)c->partition, (long long)c->offset);
    }
    if (ok && c->tracked) {
        int64_t next = -1;
        if (pw_offsets_done(s->ledger, c->topic, c->partition, c->offset, &next) == PW_OFFSETS_OK &&
            next >= 0)
            pw_intake_store(s->intake, c->topic, c->partition, next);
    }
    ctx_finished(c);
}

static size_t ctx_headers(const req_ctx *c, pw_reply_header *h)
{
    if (!c->correlation) return 0;
    h[0] = (pw_reply_header){SVC_CORRELATION_HEADER, c->correlation, c->correlation_len};
    return 1;
}

/* Produces one reply event; terminal ones are retried until acknowledged. */
static void send_event(req_ctx *c, json_t *event, int terminal)
{
    svc *s = c->s;
    char *text = json_dumps(event, JSON_COMPACT);
    const char *status = json_string_value(json_object_get(event, "status"));
    pw_log(terminal ? PW_LOG_INFO : PW_LOG_DEBUG, c->id, "reply.event", "%s -> %s",
           status ? status : "?", c->reply_topic);
    char err[256] = "";
    pw_reply_header h[1];
    size_t nh = ctx_headers(c, h);
    int rc = -1;
    if (text)
        rc = pw_reply_send(s->reply, c->reply_topic, c->id, text, strlen(text), h, nh, terminal,
                           terminal ? on_terminal_acked : NULL, terminal ? c : NULL, err,
                           sizeof err);
    free(text);
    if (rc) {
        pw_log(PW_LOG_ERROR, c->id, "reply.send_failed", "%s", text ? err : "out of memory");
        /* Cannot even queue it: count it finished but leave its offset uncommitted. */
        if (terminal) ctx_finished(c);
    }
}

static void on_exec_event(void *ctx, json_t *event, int terminal)
{
    req_ctx *c = ctx;
    if (c->terminal_sent) { /* contract breach by the executor: never two terminals */
        json_decref(event);
        return;
    }
    if (terminal) c->terminal_sent = 1;
    send_event(c, event, terminal);
    json_decref(event);
}

static void dead_letter(svc *s, req_ctx *c, const rd_kafka_message_t *msg, const pw_rejection *rej)
{
    char part[16], off[24];
    snprintf(part, sizeof part, "%d", (int)msg->partition);
    snprintf(off, sizeof off, "%lld", (long long)msg->offset);
    pw_reply_header h[8];
    size_t n = 0;
    h[n++] = (pw_reply_header){"pw-error-code", rej->code, strlen(rej->code)};
    h[n++] = (pw_reply_header){"pw-error-message", rej->message, strlen(rej->message)};
    h[n++] = (pw_reply_header){"pw-source-topic", c->topic, strlen(c->topic)};
    h[n++] = (pw_reply_header){"pw-source-partition", part, strlen(part)};
    h[n++] = (pw_reply_header){"pw-source-offset", off, strlen(off)};
    h[n++] = (pw_reply_header){"pw-worker", s->cfg->worker_id, strlen(s->cfg->worker_id)};
    /* The original payload, cut to the configured bound so the producer can carry it. */
    size_t len = msg->len;
    if (len > s->cfg->max_message_bytes) {
        len = s->cfg->max_message_bytes;
        h[n++] = (pw_reply_header){"pw-payload-truncated", "true", 4};
    }
    n += ctx_headers(c, &h[n]);
    pw_log(PW_LOG_WARN, NULL, "request.deadletter", "%s [%d] @ %lld: %s: %s", c->topic,
           (int)msg->partition, (long long)msg->offset, rej->code, rej->message);
    char err[256] = "";
    if (pw_reply_send(s->reply, s->cfg->dead_letter_topic, NULL, msg->payload ? msg->payload : "",
                      len, h, n, 1, on_terminal_acked, c, err, sizeof err)) {
        pw_log(PW_LOG_ERROR, NULL, "deadletter.send_failed", "%s", err);
        ctx_finished(c);
    }
}

static void copy_correlation(req_ctx *c, const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t size = 0;
    if (rd_kafka_message_headers(msg, &hdrs) || !hdrs) return;
    if (rd_kafka_header_get_last(hdrs, SVC_CORRELATION_HEADER, &val, &size) || !val) return;
    if (size > SVC_CORRELATION_MAX) {
        pw_log(PW_LOG_WARN, NULL, "request.correlation_dropped",
               "%s header of %zu bytes is "
               "over %d and is not echoed",
               SVC_CORRELATION_HEADER, size, SVC_CORRELATION_MAX);
        return;
    }
    c->correlation = malloc(size ? size : 1);
    if (!c->correlation) return;
    memcpy(c->correlation, val, size);
    c->correlation_len = size;
}

static void on_message(void *ctx, const rd_kafka_message_t *msg)
{
    svc *s = ctx;
    const char *topic = rd_kafka_topic_name(msg->rkt);
    req_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->topic = strdup(topic))) {
        /* Not tracked, so never committed: redelivered after a restart. */
        pw_log(PW_LOG_ERROR, NULL, "intake.nomem", "message %s [%d] @ %lld dropped", topic,
               (int)msg->partition, (long long)msg->offset);
        free(c);
        return;
    }
    c->s = s;
    c->next = s->live;
    if (s->live) s->live->prev = c;
    s->live = c;
    c->partition = msg->partition;
    c->offset = msg->offset;
    pw_offsets_status st = pw_offsets_track(s->ledger, topic, msg->partition, msg->offset);
    c->tracked = st == PW_OFFSETS_OK;
    if (st)
        pw_log(PW_LOG_WARN, NULL, "intake.untracked", "%s [%d] @ %lld: ledger status %d", topic,
               (int)msg->partition, (long long)msg->offset, (int)st);
    copy_correlation(c, msg);
    s->in_flight++;

    pw_rejection rej;
    memset(&rej, 0, sizeof rej);
    /* A tombstone (no value) decodes as an empty payload. */
    pw_request *req =
        pw_request_decode(s->checker, msg->payload ? msg->payload : "", msg->len, &rej);
    if (!req) {
        if (!rej.id[0]) {
            dead_letter(s, c, msg, &rej);
        } else {
            snprintf(c->id, sizeof c->id, "%s", rej.id);
            c->reply_topic = strdup(rej.reply_to[0] ? rej.reply_to : s->cfg->reply_topic);
            pw_log(PW_LOG_WARN, c->id, "request.rejected", "%s: %s", rej.code, rej.message);
            json_t *event = pw_rejection_event(&rej, s->cfg->worker_id);
            if (!c->reply_topic || !event) {
                pw_log(PW_LOG_ERROR, c->id, "intake.nomem", "rejection not sent");
                json_decref(event);
                ctx_finished(c);
            } else {
                c->terminal_sent = 1;
                send_event(c, event, 1);
                json_decref(event);
            }
        }
        pw_rejection_clear(&rej);
        update_backpressure(s);
        return;
    }
    snprintf(c->id, sizeof c->id, "%s", pw_request_id(req));
    const char *rt = pw_request_reply_to(req);
    c->reply_topic = strdup(rt ? rt : s->cfg->reply_topic);
    if (!c->reply_topic) {
        pw_log(PW_LOG_ERROR, c->id, "intake.nomem", "request dropped");
        pw_request_free(req);
        ctx_finished(c);
        return;
    }
    pw_log(PW_LOG_INFO, c->id, "request.received", "%s [%d] @ %lld", topic, (int)msg->partition,
           (long long)msg->offset);
    pw_exec_submit(s->exec, req, on_exec_event, c);
    update_backpressure(s);
}

static void on_revoked(void *ctx, const char *topic, int32_t partition)
{
    svc *s = ctx;
    /* Requests of that partition still finish and reply; their offsets are no longer ours. */
    pw_offsets_drop(s->ledger, topic, partition);
    update_backpressure(s);
}

static void drain_deadline_cb(pw_loop *loop, void *ctx)
{
    svc *s = ctx;
    s->drain_timer = NULL;
    if (s->stopping) return;
    s->stopping = 1;
    pw_log(PW_LOG_WARN, NULL, "worker.drain_timeout",
           "%zu requests still in flight after %ld "
           "ms; their offsets are not committed and they will be redelivered",
           s->in_flight, s->cfg->drain_timeout_ms);
    pw_loop_stop(loop);
}

static void begin_drain(svc *s, const char *why)
{
    if (s->draining) return;
    s->draining = 1;
    pw_log(PW_LOG_INFO, NULL, "worker.draining",
           "%s: stop taking requests, %zu in flight, "
           "deadline %ld ms",
           why, s->in_flight, s->cfg->drain_timeout_ms);
    pw_intake_stop(s->intake);
    s->drain_deadline_ms = pw_loop_now_ms(s->loop) + (uint64_t)s->cfg->drain_timeout_ms;
    s->drain_timer =
        pw_loop_timer_add(s->loop, (uint64_t)s->cfg->drain_timeout_ms, drain_deadline_cb, s);
    finish_loop_if_drained(s);
}

static void signal_cb(pw_loop *loop, int fd, unsigned events, void *ctx)
{
    svc *s = ctx;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        const char *name = si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT";
        if (s->draining) {
            pw_log(PW_LOG_WARN, NULL, "worker.signal", "%s again: stopping now", name);
            s->stopping = 1;
            pw_loop_stop(loop);
            return;
        }
        begin_drain(s, name);
    }
}

/* Watches for a fatal producer error (the idempotent producer cannot go on). */
static void watch_cb(pw_loop *loop, void *ctx)
{
    svc *s = ctx;
    s->watch_timer = pw_loop_timer_add(loop, 1000, watch_cb, s);
    if (pw_reply_fatal(s->reply) && !s->draining) {
        s->exit_code = 1;
        begin_drain(s, "fatal producer error");
    }
}

/* Teardown watchdog.  Once the worker has stopped, every reply is acknowledged or given up
 * and the consumer has closed or been abandoned: nothing is left to deliver or commit.  Yet
 * destroying librdkafka's handles can block for as long as a broker connection hangs (it
 * waits for its broker threads; a group coordinator stuck in connection setup held a worker
 * for a minute).  Past worker.teardown.timeout.ms the process exits with its status,
 * without freeing the rest. */
typedef struct teardown_watch {
    int pipe[2]; /* closing the write end tells the thread that teardown is over */
    long timeout_ms;
    int exit_code;
    pthread_t thread;
    int started;
} teardown_watch;

static void *teardown_watch_main(void *arg)
{
    teardown_watch *w = arg;
    struct pollfd p = {.fd = w->pipe[0], .events = POLLIN};
    int rc;
    do
        rc = poll(&p, 1, (int)w->timeout_ms); /* at most an hour (config bound) */
    while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        pw_log(PW_LOG_WARN, NULL, "worker.teardown_timeout",
               "releasing the Kafka and Azure clients took more than %ld ms; exiting with "
               "status %d without them",
               w->timeout_ms, w->exit_code);
        _exit(w->exit_code);
    }
    return NULL;
}

static void teardown_watch_start(teardown_watch *w, long timeout_ms, int exit_code)
{
    w->timeout_ms = timeout_ms;
    w->exit_code = exit_code;
    if (timeout_ms == 0) {
        /* No time at all: exit here.  A watchdog thread would race the teardown it is meant
         * to cut short (a fast teardown can finish before the thread first runs). */
        pw_log(PW_LOG_WARN, NULL, "worker.teardown_timeout",
               "worker.teardown.timeout.ms is 0; exiting with status %d without releasing the "
               "Kafka and Azure clients",
               exit_code);
        _exit(exit_code);
    }
    if (pipe2(w->pipe, O_CLOEXEC)) return; /* unwatched: teardown is merely unbounded */
    if (pthread_create(&w->thread, NULL, teardown_watch_main, w)) {
        close(w->pipe[0]);
        close(w->pipe[1]);
        return;
    }
    w->started = 1;
}

static void teardown_watch_end(teardown_watch *w)
{
    if (!w->started) return;
    close(w->pipe[1]);
    pthread_join(w->thread, NULL);
    close(w->pipe[0]);
}

static int setup_signals(svc *s, sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, old)) return -1;
    s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sigfd < 0) return -1;
    return pw_loop_fd_watch(s->loop, s->sigfd, PW_LOOP_READ, signal_cb, s);
}

int pw_service_run(const pw_config *cfg)
{
    svc s_, *s = &s_;
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->sigfd = -1;
    char err[512] = "";
    sigset_t oldmask;
    sigemptyset(&oldmask);
    signal(SIGPIPE, SIG_IGN);

    if (!(s->loop = pw_loop_new(err, sizeof err))) {
        pw_log(PW_LOG_ERROR, NULL, "worker.start_failed", "loop: %s", err);
        return 1;
    }
    if (setup_signals(s, &oldmask)) {
        pw_log(PW_LOG_ERROR, NULL, "worker.start_failed", "signals: %s", strerror(errno));
        s->exit_code = 1;
        goto out;
    }
    s->exit_code = 2;
    if (!(s->ledger = pw_offsets_new())) {
        snprintf(err, sizeof err, "out of memory");
        goto start_failed;
    }
    if (!(s->checker = pw_request_checker_new(cfg, err, sizeof err))) goto start_failed;
    if (!(s->azure = pw_azure_new(s->loop, &cfg->azure, err, sizeof err))) goto start_failed;
    if (!(s->exec = pw_exec_new(s->loop, s->azure, cfg, err, sizeof err))) goto start_failed;
    if (!(s->reply = pw_reply_new(s->loop, cfg, err, sizeof err))) goto start_failed;
    pw_intake_handlers h = {.on_message = on_message, .on_revoked = on_revoked, .ctx = s};
    if (!(s->intake = pw_intake_new(s->loop, cfg, &h, err, sizeof err))) goto start_failed;
    s->exit_code = 0;
    s->watch_timer = pw_loop_timer_add(s->loop, 1000, watch_cb, s);
    pw_log(PW_LOG_INFO, NULL, "worker.started",
           "consuming %s in group %s; replies to %s, "
           "dead letters to %s; in-flight limit %zu",
           cfg->request_topic, pw_config_kafka_get(cfg, "group.id"), cfg->reply_topic,
           cfg->dead_letter_topic, cfg->max_in_flight);

    if (pw_loop_run(s->loop)) {
        pw_log(PW_LOG_ERROR, NULL, "worker.loop_failed", "%s", strerror(errno));
        s->exit_code = 1;
    }

    /* Shutdown, in order: no new work; deliver what is produced; commit what is stored;
     * leave the group; destroy. */
    /* The drain deadline bounds the flush too: a reply broker that is down must not hold the
     * process past it (what is not acknowledged is not committed, so it is redelivered). */
    pw_intake_stop(s->intake);
    uint64_t now = pw_loop_now_ms(s->loop);
    uint64_t budget = s->drain_deadline_ms > now ? s->drain_deadline_ms - now : 0;
    if (budget > SVC_FLUSH_TIMEOUT_MS) budget = SVC_FLUSH_TIMEOUT_MS;
    size_t left = pw_reply_flush(s->reply, (int)budget);
    if (left)
        pw_log(PW_LOG_WARN, NULL, "worker.flush_incomplete", "%zu messages not acknowledged", left);
    pw_intake_close(s->intake, SVC_CLOSE_TIMEOUT_MS);
    pw_log(PW_LOG_INFO, NULL, "worker.stopped", "%zu requests unfinished (to be redelivered)",
           s->in_flight);
    goto out;

start_failed:
    pw_log(PW_LOG_ERROR, NULL, "worker.start_failed", "%s", err);
out:;
    teardown_watch watch = {0};
    teardown_watch_start(&watch, cfg->teardown_timeout_ms, s->exit_code);
    if (s->drain_timer) pw_loop_timer_cancel(s->loop, s->drain_timer);
    if (s->watch_timer) pw_loop_timer_cancel(s->loop, s->watch_timer);
    pw_intake_free(s->intake);
    pw_exec_free(s->exec); /* abandons unfinished requests: their contexts leak no callbacks */
    pw_reply_free(s->reply);
    pw_azure_free(s->azure);
    pw_request_checker_free(s->checker);
    pw_offsets_free(s->ledger);
    while (s->live)
        ctx_free(s->live);
    if (s->sigfd >= 0) {
        pw_loop_fd_watch(s->loop, s->sigfd, 0, NULL, NULL);
        close(s->sigfd);
    }
    pw_loop_free(s->loop);
    teardown_watch_end(&watch);
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    return s->exit_code;
}
