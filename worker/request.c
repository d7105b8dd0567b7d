/* request.c: from a message payload to a validated request, or a rejection with a stable code. */
#include "pw/request.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pw/duration.h"
#include "pw/reply.h"
#include "pw/names.h"
#include "pw/paths.h"
#include "pw/plan.h"
#include "pw/schema.h"
#include "pw/value.h"

#define REQUEST_SCHEMA_URI "https://adx-policy-worker.example/schemas/request.v1.json"
/* a rollout's template on one target is checked as an operation of "operations" is */
#define OPERATION_SCHEMA_URI REQUEST_SCHEMA_URI "#/$defs/operation"
#define MAX_SCHEMA_FILES 256
#define MAX_SCHEMA_DIR_DEPTH 4
#define REPLY_TO_QUOTED 64 /* a disallowed replyTo is quoted up to this many bytes */

struct pw_request_checker {
    const pw_config *cfg;
    pw_schema_registry *registry;
    pw_schema *schema;
    pw_schema *op_schema; /* one operation (a rollout's expansion) */
};

/* A validated operation with the storage its normalized strings need. */
typedef struct op_slot {
    pw_request_op op;
    char cluster_uri[300];
    char cluster[64];
    char fqn[600];
} op_slot;

struct pw_request {
    json_t *doc;
    const char *id;
    const char *reply_to; /* NULL: default topic */
    int dry_run;
    size_t op_count;
    op_slot *ops;
    /* rollouts */
    const pw_request_checker *chk; /* borrowed: a selector's expansion checks with it */
    int is_rollout;
    pw_request_rollout rollout;
    const json_t *templates; /* rollout.operations (in doc) */
    json_t *targets;         /* the targets, given or listed (owned reference) */
    json_t *expanded;        /* the operations made of them: template + "target" (owned) */
};

/* ------------------------------------------------------- jansson's allocator */

/* Jansson does not always say when it ran out of memory: its lexer drops a failed append
 * and reports a syntax error, or goes on with the token cut short (a number can lose a
 * digit).  So the decoder counts, per thread, the allocations jansson could not get: any
 * during a decode makes it internal, whatever jansson returned.  The counting wrapper is
 * installed over whatever allocator was set before (checker_new installs it again if it
 * has been replaced since). */
static _Thread_local unsigned long jansson_alloc_failures;
static json_malloc_t inner_malloc = malloc;
static json_free_t inner_free = free;

static void *counting_malloc(size_t n)
{
    void *p = inner_malloc(n);
    if (!p) jansson_alloc_failures++;
    return p;
}

static void counting_free(void *p)
{
    inner_free(p);
}

static void count_jansson_allocations(void)
{
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    if (m == counting_malloc) return;
    inner_malloc = m;
    inner_free = f;
    json_set_alloc_funcs(counting_malloc, counting_free);
}

/* ------------------------------------------------------------------ checker */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Registers every *.json under dir (sub-directories too, bounded), each under its $id. */
static int load_dir(pw_schema_registry *reg, const char *dir, int depth, size_t *files, char *err,
                    size_t errlen)
{
    if (depth > MAX_SCHEMA_DIR_DEPTH) return 0;
    DIR *d = opendir(dir);
    if (!d) {
        pw_err_set(err, errlen, "worker.schemas.dir: cannot open %s", dir);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            rc = load_dir(reg, path, depth + 1, files, err, errlen);
        } else if (S_ISREG(st.st_mode) && ends_with(e->d_name, ".json")) {
            if (++*files > MAX_SCHEMA_FILES) {
                pw_err_set(err, errlen, "worker.schemas.dir: more than %d schema files",
                           MAX_SCHEMA_FILES);
                rc = -1;
                break;
            }
            char e2[256];
            if (pw_schema_registry_add_file(reg, NULL, path, e2, sizeof e2) != 0) {
                pw_err_set(err, errlen, "worker.schemas.dir: %s: %s", path, e2);
                rc = -1;
            }
        }
    }
    closedir(d);
    return rc;
}

pw_request_checker *pw_request_checker_new(const pw_config *cfg, char *err, size_t errlen)
{
    pw_request_checker *chk = calloc(1, sizeof *chk);
    if (!chk) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    chk->cfg = cfg;
    count_jansson_allocations();
    chk->registry = pw_schema_registry_new();
    if (!chk->registry) {
        pw_err_set(err, errlen, "out of memory");
        goto fail;
    }
    const char *dir =
        cfg && cfg->schemas_dir && *cfg->schemas_dir ? cfg->schemas_dir : pw_paths_schemas_dir();
    size_t files = 0;
    if (load_dir(chk->registry, dir, 0, &files, err, errlen) != 0) goto fail;
    pw_schema_options opts = {0};
    opts.max_errors = 32;
    char e2[512];
    chk->schema = pw_schema_compile(chk->registry, REQUEST_SCHEMA_URI, &opts, e2, sizeof e2);
    if (!chk->schema) {
        pw_err_set(err, errlen, "worker.schemas.dir: compiling %s: %s", REQUEST_SCHEMA_URI, e2);
        goto fail;
    }
    chk->op_schema = pw_schema_compile(chk->registry, OPERATION_SCHEMA_URI, &opts, e2, sizeof e2);
    if (!chk->op_schema) {
        pw_err_set(err, errlen, "worker.schemas.dir: compiling %s: %s", OPERATION_SCHEMA_URI, e2);
        goto fail;
    }
    return chk;
fail:
    pw_request_checker_free(chk);
    return NULL;
}

void pw_request_checker_free(pw_request_checker *chk)
{
    if (!chk) return;
    pw_schema_free(chk->schema);
    pw_schema_free(chk->op_schema);
    pw_schema_registry_free(chk->registry);
    free(chk);
}

/* --------------------------------------------------------------- rejection */

static void reject(pw_rejection *rej, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reject(pw_rejection *rej, const char *code, const char *fmt, ...)
{
    snprintf(rej->code, sizeof rej->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rej->message, sizeof rej->message, fmt, ap);
    va_end(ap);
    /* Messages quote request text with a bound (%.40s) and are cut at the buffer's size:
     * either can split a multi-byte character, and the event needs valid UTF-8. */
    pw_reply_scrub(rej->message);
}

/* Not a verdict: the worker failed while decoding (out of memory, an unexpected library
 * error).  The message stays unanswered and uncommitted (see pw_rejection). */
static void internal_error(pw_rejection *rej, const char *what)
{
    reject(rej, PW_REJECT_INTERNAL, "decoding failed inside the worker: %s", what);
    rej->internal = 1;
}

/* A rejection about one field: the message, plus one basic-output unit at location. */
static void reject_at(pw_rejection *rej, const char *code, const char *location, const char *what)
{
    reject(rej, code, "%s: %s", location, what);
    json_decref(rej->errors);
    rej->errors = json_pack("{s:b, s:[{s:s, s:o}]}", "valid", 0, "errors", "instanceLocation",
                            location, "error", pw_reply_string(what));
}

void pw_rejection_clear(pw_rejection *rej)
{
    if (!rej) return;
    json_decref(rej->errors);
    memset(rej, 0, sizeof *rej);
}

/* ------------------------------------------------------------ byte checks */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if ((k = pw_reply_utf8_seq(s + i, n - i)) == 0) return 0;
    return 1;
}

