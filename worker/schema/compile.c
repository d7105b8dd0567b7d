/* compile.c: turns schema documents into the graph of nodes that evaluate.c walks. */
#include "pw/schema.h"

#include "schema_int.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_2020 "https://json-schema.org/draft/2020-12/schema"
#define DEFAULT_DEPTH 128u
#define DEFAULT_ERRORS 64u

/* ---------------------------------------------------------------- compiled graph */

/* V_LEGACY_ITEMS: the resource declares draft 2019-09 or older, where "items" may be
 * an array (tuple) with "additionalItems", and "prefixItems" is not a keyword. */
enum {
    V_CORE = 1,
    V_APPLICATOR = 2,
    V_UNEVALUATED = 4,
    V_VALIDATION = 8,
    V_FORMAT_ASSERT = 16,
    V_LEGACY_ITEMS = 32,
    V_ALL = 1 | 2 | 4 | 8
};

static void node_free(node *n)
{
    free(n->abs);
    free(n->all_of);
    free(n->any_of);
    free(n->one_of);
    free(n->dep_schemas);
    free(n->prefix);
    free(n->props);
    free(n->prop_hash);
    for (size_t i = 0; i < n->n_pattern_props; i++)
        pcre2_code_free(n->pattern_props[i].re);
    free(n->pattern_props);
    pcre2_code_free(n->pattern);
    free(n->dep_required);
    free(n);
}

void pw_schema_free(pw_schema *s)
{
    if (!s) return;
    for (node *n = s->nodes, *nx; n; n = nx) {
        nx = n->next_alloc;
        node_free(n);
    }
    for (size_t i = 0; i < s->n_resources; i++) {
        free(s->resources[i]->anchors);
        free(s->resources[i]);
    }
    free(s->resources);
    for (size_t i = 0; i < s->n_names; i++)
        free(s->names[i]);
    free(s->names);
    for (size_t i = 0; i < s->n_docs; i++)
        json_decref(s->docs[i]);
    free(s->docs);
    free(s);
}
/* ---------------------------------------------------------------- compile */

static node *compile_node(cctx *c, json_t *s, const char *base, json_t *resroot, const char *ptr,
                          unsigned vocab, unsigned depth);

static int intern_name(cctx *c, const char *name)
{
    pw_schema *s = c->s;
    for (size_t i = 0; i < s->n_names; i++)
        if (!strcmp(s->names[i], name)) return (int)i;
    char **nn = realloc(s->names, (s->n_names + 1) * sizeof *nn);
    if (!nn) return -1;
    s->names = nn;
    if (!(nn[s->n_names] = strdup(name))) return -1;
    return (int)s->n_names++;
}

static int pct_decode(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] != '%') {
            out[o++] = in[i];
            continue;
        }
        if (i + 2 >= n) return -1;
        char h[3] = {in[i + 1], in[i + 2], 0};
        char *end;
        long v = strtol(h, &end, 16);
        if (*end) return -1;
        out[o++] = (char)v;
        i += 2;
    }
    out[o] = 0;
    return (int)o;
}

/* Follows a JSON pointer (already percent-decoded) inside doc. */
static json_t *ptr_follow(json_t *doc, const char *ptr)
{
    json_t *cur = doc;
    const char *p = ptr;
    char seg[1024];
    while (*p) {
        if (*p != '/') return NULL;
        p++;
        size_t n = 0;
        while (*p && *p != '/') {
            if (n + 1 >= sizeof seg) return NULL;
            if (*p == '~') {
                if (p[1] == '0')
                    seg[n++] = '~';
                else if (p[1] == '1')
                    seg[n++] = '/';
                else
                    return NULL;
                p += 2;
            } else {
                seg[n++] = *p++;
            }
        }
        seg[n] = 0;
        if (json_is_object(cur)) {
            cur = json_object_get(cur, seg);
        } else if (json_is_array(cur)) {
            char *end;
            unsigned long i = strtoul(seg, &end, 10);
            if (*end || !n || (n > 1 && seg[0] == '0')) return NULL;
            cur = json_array_get(cur, i);
        } else {
            return NULL;
        }
        if (!cur) return NULL;
    }
    return cur;
}

