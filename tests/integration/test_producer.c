/* test_producer.c: the reply producer against librdkafka's in-process mock cluster: ordered
 * delivery, acknowledgement callbacks never from inside send, pending counts, bounded
 * attempts for a message the broker refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <string.h>

#include "pw/config.h"
#include "pw/loop.h"
#include "pw/producer.h"

enum { N = 60 };

typedef struct state {
    int inside_send;
    int acked[N];
    int order[N];
    int n_acked;
    int bad_reentry;
} state;

typedef struct ack_ctx {
    state *st;
    int index;
} ack_ctx;

static void on_ack(void *ctx, int ok)
{
    ack_ctx *a = ctx;
    if (a->st->inside_send) a->st->bad_reentry = 1;
    a->st->acked[a->index] = ok ? 1 : -1;
    a->st->order[a->st->n_acked++] = a->index;
}

static void load_config(pw_config *cfg)
{
    char err[256] = "";
    assert_int_equal(pw_config_load(cfg, NULL, err, sizeof err), 0);
    /* A mock cluster inside the producer: no network beyond loopback. */
    assert_int_equal(pw_config_set(cfg, "kafka.test.mock.num.brokers", "1", err, sizeof err), 0);
    assert_int_equal(pw_config_set(cfg, "kafka.linger.ms", "5", err, sizeof err), 0);
}

static void test_ordered_acks(void **unused)
{
    (void)unused;
    pw_config cfg;
    load_config(&cfg);
    char err[256] = "";
    pw_loop *loop = pw_loop_new(err, sizeof err);
    assert_non_null(loop);
    pw_producer *pr = pw_producer_new(loop, &cfg, err, sizeof err);
    if (!pr) fail_msg("pw_producer_new: %s", err);

    static state st;
    memset(&st, 0, sizeof st);
    static ack_ctx ctx[N];
    pw_producer_header hdr = {"kafka_correlationId", "corr-1", 6};
    for (int i = 0; i < N; i++) {
        char value[64];
        int len = snprintf(value, sizeof value, "{\"n\":%d}", i);
        ctx[i] = (ack_ctx){&st, i};
        st.inside_send = 1;
        /* Every message of one key: one partition, so acknowledgements come in order. */
        assert_int_equal(pw_producer_send(pr, "replies", "req-1", value, (size_t)len, &hdr, 1,
                                          i % 2, on_ack, &ctx[i], err, sizeof err),
                         0);
        st.inside_send = 0;
    }
    assert_int_equal(pw_producer_pending(pr), N);
    assert_int_equal(st.n_acked, 0);

    for (int spins = 0; spins < 3000 && st.n_acked < N; spins++)
        pw_loop_run_once(loop, 10);
    assert_int_equal(st.n_acked, N);
    assert_false(st.bad_reentry);
    for (int i = 0; i < N; i++) {
        assert_int_equal(st.acked[i], 1);
        assert_int_equal(st.order[i], i);
    }
    assert_int_equal(pw_producer_pending(pr), 0);
    assert_false(pw_producer_fatal(pr));
    assert_int_equal(pw_producer_flush(pr, 1000), 0);

    pw_producer_free(pr);
    pw_producer_free(NULL);
    pw_loop_free(loop);
    pw_config_free(&cfg);
}

/* Messages still queued when the producer is freed are dropped without callbacks. */
static void test_free_with_pending(void **unused)
{
    (void)unused;
    pw_config cfg;
    load_config(&cfg);
    char err[256] = "";
    pw_loop *loop = pw_loop_new(err, sizeof err);
    pw_producer *pr = pw_producer_new(loop, &cfg, err, sizeof err);
    assert_non_null(pr);
    static state st;
    memset(&st, 0, sizeof st);
    static ack_ctx ctx;
    ctx = (ack_ctx){&st, 0};
    assert_int_equal(
        pw_producer_send(pr, "replies", NULL, "x", 1, NULL, 0, 1, on_ack, &ctx, err, sizeof err),
        0);
    pw_producer_free(pr);
    assert_int_equal(st.n_acked, 0);
    pw_loop_free(loop);
    pw_config_free(&cfg);
}

/* A must_deliver message the broker keeps refusing for its content: given up (ok=0) after
 * PW_PRODUCER_REFUSED_ATTEMPTS attempts, not retried for ever; one refusal fewer and it is
 * delivered.  The cluster is a standalone mock so that its errors can be injected. */
enum { KAFKA_API_PRODUCE = 0 };

static int run_refused(int refusals)
{
    char err[256] = "";
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof err);
    assert_non_null(host);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(host, 1);
    assert_non_null(mc);
    pw_config cfg;
    assert_int_equal(pw_config_load(&cfg, NULL, err, sizeof err), 0);
    assert_int_equal(pw_config_set(&cfg, "kafka.bootstrap.servers",
                                   rd_kafka_mock_cluster_bootstraps(mc), err, sizeof err),
                     0);
    assert_int_equal(pw_config_set(&cfg, "worker.reply.retry.backoff.ms", "10", err, sizeof err),
                     0);
    pw_loop *loop = pw_loop_new(err, sizeof err);
    assert_non_null(loop);
    pw_producer *pr = pw_producer_new(loop, &cfg, err, sizeof err);
    if (!pr) fail_msg("pw_producer_new: %s", err);

    rd_kafka_resp_err_t errs[PW_PRODUCER_REFUSED_ATTEMPTS];
    for (int i = 0; i < refusals; i++)
        errs[i] = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    rd_kafka_mock_push_request_errors_array(mc, KAFKA_API_PRODUCE, (size_t)refusals, errs);

    static state st;
    memset(&st, 0, sizeof st);
    static ack_ctx ctx;
    ctx = (ack_ctx){&st, 0};
    assert_int_equal(pw_producer_send(pr, "deadletters", NULL, "payload", 7, NULL, 0, 1, on_ack,
                                      &ctx, err, sizeof err),
                     0);
    for (int spins = 0; spins < 3000 && !st.n_acked; spins++)
        pw_loop_run_once(loop, 10);
    assert_int_equal(st.n_acked, 1);
    assert_int_equal(pw_producer_pending(pr), 0);

    pw_producer_free(pr);
    pw_loop_free(loop);
    pw_config_free(&cfg);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
    return st.acked[0];
}

static void test_refused_given_up(void **unused)
{
    (void)unused;
    assert_int_equal(run_refused(PW_PRODUCER_REFUSED_ATTEMPTS), -1);
}

static void test_refused_then_delivered(void **unused)
{
    (void)unused;
    assert_int_equal(run_refused(PW_PRODUCER_REFUSED_ATTEMPTS - 1), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordered_acks),
        cmocka_unit_test(test_free_with_pending),
        cmocka_unit_test(test_refused_given_up),
        cmocka_unit_test(test_refused_then_delivered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
