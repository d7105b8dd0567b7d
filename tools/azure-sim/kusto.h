/* kusto.h: azure-sim's Kusto engine: parses one management command and runs it
 * against one cluster's state (the "clusters" element layout in sim.h). */
#ifndef SIM_KUSTO_H
#define SIM_KUSTO_H

#include <jansson.h>

typedef struct sim_kusto_caller {
    const char *app_id;      /* from the token; used for role checks */
    const char *tenant_id;
} sim_kusto_caller;

/* Runs csl in database db (NULL or "" for cluster-scope commands) of cluster, which
 * is mutated in place.  Returns the HTTP status and sets *body to the answer (new
 * reference): a v1 frame on success, a OneApi error body otherwise.
 * client_request_id and activity_id go into an error's @context.
 * The caller holds the state lock.  Never crashes on any input; csl is bounded by the
 * caller (the front rejects bodies over its limit). */
int sim_kusto_execute(json_t *cluster, const char *db, const char *csl,
                      const sim_kusto_caller *caller, const char *client_request_id,
                      const char *activity_id, json_t **body);

#endif