/* Deepest array/object nesting, without building anything (strings skipped, escapes
 * honoured).  Stops counting once past limit. */
static unsigned json_depth(const char *s, size_t n, unsigned limit)
{
    unsigned depth = 0, max = 0;
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                max = depth;
                if (max > limit) return max;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

/* ------------------------------------------------- NUL and surrogate escapes */

/* JSON can spell two things a C string cannot hold: a NUL (\u0000), which would cut a name
 * short where it is used as a C string, and a lone UTF-16 surrogate (\uD800-\uDBFF without
 * a \uDC00-\uDFFF after it, or the latter alone), which jansson refuses outright and so
 * would lose the id.  Both reject the request, keyed by its id.  A pre-pass rewrites each
 * lone surrogate escape into \u0000 in a copy (same length, nothing else changed, so the
 * copy parses exactly as the original would with that code point replaced); every string
 * holding a NUL is then found after the parse (JSON_ALLOW_NUL).  Jansson refuses a NUL in
 * an object key, so in a key both are rewritten to \uFFFD and the key counted instead. */
typedef struct escape_scan {
    size_t nuls;            /* \u0000 escapes in the message */
    size_t lone_surrogates; /* lone surrogate escapes */
    size_t bad_keys;        /* object keys holding either */
} escape_scan;

static int hex4(const char *s, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return 0;
        *v = *v << 4 | (unsigned)d;
    }
    return 1;
}

/* 1 when the string that closed at s[at - 1] is an object key (a ':' follows). */
static int is_key(const char *s, size_t n, size_t at)
{
    while (at < n && (s[at] == ' ' || s[at] == '\t' || s[at] == '\n' || s[at] == '\r'))
        at++;
    return at < n && s[at] == ':';
}

/* In out[from, to) (a key's characters), every \u0000 escape becomes \uFFFD. */
static void key_rewrite(char *out, size_t from, size_t to)
{
    for (size_t i = from; i + 1 < to; i++) {
        if (out[i] != '\\') continue;
        if (i + 6 <= to && memcmp(out + i, "\\u0000", 6) == 0) memcpy(out + i, "\\uFFFD", 6);
        i++; /* the escaped character; a \u's digits hold no backslash */
    }
}

/* *copy, made from s on first use; NULL when out of memory. */
static char *copy_made(const char *s, size_t n, char **copy)
{
    if (!*copy && (*copy = malloc(n))) memcpy(*copy, s, n);
    return *copy;
}

/* Counts into sc; *copy is a rewritten copy of s (caller frees) when one was needed, else
 * NULL.  -1 when the copy could not be allocated.  Text that is not JSON is left to the
 * parser. */
static int scan_escapes(const char *s, size_t n, char **copy, escape_scan *sc)
{
    int in_string = 0, string_bad = 0;
    size_t start = 0;
    memset(sc, 0, sizeof *sc);
    *copy = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!in_string) {
            if (s[i] == '"') {
                in_string = 1;
                start = i + 1;
                string_bad = 0;
            }
            continue;
        }
        if (s[i] == '"') {
            in_string = 0;
            if (string_bad && is_key(s, n, i + 1)) {
                if (!copy_made(s, n, copy)) return -1;
                key_rewrite(*copy, start, i);
                sc->bad_keys++;
            }
            continue;
        }
        if (s[i] != '\\') continue;
        unsigned v, w;
        if (i + 6 > n || s[i + 1] != 'u' || !hex4(s + i + 2, &v)) {
            i++; /* the escaped character */
            continue;
        }
        if (v == 0) {
            sc->nuls++;
            string_bad = 1;
        } else if (v >= 0xD800 && v <= 0xDBFF && i + 12 <= n && s[i + 6] == '\\' &&
                   s[i + 7] == 'u' && hex4(s + i + 8, &w) && w >= 0xDC00 && w <= 0xDFFF) {
            i += 6; /* a pair: the second escape too */
        } else if (v >= 0xD800 && v <= 0xDFFF) {
            if (!copy_made(s, n, copy)) return -1;
            memcpy(*copy + i, "\\u0000", 6);
            sc->lone_surrogates++;
            string_bad = 1;
        }
        i += 5; /* past the escape's digits */
    }
    return 0;
}

/* Appends "/" and key (JSON-pointer escaped) to ptr[0, len); returns the new length, or
 * len with *cut set when it does not fit in cap. */
static size_t pointer_push(char *ptr, size_t len, size_t cap, const char *key, int *cut)
{
    size_t n = len;
    if (n + 1 >= cap) goto cut;
    ptr[n++] = '/';
    for (const char *k = key; *k; k++) {
        int esc = *k == '~' || *k == '/';
        if (n + 1 + (size_t)esc >= cap) goto cut;
        if (esc) ptr[n++] = '~';
        ptr[n++] = *k == '~' ? '0' : *k == '/' ? '1' : *k;
    }
    ptr[n] = '\0';
    return n;
cut:
    *cut = 1;
    ptr[len] = '\0';
    return len;
}

/* The first string in v (document order) whose C string is shorter than its length: its
 * JSON pointer goes to ptr (cut short: *cut set).  Recursion is bounded by the nesting
 * check that ran before the parse. */
static int find_nul(const json_t *v, char *ptr, size_t len, size_t cap, int *cut)
{
    if (json_is_string(v)) return strlen(json_string_value(v)) != json_string_length(v);
    if (json_is_object(v)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)v, key, member)
        {
            size_t l = pointer_push(ptr, len, cap, key, cut);
            if (find_nul(member, ptr, l, cap, cut)) return 1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            char index[24];
            snprintf(index, sizeof index, "%zu", i);
            size_t l = pointer_push(ptr, len, cap, index, cut);
            if (find_nul(item, ptr, l, cap, cut)) return 1;
        }
    }
    ptr[len] = '\0';
    return 0;
}

/* Past "<digits>/" at p: the rest, or NULL when p does not start so. */
static const char *past_index(const char *p)
{
    if (*p < '0' || *p > '9') return NULL;
    while (*p >= '0' && *p <= '9')
        p++;
    return *p == '/' ? p + 1 : NULL;
}

/* 1 when p is one key: non-empty, no further segment. */
static int one_key(const char *p)
{
    return p && *p && !strchr(p, '/');
}

/* 1 for the names: /operations/<i>/target/<key>, /operations/<i>/principal/<key>; in a
 * rollout /rollout/targets/<t>/<key>, /rollout/targets/selector/<kind>/<key> and
 * /rollout/operations/<i>/principal/<key>. */
static int is_name_location(const char *ptr)
{
    const char *p;
    if (!strncmp(ptr, "/rollout/targets/selector/", 26))
        return (p = strchr(ptr + 26, '/')) != NULL && one_key(p + 1);
    if (!strncmp(ptr, "/rollout/targets/", 17)) return one_key(past_index(ptr + 17));
    int in_rollout = !strncmp(ptr, "/rollout/operations/", 20);
    if (!in_rollout && strncmp(ptr, "/operations/", 12) != 0) return 0;
    p = past_index(ptr + (in_rollout ? 20 : 12));
    if (!p) return 0;
    if (!in_rollout && !strncmp(p, "target/", 7)) return one_key(p + 7);
    return !strncmp(p, "principal/", 10) && one_key(p + 10);
}

