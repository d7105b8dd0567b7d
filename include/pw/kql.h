/* pw/kql.h: Kusto management command text, and the reading of its answers.
 *
 * One builder writes every policy command: `.<verb> <entity> policy <keyword>[ <value>]`,
 * the entity from the scope (pw/ops.h) and bracket-quoted names, the value text from
 * pw/value.h.  Names must pass pw_names_kusto_entity(): they are always emitted as
 * ['name'] and, given that rule, need no escaping (no quote, backslash, bracket or line
 * break can occur), so nothing from a request can change a command's shape. */
#ifndef PW_KQL_H
#define PW_KQL_H

#include <jansson.h>
#include <stddef.h>

#include "pw/ops.h"

/* ['name'].  Returns 0, or -1 when the name fails pw_names_kusto_entity or buf is small. */
int pw_kql_quote_name(const char *name, char *buf, size_t len);

/* The entity text of a scope (new string; NULL on a bad name):
 *   cluster | database ['D'] | table ['T'] | materialized-view ['V'] | column ['T'].['C'] |
 *   external table ['E']
 * table for table/column scopes, entity for a view or external table; database (the call's
 * db) is checked for every scope but written only for the database scope. */
char *pw_kql_entity(pw_scope scope, const char *database, const char *table, const char *entity,
                    const char *column);

/* "tables (['T1'], ['T2'], …)": the entity of a multi-table command (names checked as
 * above).  New string, NULL on a bad name or out of memory. */
char *pw_kql_tables_entity(const char *const *tables, size_t n);

/* ".alter table ['T'] policy merge @'{…}'": verb ".show", ".alter", ".alter-merge" or
 * ".delete"; value NULL for none.  New string, NULL when out of memory. */
char *pw_kql_policy_command(const char *verb, const char *entity, const char *keyword,
                            const char *value);

/* ".create-or-alter workload_group ['G'] @'{…}'", ".show workload_group ['G']", … */
char *pw_kql_workload_group(const char *verb, const char *name, const char *value);

/* .show <entity> principals */
char *pw_kql_show_principals(const char *entity);

/* .add|.drop <entity> <role> ('<fqn>'): role is the ARM role name (Admin, Ingestor, Monitor,
 * User, UnrestrictedViewer, Viewer), mapped to its Kusto keyword (admins, ...); fqn must
 * pass pw_names_principal_fqn.  NULL on a bad role or FQN. */
char *pw_kql_principal_change(const char *verb, const char *entity, const char *role,
                              const char *fqn);

/* Reads a principals answer (Role, PrincipalType, PrincipalDisplayName, PrincipalObjectId,
 * PrincipalFQN, ...) as ARM DatabasePrincipal objects: {"value": [{"role", "type", "name",
 * "fqn", "appId"}]} (role = the last word of Role; appId from an aadapp= FQN).  New
 * reference, or NULL with err filled. */
json_t *pw_kql_parse_principals(const json_t *v1, char *err, size_t errlen);

/* Reads a policy command's v1 answer (one table with a Policy column; its first row):
 * *policy is the policy JSON (new reference), NULL when none is set at this level.
 * Returns 0, or -1 with err filled when the answer has another shape. */
int pw_kql_parse_policy(const json_t *v1, json_t **policy, char *err, size_t errlen);

/* The same for a multi-table answer: the row whose EntityName names table ("[Db].[T]"). */
int pw_kql_parse_policy_for(const json_t *v1, const char *table, json_t **policy, char *err,
                            size_t errlen);

/* Reads `.show workload_group` (WorkloadGroupName, WorkloadGroup): *group the group's JSON,
 * NULL when the answer has no row (no such group).  0, or -1 with err filled. */
int pw_kql_parse_workload_group(const json_t *v1, json_t **group, char *err, size_t errlen);

/* Reads one string column of a v1 answer's first table, every row (`.show tables`:
 * TableName): a new array of strings, in the answer's order, at most max + 1 of them (the
 * caller knows a longer answer by that).  NULL with err filled when the answer has another
 * shape (no such column, a cell that is no string). */
json_t *pw_kql_parse_column(const json_t *v1, const char *column, size_t max, char *err,
                            size_t errlen);

#endif
