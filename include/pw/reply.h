/* pw/reply.h: the reply contract (schemas/reply.v1.json): every reply event the worker sends
 * is built here, from the frame every event shares to the operations, plans, errors and
 * rejections it carries, and cut to what Kafka can carry.  Producing them is pw/producer.h. */
#ifndef PW_REPLY_H
#define PW_REPLY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "pw/plan.h"

#define PW_REPLY_SCHEMA "adx-policy-reply/v1"

/* {"schema","requestId","status","sequence","time","workerId"} with time = now (UTC,
 * RFC 3339 with milliseconds).  New reference, NULL only when out of memory. */
json_t *pw_reply_frame(const char *request_id, const char *status, unsigned sequence,
                       const char *worker_id);

/* {"code","message","retryable"}; message may be NULL ("").  Texts go through
 * pw_reply_string.  New reference. */
json_t *pw_reply_error(const char *code, const char *message, int retryable);

/* A JSON string from text that may not be valid UTF-8 (an Azure message cut at a buffer
 * size, a header value): every byte that is not part of a well-formed sequence becomes
 * U+FFFD, so the event can always be built.  NULL counts as "".  New reference, NULL only
 * when out of memory. */
json_t *pw_reply_string(const char *s);

/* The same repair in place, for fixed-size text buffers: each such byte becomes '?'. */
void pw_reply_scrub(char *s);

/* Length of the well-formed UTF-8 sequence at s, of at most avail bytes (RFC 3629: no
 * overlong forms, surrogates or code points above U+10FFFF); 0 when there is none. */
size_t pw_reply_utf8_seq(const unsigned char *s, size_t avail);

/* The event as compact JSON text of at most max_bytes, for a message that must fit Kafka's
 * limits.  When the whole event is longer, what it embeds is cut in steps (strings below
 * the top level, from the request, plans and Azure error bodies, to PW_REPLY_FIT_STRING_MIN
 * bytes at the last step; arrays to PW_REPLY_FIT_ARRAY_MIN items) and "truncated": true is
 * added; as a last resort only the frame, the error's code and a cut message remain, with
 * "operations": [] when the event had operations (that smallest form is returned even when
 * it is still longer).  *cut says whether anything was cut.  Caller frees; NULL only when
 * out of memory.  The event is not changed. */
#define PW_REPLY_FIT_STRING_MIN 64
#define PW_REPLY_FIT_ARRAY_MIN 8
char *pw_reply_dump_fit(const json_t *event, size_t max_bytes, int *cut);

/* An operation's error: pw_reply_error plus httpStatus (> 0), azureCode and operationUrl
 * (non-empty).  New reference, NULL when out of memory. */
json_t *pw_reply_op_error(const char *code, const char *message, int retryable, int http_status,
                          const char *azure_code, const char *operation_url);

/* One operation as an event shows it (reply.v1.json's operations[]).  Everything borrowed;
 * ids "" when Azure gave none; percent outside 0..100 is left out. */
typedef struct pw_reply_op {
    size_t index;
    const pw_request_op *op; /* kind, route, target */
    const char *status;      /* pending, running, succeeded, unchanged, unknown, planned, failed,
                                skipped */
    const json_t *before;    /* NULL: null */
    const json_t *after;     /* NULL: null */
    const json_t *error;     /* NULL: none */
    unsigned attempts;
    uint64_t duration_ms;
    const char *az_request_id, *az_correlation_id, *az_client_request_id;
    int has_lro;
    const char *lro_status;
    unsigned polls;
    int percent;
    const pw_plan *plan; /* non-NULL: the operation's "plan" member (accepted events) */
    /* pacing: what the operation waits for now ("ARM write budget"; NULL: nothing), the
     * budget's level and size, how many wait before it; the time it has waited in all */
    const char *queued;
    double queue_level, queue_capacity;
    size_t queue_ahead;
    uint64_t queued_ms;
} pw_reply_op;

/* The operation object (new reference, NULL when out of memory). */
json_t *pw_reply_operation(const pw_reply_op *op);

/* {"read": call, "apply": call}: what operation i of plan will send (new reference; NULL
 * past the end or out of memory). */
