/* kusto.h: azure-sim's Kusto engine: parses one management command and runs it
 * against one cluster's state (the "clusters" element layout in sim.h). */
#ifndef SIM_KUSTO_H
#define SIM_KUSTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sim_kusto_caller {
    const char *app_id; /* from the token; used for role checks */
    const char *tenant_id;
} sim_kusto_caller;

/* Bounds on untrusted input.  Exceeding one is an error answer, never a cut. */
#define SIM_KUSTO_MAX_CSL (64 * 1024) /* bytes of command text */
#define SIM_KUSTO_MAX_NAME 1024       /* characters of an entity name */
#define SIM_KUSTO_MAX_TOKENS 8192     /* tokens in one command */
#define SIM_KUSTO_MAX_JSON_DEPTH 32   /* nesting of a policy JSON value */
#define SIM_KUSTO_MAX_LIST 256        /* names in ( ... ) lists: tables, principals */

/* Commands (REFERENCE.md §4, §6, §8; the scopes and verbs of each policy are POLICIES[] in
 * kusto_engine.c, as the Kusto documentation has them; a verb a policy lacks at a scope is
 * 400 BadRequest_SyntaxError):
 *   .show|.alter|.alter-merge|.delete  <entity> policy <kw> [value], <entity> one of
 *        cluster | database D | table [Db.]T | materialized-view [Db.]V |
 *        column [Db.]T.C | external table [Db.]E
 *   .show database * policy <kw>, .show table * policy <kw>  (one row per entity)
 *   .alter|.alter-merge tables (T1, T2, ...) policy caching|retention|merge|ingestionbatching|
 *        ingestiontime|restricted_view_access|roworder <value>
 *   .add|.drop|.set database [D] <role> ('fqn', ...) [skip-results] ['notes'] (.set: or none);
 *        roles admins, users, viewers, unrestrictedviewers, ingestors, monitors
 *   .add|.drop|.set table [Db.]T admins|ingestors (...), materialized-view [Db.]V admins (...)
 *   .show database D principals, .show table T principals, .show materialized-view V principals
 *   .show tables (the request's database: TableName, DatabaseName, Folder, DocString)
 *   .show workload_groups, .show workload_group G, .create-or-alter workload_group G J,
 *        .alter-merge workload_group G J, .drop workload_group G
 * Policy keywords: caching, retention, merge, partitioning, ingestionbatching,
 * streamingingestion, sharding, auto_delete, extent_tags_retention, update, ingestiontime,
 * restricted_view_access, row_level_security, encoding, roworder, query_acceleration,
 * mirroring, managed_identity, callout, capacity, sandbox, request_classification,
 * query_weak_consistency.  Values: J (a string literal holding JSON) or the special forms
 * hot = ts [, hot_window = datetime(a) .. datetime(b)]... (caching), softdelete = ts
 * [recoverability = enabled|disabled] (retention merge), true|false, enable|disable
 * (streamingingestion of a database or table), enable|disable [with (...)] 'query'
 * (row_level_security), (C1 asc, C2 desc) (roworder), [type = 'Identifier'] (a column's
 * encoding), J <| function body (request_classification .alter).
 * Database retention/caching live in the database object's softDeletePeriod/recoverability/
 * hotCachePeriod (ISO-8601)/hotWindows; every other policy in the entity's "policies" object
 * under its keyword, in the JSON form .show prints (kusto_policy.c).  Role commands answer
 * the 7-column principals table (Role "Database Db Admin", "Table Db.T Admin",
 * "Materialized View Db.V Admin"), workload group commands WorkloadGroupName, WorkloadGroup.
 * Errors: 400 BadRequest_SyntaxError (anything that does not parse, trailing tokens),
 * 400 BadRequest_EntityNotFound (table/view/column/external table/database/workload group
 * named in the command), 404 NotFound (db unknown), 400 General_BadRequest (bad policy value,
 * principal or workload group), 403 Forbidden (role missing); all with "@permanent": true.
 *
 * Runs csl in database db (NULL or "" for cluster-scope commands) of cluster, which
 * is mutated in place.  Returns the HTTP status and sets *body to the answer (new
 * reference): a v1 frame on success, a OneApi error body otherwise.
 * client_request_id and activity_id go into an error's @context.
 * caller NULL skips role checks (in-process use only; the front always passes one).
 * Role rules: writes need the database Admin role (principals or database
 * principalAssignments) or a cluster principalAssignment AllDatabasesAdmin; a table's or
 * materialized view's own Admin role also may write its policies (not partitioning,
 * row_level_security, restricted_view_access, mirroring: Database Admin) and roles; .show
 * needs any database role (or a role on that table/view) or AllDatabasesViewer/-Admin.
 * Cluster-scope writes, managed_identity at any scope and every workload group command
 * need AllDatabasesAdmin, cluster .show AllDatabasesViewer/-Admin.
 * The caller holds the state lock.  Never crashes on any input; csl over
 * SIM_KUSTO_MAX_CSL bytes gets 400 BadRequest_SyntaxError. */
