/* plan.c: per operation, the exact ARM requests or KQL commands, the expected value, the lane. */
#include "pw/plan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pw/duration.h"
#include "pw/kql.h"
#include "pw/status.h"
#include "pw/value.h"

#define DEFAULT_API_VERSION "2025-02-14"

struct pw_plan {
    char api_version[32];
    size_t count;
    pw_plan_op *ops;
};

/* The database segment as it goes into a path: a database name may hold spaces (%20);
 * everything else it may hold is unreserved in a path.  Writes at most cap bytes (when out
 * is not NULL) and returns the encoded length, not counting a terminator. */
static size_t encode_database(const char *db, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = db; *p; p++) {
        const char *piece = *p == ' ' ? "%20" : NULL;
        size_t len = piece ? 3 : 1;
        if (out && n + len < cap) memcpy(out + n, piece ? piece : p, len);
        n += len;
    }
    if (out && cap) out[n < cap ? n : cap - 1] = '\0';
    return n;
}

#define ARM_DATABASES_FMT                                                                          \
    "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Kusto/clusters/%s/databases/"

#define ARM_LIST_PRINCIPALS "/listPrincipals"     /* database principal kinds: read */
#define ARM_ADD_PRINCIPALS "/addPrincipals"       /* database.principal.add: apply */
#define ARM_REMOVE_PRINCIPALS "/removePrincipals" /* database.principal.remove: apply */
#define ARM_ASSIGNMENTS "/principalAssignments/"  /* + the assignment's name */

#define ARM_CLUSTER_FMT "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Kusto/clusters/%s"

static pw_value_type vtype(const pw_request_op *op)
{
    return pw_ops_at(op->kind)->value;
}

/* The ARM path of op: the cluster (cluster scope) or database, then suffix and name. */
static size_t arm_path_len(const pw_request_op *op, const char *suffix, const char *name)
{
    int head = op->kind.scope == PW_SCOPE_CLUSTER
                   ? snprintf(NULL, 0, ARM_CLUSTER_FMT, op->subscription_id, op->resource_group,
                              op->cluster)
                   : snprintf(NULL, 0, ARM_DATABASES_FMT, op->subscription_id, op->resource_group,
                              op->cluster);
    size_t n = (head < 0 ? 0 : (size_t)head) + strlen(suffix) + (name ? strlen(name) : 0);
    if (op->kind.scope != PW_SCOPE_CLUSTER) n += encode_database(op->database, NULL, 0);
    return n;
}

/* The suffixes each ARM value type's calls append to the resource path. */
static void arm_suffixes(const pw_request_op *op, const char **read, const char **apply,
                         const char **name)
{
    *name = NULL;
    switch (vtype(op)) {
    case PW_VT_PRINCIPAL_ADD:
        *read = ARM_LIST_PRINCIPALS;
        *apply = ARM_ADD_PRINCIPALS;
        return;
    case PW_VT_PRINCIPAL_REMOVE:
        *read = ARM_LIST_PRINCIPALS;
        *apply = ARM_REMOVE_PRINCIPALS;
        return;
    case PW_VT_ASSIGNMENT:
        *read = *apply = ARM_ASSIGNMENTS;
        *name = op->assignment;
        return;
    default:
        *read = *apply = "";
        return;
    }
}

size_t pw_plan_arm_path_len(const pw_request_op *op)
{
    if (op->route != PW_ROUTE_ARM || !op->subscription_id || !op->resource_group || !op->cluster ||
        (op->kind.scope != PW_SCOPE_CLUSTER && !op->database))
        return 0;
    const char *read, *apply, *name;
    arm_suffixes(op, &read, &apply, &name);
    if (vtype(op) == PW_VT_ASSIGNMENT && !name) return 0;
    size_t r = arm_path_len(op, read, name), w = arm_path_len(op, apply, name);
    return r > w ? r : w;
}

