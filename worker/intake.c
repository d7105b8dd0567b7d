/* intake.c: Kafka consumer on the event loop: subscribe, rebalance, claims, pause/resume, commits. */
#include "pw/intake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/kafka.h"
#include "pw/log.h"
#include "pw/metrics.h"
#include "pw/status.h"

#define INTAKE_POLL_BATCH 500     /* messages per wake-up before yielding to the loop */
#define INTAKE_SAFETY_POLL_MS 500 /* a poll even without a wake-up, in case one was missed */
#define INTAKE_COMMIT_PARTITIONS_MAX 1024 /* partitions one commit carries */
/* Reading the committed offsets of an assignment, in the rebalance callback (blocking, once
 * per rebalance) and when that failed, again from the loop (shorter: the loop waits). */
#define INTAKE_COMMITTED_TIMEOUT_MS 5000
#define INTAKE_COMMITTED_RETRY_TIMEOUT_MS 1000
#define INTAKE_CLAIM_RETRY_MS 500 /* a claim refused or unsent is sent again */
#define INTAKE_STATS_INTERVAL_MS "10000" /* librdkafka statistics, for the lag gauges */
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
    int joined; /* an assignment came */
    int closed;
    int abandoned; /* close did not finish in time: destroy without closing again */
    /* A revoke whose release (commit, unassign) waits for pw_intake_release: the
     * partitions are paused and their late messages dropped until then. */
    rd_kafka_topic_partition_list_t *revoking;
    int revoking_lost;
    /* Assigned partitions not yet claimed, paused until they are.  Each element's offset
     * says where it stands: RD_KAFKA_OFFSET_INVALID, its committed offset not read yet;
     * otherwise read (and on_assigned called), its claim not yet accepted. */
    rd_kafka_topic_partition_list_t *claiming;
    int claim_outstanding;
    unsigned assign_epoch, claim_epoch; /* a claim answered after a newer assignment is void */
    pw_timer *claim_timer;
    pw_intake_probe_cb probe_cb;
    void *probe_ctx;
};

static int is_cooperative(rd_kafka_t *rk)
{
    return !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
}

/* The handler's commit points as a list to commit (of the partitions in only, when
 * given), or NULL when there are none. */
static rd_kafka_topic_partition_list_t *commit_list(pw_intake *in,
                                                    const rd_kafka_topic_partition_list_t *only)
{
    pw_intake_position *pos = calloc(INTAKE_COMMIT_PARTITIONS_MAX, sizeof *pos);
    if (!pos) return NULL;
    size_t n = in->h.commit_points(in->h.ctx, pos, INTAKE_COMMIT_PARTITIONS_MAX);
    rd_kafka_topic_partition_list_t *l = n ? rd_kafka_topic_partition_list_new((int)n) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (!l || (only && !rd_kafka_topic_partition_list_find(only, pos[i].topic,
                                                                pos[i].partition))) {
            free(pos[i].metadata);
            continue;
        }
        rd_kafka_topic_partition_t *t =
            rd_kafka_topic_partition_list_add(l, pos[i].topic, pos[i].partition);
        t->offset = pos[i].offset;
        if (pos[i].metadata) { /* the list owns it from here (freed with it) */
            t->metadata = pos[i].metadata;
            t->metadata_size = strlen(pos[i].metadata);
        }
    }
    free(pos);
    if (l && !l->cnt) {
        rd_kafka_topic_partition_list_destroy(l);
        l = NULL;
    }
    return l;
}