int sim_kusto_execute(json_t *cluster, const char *db, const char *csl,
                      const sim_kusto_caller *caller, const char *client_request_id,
                      const char *activity_id, json_t **body);

/* What the front may ask of one command. */
typedef struct sim_kusto_hooks {
    /* Called once per write (.alter, .alter-merge, .delete, .add, .drop, .set,
     * .create-or-alter) that passed every check, just before it would change the state;
     * returning 1 leaves the state unchanged and the command answers success with the
     * current (unchanged) values: a cluster that acknowledges writes and loses them
     * (faults.ignoreWrites).  NULL: writes apply. */
    int (*ignore_write)(void *arg);
    void *arg;
} sim_kusto_hooks;

/* sim_kusto_execute with hooks (NULL = none). */
int sim_kusto_execute_hooked(json_t *cluster, const char *db, const char *csl,
                             const sim_kusto_caller *caller, const char *client_request_id,
                             const char *activity_id, const sim_kusto_hooks *hooks, json_t **body);

/* Replaces every byte of s that is not part of valid UTF-8 with '?', in place: jansson
 * refuses invalid UTF-8, and error messages echo client input (paths, names, ids) or
 * are cut mid-character by a bounded buffer.  Used by every error builder. */
void sim_utf8_scrub(char *s);
/* The same for len bytes that may include NULs (kept: valid UTF-8); s[len] must be '\0'. */
void sim_utf8_scrub_n(char *s, size_t len);

/* A OneApi error body (new reference) as the engine makes them: "message" generic for the
 * status, @message = message, @context with all 13 members (serviceAlias = cluster's first
 * label in upper case; activity_type NULL = DN.FE.ExecuteControlCommand), @permanent.  Any
 * string may hold invalid UTF-8 (it is scrubbed), so the body is never NULL. */
json_t *sim_kusto_error_body(int status, const char *cluster, const char *code, const char *type,
                             int permanent, const char *client_request_id, const char *activity_id,
                             const char *activity_type, const char *message);

/* ---- Below: the engine's internal pieces, exported for its unit tests. ---- */

/* Time spans are counted in .NET ticks (100 ns).  All return 0 on success, -1 on a
 * malformed or out-of-range value (limit: about 10 million days). */
#define SIM_KUSTO_TICKS_PER_SECOND 10000000LL
#define SIM_KUSTO_TICKS_PER_DAY (86400LL * SIM_KUSTO_TICKS_PER_SECOND)
/* KQL literal "30d", "1.5h", "100ms", "10microsecond", "1tick" (number + unit). */
int sim_kusto_timespan_literal(const char *text, size_t len, int64_t *ticks);
/* Inside time(...)/timespan(...): "1.12:00:00", "00:05:00", "15 seconds", "2d". */
int sim_kusto_timespan_fn(const char *text, int64_t *ticks);
/* .NET TimeSpan text "[-][d.]hh:mm[:ss[.fffffff]]" or "d" (whole days). */
int sim_kusto_timespan_parse_net(const char *s, int64_t *ticks);
/* ticks -> "d.hh:mm:ss[.fffffff]" (days omitted when 0, as .NET's "c" format). */
void sim_kusto_timespan_format_net(int64_t ticks, char *out, size_t outlen);
/* ISO-8601 duration "P365D", "PT1H30M", "P1DT0.5S" (Y = 365 d, month = 30 d, W = 7 d). */
int sim_kusto_iso_parse(const char *s, int64_t *ticks);
/* ticks -> "P10D", "PT12H", "P1DT2H3M4.5S", "PT0S". */
void sim_kusto_iso_format(int64_t ticks, char *out, size_t outlen);
/* "2021-01-01", "2021-01-01 12:00", "2021-01-01T12:00:00.5Z" -> canonical
 * "2021-01-01T12:00:00.5000000Z" (out needs 29 bytes). */
int sim_kusto_datetime_parse(const char *s, char *out, size_t outlen);

/* "2021-01-01T00:00:00.5000000Z" (sim_kusto_datetime_parse's form) -> "2021-01-01T00:00:00.5Z",
 * "2021-01-01T00:00:00Z": the form Kusto's policy JSON shows (fraction trimmed). */