/* NULL when out of memory or past PW_PLAN_ARM_PATH_MAX (validation refuses such names). */
static char *arm_path(const pw_request_op *op, const char *suffix, const char *name)
{
    size_t need = arm_path_len(op, suffix, name);
    if (need > PW_PLAN_ARM_PATH_MAX) return NULL;
    char *path = malloc(need + 1);
    if (!path) return NULL;
    int head = op->kind.scope == PW_SCOPE_CLUSTER
                   ? snprintf(path, need + 1, ARM_CLUSTER_FMT, op->subscription_id,
                              op->resource_group, op->cluster)
                   : snprintf(path, need + 1, ARM_DATABASES_FMT, op->subscription_id,
                              op->resource_group, op->cluster);
    size_t n = head < 0 ? 0 : (size_t)head;
    if (op->kind.scope != PW_SCOPE_CLUSTER)
        n += encode_database(op->database, path + n, need + 1 - n);
    snprintf(path + n, need + 1 - n, "%s%s", suffix, name ? name : "");
    return path;
}

char *pw_plan_arm_databases_path(const char *subscription_id, const char *resource_group,
                                 const char *cluster)
{
    char *path = NULL;
    if (asprintf(&path, ARM_CLUSTER_FMT "/databases", subscription_id, resource_group, cluster) < 0)
        return NULL;
    return path;
}

/* The lane of the entity op changes: "<cluster>" (cluster scope), "<cluster>/<db>",
 * "<cluster>/<db>/<table>", ".../<table>/column:<C>", ".../materialized-view:<V>",
 * ".../external-table:<E>", "<cluster>/workload_group:<G>".  Cluster and database names
 * are case-insensitive (lower-cased); the others are not.  ':' occurs in no name, so no
 * two entities share a key. */
char *pw_plan_lane_key(const pw_request_op *op)
{
    const char *db = op->database ? op->database : "";
    size_t need = strlen(op->cluster) + strlen(db) + (op->table ? strlen(op->table) : 0) +
                  (op->entity ? strlen(op->entity) : 0) + (op->column ? strlen(op->column) : 0) +
                  48;
    char *key = malloc(need);
    if (!key) return NULL;
    size_t upto = strlen(op->cluster) + (op->database ? 1 + strlen(db) : 0);
    switch (op->kind.scope) {
    case PW_SCOPE_CLUSTER:
        if (vtype(op) == PW_VT_WORKLOAD_GROUP)
            snprintf(key, need, "%s/workload_group:%s", op->cluster, op->entity);
        else
            snprintf(key, need, "%s", op->cluster);
        break;
    case PW_SCOPE_DATABASE:
        snprintf(key, need, "%s/%s", op->cluster, db);
        break;
    case PW_SCOPE_TABLE:
        snprintf(key, need, "%s/%s/%s", op->cluster, db, op->table);
        break;
    case PW_SCOPE_COLUMN:
        snprintf(key, need, "%s/%s/%s/column:%s", op->cluster, db, op->table, op->column);
        break;
    case PW_SCOPE_MATERIALIZED_VIEW:
        snprintf(key, need, "%s/%s/materialized-view:%s", op->cluster, db, op->entity);
        break;
    default:
        snprintf(key, need, "%s/%s/external-table:%s", op->cluster, db, op->entity);
        break;
    }
    for (size_t i = 0; i < upto && key[i]; i++)
        key[i] = (char)tolower((unsigned char)key[i]);
    return key;
}

/* The principal as sent to addPrincipals: only the fields the request gave. */
static json_t *principal_body(const json_t *principal)
{
    static const char *const fields[] = {"role",  "name", "type",      "appId",
                                         "email", "fqn",  "tenantName"};
    json_t *p = json_object();
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        json_t *v = json_object_get(principal, fields[i]);
        if (json_is_string(v)) json_object_set_new(p, fields[i], json_string(json_string_value(v)));
    }
    return p;
}

