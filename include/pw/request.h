/* pw/request.h: from a Kafka message payload to a validated request, or a rejection.
 *
 * Decoding is all-or-nothing: bounds (size, depth, UTF-8), JSON, schema (schemas/),
 * then the checks a schema cannot express (replyTo allow-list, Kusto/ARM name rules,
 * clusterUri host allow-list, duration ranges).  One bad operation rejects the whole
 * request; nothing is applied before every operation is known good. */
#ifndef PW_REQUEST_H
#define PW_REQUEST_H

#include <jansson.h>
#include <stddef.h>

#include "pw/config.h"

typedef struct pw_request_checker pw_request_checker;
typedef struct pw_request pw_request;

/* Why a message was turned down.  code is stable (see schemas/reply.v1.json):
 * MessageTooLarge, InvalidUtf8, InvalidJson, NestingTooDeep, NotAnObject, MissingId,
 * InvalidId, SchemaViolation, UnknownOperationKind, InvalidDuration, DurationOutOfRange,
 * InvalidName, ClusterHostNotAllowed, ReplyToNotAllowed, TooManyOperations, ... */
typedef struct pw_rejection {
    char code[64];
    char message[512];
    char id[129];            /* the request id when one could be read and is valid, else "" */
    char reply_to[256];      /* an allowed replyTo from the request, else "" (use the default) */
    json_t *errors;          /* owned; schema errors in "basic" output shape, or NULL */
} pw_rejection;

pw_request_checker *pw_request_checker_new(const pw_config *cfg, char *err, size_t errlen);
void pw_request_checker_free(pw_request_checker *chk);

/* Returns a new request (caller owns), or NULL with rej filled (caller clears it). */
pw_request *pw_request_decode(const pw_request_checker *chk, const void *payload, size_t len,
                              pw_rejection *rej);
void pw_rejection_clear(pw_rejection *rej);

const char *pw_request_id(const pw_request *req);
const char *pw_request_reply_to(const pw_request *req); /* NULL: the default reply topic */
const json_t *pw_request_json(const pw_request *req);   /* the whole validated document */
void pw_request_free(pw_request *req);

/* The `rejected` terminal reply event for rej (new reference). */
json_t *pw_rejection_event(const pw_rejection *rej, const char *worker_id);

#endif
