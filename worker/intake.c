/* intake.c: Kafka consumer on the event loop: subscribe, rebalance, pause/resume, store offsets. */
#include "pw/intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/kafka.h"
#include "pw/log.h"
#include "pw/status.h"

#define INTAKE_POLL_BATCH 500     /* messages per wake-up before yielding to the loop */
#define INTAKE_SAFETY_POLL_MS 500 /* a poll even without a wake-up, in case one was missed */
/* unless kafka.partition.assignment.strategy says otherwise */
#define INTAKE_DEFAULT_ASSIGNOR "cooperative-sticky"
/* Before this librdkafka version a commit that meets a cooperative rebalance fails with
 * ILLEGAL_GENERATION and the consumer drops its whole assignment as lost and rejoins
 * (librdkafka issue 4059, fixed by pull request 4908): with stored offsets committed as
 * requests finish, every rebalance then sets off the next one.  Older versions keep
 * librdkafka's eager default. */
#define INTAKE_COOPERATIVE_MIN_VERSION 0x020a0000

struct pw_intake {
    pw_loop *loop;
    pw_intake_handlers h;
    rd_kafka_t *rk;
    pw_kafka_wake wake; /* the consumer queue's loop wake-up */
    pw_timer *again;
    int paused;
    int stopped;
    int closed;
    int abandoned; /* close did not finish in time: destroy without closing again */
    /* A revoke whose release (commit, unassign) waits for pw_intake_release: the
     * partitions are paused and their late messages dropped until then. */
    rd_kafka_topic_partition_list_t *revoking;
    int revoking_lost;
    pw_intake_probe_cb probe_cb;
    void *probe_ctx;
};

static int is_cooperative(rd_kafka_t *rk)
{
    return !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
}

/* Commits what is stored, asynchronously; when says which commit a failure was. */
static void commit_stored(pw_intake *in, const char *when)
{
    rd_kafka_resp_err_t e = rd_kafka_commit(in->rk, NULL, 1);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        pw_log(PW_LOG_WARN, NULL, "kafka.commit_failed", "%s%s", when, rd_kafka_err2str(e));
}

