/* plan.c: per operation, the exact ARM requests or KQL commands, the expected value, the lane. */
#include "pw/plan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pw/duration.h"
#include "pw/kql.h"

#define DEFAULT_API_VERSION "2025-02-14"

struct pw_plan {
    char api_version[32];
    size_t count;
    pw_plan_op *ops;
};

static int is_retention(pw_op_kind k)
{
    return k == PW_OP_DATABASE_RETENTION || k == PW_OP_TABLE_RETENTION;
}

static const char *period_field(pw_op_kind k)
{
    return is_retention(k) ? "softDeletePeriod" : "hotCachePeriod";
}

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

#define ARM_LIST_PRINCIPALS "/listPrincipals" /* database.principal.add: read */
#define ARM_ADD_PRINCIPALS "/addPrincipals"   /* database.principal.add: apply */

static size_t database_path_len(const pw_request_op *op, const char *suffix)
{
    int head =
        snprintf(NULL, 0, ARM_DATABASES_FMT, op->subscription_id, op->resource_group, op->cluster);
    return (head < 0 ? 0 : (size_t)head) + encode_database(op->database, NULL, 0) + strlen(suffix);
}

size_t pw_plan_arm_path_len(const pw_request_op *op)
{
    if (op->route != PW_ROUTE_ARM || !op->subscription_id || !op->resource_group || !op->cluster ||
        !op->database)
        return 0;
    if (op->kind != PW_OP_DATABASE_PRINCIPAL_ADD) return database_path_len(op, "");
    size_t list = database_path_len(op, ARM_LIST_PRINCIPALS);
    size_t add = database_path_len(op, ARM_ADD_PRINCIPALS);
    return list > add ? list : add;
}

/* NULL when out of memory or past PW_PLAN_ARM_PATH_MAX (validation refuses such names). */
static char *database_path(const pw_request_op *op, const char *suffix)
{
    size_t need = database_path_len(op, suffix);
    if (need > PW_PLAN_ARM_PATH_MAX) return NULL;
    char *path = malloc(need + 1);
    if (!path) return NULL;
    int head = snprintf(path, need + 1, ARM_DATABASES_FMT, op->subscription_id, op->resource_group,
                        op->cluster);
    size_t n = head < 0 ? 0 : (size_t)head;
    n += encode_database(op->database, path + n, need + 1 - n);
    snprintf(path + n, need + 1 - n, "%s", suffix);
    return path;
}

static char *lane_key(const pw_request_op *op)
{
    size_t need =
        strlen(op->cluster) + strlen(op->database) + (op->table ? strlen(op->table) : 0) + 4;
    char *key = malloc(need);
    if (!key) return NULL;
    snprintf(key, need, "%s/%s%s%s", op->cluster, op->database, op->table ? "/" : "",
             op->table ? op->table : "");
    /* cluster and database names are case-insensitive; table names are not */
    size_t upto = strlen(op->cluster) + 1 + strlen(op->database);
    for (size_t i = 0; i < upto; i++)
        key[i] = (char)tolower((unsigned char)key[i]);
    return key;
}

