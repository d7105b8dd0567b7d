/* pw/ops.h: the operation catalogue, the one place that knows which operation kinds exist.
 *
 * A kind is "<scope>.<policy>" (table.merge, cluster.workload_group, database.principal.add).
 * One row per policy (or principal family) says at which scopes it exists, which actions
 * each scope has, how its value is written and read (the value type), which routes reach
 * it, and whether it is privileged.  The decoder (request.c), the planner (plan.c) and the
 * KQL builder (kql.c) dispatch on scope and value type, never on the kind itself; adding a
 * policy costs one row here, one schema under schemas/ops/ and one data file under
 * tests/data/ops/.
 *
 * Facts: ../shared/reference/kusto/REFERENCE.md §4, §6, §8 and the Kusto documentation. */
#ifndef PW_OPS_H
#define PW_OPS_H

#include <jansson.h>
#include <stddef.h>

typedef enum pw_route { PW_ROUTE_ARM = 0, PW_ROUTE_KUSTO = 1 } pw_route;
#define PW_ROUTE_BIT(r) (1u << (r))

typedef enum pw_scope {
    PW_SCOPE_CLUSTER = 0,
    PW_SCOPE_DATABASE,
    PW_SCOPE_TABLE,
    PW_SCOPE_MATERIALIZED_VIEW,
    PW_SCOPE_COLUMN,
    PW_SCOPE_EXTERNAL_TABLE,
    PW_SCOPE_COUNT
} pw_scope;

/* What the operation does; the request's "action" (default alter). */
typedef enum pw_action {
    PW_ACTION_ALTER = 0, /* .alter (replace), ARM PATCH/PUT, principal add/remove */
    PW_ACTION_MERGE,     /* .alter-merge: overlay the given properties */
    PW_ACTION_DELETE,    /* .delete … policy (the parent's applies), .drop, ARM DELETE */
    PW_ACTION_COUNT
} pw_action;
#define PW_ACTION_BIT(a) (1u << (a))

/* How the value is given, written into a command or ARM body, and read back. */
typedef enum pw_value_type {
    PW_VT_JSON_OBJECT = 0, /* "policy": {…}, written as @'<json>' */
    PW_VT_JSON_ARRAY,      /* "policy": […] */
    PW_VT_BOOL,            /* "enabled": true|false, written bare: true / false */
    PW_VT_CACHING,         /* "hotCachePeriod" [+ "hotWindows"]: hot = 5d[, hot_window = …] */
    PW_VT_RETENTION,       /* "softDeletePeriod" [+ "recoverability"]: softdelete = 10d … */
    PW_VT_STREAMING,       /* "enabled" (enable|disable) or "policy": {…} */
    PW_VT_ROWORDER,        /* "rowOrder": [{column, order}]: (['C'] asc, …) */
    PW_VT_RLS,             /* "enabled" + "query": enable|disable '<query>' */
    PW_VT_ENCODING_TYPE,   /* "encodingType": type = '<type>' */
    PW_VT_CLASSIFICATION,  /* "policy" [+ "classificationFunction"]: @'<json>' <| body */
    PW_VT_WORKLOAD_GROUP,  /* "policy": the workload group's JSON; own command verbs */
    PW_VT_PRINCIPAL_ADD,   /* "principal": a role assignment to add */
    PW_VT_PRINCIPAL_REMOVE, /* "principal": a role assignment to drop */
    PW_VT_ASSIGNMENT,       /* ARM principalAssignments: "assignment": {…} */
    PW_VT_COUNT
} pw_value_type;

/* One scope of a row.  actions == 0: the policy does not exist at this scope. */
typedef struct pw_ops_scope {
    unsigned actions;         /* PW_ACTION_BIT mask */
    pw_value_type value;      /* how the value is given and written at this scope */
    unsigned routes;          /* PW_ROUTE_BIT mask; 0 means kusto only */
    pw_route default_route;   /* when the request has no "via" */
    const char *arm_property; /* arm route of a database policy: "softDeletePeriod", … */
} pw_ops_scope;

typedef struct pw_ops_row {
    const char *policy;   /* the kind after "<scope>.": "merge", "principal.add", … */
    const char *keyword;  /* the Kusto keyword after `policy` (NULL: not a policy command) */
    const char *title;    /* a few words for `policy-worker kinds` */
    int privileged;       /* changes access: refused unless configured (every cluster scope
                             is privileged as well, see pw_ops_privileged) */
    unsigned multi_table; /* PW_ACTION_BIT mask of actions with `.alter[-merge] tables (…)`
                             in the form this catalogue writes (retention's property form has
                             none) */
    /* Properties Kusto fills in when an .alter omits them (JSON text; for an array policy,
     * each entry's), so that "unchanged" compares what the .alter would leave.  Properties
     * Kusto shows that are neither given nor listed here count as derived (ClientId,
     * IsSystem, ...) and are not compared. */
    const char *defaults;
    pw_ops_scope scopes[PW_SCOPE_COUNT];
} pw_ops_row;

/* A kind: a row at one scope. */
typedef struct pw_kind {
    const pw_ops_row *row;
    pw_scope scope;
} pw_kind;

size_t pw_ops_count(void);                  /* rows */
const pw_ops_row *pw_ops_row_at(size_t i);  /* NULL past the end */

/* Finds "<scope>.<policy>".  Returns 0 with *kind set, or -1 (no such kind: unknown scope,
 * unknown policy, or a policy that does not exist at that scope). */
int pw_ops_lookup(const char *name, pw_kind *kind);

/* "<scope>.<policy>" into buf; returns buf ("" when it does not fit). */
const char *pw_ops_kind_name(pw_kind kind, char *buf, size_t len);
#define PW_OPS_KIND_NAME_MAX 64

const char *pw_ops_scope_name(pw_scope scope);   /* "cluster", "materialized-view", … */
const char *pw_ops_action_name(pw_action action); /* "alter", "merge", "delete" */
const char *pw_ops_route_name(pw_route route);    /* "arm", "kusto" */
const char *pw_ops_value_name(pw_value_type vt);  /* "json-object", "caching", … */
/* Parses an action name; -1 when it is none. */
int pw_ops_action_from_name(const char *name, pw_action *action);

static inline const pw_ops_scope *pw_ops_at(pw_kind kind)
{
    return &kind.row->scopes[kind.scope];
}

/* row->defaults parsed, once per row and kept for the process's life (borrowed); NULL when
 * the row has none. */
const json_t *pw_ops_defaults(const pw_ops_row *row);

/* Changes access or the whole cluster: refused unless listed in
 * worker.kinds.privileged.allowed. */
int pw_ops_privileged(pw_kind kind);

/* The routes a kind has, as a mask (kusto when the row names none). */
unsigned pw_ops_routes(pw_kind kind);

/* The catalogue as JSON (for `policy-worker kinds --json`): an array of
 * {kind, scope, policy, keyword, actions, routes, defaultRoute, value, privileged,
 *  multiTable}.  New reference, NULL when out of memory. */
json_t *pw_ops_json(void);

#endif