static void pause_list(pw_intake *in, rd_kafka_topic_partition_list_t *parts, int pause)
{
    if (!parts || !parts->cnt) return;
    rd_kafka_resp_err_t e = pause ? rd_kafka_pause_partitions(in->rk, parts)
                                  : rd_kafka_resume_partitions(in->rk, parts);
    if (e)
        pw_log(PW_LOG_WARN, NULL, pause ? "kafka.pause_failed" : "kafka.resume_failed", "%s",
               rd_kafka_err2str(e));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pw_intake *in = opaque;
    int cooperative = is_cooperative(rk);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t e = 0;
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            e = rd_kafka_assign(rk, parts);
        if (error) {
            pw_log(PW_LOG_ERROR, NULL, "kafka.assign_failed", "%s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        } else if (e) {
            pw_log(PW_LOG_ERROR, NULL, "kafka.assign_failed", "%s", rd_kafka_err2str(e));
        }
        /* Set the pause state either way: librdkafka keeps a partition paused across a revoke
         * and a later re-assignment, and the intake may have resumed in between (with nothing
         * assigned to resume), which would leave that partition paused for good. */
        pause_list(in, parts, in->paused || in->stopped);
        for (int i = 0; i < parts->cnt; i++) {
            pw_log(PW_LOG_INFO, NULL, "kafka.assigned", "%s [%d]", parts->elems[i].topic,
                   (int)parts->elems[i].partition);
            if (in->h.on_assigned)
                in->h.on_assigned(in->h.ctx, parts->elems[i].topic, parts->elems[i].partition);
        }
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !in->closed && in->h.on_revoked) {
        /* The release waits: work of these partitions in flight finishes and is acknowledged
         * first, and nothing of them starts any more (the caller's part), so the next owner
         * never overlaps with this one.  The group waits for the release (up to
         * max.poll.interval.ms), as the consumer keeps polling meanwhile. */
        int lost = rd_kafka_assignment_lost(rk);
        pause_list(in, parts, 1);
        /* What is stored already goes to the group at once, while the rebalance is young
         * (a coordinator may refuse commits once other members have rejoined); what the
         * drain finishes is committed again at the release. */
        if (!lost) commit_stored(in, "at revoke: ");
        if (!in->revoking) in->revoking = rd_kafka_topic_partition_list_new(parts->cnt);
        for (int i = 0; i < parts->cnt; i++)
            rd_kafka_topic_partition_list_add(in->revoking, parts->elems[i].topic,
                                              parts->elems[i].partition);
        in->revoking_lost |= lost;
        for (int i = 0; i < parts->cnt; i++) {
            pw_log(PW_LOG_INFO, NULL, "kafka.revoked", "%s [%d]%s", parts->elems[i].topic,
                   (int)parts->elems[i].partition, lost ? " (lost)" : "");
            in->h.on_revoked(in->h.ctx, parts->elems[i].topic, parts->elems[i].partition, lost);
        }
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++)
            pw_log(PW_LOG_INFO, NULL, "kafka.revoked", "%s [%d]", parts->elems[i].topic,
                   (int)parts->elems[i].partition);
    } else {
        pw_log(PW_LOG_ERROR, NULL, "kafka.rebalance_error", "%s", rd_kafka_err2str(err));
    }
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(rk, parts);
        if (error) rd_kafka_error_destroy(error);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        pw_log(PW_LOG_WARN, NULL, "kafka.commit_failed", "%s", rd_kafka_err2str(err));
        return;
    }
    for (int i = 0; offsets && i < offsets->cnt; i++)
        if (offsets->elems[i].offset >= 0)
            pw_log(PW_LOG_DEBUG, NULL, "kafka.committed", "%s [%d] @ %lld", offsets->elems[i].topic,
                   (int)offsets->elems[i].partition, (long long)offsets->elems[i].offset);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pw_log(err == RD_KAFKA_RESP_ERR__FATAL ? PW_LOG_ERROR : PW_LOG_WARN, NULL,
           "kafka.consumer_error", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void serve(pw_intake *in);

static void again_cb(pw_loop *loop, void *ctx)
{
    pw_intake *in = ctx;
    in->again = NULL;
    serve(in);
}

static void serve(pw_intake *in)
{
    if (in->closed) return;
    for (int i = 0; i < INTAKE_POLL_BATCH; i++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(in->rk, 0);
        if (!msg) return;
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                pw_log(PW_LOG_WARN, NULL, "kafka.consume_error", "%s: %s",
                       msg->rkt ? rd_kafka_topic_name(msg->rkt) : "-",
                       rd_kafka_message_errstr(msg));
        } else if (in->revoking &&
                   rd_kafka_topic_partition_list_find(in->revoking, rd_kafka_topic_name(msg->rkt),
                                                      msg->partition)) {
            /* fetched before the revoke: the next owner gets it from the committed offset */
            pw_log(PW_LOG_DEBUG, NULL, "kafka.dropped_revoked", "%s [%d] @ %lld",
                   rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset);
        } else if (!in->stopped && in->h.on_message) {
            in->h.on_message(in->h.ctx, msg);
        }
        rd_kafka_message_destroy(msg);
    }
    if (!in->again) in->again = pw_loop_timer_add(in->loop, 0, again_cb, in);
}

static void serve_cb(void *ctx)
{
    serve(ctx);
}

