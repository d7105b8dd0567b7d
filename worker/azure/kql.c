/* kql.c: builds the policy commands (bracket-quoted names, exact timespans) and reads answers. */
#include "pw/kql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/duration.h"
#include "pw/names.h"
#include "pw/status.h"

int pw_kql_quote_name(const char *name, char *buf, size_t len)
{
    if (pw_names_kusto_entity(name, NULL, 0) != PW_OK) return -1;
    int n = snprintf(buf, len, "['%s']", name);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

char *pw_kql_entity(pw_scope scope, const char *database, const char *table, const char *entity,
                    const char *column)
{
    char q1[1100], q2[1100];
    const char *head = NULL, *first = NULL;
    switch (scope) {
    case PW_SCOPE_CLUSTER:
        return strdup("cluster");
    case PW_SCOPE_DATABASE:
        head = "database ";
        first = database;
        break;
    case PW_SCOPE_TABLE:
    case PW_SCOPE_COLUMN:
        head = scope == PW_SCOPE_TABLE ? "table " : "column ";
        first = table;
        break;
    case PW_SCOPE_MATERIALIZED_VIEW:
        head = "materialized-view ";
        first = entity;
        break;
    case PW_SCOPE_EXTERNAL_TABLE:
        head = "external table ";
        first = entity;
        break;
    default:
        return NULL;
    }
    if (pw_kql_quote_name(first, q1, sizeof q1) != 0) return NULL;
    if (scope != PW_SCOPE_DATABASE && database && pw_names_kusto_entity(database, NULL, 0) != PW_OK)
        return NULL;
    q2[0] = '\0';
    if (scope == PW_SCOPE_COLUMN) {
        q2[0] = '.';
        if (pw_kql_quote_name(column, q2 + 1, sizeof q2 - 1) != 0) return NULL;
    }
    size_t need = strlen(head) + strlen(q1) + strlen(q2) + 1;
    char *out = malloc(need);
    if (out) snprintf(out, need, "%s%s%s", head, q1, q2);
    return out;
}

char *pw_kql_tables_entity(const char *const *tables, size_t n)
{
    size_t cap = 16, len;
    for (size_t i = 0; i < n; i++)
        cap += strlen(tables[i]) + 6;
    char *out = malloc(cap);
    if (!out || !n) {
        free(out);
        return NULL;
    }
    len = (size_t)snprintf(out, cap, "tables (");
    for (size_t i = 0; i < n; i++) {
        char q[1100];
        if (pw_kql_quote_name(tables[i], q, sizeof q) != 0) {
            free(out);
            return NULL;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "", q);
    }
    snprintf(out + len, cap - len, ")");
    return out;
}

char *pw_kql_policy_command(const char *verb, const char *entity, const char *keyword,
                            const char *value)
{
    if (!verb || !entity || !keyword) return NULL;
    size_t need = strlen(verb) + strlen(entity) + strlen(keyword) + (value ? strlen(value) : 0) + 16;
    char *out = malloc(need);
    if (out)
        snprintf(out, need, "%s %s policy %s%s%s", verb, entity, keyword, value ? " " : "",
                 value ? value : "");
    return out;
}

char *pw_kql_workload_group(const char *verb, const char *name, const char *value)
{
    char quoted[1100];
    if (!verb || pw_kql_quote_name(name, quoted, sizeof quoted) != 0) return NULL;
    size_t need = strlen(verb) + strlen(quoted) + (value ? strlen(value) : 0) + 24;
    char *out = malloc(need);
    if (out)
        snprintf(out, need, "%s workload_group %s%s%s", verb, quoted, value ? " " : "",
                 value ? value : "");
    return out;
}

static long column_index(const json_t *columns, const char *name)
{
    size_t i;
    const json_t *c;
    json_array_foreach(columns, i, c)
    {
        const char *n = json_string_value(json_object_get(c, "ColumnName"));
        if (n && strcmp(n, name) == 0) return (long)i;
    }
    return -1;
}

static int failf(char *err, size_t errlen, const char *msg)
{
    pw_err_set(err, errlen, "%s", msg);
    return -1;
}

/* The first row's cell of the named column of a v1 answer's first table; *row_found = 0
 * when the table has no row. */
static int first_cell(const json_t *v1, const char *name, const json_t **cell, int *row_found,
                      char *err, size_t errlen)
{
    const json_t *table = json_array_get(json_object_get(v1, "Tables"), 0);
    const json_t *columns = json_object_get(table, "Columns");
    const json_t *rows = json_object_get(table, "Rows");
    if (!json_is_array(columns) || !json_is_array(rows))
        return failf(err, errlen, "the answer has no result table");
    long col = column_index(columns, name);
    if (col < 0) {
        pw_err_set(err, errlen, "the answer has no %s column", name);
        return -1;
    }
    const json_t *row = json_array_get(rows, 0);
    *row_found = row != NULL;
    *cell = NULL;
    if (!row) return 0;
    if (!json_is_array(row)) return failf(err, errlen, "the answer's row is not an array");
    *cell = json_array_get(row, (size_t)col);
    return 0;
}

json_t *pw_kql_parse_column(const json_t *v1, const char *column, size_t max, char *err,
                            size_t errlen)
{
    const json_t *table = json_array_get(json_object_get(v1, "Tables"), 0);
    const json_t *rows = json_object_get(table, "Rows");
    long col = column_index(json_object_get(table, "Columns"), column);
    if (!json_is_array(rows) || col < 0) {
        pw_err_set(err, errlen, "the answer has no result table with a %s column", column);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (!out || i > max) break;
        const json_t *cell = json_array_get(row, (size_t)col);
        if (!json_is_string(cell)) {
            pw_err_set(err, errlen, "row %zu of the answer has no %s string", i, column);
            json_decref(out);
            return NULL;
        }
        if (json_array_append(out, (json_t *)cell) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    if (!out) pw_err_set(err, errlen, "out of memory");
    return out;
}

/* A cell holding JSON text (or JSON already): *doc a new reference, NULL for null. */
static int cell_json(const json_t *cell, json_t **doc, char *err, size_t errlen)
{
    *doc = NULL;
    if (!cell || json_is_null(cell)) return 0;
    if (!json_is_string(cell)) {
        *doc = json_incref((json_t *)cell);
        return 0;
    }
    const char *text = json_string_value(cell);
    if (!*text || strcmp(text, "null") == 0) return 0;
    *doc = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!*doc) return failf(err, errlen, "the policy cell is not JSON");
    if (json_is_null(*doc)) {
        json_decref(*doc);
        *doc = NULL;
    }
    return 0;
}

int pw_kql_parse_policy(const json_t *v1, json_t **policy, char *err, size_t errlen)
{
    const json_t *cell;
    int row;
    *policy = NULL;
    if (first_cell(v1, "Policy", &cell, &row, err, errlen) != 0) return -1;
    if (!row) return failf(err, errlen, "the answer has no row");
    return cell_json(cell, policy, err, errlen);
}

int pw_kql_parse_policy_for(const json_t *v1, const char *table, json_t **policy, char *err,
                            size_t errlen)
{
    const json_t *t = json_array_get(json_object_get(v1, "Tables"), 0);
    const json_t *columns = json_object_get(t, "Columns");
    const json_t *rows = json_object_get(t, "Rows");
    long c_name = column_index(columns, "EntityName"), c_policy = column_index(columns, "Policy");
    *policy = NULL;
    if (!json_is_array(rows) || c_name < 0 || c_policy < 0)
        return failf(err, errlen, "the answer is not a policy table");
    char want[1100];
    snprintf(want, sizeof want, "[%s]", table);
    size_t i, wl = strlen(want);
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *name = json_string_value(json_array_get(row, (size_t)c_name));
        size_t nl = name ? strlen(name) : 0;
        if (name && nl >= wl && strcmp(name + nl - wl, want) == 0 &&
            (nl == wl || name[nl - wl - 1] == '.'))
            return cell_json(json_array_get(row, (size_t)c_policy), policy, err, errlen);
    }
    pw_err_set(err, errlen, "the answer has no row for table %.64s", table);
    return -1;
}

int pw_kql_parse_workload_group(const json_t *v1, json_t **group, char *err, size_t errlen)
{
    const json_t *cell;
    int row;
    *group = NULL;
    if (first_cell(v1, "WorkloadGroup", &cell, &row, err, errlen) != 0) return -1;
    return row ? cell_json(cell, group, err, errlen) : 0;
}

char *pw_kql_show_principals(const char *entity)
{
    if (!entity) return NULL;
    size_t need = strlen(entity) + 24;
    char *out = malloc(need);
    if (out) snprintf(out, need, ".show %s principals", entity);
    return out;
}

static const struct {
    const char *arm, *kusto;
} role_map[] = {{"Admin", "admins"},
                {"Ingestor", "ingestors"},
                {"Monitor", "monitors"},
                {"User", "users"},
                {"UnrestrictedViewer", "unrestrictedviewers"},
                {"Viewer", "viewers"}};

char *pw_kql_principal_change(const char *verb, const char *entity, const char *role,
                              const char *fqn)
{
    const char *keyword = NULL;
    for (size_t i = 0; role && i < sizeof role_map / sizeof *role_map; i++)
        if (strcmp(role, role_map[i].arm) == 0) keyword = role_map[i].kusto;
    if (!verb || !entity || !keyword || pw_names_principal_fqn(fqn, NULL, 0) != PW_OK) return NULL;
    size_t need = strlen(verb) + strlen(entity) + strlen(keyword) + strlen(fqn) + 16;
    char *out = malloc(need);
    if (out) snprintf(out, need, "%s %s %s ('%s')", verb, entity, keyword, fqn);
    return out;
}

static const char *cell(const json_t *row, long col)
{
    const char *v = col >= 0 ? json_string_value(json_array_get(row, (size_t)col)) : NULL;
    return v ? v : "";
}

json_t *pw_kql_parse_principals(const json_t *v1, char *err, size_t errlen)
{
    const json_t *table = json_array_get(json_object_get(v1, "Tables"), 0);
    const json_t *columns = json_object_get(table, "Columns");
    const json_t *rows = json_object_get(table, "Rows");
    long c_role = column_index(columns, "Role"), c_type = column_index(columns, "PrincipalType");
    long c_name = column_index(columns, "PrincipalDisplayName");
    long c_fqn = column_index(columns, "PrincipalFQN");
    if (!json_is_array(rows) || c_role < 0 || c_fqn < 0) {
        failf(err, errlen, "the answer is not a principals table");
        return NULL;
    }
    json_t *list = json_array();
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (!json_is_array(row)) continue;
        const char *label = cell(row, c_role), *ptype = cell(row, c_type);
        const char *role = strrchr(label, ' ') ? strrchr(label, ' ') + 1 : label;
        const char *type = strstr(ptype, "Application") ? "App"
                           : strstr(ptype, "Group")     ? "Group"
                                                        : "User";
        const char *fqn = cell(row, c_fqn);
        char app[256] = "";
        if (strncmp(fqn, "aadapp=", 7) == 0) {
            size_t n = strcspn(fqn + 7, ";");
            if (n < sizeof app) {
                memcpy(app, fqn + 7, n);
                app[n] = '\0';
            }
        }
        json_t *p = json_pack("{s:s, s:s, s:s, s:s}", "role", role, "type", type, "name",
                              cell(row, c_name), "fqn", fqn);
        if (p && app[0]) json_object_set_new(p, "appId", json_string(app));
        json_array_append_new(list, p);
    }
    return json_pack("{s:o}", "value", list);
}
