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
#include <stdint.h>

#include "pw/config.h"
#include "pw/ops.h"

/* Longest request id (characters of A-Za-z0-9._:-). */
#define PW_REQUEST_ID_MAX 128

typedef struct pw_request_checker pw_request_checker;
typedef struct pw_request pw_request;

/* One validated operation.  Every string has passed its naming rule; strings point into
 * the request (valid while it lives).  cluster is the ARM cluster name, or on the kusto
 * route the first label of the cluster URI's host (so both routes name the same lane).
 * The kind is a catalogue entry (pw/ops.h): what it is, how its value is written. */
typedef struct pw_request_op {
    size_t index;
    pw_kind kind;
    const char *kind_name; /* "table.merge", as the request spelled it */
    pw_action action;
    pw_route route;
    const json_t *json;          /* the operation object as given */
    const json_t *target;        /* the target object as given */
    const char *subscription_id; /* arm route (else NULL unless given) */
    const char *resource_group;
    const char *cluster;
    const char *cluster_uri; /* kusto route: "https://<lower-cased host>"; else NULL */
    const char *database;    /* NULL at cluster scope */
    const char *table;       /* table and column scopes; else NULL */
    const char *entity;      /* materialized view, external table or workload group name */
    const char *column;      /* column scope */
    const char *assignment;  /* principalAssignment: the assignment's name */
    int64_t period_ticks;    /* caching / retention: the period in 100 ns ticks */
    const json_t *principal; /* principal kinds: the principal object */
    const char *principal_fqn; /* principal kinds on the kusto route: the FQN used */
} pw_request_op;

/* Why a message was turned down.  code is stable (see schemas/reply.v1.json):
 * MessageTooLarge, InvalidUtf8, InvalidJson, NestingTooDeep, NotAnObject, MissingId,
 * InvalidId, SchemaViolation, UnknownOperationKind, InvalidDuration, DurationOutOfRange,
 * InvalidName, InvalidClusterUri, ClusterHostNotAllowed, ReplyToNotAllowed, TooManyOperations,
 * OperationNotAllowed, TooManyTargets.
 * The PW_REJECT_* names below are those strings.
 *
 * internal = 1 (code InternalError) is not a verdict on the message: the worker itself
 * failed while decoding (out of memory, an unexpected library error).  Such a message must
 * not be answered, dead-lettered or committed: it stays unfinished and is redelivered, as
 * after a crash.  id may still hold the request id (for the log only). */
typedef struct pw_rejection {
    char code[64];
    char message[512];
    /* the request id when one could be read and is valid, else "" */
    char id[PW_REQUEST_ID_MAX + 1];
    char reply_to[256]; /* an allowed replyTo from the request, else "" (use the default) */
    json_t *errors;     /* owned; schema errors in "basic" output shape, or NULL */
    int internal;       /* 1: not judged (see above); never answer or commit it */
} pw_rejection;

#define PW_REJECT_MESSAGE_TOO_LARGE "MessageTooLarge"
#define PW_REJECT_INVALID_UTF8 "InvalidUtf8"
#define PW_REJECT_NESTING_TOO_DEEP "NestingTooDeep"
#define PW_REJECT_INVALID_JSON "InvalidJson"
#define PW_REJECT_NOT_AN_OBJECT "NotAnObject"
#define PW_REJECT_MISSING_ID "MissingId"
#define PW_REJECT_INVALID_ID "InvalidId"
#define PW_REJECT_TOO_MANY_OPERATIONS "TooManyOperations"
#define PW_REJECT_UNKNOWN_KIND "UnknownOperationKind"
#define PW_REJECT_SCHEMA "SchemaViolation"
#define PW_REJECT_REPLY_TO "ReplyToNotAllowed"
#define PW_REJECT_INVALID_DURATION "InvalidDuration"
#define PW_REJECT_DURATION_RANGE "DurationOutOfRange"
#define PW_REJECT_INVALID_NAME "InvalidName"
#define PW_REJECT_INVALID_CLUSTER_URI "InvalidClusterUri"
#define PW_REJECT_HOST_NOT_ALLOWED "ClusterHostNotAllowed"
#define PW_REJECT_NOT_ALLOWED "OperationNotAllowed"
#define PW_REJECT_TOO_MANY_TARGETS "TooManyTargets"
#define PW_REJECT_INTERNAL "InternalError" /* with internal = 1 only; never sent */

