/* value.c: operation values in request terms: desired, read from Kusto JSON, compared. */
#include "pw/value.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pw/duration.h"
#include "pw/kql.h"

static const json_t *field(const pw_request_op *op, const char *key)
{
    return json_object_get(op->json, key);
}

static int has_field(const pw_request_op *op, const char *key)
{
    return field(op, key) != NULL;
}

/* The streaming policy given in its short form ("enabled") rather than as JSON. */
static int streaming_short(const pw_request_op *op)
{
    return has_field(op, "enabled");
}

static pw_value_type vtype(const pw_request_op *op)
{
    return pw_ops_at(op->kind)->value;
}

/* ---------------------------------------------------------------- datetimes */

static int digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

int pw_value_datetime(const char *text, char *out, size_t len)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0;
    char frac[8] = "";
    const char *p = text;
    if (!p || strlen(p) < 10 || digits(p, 4, &y) || p[4] != '-' || digits(p + 5, 2, &mo) ||
        p[7] != '-' || digits(p + 8, 2, &d))
        return -1;
    p += 10;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (digits(p, 2, &h) || p[2] != ':' || digits(p + 3, 2, &mi)) return -1;
        p += 5;
        if (*p == ':') {
            if (digits(p + 1, 2, &sec)) return -1;
            p += 3;
            if (*p == '.') {
                size_t n = 0;
                for (p++; isdigit((unsigned char)*p); p++)
                    if (n < 7) frac[n++] = *p;
                    else return -1;
                if (!n) return -1;
                while (n < 7)
                    frac[n++] = '0';
                frac[7] = '\0';
            }
        }
    }
    if (*p == 'Z') p++;
    if (*p) return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 59)
        return -1;
    if (strcmp(frac, "0000000") == 0) frac[0] = '\0';
    int n = snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d%s%sZ", y, mo, d, h, mi, sec,
                     frac[0] ? "." : "", frac);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* ---------------------------------------------------------------- comparison */

static const json_t *get_ci(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (v) return v;
    const char *k;
    json_t *member;
    json_object_foreach((json_t *)obj, k, member)
    {
        if (strcasecmp(k, key) == 0) return member;
    }
    return NULL;
}

static int scalar_equal(const json_t *a, const json_t *b, int ci)
{
    if (json_is_number(a) && json_is_number(b)) return json_number_value(a) == json_number_value(b);
    if (json_is_string(a) && json_is_string(b)) {
        const char *x = json_string_value(a), *y = json_string_value(b);
        int64_t tx, ty;
        if (pw_duration_parse_dotnet(x, &tx) == 0 && pw_duration_parse_dotnet(y, &ty) == 0)
            return tx == ty;
        char dx[40], dy[40];
        if (pw_value_datetime(x, dx, sizeof dx) == 0 && pw_value_datetime(y, dy, sizeof dy) == 0)
            return strcmp(dx, dy) == 0;
        return ci ? strcasecmp(x, y) == 0 : strcmp(x, y) == 0;
    }
    return json_equal(a, b);
}

/* Kusto resolves a managed identity given as "system" to the cluster's system-assigned one
 * and shows its object id with IsSystem: true. */
static int system_identity(const char *key, const json_t *wv, const json_t *have)
{
    return strcasecmp(key, "ObjectId") == 0 && json_is_string(wv) &&
           strcasecmp(json_string_value(wv), "system") == 0 && json_is_true(get_ci(have, "IsSystem"));
}

/* Does have hold everything want says?  Keys only in have are ignored (Kusto shows derived
 * and defaulted properties besides those set); a key want sets to null matches a missing
 * one.  Recursion is bounded by the request's depth limit. */