static unsigned vocab_for(cctx *c, const char *dialect)
{
    if (!dialect) return V_ALL;
    char *u = pw_schema_uri_resolve(NULL, dialect);
    if (!u) return V_ALL;
    unsigned mask = V_ALL;
    if (!strcmp(u, "https://json-schema.org/draft/2019-09/schema") ||
        !strncmp(u, "http://json-schema.org/draft-0", 30)) {
        mask = V_ALL | V_LEGACY_ITEMS;
    } else if (strcmp(u, META_2020) != 0) {
        named_uri *nu = pw_schema_find_uri(c, u);
        json_t *voc =
            nu && json_is_object(nu->target) ? json_object_get(nu->target, "$vocabulary") : NULL;
        if (json_is_object(voc)) {
            static const struct {
                const char *suffix;
                unsigned bit;
            } known[] = {{"/vocab/core", V_CORE},
                         {"/vocab/applicator", V_APPLICATOR},
                         {"/vocab/unevaluated", V_UNEVALUATED},
                         {"/vocab/validation", V_VALIDATION},
                         {"/vocab/format-assertion", V_FORMAT_ASSERT}};
            mask = V_CORE;
            const char *k;
            json_t *v;
            json_object_foreach(voc, k, v)
            {
                size_t kl = strlen(k);
                for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
                    size_t sl = strlen(known[i].suffix);
                    if (kl >= sl && !strcmp(k + kl - sl, known[i].suffix)) mask |= known[i].bit;
                }
            }
        }
    }
    free(u);
    return mask;
}

/* Resolves ref against base to a compiled node; *anchor_out receives the plain-name
 * fragment (malloc'd) when there is one. */
static node *resolve_ref(cctx *c, const char *base, const char *ref, unsigned depth,
                         char **anchor_out, json_t **target_out)
{
    char *abs = pw_schema_uri_resolve(base, ref);
    if (!abs) {
        pw_schema_set_err(c->err, c->errlen, "out of memory");
        return NULL;
    }
    char *frag = strchr(abs, '#');
    if (frag) *frag++ = 0;
    named_uri *doc = pw_schema_find_uri(c, abs);
    if (!doc) {
        pw_schema_set_err(c->err, c->errlen,
                          "cannot resolve $ref \"%s\": no schema is registered as %s%s", ref, abs,
                          strncmp(abs, "https://json-schema.org/", 24)
                              ? ""
                              : " (register the meta-schemas, e.g. pw_schema_registry_add_dir on "
                                "json-schema-meta)");
        free(abs);
        return NULL;
    }
    json_t *target = doc->target;
    sinfo *di = pw_schema_pmap_get(&c->info, target);
    const char *tbase = di ? di->base : abs;
    json_t *tres = di ? di->resroot : target;
    char *tptr = NULL;
    if (frag && frag[0] == '/') {
        char *dec = malloc(strlen(frag) + 1);
        if (!dec || pct_decode(frag, strlen(frag), dec) < 0) {
            free(dec);
            pw_schema_set_err(c->err, c->errlen, "bad JSON pointer in $ref \"%s\"", ref);
            free(abs);
            return NULL;
        }
        target = ptr_follow(target, dec);
        tptr = dec;
        if (!target) {
            pw_schema_set_err(c->err, c->errlen, "cannot resolve $ref \"%s\": %s has nothing at %s",
                              ref, abs, frag);
            free(tptr);
            free(abs);
            return NULL;
        }
    } else if (frag && *frag) {
        char *u = pw_schema_with_fragment(abs, frag);
        if (!u) {
            free(abs);
            return NULL;
        }
        named_uri *an = pw_schema_find_uri(c, u);
        free(u);
        if (!an) {
            pw_schema_set_err(c->err, c->errlen,
                              "cannot resolve $ref \"%s\": no anchor \"%s\" in %s", ref, frag, abs);
            free(abs);
            return NULL;
        }
        target = an->target;
        if (anchor_out && !(*anchor_out = strdup(frag))) {
            free(abs);
            return NULL;
        }
    }
    sinfo *ti = pw_schema_pmap_get(&c->info, target);
    unsigned vocab = V_ALL;
    node *n;
    if (ti) {
        vocab = vocab_for(c, ti->dialect);
        n = compile_node(c, target, ti->base, ti->resroot, ti->ptr, vocab, depth);
    } else {
        /* inside a keyword this validator does not know: base is the resource's */
        n = compile_node(c, target, tbase, tres, tptr ? tptr : "", vocab, depth);
    }
    if (target_out) *target_out = target;
    free(tptr);
    free(abs);
    return n;
}

