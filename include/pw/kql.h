/* pw/kql.h: Kusto management command text for the policies the worker changes, and the
 * reading of their answers.
 *
 * Names must already have passed pw_names_kusto_entity(): they are always emitted as
 * ['name'] and, given that rule, need no escaping (no quote, backslash, bracket or line
 * break can occur), so nothing from a request can change a command's shape. */
#ifndef PW_KQL_H
#define PW_KQL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum pw_kql_policy {
    PW_KQL_RETENTION = 0, /* softdelete */
    PW_KQL_CACHING = 1,   /* hot */
} pw_kql_policy;

/* ['name'].  Returns 0, or -1 when the name fails pw_names_kusto_entity or buf is small. */
int pw_kql_quote_name(const char *name, char *buf, size_t len);

/* The change command (new string, caller frees; NULL on a bad name or negative ticks):
 *   retention, database: .alter-merge database ['D'] policy retention softdelete = 10d
 *   retention, table:    .alter-merge table ['T'] policy retention softdelete = 10d
 *   caching, database:   .alter database ['D'] policy caching hot = 5d
 *   caching, table:      .alter table ['T'] policy caching hot = 5d
 * table == NULL means the database scope (the database itself is the request's `db`). */
char *pw_kql_alter(pw_kql_policy policy, const char *database, const char *table, int64_t ticks);

/* The read: .show database ['D'] policy retention / .show table ['T'] policy caching. */
char *pw_kql_show(pw_kql_policy policy, const char *database, const char *table);

/* .show database ['D'] principals */
char *pw_kql_show_principals(const char *database);

/* .add database ['D'] <role> ('<fqn>'): role is the ARM role name (Admin, Ingestor, Monitor,
 * User, UnrestrictedViewer, Viewer), mapped to its Kusto keyword (admins, ...); fqn must
 * pass pw_names_principal_fqn.  NULL on a bad name, role or FQN. */
char *pw_kql_add_principal(const char *database, const char *role, const char *fqn);

/* Reads a principals answer (Role, PrincipalType, PrincipalDisplayName, PrincipalObjectId,
 * PrincipalFQN, ...) as ARM DatabasePrincipal objects: {"value": [{"role", "type", "name",
 * "fqn", "appId"}]} (role = the last word of Role; appId from an aadapp= FQN).  New
 * reference, or NULL with err filled. */
json_t *pw_kql_parse_principals(const json_t *v1, char *err, size_t errlen);

/* Reads a policy command's v1 answer (one table with a Policy column; its first row).
 * *is_set = 0 when Policy is null (nothing set at this level); else *ticks holds the
 * SoftDeletePeriod / DataHotSpan (flat "d.hh:mm:ss" or {"Value": "..."}).
 * Returns 0, or -1 with err filled when the answer has another shape. */
int pw_kql_parse_policy(const json_t *v1, pw_kql_policy policy, int *is_set, int64_t *ticks,
                        char *err, size_t errlen);

#endif
