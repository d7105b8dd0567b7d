/* pw/schema.h: JSON Schema draft 2020-12 validation on Jansson values.
 *
 * A registry holds documents by URI (the 2020-12 meta-schemas are built in).
 * Compiling a schema resolves every $ref ahead of time; validating then does no
 * lookup by string and allocates nothing when the instance is valid.  A compiled
 * schema is independent of the registry it came from and may be used from many
 * threads at once (validation does not mutate it). */
#ifndef PW_SCHEMA_H
#define PW_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

typedef struct pw_schema_registry pw_schema_registry;
typedef struct pw_schema pw_schema;

typedef enum pw_schema_status {
    PW_SCHEMA_VALID = 0,
    PW_SCHEMA_INVALID = 1,  /* the instance broke the schema: see the result's errors */
    PW_SCHEMA_LIMIT = 2,    /* a bound was hit (instance depth, regex match limit) */
} pw_schema_status;

typedef struct pw_schema_options {
    int format_assertion;       /* 0 (default): format is an annotation; 1: it asserts */
    unsigned max_schema_depth;  /* 0: default 128 */
    unsigned max_instance_depth;/* 0: default 128 */
    size_t max_errors;          /* errors collected per validation; 0: default 64 */
} pw_schema_options;

typedef struct pw_schema_error {
    char *instance_location;          /* JSON pointer into the instance ("/operations/0/softDeletePeriod") */
    char *keyword_location;           /* JSON pointer through the schema, $ref steps included */
    char *absolute_keyword_location;  /* absolute URI of the failing keyword */
    char *message;                    /* for a person: "\"P10X\" is not an ISO-8601 duration" */
} pw_schema_error;

typedef struct pw_schema_result {
    size_t count;
    pw_schema_error *errors;
    int truncated;                    /* more errors existed than max_errors */
} pw_schema_result;

pw_schema_registry *pw_schema_registry_new(void);
void pw_schema_registry_free(pw_schema_registry *reg); /* accepts NULL */

/* Registers a document under uri (NULL: its own $id).  doc is borrowed (the
 * registry keeps its own reference).  Returns 0 or -1 with err filled. */
int pw_schema_registry_add(pw_schema_registry *reg, const char *uri, json_t *doc, char *err,
                           size_t errlen);
int pw_schema_registry_add_file(pw_schema_registry *reg, const char *uri, const char *path,
                                char *err, size_t errlen);

/* Compiles the registered document at uri (fragment allowed), or a document given
 * directly.  NULL with err filled when the schema is invalid, a $ref cannot be
 * resolved, or a bound is exceeded. */
pw_schema *pw_schema_compile(pw_schema_registry *reg, const char *uri,
                             const pw_schema_options *opts, char *err, size_t errlen);
pw_schema *pw_schema_compile_json(pw_schema_registry *reg, json_t *doc,
                                  const pw_schema_options *opts, char *err, size_t errlen);
void pw_schema_free(pw_schema *schema); /* accepts NULL */

/* Validates instance.  result may be NULL (yes/no only, fastest); otherwise it is
 * filled on INVALID/LIMIT and must be released with pw_schema_result_clear. */
pw_schema_status pw_schema_validate(const pw_schema *schema, const json_t *instance,
                                    pw_schema_result *result);
void pw_schema_result_clear(pw_schema_result *result);

/* The result in the standard "basic" output shape: {"valid":false,"errors":[{
 * "instanceLocation","keywordLocation","absoluteKeywordLocation","error"}]}. New reference. */
json_t *pw_schema_result_to_basic(const pw_schema_result *result);

/* 1 when format assertion is implemented for name (date-time, date, time, duration,
 * email, hostname, ipv4, ipv6, uri, uri-reference, iri, iri-reference, uuid,
 * json-pointer, relative-json-pointer, regex); other formats are annotations only. */
int pw_schema_format_supported(const char *name);

#endif