/* Rejects the request when a string or key holds a NUL or a lone surrogate (see above). */
static int check_nuls(const json_t *doc, const escape_scan *sc, pw_rejection *rej)
{
    const char *what = !sc->nuls ? "a lone UTF-16 surrogate escape (\\uD800-\\uDFFF unpaired)"
                       : !sc->lone_surrogates
                           ? "a NUL character (\\u0000)"
                           : "a NUL character (\\u0000) or a lone UTF-16 surrogate escape";
    if (sc->bad_keys) {
        reject(rej, PW_REJECT_INVALID_JSON, "an object key holds %s, which no key may hold", what);
        return -1;
    }
    if (!sc->nuls && !sc->lone_surrogates) return 0;
    char ptr[256], msg[256];
    int cut = 0;
    ptr[0] = '\0';
    if (!find_nul(doc, ptr, 0, sizeof ptr, &cut)) return 0; /* only in what the parse dropped */
    int name = !cut && is_name_location(ptr);
    snprintf(msg, sizeof msg, "the %s holds %s, which no request string may hold",
             name ? "name" : "string", what);
    if (cut)
        reject(rej, PW_REJECT_INVALID_JSON, "a string nested too far to name holds %s", what);
    else
        reject_at(rej, name ? PW_REJECT_INVALID_NAME : PW_REJECT_INVALID_JSON, ptr, msg);
    return -1;
}

/* "a number", "an object", ...: what a value is, for a message. */
static const char *json_type_text(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static int id_valid(const char *id, size_t n)
{
    if (n < 1 || n > PW_REQUEST_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* -------------------------------------------------------- semantic checks */

static const char *target_str(const json_t *target, const char *key)
{
    return json_string_value(json_object_get(target, key));
}

/* Where an operation's own fields and its target's fields are in the request (JSON pointers,
 * for rejection locations): /operations/3 and /operations/3/target, or in a rollout the
 * template's and the target's, /rollout/operations/0 and /rollout/targets/5. */
typedef struct op_where {
    char op[48];
    char target[80];
} op_where;

/* Checks one name; on failure fills rej at <target>/<key>. */
static int check_name(pw_rejection *rej, const op_where *w, const char *key, const char *value,
                      pw_status (*rule)(const char *, char *, size_t))
{
    char why[256], where[128];
    if (rule(value, why, sizeof why) == PW_OK) return 0;
    snprintf(where, sizeof where, "%s/%s", w->target, key);
    reject_at(rej, PW_REJECT_INVALID_NAME, where, why);
    return -1;
}

static int check_period(pw_rejection *rej, const op_where *w, const char *field, const char *text,
                        int zero_allowed, int64_t *ticks)
{
    char why[256], where[96];
    snprintf(where, sizeof where, "%s/%s", w->op, field);
    if (!text) {
        reject_at(rej, PW_REJECT_SCHEMA, where, "required: an ISO-8601 duration");
        return -1;
    }
    pw_status st = pw_duration_parse_iso(text, ticks, why, sizeof why);
    if (st == PW_ERR_RANGE) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "the period is too long to represent; the longest accepted is %d days (100 "
                 "years)",
                 PW_REQUEST_MAX_PERIOD_DAYS);
        reject_at(rej, PW_REJECT_DURATION_RANGE, where, msg);
        return -1;
    }
    if (st != PW_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "\"%.40s\" is not an accepted ISO-8601 duration: %s", text, why);
        reject_at(rej, PW_REJECT_INVALID_DURATION, where, msg);
        return -1;
    }
    if (*ticks < 0) {
        reject_at(rej, PW_REJECT_DURATION_RANGE, where, "a period must not be negative");
        return -1;
    }
    if (*ticks == 0 && !zero_allowed) {
        reject_at(rej, PW_REJECT_DURATION_RANGE, where,
                  "a soft-delete period of zero would drop all data at once");
        return -1;
    }
    if (*ticks > (int64_t)PW_REQUEST_MAX_PERIOD_DAYS * PW_TICKS_PER_DAY) {
        char msg[128];
        snprintf(msg, sizeof msg, "a period longer than %d days (100 years) is refused",
                 PW_REQUEST_MAX_PERIOD_DAYS);
        reject_at(rej, PW_REJECT_DURATION_RANGE, where, msg);
        return -1;
    }
    return 0;
}

/* The kusto route names a principal by FQN: the given one, else built from the app id or
 * e-mail (see schemas/ops/database.principal.add.v1.json); it must pass the FQN rule. */
static int principal_fqn(op_slot *slot, const op_where *w, pw_rejection *rej)
{
    const json_t *p = slot->op.principal;
    const char *fqn = json_string_value(json_object_get(p, "fqn"));
    const char *type = json_string_value(json_object_get(p, "type"));
    const char *app = json_string_value(json_object_get(p, "appId"));
    const char *email = json_string_value(json_object_get(p, "email"));
    const char *tenant = json_string_value(json_object_get(p, "tenantName"));
    int is_app = type && strcmp(type, "App") == 0;
    const char *field = "fqn";
    char why[256], where[96];
    if (fqn && *fqn) {
        snprintf(slot->fqn, sizeof slot->fqn, "%s", fqn);
    } else {
        const char *id = is_app ? app : email;
        const char *prefix = is_app ? "aadapp"
                             : strcmp(type ? type : "", "Group") == 0 ? "aadgroup"
                                                                      : "aaduser";
        field = is_app ? "appId" : "email";
        snprintf(slot->fqn, sizeof slot->fqn, "%s=%.256s%s%.256s", prefix, id ? id : "",
                 tenant && *tenant ? ";" : "", tenant && *tenant ? tenant : "");
        if (tenant && *tenant && pw_names_principal_fqn(tenant, NULL, 0) != PW_OK)
            field = "tenantName";
    }
    if (pw_names_principal_fqn(slot->fqn, why, sizeof why) != PW_OK) {
        snprintf(where, sizeof where, "%s/principal/%s", w->op, field);
        reject_at(rej, PW_REJECT_INVALID_NAME, where, why);
        return -1;
    }
    slot->op.principal_fqn = slot->fqn;
    return 0;
}

static int listed(char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name)) return 1;
    return 0;
}

/* worker.kinds.*: a privileged kind needs worker.kinds.privileged.allowed; every kind needs
 * worker.kinds.allowed when that is set. */
static int kind_allowed(const pw_config *cfg, const char *kind_name, int privileged)
{
    if (!cfg) return !privileged;
    if (privileged &&
        !listed(cfg->kinds_privileged_allowed, cfg->kinds_privileged_allowed_count, kind_name))
        return 0;
    return !cfg->kinds_allowed || listed(cfg->kinds_allowed, cfg->kinds_allowed_count, kind_name);
}

/* A rejection at <op>/<key> (key may hold further segments; "" for the operation). */
static int reject_op(pw_rejection *rej, const char *code, const op_where *w, const char *key,
                     const char *what)
{
    char where[128];
    snprintf(where, sizeof where, "%s%s%s", w->op, *key ? "/" : "", key);
    reject_at(rej, code, where, what);
    return -1;
}

/* A rejection at the operation's target. */
static int reject_target(pw_rejection *rej, const char *code, const op_where *w, const char *what)
{
    reject_at(rej, code, w->target, what);
    return -1;
}

