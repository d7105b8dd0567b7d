/* pw/schema.h: JSON Schema draft 2020-12 validation on Jansson values.
 *
 * A registry holds documents by URI.  Nothing is built in: a schema that only
 * declares "$schema": "https://json-schema.org/draft/2020-12/schema" compiles with
 * every vocabulary on and needs no meta-schema; a schema that $refs a meta-schema
 * (or declares a custom one with $vocabulary) needs those documents registered,
 * e.g. pw_schema_registry_add_dir(reg, ".../json-schema-meta", NULL, ...).
 *
 * Compiling a schema resolves every $ref and $dynamicRef ahead of time into a
 * graph of nodes; validating then does no lookup by URI and allocates nothing
 * when the instance is valid (exceptions: propertyNames builds each key as a
 * string value, unevaluatedItems/Properties over more than 256 items or
 * properties keep their bit sets on the heap, and the asserted formats "regex"
 * and "hostname" with xn-- labels compile or match patterns of their own).
 * Errors are collected in a second pass that runs only when the instance is
 * invalid and a result was asked for.
 * A compiled schema keeps references to the documents it was compiled from, is
 * independent of the registry afterwards, and may be used from many threads at
 * once (validation does not mutate it; regex match data is per thread).
 *
 * Bounds: schema nesting (max_schema_depth, compile error), instance nesting
 * (max_instance_depth, PW_SCHEMA_LIMIT), evaluation depth 1000 (PW_SCHEMA_LIMIT,
 * catches $dynamicRef recursion that consumes no input), $ref cycles that consume
 * no input (compile error), regex match and depth limits (PW_SCHEMA_LIMIT). */
#ifndef PW_SCHEMA_H
#define PW_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

typedef struct pw_schema_registry pw_schema_registry;
typedef struct pw_schema pw_schema;

typedef enum pw_schema_status {
    PW_SCHEMA_VALID = 0,
    PW_SCHEMA_INVALID = 1, /* the instance broke the schema: see the result's errors */
    PW_SCHEMA_LIMIT = 2,   /* a bound was hit (instance depth, evaluation depth or steps,
                              regex match limit): treat as invalid; errors say which */
} pw_schema_status;

typedef struct pw_schema_options {
    int format_assertion;        /* 0 (default): format is an annotation; 1: it asserts */
    unsigned max_schema_depth;   /* 0: default 128 */
    unsigned max_instance_depth; /* 0: default 128 */
    size_t max_errors;           /* errors collected per validation; 0: default 64 */
} pw_schema_options;

typedef struct pw_schema_error {
    char *instance_location; /* JSON pointer into the instance ("/operations/0/softDeletePeriod") */
    char *keyword_location;  /* JSON pointer through the schema, $ref steps included */
    char *absolute_keyword_location; /* absolute URI of the failing keyword */
    char *message;                   /* for a person: "\"P10X\" is not an ISO-8601 duration"
                                        (the instance location is not repeated in it) */
} pw_schema_error;

typedef struct pw_schema_result {
    size_t count;
    pw_schema_error *errors;
    int truncated; /* more errors existed than max_errors */
} pw_schema_result;

pw_schema_registry *pw_schema_registry_new(void);
void pw_schema_registry_free(pw_schema_registry *reg); /* accepts NULL */

/* Registers a document under uri (NULL: its own $id).  doc is borrowed (the
 * registry keeps its own reference).  A later document under the same URI replaces
 * the earlier one.  $ids and anchors inside documents are found at compile time.
 * Returns 0 or -1 with err filled. */
int pw_schema_registry_add(pw_schema_registry *reg, const char *uri, json_t *doc, char *err,
                           size_t errlen);
int pw_schema_registry_add_file(pw_schema_registry *reg, const char *uri, const char *path,
                                char *err, size_t errlen);
/* Registers every *.json file under dir (recursively, at most 1024 files).  With
 * base_uri NULL each document is registered under its own $id (a file without
 * one is an error); otherwise under base_uri + its path relative to dir
 * ("http://localhost:1234/" + "draft2020-12/tree.json").  Returns the number of
 * files registered, or -1 with err filled. */
int pw_schema_registry_add_dir(pw_schema_registry *reg, const char *dir, const char *base_uri,
                               char *err, size_t errlen);

/* Compiles the registered document at uri (fragment allowed: "...#/$defs/x"), or a
 * document given directly (doc borrowed; its $id, if any, is its base URI,
 * otherwise "urn:pw-schema:anonymous"; reg may be NULL).  opts may be NULL.
 * NULL with err filled when the schema is invalid, a $ref cannot be resolved, a
 * $ref cycle consumes no input, or a bound is exceeded. */
pw_schema *pw_schema_compile(pw_schema_registry *reg, const char *uri,
                             const pw_schema_options *opts, char *err, size_t errlen);
pw_schema *pw_schema_compile_json(pw_schema_registry *reg, json_t *doc,
                                  const pw_schema_options *opts, char *err, size_t errlen);
void pw_schema_free(pw_schema *schema); /* accepts NULL */

/* Validates instance.  result may be NULL (yes/no only, fastest); otherwise it is
 * zeroed, filled on INVALID/LIMIT (at least one error, at most max_errors) and
 * must be released with pw_schema_result_clear.  A NULL schema or instance is
 * INVALID without errors (a caller bug, not an instance problem).  For anyOf/oneOf failures the
 * errors of branches that failed on a const/enum (a discriminator such as "kind")
 * are dropped when another branch failed only on other keywords. */
pw_schema_status pw_schema_validate(const pw_schema *schema, const json_t *instance,
                                    pw_schema_result *result);
void pw_schema_result_clear(pw_schema_result *result);

/* The result in the standard "basic" output shape: {"valid":false,"errors":[{
 * "instanceLocation","keywordLocation","absoluteKeywordLocation","error"}]}. New reference. */
json_t *pw_schema_result_to_basic(const pw_schema_result *result);

/* 1 when format assertion is implemented for name (date-time, date, time, duration,
 * email, hostname, ipv4, ipv6, uri, uri-reference, iri, iri-reference, uuid,
 * uri-template, json-pointer, relative-json-pointer, regex); other formats (idn-email,
 * idn-hostname, unknown names) stay annotations even with format_assertion. */
int pw_schema_format_supported(const char *name);

#endif
