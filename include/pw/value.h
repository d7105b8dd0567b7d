/* pw/value.h: an operation's value in request terms: the desired one, the one read from
 * Kusto's policy JSON, and how two compare (unchanged, verified).
 *
 * Request terms per value type (pw/ops.h); "not set at this level" is the field null:
 *   json-object/-array, classification, workload-group  {"policy": <Kusto JSON> | null}
 *   boolean                                             {"enabled": true|false|null}
 *   caching     {"hotCachePeriod": "P5D"|null[, "hotWindows": [{"from","to"}]]}
 *   retention   {"softDeletePeriod": "P10D"|null[, "recoverability": "Enabled"|"Disabled"]}
 *   streaming   {"enabled": …} or {"policy": …}, the form the request uses
 *   roworder    {"rowOrder": [{"column","order"}] | null}
 *   rls         {"enabled": bool|null, "query": "…"|null}
 *   encoding    {"encodingType": "Identifier"|…|null}
 *   principal   {"principal": {…}|null}, assignment {"assignment": {…}|null}
 *
 * Comparison follows Kusto's normalisation: object keys case-insensitively, timespans by
 * value ("5.00:00:00" = "5.00:00:00.0000000"), datetimes by instant, numbers by value. */
#ifndef PW_VALUE_H
#define PW_VALUE_H

#include <jansson.h>
#include <stddef.h>

#include "pw/request.h"

/* Longest KQL string literal the worker writes (an RLS query, a classification function),
 * in bytes of its text before escaping. */
#define PW_VALUE_TEXT_MAX 16384
/* Most hot windows in one caching policy, and entries in a row order. */
#define PW_VALUE_HOT_WINDOWS_MAX 32
#define PW_VALUE_ROW_ORDER_MAX 16

/* The request fields a value type takes for alter and merge: key (also the member of the
 * value in request terms, null when unset), its JSON type (JSON_TRUE: a boolean), whether
 * an alter/merge needs it.  Caching and retention carry a duration and the principal kinds
 * an object, checked by their own rules. */
typedef struct pw_value_field {
    const char *key;
    json_type type;
    int required;
} pw_value_field;
#define PW_VALUE_FIELDS_MAX 2

/* op's fields (the first is the main one); returns how many. */
size_t pw_value_fields(const pw_request_op *op, pw_value_field out[PW_VALUE_FIELDS_MAX]);

/* The value the operation asks for (delete: the unset form).  New reference, NULL when out
 * of memory. */
json_t *pw_value_desired(const pw_request_op *op);

/* The unset form of op's value. */
json_t *pw_value_unset(const pw_request_op *op);

/* The KQL text after `policy <keyword>` for an alter or merge ("hot = 5d", "@'{…}'",
 * "enable 'q'", "(['C'] asc)"); for a workload group the JSON literal.  New string, NULL
 * when out of memory or the value cannot be written (a name failing its rule). */
char *pw_value_kql(const pw_request_op *op);

/* Reads a Kusto policy (the parsed Policy cell; NULL or JSON null: not set) as op's value.
 * Returns 0 with *value a new reference, or -1 with err filled (another shape). */
int pw_value_from_policy(const pw_request_op *op, const json_t *policy, json_t **value,
                         char *err, size_t errlen);

/* Is the desired value already in place, so that the write would change nothing?  An alter
 * compares with the properties it would reset (the row's defaults), a merge only what it
 * overlays.  1 yes, 0 no. */
int pw_value_unchanged(const pw_request_op *op, const json_t *desired, const json_t *before);

/* Does the value read after the write hold what was asked for (only the properties the
 * request gave: a default Kusto fills differently never fails it)?  1 yes, 0 no. */
int pw_value_verified(const pw_request_op *op, const json_t *desired, const json_t *after);

/* An array policy's merge appends (Kusto does not de-duplicate): the entries of the desired
 * policy that no entry of before already holds, as a new array; NULL for any other
 * operation (its write is the planned one). */
json_t *pw_value_entries_missing(const pw_request_op *op, const json_t *desired,
                                 const json_t *before);

/* Datetime text (YYYY-MM-DD[THH:MM[:SS[.fffffff]]][Z]) in the canonical form
 * "YYYY-MM-DDTHH:MM:SS[.fffffff]Z" (fraction only when not zero).  0, or -1 when it is not
 * a valid UTC datetime. */
int pw_value_datetime(const char *text, char *out, size_t len);

/* @'<compact JSON>' with every ' doubled (a verbatim literal), reals with 15 significant
 * digits (2.1, not 2.1000000000000001).  New string or NULL when out of memory. */
char *pw_value_json_literal(const json_t *v);

/* A KQL single-quoted string literal of text (escapes per REFERENCE.md §5).  New string or
 * NULL when out of memory. */
char *pw_value_kql_string(const char *text);

#endif
