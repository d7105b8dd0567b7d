/* trace.c: W3C trace context: traceparent/tracestate checked, child span ids made. */
#include "pw/trace.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int is_lhex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* 1 when s[0..n) are lower-case hex digits, not all '0' (when nonzero is set). */
static int hex_field(const char *s, size_t n, int nonzero)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_lhex(s[i])) return 0;
        if (s[i] != '0') any = 1;
    }
    return any || !nonzero;
}

int pw_trace_parent_valid(const char *s, size_t len)
{
    if (!s || len != PW_TRACE_PARENT_LEN) return 0;
    return s[0] == '0' && s[1] == '0' && s[2] == '-' && hex_field(s + 3, 32, 1) && s[35] == '-' &&
           hex_field(s + 36, 16, 1) && s[52] == '-' && hex_field(s + 53, 2, 0);
}

int pw_trace_state_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > PW_TRACE_STATE_MAX) return 0;
    size_t members = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',') {
            if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
            continue;
        }
        /* one member s[start..i), optional whitespace around it */
        size_t a = start, b = i;
        while (a < b && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
            b--;
        if (a < b) {
            const char *eq = memchr(s + a, '=', b - a);
            if (!eq || eq == s + a || eq == s + b - 1) return 0; /* key=value, both non-empty */
            if (++members > PW_TRACE_STATE_MEMBERS) return 0;
        }
        start = i + 1;
    }
    return members > 0;
}

void pw_trace_random_hex(char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char buf[32];
    size_t bytes = (n + 1) / 2;
    if (bytes > sizeof buf) bytes = sizeof buf;
    if (getrandom(buf, bytes, 0) != (ssize_t)bytes) {
        /* (no entropy: time and pid, unique enough for a span id) */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        for (size_t i = 0; i < bytes; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[i] = (unsigned char)(x >> 56);
        }
    }
    int any = 0;
    for (size_t i = 0; i < n && i / 2 < sizeof buf; i++) {
        unsigned v = i % 2 ? buf[i / 2] & 0xf : buf[i / 2] >> 4;
        out[i] = digits[v];
        if (v) any = 1;
    }
    if (!any && n) out[n - 1] = '1'; /* all zero is invalid */
    out[n] = '\0';
}

int pw_trace_from_headers(pw_trace *t, const char *traceparent, size_t tp_len,
                          const char *tracestate, size_t ts_len)
{
    memset(t, 0, sizeof *t);
    if (pw_trace_parent_valid(traceparent, tp_len)) {
        memcpy(t->trace_id, traceparent + 3, 32);
        memcpy(t->parent_id, traceparent + 36, 16);
        memcpy(t->flags, traceparent + 53, 2);
        if (pw_trace_state_valid(tracestate, ts_len)) memcpy(t->state, tracestate, ts_len);
        return 0;
    }
    pw_trace_random_hex(t->trace_id, 32);
    snprintf(t->flags, sizeof t->flags, "00");
    t->started = 1;
    return 1;
}

void pw_trace_child(const pw_trace *t, char *out)
{
    char span[17];
    pw_trace_random_hex(span, 16);
    snprintf(out, PW_TRACE_PARENT_LEN + 1, "00-%s-%s-%s", t->trace_id, span, t->flags);
}
