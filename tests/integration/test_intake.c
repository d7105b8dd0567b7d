/* test_intake.c: the Kafka intake against librdkafka's mock cluster (in process, loopback):
 * a partition paused by backpressure, taken away by a rebalance and given back after the
 * intake resumed (with nothing assigned at that moment) is consumed again; a partition
 * given to a member with a committed offset is claimed (the member's commit, metadata
 * included, accepted by the group) before any of its messages is delivered, even when the
 * first claims are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "pw/config.h"
#include "pw/intake.h"
#include "pw/loop.h"

#define TOPIC "intake.test"
#define PARTITIONS 2
#define WAIT_MS 30000

typedef struct member {
    pw_loop *loop;
    pw_intake *in;
    int assigned;             /* partitions assigned now */
    int assignments;          /* on_assigned calls in all */
    int revocations;          /* on_revoked calls in all */
    int consumed[PARTITIONS]; /* messages seen per partition */
    int resume_after_revoke;  /* resume from a timer once a revocation is over */
    int resumed_in_gap;       /* that resume ran before the next assignment */
    int gap_assignments;      /* assignments counted when the revocation happened */
    pw_timer *release_timer;
    const char *name;            /* its metadata: "pw2:<name>:" */
    int64_t commit_at[PARTITIONS]; /* its commit points (-1: none) */
    int64_t committed[PARTITIONS]; /* as on_assigned said (-2: not called) */
    char metadata[PARTITIONS][64];
    rd_kafka_t *side;            /* reads the group's commits, for the claim check */
    int claimed_first;           /* messages delivered after the group held its claim */
    int unclaimed;               /* messages delivered before */
} member;