/* The assignment's properties as the request gives them (a PUT body's "properties"). */
static json_t *assignment_properties(const json_t *assignment)
{
    static const char *const fields[] = {"principalId", "principalType", "role", "tenantId"};
    json_t *p = json_object();
    for (size_t i = 0; p && i < sizeof fields / sizeof *fields; i++) {
        json_t *v = json_object_get(assignment, fields[i]);
        if (json_is_string(v)) json_object_set_new(p, fields[i], json_string(json_string_value(v)));
    }
    return p;
}

static int build_arm(pw_plan_op *pop, const pw_request_op *op)
{
    const char *read, *apply, *name;
    arm_suffixes(op, &read, &apply, &name);
    pop->read.path = arm_path(op, read, name);
    pop->apply.path = arm_path(op, apply, name);
    switch (vtype(op)) {
    case PW_VT_PRINCIPAL_ADD:
    case PW_VT_PRINCIPAL_REMOVE:
        pop->read.method = "POST";
        pop->apply.method = "POST";
        pop->apply.body = json_pack("{s:[o]}", "value", principal_body(op->principal));
        /* addPrincipals and removePrincipals answer with the database's principals: after
         * comes from that answer, no listPrincipals again */
        return pop->apply.body ? 0 : -1;
    case PW_VT_ASSIGNMENT:
        pop->read.method = "GET";
        pop->read_absent_ok = 1;
        pop->after_from_reread = 1;
        if (op->action == PW_ACTION_DELETE) {
            pop->apply.method = "DELETE";
            return 0;
        }
        pop->apply.method = "PUT";
        pop->apply.body = json_pack("{s:o}", "properties",
                                    assignment_properties(json_object_get(op->json, "assignment")));
        return pop->apply.body ? 0 : -1;
    default: {
        /* a database property (softDeletePeriod, hotCachePeriod): PATCH changes only it */
        const char *prop = pw_ops_at(op->kind)->arm_property;
        char iso[64];
        if (!prop || op->kind.scope != PW_SCOPE_DATABASE || op->action == PW_ACTION_DELETE ||
            pw_duration_format_iso(op->period_ticks, iso, sizeof iso) != 0)
            return -1;
        pop->read.method = "GET";
        pop->apply.method = "PATCH";
        pop->apply.body = json_pack("{s:s, s:{s:s}}", "kind", "ReadWrite", "properties", prop, iso);
        /* the database resource is also an entry of its cluster's database list */
        pop->read_list =
            pw_plan_arm_databases_path(op->subscription_id, op->resource_group, op->cluster);
        return pop->apply.body && pop->read_list ? 0 : -1;
    }
    }
}

static const char *policy_verb(const pw_request_op *op)
{
    if (op->action == PW_ACTION_DELETE) return ".delete";
    /* retention's property form exists only as a merge (it sets what it names) */
    if (op->action == PW_ACTION_MERGE || vtype(op) == PW_VT_RETENTION) return ".alter-merge";
    return ".alter";
}

static int build_kusto(pw_plan_op *pop, const pw_request_op *op)
{
    pop->read.cluster_uri = pop->apply.cluster_uri = op->cluster_uri;
    pop->read.database = pop->apply.database = op->database;
    pw_value_type vt = vtype(op);
    char *value = NULL;
    if (op->action != PW_ACTION_DELETE && vt != PW_VT_PRINCIPAL_ADD &&
        vt != PW_VT_PRINCIPAL_REMOVE && !(value = pw_value_kql(op)))
        return -1;
    if (vt == PW_VT_WORKLOAD_GROUP) {
        static const char *const verbs[] = {".create-or-alter", ".alter-merge", ".drop"};
        pop->read.command = pw_kql_workload_group(".show", op->entity, NULL);
        pop->apply.command = pw_kql_workload_group(verbs[op->action], op->entity, value);
        pop->after_from_reread = 1; /* .drop answers with the groups left */
        free(value);
        return pop->read.command && pop->apply.command ? 0 : -1;
    }
    char *entity = pw_kql_entity(op->kind.scope, op->database, op->table, op->entity, op->column);
    if (!entity) {
        free(value);
        return -1;
    }
    if (vt == PW_VT_PRINCIPAL_ADD || vt == PW_VT_PRINCIPAL_REMOVE) {
        const char *role = json_string_value(json_object_get(op->principal, "role"));
        pop->read.command = pw_kql_show_principals(entity);
        pop->apply.command = pw_kql_principal_change(vt == PW_VT_PRINCIPAL_ADD ? ".add" : ".drop",
                                                     entity, role, op->principal_fqn);
        /* .add and .drop answer with the entity's principals: after comes from the answer */
    } else {
        const char *kw = op->kind.row->keyword;
        pop->read.command = pw_kql_policy_command(".show", entity, kw, NULL);
        pop->apply.command = pw_kql_policy_command(policy_verb(op), entity, kw, value);
        pop->after_from_reread = op->action == PW_ACTION_DELETE;
    }
    free(entity);
    free(value);
    return pop->read.command && pop->apply.command ? 0 : -1;
}