void sim_kusto_datetime_short(const char *canonical, char *out, size_t outlen);

/* ---- kusto_policy.c: policy values.  Each returns a new reference, or NULL with a message
 * in err (then the command answers 400 General_BadRequest).  kw is the policy keyword. ---- */

/* Parses J (a decoded string literal) and normalizes it: known properties type-checked
 * and spelled canonically (matched case-insensitively), timespans as .NET text, datetimes
 * canonical.  Depth over SIM_KUSTO_MAX_JSON_DEPTH is refused before parsing. */
json_t *sim_kusto_policy_parse_json(const char *kw, const char *text, size_t len, char *err,
                                    size_t errlen);
/* .alter-merge: in overlaid on cur (the value set now, or NULL): objects merge deeply,
 * update appends, managed_identity joins usages per ObjectId, callout replaces CanCall per
 * (CalloutType, CalloutUriRegex), roworder re-orders columns it names and appends others. */
json_t *sim_kusto_policy_merge(const char *kw, json_t *cur, json_t *in, json_t *cluster, char *err,
                               size_t errlen);
/* The value a write stores: shape rules and Kusto's defaults for omitted properties.
 * at_column: the encoding policy of a column ({"EncodingType"}; JSON null = back to the
 * default, i.e. no policy of its own).  cluster: its "managedIdentities" resolve
 * managed_identity entries. */
json_t *sim_kusto_policy_finalize(const char *kw, int at_column, json_t *v, json_t *cluster,
                                  char *err, size_t errlen);
/* The value of a policy that always exists (capacity, query_weak_consistency), else NULL. */
json_t *sim_kusto_policy_default(const char *kw);
/* Caching as .show prints it: {"DataHotSpan": {"Value": ts}, "IndexHotSpan": {"Value": ts}
 * [, "HotWindows": [{"MinValue", "MaxValue"}]]}, from either the flat or the wrapped form;
 * NULL when v has no DataHotSpan. */
json_t *sim_kusto_caching_display(json_t *v);
/* The callout entries every cluster has (shown as EntityType "Cluster immutable policy"). */
json_t *sim_kusto_callout_immutable(void);
/* The canonical spelling of an encoding policy type (case-insensitive), or NULL. */
const char *sim_kusto_encoding_type(const char *name);
/* The request_properties.<name> a classification function reads, in order of appearance. */
json_t *sim_kusto_classification_properties(const char *body);
/* Objects merged member by member (arrays and scalars of over replace); new reference. */
json_t *sim_kusto_deep_merge(json_t *base, json_t *over);
/* The definition of the built-in "default" workload group. */
json_t *sim_kusto_default_workload_group(void);
/* Checks a workload group definition and spells its policies canonically. */
json_t *sim_kusto_workload_group_check(json_t *def, char *err, size_t errlen);

typedef enum sim_kusto_tok_type {
    SK_TOK_EOF = 0,
    SK_TOK_IDENT,    /* [A-Za-z_][A-Za-z0-9_]* with inner '-' before a letter */
    SK_TOK_QNAME,    /* ['..'] or [".."]; text = the decoded name */
    SK_TOK_STRING,   /* any string literal form, adjacent literals joined; text decoded */
    SK_TOK_NUMBER,   /* digits[.digits][unit letters], e.g. "30d", "1.5h", "500" */
    SK_TOK_DATETIME, /* datetime(...): text = the inside, trimmed */
    SK_TOK_TIMESPAN, /* time(...) / timespan(...): text = the inside, trimmed */
    SK_TOK_PUNCT,    /* one of ( ) [ ] , = * .. . or any other single byte */
    SK_TOK_BODY      /* "<|" and everything after it, raw (a request classification
                      * function body); always the last token before EOF */
} sim_kusto_tok_type;

typedef struct sim_kusto_token {
    sim_kusto_tok_type type;
    char *text; /* owned, NUL-terminated (decoded strings may hold NULs: see len) */
    size_t len;
    size_t pos; /* byte offset in the command */
} sim_kusto_token;

typedef struct sim_kusto_tokens {
    sim_kusto_token *v;
    size_t n; /* the last one is SK_TOK_EOF */
} sim_kusto_tokens;

/* Splits csl[0..len) into tokens.  On error returns -1 with *errpos set and a message
 * in err (bad literal, too many tokens, over-long input); out is then empty. */
int sim_kusto_lex(const char *csl, size_t len, sim_kusto_tokens *out, size_t *errpos, char *err,
                  size_t errlen);
void sim_kusto_tokens_free(sim_kusto_tokens *t);

#endif