/* The target fields each scope names its entity with (besides cluster and database). */
static int target_names(op_slot *slot, const op_where *w, pw_rejection *rej)
{
    pw_request_op *op = &slot->op;
    const json_t *target = op->target;
    pw_scope scope = op->kind.scope;
    op->table = scope == PW_SCOPE_TABLE || scope == PW_SCOPE_COLUMN ? target_str(target, "table")
                                                                     : NULL;
    op->column = scope == PW_SCOPE_COLUMN ? target_str(target, "column") : NULL;
    op->entity = scope == PW_SCOPE_MATERIALIZED_VIEW ? target_str(target, "materializedView")
                 : scope == PW_SCOPE_EXTERNAL_TABLE  ? target_str(target, "externalTable")
                 : pw_ops_at(op->kind)->value == PW_VT_WORKLOAD_GROUP
                     ? target_str(target, "workloadGroup")
                     : NULL;
    op->assignment = pw_ops_at(op->kind)->value == PW_VT_ASSIGNMENT
                         ? target_str(target, "principalAssignment")
                         : NULL;
    static const struct {
        pw_scope scope;
        const char *key;
    } needs[] = {{PW_SCOPE_TABLE, "table"},
                 {PW_SCOPE_COLUMN, "table"},
                 {PW_SCOPE_COLUMN, "column"},
                 {PW_SCOPE_MATERIALIZED_VIEW, "materializedView"},
                 {PW_SCOPE_EXTERNAL_TABLE, "externalTable"}};
    for (size_t k = 0; k < sizeof needs / sizeof *needs; k++) {
        if (needs[k].scope != scope) continue;
        const char *v = target_str(target, needs[k].key);
        if (!v) {
            char what[96];
            snprintf(what, sizeof what, "a %s operation names its %s", pw_ops_scope_name(scope),
                     needs[k].key);
            return reject_target(rej, PW_REJECT_SCHEMA, w, what);
        }
        if (check_name(rej, w, needs[k].key, v, pw_names_kusto_entity)) return -1;
    }
    if (pw_ops_at(op->kind)->value == PW_VT_WORKLOAD_GROUP) {
        if (!op->entity)
            return reject_target(rej, PW_REJECT_SCHEMA, w,
                                 "a workload group operation names target.workloadGroup");
        if (check_name(rej, w, "workloadGroup", op->entity, pw_names_kusto_entity)) return -1;
    }
    if (pw_ops_at(op->kind)->value == PW_VT_ASSIGNMENT) {
        if (!op->assignment)
            return reject_target(rej, PW_REJECT_SCHEMA, w,
                                 "a principal assignment operation names target.principalAssignment");
        if (check_name(rej, w, "principalAssignment", op->assignment, pw_names_arm_child))
            return -1;
    }
    return 0;
}

/* The value fields a value type needs for alter and merge, and their JSON types. */
static int check_value_fields(op_slot *slot, const op_where *w, pw_rejection *rej)
{
    pw_request_op *op = &slot->op;
    const json_t *j = op->json;
    pw_value_type vt = pw_ops_at(op->kind)->value;
    if (op->action == PW_ACTION_DELETE) return 0;
    if (vt == PW_VT_STREAMING && json_object_get(j, "enabled") && op->kind.scope == PW_SCOPE_CLUSTER)
        return reject_op(rej, PW_REJECT_SCHEMA, w, "enabled",
                         "the cluster's streaming ingestion policy is set as JSON (policy)");
    pw_value_field needs[PW_VALUE_FIELDS_MAX];
    size_t count = pw_value_fields(op, needs);
    for (size_t k = 0; k < count; k++) {
        if (!needs[k].required) continue;
        const json_t *v = json_object_get(j, needs[k].key);
        int ok = v && (needs[k].type == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == needs[k].type);
        if (!ok) {
            char what[128];
            snprintf(what, sizeof what, "%s %s needs %s (%s)", op->kind_name,
                     pw_ops_action_name(op->action), needs[k].key,
                     needs[k].type == JSON_TRUE     ? "true or false"
                     : needs[k].type == JSON_OBJECT ? "an object"
                     : needs[k].type == JSON_ARRAY  ? "an array"
                                                    : "a string");
            return reject_op(rej, PW_REJECT_SCHEMA, w, needs[k].key, what);
        }
        if (needs[k].type == JSON_STRING &&
            (json_string_length(v) < 1 || json_string_length(v) > PW_VALUE_TEXT_MAX)) {
            char what[96];
            snprintf(what, sizeof what, "%s has 1 to %d bytes", needs[k].key, PW_VALUE_TEXT_MAX);
            return reject_op(rej, PW_REJECT_SCHEMA, w, needs[k].key, what);
        }
    }
    if (vt == PW_VT_ROWORDER) {
        const json_t *list = json_object_get(j, "rowOrder");
        size_t n = json_array_size(list);
        if (n < 1 || n > PW_VALUE_ROW_ORDER_MAX)
            return reject_op(rej, PW_REJECT_SCHEMA, w, "rowOrder", "a row order has 1 to 16 columns");
        for (size_t k = 0; k < n; k++) {
            const json_t *e = json_array_get(list, k);
            const char *col = json_string_value(json_object_get(e, "column"));
            const char *order = json_string_value(json_object_get(e, "order"));
            char key[48], why[256];
            snprintf(key, sizeof key, "rowOrder/%zu/column", k);
            if (!col) return reject_op(rej, PW_REJECT_SCHEMA, w, key, "a row order entry names its column");
            if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
                return reject_op(rej, PW_REJECT_SCHEMA, w, key, "order is \"asc\" or \"desc\"");
            if (pw_names_kusto_entity(col, why, sizeof why) != PW_OK)
                return reject_op(rej, PW_REJECT_INVALID_NAME, w, key, why);
        }
    }
    if (vt == PW_VT_ASSIGNMENT) {
        static const char *const keys[] = {"principalId", "principalType", "role"};
        const json_t *a = json_object_get(j, "assignment");
        for (size_t k = 0; k < 3; k++) {
            if (!json_is_string(json_object_get(a, keys[k]))) {
                char key[48];
                snprintf(key, sizeof key, "assignment/%s", keys[k]);
                return reject_op(rej, PW_REJECT_SCHEMA, w, key, "required (a string)");
            }
        }
    }
    return 0;
}

/* hotWindows: each a valid UTC datetime range, from before to. */
static int check_hot_windows(const json_t *list, const op_where *w, pw_rejection *rej)
{
    if (!list) return 0;
    if (!json_is_array(list) || json_array_size(list) > PW_VALUE_HOT_WINDOWS_MAX)
        return reject_op(rej, PW_REJECT_SCHEMA, w, "hotWindows", "hotWindows is an array of at most 32 windows");
    for (size_t k = 0; k < json_array_size(list); k++) {
        const json_t *win = json_array_get(list, k);
        char from[40], to[40], key[48];
        snprintf(key, sizeof key, "hotWindows/%zu", k);
        if (pw_value_datetime(json_string_value(json_object_get(win, "from")), from, sizeof from) ||
            pw_value_datetime(json_string_value(json_object_get(win, "to")), to, sizeof to))
            return reject_op(rej, PW_REJECT_SCHEMA, w, key,
                             "from and to are UTC datetimes (2021-01-01 or 2021-01-01T00:00:00Z)");
        if (strcmp(from, to) >= 0)
            return reject_op(rej, PW_REJECT_SCHEMA, w, key, "a hot window's from is before its to");
    }
    return 0;
}