char *pw_plan_merge_missing(const pw_plan_op *pop, const json_t *before)
{
    const pw_request_op *op = pop->op;
    if (op->route != PW_ROUTE_KUSTO) return NULL;
    json_t *missing = pw_value_entries_missing(op, pop->desired, before);
    if (!missing) return NULL;
    char *value = pw_value_json_literal(missing);
    char *entity = pw_kql_entity(op->kind.scope, op->database, op->table, op->entity, op->column);
    char *cmd = value && entity
                    ? pw_kql_policy_command(".alter-merge", entity, op->kind.row->keyword, value)
                    : NULL;
    free(value);
    free(entity);
    json_decref(missing);
    return cmd;
}

char *pw_plan_coalesce_key(const pw_plan_op *pop)
{
    const pw_request_op *op = pop->op;
    if (op->route != PW_ROUTE_KUSTO || op->kind.scope != PW_SCOPE_TABLE ||
        !(op->kind.row->multi_table & PW_ACTION_BIT(op->action)))
        return NULL;
    char *value = pw_value_kql(op);
    if (!value) return NULL;
    size_t need = strlen(op->cluster_uri) + strlen(op->database) + strlen(value) +
                  strlen(op->kind.row->keyword) + 24;
    char *key = malloc(need);
    if (key)
        snprintf(key, need, "%s\n%s\n%s\n%s\n%s", op->cluster_uri, op->database, policy_verb(op),
                 op->kind.row->keyword, value);
    free(value);
    return key;
}

char *pw_plan_tables_command(const pw_plan_op *pop, const char *const *tables, size_t n)
{
    const pw_request_op *op = pop->op;
    char *value = pw_value_kql(op);
    char *entity = pw_kql_tables_entity(tables, n);
    char *cmd = value && entity
                    ? pw_kql_policy_command(policy_verb(op), entity, op->kind.row->keyword, value)
                    : NULL;
    free(value);
    free(entity);
    return cmd;
}

static int build_op(pw_plan_op *pop, const pw_request_op *op)
{
    pop->op = op;
    pop->lane = pw_plan_lane_key(op);
    pop->read.route = pop->apply.route = op->route;
    pop->desired = pw_value_desired(op);
    if (!pop->lane || !pop->desired) return -1;
    if (op->route == PW_ROUTE_ARM) {
        if (build_arm(pop, op) != 0) return -1;
        return pop->read.path && pop->apply.path ? 0 : -1;
    }
    return build_kusto(pop, op);
}

static void call_clear(pw_plan_call *c)
{
    free(c->path);
    json_decref(c->body);
    free(c->command);
}

