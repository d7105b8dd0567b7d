/* test_loop.c: pw_loop timers (order, cancel, re-entrancy, never early) and fd watches (dispatch,
 * removal mid-batch). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pw/loop.h"

typedef struct rec {
    int order[256];
    int n;
} rec;

typedef struct tctx {
    rec *r;
    int id;
    pw_timer **cancel_other; /* cancelled by this callback when set */
    pw_timer **self_slot;    /* cleared when fired */
} tctx;

static void rec_cb(pw_loop *loop, void *ctx)
{
    tctx *c = ctx;
    (void)loop;
    if (c->r->n < 256) c->r->order[c->r->n++] = c->id;
    if (c->self_slot) *c->self_slot = NULL;
    if (c->cancel_other && *c->cancel_other) {
        pw_loop_timer_cancel(loop, *c->cancel_other);
        *c->cancel_other = NULL;
    }
}

static pw_loop *mkloop(void)
{
    char err[128];
    pw_loop *loop = pw_loop_new(err, sizeof err);
    assert_non_null(loop);
    return loop;
}

/* Runs iterations until n callbacks recorded or a generous iteration bound passes. */
static void run_until(pw_loop *loop, rec *r, int n)
{
    for (int i = 0; i < 10000 && r->n < n; i++)
        assert_int_equal(pw_loop_run_once(loop, 50), 0);
}

static void test_timer_order(void **state)
{
    (void)state;
    pw_loop *loop = mkloop();
    rec r = {0};
    tctx c[5];
    uint64_t delays[5] = {30, 10, 20, 10, 0};
    uint64_t first = pw_monotonic_ms();
    for (int i = 0; i < 5; i++) {
        c[i] = (tctx){.r = &r, .id = i};
        assert_non_null(pw_loop_timer_add(loop, delays[i], rec_cb, &c[i]));
    }
    uint64_t spread = pw_monotonic_ms() - first;
    run_until(loop, &r, 5);
    assert_int_equal(r.n, 5);
    /* Equal deadlines keep insertion order.  Each delay counts from its own add, so the order
     * below holds when the adds were less than the smallest delay gap (10 ms) apart, which is
     * all but always; a machine stalled longer between them fires in true deadline order. */
    int want[5] = {4, 1, 3, 2, 0};
    if (spread < 9)
        for (int i = 0; i < 5; i++)
            assert_int_equal(r.order[i], want[i]);
    pw_loop_free(loop);
}

static void test_timer_cancel(void **state)
{
    (void)state;
    pw_loop *loop = mkloop();
    rec r = {0};
    tctx a = {.r = &r, .id = 1}, b = {.r = &r, .id = 2};
    pw_timer *ta = pw_loop_timer_add(loop, 0, rec_cb, &a);
    pw_timer *tb = pw_loop_timer_add(loop, 0, rec_cb, &b);
    assert_non_null(ta);
    assert_non_null(tb);
    pw_loop_timer_cancel(loop, ta);
    pw_loop_timer_cancel(loop, NULL);
    run_until(loop, &r, 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.order[0], 2);
    pw_loop_free(loop);
}

/* A callback cancels another timer that is due in the same dispatch: it must not fire. */
static void test_cancel_during_dispatch(void **state)
{
    (void)state;
    pw_loop *loop = mkloop();
    rec r = {0};
    pw_timer *victim = NULL;
    tctx a = {.r = &r, .id = 1, .cancel_other = &victim};
    tctx v = {.r = &r, .id = 2, .self_slot = &victim};
    tctx z = {.r = &r, .id = 3};
    assert_non_null(pw_loop_timer_add(loop, 0, rec_cb, &a));
    victim = pw_loop_timer_add(loop, 0, rec_cb, &v);
    assert_non_null(pw_loop_timer_add(loop, 5, rec_cb, &z));
    run_until(loop, &r, 2);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.order[0], 1);
    assert_int_equal(r.order[1], 3);
    assert_null(victim);
    pw_loop_free(loop);
}

typedef struct rearm {
    int fired;
    int limit;
} rearm;

static void rearm_cb(pw_loop *loop, void *ctx)
{
    rearm *a = ctx;
    a->fired++;
    if (a->fired < a->limit) assert_non_null(pw_loop_timer_add(loop, 0, rearm_cb, a));
}

/* A zero-delay timer added by a timer callback fires on the next iteration, not this one. */
static void test_rearm_next_iteration(void **state)
{
    (void)state;
    pw_loop *loop = mkloop();
    rearm a = {.limit = 3};
    assert_non_null(pw_loop_timer_add(loop, 0, rearm_cb, &a));
    assert_int_equal(pw_loop_run_once(loop, 0), 0);
    assert_int_equal(a.fired, 1);
    assert_int_equal(pw_loop_run_once(loop, 0), 0);
    assert_int_equal(a.fired, 2);
    assert_int_equal(pw_loop_run_once(loop, 0), 0);
    assert_int_equal(a.fired, 3);
    assert_int_equal(pw_loop_run_once(loop, 0), 0);
    assert_int_equal(a.fired, 3);
    pw_loop_free(loop);
}

