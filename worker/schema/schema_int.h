/* schema_int.h: internal helpers shared by the files of the schema module (not public). */
#ifndef PW_SCHEMA_INT_H
#define PW_SCHEMA_INT_H

#include "pw/schema.h"

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

/* ---- registry.c */

typedef struct reg_doc {
    char *uri;
    json_t *doc;
} reg_doc;

/* Documents in the order they were added; compiling indexes every one of them. */
struct pw_schema_registry {
    reg_doc *docs;
    size_t n, cap;
};

/* Writes a message into err (errlen bytes, may be NULL/0). */
void pw_schema_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An open-addressing hash map from pointers (json_t *, node *) to pointers. */
typedef struct pmap_ent {
    const void *key;
    void *val;
} pmap_ent;

typedef struct pmap {
    pmap_ent *e;
    size_t n, cap; /* cap is a power of two */
} pmap;

/* The value for k, NULL when there is none. */
void *pw_schema_pmap_get(const pmap *m, const void *k);
/* Sets k to v.  Returns 0, or -1 when out of memory.  The caller frees m->e. */
int pw_schema_pmap_put(pmap *m, const void *k, void *v);

/* Facts about one subschema found by walking every document: its base URI, the
 * resource it belongs to, its JSON pointer inside that resource and the $schema
 * in force. */
typedef struct sinfo {
    char *base; /* base URI without fragment */
    json_t *resroot;
    char *ptr;           /* pointer from resroot */
    const char *dialect; /* $schema in force (borrowed), NULL: default */
} sinfo;

typedef struct named_uri {
    char *uri; /* absolute, fragment included for anchors */
    json_t *target;
    int dynamic;
} named_uri;

/* State of one compilation: the index (info, uris, infos) and what is compiled so far. */
typedef struct cctx {
    pw_schema *s;
    const pw_schema_options *opts;
    unsigned max_depth;
    pmap info;       /* json_t* -> sinfo* */
    pmap compiled;   /* json_t* -> node* */
    pmap resmap;     /* resroot json_t* -> resource* */
    named_uri *uris; /* resources ($id, retrieval URIs) and anchors */
    size_t n_uris, cap_uris;
    sinfo **infos;
    size_t n_infos, cap_infos;
    char *err;
    size_t errlen;
    int failed;
} cctx;

/* The resource or anchor registered as uri (absolute), NULL when there is none. */
named_uri *pw_schema_find_uri(cctx *c, const char *uri);
/* "uri#frag" (malloc'd), NULL when out of memory. */
char *pw_schema_with_fragment(const char *uri, const char *frag);
/* ptr with one more JSON pointer segment (seg escaped, or the index i); malloc'd, NULL when
 * out of memory. */
char *pw_schema_ptr_append(const char *ptr, const char *seg);
char *pw_schema_ptr_append_idx(const char *ptr, size_t i);
/* Records facts (sinfo) about every subschema of doc, retrieved as uri, and its $ids and
 * anchors in c->uris.  Returns 0; -1 when out of memory; -2 when nested too deep
 * (c->err says where). */
int pw_schema_index_doc(cctx *c, const char *uri, json_t *doc);

#endif