static node **compile_array(cctx *c, json_t *arr, const char *kw, const char *base, json_t *resroot,
                            const char *ptr, unsigned vocab, unsigned depth, size_t *count)
{
    size_t n = json_array_size(arr);
    *count = n;
    node **out = calloc(n ? n : 1, sizeof *out);
    char *p = pw_schema_ptr_append(ptr, kw);
    if (!out || !p) {
        free(out), free(p);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char *pi = pw_schema_ptr_append_idx(p, i);
        if (!pi || !(out[i] = compile_node(c, json_array_get(arr, i), base, resroot, pi, vocab,
                                           depth + 1))) {
            free(pi), free(p), free(out);
            return NULL;
        }
        free(pi);
    }
    free(p);
    return out;
}

static node *compile_child(cctx *c, json_t *sub, const char *kw, const char *key, const char *base,
                           json_t *resroot, const char *ptr, unsigned vocab, unsigned depth)
{
    char *p = pw_schema_ptr_append(ptr, kw);
    char *p2 = p && key ? pw_schema_ptr_append(p, key) : NULL;
    if (!p || (key && !p2)) {
        free(p), free(p2);
        return NULL;
    }
    node *n = compile_node(c, sub, base, resroot, key ? p2 : p, vocab, depth + 1);
    free(p);
    free(p2);
    return n;
}

static pcre2_code *compile_regex(cctx *c, const char *src, const char *where)
{
    char *tr = pw_schema_regex_translate(src);
    if (!tr) {
        pw_schema_set_err(c->err, c->errlen, "out of memory");
        return NULL;
    }
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)tr, PCRE2_ZERO_TERMINATED,
                      PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK, &ec, &off, NULL);
    free(tr);
    if (!re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ec, msg, sizeof msg);
        pw_schema_set_err(c->err, c->errlen, "%s: invalid regular expression \"%s\": %s", where,
                          src, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up; failure is harmless */
    return re;
}

static int get_nonneg(cctx *c, json_t *s, const char *kw, json_int_t *out, const char *where)
{
    json_t *v = json_object_get(s, kw);
    *out = -1;
    if (!v) return 0;
    double d = json_number_value(v);
    if (!json_is_number(v) || d < 0 || d != floor(d)) {
        pw_schema_set_err(c->err, c->errlen, "%s/%s: must be a non-negative integer", where, kw);
        return -1;
    }
    *out = d > 9e18 ? (json_int_t)9e18 : (json_int_t)d;
    return 0;
}

static unsigned type_bit(const char *t)
{
    static const struct {
        const char *n;
        unsigned b;
    } m[] = {{"null", T_NULL},     {"boolean", T_BOOL},  {"object", T_OBJECT},  {"array", T_ARRAY},
             {"number", T_NUMBER}, {"string", T_STRING}, {"integer", T_INTEGER}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(t, m[i].n)) return m[i].b;
    return 0;
}

static resource *resource_for(cctx *c, json_t *resroot, const char *base, unsigned depth)
{
    resource *r = pw_schema_pmap_get(&c->resmap, resroot);
    if (r) return r;
    if (!(r = calloc(1, sizeof *r))) return NULL;
    resource **nr = realloc(c->s->resources, (c->s->n_resources + 1) * sizeof *nr);
    if (!nr || pw_schema_pmap_put(&c->resmap, resroot, r) < 0) {
        free(r);
        if (nr) c->s->resources = nr;
        return NULL;
    }
    c->s->resources = nr;
    nr[c->s->n_resources++] = r;
    /* every $dynamicAnchor declared inside this resource: compiled now so that
     * $dynamicRef can jump to it without a lookup by name at validation time */
    size_t bl = strlen(base);
    for (size_t i = 0; i < c->n_uris; i++) {
        named_uri *u = &c->uris[i];
        if (!u->dynamic || strncmp(u->uri, base, bl) || u->uri[bl] != '#') continue;
        sinfo *ti = pw_schema_pmap_get(&c->info, u->target);
        if (!ti || ti->resroot != resroot) continue;
        int name = intern_name(c, u->uri + bl + 1);
        dyn_anchor *na = realloc(r->anchors, (r->n + 1) * sizeof *na);
        if (name < 0 || !na) return NULL;
        r->anchors = na;
        node *t = compile_node(c, u->target, ti->base, ti->resroot, ti->ptr,
                               vocab_for(c, ti->dialect), depth);
        if (!t) return NULL;
        r->anchors[r->n++] = (dyn_anchor){name, t};
    }
    return r;
}

