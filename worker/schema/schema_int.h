/* schema_int.h: internal helpers shared by the files of the schema module (not public). */
#ifndef PW_SCHEMA_INT_H
#define PW_SCHEMA_INT_H

#include <stddef.h>

/* Resolves reference ref against absolute base (RFC 3986 section 5.2).  Returns a
 * malloc'd string, or NULL when out of memory.  An empty fragment ("x#") is dropped. */
char *pw_schema_uri_resolve(const char *base, const char *ref);

/* A format checker: returns 1 when value (len bytes, UTF-8) is valid, 0 otherwise. */
typedef int (*pw_schema_format_fn)(const char *value, size_t len);

/* The checker for format name, NULL when the format is not one this module asserts.
 * *what receives a phrase for messages ("an ISO-8601 duration"). */
pw_schema_format_fn pw_schema_format_lookup(const char *name, const char **what);

/* Translates an ECMA-262 pattern into PCRE2 syntax.  Returns a malloc'd string or NULL. */
char *pw_schema_regex_translate(const char *pattern);

#endif
