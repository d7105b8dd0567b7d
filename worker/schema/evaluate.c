/* evaluate.c: JSON Schema 2020-12 validation of an instance against a compiled schema. */
#include "pw/schema.h"

#include "schema_int.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REGEX_MATCH_LIMIT 100000u
#define REGEX_DEPTH_LIMIT 5000u

/* ---------------------------------------------------------------- validation */

#define MAX_EVAL_DEPTH 1000u
#define MAX_IPATH 1024u
#define MAX_KPATH 2100u
#define INLINE_BITS 4u
/* Node evaluations (plus uniqueItems comparisons) allowed per validation: a schema
 * that branches widely over the same instance (allOf of allOfs ...) could otherwise
 * take exponential time.  About a second of work; ordinary requests use thousands. */
#define MAX_EVAL_STEPS 10000000ul

typedef struct seg {
    const char *s; /* NULL: idx is an array index */
    size_t idx;
} seg;

/* Evaluated items/properties of one instance, for unevaluated*.  Small sets live
 * inline so that validating ordinary instances allocates nothing. */
typedef struct bits {
    uint64_t *w;
    size_t nw;
    uint64_t inl[INLINE_BITS];
} bits;

typedef struct vctx {
    const pw_schema *s;
    pw_schema_result *res;
    int collect;
    int limit;
    unsigned depth, idepth;
    unsigned nscope, nip, nkp;
    unsigned long steps;
    const resource *scope[MAX_EVAL_DEPTH + 1];
    seg ip[MAX_IPATH];
    seg kp[MAX_KPATH];
} vctx;

static int bits_init(bits *b, size_t n)
{
    b->nw = (n + 63) / 64;
    if (b->nw <= INLINE_BITS) {
        b->w = b->inl;
        memset(b->inl, 0, sizeof b->inl);
        return 0;
    }
    b->w = calloc(b->nw, sizeof *b->w);
    return b->w ? 0 : -1;
}

static void bits_free(bits *b)
{
    if (b->w != b->inl) free(b->w);
}

static void bits_set(bits *b, size_t i)
{
    if (b && i / 64 < b->nw) b->w[i / 64] |= 1ull << (i % 64);
}

static int bits_get(const bits *b, size_t i)
{
    return (b->w[i / 64] >> (i % 64)) & 1;
}

static void bits_all(bits *b)
{
    if (b) memset(b->w, 0xff, b->nw * sizeof *b->w);
}

static void bits_or(bits *dst, const bits *src)
{
    for (size_t i = 0; i < dst->nw && i < src->nw; i++)
        dst->w[i] |= src->w[i];
}

/* -- numbers and equality */

static int is_integral(const json_t *v)
{
    if (json_is_integer(v)) return 1;
    if (!json_is_real(v)) return 0;
    double d = json_real_value(v);
    return isfinite(d) && d == floor(d);
}

static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    long double x = json_is_integer(a) ? (long double)json_integer_value(a) : json_real_value(a);
    long double y = json_is_integer(b) ? (long double)json_integer_value(b) : json_real_value(b);
    return x < y ? -1 : x > y;
}

static int json_eq(const json_t *a, const json_t *b, unsigned depth)
{
    if (depth > 256) return 0;
    if (json_is_number(a) && json_is_number(b)) return num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b)) return 0;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b)) return 0;
        for (size_t i = 0; i < n; i++)
            if (!json_eq(json_array_get(a, i), json_array_get(b, i), depth + 1)) return 0;
        return 1;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !json_eq(v, w, depth + 1)) return 0;
        }
        return 1;
    }
    default:
        return 1; /* true, false, null: same type is equal */
    }
}

static int multiple_of(const json_t *v, const json_t *m)
{
    if (json_is_integer(v) && json_is_integer(m)) {
        json_int_t d = json_integer_value(m);
        return d > 0 && json_integer_value(v) % d == 0;
    }
    double x = json_number_value(v), y = json_number_value(m);
    double q = x / y;
    if (!isfinite(q)) {
        /* overflow: an integer is still a multiple of 1/k for integer k (0.5, 0.25) */
        double inv = 1.0 / y;
        return is_integral(v) && isfinite(inv) && inv == floor(inv);
    }
    double r = fabs(q - nearbyint(q));
    return r <= fabs(q) * 4 * 2.220446049250313e-16 || r == 0;
}

