/* ops.c: the operation catalogue: one row per Kusto policy (and principal family). */
#include "pw/ops.h"

#include <stdio.h>
#include <string.h>

#define A_ALTER PW_ACTION_BIT(PW_ACTION_ALTER)
#define A_MERGE PW_ACTION_BIT(PW_ACTION_MERGE)
#define A_DELETE PW_ACTION_BIT(PW_ACTION_DELETE)
#define A_AMD (A_ALTER | A_MERGE | A_DELETE)
#define A_AD (A_ALTER | A_DELETE)
#define A_AM (A_ALTER | A_MERGE)

#define R_ARM PW_ROUTE_BIT(PW_ROUTE_ARM)
#define R_KUSTO PW_ROUTE_BIT(PW_ROUTE_KUSTO)

/* A scope reached only through the cluster's Kusto endpoint. */
#define KUSTO(acts, vt) {(acts), (vt), R_KUSTO, PW_ROUTE_KUSTO, NULL}
/* A database policy that ARM also carries as a database property (arm by default). */
#define ARM_OR_KUSTO(acts, vt, prop) {(acts), (vt), R_ARM | R_KUSTO, PW_ROUTE_ARM, (prop)}
#define ARM_ONLY(acts, vt) {(acts), (vt), R_ARM, PW_ROUTE_ARM, NULL}

#define S_CLUSTER [PW_SCOPE_CLUSTER]
#define S_DB [PW_SCOPE_DATABASE]
#define S_TABLE [PW_SCOPE_TABLE]
#define S_MV [PW_SCOPE_MATERIALIZED_VIEW]
#define S_COLUMN [PW_SCOPE_COLUMN]
#define S_EXT [PW_SCOPE_EXTERNAL_TABLE]

/* Scopes and verbs: REFERENCE.md §4 (policies), §6 (roles), §8 (workload groups, ARM).
 * Defaults: what the Kusto documentation gives for properties an .alter leaves out. */