/* The group's committed metadata for a partition, as a non-member reads it. */
static void group_metadata(rd_kafka_t *side, int32_t partition, char *out, size_t cap)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC, partition);
    out[0] = '\0';
    if (!rd_kafka_committed(side, l, 5000) && l->elems[0].metadata) {
        size_t n = l->elems[0].metadata_size < cap - 1 ? l->elems[0].metadata_size : cap - 1;
        memcpy(out, l->elems[0].metadata, n);
        out[n] = '\0';
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_message(void *ctx, const rd_kafka_message_t *msg)
{
    member *m = ctx;
    if (msg->partition >= 0 && msg->partition < PARTITIONS) m->consumed[msg->partition]++;
    if (m->side) {
        char meta[64], want[64];
        group_metadata(m->side, msg->partition, meta, sizeof meta);
        snprintf(want, sizeof want, "pw2:%s:", m->name);
        if (!strcmp(meta, want))
            m->claimed_first++;
        else
            m->unclaimed++;
    }
}

static size_t commit_points(void *ctx, pw_intake_position *pos, size_t cap)
{
    member *m = ctx;
    size_t n = 0;
    for (int32_t i = 0; i < PARTITIONS && n < cap; i++) {
        if (m->commit_at[i] < 0) continue;
        char *meta = malloc(64);
        assert_non_null(meta);
        snprintf(meta, 64, "pw2:%s:", m->name);
        pos[n++] = (pw_intake_position){TOPIC, i, m->commit_at[i], meta};
    }
    return n;
}

static void resume_cb(pw_loop *loop, void *ctx)
{
    member *m = ctx;
    (void)loop;
    /* Backpressure lifted between the revocation and the next assignment. */
    m->resumed_in_gap = m->assignments == m->gap_assignments;
    pw_intake_pause(m->in, 0);
}

/* The revoke is released from the loop, as the worker does once its work is drained. */
static void release_cb(pw_loop *loop, void *ctx)
{
    member *m = ctx;
    (void)loop;
    m->release_timer = NULL;
    pw_intake_release(m->in);
    if (m->resume_after_revoke && !m->assigned) {
        m->resume_after_revoke = 0;
        m->gap_assignments = m->assignments;
        assert_non_null(pw_loop_timer_add(m->loop, 0, resume_cb, m));
    }
}

static void on_revoked(void *ctx, const char *topic, int32_t partition, int lost)
{
    member *m = ctx;
    (void)topic;
    (void)partition;
    (void)lost;
    m->revocations++;
    m->assigned--;
    assert_true(pw_intake_revoking(m->in));
    if (!m->release_timer) m->release_timer = pw_loop_timer_add(m->loop, 0, release_cb, m);
    assert_non_null(m->release_timer);
}

static void on_assigned(void *ctx, const char *topic, int32_t partition, int64_t committed,
                        const char *metadata)
{
    member *m = ctx;
    (void)topic;
    m->assignments++;
    m->assigned++;
    if (partition < 0 || partition >= PARTITIONS) return;
    m->committed[partition] = committed;
    snprintf(m->metadata[partition], sizeof m->metadata[partition], "%s", metadata);
    if (committed >= 0) m->commit_at[partition] = committed; /* what it claims with */
}

static void config(pw_config *cfg, const char *bootstraps)
{
    char err[256];
    assert_int_equal(pw_config_load(cfg, NULL, err, sizeof err), 0);
    const char *kv[][2] = {
        {"kafka.bootstrap.servers", bootstraps},
        {"kafka.group.id", "intake-test"},
        {"kafka.auto.offset.reset", "earliest"},
        {"kafka.session.timeout.ms", "6000"},
        {"kafka.heartbeat.interval.ms", "100"},
        {"kafka.topic.metadata.refresh.interval.ms", "500"},
        {"worker.request.topic", TOPIC},
        /* eager: a join revokes every partition (the worker's default is incremental) */
        {"kafka.partition.assignment.strategy", "range"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        assert_int_equal(pw_config_set(cfg, kv[i][0], kv[i][1], err, sizeof err), 0);
}

static void join(member *m, pw_loop *loop, const pw_config *cfg)
{
    char err[256];
    m->loop = loop;
    if (!m->name) m->name = "x";
    for (int32_t i = 0; i < PARTITIONS; i++) {
        if (!m->commit_at[i]) m->commit_at[i] = -1;
        m->committed[i] = -2;
    }
    pw_intake_handlers h = {.on_message = on_message,
                            .on_revoked = on_revoked,
                            .on_assigned = on_assigned,
                            .commit_points = commit_points,
                            .ctx = m};
    m->in = pw_intake_new(loop, cfg, &h, err, sizeof err);
    assert_non_null(m->in);
}

/* Runs the loop until done(a, b) or WAIT_MS; returns done's last answer. */
static int run_until(pw_loop *loop, member *a, member *b, int (*done)(member *, member *))
{
    uint64_t end = pw_loop_now_ms(loop) + WAIT_MS;
    while (!done(a, b) && pw_loop_now_ms(loop) < end)
        assert_int_equal(pw_loop_run_once(loop, 50), 0);
    return done(a, b);
}

static void produce(rd_kafka_t *p, int32_t partition)
{
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_VALUE("m", 1), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(p, WAIT_MS), 0);
}

static int seen(const member *a, const member *b, int32_t partition)
{
    return a->consumed[partition] + (b ? b->consumed[partition] : 0);
}

static int a_has_all(member *a, member *b)
{
    (void)b;
    return a->assigned == PARTITIONS && seen(a, NULL, 0) >= 1 && seen(a, NULL, 1) >= 1;
}

static int split(member *a, member *b)
{
    return a->revocations >= PARTITIONS && a->assigned >= 1 && b->assigned >= 1 &&
           a->assigned + b->assigned == PARTITIONS;
}

static int second_round_seen(member *a, member *b)
{
    return seen(a, b, 0) >= 2 && seen(a, b, 1) >= 2;
}

/* A mock cluster (behind a producer) with the topic, the intake's configuration, a loop. */
typedef struct stack {
    rd_kafka_t *p;
    rd_kafka_mock_cluster_t *mc;
    pw_config cfg;
    pw_loop *loop;
} stack;

static void stack_open(stack *st)
{
    char err[256];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(pc, "test.mock.num.brokers", "1", err, sizeof err), 0);
    st->p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    assert_non_null(st->p);
    st->mc = rd_kafka_handle_mock_cluster(st->p);
    assert_non_null(st->mc);
    assert_int_equal(rd_kafka_mock_topic_create(st->mc, TOPIC, PARTITIONS, 1), 0);
    config(&st->cfg, rd_kafka_mock_cluster_bootstraps(st->mc));
    st->loop = pw_loop_new(err, sizeof err);
    assert_non_null(st->loop);
}

static void stack_close(stack *st)
{
    pw_loop_free(st->loop);
    pw_config_free(&st->cfg);
    rd_kafka_destroy(st->p);
}

static void test_paused_partition_given_back_is_consumed(void **state)
{
    (void)state;
    stack st;
    stack_open(&st);
    rd_kafka_t *p = st.p;
    pw_loop *loop = st.loop;

    /* A alone: both partitions, one message each. */
    member a = {0}, b = {0};
    for (int32_t i = 0; i < PARTITIONS; i++)
        produce(p, i);
    join(&a, loop, &st.cfg);
    assert_true(run_until(loop, &a, NULL, a_has_all));

    /* A pauses (backpressure); B joins; A's partitions are revoked, A resumes while it has
     * none, then gets one of its paused partitions back. */
    pw_intake_pause(a.in, 1);
    a.resume_after_revoke = 1;
    join(&b, loop, &st.cfg);
    assert_true(run_until(loop, &a, &b, split));
    assert_true(a.resumed_in_gap);
    assert_false(pw_intake_paused(a.in));

    /* A new message on each partition reaches whichever member owns it. */
    for (int32_t i = 0; i < PARTITIONS; i++)
        produce(p, i);
    if (!run_until(loop, &a, &b, second_round_seen))
        fail_msg("partition 0 seen %d times, partition 1 %d times (A has %d partitions)",
                 seen(&a, &b, 0), seen(&a, &b, 1), a.assigned);

    assert_int_equal(pw_intake_close(b.in, 10000), 0);
    assert_int_equal(pw_intake_close(a.in, 10000), 0);
    pw_intake_free(b.in);
    pw_intake_free(a.in);
    stack_close(&st);
}

static int b_consumed_second_round(member *a, member *b)
{
    (void)a;
    return b->consumed[0] + b->consumed[1] >= 1 && split(a, b);
}

static int a_committed(member *a, member *b)
{
    (void)b;
    char meta[64];
    int ok = 1;
    for (int32_t i = 0; i < PARTITIONS; i++) {
        group_metadata(a->side, i, meta, sizeof meta);
        ok &= !strcmp(meta, "pw2:a:");
    }
    return ok;
}

static void test_claim_before_messages(void **state)
{
    (void)state;
    char err[256];
    stack st;
    stack_open(&st);
    rd_kafka_t *p = st.p;
    rd_kafka_mock_cluster_t *mc = st.mc;
    pw_loop *loop = st.loop;
    /* a plain consumer of the same group id, never joining: reads the group's commits */
    rd_kafka_conf_t *sc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(sc, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mc), err, sizeof err),
                     0);
    assert_int_equal(rd_kafka_conf_set(sc, "group.id", "intake-test", err, sizeof err), 0);
    rd_kafka_t *side = rd_kafka_new(RD_KAFKA_CONSUMER, sc, err, sizeof err);
    assert_non_null(side);

    /* A has both partitions, consumes one message of each and commits past them. */
    member a = {.name = "a", .side = side}, b = {.name = "b", .side = side};
    for (int32_t i = 0; i < PARTITIONS; i++)
        produce(p, i);
    join(&a, loop, &st.cfg);
    assert_true(run_until(loop, &a, NULL, a_has_all));
    for (int32_t i = 0; i < PARTITIONS; i++)
        a.commit_at[i] = 1;
    pw_intake_commit(a.in);
    assert_true(run_until(loop, &a, NULL, a_committed));

    /* B joins while the group refuses B's first commits: B gets a partition, learns A's
     * commit, and sees its messages only once its own claim is in the group. */
    a.side = NULL; /* (A's later messages are not under test) */
    for (int32_t i = 0; i < PARTITIONS; i++)
        produce(p, i);
    join(&b, loop, &st.cfg);
    rd_kafka_mock_push_request_errors(mc, 8 /* OffsetCommit */, 3,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
    if (!run_until(loop, &a, &b, b_consumed_second_round))
        fail_msg("B consumed %d + %d messages, has %d partitions", b.consumed[0], b.consumed[1],
                 b.assigned);
    int32_t bp = b.committed[0] >= 0 ? 0 : 1;
    assert_int_equal(b.committed[bp], 1);
    assert_string_equal(b.metadata[bp], "pw2:a:");
    assert_true(b.claimed_first >= 1);
    assert_int_equal(b.unclaimed, 0);

    /* (the final commits may meet the rebalance the other's leaving starts) */
    pw_intake_close(b.in, 10000);
    pw_intake_close(a.in, 10000);
    pw_intake_free(b.in);
    pw_intake_free(a.in);
    rd_kafka_destroy(side);
    stack_close(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paused_partition_given_back_is_consumed),
        cmocka_unit_test(test_claim_before_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