static size_t utf8_len(const char *s, size_t n)
{
    size_t cp = 0;
    for (size_t i = 0; i < n; i++)
        cp += ((unsigned char)s[i] & 0xC0) != 0x80;
    return cp;
}

/* -- regular expressions: thread-local match data, shared limits */

static pthread_once_t re_once = PTHREAD_ONCE_INIT;
static pthread_key_t re_key;
static pcre2_match_context *re_mctx;

static void re_md_free(void *p)
{
    pcre2_match_data_free(p);
}

static void re_init(void)
{
    pthread_key_create(&re_key, re_md_free);
    re_mctx = pcre2_match_context_create(NULL);
    if (re_mctx) {
        pcre2_set_match_limit(re_mctx, REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(re_mctx, REGEX_DEPTH_LIMIT);
    }
}

/* 1: match, 0: no match, -1: a limit was hit (counts as no match). */
static int re_search(vctx *c, const pcre2_code *re, const char *s, size_t n)
{
    pthread_once(&re_once, re_init);
    pcre2_match_data *md = pthread_getspecific(re_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (!md || pthread_setspecific(re_key, md)) {
            pcre2_match_data_free(md);
            c->limit = 1;
            return -1;
        }
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, re_mctx);
    if (rc >= 0 || rc == PCRE2_ERROR_PARTIAL) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    c->limit = 1;
    return -1;
}

/* -- error reporting (only in collect mode) */

static void kp_push(vctx *c, const char *s)
{
    if (c->collect && c->nkp < MAX_KPATH) c->kp[c->nkp] = (seg){s, 0};
    if (c->collect) c->nkp++;
}

static void kp_push_idx(vctx *c, size_t i)
{
    if (c->collect && c->nkp < MAX_KPATH) c->kp[c->nkp] = (seg){NULL, i};
    if (c->collect) c->nkp++;
}

static void kp_pop(vctx *c, unsigned n)
{
    if (c->collect) c->nkp -= n;
}

static char *path_string(const seg *segs, unsigned n, unsigned cap, const char *k1, const char *k2)
{
    size_t len = 1;
    if (n > cap) n = cap;
    for (unsigned i = 0; i < n; i++)
        len += segs[i].s ? strlen(segs[i].s) * 2 + 1 : 22;
    len += (k1 ? strlen(k1) * 2 + 1 : 0) + (k2 ? strlen(k2) * 2 + 1 : 0);
    char *out = malloc(len), *o = out;
    if (!out) return NULL;
    for (unsigned i = 0; i <= n + 1; i++) {
        const char *s;
        if (i < n) {
            if (!segs[i].s) {
                o += sprintf(o, "/%zu", segs[i].idx);
                continue;
            }
            s = segs[i].s;
        } else {
            s = i == n ? k1 : k2;
            if (!s) continue;
        }
        *o++ = '/';
        for (; *s; s++) {
            if (*s == '~')
                *o++ = '~', *o++ = '0';
            else if (*s == '/')
                *o++ = '~', *o++ = '1';
            else
                *o++ = *s;
        }
    }
    *o = 0;
    return out;
}

/* Renders v for a message; a no-op outside collect mode, so that failing
 * subschemas on the fast path (if, anyOf branches) cost nothing. */
static void render(const vctx *c, const json_t *v, char *buf, size_t n)
{
    buf[0] = 0;
    if (!c->collect) return;
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!s) {
        snprintf(buf, n, "(value)");
        return;
    }
    if (strlen(s) > 60)
        snprintf(buf, n, "%.57s...", s);
    else
        snprintf(buf, n, "%s", s);
    free(s);
}

static void error_free(pw_schema_error *e)
{
    free(e->instance_location);
    free(e->keyword_location);
    free(e->absolute_keyword_location);
    free(e->message);
}

