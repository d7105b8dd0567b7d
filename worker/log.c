/* log.c: one JSON object per line on stderr, written with a single write(2). */
#include "pw/log.h"

#include "pw/reply.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pw_log_level min_level = PW_LOG_INFO;
static char worker_id[128] = "policy-worker";

void pw_log_set_level(pw_log_level min)
{
    min_level = min;
}

void pw_log_set_worker_id(const char *id)
{
    snprintf(worker_id, sizeof worker_id, "%s", id ? id : "policy-worker");
}

static const char *level_name(pw_log_level level)
{
    switch (level) {
    case PW_LOG_DEBUG:
        return "debug";
    case PW_LOG_INFO:
        return "info";
    case PW_LOG_WARN:
        return "warn";
    default:
        return "error";
    }
}

void pw_log(pw_log_level level, const char *request_id, const char *event, const char *fmt, ...)
{
    if (level < min_level) return;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char when[40];
    pw_reply_time(when, sizeof when);

    /* json_string fails on invalid UTF-8: fall back to a marker rather than lose the line. */
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(when));
    json_object_set_new(line, "level", json_string(level_name(level)));
    json_object_set_new(line, "worker", json_string(worker_id));
    if (request_id) {
        json_t *rid = json_string(request_id);
        json_object_set_new(line, "requestId", rid ? rid : json_string("<invalid utf-8>"));
    }
    json_object_set_new(line, "event", json_string(event ? event : "log"));
    json_t *m = json_string(msg);
    json_object_set_new(line, "msg", m ? m : json_string("<invalid utf-8>"));

    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (!text) return;
    size_t n = strlen(text);
    text[n] = '\n'; /* the NUL becomes the newline: one write(2), one whole line */
    ssize_t w = write(STDERR_FILENO, text, n + 1);
    (void)w;
    free(text);
}
