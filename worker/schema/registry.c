/* registry.c: schema documents by URI, a pointer map, and the index of registered resources. */
#include "pw/schema.h"

#include "schema_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_REGISTRY_DOCS 4096u

/* ---------------------------------------------------------------- registry */

pw_schema_registry *pw_schema_registry_new(void)
{
    return calloc(1, sizeof(pw_schema_registry));
}

void pw_schema_registry_free(pw_schema_registry *reg)
{
    if (!reg) return;
    for (size_t i = 0; i < reg->n; i++) {
        free(reg->docs[i].uri);
        json_decref(reg->docs[i].doc);
    }
    free(reg->docs);
    free(reg);
}

void pw_schema_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Drops a trailing empty fragment so "x#" and "x" name the same document. */
static char *norm_uri(const char *u)
{
    char *s = pw_schema_uri_resolve(NULL, u);
    return s;
}

int pw_schema_registry_add(pw_schema_registry *reg, const char *uri, json_t *doc, char *err,
                           size_t errlen)
{
    if (!reg || !doc) {
        pw_schema_set_err(err, errlen, "registry or document missing");
        return -1;
    }
    if (!uri) {
        json_t *id = json_is_object(doc) ? json_object_get(doc, "$id") : NULL;
        if (!json_is_string(id)) {
            pw_schema_set_err(err, errlen, "document has no $id and no URI was given");
            return -1;
        }
        uri = json_string_value(id);
    }
    if (reg->n >= MAX_REGISTRY_DOCS) {
        pw_schema_set_err(err, errlen, "registry full (%u documents)", MAX_REGISTRY_DOCS);
        return -1;
    }
    char *u = norm_uri(uri);
    if (!u) {
        pw_schema_set_err(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < reg->n; i++) {
        if (!strcmp(reg->docs[i].uri, u)) { /* replace */
            json_decref(reg->docs[i].doc);
            reg->docs[i].doc = json_incref(doc);
            free(u);
            return 0;
        }
    }
    if (reg->n == reg->cap) {
        size_t nc = reg->cap ? reg->cap * 2 : 16;
        reg_doc *nd = realloc(reg->docs, nc * sizeof *nd);
        if (!nd) {
            free(u);
            pw_schema_set_err(err, errlen, "out of memory");
            return -1;
        }
        reg->docs = nd;
        reg->cap = nc;
    }
    reg->docs[reg->n].uri = u;
    reg->docs[reg->n].doc = json_incref(doc);
    reg->n++;
    return 0;
}

int pw_schema_registry_add_file(pw_schema_registry *reg, const char *uri, const char *path,
                                char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_DECODE_ANY, &je);
    if (!doc) {
        pw_schema_set_err(err, errlen, "%s:%d: %s", path, je.line, je.text);
        return -1;
    }
    int rc = pw_schema_registry_add(reg, uri, doc, err, errlen);
    json_decref(doc);
    return rc;
}

#define MAX_DIR_FILES 1024u

static int add_dir_rec(pw_schema_registry *reg, const char *root, const char *rel,
                       const char *base_uri, unsigned depth, int *count, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof path ||
        depth > 16) {
        pw_schema_set_err(err, errlen, "%s: path too long or too deep", root);
        return -1;
    }
    DIR *d = opendir(path);
    if (!d) {
        pw_schema_set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[4096], full[8192];
        size_t nl = strlen(e->d_name);
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
            (int)sizeof sub) {
            pw_schema_set_err(err, errlen, "%s/%s: path too long", path, e->d_name);
            rc = -1;
            break;
        }
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (stat(full, &st) < 0) continue;
        if (S_ISDIR(st.st_mode)) {
            rc = add_dir_rec(reg, root, sub, base_uri, depth + 1, count, err, errlen);
        } else if (nl > 5 && !strcmp(e->d_name + nl - 5, ".json")) {
            if (++*count > (int)MAX_DIR_FILES) {
                pw_schema_set_err(err, errlen, "%s: more than %u schema files", root,
                                  MAX_DIR_FILES);
                rc = -1;
                break;
            }
            char *uri = NULL;
            if (base_uri && (uri = malloc(strlen(base_uri) + strlen(sub) + 1)))
                sprintf(uri, "%s%s", base_uri, sub);
            if (base_uri && !uri) {
                pw_schema_set_err(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            rc = pw_schema_registry_add_file(reg, uri, full, err, errlen);
            if (rc < 0 && !base_uri) {
                size_t l = strlen(err);
                if (l < errlen) snprintf(err + l, errlen - l, " (%s)", full);
            }
            free(uri);
        }
    }
    closedir(d);
    return rc;
}