/* Core vocabulary: $ref and $dynamicRef become pointers to the nodes they resolve to. */
static int compile_core(cctx *c, node *n, json_t *s, const char *base, unsigned depth,
                        const char *where)
{
    json_t *v;

    if ((v = json_object_get(s, "$ref"))) {
        if (!json_is_string(v)) {
            pw_schema_set_err(c->err, c->errlen, "%s/$ref: must be a string", where);
            return -1;
        }
        if (!(n->ref = resolve_ref(c, base, json_string_value(v), depth + 1, NULL, NULL)))
            return -1;
    }
    if ((v = json_object_get(s, "$dynamicRef"))) {
        if (!json_is_string(v)) {
            pw_schema_set_err(c->err, c->errlen, "%s/$dynamicRef: must be a string", where);
            return -1;
        }
        char *anchor = NULL;
        json_t *target = NULL;
        if (!(n->dynref =
                  resolve_ref(c, base, json_string_value(v), depth + 1, &anchor, &target))) {
            free(anchor);
            return -1;
        }
        json_t *da =
            anchor && json_is_object(target) ? json_object_get(target, "$dynamicAnchor") : NULL;
        /* dynamic only when the initial target itself declares the anchor */
        if (json_is_string(da) && !strcmp(json_string_value(da), anchor))
            n->dynref_name = intern_name(c, anchor);
        free(anchor);
    }
    return 0;
}

/* Applicator vocabulary, all but the object members: allOf, anyOf, oneOf, prefixItems,
 * not, if/then/else, items, contains, additionalProperties, propertyNames, and tuple
 * "items" with "additionalItems" before 2020-12. */
static int compile_applicator(cctx *c, node *n, json_t *s, const char *base, json_t *resroot,
                              const char *ptr, unsigned vocab, unsigned depth, const char *where)
{
    json_t *v;

    struct {
        const char *kw;
        node ***out;
        size_t *cnt;
    } arrs[] = {{"allOf", &n->all_of, &n->n_all},
                {"anyOf", &n->any_of, &n->n_any},
                {"oneOf", &n->one_of, &n->n_one},
                {"prefixItems", &n->prefix, &n->n_prefix}};
    for (size_t i = 0; i < 4; i++) {
        if (!(v = json_object_get(s, arrs[i].kw)) || (i == 3 && (vocab & V_LEGACY_ITEMS))) continue;
        if (!json_is_array(v) || (i < 3 && !json_array_size(v))) {
            pw_schema_set_err(c->err, c->errlen, "%s/%s: must be a non-empty array of schemas",
                              where, arrs[i].kw);
            return -1;
        }
        if (!(*arrs[i].out =
                  compile_array(c, v, arrs[i].kw, base, resroot, ptr, vocab, depth, arrs[i].cnt)))
            return -1;
    }
    struct {
        const char *kw;
        node **out;
    } singles[] = {{"not", &n->not_},
                   {"if", &n->if_},
                   {"then", &n->then_},
                   {"else", &n->else_},
                   {"items", &n->items},
                   {"contains", &n->contains},
                   {"additionalProperties", &n->additional_props},
                   {"propertyNames", &n->property_names}};
    for (size_t i = 0; i < sizeof singles / sizeof singles[0]; i++) {
        if (!(v = json_object_get(s, singles[i].kw)) ||
            (singles[i].out == &n->items && (vocab & V_LEGACY_ITEMS) && json_is_array(v)))
            continue;
        if (!(*singles[i].out =
                  compile_child(c, v, singles[i].kw, NULL, base, resroot, ptr, vocab, depth)))
            return -1;
    }
    if (!json_object_get(s, "if"))
        n->then_ = n->else_ = NULL; /* then/else without if are ignored */
    if ((vocab & V_LEGACY_ITEMS) && json_is_array(v = json_object_get(s, "items"))) {
        n->items = NULL;
        if (!(n->prefix =
                  compile_array(c, v, "items", base, resroot, ptr, vocab, depth, &n->n_prefix)))
            return -1;
        if ((v = json_object_get(s, "additionalItems")) &&
            !(n->items =
                  compile_child(c, v, "additionalItems", NULL, base, resroot, ptr, vocab, depth)))
            return -1;
    }
    return 0;
}

/* Applicator vocabulary, object members: properties (and its lookup table),
 * patternProperties, dependentSchemas and the schema half of "dependencies". */
