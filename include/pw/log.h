/* pw/log.h: structured logging, one JSON object per line on stderr.
 *
 * Contract: callers never pass secrets (client secrets, tokens, Authorization
 * headers) to these functions; the logger does not scrub.  Every line carries
 * ts, level, worker id, event, and the request id when there is one. */
#ifndef PW_LOG_H
#define PW_LOG_H

#include <stdarg.h>
#include <stddef.h>

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

/* One structured field of a line: a string (str non-NULL) or an integer.  Fields follow
 * "msg" in the line, in the order given; a key repeated (or one of the frame's) is skipped. */
typedef struct pw_log_field {
    const char *key;
    const char *str; /* NULL: the field is the number num */
    long long num;
} pw_log_field;
static inline pw_log_field pw_log_field_s(const char *key, const char *v)
{
    return (pw_log_field){key, v ? v : "", 0};
}
#define PW_LOG_S(k, v) pw_log_field_s((k), (v))
#define PW_LOG_N(k, v) ((pw_log_field){(k), NULL, (long long)(v)})

/* pw_log with fields (n of them; f may be NULL when n is 0). */
void pw_log_kv(pw_log_level level, const char *request_id, const char *event, const pw_log_field *f,
               size_t n, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* A request's context: fields added to every line logged with its request id (the trace
 * id, who asked and why, the Kafka coordinates, the delivery attempt), whoever logs it.  The
 * fields are copied; at most PW_LOG_CONTEXT_FIELDS.  When two live contexts share an id, the
 * newer one's fields are used.  Returns a handle for pw_log_context_pop, NULL when out of
 * memory (the lines then lack the fields).  Thread-safe. */
#define PW_LOG_CONTEXT_FIELDS 16
typedef struct pw_log_context pw_log_context;
pw_log_context *pw_log_context_push(const char *request_id, const pw_log_field *f, size_t n);

/* Ends a context (accepts NULL). */
void pw_log_context_pop(pw_log_context *ctx);

#endif