int pw_schema_registry_add_dir(pw_schema_registry *reg, const char *dir, const char *base_uri,
                               char *err, size_t errlen)
{
    int count = 0;
    if (!reg || !dir) {
        pw_schema_set_err(err, errlen, "registry or directory missing");
        return -1;
    }
    if (add_dir_rec(reg, dir, "", base_uri, 0, &count, err, errlen) < 0) return -1;
    return count;
}
/* ---------------------------------------------------------------- pointer map */

static size_t ptr_hash(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x ^ (x >> 29));
}

void *pw_schema_pmap_get(const pmap *m, const void *k)
{
    if (!m->cap) return NULL;
    for (size_t i = ptr_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->e[i].key) return NULL;
        if (m->e[i].key == k) return m->e[i].val;
    }
}

int pw_schema_pmap_put(pmap *m, const void *k, void *v)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 256;
        pmap_ent *ne = calloc(nc, sizeof *ne);
        if (!ne) return -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->e[i].key) continue;
            size_t j = ptr_hash(m->e[i].key) & (nc - 1);
            while (ne[j].key)
                j = (j + 1) & (nc - 1);
            ne[j] = m->e[i];
        }
        free(m->e);
        m->e = ne;
        m->cap = nc;
    }
    size_t i = ptr_hash(k) & (m->cap - 1);
    while (m->e[i].key && m->e[i].key != k)
        i = (i + 1) & (m->cap - 1);
    if (!m->e[i].key) m->n++;
    m->e[i].key = k;
    m->e[i].val = v;
    return 0;
}
/* ---------------------------------------------------------------- index of resources */

static int add_uri(cctx *c, char *uri, json_t *target, int dynamic)
{
    for (size_t i = 0; i < c->n_uris; i++)
        if (!strcmp(c->uris[i].uri, uri)) {
            free(uri); /* first wins: retrieval URI and $id may coincide */
            return 0;
        }
    if (c->n_uris == c->cap_uris) {
        size_t nc = c->cap_uris ? c->cap_uris * 2 : 64;
        named_uri *nu = realloc(c->uris, nc * sizeof *nu);
        if (!nu) {
            free(uri);
            return -1;
        }
        c->uris = nu;
        c->cap_uris = nc;
    }
    c->uris[c->n_uris++] = (named_uri){uri, target, dynamic};
    return 0;
}

named_uri *pw_schema_find_uri(cctx *c, const char *uri)
{
    for (size_t i = 0; i < c->n_uris; i++)
        if (!strcmp(c->uris[i].uri, uri)) return &c->uris[i];
    return NULL;
}

char *pw_schema_with_fragment(const char *uri, const char *frag)
{
    size_t ul = strlen(uri), fl = strlen(frag);
    char *out = malloc(ul + fl + 2);
    if (!out) return NULL;
    memcpy(out, uri, ul);
    out[ul] = '#';
    memcpy(out + ul + 1, frag, fl + 1);
    return out;
}

char *pw_schema_ptr_append(const char *ptr, const char *seg)
{
    size_t n = strlen(ptr), extra = 0;
    for (const char *p = seg; *p; p++)
        extra += (*p == '~' || *p == '/') ? 2 : 1;
    char *out = malloc(n + extra + 2);
    if (!out) return NULL;
    memcpy(out, ptr, n);
    out[n++] = '/';
    for (const char *p = seg; *p; p++) {
        if (*p == '~')
            out[n++] = '~', out[n++] = '0';
        else if (*p == '/')
            out[n++] = '~', out[n++] = '1';
        else
            out[n++] = *p;
    }
    out[n] = 0;
    return out;
}

char *pw_schema_ptr_append_idx(const char *ptr, size_t i)
{
    char b[32];
    snprintf(b, sizeof b, "%zu", i);
    return pw_schema_ptr_append(ptr, b);
}

/* Keywords whose value is one subschema, an array of them, or an object of them. */
static const char *const kw_single[] = {"additionalProperties",
                                        "items",
                                        "contains",
                                        "not",
                                        "if",
                                        "then",
                                        "else",
                                        "unevaluatedItems",
                                        "unevaluatedProperties",
                                        "propertyNames",
                                        "contentSchema",
                                        "additionalItems",
                                        NULL};
static const char *const kw_array[] = {"allOf", "anyOf", "oneOf", "prefixItems", "items", NULL};
static const char *const kw_object[] = {
    "$defs",        "definitions", "properties", "patternProperties", "dependentSchemas",
    "dependencies", NULL};