static const pw_ops_row ROWS[] = {
    {"caching", "caching", "hot cache period and hot windows", 0, A_ALTER, NULL,
     {S_CLUSTER = KUSTO(A_AD, PW_VT_CACHING),
      S_DB = ARM_OR_KUSTO(A_AD, PW_VT_CACHING, "hotCachePeriod"),
      S_TABLE = KUSTO(A_AD, PW_VT_CACHING), S_MV = KUSTO(A_AD, PW_VT_CACHING),
      S_COLUMN = KUSTO(A_AD, PW_VT_CACHING)}},
    {"retention", "retention", "soft-delete period and recoverability", 0, 0, NULL,
     {S_DB = ARM_OR_KUSTO(A_AMD, PW_VT_RETENTION, "softDeletePeriod"),
      S_TABLE = KUSTO(A_AMD, PW_VT_RETENTION), S_MV = KUSTO(A_AMD, PW_VT_RETENTION)}},
    {"merge", "merge", "extent merge policy", 0, A_ALTER, NULL,
     {S_DB = KUSTO(A_AMD, PW_VT_JSON_OBJECT), S_TABLE = KUSTO(A_AMD, PW_VT_JSON_OBJECT),
      S_MV = KUSTO(A_AMD, PW_VT_JSON_OBJECT)}},
    {"partitioning", "partitioning", "data partitioning policy", 0, 0, NULL,
     {S_TABLE = KUSTO(A_AMD, PW_VT_JSON_OBJECT), S_MV = KUSTO(A_AMD, PW_VT_JSON_OBJECT)}},
    {"ingestionbatching", "ingestionbatching", "queued ingestion batching", 0, A_AM,
     "{\"MaximumBatchingTimeSpan\":\"00:05:00\",\"MaximumNumberOfItems\":500,"
     "\"MaximumRawDataSizeMB\":1024}",
     {S_CLUSTER = KUSTO(A_AM, PW_VT_JSON_OBJECT), S_DB = KUSTO(A_AMD, PW_VT_JSON_OBJECT),
      S_TABLE = KUSTO(A_AMD, PW_VT_JSON_OBJECT)}},
    {"ingestiontime", "ingestiontime", "the hidden ingestion-time column", 0, A_ALTER, NULL,
     {S_TABLE = KUSTO(A_AD, PW_VT_BOOL)}},
    {"update", "update", "update policies (a merge appends entries)", 0, 0,
     "{\"IsEnabled\":false,\"IsTransactional\":false,\"PropagateIngestionProperties\":false}",
     {S_TABLE = KUSTO(A_AMD, PW_VT_JSON_ARRAY)}},
    {"streamingingestion", "streamingingestion", "streaming ingestion", 0, 0,
     "{\"IsEnabled\":false,\"HintAllocatedRate\":null}",
     {S_CLUSTER = KUSTO(A_AMD, PW_VT_STREAMING), S_DB = KUSTO(A_AMD, PW_VT_STREAMING),
      S_TABLE = KUSTO(A_AMD, PW_VT_STREAMING)}},
    {"row_level_security", "row_level_security", "row level security query", 1, 0, NULL,
     {S_TABLE = KUSTO(A_AD, PW_VT_RLS), S_MV = KUSTO(A_AD, PW_VT_RLS),
      S_EXT = KUSTO(A_AD, PW_VT_RLS)}},
    {"restricted_view_access", "restricted_view_access", "restricted view access", 1, A_ALTER,
     NULL, {S_TABLE = KUSTO(A_AD, PW_VT_BOOL)}},
    {"auto_delete", "auto_delete", "table expiry", 1, 0, "{\"DeleteIfNotEmpty\":false}",
     {S_TABLE = KUSTO(A_AD, PW_VT_JSON_OBJECT)}},
    {"extent_tags_retention", "extent_tags_retention", "extent tag retention", 0, 0, NULL,
     {S_DB = KUSTO(A_AD, PW_VT_JSON_ARRAY), S_TABLE = KUSTO(A_AD, PW_VT_JSON_ARRAY)}},
    {"sharding", "sharding", "extent sharding", 0, 0, NULL,
     {S_CLUSTER = KUSTO(A_AMD, PW_VT_JSON_OBJECT), S_DB = KUSTO(A_AMD, PW_VT_JSON_OBJECT),
      S_TABLE = KUSTO(A_AMD, PW_VT_JSON_OBJECT)}},
    {"encoding", "encoding", "column encoding", 0, 0, NULL,
     {S_DB = KUSTO(A_AMD, PW_VT_JSON_OBJECT), S_TABLE = KUSTO(A_AMD, PW_VT_JSON_OBJECT),
      S_COLUMN = KUSTO(A_AD, PW_VT_ENCODING_TYPE)}},
    {"roworder", "roworder", "row order within extents", 0, A_AM, NULL,
     {S_TABLE = KUSTO(A_AMD, PW_VT_ROWORDER)}},
    {"query_acceleration", "query_acceleration", "external table query acceleration", 0, 0, NULL,
     {S_EXT = KUSTO(A_AMD, PW_VT_JSON_OBJECT)}},
    {"mirroring", "mirroring", "table mirroring to parquet", 0, 0, NULL,
     {S_TABLE = KUSTO(A_AMD, PW_VT_JSON_OBJECT)}},
    {"managed_identity", "managed_identity", "managed identities and their usages", 1, 0, NULL,
     {S_CLUSTER = KUSTO(A_AMD, PW_VT_JSON_ARRAY), S_DB = KUSTO(A_AMD, PW_VT_JSON_ARRAY)}},
    {"callout", "callout", "allowed callouts", 1, 0, NULL,
     {S_CLUSTER = KUSTO(A_AMD, PW_VT_JSON_ARRAY)}},
    {"capacity", "capacity", "cluster capacity", 1, 0, NULL,
     {S_CLUSTER = KUSTO(A_AM, PW_VT_JSON_OBJECT)}},
    {"sandbox", "sandbox", "sandboxes for plugins", 1, 0, NULL,
     {S_CLUSTER = KUSTO(A_AD, PW_VT_JSON_ARRAY)}},
    {"request_classification", "request_classification", "workload group classification", 1,
     0, NULL, {S_CLUSTER = KUSTO(A_AMD, PW_VT_CLASSIFICATION)}},
    {"query_weak_consistency", "query_weak_consistency", "weakly consistent query heads", 1, 0,
     NULL, {S_CLUSTER = KUSTO(A_AM, PW_VT_JSON_OBJECT)}},
    {"workload_group", NULL, "a workload group (target.workloadGroup)", 1, 0, NULL,
     {S_CLUSTER = KUSTO(A_AMD, PW_VT_WORKLOAD_GROUP)}},
    {"principal.add", NULL, "add a principal to a role", 0, 0, NULL,
     {S_DB = ARM_OR_KUSTO(A_ALTER, PW_VT_PRINCIPAL_ADD, NULL),
      S_TABLE = KUSTO(A_ALTER, PW_VT_PRINCIPAL_ADD), S_MV = KUSTO(A_ALTER, PW_VT_PRINCIPAL_ADD)}},
    {"principal.remove", NULL, "remove a principal from a role", 0, 0, NULL,
     {S_DB = ARM_OR_KUSTO(A_ALTER, PW_VT_PRINCIPAL_REMOVE, NULL),
      S_TABLE = KUSTO(A_ALTER, PW_VT_PRINCIPAL_REMOVE),
      S_MV = KUSTO(A_ALTER, PW_VT_PRINCIPAL_REMOVE)}},
    {"principalAssignment", NULL, "an ARM principal assignment (desired state)", 0, 0, NULL,
     {S_CLUSTER = ARM_ONLY(A_AD, PW_VT_ASSIGNMENT), S_DB = ARM_ONLY(A_AD, PW_VT_ASSIGNMENT)}},
};
#define NROWS (sizeof ROWS / sizeof ROWS[0])

static const char *const SCOPE_NAMES[PW_SCOPE_COUNT] = {
    "cluster", "database", "table", "materialized-view", "column", "external-table"};