/* Commits the commit points, asynchronously; when says which commit a failure was. */
static void commit_points(pw_intake *in, const char *when)
{
    rd_kafka_topic_partition_list_t *l = commit_list(in, NULL);
    if (!l) return;
    rd_kafka_resp_err_t e = rd_kafka_commit(in->rk, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
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

static int in_list(const rd_kafka_topic_partition_list_t *l, const char *topic, int32_t partition)
{
    return l && rd_kafka_topic_partition_list_find(l, topic, partition) != NULL;
}

/* A partition may be fetched: not being revoked, not waiting for its claim. */
static int may_resume(const pw_intake *in, const char *topic, int32_t partition)
{
    return !in_list(in->revoking, topic, partition) && !in_list(in->claiming, topic, partition);
}

static void claim_step(pw_intake *in, int timeout_ms);

static void claim_retry_cb(pw_loop *loop, void *ctx)
{
    (void)loop;
    pw_intake *in = ctx;
    in->claim_timer = NULL;
    claim_step(in, INTAKE_COMMITTED_RETRY_TIMEOUT_MS);
}

static void claim_retry_later(pw_intake *in)
{
    if (!in->claim_timer && !in->closed)
        in->claim_timer = pw_loop_timer_add(in->loop, INTAKE_CLAIM_RETRY_MS, claim_retry_cb, in);
}

/* Removes a partition from the claims (claimed, revoked); resumes it when it may go. */
static void claim_end(pw_intake *in, const char *topic, int32_t partition, int resume)
{
    for (int i = 0; in->claiming && i < in->claiming->cnt; i++) {
        rd_kafka_topic_partition_t *t = &in->claiming->elems[i];
        if (t->partition != partition || strcmp(t->topic, topic)) continue;
        rd_kafka_topic_partition_list_del_by_idx(in->claiming, i);
        break;
    }
    if (!resume || in->paused || in->stopped || !may_resume(in, topic, partition)) return;
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, topic, partition);
    pause_list(in, one, 0);
    rd_kafka_topic_partition_list_destroy(one);
}

static void claim_done(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    pw_intake *in = opaque;
    in->claim_outstanding = 0;
    if (in->closed) return;
    for (int i = 0; offsets && in->claim_epoch == in->assign_epoch && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *t = &offsets->elems[i];
        rd_kafka_resp_err_t e = err ? err : t->err;
        if (e) {
            pw_log(PW_LOG_WARN, NULL, "kafka.claim_failed", "%s [%d]: %s (sent again)", t->topic,
                   (int)t->partition, rd_kafka_err2str(e));
            continue;
        }
        pw_log(PW_LOG_INFO, NULL, "kafka.claimed", "%s [%d] @ %lld", t->topic, (int)t->partition,
               (long long)t->offset);
        claim_end(in, t->topic, t->partition, 1);
    }
    if (in->claiming && in->claiming->cnt) claim_step(in, INTAKE_COMMITTED_RETRY_TIMEOUT_MS);
}

/* Moves the claims on: reads the committed offsets not read yet (telling the handler),
 * resumes what has nothing committed (no owner can have written for it), and commits the
 * commit points of the rest (the claim).  What could not be done is tried again later. */
static void claim_step(pw_intake *in, int timeout_ms)
{
    if (in->closed || !in->claiming || !in->claiming->cnt) return;
    rd_kafka_topic_partition_list_t *unread = rd_kafka_topic_partition_list_new(in->claiming->cnt);
    for (int i = 0; i < in->claiming->cnt; i++)
        if (in->claiming->elems[i].offset == RD_KAFKA_OFFSET_INVALID)
            rd_kafka_topic_partition_list_add(unread, in->claiming->elems[i].topic,
                                              in->claiming->elems[i].partition);
    int retry = 0;
    if (unread->cnt) {
        /* Blocking, bounded: a rebalance is rare and the answer is one round trip. */
        rd_kafka_resp_err_t ce = rd_kafka_committed(in->rk, unread, timeout_ms);
        for (int i = 0; i < unread->cnt; i++) {
            const rd_kafka_topic_partition_t *c = &unread->elems[i];
            if (ce || c->err) {
                pw_log(PW_LOG_WARN, NULL, "kafka.committed_unknown",
                       "%s [%d]: the committed offset could not be read: %s (read again; the "
                       "partition waits)",
                       c->topic, (int)c->partition, rd_kafka_err2str(ce ? ce : c->err));
                retry = 1;
                continue;
            }
            int64_t at = c->offset >= 0 ? c->offset : -1;
            char meta[PW_INTAKE_METADATA_MAX + 1] = "";
            if (at >= 0 && c->metadata && c->metadata_size <= PW_INTAKE_METADATA_MAX) {
                memcpy(meta, c->metadata, c->metadata_size);
                meta[c->metadata_size] = '\0';
            }
            pw_log(PW_LOG_INFO, NULL, "kafka.committed_read", "%s [%d] @ %lld", c->topic,
                   (int)c->partition, (long long)at);
            in->h.on_assigned(in->h.ctx, c->topic, c->partition, at, meta);
            rd_kafka_topic_partition_t *t =
                rd_kafka_topic_partition_list_find(in->claiming, c->topic, c->partition);
            if (t) t->offset = at;
            /* nothing committed: nobody can have worked on it, there is nothing to claim */
            if (at < 0) claim_end(in, c->topic, c->partition, 1);
        }
    }
    rd_kafka_topic_partition_list_destroy(unread);
    if (!in->claim_outstanding && in->claiming->cnt) {
        rd_kafka_topic_partition_list_t *read = rd_kafka_topic_partition_list_new(in->claiming->cnt);
        for (int i = 0; i < in->claiming->cnt; i++)
            if (in->claiming->elems[i].offset != RD_KAFKA_OFFSET_INVALID)
                rd_kafka_topic_partition_list_add(read, in->claiming->elems[i].topic,
                                                  in->claiming->elems[i].partition);
        rd_kafka_topic_partition_list_t *l = read->cnt ? commit_list(in, read) : NULL;
        rd_kafka_topic_partition_list_destroy(read);
        if (l) {
            rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(in->rk);
            rd_kafka_resp_err_t e = rd_kafka_commit_queue(in->rk, l, q, claim_done, in);
            if (q) rd_kafka_queue_destroy(q);
            rd_kafka_topic_partition_list_destroy(l);
            if (e) {
                pw_log(PW_LOG_WARN, NULL, "kafka.claim_failed", "not sent: %s",
                       rd_kafka_err2str(e));
                retry = 1;
            } else {
                in->claim_outstanding = 1;
                in->claim_epoch = in->assign_epoch;
            }
        } else {
            retry = 1; /* (the handler gave no commit point for them yet) */
        }
    }
    if (retry) claim_retry_later(in);
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
        /* Paused until claimed (set either way: librdkafka keeps a partition paused across a
         * revoke and a later re-assignment, and the intake may have resumed in between). */
        pause_list(in, parts, 1);
        in->joined = 1;
        in->assign_epoch++;
        if (!in->claiming) in->claiming = rd_kafka_topic_partition_list_new(parts->cnt);
        for (int i = 0; i < parts->cnt; i++) {
            pw_log(PW_LOG_INFO, NULL, "kafka.assigned", "%s [%d]", parts->elems[i].topic,
                   (int)parts->elems[i].partition);
            if (!in_list(in->claiming, parts->elems[i].topic, parts->elems[i].partition))
                rd_kafka_topic_partition_list_add(in->claiming, parts->elems[i].topic,
                                                  parts->elems[i].partition)
                    ->offset = RD_KAFKA_OFFSET_INVALID;
        }
        claim_step(in, INTAKE_COMMITTED_TIMEOUT_MS);
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
        if (!lost) commit_points(in, "at revoke: ");
        for (int i = 0; i < parts->cnt; i++)
            claim_end(in, parts->elems[i].topic, parts->elems[i].partition, 0);
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

/* librdkafka's statistics: each partition's consumer_lag as a gauge. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    (void)opaque;
    json_t *st = json_loadb(json, len, 0, NULL);
    const char *tname;
    json_t *t;
    json_object_foreach(json_object_get(st, "topics"), tname, t)
    {
        const char *pname;
        json_t *p;
        json_object_foreach(json_object_get(t, "partitions"), pname, p)
        {
            json_t *lag = json_object_get(p, "consumer_lag");
            if (!strcmp(pname, "-1") || !json_is_integer(lag) || json_integer_value(lag) < 0)
                continue;
            pw_metrics_set(PW_M_CONSUMER_LAG, (double)json_integer_value(lag), tname, pname,
                           NULL);
        }
    }
    json_decref(st);
    return 0; /* librdkafka frees json */
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
    /* Forced: only the caller's commit points are committed, with their metadata. */
    if (rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", rderr, sizeof rderr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", rderr, sizeof rderr)) {
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
    if (cfg->admin_listen[0]) {
        if (!pw_config_kafka_get(cfg, "statistics.interval.ms") &&
            rd_kafka_conf_set(conf, "statistics.interval.ms", INTAKE_STATS_INTERVAL_MS, rderr,
                              sizeof rderr)) {
            pw_err_set(err, errlen, "consumer configuration: %s", rderr);
            rd_kafka_conf_destroy(conf);
            goto fail;
        }
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
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
        /* partitions being revoked or claimed stay paused until they are released or claimed */
        for (int i = parts->cnt - 1; !paused && i >= 0; i--)
            if (!may_resume(in, parts->elems[i].topic, parts->elems[i].partition))
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

int pw_intake_joined(const pw_intake *in)
{
    return in->joined;
}

size_t pw_intake_paused_partitions(const pw_intake *in)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    size_t n = 0;
    if (rd_kafka_assignment(in->rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts)
        for (int i = 0; i < parts->cnt; i++)
            if (in->paused || in->stopped ||
                !may_resume(in, parts->elems[i].topic, parts->elems[i].partition))
                n++;
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    return n;
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
    /* The commit points go to the group first (asynchronously: librdkafka holds the rejoin
     * until outstanding commits are answered), so the next owner starts right after them. */
    if (!in->revoking_lost) commit_points(in, "before release: ");
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
    if (!in->closed) commit_points(in, "");
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

int pw_intake_probe(pw_intake *in, pw_intake_probe_cb cb, void *ctx)
{
    if (in->probe_cb || in->closed) return -1;
    rd_kafka_topic_partition_list_t *l = commit_list(in, NULL);
    if (!l) return 1;
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
    /* The final commit of the commit points, waited for at most until the deadline: a slow
     * or absent coordinator must not hold the process past its shutdown budget (what is
     * not committed is redelivered). */
    rd_kafka_topic_partition_list_t *l = commit_list(in, NULL);
    rd_kafka_resp_err_t e =
        l ? rd_kafka_commit_queue(in->rk, l, q, NULL, NULL) : RD_KAFKA_RESP_ERR__NO_OFFSET;
    if (l) rd_kafka_topic_partition_list_destroy(l);
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
    if (in->claim_timer) pw_loop_timer_cancel(in->loop, in->claim_timer);
    if (in->claiming) rd_kafka_topic_partition_list_destroy(in->claiming);
    if (in->revoking) rd_kafka_topic_partition_list_destroy(in->revoking);
    pw_kafka_wake_stop(&in->wake);
    if (in->rk)
        rd_kafka_destroy_flags(in->rk, in->abandoned ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0);
    free(in);
}