static json_t *period_value(pw_op_kind kind, int is_set, int64_t ticks)
{
    char iso[64];
    if (!is_set || pw_duration_format_iso(ticks, iso, sizeof iso) != 0)
        return json_pack("{s:n}", period_field(kind));
    return json_pack("{s:s}", period_field(kind), iso);
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

static int build_op(pw_plan_op *pop, const pw_request_op *op)
{
    pop->op = op;
    pop->lane = lane_key(op);
    pop->read.route = pop->apply.route = op->route;
    if (op->kind == PW_OP_DATABASE_PRINCIPAL_ADD && op->route == PW_ROUTE_KUSTO) {
        const char *role = json_string_value(json_object_get(op->principal, "role"));
        pop->read.cluster_uri = pop->apply.cluster_uri = op->cluster_uri;
        pop->read.database = pop->apply.database = op->database;
        pop->read.command = pw_kql_show_principals(op->database);
        pop->apply.command = pw_kql_add_principal(op->database, role, op->principal_fqn);
        json_t *p = principal_body(op->principal);
        if (p) json_object_set_new(p, "fqn", json_string(op->principal_fqn));
        pop->planned = json_pack("{s:o}", "principal", p);
        /* .add answers with the database's principals: after comes from the answer */
        return pop->lane && pop->read.command && pop->apply.command && pop->planned ? 0 : -1;
    }
    if (op->kind == PW_OP_DATABASE_PRINCIPAL_ADD) {
        pop->read.method = "POST";
        pop->read.path = database_path(op, ARM_LIST_PRINCIPALS);
        pop->apply.method = "POST";
        pop->apply.path = database_path(op, ARM_ADD_PRINCIPALS);
        json_t *p = principal_body(op->principal);
        pop->apply.body = json_pack("{s:[o]}", "value", p);
        pop->planned = json_pack("{s:O}", "principal", p);
        pop->after_from_reread = 1;
        return pop->lane && pop->read.path && pop->apply.path && pop->apply.body && pop->planned
                   ? 0
                   : -1;
    }
    pop->planned = period_value(op->kind, 1, op->period_ticks);
    if (op->route == PW_ROUTE_ARM && op->table) return -1; /* would change the database */
    if (op->route == PW_ROUTE_ARM) {
        char iso[64];
        if (pw_duration_format_iso(op->period_ticks, iso, sizeof iso) != 0) return -1;
        pop->read.method = "GET";
        pop->read.path = database_path(op, "");
        pop->apply.method = "PATCH";
        pop->apply.path = database_path(op, "");
        pop->apply.body = json_pack("{s:s, s:{s:s}}", "kind", "ReadWrite", "properties",
                                    period_field(op->kind), iso);
        return pop->lane && pop->read.path && pop->apply.path && pop->apply.body && pop->planned
                   ? 0
                   : -1;
    }
    pw_kql_policy policy = is_retention(op->kind) ? PW_KQL_RETENTION : PW_KQL_CACHING;
    pop->read.cluster_uri = pop->apply.cluster_uri = op->cluster_uri;
    pop->read.database = pop->apply.database = op->database;
    pop->read.command = pw_kql_show(policy, op->database, op->table);
    pop->apply.command = pw_kql_alter(policy, op->database, op->table, op->period_ticks);
    return pop->lane && pop->read.command && pop->apply.command && pop->planned ? 0 : -1;
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
        json_decref(plan->ops[i].planned);
        free(plan->ops[i].lane);
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

int pw_plan_value(const pw_plan_op *pop, const json_t *answer, json_t **value, char *err,
                  size_t errlen)
{
    const pw_request_op *op = pop->op;
    *value = NULL;
    if (op->kind == PW_OP_DATABASE_PRINCIPAL_ADD) {
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
    if (op->route == PW_ROUTE_ARM) {
        const json_t *props = json_object_get(answer, "properties");
        if (!json_is_object(props))
            return fail(err, errlen, "the database resource has no properties");
        const json_t *v = json_object_get(props, period_field(op->kind));
        int64_t ticks;
        if (!v || json_is_null(v))
            *value = period_value(op->kind, 0, 0);
        else if (json_is_string(v) &&
                 pw_duration_parse_iso(json_string_value(v), &ticks, NULL, 0) == PW_OK)
            *value = period_value(op->kind, 1, ticks);
        else if (json_is_string(v)) /* e.g. P1Y from elsewhere: reported as ARM gave it */
            *value = json_pack("{s:O}", period_field(op->kind), v);
        else
            return fail(err, errlen, "the database resource's period is not a string");
        return *value ? 0 : fail(err, errlen, "out of memory");
    }
    int is_set = 0;
    int64_t ticks = 0;
    if (pw_kql_parse_policy(answer, is_retention(op->kind) ? PW_KQL_RETENTION : PW_KQL_CACHING,
                            &is_set, &ticks, err, errlen) != 0)
        return -1;
    *value = period_value(op->kind, is_set, ticks);
    return *value ? 0 : fail(err, errlen, "out of memory");
}
