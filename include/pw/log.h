/* pw/log.h: structured logging, one JSON object per line on stderr.
 *
 * Contract: callers never pass secrets (client secrets, tokens, Authorization
 * headers) to these functions; the logger does not scrub.  Every line carries
 * ts, level, worker id, event, and the request id when there is one. */
#ifndef PW_LOG_H
#define PW_LOG_H

#include <stdarg.h>

typedef enum pw_log_level {
    PW_LOG_DEBUG = 0,
    PW_LOG_INFO = 1,
    PW_LOG_WARN = 2,
    PW_LOG_ERROR = 3,
} pw_log_level;

/* Process-wide settings; call once at start-up (not thread-safe against logging). */
void pw_log_set_level(pw_log_level min);
void pw_log_set_worker_id(const char *worker_id);

/* Logs {"ts":..,"level":..,"worker":..,"requestId":..,"event":..,"msg":..}.
 * request_id may be NULL; event is a short stable token ("request.rejected"). */
void pw_log(pw_log_level level, const char *request_id, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