pw_intake *pw_intake_new(pw_loop *loop, const pw_config *cfg, const pw_intake_handlers *h,
                         char *err, size_t errlen)
{
    pw_intake *in = calloc(1, sizeof *in);
    if (!in) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    in->loop = loop;
    in->h = *h;
    char rderr[512];
    rd_kafka_conf_t *conf = pw_kafka_conf_new(cfg, err, errlen);
    if (!conf) goto fail;
    /* Forced: an offset is stored only when its message (and all before it) are done. */
    if (rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", rderr, sizeof rderr)) {
        pw_err_set(err, errlen, "consumer configuration: %s", rderr);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    /* Incremental rebalances by default: a member joining or leaving moves only the
     * partitions that change owner, instead of revoking every partition of every member. */
    if (!pw_config_kafka_get(cfg, "partition.assignment.strategy") &&
        rd_kafka_version() >= INTAKE_COOPERATIVE_MIN_VERSION &&
        rd_kafka_conf_set(conf, "partition.assignment.strategy", INTAKE_DEFAULT_ASSIGNOR, rderr,
                          sizeof rderr)) {
        pw_err_set(err, errlen, "consumer configuration: %s", rderr);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, in);
    in->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof rderr);
    if (!in->rk) {
        rd_kafka_conf_destroy(conf);
        pw_err_set(err, errlen, "kafka consumer: %s", rderr);
        goto fail;
    }
    rd_kafka_poll_set_consumer(in->rk); /* one queue: messages, rebalances, errors */
    if (pw_kafka_wake_start(&in->wake, loop, rd_kafka_queue_get_consumer(in->rk),
                            INTAKE_SAFETY_POLL_MS, serve_cb, in, err, errlen))
        goto fail;
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->request_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(in->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        pw_err_set(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(e));
        goto fail;
    }
    return in;
fail:
    pw_intake_free(in);
    return NULL;
}

void pw_intake_pause(pw_intake *in, int paused)
{
    if (in->paused == !!paused || in->closed) return;
    in->paused = !!paused;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(in->rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts) {
        /* partitions being revoked stay paused until they are released */
        for (int i = parts->cnt - 1; !paused && in->revoking && i >= 0; i--)
            if (rd_kafka_topic_partition_list_find(in->revoking, parts->elems[i].topic,
                                                   parts->elems[i].partition))
                rd_kafka_topic_partition_list_del_by_idx(parts, i);
        if (!in->stopped || paused) pause_list(in, parts, paused);
        pw_log(PW_LOG_INFO, NULL, paused ? "kafka.paused" : "kafka.resumed", "%d partitions",
               parts->cnt);
    }
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
}

int pw_intake_paused(const pw_intake *in)
{
    return in->paused;
}

int pw_intake_store(pw_intake *in, const char *topic, int32_t partition, int64_t next_offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = next_offset;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(in->rk, l);
    if (!e && l->elems[0].err) e = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        pw_log(PW_LOG_WARN, NULL, "kafka.store_failed", "%s [%d] @ %lld: %s", topic, (int)partition,
               (long long)next_offset, rd_kafka_err2str(e));
        return -1;
    }
    pw_log(PW_LOG_DEBUG, NULL, "kafka.stored", "%s [%d] @ %lld", topic, (int)partition,
           (long long)next_offset);
    return 0;
}

int pw_intake_revoking(const pw_intake *in)
{
    return in->revoking != NULL;
}

