/* loop.c: the worker's single-threaded event loop: epoll for fds, a binary heap of one-shot timers.
 */
#include "pw/loop.h"
#include "pw/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* A watched fd.  gen changes whenever the watch is removed or re-registered with a new
 * callback, so that events already returned by epoll_wait for an old registration are
 * dropped instead of being delivered to a callback that no longer expects them. */
typedef struct fd_watch {
    unsigned events; /* 0 = not watched */
    uint32_t gen;
    pw_loop_fd_cb cb;
    void *ctx;
} fd_watch;

struct pw_timer {
    uint64_t due_ms;
    uint64_t seq; /* insertion order: equal deadlines fire first-in first-out */
    size_t heap_idx;
    pw_loop_timer_cb cb;
    void *ctx;
};

struct pw_loop {
    int epfd;
    uint64_t now_ms;
    int stopping;
    fd_watch *fds; /* indexed by fd */
    size_t fds_cap;
    pw_timer **heap;
    size_t heap_len, heap_cap;
    uint64_t next_seq;
};

enum { MAX_EVENTS = 64 };

uint64_t pw_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The same clock rounded up to the next whole millisecond: a deadline counted from it is
 * never earlier than delay_ms after this instant, although the fire check compares it with
 * readings rounded down. */
static uint64_t monotonic_ms_ceil(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + ((uint64_t)ts.tv_nsec + 999999u) / 1000000u;
}

pw_loop *pw_loop_new(char *err, size_t errlen)
{
    pw_loop *loop = calloc(1, sizeof *loop);
    if (!loop) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        pw_err_set(err, errlen, "epoll_create1: %s", strerror(errno));
        free(loop);
        return NULL;
    }
    loop->now_ms = pw_monotonic_ms();
    return loop;
}

void pw_loop_free(pw_loop *loop)
{
    if (!loop) return;
    for (size_t i = 0; i < loop->heap_len; i++)
        free(loop->heap[i]);
    free(loop->heap);
    free(loop->fds);
    close(loop->epfd);
    free(loop);
}

uint64_t pw_loop_now_ms(pw_loop *loop)
{
    return loop->now_ms;
}

void pw_loop_stop(pw_loop *loop)
{
    loop->stopping = 1;
}

/* ---- fds ---- */

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & PW_LOOP_READ) e |= EPOLLIN;
    if (events & PW_LOOP_WRITE) e |= EPOLLOUT;
    return e;
}

int pw_loop_fd_watch(pw_loop *loop, int fd, unsigned events, pw_loop_fd_cb cb, void *ctx)
{
    if (fd < 0 || (events && !cb)) {
        errno = EINVAL;
        return -1;
    }
    events &= PW_LOOP_READ | PW_LOOP_WRITE;
    if ((size_t)fd >= loop->fds_cap) {
        if (!events) return 0; /* never watched */
        size_t cap = loop->fds_cap ? loop->fds_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        fd_watch *n = realloc(loop->fds, cap * sizeof *n);
        if (!n) {
            errno = ENOMEM;
            return -1;
        }
        memset(n + loop->fds_cap, 0, (cap - loop->fds_cap) * sizeof *n);
        loop->fds = n;
        loop->fds_cap = cap;
    }
    fd_watch *w = &loop->fds[fd];
    if (!events) {
        if (w->events) {
            /* The fd may already be closed (epoll dropped it then): not an error. */
            if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF &&
                errno != ENOENT)
                return -1;
        }
        w->events = 0;
        w->gen++;
        w->cb = NULL;
        w->ctx = NULL;
        return 0;
    }
    uint32_t gen = w->gen + 1;
    struct epoll_event ev = {.events = to_epoll(events),
                             .data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)gen << 32)};
    int op = w->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = epoll_ctl(loop->epfd, op, fd, &ev);
    /* Our table can be stale when a watched fd was closed and its number reused. */
    if (rc < 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
        rc = epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
    else if (rc < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
        rc = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (rc < 0) return -1;
    w->events = events;
    w->gen = gen;
    w->cb = cb;
    w->ctx = ctx;
    return 0;
}

/* ---- timers: min-heap on (due_ms, seq) ---- */

static int timer_before(const pw_timer *a, const pw_timer *b)
{
    return a->due_ms != b->due_ms ? a->due_ms < b->due_ms : a->seq < b->seq;
}

static void heap_set(pw_loop *loop, size_t i, pw_timer *t)
{
    loop->heap[i] = t;
    t->heap_idx = i;
}

static void heap_up(pw_loop *loop, size_t i)
{
    pw_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent])) break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(pw_loop *loop, size_t i)
{
    pw_timer *t = loop->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const pw_timer *best = t;
        if (l < loop->heap_len && timer_before(loop->heap[l], best)) {
            m = l;
            best = loop->heap[l];
        }
        if (r < loop->heap_len && timer_before(loop->heap[r], best)) m = r;
        if (m == i) break;
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, t);
}

