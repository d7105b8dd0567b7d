/* kql.c: builds the policy commands (bracket-quoted names, exact timespans) and reads answers. */
#include "pw/kql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/duration.h"
#include "pw/names.h"

int pw_kql_quote_name(const char *name, char *buf, size_t len)
{
    if (pw_names_kusto_entity(name, NULL, 0) != PW_OK) return -1;
    int n = snprintf(buf, len, "['%s']", name);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static char *format_command(const char *fmt_verb, const char *scope, const char *quoted,
                            const char *policy_tail)
{
    size_t need = strlen(fmt_verb) + strlen(scope) + strlen(quoted) + strlen(policy_tail) +
                  16; /* 3 spaces, "policy ", NUL */
    char *out = malloc(need);
    if (out) snprintf(out, need, "%s %s %s policy %s", fmt_verb, scope, quoted, policy_tail);
    return out;
}

char *pw_kql_alter(pw_kql_policy policy, const char *database, const char *table, int64_t ticks)
{
    char quoted[1100], span[64], tail[96];
    const char *name = table ? table : database;
    if (pw_kql_quote_name(name, quoted, sizeof quoted) != 0 ||
        pw_duration_format_kql(ticks, span, sizeof span) != 0)
        return NULL;
    if (table && pw_names_kusto_entity(database, NULL, 0) != PW_OK) return NULL;
    const char *scope = table ? "table" : "database";
    if (policy == PW_KQL_RETENTION) {
        snprintf(tail, sizeof tail, "retention softdelete = %s", span);
        return format_command(".alter-merge", scope, quoted, tail);
    }
    snprintf(tail, sizeof tail, "caching hot = %s", span);
    return format_command(".alter", scope, quoted, tail);
}

char *pw_kql_show(pw_kql_policy policy, const char *database, const char *table)
{
    char quoted[1100];
    const char *name = table ? table : database;
    if (pw_kql_quote_name(name, quoted, sizeof quoted) != 0) return NULL;
    if (table && pw_names_kusto_entity(database, NULL, 0) != PW_OK) return NULL;
    return format_command(".show", table ? "table" : "database", quoted,
                          policy == PW_KQL_RETENTION ? "retention" : "caching");
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

int pw_kql_parse_policy(const json_t *v1, pw_kql_policy policy, int *is_set, int64_t *ticks,
                        char *err, size_t errlen)
{
    const json_t *tables = json_object_get(v1, "Tables");
    const json_t *table = json_array_get(tables, 0);
    const json_t *columns = json_object_get(table, "Columns");
    const json_t *rows = json_object_get(table, "Rows");
    if (!json_is_array(columns) || !json_is_array(rows))
        return failf(err, errlen, "the answer has no result table");
    long col = column_index(columns, "Policy");
    if (col < 0) return failf(err, errlen, "the answer has no Policy column");
    const json_t *row = json_array_get(rows, 0);
    if (!json_is_array(row)) return failf(err, errlen, "the answer has no row");
    const json_t *cell = json_array_get(row, (size_t)col);
    if (!cell || json_is_null(cell)) {
        *is_set = 0;
        return 0;
    }
    json_t *owned = NULL;
    const json_t *doc = cell;
    if (json_is_string(cell)) {
        const char *text = json_string_value(cell);
        if (!*text || strcmp(text, "null") == 0) {
            *is_set = 0;
            return 0;
        }
        owned = json_loads(text, JSON_DECODE_ANY, NULL);
        if (!owned) return failf(err, errlen, "the Policy cell is not JSON");
        doc = owned;
    }
    int rc = 0;
    if (json_is_null(doc)) {
        *is_set = 0;
        goto out;
    }
    const char *key = policy == PW_KQL_RETENTION ? "SoftDeletePeriod" : "DataHotSpan";
    const json_t *v = json_object_get(doc, key);
    if (json_is_object(v)) /* {"Value": "30.00:00:00"} form */
        v = json_object_get(v, "Value");
    if (json_is_null(v) && policy == PW_KQL_CACHING) {
        *is_set = 0;
        goto out;
    }
    if (!json_is_string(v) || pw_duration_parse_dotnet(json_string_value(v), ticks) != 0) {
        rc = failf(err, errlen,
                   policy == PW_KQL_RETENTION ? "the policy has no readable SoftDeletePeriod"
                                              : "the policy has no readable DataHotSpan");
        goto out;
    }
    *is_set = 1;
out:
    json_decref(owned);
    return rc;
}

char *pw_kql_show_principals(const char *database)
{
    char quoted[1100];
    if (pw_kql_quote_name(database, quoted, sizeof quoted) != 0) return NULL;
    size_t need = strlen(quoted) + 40;
    char *out = malloc(need);
    if (out) snprintf(out, need, ".show database %s principals", quoted);
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

char *pw_kql_add_principal(const char *database, const char *role, const char *fqn)
{
    char quoted[1100];
    const char *keyword = NULL;
    for (size_t i = 0; role && i < sizeof role_map / sizeof *role_map; i++)
        if (strcmp(role, role_map[i].arm) == 0) keyword = role_map[i].kusto;
    if (!keyword || pw_kql_quote_name(database, quoted, sizeof quoted) != 0 ||
        pw_names_principal_fqn(fqn, NULL, 0) != PW_OK)
        return NULL;
    size_t need = strlen(quoted) + strlen(keyword) + strlen(fqn) + 32;
    char *out = malloc(need);
    if (out) snprintf(out, need, ".add database %s %s ('%s')", quoted, keyword, fqn);
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
