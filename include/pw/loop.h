/* pw/loop.h: the one event loop of a worker process (epoll + one-shot timers).
 *
 * Everything that waits is driven from here: librdkafka queue wake-up fds,
 * libcurl multi sockets and timeouts, retry/poll timers, signalfd.
 * Single-threaded: no function may be called from another thread. */
#ifndef PW_LOOP_H
#define PW_LOOP_H

#include <stddef.h>
#include <stdint.h>

typedef struct pw_loop pw_loop;
typedef struct pw_timer pw_timer;

enum { PW_LOOP_READ = 1u, PW_LOOP_WRITE = 2u };

/* events: PW_LOOP_READ/WRITE bits that are ready (error/hangup report as both). */
typedef void (*pw_loop_fd_cb)(pw_loop *loop, int fd, unsigned events, void *ctx);
typedef void (*pw_loop_timer_cb)(pw_loop *loop, void *ctx);

pw_loop *pw_loop_new(char *err, size_t errlen);
void pw_loop_free(pw_loop *loop); /* accepts NULL; pending timers are dropped without firing */

/* Adds or changes the watch on fd; events == 0 removes it.  Returns 0 or -1 (errno set). */
int pw_loop_fd_watch(pw_loop *loop, int fd, unsigned events, pw_loop_fd_cb cb, void *ctx);

/* One-shot timer firing after delay_ms, counted from the clock read now (not from
 * pw_loop_now_ms, which may be older): it never fires before delay_ms of monotonic time
 * have passed since this call, and at most about a millisecond later than that when the loop
 * is idle; delay 0 fires on the next iteration.  The handle is valid until its callback starts or
 * it is cancelled; cancelling a NULL handle is a no-op.  O(log n). */
pw_timer *pw_loop_timer_add(pw_loop *loop, uint64_t delay_ms, pw_loop_timer_cb cb, void *ctx);
void pw_loop_timer_cancel(pw_loop *loop, pw_timer *timer);

/* Monotonic milliseconds (CLOCK_MONOTONIC), read once per iteration, after the wait: the
 * same value for every callback of that iteration, so it lags the clock by as long as the
 * callbacks before have run.  Good for durations and log times; timers do not depend on it
 * (see pw_loop_timer_add).  pw_loop_now_ms() + d is therefore no later than the due time of
 * a timer added now with delay d. */
uint64_t pw_loop_now_ms(pw_loop *loop);

/* The same clock read now, uncached: for blocking waits outside the loop. */
uint64_t pw_monotonic_ms(void);

/* Runs one iteration: waits at most max_wait_ms (-1: until the next timer/fd),
 * dispatches ready fds and due timers.  Returns 0, or -1 on a fatal epoll error. */
int pw_loop_run_once(pw_loop *loop, int max_wait_ms);

/* Runs until pw_loop_stop() is called from a callback. */
int pw_loop_run(pw_loop *loop);
void pw_loop_stop(pw_loop *loop);

#endif