static void heap_remove(pw_loop *loop, size_t i)
{
    loop->heap_len--;
    if (i == loop->heap_len) return;
    heap_set(loop, i, loop->heap[loop->heap_len]);
    if (i > 0 && timer_before(loop->heap[i], loop->heap[(i - 1) / 2]))
        heap_up(loop, i);
    else
        heap_down(loop, i);
}

pw_timer *pw_loop_timer_add(pw_loop *loop, uint64_t delay_ms, pw_loop_timer_cb cb, void *ctx)
{
    if (!cb) return NULL;
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        pw_timer **n = realloc(loop->heap, cap * sizeof *n);
        if (!n) return NULL;
        loop->heap = n;
        loop->heap_cap = cap;
    }
    pw_timer *t = malloc(sizeof *t);
    if (!t) return NULL;
    /* From a fresh reading, not loop->now_ms: callbacks may have run for a while since the
     * loop read the clock, and a deadline counted from that stale reading would fire early
     * (a Retry-After honoured 137 ms short under load).  A zero delay is due at once (the
     * next iteration), without the rounding up.  Saturate: a huge delay means "practically
     * never", not an overflowed past deadline. */
    uint64_t now = delay_ms ? monotonic_ms_ceil() : pw_monotonic_ms();
    t->due_ms = delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms;
    t->seq = loop->next_seq++;
    t->cb = cb;
    t->ctx = ctx;
    loop->heap_len++;
    heap_set(loop, loop->heap_len - 1, t);
    heap_up(loop, loop->heap_len - 1);
    return t;
}

void pw_loop_timer_cancel(pw_loop *loop, pw_timer *timer)
{
    if (!timer) return;
    heap_remove(loop, timer->heap_idx);
    free(timer);
}

/* ---- dispatch ---- */

static int wait_ms(pw_loop *loop, int max_wait_ms)
{
    if (loop->heap_len == 0) return max_wait_ms;
    uint64_t now = pw_monotonic_ms();
    uint64_t due = loop->heap[0]->due_ms;
    uint64_t left = due > now ? due - now : 0;
    if (left > 0x7fffffff) left = 0x7fffffff;
    if (max_wait_ms >= 0 && (uint64_t)max_wait_ms < left) return max_wait_ms;
    return (int)left;
}

int pw_loop_run_once(pw_loop *loop, int max_wait_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(loop->epfd, evs, MAX_EVENTS, wait_ms(loop, max_wait_ms));
    if (n < 0) {
        if (errno != EINTR) return -1;
        n = 0;
    }
    loop->now_ms = pw_monotonic_ms();

    for (int i = 0; i < n; i++) {
        int fd = (int)(uint32_t)evs[i].data.u64;
        uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
        /* An earlier callback of this batch may have removed or replaced the watch. */
        if ((size_t)fd >= loop->fds_cap) continue;
        fd_watch *w = &loop->fds[fd];
        if (!w->events || w->gen != gen) continue;
        unsigned events = 0;
        if (evs[i].events & EPOLLIN) events |= PW_LOOP_READ;
        if (evs[i].events & EPOLLOUT) events |= PW_LOOP_WRITE;
        if (evs[i].events & (EPOLLERR | EPOLLHUP)) events |= PW_LOOP_READ | PW_LOOP_WRITE;
        w->cb(loop, fd, events, w->ctx); /* w may dangle after this: the table can grow */
    }

    /* Fire timers that were due at the start of dispatch and already existed then; timers
     * added by these callbacks wait for the next iteration, so a callback that re-arms
     * itself with delay 0 cannot starve fds. */
    uint64_t seq_limit = loop->next_seq;
    while (loop->heap_len > 0) {
        pw_timer *t = loop->heap[0];
        if (t->due_ms > loop->now_ms || t->seq >= seq_limit) break;
        pw_loop_timer_cb cb = t->cb;
        void *ctx = t->ctx;
        heap_remove(loop, 0);
        free(t); /* the handle dies when its callback starts */
        cb(loop, ctx);
    }
    return 0;
}

int pw_loop_run(pw_loop *loop)
{
    loop->stopping = 0;
    while (!loop->stopping) {
        if (pw_loop_run_once(loop, -1) < 0) return -1;
    }
    return 0;
}