static void noop_cb(pw_loop *loop, void *ctx)
{
    (void)loop;
    (void)ctx;
}

/* Random adds/cancels: the heap must fire survivors in (deadline, insertion) order.  Each
 * deadline counts from the clock at its own add, so only this much of the order is fixed
 * whatever the machine's speed: a timer added earlier with no longer a delay fires first. */
typedef struct stress {
    int fired[300];
    uint64_t fired_ms[300];
    int n;
} stress;

typedef struct sctx {
    stress *s;
    int id;
} sctx;

static void stress_cb(pw_loop *loop, void *ctx)
{
    sctx *c = ctx;
    (void)loop;
    c->s->fired_ms[c->id] = pw_monotonic_ms();
    c->s->fired[c->s->n++] = c->id;
}

static void test_heap_stress(void **state)
{
    (void)state;
    pw_loop *loop = mkloop();
    enum { N = 300 };
    pw_timer *t[N];
    sctx c[N];
    uint64_t delay[N], added_ms[N];
    int cancelled[N];
    static stress s;
    memset(&s, 0, sizeof s);
    srand(7);
    for (int i = 0; i < N; i++) {
        c[i] = (sctx){.s = &s, .id = i};
        delay[i] = (uint64_t)(rand() % 40);
        cancelled[i] = 0;
        added_ms[i] = pw_monotonic_ms();
        t[i] = pw_loop_timer_add(loop, delay[i], stress_cb, &c[i]);
        assert_non_null(t[i]);
    }
    int live = N;
    for (int i = 0; i < N; i += 3) {
        pw_loop_timer_cancel(loop, t[i]);
        cancelled[i] = 1;
        live--;
    }
    for (int i = 0; i < 10000 && s.n < live; i++)
        assert_int_equal(pw_loop_run_once(loop, 50), 0);
    assert_int_equal(s.n, live);
    for (int k = 0; k < s.n; k++) {
        int a = s.fired[k];
        assert_false(cancelled[a]);
        assert_true(s.fired_ms[a] - added_ms[a] >= delay[a]); /* never early */
        for (int j = k + 1; j < s.n; j++) {
            int b = s.fired[j]; /* fired after a: not added before a with a delay <= a's */
            assert_false(b < a && delay[b] <= delay[a]);
        }
    }
    /* Pending timers are dropped by pw_loop_free without firing (ASan checks leaks). */
    assert_non_null(pw_loop_timer_add(loop, 100000, noop_cb, NULL));
    assert_non_null(pw_loop_timer_add(loop, UINT64_MAX, noop_cb, NULL));
    pw_loop_free(loop);
}

typedef struct fdctx {
    int hits[2];
    int pipes[2][2];
    int remove_other; /* first callback removes the other fd's watch */
    unsigned last_events;
} fdctx;

static void fd_cb(pw_loop *loop, int fd, unsigned events, void *ctx)
{
    fdctx *f = ctx;
    int which = fd == f->pipes[0][0] ? 0 : 1;
    f->hits[which]++;
    f->last_events = events;
    char buf[16];
    assert_true(read(fd, buf, sizeof buf) > 0);
    if (f->remove_other) {
        int other = f->pipes[1 - which][0];
        assert_int_equal(pw_loop_fd_watch(loop, other, 0, NULL, NULL), 0);
        f->remove_other = 0;
    }
}

static void test_fd_read(void **state)
{
    (void)state;
    pw_loop *loop = mkloop();
    fdctx f = {0};
    assert_int_equal(pipe(f.pipes[0]), 0);
    assert_int_equal(pw_loop_fd_watch(loop, f.pipes[0][0], PW_LOOP_READ, fd_cb, &f), 0);
    assert_int_equal(pw_loop_run_once(loop, 0), 0);
    assert_int_equal(f.hits[0], 0);
    assert_int_equal(write(f.pipes[0][1], "x", 1), 1);
    for (int i = 0; i < 100 && !f.hits[0]; i++)
        assert_int_equal(pw_loop_run_once(loop, 100), 0);
    assert_int_equal(f.hits[0], 1);
    assert_true(f.last_events & PW_LOOP_READ);
    /* Unwatch: further data is not delivered. */
    assert_int_equal(pw_loop_fd_watch(loop, f.pipes[0][0], 0, NULL, NULL), 0);
    assert_int_equal(write(f.pipes[0][1], "y", 1), 1);
    assert_int_equal(pw_loop_run_once(loop, 10), 0);
    assert_int_equal(f.hits[0], 1);
    close(f.pipes[0][0]);
    close(f.pipes[0][1]);
    pw_loop_free(loop);
}