static int covers(const json_t *want, const json_t *have, int ci)
{
    if (json_is_object(want)) {
        if (!json_is_object(have)) return 0;
        const char *k;
        json_t *wv;
        json_object_foreach((json_t *)want, k, wv)
        {
            if (system_identity(k, wv, have)) continue;
            const json_t *hv = get_ci(have, k);
            if (!hv) {
                if (json_is_null(wv)) continue;
                return 0;
            }
            if (!covers(wv, hv, ci)) return 0;
        }
        return 1;
    }
    if (json_is_array(want)) {
        if (!json_is_array(have) || json_array_size(want) != json_array_size(have)) return 0;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!covers(json_array_get(want, i), json_array_get(have, i), ci)) return 0;
        return 1;
    }
    if (json_is_null(want)) return !have || json_is_null(have);
    return have && scalar_equal(want, have, ci);
}

static int same(const json_t *a, const json_t *b)
{
    return covers(a, b, 0) && covers(b, a, 0);
}

/* defaults overlaid by v (keys case-insensitively): what an .alter leaves in place. */
static json_t *with_defaults(const json_t *v, const json_t *defaults)
{
    if (!json_is_object(v) || !json_is_object(defaults)) return json_incref((json_t *)v);
    json_t *out = json_deep_copy(v);
    const char *k;
    json_t *dv;
    json_object_foreach((json_t *)defaults, k, dv)
    {
        if (out && !get_ci(out, k)) json_object_set(out, k, dv);
    }
    return out;
}

/* The policy an .alter leaves: the given one with the row's defaults (per entry of an
 * array policy). */
static json_t *altered_policy(const pw_request_op *op, const json_t *given)
{
    const json_t *defaults = pw_ops_defaults(op->kind.row);
    json_t *out;
    if (json_is_array(given)) {
        out = json_array();
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)given, i, e) json_array_append_new(out, with_defaults(e, defaults));
    } else {
        out = with_defaults(given, defaults);
    }
    return out;
}

/* Does some entry of have hold everything w says? */
static int entry_present(const json_t *w, const json_t *have)
{
    size_t j;
    const json_t *h;
    json_array_foreach(have, j, h) if (covers(w, h, 0)) return 1;
    return 0;
}

/* Every entry of want matches some entry of have (update policy merge: an append). */
static int entries_present(const json_t *want, const json_t *have)
{
    if (!json_is_array(want)) return 0;
    size_t i;
    const json_t *w;
    json_array_foreach(want, i, w) if (!entry_present(w, have)) return 0;
    return 1;
}

json_t *pw_value_entries_missing(const pw_request_op *op, const json_t *desired,
                                 const json_t *before)
{
    const json_t *want = json_object_get(desired, "policy");
    const json_t *have = json_object_get(before, "policy");
    if (op->action != PW_ACTION_MERGE || !json_is_array(want)) return NULL;
    json_t *missing = json_array();
    size_t i;
    const json_t *w;
    json_array_foreach(want, i, w) if (missing && !entry_present(w, have))
        json_array_append(missing, (json_t *)w);
    return missing;
}

/* ------------------------------------------------------------------- forms */

