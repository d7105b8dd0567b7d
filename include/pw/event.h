/* pw/event.h: the common frame of reply events (schemas/reply.v1.json). */
#ifndef PW_EVENT_H
#define PW_EVENT_H

#include <jansson.h>
#include <stddef.h>

#define PW_EVENT_SCHEMA "adx-policy-reply/v1"

/* {"schema","requestId","status","sequence","time","workerId"} with time = now (UTC,
 * RFC 3339 with milliseconds).  New reference, NULL only when out of memory. */
json_t *pw_event_new(const char *request_id, const char *status, unsigned sequence,
                     const char *worker_id);

/* {"code","message","retryable"}; message may be NULL ("").  Texts go through
 * pw_event_string.  New reference. */
json_t *pw_event_error(const char *code, const char *message, int retryable);

/* A JSON string from text that may not be valid UTF-8 (an Azure message cut at a buffer
 * size, a header value): every byte that is not part of a well-formed sequence becomes
 * U+FFFD, so the event can always be built.  NULL counts as "".  New reference, NULL only
 * when out of memory. */
json_t *pw_event_string(const char *s);

/* The same repair in place, for fixed-size text buffers: each such byte becomes '?'. */
void pw_event_scrub(char *s);

/* Length of the well-formed UTF-8 sequence at s, of at most avail bytes (RFC 3629: no
 * overlong forms, surrogates or code points above U+10FFFF); 0 when there is none. */
size_t pw_utf8_seq(const unsigned char *s, size_t avail);

/* The event as compact JSON text of at most max_bytes, for a message that must fit Kafka's
 * limits.  When the whole event is longer, what it embeds is cut in steps (strings below
 * the top level, from the request, plans and Azure error bodies, to PW_EVENT_FIT_STRING_MIN
 * bytes at the last step; arrays to PW_EVENT_FIT_ARRAY_MIN items) and "truncated": true is
 * added; as a last resort only the frame, the error's code and a cut message remain, with
 * "operations": [] when the event had operations (that smallest form is returned even when
 * it is still longer).  *cut says whether anything was cut.  Caller frees; NULL only when
 * out of memory.  The event is not changed. */
#define PW_EVENT_FIT_STRING_MIN 64
#define PW_EVENT_FIT_ARRAY_MIN 8
char *pw_event_dump_fit(const json_t *event, size_t max_bytes, int *cut);

/* Writes the current UTC time as 2026-11-24T15:30:00.123Z. */
void pw_event_time(char *buf, size_t len);

#endif