static int check_op(const pw_request_checker *chk, const json_t *jop, size_t i, const op_where *w,
                    op_slot *slot, pw_rejection *rej)
{
    pw_request_op *op = &slot->op;
    const json_t *target = json_object_get(jop, "target");
    const char *via = json_string_value(json_object_get(jop, "via"));
    const char *action = json_string_value(json_object_get(jop, "action"));
    op->index = i;
    op->json = jop;
    op->target = target;
    op->kind_name = json_string_value(json_object_get(jop, "kind"));
    if (pw_ops_lookup(op->kind_name, &op->kind) != 0) {
        reject(rej, PW_REJECT_UNKNOWN_KIND, "operation %zu: unknown kind", i);
        return -1;
    }
    const pw_ops_scope *at = pw_ops_at(op->kind);
    op->action = PW_ACTION_ALTER;
    if (action && pw_ops_action_from_name(action, &op->action) != 0)
        return reject_op(rej, PW_REJECT_SCHEMA, w, "action",
                         "action is \"alter\", \"merge\" or \"delete\"");
    if (!(at->actions & PW_ACTION_BIT(op->action))) {
        char what[160];
        snprintf(what, sizeof what, "%s has no action %s (it has:%s%s%s)", op->kind_name,
                 pw_ops_action_name(op->action),
                 at->actions & PW_ACTION_BIT(PW_ACTION_ALTER) ? " alter" : "",
                 at->actions & PW_ACTION_BIT(PW_ACTION_MERGE) ? " merge" : "",
                 at->actions & PW_ACTION_BIT(PW_ACTION_DELETE) ? " delete" : "");
        return reject_op(rej, PW_REJECT_SCHEMA, w, "action", what);
    }
    /* The schemas say so too; re-checked because worker.schemas.dir can point elsewhere and
     * a table operation planned on the arm route would PATCH the whole database. */
    unsigned routes = pw_ops_routes(op->kind);
    op->route = at->routes ? at->default_route : PW_ROUTE_KUSTO;
    if (via) {
        pw_route r = strcmp(via, "kusto") == 0 ? PW_ROUTE_KUSTO : PW_ROUTE_ARM;
        if ((strcmp(via, "kusto") != 0 && strcmp(via, "arm") != 0) || !(routes & PW_ROUTE_BIT(r))) {
            char what[128];
            snprintf(what, sizeof what, "%s has only the %s route", op->kind_name,
                     routes & PW_ROUTE_BIT(PW_ROUTE_ARM) ? "arm" : "kusto");
            return reject_op(rej, PW_REJECT_SCHEMA, w, "via",
                             routes == (PW_ROUTE_BIT(PW_ROUTE_ARM) | PW_ROUTE_BIT(PW_ROUTE_KUSTO))
                                 ? "via is \"arm\" or \"kusto\""
                                 : what);
        }
        op->route = r;
    }
    if (op->route == PW_ROUTE_ARM && at->arm_property) {
        /* ARM carries the period only: no delete, no hot windows, no recoverability */
        const char *extra = op->action == PW_ACTION_DELETE                   ? "action"
                            : json_object_get(jop, "hotWindows")             ? "hotWindows"
                            : json_object_get(jop, "recoverability")         ? "recoverability"
                                                                             : NULL;
        if (extra)
            return reject_op(rej, PW_REJECT_SCHEMA, w, extra,
                             "the arm route sets the period only; \"via\": \"kusto\" takes this");
    }
    if (!kind_allowed(chk->cfg, op->kind_name, pw_ops_privileged(op->kind))) {
        char what[256];
        if (pw_ops_privileged(op->kind))
            snprintf(what, sizeof what,
                     "%s is privileged (it changes access or the whole cluster): the worker applies "
                     "it only when worker.kinds.privileged.allowed lists it",
                     op->kind_name);
        else
            snprintf(what, sizeof what, "%s is not in this worker's worker.kinds.allowed",
                     op->kind_name);
        return reject_op(rej, PW_REJECT_NOT_ALLOWED, w, "kind", what);
    }
    op->subscription_id = target_str(target, "subscriptionId");
    op->resource_group = target_str(target, "resourceGroup");
    op->database = op->kind.scope == PW_SCOPE_CLUSTER ? NULL : target_str(target, "database");
    const char *cluster = target_str(target, "cluster");
    const char *uri = target_str(target, "clusterUri");

    /* Every name given is checked, whichever route uses it: a bad name is a bad request. */
    if (op->subscription_id &&
        check_name(rej, w, "subscriptionId", op->subscription_id, pw_names_subscription_id))
        return -1;
    if (op->resource_group &&
        check_name(rej, w, "resourceGroup", op->resource_group, pw_names_resource_group))
        return -1;
    if (cluster && check_name(rej, w, "cluster", cluster, pw_names_cluster)) return -1;
    if (op->kind.scope != PW_SCOPE_CLUSTER &&
        check_name(rej, w, "database", op->database,
                   op->route == PW_ROUTE_ARM ? pw_names_arm_database : pw_names_kusto_entity))
        return -1;
    if (target_names(slot, w, rej) != 0) return -1;
    if (uri) {
        char why[448], where[96]; /* why lists allowed host suffixes: room for several */
        const pw_config *cfg = chk->cfg;
        pw_status st = pw_names_cluster_uri(
            uri, cfg ? (const char *const *)cfg->kusto_host_suffixes : NULL,
            cfg ? cfg->kusto_host_suffix_count : 0, slot->cluster_uri, sizeof slot->cluster_uri,
            slot->cluster, sizeof slot->cluster, why, sizeof why);
        if (st != PW_OK) {
            snprintf(where, sizeof where, "%s/clusterUri", w->target);
            reject_at(rej,
                      st == PW_ERR_NOT_ALLOWED ? PW_REJECT_HOST_NOT_ALLOWED
                                               : PW_REJECT_INVALID_CLUSTER_URI,
                      where, why);
            return -1;
        }
    }
    if (op->route == PW_ROUTE_KUSTO) {
        op->cluster_uri = slot->cluster_uri;
        op->cluster = slot->cluster;
    } else {
        op->cluster = cluster;
    }
    /* The schema requires these per route; re-checked so a schema edit cannot open a hole. */
    int has_db = op->kind.scope == PW_SCOPE_CLUSTER || op->database;
    if (op->route == PW_ROUTE_ARM ? !(op->subscription_id && op->resource_group && op->cluster && has_db)
                                  : !(uri && has_db)) {
        reject(rej, PW_REJECT_SCHEMA, "operation %zu: target incomplete for route %s", i,
               pw_ops_route_name(op->route));
        return -1;
    }
    /* Each name is within its rule, yet on the arm route the path they make can pass the
     * client's bound (a space is three bytes once encoded): the long name is the database,
     * the other segments being short by rule. */
    size_t path_len = pw_plan_arm_path_len(op);
    if (path_len > PW_PLAN_ARM_PATH_MAX) {
        char where[96], why[256];
        snprintf(where, sizeof where, "%s/database", w->target);
        snprintf(why, sizeof why,
                 "with this database name the ARM path is %zu bytes (a space takes 3 once "
                 "encoded), over the limit of %d; the kusto route takes the name",
                 path_len, PW_PLAN_ARM_PATH_MAX);
        reject_at(rej, PW_REJECT_INVALID_NAME, where, why);
        return -1;
    }
    if (check_value_fields(slot, w, rej) != 0) return -1;

    switch (at->value) {
    case PW_VT_RETENTION:
        if (op->action == PW_ACTION_DELETE) return 0;
        return check_period(rej, w, "softDeletePeriod",
                            json_string_value(json_object_get(jop, "softDeletePeriod")), 0,
                            &op->period_ticks);
    case PW_VT_CACHING:
        if (op->action == PW_ACTION_DELETE) return 0;
        if (check_hot_windows(json_object_get(jop, "hotWindows"), w, rej) != 0) return -1;
        return check_period(rej, w, "hotCachePeriod",
                            json_string_value(json_object_get(jop, "hotCachePeriod")), 1,
                            &op->period_ticks);
    case PW_VT_PRINCIPAL_ADD:
    case PW_VT_PRINCIPAL_REMOVE:
        op->principal = json_object_get(jop, "principal");
        if (!json_is_object(op->principal)) {
            reject(rej, PW_REJECT_SCHEMA, "operation %zu: no principal", i);
            return -1;
        }
        if (op->route == PW_ROUTE_KUSTO) return principal_fqn(slot, w, rej);
        return 0;
    default:
        return 0;
    }
}