/* Both fds ready in one batch; the first callback unwatches the other: exactly one fires. */
static void test_fd_remove_during_dispatch(void **state)
{
    (void)state;
    pw_loop *loop = mkloop();
    fdctx f = {.remove_other = 1};
    assert_int_equal(pipe(f.pipes[0]), 0);
    assert_int_equal(pipe(f.pipes[1]), 0);
    assert_int_equal(pw_loop_fd_watch(loop, f.pipes[0][0], PW_LOOP_READ, fd_cb, &f), 0);
    assert_int_equal(pw_loop_fd_watch(loop, f.pipes[1][0], PW_LOOP_READ, fd_cb, &f), 0);
    assert_int_equal(write(f.pipes[0][1], "a", 1), 1);
    assert_int_equal(write(f.pipes[1][1], "b", 1), 1);
    assert_int_equal(pw_loop_run_once(loop, 1000), 0);
    assert_int_equal(f.hits[0] + f.hits[1], 1);
    assert_int_equal(pw_loop_run_once(loop, 10), 0);
    assert_int_equal(f.hits[0] + f.hits[1], 1);
    for (int i = 0; i < 2; i++) {
        close(f.pipes[i][0]);
        close(f.pipes[i][1]);
    }
    pw_loop_free(loop);
}

/* A watched fd closed without unwatching, its number reused: re-watching works. */
static void test_fd_reuse_after_close(void **state)
{
    (void)state;
    pw_loop *loop = mkloop();
    fdctx f = {0};
    assert_int_equal(pipe(f.pipes[0]), 0);
    assert_int_equal(pw_loop_fd_watch(loop, f.pipes[0][0], PW_LOOP_READ, fd_cb, &f), 0);
    close(f.pipes[0][0]);
    close(f.pipes[0][1]);
    assert_int_equal(pipe(f.pipes[0]), 0);
    assert_int_equal(pw_loop_fd_watch(loop, f.pipes[0][0], PW_LOOP_READ | PW_LOOP_WRITE, fd_cb, &f),
                     0);
    assert_int_equal(pw_loop_fd_watch(loop, f.pipes[0][0], PW_LOOP_READ, fd_cb, &f), 0);
    assert_int_equal(write(f.pipes[0][1], "z", 1), 1);
    for (int i = 0; i < 100 && !f.hits[0]; i++)
        assert_int_equal(pw_loop_run_once(loop, 100), 0);
    assert_int_equal(f.hits[0], 1);
    assert_int_equal(pw_loop_fd_watch(loop, f.pipes[0][0], 0, NULL, NULL), 0);
    close(f.pipes[0][0]);
    close(f.pipes[0][1]);
    pw_loop_free(loop);
}

/* A timer added by a callback that ran long (the loop's clock read before that work is stale)
 * still waits its whole delay from the moment it was added, measured on the monotonic clock. */
typedef struct late_add {
    uint64_t added_ms; /* pw_monotonic_ms() right after pw_loop_timer_add */
    uint64_t fired_ms;
    int fired;
} late_add;

enum { LATE_BUSY_MS = 50, LATE_DELAY_MS = 100 };

static void late_fire_cb(pw_loop *loop, void *ctx)
{
    late_add *a = ctx;
    (void)loop;
    a->fired_ms = pw_monotonic_ms();
    a->fired = 1;
}

static void late_add_cb(pw_loop *loop, void *ctx)
{
    late_add *a = ctx;
    /* Busy work, as a callback under load does: the clock moves, the loop's reading does not. */
    uint64_t start = pw_monotonic_ms();
    while (pw_monotonic_ms() - start < LATE_BUSY_MS) {
    }
    assert_non_null(pw_loop_timer_add(loop, LATE_DELAY_MS, late_fire_cb, a));
    a->added_ms = pw_monotonic_ms();
}

static void test_timer_never_early(void **state)
{
    (void)state;
    pw_loop *loop = mkloop();
    late_add a = {0};
    assert_non_null(pw_loop_timer_add(loop, 0, late_add_cb, &a));
    for (int i = 0; i < 10000 && !a.fired; i++)
        assert_int_equal(pw_loop_run_once(loop, 50), 0);
    assert_true(a.fired);
    if (a.fired_ms - a.added_ms < LATE_DELAY_MS)
        fail_msg("a %d ms timer fired %llu ms after it was added", LATE_DELAY_MS,
                 (unsigned long long)(a.fired_ms - a.added_ms));
    pw_loop_free(loop);
}

static void stop_cb(pw_loop *loop, void *ctx)
{
    int *n = ctx;
    if (++*n == 3)
        pw_loop_stop(loop);
    else
        pw_loop_timer_add(loop, 1, stop_cb, ctx);
}

static void test_run_stop(void **state)
{
    (void)state;
    pw_loop *loop = mkloop();
    int n = 0;
    uint64_t t0 = pw_loop_now_ms(loop);
    assert_non_null(pw_loop_timer_add(loop, 1, stop_cb, &n));
    assert_int_equal(pw_loop_run(loop), 0);
    assert_int_equal(n, 3);
    assert_true(pw_loop_now_ms(loop) >= t0 + 1);
    pw_loop_free(loop);
    pw_loop_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_order),
        cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_cancel_during_dispatch),
        cmocka_unit_test(test_rearm_next_iteration),
        cmocka_unit_test(test_heap_stress),
        cmocka_unit_test(test_fd_read),
        cmocka_unit_test(test_fd_remove_during_dispatch),
        cmocka_unit_test(test_fd_reuse_after_close),
        cmocka_unit_test(test_run_stop),
        cmocka_unit_test(test_timer_never_early),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
