/* kql.c: builds the policy commands (bracket-quoted names, exact timespans) and reads answers. */
#include "pw/kql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/duration.h"
#include "pw/names.h"

int pw_kql_quote_name(const char *name, char *buf, size_t len)
{
    if (pw_names_kusto_entity(name, NULL, 0) != PW_NAMES_OK) return -1;
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
    if (table && pw_names_kusto_entity(database, NULL, 0) != PW_NAMES_OK) return NULL;
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
    if (table && pw_names_kusto_entity(database, NULL, 0) != PW_NAMES_OK) return NULL;
    return format_command(".show", table ? "table" : "database", quoted,
                          policy == PW_KQL_RETENTION ? "retention" : "caching");
}

static int failf(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
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
    size_t col = (size_t)-1, i;
    const json_t *c;
    json_array_foreach(columns, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "ColumnName"));
        if (name && strcmp(name, "Policy") == 0) col = i;
    }
    if (col == (size_t)-1) return failf(err, errlen, "the answer has no Policy column");
    const json_t *row = json_array_get(rows, 0);
    if (!json_is_array(row)) return failf(err, errlen, "the answer has no row");
    const json_t *cell = json_array_get(row, col);
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
