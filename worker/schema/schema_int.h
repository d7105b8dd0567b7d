/* schema_int.h: internal helpers shared by the files of the schema module (not public). */
#ifndef PW_SCHEMA_INT_H
#define PW_SCHEMA_INT_H

#include "pw/schema.h"

#include <stddef.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

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

/* ---- compile.c: the compiled graph, walked by the validator */

enum {
    T_NULL = 1,
    T_BOOL = 2,
    T_OBJECT = 4,
    T_ARRAY = 8,
    T_NUMBER = 16,
    T_STRING = 32,
    T_INTEGER = 64
};

typedef struct node node;

typedef struct dyn_anchor {
    int name;
    node *target;
} dyn_anchor;

typedef struct resource {
    dyn_anchor *anchors;
    size_t n;
} resource;

typedef struct named_node {
    const char *key; /* borrowed from the schema document */
    size_t keylen;
    node *n;
} named_node;

typedef struct regex_node {
    pcre2_code *re;
    const char *src;
    node *n;
} regex_node;

typedef struct dep_req {
    const char *key;
    json_t *names; /* array of strings */
} dep_req;

struct node {
    int boolean; /* -1: object schema; 0: false; 1: true */
    char *abs;   /* absolute location of this schema, "uri#/pointer" */
    resource *res;
    unsigned types;
    node *ref;
    node *dynref;
    int dynref_name; /* -1: plain $ref semantics */
    node **all_of, **any_of, **one_of;
    size_t n_all, n_any, n_one;
    node *not_, *if_, *then_, *else_;
    named_node *dep_schemas;
    size_t n_dep_schemas;
    node **prefix;
    size_t n_prefix;
    node *items, *contains;
    json_int_t min_contains, max_contains; /* -1: absent */
    named_node *props;
    size_t n_props;
    size_t *prop_hash; /* open addressing table of indexes+1 into props */
    size_t prop_hash_cap;
    regex_node *pattern_props;
    size_t n_pattern_props;
    node *additional_props, *property_names, *uneval_items, *uneval_props;
    json_t *enum_, *const_; /* const_ is json_null() for "const": null, NULL when absent */
    json_t *multiple_of, *maximum, *exclusive_maximum, *minimum, *exclusive_minimum;
    json_int_t max_length, min_length, max_items, min_items, max_props, min_props;
    pcre2_code *pattern;
    const char *pattern_src;
    int unique_items;
    json_t *required;
    dep_req *dep_required;
    size_t n_dep_required;
    pw_schema_format_fn format_fn; /* set only when format asserts */
    /* summaries so that evaluation skips whole keyword groups at once */
    int has_num, has_str, has_obj, has_arr;
    const char *format_what;
    node *next_alloc; /* every node of a schema, for freeing */
};

struct pw_schema {
    node *root;
    node *nodes; /* allocation list */
    resource **resources;
    size_t n_resources;
    char **names; /* interned $dynamicAnchor names */
    size_t n_names;
    json_t **docs; /* references that keep borrowed strings alive */
    size_t n_docs;
    unsigned max_instance_depth;
    size_t max_errors;
};

/* FNV-1a over n bytes: the hash of the "properties" tables that compile.c builds and the
 * validator probes (inline: the validator calls it for every instance property). */
static inline size_t pw_schema_str_hash(const char *s, size_t n)
{
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

#endif