static void report(vctx *c, const node *n, const char *kw, const char *kw2, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void report(vctx *c, const node *n, const char *kw, const char *kw2, const char *fmt, ...)
{
    if (!c->collect || !c->res) return;
    pw_schema_result *r = c->res;
    if (r->count >= c->s->max_errors) {
        r->truncated = 1;
        return;
    }
    if (!r->errors && !(r->errors = calloc(c->s->max_errors, sizeof *r->errors))) return;
    pw_schema_error *e = &r->errors[r->count];
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e->instance_location = path_string(c->ip, c->nip, MAX_IPATH, NULL, NULL);
    e->keyword_location = path_string(c->kp, c->nkp, MAX_KPATH, kw, kw2);
    e->message = strdup(msg);
    const char *abs = n ? n->abs : "";
    size_t al = strlen(abs);
    char *kws = path_string(NULL, 0, 0, kw, kw2);
    if (kws && (e->absolute_keyword_location = malloc(al + strlen(kws) + 1)))
        sprintf(e->absolute_keyword_location, "%s%s", abs, kws);
    free(kws);
    r->count++;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return is_integral(v) ? "integer" : "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static void types_text(unsigned t, char *buf, size_t n)
{
    static const char *names[] = {"null",   "boolean", "object", "array",
                                  "number", "string",  "integer"};
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < 7; i++)
        if (t & (1u << i))
            o += (size_t)snprintf(buf + o, o < n ? n - o : 0, "%s%s", o ? " or " : "", names[i]);
}

/* -- evaluation */

static int eval(vctx *c, const node *n, const json_t *inst, bits *ann);

#define FAIL()                                                                                     \
    do {                                                                                           \
        ok = 0;                                                                                    \
        if (!c->collect) return 0;                                                                 \
    } while (0)

/* Evaluates a child instance (array item or property value). */
static int eval_child(vctx *c, const node *n, const json_t *inst, const char *key, size_t idx)
{
    if (c->idepth >= c->s->max_instance_depth) {
        c->limit = 1;
        if (c->collect)
            report(c, NULL, NULL, NULL, "instance nested deeper than %u levels",
                   c->s->max_instance_depth);
        return 0;
    }
    if (c->collect) {
        if (c->nip < MAX_IPATH) c->ip[c->nip] = (seg){key, idx};
        c->nip++;
    }
    c->idepth++;
    int ok = eval(c, n, inst, NULL);
    c->idepth--;
    if (c->collect) c->nip--;
    return ok;
}

static int eval_in_place(vctx *c, const node *sub, const json_t *inst, bits *ann, const char *kw,
                         long idx)
{
    kp_push(c, kw);
    if (idx >= 0) kp_push_idx(c, (size_t)idx);
    int ok = eval(c, sub, inst, ann);
    kp_pop(c, idx >= 0 ? 2 : 1);
    return ok;
}

static size_t ann_size(const json_t *inst)
{
    return json_is_array(inst) ? json_array_size(inst) : json_object_size(inst);
}

/* anyOf / oneOf: validity is decided without collecting errors; when the keyword
 * fails in collect mode the branches are evaluated again for their errors. */
static int eval_choice(vctx *c, const node *n, node *const *subs, size_t cnt, const char *kw,
                       int one, const json_t *inst, bits *ann)
{
    int saved = c->collect;
    unsigned savednkp = c->nkp;
    c->collect = 0;
    size_t valid = 0, first = 0, second = 0;
    for (size_t i = 0; i < cnt; i++) {
        bits tmp;
        if (ann && bits_init(&tmp, ann_size(inst)) < 0) {
            c->limit = 1;
            break;
        }
        if (eval(c, subs[i], inst, ann ? &tmp : NULL)) {
            if (!valid)
                first = i;
            else if (valid == 1)
                second = i;
            valid++;
            if (ann && (!one || valid == 1)) bits_or(ann, &tmp);
        }
        if (ann) bits_free(&tmp);
        if (valid && !one && !ann) break;
        if (valid > 1 && one) break;
    }
    c->collect = saved;
    c->nkp = savednkp;
    if (one ? valid == 1 : valid > 0) return 1;
    if (!c->collect) return 0;
    char v[80];
    render(c, inst, v, sizeof v);
    if (valid > 1) {
        report(c, n, kw, NULL, "%s matches more than one schema in %s (%zu and %zu)", v, kw, first,
               second);
        return 0;
    }
    report(c, n, kw, NULL, "%s does not match any schema in %s", v, kw);
    /* The branches' own errors.  A branch that failed on a const/enum (a
     * discriminator such as "kind") is left out when another branch failed only
     * on other keywords: that one is what the author meant. */
    pw_schema_result *r = c->res;
    size_t base = r ? r->count : 0;
    size_t *start = calloc(cnt + 1, sizeof *start);
    int *disc = calloc(cnt + 1, sizeof *disc);
    int any_plain = 0;
    for (size_t i = 0; i < cnt; i++) {
        start[i] = r ? r->count : 0;
        eval_in_place(c, subs[i], inst, NULL, kw, (long)i);
        for (size_t e = start[i]; disc && r && e < r->count; e++) {
            const char *k = r->errors[e].keyword_location;
            size_t kl = k ? strlen(k) : 0;
            if ((kl >= 6 && !strcmp(k + kl - 6, "/const")) ||
                (kl >= 5 && !strcmp(k + kl - 5, "/enum")))
                disc[i] = 1;
        }
        if (disc && !disc[i]) any_plain = 1;
    }
    if (start && disc && r && any_plain && !r->truncated) {
        start[cnt] = r->count;
        size_t o = base;
        for (size_t i = 0; i < cnt; i++) {
            for (size_t e = start[i]; e < start[i + 1]; e++) {
                if (disc[i])
                    error_free(&r->errors[e]);
                else
                    r->errors[o++] = r->errors[e];
            }
        }
        r->count = o;
    }
    free(start);
    free(disc);
    return 0;
}

static int eval_array(vctx *c, const node *n, const json_t *inst, bits *ann)
{
    int ok = 1;
    size_t size = json_array_size(inst);
    char v[80];
    for (size_t i = 0; i < n->n_prefix && i < size; i++) {
        kp_push(c, "prefixItems");
        kp_push_idx(c, i);
        if (!eval_child(c, n->prefix[i], json_array_get(inst, i), NULL, i)) {
            kp_pop(c, 2);
            FAIL();
        } else {
            kp_pop(c, 2);
        }
        bits_set(ann, i);
    }
    if (n->items) {
        kp_push(c, "items");
        for (size_t i = n->n_prefix; i < size; i++) {
            if (!eval_child(c, n->items, json_array_get(inst, i), NULL, i)) {
                kp_pop(c, 1);
                FAIL();
                kp_push(c, "items");
            }
        }
        kp_pop(c, 1);
        if (size > n->n_prefix) bits_all(ann);
    }
    if (n->contains) {
        int saved = c->collect;
        c->collect = 0;
        json_int_t count = 0, min = n->min_contains >= 0 ? n->min_contains : 1;
        for (size_t i = 0; i < size; i++) {
            if (eval(c, n->contains, json_array_get(inst, i), NULL)) {
                count++;
                bits_set(ann, i);
                if (!ann && n->max_contains < 0 && count >= min) break;
            }
        }
        c->collect = saved;
        if (count < min) {
            if (min == 1)
                report(c, n, "contains", NULL, "no item of the array matches \"contains\"");
            else
                report(c, n, "minContains", NULL,
                       "%lld items match \"contains\", at least %lld are required",
                       (long long)count, (long long)min);
            FAIL();
        }
        if (n->max_contains >= 0 && count > n->max_contains) {
            report(c, n, "maxContains", NULL,
                   "%lld items match \"contains\", at most %lld are allowed", (long long)count,
                   (long long)n->max_contains);
            FAIL();
        }
    }
    if (n->max_items >= 0 && (json_int_t)size > n->max_items) {
        report(c, n, "maxItems", NULL, "array has %zu items, at most %lld are allowed", size,
               (long long)n->max_items);
        FAIL();
    }
    if (n->min_items >= 0 && (json_int_t)size < n->min_items) {
        report(c, n, "minItems", NULL, "array has %zu items, at least %lld are required", size,
               (long long)n->min_items);
        FAIL();
    }
    if (n->unique_items) {
        for (size_t i = 0; i < size; i++)
            for (size_t j = i + 1; j < size; j++)
                if ((c->steps += 1) > MAX_EVAL_STEPS) {
                    c->limit = 1;
                    report(c, n, "uniqueItems", NULL, "array too large to check uniqueItems");
                    FAIL();
                    i = j = size;
                } else if (json_eq(json_array_get(inst, i), json_array_get(inst, j), 0)) {
                    render(c, json_array_get(inst, i), v, sizeof v);
                    report(c, n, "uniqueItems", NULL, "items %zu and %zu are equal (%s)", i, j, v);
                    FAIL();
                    i = j = size;
                }
    }
    return ok;
}

static const named_node *prop_lookup(const node *n, const char *key, size_t kl)
{
    size_t mask = n->prop_hash_cap - 1;
    for (size_t h = pw_schema_str_hash(key, kl) & mask;; h = (h + 1) & mask) {
        size_t i = n->prop_hash[h];
        if (!i) return NULL;
        const named_node *p = &n->props[i - 1];
        if (p->keylen == kl && !memcmp(p->key, key, kl)) return p;
    }
}

static int eval_object(vctx *c, const node *n, const json_t *inst, bits *ann)
{
    int ok = 1;
    const char *key;
    json_t *val;
    size_t idx = 0;
    if (n->n_props && !n->n_pattern_props && !n->additional_props && !n->property_names && !ann &&
        n->n_props <= json_object_size(inst)) {
        /* only "properties" and no annotations wanted: look the schema's names up in
         * the instance rather than walking every instance member */
        for (size_t i = 0; i < n->n_props; i++) {
            const named_node *p = &n->props[i];
            json_t *pv = json_object_getn(inst, p->key, p->keylen);
            if (!pv) continue;
            kp_push(c, "properties");
            kp_push(c, p->key);
            int r = eval_child(c, p->n, pv, p->key, 0);
            kp_pop(c, 2);
            if (!r) FAIL();
        }
    } else if (n->n_props || n->n_pattern_props || n->additional_props || n->property_names) {
        json_object_foreach((json_t *)inst, key, val)
        {
            size_t kl = strlen(key);
            int matched = 0;
            if (n->n_props) {
                const named_node *p = prop_lookup(n, key, kl);
                if (p) {
                    matched = 1;
                    kp_push(c, "properties");
                    kp_push(c, p->key);
                    int r = eval_child(c, p->n, val, key, 0);
                    kp_pop(c, 2);
                    if (!r) FAIL();
                }
            }
            for (size_t i = 0; i < n->n_pattern_props; i++) {
                int m = re_search(c, n->pattern_props[i].re, key, kl);
                if (m <= 0) continue;
                matched = 1;
                kp_push(c, "patternProperties");
                kp_push(c, n->pattern_props[i].src);
                int r = eval_child(c, n->pattern_props[i].n, val, key, 0);
                kp_pop(c, 2);
                if (!r) FAIL();
            }
            if (!matched && n->additional_props) {
                matched = 1;
                if (n->additional_props->boolean == 0) {
                    report(c, n, "additionalProperties", NULL, "property \"%s\" is not allowed",
                           key);
                    FAIL();
                } else {
                    kp_push(c, "additionalProperties");
                    int r = eval_child(c, n->additional_props, val, key, 0);
                    kp_pop(c, 1);
                    if (!r) FAIL();
                }
            }
            if (matched) bits_set(ann, idx);
            if (n->property_names) {
                json_t *k = json_stringn_nocheck(key, kl);
                kp_push(c, "propertyNames");
                int r = k && eval_child(c, n->property_names, k, key, 0);
                kp_pop(c, 1);
                json_decref(k);
                if (!r) FAIL();
            }
            idx++;
        }
    }
    if (n->required) {
        for (size_t i = 0; i < json_array_size(n->required); i++) {
            const char *name = json_string_value(json_array_get(n->required, i));
            if (name && !json_object_get(inst, name)) {
                report(c, n, "required", NULL, "required property \"%s\" is missing", name);
                FAIL();
            }
        }
    }
    for (size_t d = 0; d < n->n_dep_required; d++) {
        if (!json_object_get(inst, n->dep_required[d].key)) continue;
        json_t *names = n->dep_required[d].names;
        for (size_t i = 0; i < json_array_size(names); i++) {
            const char *name = json_string_value(json_array_get(names, i));
            if (name && !json_object_get(inst, name)) {
                report(c, n, "dependentRequired", n->dep_required[d].key,
                       "property \"%s\" is required when \"%s\" is present", name,
                       n->dep_required[d].key);
                FAIL();
            }
        }
    }
    size_t size = json_object_size(inst);
    if (n->max_props >= 0 && (json_int_t)size > n->max_props) {
        report(c, n, "maxProperties", NULL, "object has %zu properties, at most %lld are allowed",
               size, (long long)n->max_props);
        FAIL();
    }
    if (n->min_props >= 0 && (json_int_t)size < n->min_props) {
        report(c, n, "minProperties", NULL, "object has %zu properties, at least %lld are required",
               size, (long long)n->min_props);
        FAIL();
    }
    return ok;
}

static int eval_string(vctx *c, const node *n, const json_t *inst)
{
    int ok = 1;
    const char *s = json_string_value(inst);
    size_t bl = json_string_length(inst);
    char v[80];
    if (n->max_length >= 0 || n->min_length >= 0) {
        size_t len = utf8_len(s, bl);
        if (n->max_length >= 0 && (json_int_t)len > n->max_length) {
            render(c, inst, v, sizeof v);
            report(c, n, "maxLength", NULL, "%s is longer than %lld characters", v,
                   (long long)n->max_length);
            FAIL();
        }
        if (n->min_length >= 0 && (json_int_t)len < n->min_length) {
            render(c, inst, v, sizeof v);
            report(c, n, "minLength", NULL, "%s is shorter than %lld characters", v,
                   (long long)n->min_length);
            FAIL();
        }
    }
    if (n->pattern) {
        int m = re_search(c, n->pattern, s, bl);
        if (m <= 0) {
            render(c, inst, v, sizeof v);
            if (m < 0)
                report(c, n, "pattern", NULL, "%s: matching pattern \"%s\" hit the match limit", v,
                       n->pattern_src);
            else
                report(c, n, "pattern", NULL, "%s does not match the pattern \"%s\"", v,
                       n->pattern_src);
            FAIL();
        }
    }
    if (n->format_fn && !n->format_fn(s, bl)) {
        render(c, inst, v, sizeof v);
        report(c, n, "format", NULL, "%s is not %s", v, n->format_what);
        FAIL();
    }
    return ok;
}

static int eval_number(vctx *c, const node *n, const json_t *inst)
{
    int ok = 1;
    char v[80], lim[80];
    struct {
        const json_t *bound;
        const char *kw;
        int bad_if; /* fails when num_cmp(inst, bound) is one of these */
        const char *text;
    } checks[] = {{n->maximum, "maximum", 1, "greater than the maximum"},
                  {n->exclusive_maximum, "exclusiveMaximum", 2, "not less than"},
                  {n->minimum, "minimum", -1, "less than the minimum"},
                  {n->exclusive_minimum, "exclusiveMinimum", -2, "not greater than"}};
    for (size_t i = 0; i < 4; i++) {
        if (!checks[i].bound) continue;
        int r = num_cmp(inst, checks[i].bound);
        int bad = checks[i].bad_if == 1    ? r > 0
                  : checks[i].bad_if == 2  ? r >= 0
                  : checks[i].bad_if == -1 ? r < 0
                                           : r <= 0;
        if (bad) {
            render(c, inst, v, sizeof v);
            render(c, checks[i].bound, lim, sizeof lim);
            report(c, n, checks[i].kw, NULL, "%s is %s %s", v, checks[i].text, lim);
            FAIL();
        }
    }
    if (n->multiple_of && !multiple_of(inst, n->multiple_of)) {
        render(c, inst, v, sizeof v);
        render(c, n->multiple_of, lim, sizeof lim);
        report(c, n, "multipleOf", NULL, "%s is not a multiple of %s", v, lim);
        FAIL();
    }
    return ok;
}

static int eval_keywords(vctx *c, const node *n, const json_t *inst, bits *ann)
{
    int ok = 1;
    char v[80];
    if (n->types) {
        unsigned t;
        switch (json_typeof(inst)) {
        case JSON_OBJECT:
            t = T_OBJECT;
            break;
        case JSON_ARRAY:
            t = T_ARRAY;
            break;
        case JSON_STRING:
            t = T_STRING;
            break;
        case JSON_INTEGER:
            t = T_NUMBER | T_INTEGER;
            break;
        case JSON_REAL:
            t = T_NUMBER | (is_integral(inst) ? T_INTEGER : 0);
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            t = T_BOOL;
            break;
        default:
            t = T_NULL;
        }
        if (!(n->types & t)) {
            char want[96];
            render(c, inst, v, sizeof v);
            types_text(n->types, want, sizeof want);
            report(c, n, "type", NULL, "%s is of type %s, expected %s", v, type_name(inst), want);
            FAIL();
        }
    }
    if (n->const_ && !json_eq(inst, n->const_, 0)) {
        char want[80];
        render(c, inst, v, sizeof v);
        render(c, n->const_, want, sizeof want);
        report(c, n, "const", NULL, "%s is not the allowed value %s", v, want);
        FAIL();
    }
    if (n->enum_) {
        size_t i, cnt = json_array_size(n->enum_);
        for (i = 0; i < cnt; i++)
            if (json_eq(inst, json_array_get(n->enum_, i), 0)) break;
        if (i == cnt) {
            char want[80];
            render(c, inst, v, sizeof v);
            render(c, n->enum_, want, sizeof want);
            report(c, n, "enum", NULL, "%s is not one of the allowed values %s", v, want);
            FAIL();
        }
    }
    if (n->has_num && json_is_number(inst) && !eval_number(c, n, inst)) FAIL();
    if (n->has_str && json_is_string(inst) && !eval_string(c, n, inst)) FAIL();
    if (n->ref && !eval_in_place(c, n->ref, inst, ann, "$ref", -1)) FAIL();
    if (n->dynref) {
        const node *target = n->dynref;
        if (n->dynref_name >= 0) {
            for (unsigned i = 0; i < c->nscope && target == n->dynref; i++) {
                const resource *r = c->scope[i];
                for (size_t j = 0; j < r->n; j++)
                    if (r->anchors[j].name == n->dynref_name) {
                        target = r->anchors[j].target;
                        break;
                    }
            }
        }
        if (!eval_in_place(c, target, inst, ann, "$dynamicRef", -1)) FAIL();
    }
    for (size_t i = 0; i < n->n_all; i++)
        if (!eval_in_place(c, n->all_of[i], inst, ann, "allOf", (long)i)) FAIL();
    if (n->n_any && !eval_choice(c, n, n->any_of, n->n_any, "anyOf", 0, inst, ann)) FAIL();
    if (n->n_one && !eval_choice(c, n, n->one_of, n->n_one, "oneOf", 1, inst, ann)) FAIL();
    if (n->not_) {
        int saved = c->collect;
        c->collect = 0;
        int r = eval(c, n->not_, inst, NULL);
        c->collect = saved;
        if (r) {
            render(c, inst, v, sizeof v);
            report(c, n, "not", NULL, "%s must not match the schema in \"not\"", v);
            FAIL();
        }
    }
    if (n->if_) {
        int saved = c->collect;
        c->collect = 0;
        bits tmp;
        int have_tmp = ann && bits_init(&tmp, ann_size(inst)) == 0;
        int r = eval(c, n->if_, inst, have_tmp ? &tmp : NULL);
        c->collect = saved;
        if (r && have_tmp) bits_or(ann, &tmp);
        if (have_tmp) bits_free(&tmp);
        const node *branch = r ? n->then_ : n->else_;
        if (branch && !eval_in_place(c, branch, inst, ann, r ? "then" : "else", -1)) FAIL();
    }
    if (n->has_obj && json_is_object(inst)) {
        for (size_t i = 0; i < n->n_dep_schemas; i++) {
            if (!json_object_get(inst, n->dep_schemas[i].key)) continue;
            kp_push(c, "dependentSchemas");
            int r = eval_in_place(c, n->dep_schemas[i].n, inst, ann, n->dep_schemas[i].key, -1);
            kp_pop(c, 1);
            if (!r) FAIL();
        }
        if (!eval_object(c, n, inst, ann)) FAIL();
        if (n->uneval_props) {
            const char *key;
            json_t *val;
            size_t idx = 0;
            json_object_foreach((json_t *)inst, key, val)
            {
                if (!bits_get(ann, idx++)) {
                    if (n->uneval_props->boolean == 0) {
                        report(c, n, "unevaluatedProperties", NULL,
                               "property \"%s\" is not allowed", key);
                        FAIL();
                        continue;
                    }
                    kp_push(c, "unevaluatedProperties");
                    int r = eval_child(c, n->uneval_props, val, key, 0);
                    kp_pop(c, 1);
                    if (!r) FAIL();
                }
            }
            bits_all(ann);
        }
    } else if (n->has_arr && json_is_array(inst)) {
        if (!eval_array(c, n, inst, ann)) FAIL();
        if (n->uneval_items) {
            size_t size = json_array_size(inst);
            for (size_t i = 0; i < size; i++) {
                if (bits_get(ann, i)) continue;
                if (n->uneval_items->boolean == 0) {
                    report(c, n, "unevaluatedItems", NULL, "item %zu is not allowed", i);
                    FAIL();
                    continue;
                }
                kp_push(c, "unevaluatedItems");
                int r = eval_child(c, n->uneval_items, json_array_get(inst, i), NULL, i);
                kp_pop(c, 1);
                if (!r) FAIL();
            }
            bits_all(ann);
        }
    }
    return ok;
}

static int eval(vctx *c, const node *n, const json_t *inst, bits *ann)
{
    if (n->boolean == 1) return 1;
    if (n->boolean == 0) {
        report(c, n, NULL, NULL, "no value is allowed here");
        return 0;
    }
    if (c->depth >= MAX_EVAL_DEPTH || ++c->steps > MAX_EVAL_STEPS) {
        if (!c->limit)
            report(c, n, NULL, NULL, "schema evaluation exceeded its bounds (%u levels, %lu steps)",
                   MAX_EVAL_DEPTH, MAX_EVAL_STEPS);
        c->limit = 1;
        return 0;
    }
    c->depth++;
    int pushed = 0;
    if (!c->nscope || c->scope[c->nscope - 1] != n->res) {
        c->scope[c->nscope++] = n->res;
        pushed = 1;
    }
    bits local, *mine = ann;
    int own = 0;
    if ((n->uneval_items && json_is_array(inst)) || (n->uneval_props && json_is_object(inst))) {
        if (bits_init(&local, ann_size(inst)) < 0) {
            c->limit = 1;
            c->depth--;
            c->nscope -= (unsigned)pushed;
            return 0;
        }
        mine = &local;
        own = 1;
    }
    int ok = eval_keywords(c, n, inst, mine);
    if (own) {
        if (ok && ann) bits_or(ann, &local);
        bits_free(&local);
    }
    c->nscope -= (unsigned)pushed;
    c->depth--;
    return ok;
}

pw_schema_status pw_schema_validate(const pw_schema *schema, const json_t *instance,
                                    pw_schema_result *result)
{
    if (result) memset(result, 0, sizeof *result);
    if (!schema || !instance)
        return PW_SCHEMA_INVALID; /* a caller bug, not an instance error: no details */
    vctx *c, stackctx;
    c = &stackctx;
    c->s = schema;
    c->res = NULL;
    c->collect = 0;
    c->limit = 0;
    c->depth = c->idepth = c->nscope = c->nip = c->nkp = 0;
    c->steps = 0;
    int ok = eval(c, schema->root, instance, NULL);
    if (ok && !c->limit) return PW_SCHEMA_VALID;
    if (result) {
        c->res = result;
        c->collect = 1;
        c->depth = c->idepth = c->nscope = c->nip = c->nkp = 0;
        c->steps = 0;
        eval(c, schema->root, instance, NULL);
        if (!result->count) report(c, schema->root, NULL, NULL, "the instance is not valid");
    }
    return c->limit ? PW_SCHEMA_LIMIT : PW_SCHEMA_INVALID;
}

void pw_schema_result_clear(pw_schema_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->count; i++)
        error_free(&r->errors[i]);
    free(r->errors);
    memset(r, 0, sizeof *r);
}

json_t *pw_schema_result_to_basic(const pw_schema_result *r)
{
    json_t *out = json_object();
    json_t *errs = json_array();
    if (!out || !errs) {
        json_decref(out);
        json_decref(errs);
        return NULL;
    }
    size_t n = r ? r->count : 0;
    json_object_set_new(out, "valid", json_boolean(n == 0));
    for (size_t i = 0; i < n; i++) {
        const pw_schema_error *e = &r->errors[i];
        json_array_append_new(errs, json_pack("{s:s?, s:s?, s:s?, s:s?}", "instanceLocation",
                                              e->instance_location, "keywordLocation",
                                              e->keyword_location, "absoluteKeywordLocation",
                                              e->absolute_keyword_location, "error", e->message));
    }
    if (n)
        json_object_set_new(out, "errors", errs);
    else
        json_decref(errs);
    return out;
}

int pw_schema_format_supported(const char *name)
{
    const char *what;
    return pw_schema_format_lookup(name, &what) != NULL;
}