/* Longest accepted period (soft delete or hot cache): 100 years of days. */
#define PW_REQUEST_MAX_PERIOD_DAYS 36500

/* Loads every *.json under cfg->schemas_dir (NULL: the source tree's schemas/) into a
 * registry and compiles request.v1.json.  cfg is borrowed and must outlive the checker. */
pw_request_checker *pw_request_checker_new(const pw_config *cfg, char *err, size_t errlen);
void pw_request_checker_free(pw_request_checker *chk);

/* Returns a new request (caller owns), or NULL with rej filled (caller clears it).
 * rej is fully overwritten; on MissingId/InvalidId rej->id is "" (dead-letter it); with
 * rej->internal set, neither answer nor commit the message (see pw_rejection). */
pw_request *pw_request_decode(const pw_request_checker *chk, const void *payload, size_t len,
                              pw_rejection *rej);
void pw_rejection_clear(pw_rejection *rej);

const char *pw_request_id(const pw_request *req);
const char *pw_request_reply_to(const pw_request *req); /* NULL: the default reply topic */
int pw_request_dry_run(const pw_request *req);
size_t pw_request_op_count(const pw_request *req);
const pw_request_op *pw_request_op_at(const pw_request *req, size_t i); /* NULL past the end */

void pw_request_free(pw_request *req);

/* ---------------------------------------------------------------- rollouts
 *
 * A request may carry "rollout" instead of "operations": templates (operations without a
 * target) applied to each of many targets, in waves (schemas/README.md).  Its operations
 * are the expansion, target-major: operation i is template i % templates on target
 * i / templates, each one checked exactly like an operation of "operations" (schema of its
 * kind, names, cluster host allow-list).  A target list is expanded at decode; a selector
 * (every database of a cluster, every table of a database) only once the executor has
 * listed the targets (pw_request_expand): until then the request has no operations. */
typedef enum pw_request_source {
    PW_REQUEST_TARGET_LIST = 0,   /* "targets": [...] */
    PW_REQUEST_DATABASES_OF,      /* "targets": {"selector": {"databasesOf": {...}}}: ARM list */
    PW_REQUEST_TABLES_OF,         /* "targets": {"selector": {"tablesOf": {...}}}: .show tables */
} pw_request_source;

#define PW_REQUEST_WAVE_STEPS_MAX 100

typedef struct pw_request_rollout {
    pw_request_source source;
    const json_t *selector; /* the databasesOf / tablesOf object (borrowed); NULL for a list */
    size_t templates;       /* operations per target */
    size_t targets;         /* targets expanded so far (0 before a selector's expansion) */
    size_t canary;          /* waves.canary: targets of wave 0 (default 1; 0: none) */
    unsigned steps[PW_REQUEST_WAVE_STEPS_MAX]; /* waves.steps: cumulative percentages, rising,
                                                  the last 100 (default [100]) */
    size_t step_count;
    size_t failure_budget;  /* waves.failureBudget: failed targets tolerated in all (0) */
    unsigned pause_s;       /* waves.pauseBetweenWavesSeconds (0) */
} pw_request_rollout;

/* The rollout block, or NULL for a request of plain operations. */
const pw_request_rollout *pw_request_rollout_of(const pw_request *req);

/* The most targets a rollout may have (worker.rollout.targets.max). */
size_t pw_request_targets_max(const pw_request *req);

/* Target t of a rollout (0 <= t < targets), as given or listed (borrowed); NULL past the end. */
const json_t *pw_request_target_at(const pw_request *req, size_t target);

/* Expands a selector's rollout over targets (an array of target objects in the order Azure
 * listed them; borrowed): every (target, template) pair is checked as at decode.  Returns 0,
 * or -1 with rej filled (TooManyTargets past worker.rollout.targets.max, or the rejection a
 * target would have got in a list; internal when out of memory) and the request unchanged.
 * The checker req was decoded with must still live. */
int pw_request_expand(pw_request *req, const json_t *targets, pw_rejection *rej);

#endif