size_t pw_value_fields(const pw_request_op *op, pw_value_field out[PW_VALUE_FIELDS_MAX])
{
    static const pw_value_field none = {NULL, JSON_NULL, 0};
    const pw_value_field policy_object = {"policy", JSON_OBJECT, 1};
    out[0] = out[1] = none;
    switch (vtype(op)) {
    case PW_VT_JSON_OBJECT:
    case PW_VT_WORKLOAD_GROUP:
        out[0] = policy_object;
        return 1;
    case PW_VT_JSON_ARRAY:
        out[0] = (pw_value_field){"policy", JSON_ARRAY, 1};
        return 1;
    case PW_VT_CLASSIFICATION: /* the function goes into the policy's ClassificationFunction */
        out[0] = policy_object;
        out[1] = (pw_value_field){"classificationFunction", JSON_STRING,
                                  op->action == PW_ACTION_ALTER};
        return 2;
    case PW_VT_BOOL:
        out[0] = (pw_value_field){"enabled", JSON_TRUE, 1};
        return 1;
    case PW_VT_STREAMING:
        out[0] = streaming_short(op) ? (pw_value_field){"enabled", JSON_TRUE, 1} : policy_object;
        return 1;
    case PW_VT_ROWORDER:
        out[0] = (pw_value_field){"rowOrder", JSON_ARRAY, 1};
        return 1;
    case PW_VT_RLS:
        out[0] = (pw_value_field){"enabled", JSON_TRUE, 1};
        out[1] = (pw_value_field){"query", JSON_STRING, 1};
        return 2;
    case PW_VT_ENCODING_TYPE:
        out[0] = (pw_value_field){"encodingType", JSON_STRING, 1};
        return 1;
    case PW_VT_ASSIGNMENT:
        out[0] = (pw_value_field){"assignment", JSON_OBJECT, 1};
        return 1;
    case PW_VT_CACHING:
        out[0] = (pw_value_field){"hotCachePeriod", JSON_STRING, 0};
        out[1] = (pw_value_field){"hotWindows", JSON_ARRAY, 0};
        return 2;
    case PW_VT_RETENTION:
        out[0] = (pw_value_field){"softDeletePeriod", JSON_STRING, 0};
        out[1] = (pw_value_field){"recoverability", JSON_STRING, 0};
        return 2;
    default: /* principals */
        out[0] = (pw_value_field){"principal", JSON_OBJECT, 0};
        return 1;
    }
}

/* The member of the value that is null when nothing is set at this level. */
static const char *unset_key(const pw_request_op *op)
{
    pw_value_field f[PW_VALUE_FIELDS_MAX];
    pw_value_fields(op, f);
    return f[0].key;
}

json_t *pw_value_unset(const pw_request_op *op)
{
    json_t *v = json_pack("{s:n}", unset_key(op));
    if (v && vtype(op) == PW_VT_RLS) json_object_set_new(v, "query", json_null());
    return v;
}

static json_t *iso_or_null(int64_t ticks)
{
    char iso[64];
    return pw_duration_format_iso(ticks, iso, sizeof iso) == 0 ? json_string(iso) : json_null();
}

/* hotWindows in canonical datetimes; NULL when one does not parse (validation refused it). */
/* Hot windows in request terms, canonical datetimes, from a list whose entries name their
 * ends from_key and to_key (the request's from/to, Kusto's MinValue/MaxValue); NULL when an
 * end does not parse. */
static json_t *windows_of(const json_t *list, const char *from_key, const char *to_key)
{
    json_t *out = json_array();
    size_t i;
    const json_t *w;
    json_array_foreach(list, i, w)
    {
        char from[40], to[40];
        if (pw_value_datetime(json_string_value(get_ci(w, from_key)), from, sizeof from) ||
            pw_value_datetime(json_string_value(get_ci(w, to_key)), to, sizeof to)) {
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, json_pack("{s:s, s:s}", "from", from, "to", to));
    }
    return out;
}

static json_t *hot_windows(const json_t *given)
{
    return windows_of(given, "from", "to");
}

