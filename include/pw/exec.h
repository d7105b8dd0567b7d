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
 * terminal: 1 for the last event of this request (succeeded/failed). */
typedef void (*pw_exec_event_cb)(void *ctx, json_t *event, int terminal);

/* loop, azure and cfg are borrowed and must outlive the executor. */
pw_exec *pw_exec_new(pw_loop *loop, pw_azure *azure, const pw_config *cfg, char *err,
                     size_t errlen);
void pw_exec_free(pw_exec *ex); /* accepts NULL; abandons requests in flight silently */

/* Takes ownership of req.  cb receives every event of this request, the first
 * never from inside this call. */
void pw_exec_submit(pw_exec *ex, pw_request *req, pw_exec_event_cb cb, void *ctx);

size_t pw_exec_in_flight(const pw_exec *ex); /* requests without a terminal event yet */

#endif
