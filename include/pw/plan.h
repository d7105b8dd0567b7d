/* pw/plan.h: what the worker will send for each operation of a validated request.
 *
 * Per operation: the read of the current value (ARM GET, Kusto .show ... policy|principals,
 * ARM listPrincipals), the change (ARM PATCH/PUT/POST/DELETE, a Kusto command), the value
 * desired afterwards, and the lane key that orders operations on the same entity.  Values
 * are in request terms (pw/value.h): {"softDeletePeriod": "P10D"}, {"policy": {...}|null},
 * {"principal": {...}|null}, ...  The plan dispatches on scope, route and value type (the
 * catalogue, pw/ops.h), never on the kind. */
#ifndef PW_PLAN_H
#define PW_PLAN_H

#include <jansson.h>
#include <stddef.h>

#include "pw/azure.h"
#include "pw/request.h"

typedef struct pw_plan_call {
    pw_route route;
    const char *method;      /* arm: "GET", "PATCH", "PUT", "POST", "DELETE" */
    char *path;              /* arm: "/subscriptions/..." without the api-version query */
    json_t *body;            /* arm: the body, or NULL */
    const char *cluster_uri; /* kusto: normalized cluster URI (borrowed from the request) */
    const char *database;    /* kusto: the request's `db` (NULL at cluster scope) */
    char *command;           /* kusto: the command text */
} pw_plan_call;

typedef struct pw_plan_op {
    const pw_request_op *op; /* borrowed from the request */
    pw_plan_call read;       /* reads the before value */
    pw_plan_call apply;      /* makes the change */
    int after_from_reread;   /* 1: after comes from repeating read (the apply answer lacks it) */
    int read_absent_ok;      /* 1: a 404 on read means "none" (an ARM principal assignment) */
    char *read_list;         /* arm: the list that holds read's answer among others (a database
                                resource: its cluster's GET {C}/databases), or NULL; see
                                pw_plan_list_entry */
    json_t *desired;         /* the value desired after the change (pw_value_desired) */
    char *lane;              /* "<cluster>/<database lower-cased>[/<table>]", see plan.c */
} pw_plan_op;

typedef struct pw_plan pw_plan;

/* The longest ARM path the worker sends, in bytes: the Azure client's own bound, so
 * validation refuses what the client would. */
#define PW_PLAN_ARM_PATH_MAX PW_AZ_ARM_PATH_MAX

/* Bytes of the longest ARM path op's plan would send (database spaces encoded as %20, the
 * listPrincipals suffix for principal kinds, an assignment's name); 0 for an operation on
 * the kusto route. */
size_t pw_plan_arm_path_len(const pw_request_op *op);

/* Builds the plan of every operation.  req is borrowed and must outlive the plan.
 * api_version NULL: "2025-02-14".  NULL with err filled only when out of memory. */
/* The lane key of op (malloc'd, NULL when out of memory): operations with one key run one
 * at a time in request order; the same text names the same entity on both routes. */
char *pw_plan_lane_key(const pw_request_op *op);

pw_plan *pw_plan_new(const pw_request *req, const char *api_version, char *err, size_t errlen);
void pw_plan_free(pw_plan *plan); /* accepts NULL */

size_t pw_plan_count(const pw_plan *plan);
const pw_plan_op *pw_plan_op_at(const pw_plan *plan, size_t i);

/* The merge of an array policy with only the entries before lacks (update policies are
 * appended to as they are: a repeated merge would duplicate them).  New command, or NULL
 * when the planned write stands (another operation, or out of memory). */
char *pw_plan_merge_missing(const pw_plan_op *pop, const json_t *before);

/* Coalescing: the write of a table operation whose kind has the multi-table form for its
 * action can go with others of the same key (cluster, database, verb, policy and value
 * text) in one `.alter tables (…)` command.  The key (new string), or NULL when the write
 * goes alone. */
char *pw_plan_coalesce_key(const pw_plan_op *pop);

/* That command for the tables of several operations sharing pop's key.  New string. */
char *pw_plan_tables_command(const pw_plan_op *pop, const char *const *tables, size_t n);

/* The ARM path of a cluster's database list (Databases_ListByCluster, GET {C}/databases),
 * for a rollout's databasesOf selector.  New string, NULL when out of memory. */
char *pw_plan_arm_databases_path(const char *subscription_id, const char *resource_group,
                                 const char *cluster);

/* The entry of pop's read answer in a page of pop->read_list (ARM's {"value": [...]}): the
 * database whose "name" is "<cluster>/<database>" (case-insensitively).  Borrowed from page;
 * NULL when the page does not hold it. */
const json_t *pw_plan_list_entry(const pw_plan_op *pop, const json_t *page);

/* The ARM api-version the plan's ARM calls carry. */
const char *pw_plan_api_version(const pw_plan *plan);

/* Reads the value in request terms from an answer: the ARM database resource or principal
 * assignment, a Kusto policy, workload group or principals answer, or an ARM principal list
 * ({"value": [...]}); answer NULL: the read found nothing (read_absent_ok).  *value is a new
 * reference.  Returns 0, or -1 with err filled when the answer has another shape. */
int pw_plan_value(const pw_plan_op *pop, const json_t *answer, json_t **value, char *err,
                  size_t errlen);

#endif
