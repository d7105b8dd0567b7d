/* event.c: the frame every reply event shares (schema tag, ids, sequence, time). */
#include "pw/event.h"

#include <stdio.h>
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

json_t *pw_event_error(const char *code, const char *message, int retryable)
{
    return json_pack("{s:s, s:s, s:b}", "code", code, "message", message ? message : "",
                     "retryable", retryable);
}