pw_plan *pw_plan_new(const pw_request *req, const char *api_version, char *err, size_t errlen)
{
    pw_plan *plan = calloc(1, sizeof *plan);
    if (!plan) goto oom;
    snprintf(plan->api_version, sizeof plan->api_version, "%s",
             api_version && *api_version ? api_version : DEFAULT_API_VERSION);
    plan->count = pw_request_op_count(req);
    plan->ops = calloc(plan->count ? plan->count : 1, sizeof *plan->ops);
    if (!plan->ops) goto oom;
    for (size_t i = 0; i < plan->count; i++)
        if (build_op(&plan->ops[i], pw_request_op_at(req, i)) != 0) goto oom;
    return plan;
oom:
    pw_err_set(err, errlen, "out of memory (or an unplannable operation) while planning");
    pw_plan_free(plan);
    return NULL;
}

void pw_plan_free(pw_plan *plan)
{
    if (!plan) return;
    for (size_t i = 0; plan->ops && i < plan->count; i++) {
        call_clear(&plan->ops[i].read);
        call_clear(&plan->ops[i].apply);
        json_decref(plan->ops[i].desired);
        free(plan->ops[i].lane);
        free(plan->ops[i].read_list);
    }
    free(plan->ops);
    free(plan);
}

size_t pw_plan_count(const pw_plan *plan)
{
    return plan->count;
}

const pw_plan_op *pw_plan_op_at(const pw_plan *plan, size_t i)
{
    return i < plan->count ? &plan->ops[i] : NULL;
}

const json_t *pw_plan_list_entry(const pw_plan_op *pop, const json_t *page)
{
    const char *cluster = pop->op->cluster, *db = pop->op->database;
    size_t cl = cluster ? strlen(cluster) : 0, i;
    const json_t *entry;
    if (!cluster || !db) return NULL;
    json_array_foreach(json_object_get(page, "value"), i, entry)
    {
        const char *name = json_string_value(json_object_get(entry, "name"));
        if (name && strncasecmp(name, cluster, cl) == 0 && name[cl] == '/' &&
            strcasecmp(name + cl + 1, db) == 0)
            return entry;
    }
    return NULL;
}

const char *pw_plan_api_version(const pw_plan *plan)
{
    return plan->api_version;
}

static int ieq(const json_t *a, const json_t *b)
{
    const char *x = json_string_value(a), *y = json_string_value(b);
    return x && y && strcasecmp(x, y) == 0;
}

static int nonempty(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
}

/* Does an FQN "<prefix>=<id>[;<tenant>]" name id (case-insensitively)? */
static int fqn_names(const char *fqn, const char *prefix, const char *id)
{
    char want[300];
    if (!fqn || !id) return 0;
    snprintf(want, sizeof want, "%s=%s", prefix, id);
    size_t n = strlen(want);
    return strncasecmp(fqn, want, n) == 0 && (fqn[n] == '\0' || fqn[n] == ';');
}

/* Is `have` (an ARM DatabasePrincipal) the principal `want` asks for?  Kusto reports
 * resolved forms (aadapp=<appId>;<tenant>), so ids are compared, case-insensitively. */
static int principal_matches(const json_t *want, const json_t *have)
{
    if (!ieq(json_object_get(want, "role"), json_object_get(have, "role"))) return 0;
    const char *have_fqn = json_string_value(json_object_get(have, "fqn"));
    const json_t *app = json_object_get(want, "appId");
    if (nonempty(app))
        return ieq(app, json_object_get(have, "appId")) ||
               fqn_names(have_fqn, "aadapp", json_string_value(app));
    const json_t *fqn = json_object_get(want, "fqn");
    if (nonempty(fqn)) return ieq(fqn, json_object_get(have, "fqn"));
    const json_t *email = json_object_get(want, "email");
    if (nonempty(email))
        return ieq(email, json_object_get(have, "email")) ||
               fqn_names(have_fqn, "aaduser", json_string_value(email)) ||
               fqn_names(have_fqn, "aadgroup", json_string_value(email));
    return ieq(json_object_get(want, "name"), json_object_get(have, "name")) &&
           ieq(json_object_get(want, "type"), json_object_get(have, "type"));
}