static const char *const ACTION_NAMES[PW_ACTION_COUNT] = {"alter", "merge", "delete"};
static const char *const VALUE_NAMES[PW_VT_COUNT] = {
    "json-object", "json-array", "boolean",        "caching",          "retention",
    "streaming",   "roworder",   "row-level-security", "encoding-type", "classification",
    "workload-group", "principal", "principal", "principal-assignment"};

size_t pw_ops_count(void)
{
    return NROWS;
}

const pw_ops_row *pw_ops_row_at(size_t i)
{
    return i < NROWS ? &ROWS[i] : NULL;
}

int pw_ops_lookup(const char *name, pw_kind *kind)
{
    if (!name) return -1;
    for (int s = 0; s < PW_SCOPE_COUNT; s++) {
        size_t n = strlen(SCOPE_NAMES[s]);
        if (strncmp(name, SCOPE_NAMES[s], n) != 0 || name[n] != '.') continue;
        for (size_t i = 0; i < NROWS; i++) {
            if (strcmp(name + n + 1, ROWS[i].policy) == 0 && ROWS[i].scopes[s].actions) {
                kind->row = &ROWS[i];
                kind->scope = (pw_scope)s;
                return 0;
            }
        }
    }
    return -1;
}

const char *pw_ops_kind_name(pw_kind kind, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s.%s", pw_ops_scope_name(kind.scope), kind.row->policy);
    if (n < 0 || (size_t)n >= len) {
        if (len) buf[0] = '\0';
    }
    return buf;
}

const char *pw_ops_scope_name(pw_scope scope)
{
    return (unsigned)scope < PW_SCOPE_COUNT ? SCOPE_NAMES[scope] : "unknown";
}

const char *pw_ops_action_name(pw_action action)
{
    return (unsigned)action < PW_ACTION_COUNT ? ACTION_NAMES[action] : "unknown";
}

const char *pw_ops_route_name(pw_route route)
{
    return route == PW_ROUTE_KUSTO ? "kusto" : "arm";
}

const char *pw_ops_value_name(pw_value_type vt)
{
    return (unsigned)vt < PW_VT_COUNT ? VALUE_NAMES[vt] : "unknown";
}

int pw_ops_action_from_name(const char *name, pw_action *action)
{
    for (int a = 0; name && a < PW_ACTION_COUNT; a++) {
        if (strcmp(name, ACTION_NAMES[a]) == 0) {
            *action = (pw_action)a;
            return 0;
        }
    }
    return -1;
}

const json_t *pw_ops_defaults(const pw_ops_row *row)
{
    static json_t *parsed[NROWS];
    size_t i = (size_t)(row - ROWS);
    if (!row->defaults || i >= NROWS) return NULL;
    if (!parsed[i]) parsed[i] = json_loads(row->defaults, 0, NULL); /* retried if out of memory */
    return parsed[i];
}

int pw_ops_privileged(pw_kind kind)
{
    return kind.row->privileged || kind.scope == PW_SCOPE_CLUSTER;
}

unsigned pw_ops_routes(pw_kind kind)
{
    unsigned r = pw_ops_at(kind)->routes;
    return r ? r : R_KUSTO;
}

static json_t *names_of(unsigned mask, const char *const *names, int count)
{
    json_t *a = json_array();
    for (int i = 0; a && i < count; i++)
        if (mask & (1u << i)) json_array_append_new(a, json_string(names[i]));
    return a;
}

json_t *pw_ops_json(void)
{
    static const char *const route_names[] = {"arm", "kusto"};
    json_t *out = json_array();
    for (size_t i = 0; out && i < NROWS; i++) {
        for (int s = 0; s < PW_SCOPE_COUNT; s++) {
            const pw_ops_scope *at = &ROWS[i].scopes[s];
            if (!at->actions) continue;
            pw_kind k = {&ROWS[i], (pw_scope)s};
            char name[PW_OPS_KIND_NAME_MAX];
            json_t *row = json_pack(
                "{s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:b, s:o, s:s}", "kind",
                pw_ops_kind_name(k, name, sizeof name), "scope", SCOPE_NAMES[s], "policy",
                ROWS[i].policy, "keyword",
                ROWS[i].keyword ? json_string(ROWS[i].keyword) : json_null(), "actions",
                names_of(at->actions, ACTION_NAMES, PW_ACTION_COUNT), "routes",
                names_of(pw_ops_routes(k), route_names, 2), "defaultRoute",
                pw_ops_route_name(at->routes ? at->default_route : PW_ROUTE_KUSTO), "value",
                VALUE_NAMES[at->value], "privileged", pw_ops_privileged(k), "multiTable",
                names_of(ROWS[i].multi_table & at->actions, ACTION_NAMES, PW_ACTION_COUNT),
                "title", ROWS[i].title);
            if (!row || json_array_append_new(out, row) != 0) {
                json_decref(out);
                return NULL;
            }
        }
    }
    return out;
}