static int compile_properties(cctx *c, node *n, json_t *s, const char *base, json_t *resroot,
                              const char *ptr, unsigned vocab, unsigned depth, const char *where)
{
    json_t *v;

    if ((v = json_object_get(s, "properties"))) {
        if (!json_is_object(v)) {
            pw_schema_set_err(c->err, c->errlen, "%s/properties: must be an object", where);
            return -1;
        }
        size_t cnt = json_object_size(v), i = 0;
        n->props = calloc(cnt ? cnt : 1, sizeof *n->props);
        n->prop_hash_cap = 4;
        while (n->prop_hash_cap < cnt * 2)
            n->prop_hash_cap *= 2;
        n->prop_hash = calloc(n->prop_hash_cap, sizeof *n->prop_hash);
        if (!n->props || !n->prop_hash) return -1;
        const char *key;
        json_t *sub;
        json_object_foreach(v, key, sub)
        {
            named_node *pn = &n->props[i];
            pn->key = key;
            pn->keylen = strlen(key);
            if (!(pn->n =
                      compile_child(c, sub, "properties", key, base, resroot, ptr, vocab, depth)))
                return -1;
            size_t h = pw_schema_str_hash(key, pn->keylen) & (n->prop_hash_cap - 1);
            while (n->prop_hash[h])
                h = (h + 1) & (n->prop_hash_cap - 1);
            n->prop_hash[h] = ++i;
        }
        n->n_props = i;
    }
    if ((v = json_object_get(s, "patternProperties"))) {
        if (!json_is_object(v)) {
            pw_schema_set_err(c->err, c->errlen, "%s/patternProperties: must be an object", where);
            return -1;
        }
        size_t cnt = json_object_size(v);
        if (!(n->pattern_props = calloc(cnt ? cnt : 1, sizeof *n->pattern_props))) return -1;
        const char *key;
        json_t *sub;
        json_object_foreach(v, key, sub)
        {
            regex_node *rn = &n->pattern_props[n->n_pattern_props];
            if (!(rn->re = compile_regex(c, key, where))) return -1;
            n->n_pattern_props++;
            rn->src = key;
            if (!(rn->n = compile_child(c, sub, "patternProperties", key, base, resroot, ptr, vocab,
                                        depth)))
                return -1;
        }
    }
    json_t *deps = json_object_get(s, "dependencies"); /* pre-2019 spelling */
    if ((v = json_object_get(s, "dependentSchemas")) || json_is_object(deps)) {
        if (v && !json_is_object(v)) {
            pw_schema_set_err(c->err, c->errlen, "%s/dependentSchemas: must be an object", where);
            return -1;
        }
        size_t cnt = json_object_size(v) + json_object_size(deps);
        if (!(n->dep_schemas = calloc(cnt ? cnt : 1, sizeof *n->dep_schemas))) return -1;
        const char *key;
        json_t *sub;
        json_object_foreach(deps, key, sub)
        {
            if (json_is_array(sub)) continue;
            named_node *dn = &n->dep_schemas[n->n_dep_schemas];
            dn->key = key;
            dn->keylen = strlen(key);
            if (!(dn->n =
                      compile_child(c, sub, "dependencies", key, base, resroot, ptr, vocab, depth)))
                return -1;
            n->n_dep_schemas++;
        }
        json_object_foreach(v, key, sub)
        {
            named_node *dn = &n->dep_schemas[n->n_dep_schemas];
            dn->key = key;
            dn->keylen = strlen(key);
            if (!(dn->n = compile_child(c, sub, "dependentSchemas", key, base, resroot, ptr, vocab,
                                        depth)))
                return -1;
            n->n_dep_schemas++;
        }
    }
    return 0;
}

/* Unevaluated vocabulary: unevaluatedItems and unevaluatedProperties. */
static int compile_unevaluated(cctx *c, node *n, json_t *s, const char *base, json_t *resroot,
                               const char *ptr, unsigned vocab, unsigned depth)
{
    json_t *v;

    if ((v = json_object_get(s, "unevaluatedItems")) &&
        !(n->uneval_items =
              compile_child(c, v, "unevaluatedItems", NULL, base, resroot, ptr, vocab, depth)))
        return -1;
    if ((v = json_object_get(s, "unevaluatedProperties")) &&
        !(n->uneval_props =
              compile_child(c, v, "unevaluatedProperties", NULL, base, resroot, ptr, vocab, depth)))
        return -1;
    return 0;
}

