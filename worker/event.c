/* event.c: the frame every reply event shares (schema tag, ids, sequence, time). */
#include "pw/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pw_event_time(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

json_t *pw_event_new(const char *request_id, const char *status, unsigned sequence,
                     const char *worker_id)
{
    char now[40];
    pw_event_time(now, sizeof now);
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "schema", PW_EVENT_SCHEMA, "requestId",
                     request_id ? request_id : "", "status", status, "sequence",
                     (json_int_t)sequence, "time", now, "workerId",
                     worker_id && *worker_id ? worker_id : "policy-worker");
}

size_t pw_utf8_seq(const unsigned char *s, size_t avail)
{
    if (avail == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (need >= avail || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k <= need; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return need + 1;
}

void pw_event_scrub(char *s)
{
    if (!s) return;
    unsigned char *u = (unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = pw_utf8_seq(u + i, n - i);
        if (k == 0) u[i] = '?';
        i += k ? k : 1;
    }
}

json_t *pw_event_string(const char *s)
{
    if (!s) s = "";
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, bad = 0;
    while (i < n) {
        size_t k = pw_utf8_seq(u + i, n - i);
        bad += k == 0;
        i += k ? k : 1;
    }
    if (!bad) return json_string(s);
    /* each bad byte becomes U+FFFD (3 bytes) */
    char *fixed = malloc(n + 2 * bad + 1);
    if (!fixed) return NULL;
    size_t o = 0;
    for (i = 0; i < n;) {
        size_t k = pw_utf8_seq(u + i, n - i);
        if (k) {
            memcpy(fixed + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(fixed + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    fixed[o] = '\0';
    json_t *j = json_string(fixed);
    free(fixed);
    return j;
}

json_t *pw_event_error(const char *code, const char *message, int retryable)
{
    return json_pack("{s:o, s:o, s:b}", "code", pw_event_string(code), "message",
                     pw_event_string(message), "retryable", retryable);
}