void pw_intake_release(pw_intake *in)
{
    if (!in->revoking) return;
    rd_kafka_topic_partition_list_t *parts = in->revoking;
    in->revoking = NULL;
    /* What is stored goes to the group first (asynchronously: librdkafka holds the rejoin
     * until outstanding commits are answered), so the next owner starts right after it. */
    if (!in->revoking_lost) commit_stored(in, "before release: ");
    in->revoking_lost = 0;
    if (is_cooperative(in->rk)) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(in->rk, parts);
        if (error) {
            pw_log(PW_LOG_WARN, NULL, "kafka.unassign_failed", "%s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    } else {
        rd_kafka_resp_err_t e = rd_kafka_assign(in->rk, NULL);
        if (e) pw_log(PW_LOG_WARN, NULL, "kafka.unassign_failed", "%s", rd_kafka_err2str(e));
    }
    pw_log(PW_LOG_INFO, NULL, "kafka.released", "%d partitions", parts->cnt);
    rd_kafka_topic_partition_list_destroy(parts);
}

long pw_intake_session_timeout_ms(const pw_intake *in)
{
    char buf[32];
    size_t size = sizeof buf;
    if (rd_kafka_conf_get(rd_kafka_conf(in->rk), "session.timeout.ms", buf, &size) !=
        RD_KAFKA_CONF_OK)
        return -1;
    return strtol(buf, NULL, 10);
}

int pw_intake_assignment_lost(const pw_intake *in)
{
    return rd_kafka_assignment_lost(in->rk);
}

void pw_intake_commit(pw_intake *in)
{
    if (!in->closed) commit_stored(in, "");
}

static void probe_done(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    pw_intake *in = opaque;
    for (int i = 0; !err && offsets && i < offsets->cnt; i++)
        if (offsets->elems[i].err) err = offsets->elems[i].err;
    pw_intake_probe_cb cb = in->probe_cb;
    in->probe_cb = NULL;
    if (cb) cb(in->probe_ctx, err ? rd_kafka_err2str(err) : NULL);
}

int pw_intake_probe(pw_intake *in, const pw_intake_position *pos, size_t n, pw_intake_probe_cb cb,
                    void *ctx)
{
    if (in->probe_cb || in->closed || !n) return -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, pos[i].topic, pos[i].partition)->offset =
            pos[i].offset;
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(in->rk);
    in->probe_cb = cb;
    in->probe_ctx = ctx;
    rd_kafka_resp_err_t e = rd_kafka_commit_queue(in->rk, l, q, probe_done, in);
    if (q) rd_kafka_queue_destroy(q);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        in->probe_cb = NULL;
        pw_log(PW_LOG_WARN, NULL, "kafka.probe_failed", "%s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

void pw_intake_stop(pw_intake *in)
{
    if (in->stopped) return;
    int was = in->paused;
    pw_intake_pause(in, 1);
    in->paused = was;
    in->stopped = 1;
}

/* Milliseconds left until deadline, at most cap. */
static int left_ms(uint64_t deadline, int cap)
{
    uint64_t now = pw_monotonic_ms();
    if (now >= deadline) return 0;
    return deadline - now < (uint64_t)cap ? (int)(deadline - now) : cap;
}

int pw_intake_close(pw_intake *in, int timeout_ms)
{
    if (in->closed) return 0;
    int rc = 0;
    in->stopped = 1;
    pw_intake_release(in); /* a revoke still waiting: the drain that precedes close is over */
    uint64_t deadline = pw_monotonic_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(in->rk);
    /* The final commit of what is stored, waited for at most until the deadline: a slow or
     * absent coordinator must not hold the process past its shutdown budget (what is not
     * committed is redelivered). */
    rd_kafka_resp_err_t e = rd_kafka_commit_queue(in->rk, NULL, q, NULL, NULL);
    if (!e) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left_ms(deadline, INT32_MAX));
        e = ev ? rd_kafka_event_error(ev) : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (ev) rd_kafka_event_destroy(ev);
    }
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        pw_log(PW_LOG_WARN, NULL, "kafka.commit_failed", "final commit: %s", rd_kafka_err2str(e));
        rc = -1;
    }
    in->closed = 1; /* the rebalance callback must not commit again during close */
    /* Leave the group, serving the close's rebalance events, again bounded by the deadline. */
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(in->rk, q);
    if (error) {
        pw_log(PW_LOG_WARN, NULL, "kafka.close_failed", "%s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else {
        while (!rd_kafka_consumer_closed(in->rk)) {
            int wait = left_ms(deadline, 100);
            if (!wait) {
                pw_log(PW_LOG_WARN, NULL, "kafka.close_timeout",
                       "the consumer did not leave the group within %d ms; abandoning it",
                       timeout_ms);
                in->abandoned = 1;
                rc = -1;
                break;
            }
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, wait);
            if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                rebalance_cb(
                    in->rk, rd_kafka_event_error(ev),
                    (rd_kafka_topic_partition_list_t *)rd_kafka_event_topic_partition_list(ev), in);
            if (ev) rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
    return rc;
}

void pw_intake_free(pw_intake *in)
{
    if (!in) return;
    if (in->again) pw_loop_timer_cancel(in->loop, in->again);
    if (in->revoking) rd_kafka_topic_partition_list_destroy(in->revoking);
    pw_kafka_wake_stop(&in->wake);
    if (in->rk)
        rd_kafka_destroy_flags(in->rk, in->abandoned ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0);
    free(in);
}