/* Validation vocabulary: type, enum, const, numeric and size bounds, pattern,
 * uniqueItems, required, dependentRequired and the name half of "dependencies". */
static int compile_validation(cctx *c, node *n, json_t *s, const char *where)
{
    json_t *v;

    if ((v = json_object_get(s, "type"))) {
        if (json_is_string(v)) {
            n->types = type_bit(json_string_value(v));
        } else if (json_is_array(v)) {
            for (size_t i = 0; i < json_array_size(v); i++)
                if (json_is_string(json_array_get(v, i)))
                    n->types |= type_bit(json_string_value(json_array_get(v, i)));
        }
        if (!n->types) {
            pw_schema_set_err(c->err, c->errlen, "%s/type: unknown type", where);
            return -1;
        }
    }
    if ((v = json_object_get(s, "enum"))) {
        if (!json_is_array(v)) {
            pw_schema_set_err(c->err, c->errlen, "%s/enum: must be an array", where);
            return -1;
        }
        n->enum_ = v;
    }
    n->const_ = json_object_get(s, "const");
    struct {
        const char *kw;
        json_t **out;
    } nums[] = {{"multipleOf", &n->multiple_of},
                {"maximum", &n->maximum},
                {"exclusiveMaximum", &n->exclusive_maximum},
                {"minimum", &n->minimum},
                {"exclusiveMinimum", &n->exclusive_minimum}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (!(v = json_object_get(s, nums[i].kw))) continue;
        if (!json_is_number(v) || (i == 0 && json_number_value(v) <= 0)) {
            pw_schema_set_err(c->err, c->errlen, "%s/%s: must be a number%s", where, nums[i].kw,
                              i == 0 ? " greater than 0" : "");
            return -1;
        }
        *nums[i].out = v;
    }
    if (get_nonneg(c, s, "maxLength", &n->max_length, where) ||
        get_nonneg(c, s, "minLength", &n->min_length, where) ||
        get_nonneg(c, s, "maxItems", &n->max_items, where) ||
        get_nonneg(c, s, "minItems", &n->min_items, where) ||
        get_nonneg(c, s, "maxProperties", &n->max_props, where) ||
        get_nonneg(c, s, "minProperties", &n->min_props, where) ||
        get_nonneg(c, s, "minContains", &n->min_contains, where) ||
        get_nonneg(c, s, "maxContains", &n->max_contains, where))
        return -1;
    if ((v = json_object_get(s, "pattern"))) {
        if (!json_is_string(v)) {
            pw_schema_set_err(c->err, c->errlen, "%s/pattern: must be a string", where);
            return -1;
        }
        n->pattern_src = json_string_value(v);
        if (!(n->pattern = compile_regex(c, n->pattern_src, where))) return -1;
    }
    n->unique_items = json_is_true(json_object_get(s, "uniqueItems"));
    if ((v = json_object_get(s, "required"))) {
        if (!json_is_array(v)) {
            pw_schema_set_err(c->err, c->errlen, "%s/required: must be an array of strings", where);
            return -1;
        }
        n->required = v;
    }
    json_t *deps = json_object_get(s, "dependencies"); /* pre-2019 spelling */
    if ((v = json_object_get(s, "dependentRequired")) || deps) {
        size_t cnt = json_object_size(v) + json_object_size(deps);
        if (!(n->dep_required = calloc(cnt ? cnt : 1, sizeof *n->dep_required))) return -1;
        const char *key;
        json_t *names;
        json_object_foreach(deps, key, names)
        {
            if (json_is_array(names)) n->dep_required[n->n_dep_required++] = (dep_req){key, names};
        }
        json_object_foreach(v, key, names)
        {
            if (!json_is_array(names)) {
                pw_schema_set_err(c->err, c->errlen, "%s/dependentRequired: values must be arrays",
                                  where);
                return -1;
            }
            n->dep_required[n->n_dep_required++] = (dep_req){key, names};
        }
    }
    return 0;
}

/* Format: asserted when the options or the resource's vocabularies say so, otherwise an
 * annotation that validation does not look at. */
static void compile_format(cctx *c, node *n, json_t *s, unsigned vocab)
{
    json_t *v;

    if ((v = json_object_get(s, "format")) && json_is_string(v) &&
        ((c->opts && c->opts->format_assertion) || (vocab & V_FORMAT_ASSERT))) {
        n->format_fn = pw_schema_format_lookup(json_string_value(v), &n->format_what);
    }
}