json_t *pw_reply_plan(const pw_plan *plan, size_t i);

/* A request's event: the frame, dryRun, operationIndex (>= 0), operations[] (every one of
 * ops; NULL with count 0 gives []) and error, a copy of `error` with operationIndex =
 * error_index (>= 0) added.  New reference, NULL when out of memory. */
typedef struct pw_reply_request {
    const char *request_id, *status, *worker_id;
    unsigned sequence;
    int dry_run;
    long operation_index; /* -1: none */
    const pw_reply_op *ops;
    size_t count;
    const json_t *error; /* borrowed, or NULL */
    long error_index;    /* -1: none */
    json_t *rollout;     /* a rollout's event: its "rollout" member (the callee takes it), in
                            place of operations[] and operationIndex */
} pw_reply_request;
json_t *pw_reply_request_event(const pw_reply_request *r);

/* ---------------------------------------------------------------- rollouts
 *
 * A rollout's events carry "rollout" instead of operations[] (schemas/README.md):
 *   accepted  {"targets", "templates", "waves": [{"wave", "targets"}], "failureBudget",
 *              "pauseBetweenWavesSeconds"}
 *   running   {"wave", "results": [target results as they finished]}, chunked: at most
 *             PW_REPLY_RESULTS_MAX results and about PW_REPLY_RESULTS_BYTES of them an event
 *   wave      {"wave", "counts", "failedTargets", "failureBudget", "next": "wave" | "halt" |
 *              "end"} as each wave ends
 *   terminal  {"targets", "waves": [counts + "wave"], "totals": counts} */
#define PW_REPLY_RESULTS_MAX 50
#define PW_REPLY_RESULTS_BYTES (256 * 1024)

/* Targets by outcome (a wave's, or all of them). */
typedef struct pw_reply_counts {
    size_t targets, succeeded, unchanged, planned, failed, skipped;
} pw_reply_counts;

/* {"targets", "succeeded", "unchanged", "planned", "failed", "skipped"}.  New reference. */
json_t *pw_reply_counts_json(const pw_reply_counts *c);

/* One target's result: {"index", "wave", "status", "target", "operations": [...]}, status
 * succeeded (some operation wrote), unchanged (none needed to), planned (dry run), failed (an
 * operation failed or its outcome is unknown; the target's later operations are skipped).
 * Everything borrowed; ops[i].index is the template's.  New reference. */
typedef struct pw_reply_target {
    size_t index, wave;
    const char *status;
    const json_t *target;
    const pw_reply_op *ops;
    size_t count;
} pw_reply_target;
json_t *pw_reply_target_result(const pw_reply_target *t);

/* Appends result (the callee takes it) to results while the chunk stays within
 * PW_REPLY_RESULTS_MAX items and PW_REPLY_RESULTS_BYTES of JSON (*bytes so far; the first
 * always goes, however large): 1 when taken, 0 when it belongs in the next event (result
 * released), -1 out of memory. */
int pw_reply_results_add(json_t *results, size_t *bytes, json_t *result);

/* The `rejected` terminal event for rej (sequence 1; its schema errors, if any, under
 * error.errors).  New reference, NULL when out of memory. */
json_t *pw_reply_rejection(const pw_rejection *rej, const char *worker_id);

/* The audit trail every event of a request carries (schemas/README.md, Audit): who asked
 * and why, the request message's Kafka coordinates and its delivery attempt.  Borrowed. */
typedef struct pw_reply_audit {
    const char *requested_by; /* NULL: unknown (a rejected request without one): left out */
    const char *reason;       /* NULL: the request gave none: left out */
    const char *topic;        /* the request's topic, partition and offset */
    int partition;
    long long offset;
    unsigned delivery_attempt; /* >= 1 */
} pw_reply_audit;

/* Sets "requestedBy", "reason", "source": {"topic", "partition", "offset"} and
 * "deliveryAttempt" on event (part of the frame: never cut by pw_reply_dump_fit).  Returns 0,
 * -1 when out of memory. */
int pw_reply_audit_add(json_t *event, const pw_reply_audit *a);

/* Writes the current UTC time as 2026-11-24T15:30:00.123Z. */
void pw_reply_time(char *buf, size_t len);

#endif