/* After a failed schema validation: is an operation's kind the reason?  (A kind outside
 * the enum also trips every if/then, so the kind is named first, the details follow.) */
static long unknown_kind_index(const json_t *ops)
{
    size_t i;
    const json_t *op;
    pw_kind k;
    json_array_foreach(ops, i, op)
    {
        const json_t *kind = json_object_get(op, "kind");
        if (json_is_string(kind) && pw_ops_lookup(json_string_value(kind), &k) != 0)
            return (long)i;
    }
    return -1;
}

/* ----------------------------------------------------------------- rollouts */

static size_t targets_max(const pw_config *cfg)
{
    return cfg && cfg->rollout_targets_max ? cfg->rollout_targets_max
                                           : PW_CONFIG_ROLLOUT_TARGETS_MAX;
}

/* An operation schema's errors, their locations moved from the expanded operation (template
 * + target) to where the request says it: the target's fields under w->target, the rest
 * under w->op. */
static void errors_relocate(json_t *basic, const op_where *w)
{
    size_t k;
    json_t *e;
    json_array_foreach(json_object_get(basic, "errors"), k, e)
    {
        const char *at = json_string_value(json_object_get(e, "instanceLocation"));
        if (!at) continue;
        char where[512];
        if (!strncmp(at, "/target", 7) && (at[7] == '\0' || at[7] == '/'))
            snprintf(where, sizeof where, "%s%s", w->target, at + 7);
        else
            snprintf(where, sizeof where, "%s%s", w->op, at);
        json_object_set_new(e, "instanceLocation", json_string(where));
    }
}

/* One template on one target: the operation it makes (new reference in *out, also on
 * failure, NULL only when out of memory), checked as an operation of "operations" is. */
static int check_expanded(const pw_request_checker *chk, const json_t *tmpl, const json_t *target,
                          size_t index, const op_where *w, op_slot *slot, json_t **out,
                          pw_rejection *rej)
{
    json_t *op = *out = json_copy((json_t *)tmpl); /* shallow: the values stay shared */
    if (!op || json_object_set(op, "target", (json_t *)target) != 0) {
        internal_error(rej, "out of memory");
        return -1;
    }
    pw_schema_result result = {0};
    pw_schema_status vs = pw_schema_validate(chk->op_schema, op, &result);
    if (vs != PW_SCHEMA_VALID) {
        rej->errors = pw_schema_result_to_basic(&result);
        pw_schema_result_clear(&result);
        errors_relocate(rej->errors, w);
        const json_t *first = json_array_get(json_object_get(rej->errors, "errors"), 0);
        const char *where = json_string_value(json_object_get(first, "instanceLocation"));
        const char *what = json_string_value(json_object_get(first, "error"));
        reject(rej, PW_REJECT_SCHEMA, "%s on %s breaks schemas/request.v1.json: %s: %s", w->op,
               w->target, where ? where : w->op, what ? what : "");
        return -1;
    }
    return check_op(chk, op, index, w, slot, rej);
}

/* Expands rollout over targets (borrowed) into req's operations; all or nothing.
 * target_base: where target t is said to be ("/rollout/targets" + "/t"), or the selector's
 * location for a probe (one_location). */
static int expand(const pw_request_checker *chk, pw_request *req, const json_t *targets,
                  const char *target_base, int one_location, pw_rejection *rej)
{
    size_t n = json_array_size(targets), per = json_array_size(req->templates);
    size_t max = targets_max(chk->cfg);
    if (n > max) {
        reject_at(rej, PW_REJECT_TOO_MANY_TARGETS, "/rollout/targets",
                  "more targets than worker.rollout.targets.max");
        snprintf(rej->message, sizeof rej->message, "%zu targets, the limit is %zu", n, max);
        return -1;
    }
    op_slot *slots = n ? calloc(n * per, sizeof *slots) : NULL;
    json_t *expanded = json_array();
    if ((n && !slots) || !expanded) {
        free(slots);
        json_decref(expanded);
        internal_error(rej, "out of memory");
        return -1;
    }
    for (size_t t = 0; t < n; t++) {
        for (size_t k = 0; k < per; k++) {
            op_where w;
            snprintf(w.op, sizeof w.op, "/rollout/operations/%zu", k);
            if (one_location)
                snprintf(w.target, sizeof w.target, "%s", target_base);
            else
                snprintf(w.target, sizeof w.target, "%s/%zu", target_base, t);
            json_t *op = NULL;
            int rc = check_expanded(chk, json_array_get(req->templates, k),
                                    json_array_get(targets, t), t * per + k, &w,
                                    &slots[t * per + k], &op, rej);
            if (op && json_array_append_new(expanded, op) != 0 && rc == 0) {
                internal_error(rej, "out of memory");
                rc = -1;
            }
            if (rc != 0) {
                free(slots);
                json_decref(expanded);
                return -1;
            }
        }
    }
    free(req->ops);
    json_decref(req->expanded);
    json_decref(req->targets);
    req->ops = slots;
    req->op_count = n * per;
    req->expanded = expanded;
    req->targets = json_incref((json_t *)targets);
    req->rollout.targets = n;
    return 0;
}

/* waves: {canary, steps, failureBudget, pauseBetweenWavesSeconds}; the schema checked the
 * types and ranges, this the order of the steps. */