static node *compile_node(cctx *c, json_t *s, const char *base, json_t *resroot, const char *ptr,
                          unsigned vocab, unsigned depth)
{
    node *n = pw_schema_pmap_get(&c->compiled, s);
    if (n) return n;
    if (depth > c->max_depth) {
        pw_schema_set_err(c->err, c->errlen, "schema nesting deeper than %u at %s#%s", c->max_depth,
                          base, ptr);
        return NULL;
    }
    if (!json_is_object(s) && !json_is_boolean(s)) {
        pw_schema_set_err(c->err, c->errlen, "%s#%s: a schema must be an object or a boolean", base,
                          ptr);
        return NULL;
    }
    if (!(n = calloc(1, sizeof *n))) return NULL;
    n->next_alloc = c->s->nodes;
    c->s->nodes = n;
    n->dynref_name = -1;
    n->boolean = json_is_boolean(s) ? json_is_true(s) : -1;
    n->max_length = n->min_length = n->max_items = n->min_items = n->max_props = n->min_props =
        n->min_contains = n->max_contains = -1;
    if (pw_schema_pmap_put(&c->compiled, s, n) < 0) return NULL;
    sinfo *si = pw_schema_pmap_get(&c->info, s);
    if (si) {
        base = si->base;
        resroot = si->resroot;
        ptr = si->ptr;
    }
    if (!(n->abs = pw_schema_with_fragment(base, ptr))) return NULL;
    if (!(n->res = resource_for(c, resroot, base, depth))) return NULL;
    if (n->boolean >= 0) return n;

    char where[512];
    snprintf(where, sizeof where, "%s#%s", base, ptr);
    if ((vocab & V_CORE) && compile_core(c, n, s, base, depth, where) < 0) return NULL;
    if ((vocab & V_APPLICATOR) &&
        (compile_applicator(c, n, s, base, resroot, ptr, vocab, depth, where) < 0 ||
         compile_properties(c, n, s, base, resroot, ptr, vocab, depth, where) < 0))
        return NULL;
    if ((vocab & V_UNEVALUATED) &&
        compile_unevaluated(c, n, s, base, resroot, ptr, vocab, depth) < 0)
        return NULL;
    if ((vocab & V_VALIDATION) && compile_validation(c, n, s, where) < 0) return NULL;
    compile_format(c, n, s, vocab);

    n->has_num =
        n->multiple_of || n->maximum || n->exclusive_maximum || n->minimum || n->exclusive_minimum;
    n->has_str = n->max_length >= 0 || n->min_length >= 0 || n->pattern || n->format_fn;
    n->has_obj = n->n_props || n->n_pattern_props || n->additional_props || n->property_names ||
                 n->required || n->n_dep_required || n->max_props >= 0 || n->min_props >= 0 ||
                 n->n_dep_schemas || n->uneval_props;
    n->has_arr = n->n_prefix || n->items || n->contains || n->max_items >= 0 || n->min_items >= 0 ||
                 n->unique_items || n->uneval_items;
    return n;
}

/* Detects $ref loops that would recurse forever on any instance: a cycle of
 * in-place applicators (ref, allOf, anyOf, oneOf, not, if/then/else,
 * dependentSchemas, the initial $dynamicRef target). */
static int cycle_check(node *n, pmap *state, unsigned depth)
{
    if (!n || n->boolean >= 0) return 0;
    uintptr_t st = (uintptr_t)pw_schema_pmap_get(state, n);
    if (st == 1) return 1;
    if (st == 2 || depth > 100000) return 0;
    pw_schema_pmap_put(state, n, (void *)1);
    int loop = cycle_check(n->ref, state, depth + 1) || cycle_check(n->dynref, state, depth + 1) ||
               cycle_check(n->not_, state, depth + 1) || cycle_check(n->if_, state, depth + 1) ||
               cycle_check(n->then_, state, depth + 1) || cycle_check(n->else_, state, depth + 1);
    for (size_t i = 0; !loop && i < n->n_all; i++)
        loop = cycle_check(n->all_of[i], state, depth + 1);
    for (size_t i = 0; !loop && i < n->n_any; i++)
        loop = cycle_check(n->any_of[i], state, depth + 1);
    for (size_t i = 0; !loop && i < n->n_one; i++)
        loop = cycle_check(n->one_of[i], state, depth + 1);
    for (size_t i = 0; !loop && i < n->n_dep_schemas; i++)
        loop = cycle_check(n->dep_schemas[i].n, state, depth + 1);
    if (loop) return 1;
    pw_schema_pmap_put(state, n, (void *)2);
    return 0;
}