json_t *pw_value_desired(const pw_request_op *op)
{
    if (op->action == PW_ACTION_DELETE) return pw_value_unset(op);
    json_t *v = NULL;
    switch (vtype(op)) {
    case PW_VT_CACHING: {
        v = json_pack("{s:o}", "hotCachePeriod", iso_or_null(op->period_ticks));
        const json_t *w = field(op, "hotWindows");
        if (v && json_array_size(w)) json_object_set_new(v, "hotWindows", hot_windows(w));
        return v;
    }
    case PW_VT_RETENTION:
        v = json_pack("{s:o}", "softDeletePeriod", iso_or_null(op->period_ticks));
        if (v && field(op, "recoverability"))
            json_object_set(v, "recoverability", (json_t *)field(op, "recoverability"));
        return v;
    case PW_VT_BOOL:
        return json_pack("{s:O}", "enabled", field(op, "enabled"));
    case PW_VT_STREAMING:
        if (streaming_short(op)) return json_pack("{s:O}", "enabled", field(op, "enabled"));
        return json_pack("{s:O}", "policy", field(op, "policy"));
    case PW_VT_ROWORDER: {
        json_t *list = json_array();
        size_t i;
        const json_t *e;
        json_array_foreach(field(op, "rowOrder"), i, e)
        {
            const char *order = json_string_value(json_object_get(e, "order"));
            json_array_append_new(list, json_pack("{s:O, s:s}", "column", json_object_get(e, "column"),
                                                  "order", order ? order : "asc"));
        }
        return json_pack("{s:o}", "rowOrder", list);
    }
    case PW_VT_RLS:
        return json_pack("{s:O, s:O}", "enabled", field(op, "enabled"), "query", field(op, "query"));
    case PW_VT_ENCODING_TYPE: {
        /* type = 'Null' gives the column its default back: no policy at this level */
        const char *t = json_string_value(field(op, "encodingType"));
        if (t && strcasecmp(t, "Null") == 0) return pw_value_unset(op);
        return json_pack("{s:O}", "encodingType", field(op, "encodingType"));
    }
    case PW_VT_CLASSIFICATION: {
        /* Kusto keeps the function body without the whitespace around it */
        json_t *p = json_deep_copy(field(op, "policy"));
        const char *fn = json_string_value(field(op, "classificationFunction"));
        if (p && fn) {
            size_t n = strlen(fn);
            while (n && isspace((unsigned char)fn[n - 1]))
                n--;
            while (n && isspace((unsigned char)*fn)) {
                fn++;
                n--;
            }
            json_object_set_new(p, "ClassificationFunction", json_stringn(fn, n));
        }
        return json_pack("{s:o}", "policy", p);
    }
    case PW_VT_ASSIGNMENT:
        return json_pack("{s:O}", "assignment", field(op, "assignment"));
    case PW_VT_PRINCIPAL_ADD:
        return json_pack("{s:O}", "principal", op->principal);
    case PW_VT_PRINCIPAL_REMOVE:
        return json_pack("{s:n}", "principal");
    default:
        return json_pack("{s:O}", "policy", field(op, "policy"));
    }
}

/* -------------------------------------------------------------------- KQL */

