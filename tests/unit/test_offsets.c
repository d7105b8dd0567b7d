/* test_offsets.c: the commit ledger only moves past a message once all before it are done. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

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

/* Skippable: done, and nothing pending before it on its targets, transitively. */
static void test_skippable_chain(void **state)
{
    (void)state;
    pw_offsets *l = pw_offsets_new();
    int64_t next, out[16];
    const uint64_t X = 1, Y = 2, Z = 3, W = 4;
    for (int64_t o = 0; o < 7; o++)
        assert_int_equal(pw_offsets_track(l, "t", 0, o), PW_OK);
    /* 0 {W} pending (holds the commit point); 1 {Y,Z} pending; 2 {Y,X} done; 3 {X} done;
     * 4 {W} done; 5 {} done (a rejection); 6 unknown, done */
    uint64_t k0[] = {W}, k1[] = {Y, Z}, k2[] = {Y, X}, k3[] = {X}, k4[] = {W};
    assert_int_equal(pw_offsets_targets(l, "t", 0, 0, k0, 1), PW_OK);
    assert_int_equal(pw_offsets_targets(l, "t", 0, 1, k1, 2), PW_OK);
    assert_int_equal(pw_offsets_targets(l, "t", 0, 2, k2, 2), PW_OK);
    assert_int_equal(pw_offsets_targets(l, "t", 0, 3, k3, 1), PW_OK);
    assert_int_equal(pw_offsets_targets(l, "t", 0, 4, k4, 1), PW_OK);
    assert_int_equal(pw_offsets_targets(l, "t", 0, 5, NULL, 0), PW_OK);
    for (int64_t o = 2; o < 7; o++)
        assert_int_equal(pw_offsets_done(l, "t", 0, o, &next), PW_OK);
    /* 2 shares Y with pending 1: replayed, so 3 (X, after 2) is too; 4 shares W with 0;
     * 5 writes nothing; 6 may write anything and something before it is replayed */
    size_t n = pw_offsets_skippable(l, "t", 0, out, 16);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 5);
    /* 1 done: 2 and 3 follow; 0 still holds 4 and 6 */
    assert_int_equal(pw_offsets_done(l, "t", 0, 1, &next), PW_OK);
    n = pw_offsets_skippable(l, "t", 0, out, 16);
    assert_int_equal(n, 4);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 2);
    assert_int_equal(out[2], 3);
    assert_int_equal(out[3], 5);
    /* a cap keeps the lowest */
    assert_int_equal(pw_offsets_skippable(l, "t", 0, out, 2), 2);
    assert_int_equal(out[1], 2);
    /* 0 done: everything is below the commit point, nothing is left above it */
    assert_int_equal(pw_offsets_done(l, "t", 0, 0, &next), PW_OK);
    assert_int_equal(next, 7);
    assert_int_equal(pw_offsets_skippable(l, "t", 0, out, 16), 0);
    pw_offsets_free(l);
}

/* A message whose targets are not known (not decoded) orders everything after it. */
static void test_skippable_unknown(void **state)
{
    (void)state;
    pw_offsets *l = pw_offsets_new();
    int64_t next, out[4];
    const uint64_t X = 7;
    for (int64_t o = 0; o < 3; o++)
        assert_int_equal(pw_offsets_track(l, "t", 0, o), PW_OK);
    uint64_t k[] = {X};
    assert_int_equal(pw_offsets_targets(l, "t", 0, 2, k, 1), PW_OK);
    assert_int_equal(pw_offsets_done(l, "t", 0, 2, &next), PW_OK);
    assert_int_equal(pw_offsets_skippable(l, "t", 0, out, 4), 0); /* 0 and 1 unknown */
    assert_int_equal(pw_offsets_targets(l, "t", 0, 1, NULL, 0), PW_OK);
    assert_int_equal(pw_offsets_skippable(l, "t", 0, out, 4), 0); /* 0 unknown, pending */
    assert_int_equal(pw_offsets_targets(l, "t", 0, 0, k, 1), PW_OK);
    assert_int_equal(pw_offsets_skippable(l, "t", 0, out, 4), 0); /* 0 pending on X */
    uint64_t many[PW_OFFSETS_TARGETS_MAX + 1] = {0};
    assert_int_equal(pw_offsets_targets(l, "t", 0, 0, many, PW_OFFSETS_TARGETS_MAX + 1), PW_OK);
    assert_int_equal(pw_offsets_skippable(l, "t", 0, out, 4), 0); /* too many: unknown */
    assert_int_equal(pw_offsets_targets(l, "t", 0, 9, k, 1), PW_ERR_UNKNOWN);
    pw_offsets_free(l);
}

static void test_metadata_round_trip(void **state)
{
    (void)state;
    char buf[64], token[PW_OFFSETS_TOKEN_MAX + 1];
    int64_t skip[] = {99, 101, 102, 103, 105}, out[16];
    size_t len = pw_offsets_metadata_encode(buf, sizeof buf, "0a1b", 100, skip, 5);
    assert_string_equal(buf, "pw2:0a1b:1-3,5"); /* (99 is below the commit: left out) */
    assert_int_equal(len, strlen(buf));
    assert_int_equal(pw_offsets_metadata_decode(buf, 100, token, out, 16), 4);
    assert_string_equal(token, "0a1b");
    assert_int_equal(out[0], 101);
    assert_int_equal(out[3], 105);
    /* too small a buffer keeps the lowest runs */
    assert_int_equal(pw_offsets_metadata_encode(buf, 14, "0a1b", 100, skip, 5), 12);
    assert_string_equal(buf, "pw2:0a1b:1-3");
    assert_int_equal(pw_offsets_metadata_encode(buf, 6, "0a1b", 100, skip, 5), 0);
    /* someone else's metadata, or garbage: nothing */
    assert_int_equal(pw_offsets_metadata_decode("hello", 100, token, out, 16), 0);
    assert_string_equal(token, "");
    assert_int_equal(pw_offsets_metadata_decode("pw2:AB:1", 100, token, out, 16), 0);
    assert_int_equal(pw_offsets_metadata_decode("pw2:ab:3,2", 100, token, out, 16), 1);
    assert_int_equal(pw_offsets_metadata_decode("pw2:ab:1-9", 100, token, out, 4), 4);
    assert_int_equal(pw_offsets_metadata_decode("pw2:ab:1", -1, token, out, 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skippable_chain),
        cmocka_unit_test(test_skippable_unknown),
        cmocka_unit_test(test_metadata_round_trip),
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_out_of_order_done),
        cmocka_unit_test(test_partitions_independent),
        cmocka_unit_test(test_gaps_and_errors),
        cmocka_unit_test(test_drop_and_redeliver),
        cmocka_unit_test(test_many_shuffled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