static pw_schema *compile_common(pw_schema_registry *reg, json_t *doc, const char *uri,
                                 const pw_schema_options *opts, char *err, size_t errlen)
{
    cctx c = {0};
    c.opts = opts;
    c.max_depth = opts && opts->max_schema_depth ? opts->max_schema_depth : DEFAULT_DEPTH;
    c.err = err;
    c.errlen = errlen;
    pw_schema_set_err(err, errlen, "out of memory");
    pw_schema *s = calloc(1, sizeof *s);
    pw_schema *ret = NULL;
    if (!s) return NULL;
    c.s = s;
    s->max_instance_depth =
        opts && opts->max_instance_depth ? opts->max_instance_depth : DEFAULT_DEPTH;
    s->max_errors = opts && opts->max_errors ? opts->max_errors : DEFAULT_ERRORS;
    size_t ndocs = (reg ? reg->n : 0) + (doc ? 1 : 0);
    if (!(s->docs = calloc(ndocs ? ndocs : 1, sizeof *s->docs))) goto out;
    int rc = 0;
    const char *anon = "urn:pw-schema:anonymous";
    if (doc) {
        json_t *id = json_is_object(doc) ? json_object_get(doc, "$id") : NULL;
        s->docs[s->n_docs++] = json_incref(doc);
        if ((rc = pw_schema_index_doc(&c, json_is_string(id) ? json_string_value(id) : anon, doc)))
            goto idxfail;
    }
    for (size_t i = 0; reg && i < reg->n; i++) {
        s->docs[s->n_docs++] = json_incref(reg->docs[i].doc);
        if ((rc = pw_schema_index_doc(&c, reg->docs[i].uri, reg->docs[i].doc))) goto idxfail;
    }
    if (doc) {
        sinfo *si = pw_schema_pmap_get(&c.info, doc);
        if (!si) {
            pw_schema_set_err(err, errlen, "a schema must be an object or a boolean");
            goto out;
        }
        s->root =
            compile_node(&c, doc, si->base, si->resroot, si->ptr, vocab_for(&c, si->dialect), 0);
    } else {
        pw_schema_set_err(err, errlen, "out of memory");
        s->root = resolve_ref(&c, NULL, uri, 0, NULL, NULL);
    }
    if (!s->root) goto out;
    pmap state = {0};
    int loop = cycle_check(s->root, &state, 0);
    for (size_t i = 0; !loop && i < s->n_resources; i++)
        for (size_t j = 0; !loop && j < s->resources[i]->n; j++)
            loop = cycle_check(s->resources[i]->anchors[j].target, &state, 0);
    free(state.e);
    if (loop) {
        pw_schema_set_err(err, errlen,
                          "$ref cycle: a schema refers to itself without consuming input");
        goto out;
    }
    ret = s;
    goto out;
idxfail:
    if (rc == -1) pw_schema_set_err(err, errlen, "out of memory");
out:
    for (size_t i = 0; i < c.n_uris; i++)
        free(c.uris[i].uri);
    free(c.uris);
    for (size_t i = 0; i < c.n_infos; i++) {
        free(c.infos[i]->base);
        free(c.infos[i]->ptr);
        free(c.infos[i]);
    }
    free(c.infos);
    free(c.info.e);
    free(c.compiled.e);
    free(c.resmap.e);
    if (!ret) pw_schema_free(s);
    return ret;
}

pw_schema *pw_schema_compile(pw_schema_registry *reg, const char *uri,
                             const pw_schema_options *opts, char *err, size_t errlen)
{
    if (!reg || !uri) {
        pw_schema_set_err(err, errlen, "registry or URI missing");
        return NULL;
    }
    return compile_common(reg, NULL, uri, opts, err, errlen);
}

pw_schema *pw_schema_compile_json(pw_schema_registry *reg, json_t *doc,
                                  const pw_schema_options *opts, char *err, size_t errlen)
{
    if (!doc) {
        pw_schema_set_err(err, errlen, "schema document missing");
        return NULL;
    }
    return compile_common(reg, doc, NULL, opts, err, errlen);
}