static int fail(char *err, size_t errlen, const char *msg)
{
    pw_err_set(err, errlen, "%s", msg);
    return -1;
}

/* The principal the operation asks for, from an ARM-shaped list {"value": [...]}. */
static int principal_value(const pw_request_op *op, const json_t *answer, json_t **value, char *err,
                           size_t errlen)
{
    const json_t *list = json_object_get(answer, "value");
    if (!json_is_array(list)) return fail(err, errlen, "the principal list has no value array");
    size_t i;
    const json_t *have;
    json_array_foreach(list, i, have)
    {
        if (principal_matches(op->principal, have)) {
            *value = json_pack("{s:O}", "principal", have);
            return *value ? 0 : fail(err, errlen, "out of memory");
        }
    }
    *value = json_pack("{s:n}", "principal");
    return *value ? 0 : fail(err, errlen, "out of memory");
}

/* The assignment as the request names it, from an ARM principalAssignment resource. */
static int assignment_value(const json_t *answer, json_t **value, char *err, size_t errlen)
{
    const json_t *props = json_object_get(answer, "properties");
    if (!answer) {
        *value = json_pack("{s:n}", "assignment");
    } else if (!json_is_object(props)) {
        return fail(err, errlen, "the principal assignment has no properties");
    } else {
        *value = json_pack("{s:o}", "assignment", assignment_properties(props));
    }
    return *value ? 0 : fail(err, errlen, "out of memory");
}

/* A database property (softDeletePeriod, hotCachePeriod) from the ARM database resource. */
static int arm_property_value(const pw_request_op *op, const json_t *answer, json_t **value,
                              char *err, size_t errlen)
{
    const char *prop = pw_ops_at(op->kind)->arm_property;
    const json_t *props = json_object_get(answer, "properties");
    if (!prop) return fail(err, errlen, "no ARM property for this kind");
    if (!json_is_object(props)) return fail(err, errlen, "the database resource has no properties");
    const json_t *v = json_object_get(props, prop);
    int64_t ticks;
    char iso[64];
    if (!v || json_is_null(v))
        *value = json_pack("{s:n}", prop);
    else if (json_is_string(v) &&
             pw_duration_parse_iso(json_string_value(v), &ticks, NULL, 0) == PW_OK &&
             pw_duration_format_iso(ticks, iso, sizeof iso) == 0)
        *value = json_pack("{s:s}", prop, iso);
    else if (json_is_string(v)) /* e.g. P1Y from elsewhere: reported as ARM gave it */
        *value = json_pack("{s:O}", prop, v);
    else
        return fail(err, errlen, "the database resource's period is not a string");
    return *value ? 0 : fail(err, errlen, "out of memory");
}

int pw_plan_value(const pw_plan_op *pop, const json_t *answer, json_t **value, char *err,
                  size_t errlen)
{
    const pw_request_op *op = pop->op;
    pw_value_type vt = vtype(op);
    *value = NULL;
    if (vt == PW_VT_PRINCIPAL_ADD || vt == PW_VT_PRINCIPAL_REMOVE) {
        json_t *converted = NULL;
        if (op->route == PW_ROUTE_KUSTO) {
            converted = pw_kql_parse_principals(answer, err, errlen);
            if (!converted) return -1;
            answer = converted;
        }
        int rc = principal_value(op, answer, value, err, errlen);
        json_decref(converted);
        return rc;
    }
    if (vt == PW_VT_ASSIGNMENT) return assignment_value(answer, value, err, errlen);
    if (op->route == PW_ROUTE_ARM) return arm_property_value(op, answer, value, err, errlen);
    json_t *doc = NULL;
    int rc = vt == PW_VT_WORKLOAD_GROUP ? pw_kql_parse_workload_group(answer, &doc, err, errlen)
                                        : pw_kql_parse_policy(answer, &doc, err, errlen);
    if (rc == 0) rc = pw_value_from_policy(op, doc, value, err, errlen);
    json_decref(doc);
    return rc;
}