static int decode_waves(const json_t *waves, pw_request_rollout *ro, pw_rejection *rej)
{
    const json_t *v;
    ro->canary = (v = json_object_get(waves, "canary")) ? (size_t)json_integer_value(v) : 1;
    ro->failure_budget = (size_t)json_integer_value(json_object_get(waves, "failureBudget"));
    ro->pause_s = (unsigned)json_integer_value(json_object_get(waves, "pauseBetweenWavesSeconds"));
    const json_t *steps = json_object_get(waves, "steps");
    ro->step_count = 0;
    if (!steps) {
        ro->steps[ro->step_count++] = 100;
        return 0;
    }
    size_t k;
    json_array_foreach(steps, k, v)
    {
        char where[64];
        snprintf(where, sizeof where, "/rollout/waves/steps/%zu", k);
        unsigned pct = (unsigned)strtoul(json_string_value(v), NULL, 10);
        if (k >= PW_REQUEST_WAVE_STEPS_MAX || (k && pct <= ro->steps[k - 1])) {
            reject_at(rej, PW_REJECT_SCHEMA, where,
                      "steps are cumulative percentages of the targets: each above the last");
            return -1;
        }
        ro->steps[ro->step_count++] = pct;
    }
    if (ro->steps[ro->step_count - 1] != 100) {
        char where[64];
        snprintf(where, sizeof where, "/rollout/waves/steps/%zu", ro->step_count - 1);
        reject_at(rej, PW_REJECT_SCHEMA, where, "the last step is \"100%\": every target");
        return -1;
    }
    return 0;
}

/* The probe a selector's templates are checked against at decode: the selector's fields and
 * a placeholder for the name Azure will list (a name every rule accepts). */
static json_t *selector_probe(const json_t *sel, const char *listed)
{
    json_t *probe = json_copy((json_t *)sel);
    if (probe && json_object_set_new(probe, listed, json_string("probe")) != 0) {
        json_decref(probe);
        return NULL;
    }
    return probe;
}

static int decode_rollout(const pw_request_checker *chk, pw_request *req, const json_t *rollout,
                          pw_rejection *rej)
{
    pw_request_rollout *ro = &req->rollout;
    req->is_rollout = 1;
    req->templates = json_object_get(rollout, "operations");
    ro->templates = json_array_size(req->templates);
    if (decode_waves(json_object_get(rollout, "waves"), ro, rej) != 0) return -1;
    const json_t *targets = json_object_get(rollout, "targets");
    if (json_is_array(targets)) {
        ro->source = PW_REQUEST_TARGET_LIST;
        return expand(chk, req, targets, "/rollout/targets", 0, rej);
    }
    const json_t *sel = json_object_get(targets, "selector");
    const char *listed;
    char where[64];
    if ((ro->selector = json_object_get(sel, "databasesOf"))) {
        ro->source = PW_REQUEST_DATABASES_OF;
        listed = "database";
        snprintf(where, sizeof where, "/rollout/targets/selector/databasesOf");
    } else {
        ro->selector = json_object_get(sel, "tablesOf");
        ro->source = PW_REQUEST_TABLES_OF;
        listed = "table";
        snprintf(where, sizeof where, "/rollout/targets/selector/tablesOf");
    }
    json_t *probe = selector_probe(ro->selector, listed);
    json_t *list = probe ? json_pack("[o]", probe) : NULL;
    if (!list) {
        internal_error(rej, "out of memory");
        return -1;
    }
    /* the templates and the selector's names are checked now; the listed names later */
    int rc = expand(chk, req, list, where, 1, rej);
    json_decref(list);
    if (rc != 0) return -1;
    free(req->ops);
    req->ops = NULL;
    req->op_count = 0;
    json_decref(req->expanded);
    json_decref(req->targets);
    req->expanded = req->targets = NULL;
    ro->targets = 0;
    return 0;
}

int pw_request_expand(pw_request *req, const json_t *targets, pw_rejection *rej)
{
    memset(rej, 0, sizeof *rej);
    snprintf(rej->id, sizeof rej->id, "%s", req->id);
    if (req->reply_to) snprintf(rej->reply_to, sizeof rej->reply_to, "%s", req->reply_to);
    if (!req->is_rollout || req->rollout.source == PW_REQUEST_TARGET_LIST ||
        !json_is_array(targets)) {
        internal_error(rej, "not a selector's rollout");
        return -1;
    }
    unsigned long failures = jansson_alloc_failures;
    int rc = expand(req->chk, req, targets, "/rollout/targets", 0, rej);
    if (rc == 0 && jansson_alloc_failures != failures) {
        internal_error(rej, "out of memory");
        rc = -1;
    }
    return rc;
}

const pw_request_rollout *pw_request_rollout_of(const pw_request *req)
{
    return req->is_rollout ? &req->rollout : NULL;
}

size_t pw_request_targets_max(const pw_request *req)
{
    return targets_max(req->chk ? req->chk->cfg : NULL);
}

const json_t *pw_request_target_at(const pw_request *req, size_t target)
{
    return json_array_get(req->targets, target);
}

/* ------------------------------------------------------------------ decode */