static int index_walk(cctx *c, json_t *s, const char *base, json_t *resroot, const char *ptr,
                      const char *dialect, unsigned depth);

static int index_child(cctx *c, json_t *sub, const char *base, json_t *resroot, const char *ptr,
                       const char *seg, long idx, const char *dialect, unsigned depth)
{
    char *p =
        idx >= 0 ? pw_schema_ptr_append_idx(ptr, (size_t)idx) : pw_schema_ptr_append(ptr, seg);
    if (!p) return -1;
    int rc = index_walk(c, sub, base, resroot, p, dialect, depth + 1);
    free(p);
    return rc;
}

static int index_walk(cctx *c, json_t *s, const char *base, json_t *resroot, const char *ptr,
                      const char *dialect, unsigned depth)
{
    if (!json_is_object(s) && !json_is_boolean(s)) return 0;
    if (depth > c->max_depth) {
        pw_schema_set_err(c->err, c->errlen, "schema nesting deeper than %u at %s#%s", c->max_depth,
                          base, ptr);
        return -2;
    }
    if (pw_schema_pmap_get(&c->info, s)) return 0; /* same document registered twice */
    char *mybase = NULL;
    const char *myptr = ptr;
    if (json_is_object(s)) {
        json_t *sch = json_object_get(s, "$schema");
        if (json_is_string(sch)) dialect = json_string_value(sch);
        json_t *id = json_object_get(s, "$id");
        if (json_is_string(id) && json_string_value(id)[0] != '#') {
            mybase = pw_schema_uri_resolve(base, json_string_value(id));
            if (!mybase) return -1;
            char *hash = strchr(mybase, '#');
            if (hash) *hash = 0;
            char *u = strdup(mybase);
            if (!u || add_uri(c, u, s, 0) < 0) {
                free(mybase);
                return -1;
            }
            resroot = s;
            myptr = "";
        }
    }
    if (!mybase && !(mybase = strdup(base))) return -1;
    sinfo *si = calloc(1, sizeof *si);
    if (!si) {
        free(mybase);
        return -1;
    }
    si->base = mybase;
    si->resroot = resroot;
    si->ptr = strdup(myptr);
    si->dialect = dialect;
    if (c->n_infos == c->cap_infos) {
        size_t nc = c->cap_infos ? c->cap_infos * 2 : 256;
        sinfo **ni = realloc(c->infos, nc * sizeof *ni);
        if (!ni) {
            free(si->base), free(si->ptr), free(si);
            return -1;
        }
        c->infos = ni;
        c->cap_infos = nc;
    }
    c->infos[c->n_infos++] = si;
    if (!si->ptr || pw_schema_pmap_put(&c->info, s, si) < 0) return -1;
    if (!json_is_object(s)) return 0;
    const char *anchors[2] = {"$anchor", "$dynamicAnchor"};
    for (int k = 0; k < 2; k++) {
        json_t *a = json_object_get(s, anchors[k]);
        if (!json_is_string(a)) continue;
        char *u = pw_schema_with_fragment(mybase, json_string_value(a));
        if (!u || add_uri(c, u, s, k) < 0) return -1;
    }
    int rc;
    for (const char *const *k = kw_single; *k; k++) {
        json_t *v = json_object_get(s, *k);
        if (v && (rc = index_child(c, v, mybase, resroot, myptr, *k, -1, dialect, depth)))
            return rc;
    }
    for (const char *const *k = kw_array; *k; k++) {
        json_t *v = json_object_get(s, *k);
        if (!json_is_array(v)) continue;
        char *p = pw_schema_ptr_append(myptr, *k);
        if (!p) return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((rc = index_child(c, json_array_get(v, i), mybase, resroot, p, NULL, (long)i,
                                  dialect, depth))) {
                free(p);
                return rc;
            }
        free(p);
    }
    for (const char *const *k = kw_object; *k; k++) {
        json_t *v = json_object_get(s, *k);
        if (!json_is_object(v)) continue;
        char *p = pw_schema_ptr_append(myptr, *k);
        if (!p) return -1;
        const char *key;
        json_t *sub;
        json_object_foreach(v, key, sub)
        {
            if ((rc = index_child(c, sub, mybase, resroot, p, key, -1, dialect, depth))) {
                free(p);
                return rc;
            }
        }
        free(p);
    }
    return 0;
}

int pw_schema_index_doc(cctx *c, const char *uri, json_t *doc)
{
    char *u = strdup(uri);
    if (!u || add_uri(c, u, doc, 0) < 0) return -1;
    return index_walk(c, doc, uri, doc, "", NULL, 0);
}
