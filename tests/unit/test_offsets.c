/* test_offsets.c: the commit ledger only moves past a message once all before it are done. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "pw/offsets.h"

static void test_in_order(void **state)
{
    (void)state;
    pw_offsets *l = pw_offsets_new();
    int64_t next;
    for (int64_t o = 10; o < 13; o++)
        assert_int_equal(pw_offsets_track(l, "t", 0, o), PW_OK);
    assert_int_equal(pw_offsets_pending(l, "t", 0), 3);
    assert_int_equal(pw_offsets_done(l, "t", 0, 10, &next), PW_OK);
    assert_int_equal(next, 11);
    assert_int_equal(pw_offsets_done(l, "t", 0, 11, &next), PW_OK);
    assert_int_equal(next, 12);
    assert_int_equal(pw_offsets_done(l, "t", 0, 12, &next), PW_OK);
    assert_int_equal(next, 13);
    assert_int_equal(pw_offsets_pending_total(l), 0);
    pw_offsets_free(l);
}

/* A slow earlier message holds back every later one; when it ends, all move at once. */
static void test_out_of_order_done(void **state)
{
    (void)state;
    pw_offsets *l = pw_offsets_new();
    int64_t next;
    for (int64_t o = 0; o < 5; o++)
        assert_int_equal(pw_offsets_track(l, "t", 3, o), PW_OK);
    assert_int_equal(pw_offsets_done(l, "t", 3, 2, &next), PW_OK);
    assert_int_equal(next, -1);
    assert_int_equal(pw_offsets_done(l, "t", 3, 4, &next), PW_OK);
    assert_int_equal(next, -1);
    assert_int_equal(pw_offsets_done(l, "t", 3, 1, &next), PW_OK);
    assert_int_equal(next, -1);
    assert_int_equal(pw_offsets_pending(l, "t", 3), 5);
    assert_int_equal(pw_offsets_done(l, "t", 3, 0, &next), PW_OK);
    assert_int_equal(next, 3); /* 0,1,2 done; 3 still pending */
    assert_int_equal(pw_offsets_pending(l, "t", 3), 2);
    assert_int_equal(pw_offsets_done(l, "t", 3, 3, &next), PW_OK);
    assert_int_equal(next, 5);
    pw_offsets_free(l);
}

static void test_partitions_independent(void **state)
{
    (void)state;
    pw_offsets *l = pw_offsets_new();
    int64_t next;
    assert_int_equal(pw_offsets_track(l, "t", 0, 5), PW_OK);
    assert_int_equal(pw_offsets_track(l, "t", 1, 5), PW_OK);
    assert_int_equal(pw_offsets_track(l, "u", 0, 5), PW_OK);
    assert_int_equal(pw_offsets_track(l, "t", 0, 6), PW_OK);
    assert_int_equal(pw_offsets_done(l, "t", 1, 5, &next), PW_OK);
    assert_int_equal(next, 6);
    assert_int_equal(pw_offsets_done(l, "t", 0, 6, &next), PW_OK);
    assert_int_equal(next, -1);
    assert_int_equal(pw_offsets_pending_total(l), 3);
    pw_offsets_free(l);
}

static void test_gaps_and_errors(void **state)
{
    (void)state;
    pw_offsets *l = pw_offsets_new();
    int64_t next;
    assert_int_equal(pw_offsets_track(l, "t", 0, 100), PW_OK);
    assert_int_equal(pw_offsets_track(l, "t", 0, 107), PW_OK); /* gap: compaction */
    assert_int_equal(pw_offsets_track(l, "t", 0, 107), PW_ERR_ORDER);
    assert_int_equal(pw_offsets_track(l, "t", 0, 50), PW_ERR_ORDER);
    assert_int_equal(pw_offsets_track(l, "", 0, 1), PW_ERR_ARG);
    assert_int_equal(pw_offsets_track(l, "t", -1, 1), PW_ERR_ARG);
    assert_int_equal(pw_offsets_done(l, "t", 0, 101, &next), PW_ERR_UNKNOWN);
    assert_int_equal(pw_offsets_done(l, "t", 9, 100, &next), PW_ERR_UNKNOWN);
    assert_int_equal(pw_offsets_done(l, "t", 0, 107, &next), PW_OK);
    assert_int_equal(next, -1);
    assert_int_equal(pw_offsets_done(l, "t", 0, 107, &next), PW_ERR_UNKNOWN); /* twice */
    assert_int_equal(pw_offsets_done(l, "t", 0, 100, &next), PW_OK);
    assert_int_equal(next, 108);
    pw_offsets_free(l);
}

/* Revoked partitions are forgotten; a re-assignment may re-deliver from an older offset. */
static void test_drop_and_redeliver(void **state)
{
    (void)state;
    pw_offsets *l = pw_offsets_new();
    int64_t next;
    assert_int_equal(pw_offsets_track(l, "t", 0, 1), PW_OK);
    assert_int_equal(pw_offsets_track(l, "t", 0, 2), PW_OK);
    pw_offsets_drop(l, "t", 0);
    pw_offsets_drop(l, "t", 0);
    assert_int_equal(pw_offsets_pending_total(l), 0);
    assert_int_equal(pw_offsets_done(l, "t", 0, 1, &next), PW_ERR_UNKNOWN);
    assert_int_equal(pw_offsets_track(l, "t", 0, 1), PW_OK);
    assert_int_equal(pw_offsets_done(l, "t", 0, 1, &next), PW_OK);
    assert_int_equal(next, 2);
    pw_offsets_free(l);
    pw_offsets_free(NULL);
}

/* Many messages with the ring wrapping and growing, done in a shuffled order. */
static void test_many_shuffled(void **state)
{
    (void)state;
    pw_offsets *l = pw_offsets_new();
    enum { N = 5000 };
    int64_t *order = malloc(N * sizeof *order);
    assert_non_null(order);
    int64_t next, max_next = -1;
    /* Keep the ring wrapping: track in bursts and finish part of each burst. */
    for (int64_t o = 0; o < N; o++) {
        assert_int_equal(pw_offsets_track(l, "t", 0, o), PW_OK);
        order[o] = o;
    }
    srand(7);
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1);
        int64_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(pw_offsets_done(l, "t", 0, order[i], &next), PW_OK);
        if (next >= 0) {
            assert_true(next > max_next);
            max_next = next;
        }
    }
    assert_int_equal(max_next, N);
    assert_int_equal(pw_offsets_pending_total(l), 0);
    /* Wrap-around: interleave track and done. */
    for (int64_t o = N; o < N + 1000; o++) {
        assert_int_equal(pw_offsets_track(l, "t", 0, o), PW_OK);
        if (o % 3 == 0) {
            assert_int_equal(pw_offsets_done(l, "t", 0, o, &next), PW_OK);
        }
    }
    free(order);
    pw_offsets_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_out_of_order_done),
        cmocka_unit_test(test_partitions_independent),
        cmocka_unit_test(test_gaps_and_errors),
        cmocka_unit_test(test_drop_and_redeliver),
        cmocka_unit_test(test_many_shuffled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
