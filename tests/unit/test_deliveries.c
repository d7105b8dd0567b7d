/* test_deliveries.c: receipts per offset (deliveryAttempt) count up and stay bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pw/deliveries.h"

static void counts_per_offset(void **state)
{
    (void)state;
    pw_deliveries *d = pw_deliveries_new(100);
    assert_non_null(d);
    for (int64_t o = 0; o < 10; o++)
        assert_int_equal(pw_deliveries_count(d, o), 1);
    /* a rebalance gave the partition back: redelivered from offset 5 */
    for (int64_t o = 5; o < 10; o++)
        assert_int_equal(pw_deliveries_count(d, o), 2);
    assert_int_equal(pw_deliveries_count(d, 7), 3);
    assert_int_equal(pw_deliveries_count(d, 4), 2);
    assert_int_equal(pw_deliveries_count(d, 1000), 1);
    assert_int_equal(pw_deliveries_count(d, 500), 1); /* out of order */
    assert_int_equal(pw_deliveries_count(d, 500), 2);
    assert_int_equal(pw_deliveries_count(d, 1000), 2);
    pw_deliveries_free(d);
    assert_int_equal(pw_deliveries_count(NULL, 1), 1);
    pw_deliveries_free(NULL);
}

static void bounded(void **state)
{
    (void)state;
    pw_deliveries *d = pw_deliveries_new(4);
    for (int64_t o = 10; o < 15; o++) /* 10 is forgotten when 14 comes */
        assert_int_equal(pw_deliveries_count(d, o), 1);
    assert_int_equal(pw_deliveries_count(d, 14), 2);
    assert_int_equal(pw_deliveries_count(d, 11), 2);
    assert_int_equal(pw_deliveries_count(d, 10), 1); /* below every kept one: not counted */
    assert_int_equal(pw_deliveries_count(d, 10), 1);
    assert_int_equal(pw_deliveries_count(d, 11), 3);
    pw_deliveries_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_per_offset),
        cmocka_unit_test(bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