char *pw_value_kql_string(const char *text)
{
    size_t cap = strlen(text) * 6 + 3;
    char *out = malloc(cap), *o = out;
    if (!out) return NULL;
    *o++ = '\'';
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        switch (*p) {
        case '\\': o += sprintf(o, "\\\\"); break;
        case '\'': o += sprintf(o, "\\'"); break;
        case '\r': o += sprintf(o, "\\r"); break;
        case '\n': o += sprintf(o, "\\n"); break;
        case '\t': o += sprintf(o, "\\t"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                o += sprintf(o, "\\u%04x", *p);
            else
                *o++ = (char)*p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

/* @'<compact json>' with every ' doubled (a verbatim literal: backslashes pass as they are). */
char *pw_value_json_literal(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (!text) return NULL;
    size_t quotes = 0;
    for (const char *p = text; *p; p++)
        quotes += *p == '\'';
    char *out = malloc(strlen(text) + quotes + 4), *o = out;
    if (out) {
        *o++ = '@';
        *o++ = '\'';
        for (const char *p = text; *p; p++) {
            *o++ = *p;
            if (*p == '\'') *o++ = '\'';
        }
        *o++ = '\'';
        *o = '\0';
    }
    free(text);
    return out;
}

/* Appends text to a growing buffer; -1 when out of memory. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static int put(sbuf *b, const char *text)
{
    size_t m = strlen(text);
    if (b->n + m + 1 > b->cap) {
        size_t cap = (b->n + m + 1) * 2;
        char *g = realloc(b->s, cap);
        if (!g) return -1;
        b->s = g;
        b->cap = cap;
    }
    memcpy(b->s + b->n, text, m + 1);
    b->n += m;
    return 0;
}

static char *caching_kql(const pw_request_op *op)
{
    char span[64];
    if (pw_duration_format_kql(op->period_ticks, span, sizeof span) != 0) return NULL;
    sbuf b = {0};
    int bad = put(&b, "hot = ") || put(&b, span);
    json_t *w = hot_windows(field(op, "hotWindows"));
    size_t i;
    json_t *e;
    if (!w) bad = 1;
    json_array_foreach(w, i, e)
    {
        bad = bad || put(&b, ", hot_window = datetime(") ||
              put(&b, json_string_value(json_object_get(e, "from"))) || put(&b, ") .. datetime(") ||
              put(&b, json_string_value(json_object_get(e, "to"))) || put(&b, ")");
    }
    json_decref(w);
    if (bad) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static char *retention_kql(const pw_request_op *op)
{
    char span[64], out[160];
    if (pw_duration_format_kql(op->period_ticks, span, sizeof span) != 0) return NULL;
    const char *rec = json_string_value(field(op, "recoverability"));
    snprintf(out, sizeof out, "softdelete = %s%s", span,
             !rec                            ? ""
             : strcasecmp(rec, "Disabled") == 0 ? " recoverability = disabled"
                                                : " recoverability = enabled");
    return strdup(out);
}

static char *roworder_kql(const pw_request_op *op)
{
    sbuf b = {0};
    int bad = put(&b, "(");
    size_t i;
    const json_t *e;
    json_array_foreach(field(op, "rowOrder"), i, e)
    {
        char quoted[1100];
        const char *order = json_string_value(json_object_get(e, "order"));
        if (pw_kql_quote_name(json_string_value(json_object_get(e, "column")), quoted,
                              sizeof quoted) != 0)
            bad = 1;
        bad = bad || put(&b, i ? ", " : "") || put(&b, quoted) ||
              put(&b, order && strcmp(order, "desc") == 0 ? " desc" : " asc");
    }
    bad = bad || put(&b, ")");
    if (bad) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static char *prefixed(const char *head, char *owned_tail)
{
    if (!owned_tail) return NULL;
    size_t need = strlen(head) + strlen(owned_tail) + 1;
    char *out = malloc(need);
    if (out) snprintf(out, need, "%s%s", head, owned_tail);
    free(owned_tail);
    return out;
}

char *pw_value_kql(const pw_request_op *op)
{
    switch (vtype(op)) {
    case PW_VT_CACHING:
        return caching_kql(op);
    case PW_VT_RETENTION:
        return retention_kql(op);
    case PW_VT_BOOL:
        return strdup(json_is_true(field(op, "enabled")) ? "true" : "false");
    case PW_VT_STREAMING:
        if (streaming_short(op)) return strdup(json_is_true(field(op, "enabled")) ? "enable" : "disable");
        return pw_value_json_literal(field(op, "policy"));
    case PW_VT_ROWORDER:
        return roworder_kql(op);
    case PW_VT_RLS: {
        const char *q = json_string_value(field(op, "query"));
        if (!q) return NULL;
        return prefixed(json_is_true(field(op, "enabled")) ? "enable " : "disable ",
                        pw_value_kql_string(q));
    }
    case PW_VT_ENCODING_TYPE: {
        const char *t = json_string_value(field(op, "encodingType"));
        return t ? prefixed("type = ", pw_value_kql_string(t)) : NULL;
    }
    case PW_VT_CLASSIFICATION: {
        char *lit = pw_value_json_literal(field(op, "policy"));
        const char *fn = json_string_value(field(op, "classificationFunction"));
        if (!lit || op->action == PW_ACTION_MERGE || !fn) return lit;
        size_t need = strlen(lit) + strlen(fn) + 8;
        char *out = malloc(need);
        if (out) snprintf(out, need, "%s <|\n%s", lit, fn);
        free(lit);
        return out;
    }
    default:
        return pw_value_json_literal(field(op, "policy"));
    }
}

/* ---------------------------------------------------------------- reading */

static int fail(char *err, size_t errlen, const char *msg)
{
    pw_err_set(err, errlen, "%s", msg);
    return -1;
}

static json_t *iso_from_dotnet(const json_t *v)
{
    if (json_is_object(v)) v = json_object_get(v, "Value");
    int64_t ticks;
    if (!json_is_string(v) || pw_duration_parse_dotnet(json_string_value(v), &ticks) != 0)
        return NULL;
    return iso_or_null(ticks);
}

static int read_caching(const json_t *p, json_t **value, char *err, size_t errlen)
{
    const json_t *span = get_ci(p, "DataHotSpan");
    if (!span || json_is_null(span) || (json_is_object(span) && json_is_null(get_ci(span, "Value")))) {
        *value = json_pack("{s:n}", "hotCachePeriod");
        return *value ? 0 : fail(err, errlen, "out of memory");
    }
    json_t *iso = iso_from_dotnet(span);
    if (!iso) return fail(err, errlen, "the caching policy has no readable DataHotSpan");
    *value = json_pack("{s:o}", "hotCachePeriod", iso);
    const json_t *windows = get_ci(p, "HotWindows");
    if (*value && json_array_size(windows)) {
        json_t *list = windows_of(windows, "MinValue", "MaxValue");
        if (!list) {
            json_decref(*value);
            *value = NULL;
            return fail(err, errlen, "the caching policy has an unreadable hot window");
        }
        json_object_set_new(*value, "hotWindows", list);
    }
    return *value ? 0 : fail(err, errlen, "out of memory");
}

static int read_retention(const json_t *p, json_t **value, char *err, size_t errlen)
{
    json_t *iso = iso_from_dotnet(get_ci(p, "SoftDeletePeriod"));
    if (!iso) return fail(err, errlen, "the retention policy has no readable SoftDeletePeriod");
    *value = json_pack("{s:o}", "softDeletePeriod", iso);
    const char *rec = json_string_value(get_ci(p, "Recoverability"));
    if (*value && rec)
        json_object_set_new(*value, "recoverability",
                            json_string(strcasecmp(rec, "Disabled") == 0 ? "Disabled" : "Enabled"));
    return *value ? 0 : fail(err, errlen, "out of memory");
}

static const json_t *is_enabled(const json_t *p)
{
    if (json_is_boolean(p)) return p;
    const json_t *v = get_ci(p, "IsEnabled");
    return json_is_boolean(v) ? v : NULL;
}

static int read_roworder(const json_t *p, json_t **value, char *err, size_t errlen)
{
    const json_t *list = get_ci(p, "OrderBy");
    if (!json_is_array(list)) return fail(err, errlen, "the roworder policy has no OrderBy list");
    json_t *out = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *col = json_string_value(get_ci(e, "ColumnName"));
        const char *order = json_string_value(get_ci(e, "Order"));
        if (!col) {
            json_decref(out);
            return fail(err, errlen, "the roworder policy has an entry without ColumnName");
        }
        json_array_append_new(out, json_pack("{s:s, s:s}", "column", col, "order",
                                             order && strcasecmp(order, "desc") == 0 ? "desc" : "asc"));
    }
    *value = json_pack("{s:o}", "rowOrder", out);
    return *value ? 0 : fail(err, errlen, "out of memory");
}

/* The encoding type as the request spells it (Kusto may answer in another case). */
static json_t *encoding_name(const char *t)
{
    static const char *const names[] = {"Identifier", "BigObject", "BigObject32", "Vector16", "Null"};
    for (size_t i = 0; t && i < sizeof names / sizeof *names; i++)
        if (strcasecmp(t, names[i]) == 0) return json_string(names[i]);
    return t ? json_string(t) : json_null();
}

int pw_value_from_policy(const pw_request_op *op, const json_t *policy, json_t **value,
                         char *err, size_t errlen)
{
    *value = NULL;
    if (!policy || json_is_null(policy)) {
        *value = pw_value_unset(op);
        return *value ? 0 : fail(err, errlen, "out of memory");
    }
    const json_t *b;
    switch (vtype(op)) {
    case PW_VT_CACHING:
        return read_caching(policy, value, err, errlen);
    case PW_VT_RETENTION:
        return read_retention(policy, value, err, errlen);
    case PW_VT_BOOL:
        if (!(b = is_enabled(policy))) return fail(err, errlen, "the policy has no IsEnabled");
        *value = json_pack("{s:O}", "enabled", b);
        break;
    case PW_VT_STREAMING:
        if (!streaming_short(op)) goto as_json;
        if (!(b = is_enabled(policy))) return fail(err, errlen, "the policy has no IsEnabled");
        *value = json_pack("{s:O}", "enabled", b);
        break;
    case PW_VT_ROWORDER:
        return read_roworder(policy, value, err, errlen);
    case PW_VT_RLS: {
        b = is_enabled(policy);
        const json_t *q = get_ci(policy, "Query");
        if (!b || !json_is_string(q))
            return fail(err, errlen, "the row level security policy lacks IsEnabled or Query");
        *value = json_pack("{s:O, s:O}", "enabled", b, "query", q);
        break;
    }
    case PW_VT_ENCODING_TYPE:
        *value = json_pack("{s:o}", "encodingType",
                           encoding_name(json_string_value(get_ci(policy, "EncodingType"))));
        break;
    default:
    as_json:
        *value = json_pack("{s:O}", "policy", policy);
        break;
    }
    return *value ? 0 : fail(err, errlen, "out of memory");
}

/* -------------------------------------------------------------- comparison */

static int is_unset(const pw_request_op *op, const json_t *v)
{
    const json_t *x = json_object_get(v, unset_key(op));
    return !x || json_is_null(x);
}

static int merge_semantics(const pw_request_op *op)
{
    return op->action == PW_ACTION_MERGE || vtype(op) == PW_VT_RETENTION;
}

/* The kinds whose value is a presence (a principal, an assignment) or an absence (delete):
 * 1 or 0 when v holds what desired asks for, -1 for every other kind (values compared). */
static int presence_holds(const pw_request_op *op, const json_t *desired, const json_t *v)
{
    if (op->action == PW_ACTION_DELETE) return is_unset(op, v);
    switch (vtype(op)) {
    case PW_VT_PRINCIPAL_ADD:
        return !is_unset(op, v);
    case PW_VT_PRINCIPAL_REMOVE:
        return is_unset(op, v);
    case PW_VT_ASSIGNMENT:
        return !is_unset(op, v) &&
               covers(json_object_get(desired, "assignment"), json_object_get(v, "assignment"), 1);
    default:
        return -1;
    }
}

int pw_value_unchanged(const pw_request_op *op, const json_t *desired, const json_t *before)
{
    if (!desired || !before) return 0;
    int held = presence_holds(op, desired, before);
    if (held >= 0) return held;
    const json_t *want = json_object_get(desired, "policy");
    const json_t *have = json_object_get(before, "policy");
    if (!want || json_is_null(want))
        return merge_semantics(op) ? covers(desired, before, 0) : same(desired, before);
    if (json_is_null(have) || !have) return 0;
    if (merge_semantics(op))
        return json_is_array(want) ? entries_present(want, have) : covers(want, have, 0);
    /* what the .alter leaves: the given properties and the defaults of those it omits */
    json_t *full = altered_policy(op, want);
    int eq = full && covers(full, have, 0);
    json_decref(full);
    return eq;
}

int pw_value_verified(const pw_request_op *op, const json_t *desired, const json_t *after)
{
    if (!desired || !after) return 0;
    int held = presence_holds(op, desired, after);
    if (held >= 0) return held;
    const json_t *want = json_object_get(desired, "policy");
    const json_t *have = json_object_get(after, "policy");
    if (!want) return covers(desired, after, 0);
    if (json_is_array(want) && op->action == PW_ACTION_MERGE) return entries_present(want, have);
    return covers(want, have, 0);
}