static pw_request *decode(const pw_request_checker *chk, const void *payload, size_t len,
                          pw_rejection *rej)
{
    const pw_config *cfg = chk->cfg;
    size_t max_bytes = cfg && cfg->max_message_bytes ? cfg->max_message_bytes : 1048576;
    unsigned max_depth = cfg && cfg->max_json_depth ? cfg->max_json_depth : 32;
    size_t max_ops = cfg && cfg->max_operations ? cfg->max_operations : 100;
    json_t *doc = NULL;
    pw_request *req = NULL;

    memset(rej, 0, sizeof *rej);
    if (len > max_bytes) {
        reject(rej, PW_REJECT_MESSAGE_TOO_LARGE, "the message has %zu bytes, the limit is %zu", len,
               max_bytes);
        return NULL;
    }
    if (!payload && len) {
        reject(rej, PW_REJECT_INVALID_JSON, "no payload");
        return NULL;
    }
    if (!utf8_valid(payload, len)) {
        reject(rej, PW_REJECT_INVALID_UTF8, "the message is not valid UTF-8");
        return NULL;
    }
    if (json_depth(payload, len, max_depth) > max_depth) {
        reject(rej, PW_REJECT_NESTING_TOO_DEEP, "JSON nested deeper than %u levels", max_depth);
        return NULL;
    }
    size_t blank = 0;
    while (blank < len && strchr(" \t\r\n", ((const char *)payload)[blank]))
        blank++;
    if (blank == len) {
        reject(rej, PW_REJECT_INVALID_JSON,
               len ? "the message holds only whitespace; a request is a JSON object"
                   : "the message is empty (no value, e.g. a tombstone); a request is a JSON "
                     "object");
        return NULL;
    }
    escape_scan sc;
    char *copy = NULL;
    if (scan_escapes(payload ? payload : "", len, &copy, &sc) != 0) {
        internal_error(rej, "out of memory");
        return NULL;
    }
    json_error_t jerr;
    doc = json_loadb(copy      ? copy
                     : payload ? payload
                               : "",
                     len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    free(copy);
    if (!doc) {
        /* Out of memory is the worker's failure, not the message's; so is an argument jansson
         * refuses (a bug here).  Every other code is about the text.  When jansson cannot even
         * set up its lexer (an allocation) it returns with the error text empty and no code. */
        int no_error = jerr.text[0] == '\0';
        enum json_error_code jcode = no_error ? json_error_out_of_memory : json_error_code(&jerr);
        if (jcode == json_error_out_of_memory || jcode == json_error_invalid_argument)
            internal_error(rej, no_error ? "out of memory" : jerr.text);
        else
            reject(rej, PW_REJECT_INVALID_JSON, "not JSON: %s (line %d, column %d)", jerr.text,
                   jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(doc)) {
        reject(rej, PW_REJECT_NOT_AN_OBJECT, "a request is a JSON object");
        goto fail;
    }
    const json_t *jid = json_object_get(doc, "id");
    if (!jid) {
        reject(rej, PW_REJECT_MISSING_ID, "the request has no id");
        goto fail;
    }
    if (!json_is_string(jid)) {
        reject(rej, PW_REJECT_INVALID_ID, "the id must be a string, got %s", json_type_text(jid));
        goto fail;
    }
    size_t id_len = json_string_length(jid);
    if (id_len < 1 || id_len > PW_REQUEST_ID_MAX) {
        reject(rej, PW_REJECT_INVALID_ID, "an id has 1 to %d characters, this one has %zu",
               PW_REQUEST_ID_MAX, id_len);
        goto fail;
    }
    if (!id_valid(json_string_value(jid), id_len)) {
        reject(rej, PW_REJECT_INVALID_ID,
               "an id may hold only the characters A-Z a-z 0-9 . _ : - (and no NUL)");
        goto fail;
    }
    snprintf(rej->id, sizeof rej->id, "%s", json_string_value(jid));

    /* From here on a reply can be keyed; send it where the request asked when allowed. */
    const json_t *jreply = json_object_get(doc, "replyTo");
    int reply_ok = json_is_string(jreply) && cfg &&
                   strlen(json_string_value(jreply)) == json_string_length(jreply) &&
                   pw_config_reply_topic_allowed(cfg, json_string_value(jreply));
    if (reply_ok) snprintf(rej->reply_to, sizeof rej->reply_to, "%s", json_string_value(jreply));

    /* Before anything reads a string as a C string (the schema, the name rules). */
    if (check_nuls(doc, &sc, rej) != 0) goto fail;

    /* a rollout's templates are its operations (targets come apart) */
    const json_t *rollout = json_object_get(doc, "rollout");
    const json_t *ops = json_object_get(rollout ? rollout : doc, "operations");
    const char *ops_at = rollout ? "/rollout/operations" : "/operations";
    const json_t *targets = json_object_get(rollout, "targets");
    if (json_is_array(targets) && json_array_size(targets) > targets_max(cfg)) {
        reject_at(rej, PW_REJECT_TOO_MANY_TARGETS, "/rollout/targets",
                  "more targets than worker.rollout.targets.max");
        snprintf(rej->message, sizeof rej->message, "%zu targets, the limit is %zu",
                 json_array_size(targets), targets_max(cfg));
        goto fail;
    }
    if (json_is_array(ops) && json_array_size(ops) > max_ops) {
        reject_at(rej, PW_REJECT_TOO_MANY_OPERATIONS, ops_at,
                  "more operations than worker.operations.max");
        snprintf(rej->message, sizeof rej->message, "%zu operations, the limit is %zu",
                 json_array_size(ops), max_ops);
        goto fail;
    }

    pw_schema_result result = {0};
    pw_schema_status vs = pw_schema_validate(chk->schema, doc, &result);
    if (vs != PW_SCHEMA_VALID) {
        rej->errors = pw_schema_result_to_basic(&result);
        pw_schema_result_clear(&result);
        long bad = json_is_array(ops) ? unknown_kind_index(ops) : -1;
        if (bad >= 0)
            reject(rej, PW_REJECT_UNKNOWN_KIND, "%s/%ld/kind: unknown operation kind \"%.64s\"",
                   ops_at, bad,
                   json_string_value(json_object_get(json_array_get(ops, (size_t)bad), "kind")));
        else if (vs == PW_SCHEMA_LIMIT)
            reject(rej, PW_REJECT_SCHEMA, "the request hit a validation limit");
        else {
            const json_t *first = json_array_get(json_object_get(rej->errors, "errors"), 0);
            const char *where = json_string_value(json_object_get(first, "instanceLocation"));
            const char *what = json_string_value(json_object_get(first, "error"));
            /* "" is the pointer to the whole request: say so rather than print nothing */
            reject(rej, PW_REJECT_SCHEMA, "the request breaks schemas/request.v1.json: %s: %s",
                   where && *where ? where : "(root)", what ? what : "");
        }
        goto fail;
    }

    if (jreply && !reply_ok) {
        const char *topic = json_string_value(jreply);
        size_t tl = strlen(topic);
        char why[256];
        snprintf(why, sizeof why,
                 "replyTo \"%.*s%s\" is not allowed: the worker replies to its reply topic "
                 "(worker.reply.topic) or to a topic listed in worker.replyto.allowed",
                 REPLY_TO_QUOTED, topic, tl > REPLY_TO_QUOTED ? "..." : "");
        reject_at(rej, PW_REJECT_REPLY_TO, "/replyTo", why);
        goto fail;
    }

    req = calloc(1, sizeof *req);
    if (!req) {
        internal_error(rej, "out of memory");
        goto fail;
    }
    req->chk = chk;
    req->id = json_string_value(jid);
    req->reply_to = reply_ok ? json_string_value(jreply) : NULL;
    if (rollout) {
        if (decode_rollout(chk, req, rollout, rej) != 0) goto fail;
    } else {
        req->op_count = json_array_size(ops);
        req->ops = calloc(req->op_count, sizeof *req->ops);
        if (!req->ops) {
            internal_error(rej, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < req->op_count; i++) {
            op_where w;
            snprintf(w.op, sizeof w.op, "/operations/%zu", i);
            snprintf(w.target, sizeof w.target, "/operations/%zu/target", i);
            if (check_op(chk, json_array_get(ops, i), i, &w, &req->ops[i], rej) != 0) goto fail;
        }
    }

    req->doc = doc;
    req->dry_run = json_is_true(json_object_get(doc, "dryRun"));
    memset(rej, 0, sizeof *rej);
    return req;

fail:
    pw_request_free(req); /* (its doc is not set yet) */
    json_decref(doc);
    return NULL;
}

pw_request *pw_request_decode(const pw_request_checker *chk, const void *payload, size_t len,
                              pw_rejection *rej)
{
    unsigned long failures = jansson_alloc_failures;
    pw_request *req = decode(chk, payload, len, rej);
    if (jansson_alloc_failures != failures) {
        /* Whatever came out was decided on a document jansson may have cut short. */
        pw_request_free(req);
        json_decref(rej->errors);
        rej->errors = NULL;
        memset(rej->reply_to, 0, sizeof rej->reply_to);
        internal_error(rej, "out of memory");
        return NULL;
    }
    return req;
}

const char *pw_request_id(const pw_request *req)
{
    return req->id;
}

const char *pw_request_reply_to(const pw_request *req)
{
    return req->reply_to;
}

int pw_request_dry_run(const pw_request *req)
{
    return req->dry_run;
}

size_t pw_request_op_count(const pw_request *req)
{
    return req->op_count;
}

const pw_request_op *pw_request_op_at(const pw_request *req, size_t i)
{
    return i < req->op_count ? &req->ops[i].op : NULL;
}

void pw_request_free(pw_request *req)
{
    if (!req) return;
    free(req->ops);
    json_decref(req->expanded);
    json_decref(req->targets);
    json_decref(req->doc);
    free(req);
}
