/* pw/exec.h: plans and executes validated requests, emitting reply events.
 *
 * Operations on the same target (database, table) run in arrival order, one at a
 * time, across requests; different targets run in parallel.  For each request the
 * executor emits `accepted` (with the plan), `running` (per operation, with LRO
 * status), then exactly one terminal event (`succeeded` or `failed`). */
#ifndef PW_EXEC_H
#define PW_EXEC_H

#include <jansson.h>

#include "pw/azure.h"
#include "pw/config.h"
#include "pw/loop.h"
#include "pw/request.h"

typedef struct pw_exec pw_exec;

/* event: a reply event (schemas/reply.v1.json); ownership passes to the callee.
 * terminal: 1 for the last event of this request (succeeded/failed).  Only when memory
 * ran out building it can a terminal event be NULL (the request is over all the same).
 *
 * Events of a request, sequence 1, 2, ...:
 *   accepted   every operation with its plan ({"read": call, "apply": call}), status pending
 *   running    operationIndex = the operation starting, or whose ARM LRO was polled
 *              (operations[i].lro = {status, polls[, percentComplete]})
 *   succeeded  every operation succeeded (or, dryRun, "planned": read, not applied)
 *   failed     error = the failed operation's error + operationIndex; later operations of
 *              the request are "skipped" (never applied).  An operation whose ARM write was
 *              accepted but whose outcome is unknown at its deadline (OutcomeUnknown) has
 *              status "unknown", not "failed", and error.operationUrl; the request's
 *              terminal status is then still "failed" (documented choice: the terminal
 *              statuses stay succeeded/failed/rejected), with top-level error.code
 *              OutcomeUnknown
 * Per operation: index, kind, route, target, status, before, after, attempts, durationMs,
 * azure {requestId, correlationId, clientRequestId}, lro, error {code, message, retryable,
 * httpStatus?, azureCode?, operationUrl?}, codes as in pw/azure.h plus InternalError.
 * database.principal.add whose principal already holds the role succeeds without calling
 * addPrincipals (a redelivered request must not fail or duplicate).
 *
 * A rollout (pw_request_rollout_of) runs each target's operations as one chain (a failure
 * skips only that target's later operations), its targets wave by wave (pw/rollout.h), and
 * emits rollout events instead (pw/reply.h): accepted with the waves, running with the
 * results of targets as they finish (no per-operation running events), wave as each wave
 * ends, and the terminal event with the totals per wave (failed: RolloutHalted past the
 * failure budget, TargetsFailed when some target failed within it).  A selector's targets
 * are listed when the request starts and take their places in the lanes then; a listing that
 * fails, or targets the expansion refuses (TooManyTargets, InvalidTarget), end the request
 * failed before anything is written.  The ownership gate applies as to any request: asked
 * before each operation and each write, a dropped rollout (between operations or waves, or
 * once its listing ended) is released unanswered and redelivered whole. */
typedef void (*pw_exec_event_cb)(void *ctx, json_t *event, int terminal);

/* Whether the owner of a request still lets its work go on: asked before each operation
 * starts and before each write (apply step).  Kafka ownership lives with the caller: a
 * request whose partition is being revoked or was lost is DROP, one whose ownership is in
 * doubt (the process stalled past the group's session timeout) is HOLD until confirmed. */
typedef enum pw_exec_gate {
    PW_EXEC_GO = 0,
    PW_EXEC_HOLD = 1, /* wait; pw_exec_recheck() asks again */
    PW_EXEC_DROP = 2, /* emit nothing more for it; what has not started never starts */
} pw_exec_gate;

typedef struct pw_exec_owner {
    pw_exec_gate (*gate)(void *ctx); /* ctx: the one given to pw_exec_submit */
    /* The request of ctx was dropped (no terminal event): it is the caller's again. */
    void (*dropped)(void *ctx);
} pw_exec_owner;

/* loop, azure and cfg are borrowed and must outlive the executor. */
pw_exec *pw_exec_new(pw_loop *loop, pw_azure *azure, const pw_config *cfg, char *err,
                     size_t errlen);
/* Accepts NULL; abandons requests in flight silently (no more callbacks).  Azure calls
 * still in flight point at freed state: run no loop iteration between this and
 * pw_azure_free() (which drops their callbacks). */
void pw_exec_free(pw_exec *ex);

/* Takes ownership of req.  cb receives every event of this request, the first
 * never from inside this call. */
void pw_exec_submit(pw_exec *ex, pw_request *req, pw_exec_event_cb cb, void *ctx);

size_t pw_exec_in_flight(const pw_exec *ex); /* requests without a terminal event yet */

/* Installs the ownership gate (copied; without one every request may always go on). */
void pw_exec_set_owner(pw_exec *ex, const pw_exec_owner *owner);

/* Asks the gate again for every request, from the loop (never inside this call): dropped
 * ones that have no Azure call outstanding are released (owner->dropped), held ones that
 * may go on resume.  A call already outstanding is not cancelled: it ends as usual (a write
 * it completes is reported, with the terminal event when it was the request's last
 * operation) and the gate is asked again before anything further starts.
 * O(requests + lanes). */
void pw_exec_recheck(pw_exec *ex);

#endif
