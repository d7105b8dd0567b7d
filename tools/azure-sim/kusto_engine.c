/* kusto_engine.c: azure-sim's Kusto management-command engine: parses one command
 * (policies at cluster/database/table/materialized-view scope, database roles) and
 * runs it against a cluster's JSON state, answering a v1 frame or a OneApi error. */
#include "kusto.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define GENERIC_400 "Request is invalid and cannot be executed."
#define MAX_FQN 512 /* bytes of one principal FQN */
#define MAX_NOTES 1024

/* ------------------------------------------------------------------ policies */

enum { SC_CLUSTER = 1, SC_DB = 2, SC_TABLE = 4, SC_MV = 8, SC_TABLES = 16 };
enum { V_SHOW, V_ALTER, V_MERGE, V_DELETE, V_ADD, V_DROP, V_SET };
#define ROLE_VERB(v) ((v) == V_ADD || (v) == V_DROP || (v) == V_SET)
/* How a policy's value is written after "policy <kw>" in .alter / .alter-merge. */
enum { PV_JSON_OBJ, PV_JSON_ARR, PV_CACHING, PV_RETENTION, PV_STREAMING, PV_BOOL };

typedef struct policy_info {
    const char *kw;
    const char *name;                 /* PolicyName column */
    int kind;                         /* PV_* */
    unsigned alter, merge, del, show; /* SC_* masks: where each verb exists */
} policy_info;

/* Scopes per verb as the reference's §4 table lists them. */
static const policy_info POLICIES[] = {
    {"caching", "CachingPolicy", PV_CACHING, SC_CLUSTER | SC_DB | SC_TABLE | SC_MV | SC_TABLES, 0,
     SC_CLUSTER | SC_DB | SC_TABLE | SC_MV, SC_CLUSTER | SC_DB | SC_TABLE | SC_MV},
    {"retention", "RetentionPolicy", PV_RETENTION, SC_DB | SC_TABLE | SC_MV | SC_TABLES,
     SC_DB | SC_TABLE | SC_MV, SC_DB | SC_TABLE | SC_MV, SC_DB | SC_TABLE | SC_MV},
    {"merge", "MergePolicy", PV_JSON_OBJ, SC_DB | SC_TABLE | SC_MV | SC_TABLES,
     SC_DB | SC_TABLE | SC_MV, SC_DB | SC_TABLE | SC_MV, SC_DB | SC_TABLE | SC_MV},
    {"partitioning", "PartitioningPolicy", PV_JSON_OBJ, SC_TABLE | SC_MV, SC_TABLE | SC_MV,
     SC_TABLE | SC_MV, SC_TABLE | SC_MV},
    {"ingestionbatching", "IngestionBatchingPolicy", PV_JSON_OBJ,
     SC_CLUSTER | SC_DB | SC_TABLE | SC_TABLES, SC_CLUSTER | SC_DB | SC_TABLE | SC_TABLES,
     SC_DB | SC_TABLE, SC_CLUSTER | SC_DB | SC_TABLE},
    {"streamingingestion", "StreamingIngestionPolicy", PV_STREAMING, SC_CLUSTER | SC_DB | SC_TABLE,
     SC_CLUSTER | SC_DB | SC_TABLE, SC_CLUSTER | SC_DB | SC_TABLE, SC_CLUSTER | SC_DB | SC_TABLE},
    {"sharding", "ShardingPolicy", PV_JSON_OBJ, SC_CLUSTER | SC_DB | SC_TABLE,
     SC_CLUSTER | SC_DB | SC_TABLE, SC_CLUSTER | SC_DB | SC_TABLE, SC_CLUSTER | SC_DB | SC_TABLE},
    {"auto_delete", "AutoDeletePolicy", PV_JSON_OBJ, SC_TABLE, 0, SC_TABLE, SC_TABLE},
    {"extent_tags_retention", "ExtentTagsRetentionPolicy", PV_JSON_ARR, SC_DB | SC_TABLE, 0,
     SC_DB | SC_TABLE, SC_DB | SC_TABLE},
    {"ingestiontime", "IngestionTimePolicy", PV_BOOL, SC_TABLE | SC_TABLES, 0, SC_TABLE, SC_TABLE},
    {"restricted_view_access", "RestrictedViewAccessPolicy", PV_BOOL, SC_TABLE | SC_TABLES, 0,
     SC_TABLE, SC_TABLE},
    {"update", "UpdatePolicy", PV_JSON_ARR, SC_TABLE, SC_TABLE, SC_TABLE, SC_TABLE},
};
#define NPOLICIES (sizeof POLICIES / sizeof POLICIES[0])

static const struct {
    const char *kw, *role, *label;
} ROLES[] = {
    {"admins", "Admin", "Admin"},
    {"users", "User", "User"},
    {"viewers", "Viewer", "Viewer"},
    {"unrestrictedviewers", "UnrestrictedViewer", "UnrestrictedViewer"},
    {"ingestors", "Ingestor", "Ingestor"},
    {"monitors", "Monitor", "Monitor"},
};
#define NROLES (sizeof ROLES / sizeof ROLES[0])

/* ------------------------------------------------------------------ context */

typedef struct qname {
    const char *db; /* NULL: the request's database */
    const char *name;
} qname;

typedef struct cmd {
    int verb, scope, wildcard;
    qname names[SIM_KUSTO_MAX_LIST];
    size_t nnames;
    const policy_info *pol;
    const sim_kusto_token *json_tok; /* J value, validated at execution */
    json_t *special;                 /* value from special syntax (owned) */
    int principals;                  /* .show database D principals */
    int role;                        /* index in ROLES for .add/.drop */
    const char *fqns[SIM_KUSTO_MAX_LIST];
    size_t nfqns;
    const char *notes;
    int skip_results;
} cmd;

typedef struct ctx {
    json_t *cluster;
    json_t *ctx_db; /* the request's database, NULL when none */
    const sim_kusto_caller *caller;
    const char *crid, *aid, *csl;
    const char *activity_type;
    json_t *body;
    int status;
} ctx;

/* ------------------------------------------------------------------ errors */

static void new_guid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec ^
                               ((unsigned long long)ts.tv_sec << 20) ^
                               (unsigned long long)getpid() << 40;
        for (int i = 0; i < 16; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            b[i] = (unsigned char)(x >> 56);
        }
    }
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* Stable GUID-shaped id for a role assignment (same role + fqn -> same id). */
static void stable_guid(const char *a, const char *b, char out[37])
{
    unsigned long long h1 = 1469598103934665603ULL, h2 = 0x9E3779B97F4A7C15ULL;
    for (const char *s = a; s && *s; s++)
        h1 = (h1 ^ (unsigned char)tolower((unsigned char)*s)) * 1099511628211ULL;
    for (const char *s = b; s && *s; s++)
        h1 = (h1 ^ (unsigned char)tolower((unsigned char)*s)) * 1099511628211ULL;
    h2 ^= h1 * 0xBF58476D1CE4E5B9ULL;
    h2 = (h2 ^ (h2 >> 31)) * 0x94D049BB133111EBULL;
    snprintf(out, 37, "%08llx-%04llx-4%03llx-%04llx-%012llx", h1 >> 32, (h1 >> 16) & 0xFFFF,
             h1 & 0xFFF, ((h2 >> 48) & 0x3FFF) | 0x8000, h2 & 0xFFFFFFFFFFFFULL);
}

static void now_timestamp(char *out, size_t outlen)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outlen, "%.20s.%07dZ", base, (int)(ts.tv_nsec / 100 % 10000000));
}

static const char *cluster_name(const ctx *c)
{
    const char *n = json_string_value(json_object_get(c->cluster, "name"));
    return n ? n : "azure-sim";
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 when invalid or truncated. */
static size_t utf8_seq(const unsigned char *s)
{
    size_t n;
    unsigned cp;
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        n = 2, cp = s[0] & 0x1Fu;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        n = 3, cp = s[0] & 0x0Fu;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        n = 4, cp = s[0] & 0x07u;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

static int utf8_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq((const unsigned char *)s + i);
        if (n == 0 || i + n > len) return 0;
        i += n;
    }
    return 1;
}

/* Replaces every byte that is not part of valid UTF-8 with '?' (JSON needs UTF-8;
 * messages echo user input and may be cut mid-character). */
void sim_utf8_scrub(char *s)
{
    sim_utf8_scrub_n(s, strlen(s));
}

void sim_utf8_scrub_n(char *s, size_t len)
{
    /* s[len] is '\0', which is never a continuation byte: utf8_seq stops there */
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq((const unsigned char *)s + i);
        if (n == 0)
            s[i++] = '?';
        else
            i += n;
    }
}

/* Sets c->status/body to a OneApi error; returns -1 so callers can "return fail(...)". */
static int fail(ctx *c, int status, const char *code, const char *type, int permanent,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

json_t *sim_kusto_error_body(int status, const char *cluster, const char *code, const char *type,
                             int permanent, const char *client_request_id, const char *activity_id,
                             const char *activity_type, const char *message)
{
    char msg[1024], ts[40], sub[37], parent[37], stack[640], alias[128];
    snprintf(msg, sizeof msg, "%s", message ? message : "");
    sim_utf8_scrub(msg);
    now_timestamp(ts, sizeof ts);
    new_guid(sub);
    new_guid(parent);
    char crid[256], aid[128]; /* from request headers: bounded, made valid UTF-8 */
    snprintf(crid, sizeof crid, "%s", client_request_id ? client_request_id : "");
    snprintf(aid, sizeof aid, "%s", activity_id ? activity_id : "");
    sim_utf8_scrub(crid);
    sim_utf8_scrub(aid);
    /* the alias is the cluster's name: a host's first label, upper case */
    snprintf(alias, sizeof alias, "%.*s", (int)strcspn(cluster ? cluster : "", "."),
             cluster ? cluster : "");
    if (!alias[0]) snprintf(alias, sizeof alias, "azure-sim");
    for (char *p = alias; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    sim_utf8_scrub(alias);
    if (!activity_type) activity_type = "DN.FE.ExecuteControlCommand";
    snprintf(stack, sizeof stack, "(Activity stack: CRID=%s ARID=%s > %s/%s)", crid, aid,
             activity_type, sub);
    sim_utf8_scrub(stack);
    const char *generic = status == 404   ? "The requested entity was not found."
                          : status == 403 ? "Principal is not authorized to perform this operation."
                                          : GENERIC_400;
    return json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, "
        "s:s}, s:b}}",
        "error", "code", code, "message", generic, "@type", type, "@message", msg, "@context",
        "timestamp", ts, "serviceAlias", alias, "machineName", "KSimEngine000000", "processName",
        "azure-sim", "processId", (json_int_t)getpid(), "threadId", (json_int_t)gettid(),
        "appDomainName", "azure-sim", "clientRequestId", crid, "activityId", aid, "subActivityId",
        sub, "activityType", activity_type, "parentActivityId", parent, "activityStack", stack,
        "@permanent", permanent);
}

static int fail(ctx *c, int status, const char *code, const char *type, int permanent,
                const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_decref(c->body);
    c->body = sim_kusto_error_body(status, cluster_name(c), code, type, permanent, c->crid, c->aid,
                                   c->activity_type, msg);
    c->status = status;
    return -1;
}

static int fail_syntax_at(ctx *c, size_t pos, const char *what)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && c->csl[i]; i++) {
        if (c->csl[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return fail(c, 400, "BadRequest_SyntaxError", "Kusto.Data.Exceptions.SyntaxException", 1,
                "Syntax error: SYN0002: Query could not be parsed at '%.64s' on line [%zu,%zu]",
                what, line, col);
}

static int fail_bad(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_bad(ctx *c, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(c, 400, "General_BadRequest", "Kusto.Data.Exceptions.KustoBadRequestException", 1,
                "Request is invalid and cannot be processed: %s", msg);
}

static int fail_not_found(ctx *c, const char *name, const char *kind)
{
    return fail(c, 400, "BadRequest_EntityNotFound",
                "Kusto.Data.Exceptions.EntityNotFoundException", 1,
                "Entity ID '%.1100s' of kind '%s' was not found.", name, kind);
}

/* ------------------------------------------------------------------ parser */

typedef struct parser {
    const sim_kusto_tokens *t;
    size_t i;
} parser;

static const sim_kusto_token *peek(const parser *p)
{
    return &p->t->v[p->i];
}

static const sim_kusto_token *advance(parser *p)
{
    const sim_kusto_token *t = &p->t->v[p->i];
    if (t->type != SK_TOK_EOF) p->i++;
    return t;
}

static int is_kw(const sim_kusto_token *t, const char *kw)
{
    return t->type == SK_TOK_IDENT && strcasecmp(t->text, kw) == 0;
}

static int is_punct(const sim_kusto_token *t, const char *s)
{
    return t->type == SK_TOK_PUNCT && strcmp(t->text, s) == 0;
}

static int accept_kw(parser *p, const char *kw)
{
    if (!is_kw(peek(p), kw)) return 0;
    advance(p);
    return 1;
}

static int accept_punct(parser *p, const char *s)
{
    if (!is_punct(peek(p), s)) return 0;
    advance(p);
    return 1;
}

static int syntax(ctx *c, const parser *p)
{
    const sim_kusto_token *t = peek(p);
    return fail_syntax_at(c, t->pos, t->type == SK_TOK_EOF ? "<end of command>" : t->text);
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
    return n;
}

/* An entity name: a bare identifier or ['..'] / [".."]. */
static int parse_name(ctx *c, parser *p, const char **out)
{
    const sim_kusto_token *t = peek(p);
    if (t->type == SK_TOK_IDENT) {
        if (strchr(t->text, '-')) return syntax(c, p); /* needs brackets */
    } else if (t->type != SK_TOK_QNAME) {
        return syntax(c, p);
    }
    if (t->len == 0 || strlen(t->text) != t->len ||
        utf8_chars(t->text, t->len) > SIM_KUSTO_MAX_NAME)
        return fail_syntax_at(c, t->pos, "<invalid entity name>");
    for (size_t i = 0; i < t->len; i++)
        if ((unsigned char)t->text[i] < 0x20 || t->text[i] == 0x7F)
            return fail_syntax_at(c, t->pos, "<invalid entity name>");
    *out = t->text;
    advance(p);
    return 0;
}

/* name [ '.' name ] */
static int parse_qualified(ctx *c, parser *p, qname *q)
{
    const char *a, *b;
    if (parse_name(c, p, &a)) return -1;
    if (accept_punct(p, ".")) {
        if (parse_name(c, p, &b)) return -1;
        q->db = a;
        q->name = b;
    } else {
        q->db = NULL;
        q->name = a;
    }
    return 0;
}

static int parse_timespan(ctx *c, parser *p, int64_t *ticks)
{
    const sim_kusto_token *t = peek(p);
    int rc = -1;
    if (t->type == SK_TOK_NUMBER)
        rc = sim_kusto_timespan_literal(t->text, t->len, ticks);
    else if (t->type == SK_TOK_TIMESPAN)
        rc = sim_kusto_timespan_fn(t->text, ticks);
    if (rc != 0 || *ticks < 0) return syntax(c, p);
    advance(p);
    return 0;
}

static json_t *ts_json(int64_t ticks)
{
    char buf[48];
    sim_kusto_timespan_format_net(ticks, buf, sizeof buf);
    return json_string(buf);
}

/* hot = TS [, hot_window = datetime(a) .. datetime(b)]...
 * or the legacy hotdata = TS hotindex = TS */
static int parse_caching(ctx *c, parser *p, cmd *k)
{
    int64_t hot, index;
    if (accept_kw(p, "hotdata")) {
        if (!accept_punct(p, "=")) return syntax(c, p);
        if (parse_timespan(c, p, &hot)) return -1;
        if (!accept_kw(p, "hotindex") || !accept_punct(p, "=")) return syntax(c, p);
        if (parse_timespan(c, p, &index)) return -1;
        k->special =
            json_pack("{s:o, s:o}", "DataHotSpan", ts_json(hot), "IndexHotSpan", ts_json(index));
        return 0;
    }
    if (!accept_kw(p, "hot") || !accept_punct(p, "=")) return syntax(c, p);
    if (parse_timespan(c, p, &hot)) return -1;
    json_t *v = json_pack("{s:o, s:o}", "DataHotSpan", ts_json(hot), "IndexHotSpan", ts_json(hot));
    json_t *windows = json_array();
    k->special = v;
    while (accept_punct(p, ",")) {
        char a[40], b[40];
        if (!accept_kw(p, "hot_window") || !accept_punct(p, "=")) {
            json_decref(windows);
            return syntax(c, p);
        }
        const sim_kusto_token *t = peek(p);
        if (t->type != SK_TOK_DATETIME || sim_kusto_datetime_parse(t->text, a, sizeof a)) {
            json_decref(windows);
            return syntax(c, p);
        }
        advance(p);
        if (!accept_punct(p, "..")) {
            json_decref(windows);
            return syntax(c, p);
        }
        t = peek(p);
        if (t->type != SK_TOK_DATETIME || sim_kusto_datetime_parse(t->text, b, sizeof b)) {
            json_decref(windows);
            return syntax(c, p);
        }
        advance(p);
        if (strcmp(a, b) > 0) {
            json_decref(windows);
            return fail_bad(c, "hot_window start %s is after its end %s", a, b);
        }
        if (json_array_size(windows) >= SIM_KUSTO_MAX_LIST) {
            json_decref(windows);
            return fail_bad(c, "too many hot windows (limit %d)", SIM_KUSTO_MAX_LIST);
        }
        json_array_append_new(windows, json_pack("{s:s, s:s}", "MinDate", a, "MaxDate", b));
    }
    if (json_array_size(windows))
        json_object_set_new(v, "HotWindows", windows);
    else
        json_decref(windows);
    return 0;
}

static int parse_recoverability(ctx *c, parser *p, json_t *v)
{
    if (!accept_punct(p, "=")) return syntax(c, p);
    if (accept_kw(p, "enabled"))
        json_object_set_new(v, "Recoverability", json_string("Enabled"));
    else if (accept_kw(p, "disabled"))
        json_object_set_new(v, "Recoverability", json_string("Disabled"));
    else
        return syntax(c, p);
    return 0;
}

/* .alter-merge ... retention softdelete = TS [recoverability = X] | recoverability = X */
static int parse_retention_special(ctx *c, parser *p, cmd *k)
{
    json_t *v = json_object();
    k->special = v;
    if (accept_kw(p, "softdelete")) {
        int64_t t;
        if (!accept_punct(p, "=")) return syntax(c, p);
        if (parse_timespan(c, p, &t)) return -1;
        json_object_set_new(v, "SoftDeletePeriod", ts_json(t));
        if (accept_kw(p, "recoverability")) return parse_recoverability(c, p, v);
        return 0;
    }
    if (accept_kw(p, "recoverability")) return parse_recoverability(c, p, v);
    return syntax(c, p);
}

/* with (k = v, ...) after an update policy: accepted, not used. */
static int parse_with(ctx *c, parser *p)
{
    if (!accept_kw(p, "with")) return 0;
    if (!accept_punct(p, "(")) return syntax(c, p);
    for (size_t n = 0;; n++) {
        const sim_kusto_token *t;
        if (n >= SIM_KUSTO_MAX_LIST || peek(p)->type != SK_TOK_IDENT) return syntax(c, p);
        advance(p);
        if (!accept_punct(p, "=")) return syntax(c, p);
        t = peek(p);
        if (t->type != SK_TOK_IDENT && t->type != SK_TOK_STRING && t->type != SK_TOK_NUMBER)
            return syntax(c, p);
        advance(p);
        if (accept_punct(p, ")")) return 0;
        if (!accept_punct(p, ",")) return syntax(c, p);
    }
}

/* After "policy <kw>": the value for .alter / .alter-merge. */
static int parse_policy_value(ctx *c, parser *p, cmd *k)
{
    const policy_info *pi = k->pol;
    if (k->verb == V_SHOW || k->verb == V_DELETE) return 0;
    if (pi->kind == PV_CACHING) return parse_caching(c, p, k);
    if (pi->kind == PV_BOOL) { /* bare true / false, stored as {"IsEnabled": b} */
        if (accept_kw(p, "true"))
            k->special = json_pack("{s:b}", "IsEnabled", 1);
        else if (accept_kw(p, "false"))
            k->special = json_pack("{s:b}", "IsEnabled", 0);
        else
            return syntax(c, p);
        return 0;
    }
    if (pi->kind == PV_RETENTION && k->verb == V_MERGE && peek(p)->type == SK_TOK_IDENT)
        return parse_retention_special(c, p, k);
    if (pi->kind == PV_STREAMING && k->verb == V_ALTER && (k->scope & (SC_DB | SC_TABLE))) {
        if (accept_kw(p, "enable")) {
            k->special = json_pack("{s:b, s:n}", "IsEnabled", 1, "HintAllocatedRate");
            return 0;
        }
        if (accept_kw(p, "disable")) {
            k->special = json_pack("{s:b, s:n}", "IsEnabled", 0, "HintAllocatedRate");
            return 0;
        }
    }
    if (peek(p)->type != SK_TOK_STRING) return syntax(c, p);
    k->json_tok = advance(p);
    if (!strcmp(pi->kw, "update")) return parse_with(c, p);
    return 0;
}

static unsigned verb_mask(const policy_info *pi, int verb)
{
    switch (verb) {
    case V_SHOW:
        return pi->show;
    case V_ALTER:
        return pi->alter;
    case V_MERGE:
        return pi->merge;
    case V_DELETE:
        return pi->del;
    default:
        return 0;
    }
}

/* "policy <kw> [value]" */
static int parse_policy(ctx *c, parser *p, cmd *k)
{
    if (!accept_kw(p, "policy")) return syntax(c, p);
    const sim_kusto_token *t = peek(p);
    if (t->type != SK_TOK_IDENT) return syntax(c, p);
    for (size_t i = 0; i < NPOLICIES; i++) {
        if (strcasecmp(t->text, POLICIES[i].kw) == 0 &&
            (verb_mask(&POLICIES[i], k->verb) & k->scope)) {
            k->pol = &POLICIES[i];
            advance(p);
            return parse_policy_value(c, p, k);
        }
    }
    return syntax(c, p);
}

/* ( 'fqn' [, 'fqn']... ) | none (.set only) then [skip-results] ['notes'] */
static int parse_principal_list(ctx *c, parser *p, cmd *k)
{
    if (k->verb == V_SET && accept_kw(p, "none")) goto tail; /* empties the role */
    if (!accept_punct(p, "(")) return syntax(c, p);
    for (;;) {
        const sim_kusto_token *t = peek(p);
        if (t->type != SK_TOK_STRING) return syntax(c, p);
        if (k->nfqns >= SIM_KUSTO_MAX_LIST)
            return fail_bad(c, "too many principals in one command (limit %d)", SIM_KUSTO_MAX_LIST);
        if (strlen(t->text) != t->len || t->len > MAX_FQN || !utf8_valid(t->text, t->len))
            return fail_bad(c, "invalid principal name");
        k->fqns[k->nfqns++] = t->text;
        advance(p);
        if (accept_punct(p, ")")) break;
        if (!accept_punct(p, ",")) return syntax(c, p);
    }
tail:
    if (accept_kw(p, "skip-results")) k->skip_results = 1;
    if (peek(p)->type == SK_TOK_STRING) {
        const sim_kusto_token *t = advance(p);
        if (strlen(t->text) != t->len || t->len > MAX_NOTES || !utf8_valid(t->text, t->len))
            return fail_bad(c, "invalid notes");
        k->notes = t->text;
    }
    return 0;
}

static int parse_role(ctx *c, parser *p, cmd *k)
{
    for (size_t i = 0; i < NROLES; i++) {
        if (accept_kw(p, ROLES[i].kw)) {
            k->role = (int)i;
            return parse_principal_list(c, p, k);
        }
    }
    return syntax(c, p);
}

static int parse_command(ctx *c, parser *p, cmd *k)
{
    static const struct {
        const char *kw;
        int verb;
    } VERBS[] = {{"show", V_SHOW},     {"alter", V_ALTER}, {"alter-merge", V_MERGE},
                 {"delete", V_DELETE}, {"add", V_ADD},     {"drop", V_DROP},
                 {"set", V_SET}};
    size_t dot = peek(p)->pos;
    if (!accept_punct(p, ".")) return syntax(c, p);
    const sim_kusto_token *t = peek(p);
    k->verb = -1;
    for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0]; i++)
        if (is_kw(t, VERBS[i].kw)) k->verb = VERBS[i].verb;
    if (k->verb < 0 || t->pos != dot + 1) return syntax(c, p); /* no blank between '.' and verb */
    advance(p);
    c->activity_type = k->verb == V_SHOW ? "DN.AdminCommand.PolicyShowCommand"
                                         : "DN.AdminCommand.PolicyAlterCommand";

    if (accept_kw(p, "cluster")) {
        if (ROLE_VERB(k->verb)) return syntax(c, p);
        k->scope = SC_CLUSTER;
        if (parse_policy(c, p, k)) return -1;
    } else if (accept_kw(p, "database")) {
        k->scope = SC_DB;
        if (k->verb == V_SHOW && accept_punct(p, "*")) {
            k->wildcard = 1;
        } else if (k->verb == V_ADD && peek(p)->type == SK_TOK_IDENT && !is_kw(peek(p), "policy")) {
            /* ".add database <role> (...)": the database name may be left out */
            for (size_t i = 0; i < NROLES; i++)
                if (is_kw(peek(p), ROLES[i].kw) && p->i + 1 < p->t->n &&
                    is_punct(&p->t->v[p->i + 1], "("))
                    goto role_no_db;
            if (parse_name(c, p, &k->names[0].name)) return -1;
            k->nnames = 1;
        } else {
            if (parse_name(c, p, &k->names[0].name)) return -1;
            k->nnames = 1;
        }
    role_no_db:
        if (ROLE_VERB(k->verb)) {
            c->activity_type = "DN.AdminCommand.DatabaseAddPrincipalsCommand";
            if (parse_role(c, p, k)) return -1;
        } else if (k->verb == V_SHOW && !k->wildcard && accept_kw(p, "principals")) {
            c->activity_type = "DN.AdminCommand.DatabasePrincipalsShowCommand";
            k->principals = 1;
        } else if (parse_policy(c, p, k)) {
            return -1;
        }
    } else if (accept_kw(p, "table") || accept_kw(p, "materialized-view")) {
        int mv = is_kw(&p->t->v[p->i - 1], "materialized-view");
        if (ROLE_VERB(k->verb)) return syntax(c, p);
        k->scope = mv ? SC_MV : SC_TABLE;
        if (!mv && k->verb == V_SHOW && accept_punct(p, "*")) {
            k->wildcard = 1;
        } else {
            if (parse_qualified(c, p, &k->names[0])) return -1;
            k->nnames = 1;
        }
        if (parse_policy(c, p, k)) return -1;
    } else if (accept_kw(p, "tables")) {
        if (k->verb != V_ALTER && k->verb != V_MERGE) return syntax(c, p);
        k->scope = SC_TABLES;
        if (!accept_punct(p, "(")) return syntax(c, p);
        for (;;) {
            if (k->nnames >= SIM_KUSTO_MAX_LIST)
                return fail_bad(c, "too many tables in one command (limit %d)", SIM_KUSTO_MAX_LIST);
            if (parse_qualified(c, p, &k->names[k->nnames])) return -1;
            k->nnames++;
            if (accept_punct(p, ")")) break;
            if (!accept_punct(p, ",")) return syntax(c, p);
        }
        if (parse_policy(c, p, k)) return -1;
    } else {
        return syntax(c, p);
    }
    if (peek(p)->type != SK_TOK_EOF) return syntax(c, p); /* trailing ';', '|', garbage */
    return 0;
}

/* ------------------------------------------------------------------ state access */

static json_t *find_db(json_t *cluster, const char *name)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(cluster, "databases"), i, d)
    {
        const char *n = json_string_value(json_object_get(d, "name"));
        if (n && strcasecmp(n, name) == 0) return d;
    }
    return NULL;
}

static json_t *find_named(json_t *db, const char *list, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(db, list), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0) return e;
    }
    return NULL;
}

static const char *ename(json_t *e)
{
    const char *n = json_string_value(json_object_get(e, "name"));
    return n ? n : "";
}

static json_t *policies_of(json_t *entity, int create)
{
    json_t *p = json_object_get(entity, "policies");
    if (!json_is_object(p) && create) {
        p = json_object();
        json_object_set_new(entity, "policies", p);
    }
    return json_is_object(p) ? p : NULL;
}

/* The policy as set at this entity's level (new reference), NULL when unset. */
static json_t *pol_get(int level, json_t *e, const policy_info *pi)
{
    if (level == SC_DB && pi->kind == PV_RETENTION) {
        int64_t t;
        const char *iso = json_string_value(json_object_get(e, "softDeletePeriod"));
        const char *rec = json_string_value(json_object_get(e, "recoverability"));
        if (!iso || sim_kusto_iso_parse(iso, &t)) return NULL;
        return json_pack("{s:o, s:s}", "SoftDeletePeriod", ts_json(t), "Recoverability",
                         rec && !strcasecmp(rec, "Disabled") ? "Disabled" : "Enabled");
    }
    if (level == SC_DB && pi->kind == PV_CACHING) {
        int64_t t;
        const char *iso = json_string_value(json_object_get(e, "hotCachePeriod"));
        if (!iso || sim_kusto_iso_parse(iso, &t)) return NULL;
        json_t *v = json_pack("{s:o, s:o}", "DataHotSpan", ts_json(t), "IndexHotSpan", ts_json(t));
        json_t *w = json_object_get(json_object_get(policies_of(e, 0), "caching"), "HotWindows");
        if (json_is_array(w) && json_array_size(w)) json_object_set(v, "HotWindows", w);
        return v;
    }
    json_t *v = json_object_get(policies_of(e, 0), pi->kw);
    return v && !json_is_null(v) ? json_deep_copy(v) : NULL;
}

static void pol_set(int level, json_t *e, const policy_info *pi, json_t *v)
{
    char iso[64];
    int64_t t;
    if (level == SC_DB && pi->kind == PV_RETENTION) {
        if (sim_kusto_timespan_parse_net(json_string_value(json_object_get(v, "SoftDeletePeriod")),
                                         &t))
            t = 365000LL * SIM_KUSTO_TICKS_PER_DAY;
        sim_kusto_iso_format(t, iso, sizeof iso);
        json_object_set_new(e, "softDeletePeriod", json_string(iso));
        json_object_set(e, "recoverability", json_object_get(v, "Recoverability"));
        return;
    }
    if (level == SC_DB && pi->kind == PV_CACHING) {
        if (sim_kusto_timespan_parse_net(json_string_value(json_object_get(v, "DataHotSpan")), &t))
            t = 0;
        sim_kusto_iso_format(t, iso, sizeof iso);
        json_object_set_new(e, "hotCachePeriod", json_string(iso));
        json_t *w = json_object_get(v, "HotWindows");
        json_t *pol = policies_of(e, json_is_array(w));
        if (json_is_array(w))
            json_object_set_new(pol, "caching", json_pack("{s:O}", "HotWindows", w));
        else if (pol)
            json_object_del(pol, "caching");
        return;
    }
    json_object_set_new(policies_of(e, 1), pi->kw, json_deep_copy(v));
}

static void pol_del(int level, json_t *e, const policy_info *pi)
{
    if (level == SC_DB && pi->kind == PV_RETENTION) {
        json_object_del(e, "softDeletePeriod");
        json_object_del(e, "recoverability");
        return;
    }
    if (level == SC_DB && pi->kind == PV_CACHING) {
        json_object_del(e, "hotCachePeriod");
    }
    json_t *pol = policies_of(e, 0);
    if (pol) json_object_del(pol, pi->kw);
}

/* ------------------------------------------------------------------ policy JSON */

typedef enum { FT_TIMESPAN, FT_UINT, FT_BOOL, FT_STRING, FT_NUMBER, FT_DATETIME, FT_RECOVER } ftype;

/* Properties whose type the simulator checks wherever they appear; others pass as-is. */
static const struct {
    const char *key;
    ftype type;
    int nullable;
} FIELDS[] = {
    {"SoftDeletePeriod", FT_TIMESPAN, 0},
    {"Recoverability", FT_RECOVER, 0},
    {"DataHotSpan", FT_TIMESPAN, 0},
    {"IndexHotSpan", FT_TIMESPAN, 0},
    {"MaximumBatchingTimeSpan", FT_TIMESPAN, 0},
    {"CustomPeriod", FT_TIMESPAN, 1},
    {"RetentionPeriod", FT_TIMESPAN, 0},
    {"LoopPeriod", FT_TIMESPAN, 1},
    {"MaximumNumberOfItems", FT_UINT, 0},
    {"MaximumRawDataSizeMB", FT_UINT, 0},
    {"RowCountUpperBoundForMerge", FT_UINT, 0},
    {"OriginalSizeMBUpperBoundForMerge", FT_UINT, 0},
    {"MaxExtentsToMerge", FT_UINT, 0},
    {"MaxRangeInHours", FT_UINT, 0},
    {"ShardEngineMaxRowCount", FT_UINT, 0},
    {"ShardEngineMaxExtentSizeInMb", FT_UINT, 0},
    {"ShardEngineMaxOriginalSizeInMb", FT_UINT, 0},
    {"MaxRowCount", FT_UINT, 0},
    {"MaxExtentSizeInMb", FT_UINT, 0},
    {"MaxOriginalSizeInMb", FT_UINT, 0},
    {"IsEnabled", FT_BOOL, 0},
    {"AllowRebuild", FT_BOOL, 0},
    {"AllowMerge", FT_BOOL, 0},
    {"IsTransactional", FT_BOOL, 0},
    {"PropagateIngestionProperties", FT_BOOL, 0},
    {"DeleteIfNotEmpty", FT_BOOL, 0},
    {"UseShardEngine", FT_BOOL, 0},
    {"HintAllocatedRate", FT_NUMBER, 1},
    {"Source", FT_STRING, 0},
    {"Query", FT_STRING, 0},
    {"TagPrefix", FT_STRING, 0},
    {"ManagedIdentity", FT_STRING, 1},
    {"ColumnName", FT_STRING, 0},
    {"ExpiryDate", FT_DATETIME, 0},
    {"EffectiveDateTime", FT_DATETIME, 1},
    {"MinDate", FT_DATETIME, 0},
    {"MaxDate", FT_DATETIME, 0},
};

/* Nesting depth of JSON text, measured before parsing so no parser recursion is
 * spent on hostile input. */
static size_t json_text_depth(const char *s, size_t len)
{
    size_t depth = 0, max = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            if (++depth > max) max = depth;
        } else if ((ch == '}' || ch == ']') && depth) {
            depth--;
        }
    }
    return max;
}

/* Validates v and returns a normalized copy (timespans as .NET text, datetimes
 * canonical, known keys spelled canonically), or NULL with err set. */
static json_t *normalize(json_t *v, int depth, char *err, size_t errlen)
{
    if (depth > SIM_KUSTO_MAX_JSON_DEPTH) {
        snprintf(err, errlen, "policy JSON nested too deeply (limit %d)", SIM_KUSTO_MAX_JSON_DEPTH);
        return NULL;
    }
    if (json_is_array(v)) {
        json_t *out = json_array(), *e;
        size_t i;
        json_array_foreach(v, i, e)
        {
            json_t *n = normalize(e, depth + 1, err, errlen);
            if (!n) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, n);
        }
        return out;
    }
    if (!json_is_object(v)) return json_incref(v);
    json_t *out = json_object(), *e;
    const char *key;
    json_object_foreach(v, key, e)
    {
        size_t f;
        for (f = 0; f < sizeof FIELDS / sizeof FIELDS[0]; f++)
            if (strcasecmp(key, FIELDS[f].key) == 0) break;
        if (f == sizeof FIELDS / sizeof FIELDS[0]) {
            json_t *n = normalize(e, depth + 1, err, errlen);
            if (!n) goto bad;
            json_object_set_new(out, key, n);
            continue;
        }
        const char *k = FIELDS[f].key;
        if (json_is_null(e)) {
            if (!FIELDS[f].nullable) {
                snprintf(err, errlen, "property '%s' must not be null", k);
                goto bad;
            }
            json_object_set_new(out, k, json_null());
            continue;
        }
        json_t *nv = NULL; /* the normalized value; NULL when e does not fit the type */
        const char *why = "";
        switch (FIELDS[f].type) {
        case FT_TIMESPAN: {
            int64_t t;
            json_t *s = e;
            if (json_is_object(e) && json_object_size(e) == 1) s = json_object_get(e, "Value");
            if (json_is_string(s) && !sim_kusto_timespan_parse_net(json_string_value(s), &t) &&
                t >= 0)
                nv = ts_json(t);
            why = "is not a valid timespan ('d.hh:mm:ss')";
            break;
        }
        case FT_UINT:
            if (json_is_integer(e) && json_integer_value(e) >= 0) nv = json_incref(e);
            why = "must be a non-negative integer";
            break;
        case FT_BOOL:
            if (json_is_boolean(e)) nv = json_incref(e);
            why = "must be true or false";
            break;
        case FT_NUMBER:
            if (json_is_number(e) && json_number_value(e) >= 0) nv = json_incref(e);
            why = "must be a non-negative number";
            break;
        case FT_STRING:
            if (json_is_string(e)) nv = json_incref(e);
            why = "must be a string";
            break;
        case FT_DATETIME: {
            char dt[40];
            if (json_is_string(e) && !sim_kusto_datetime_parse(json_string_value(e), dt, sizeof dt))
                nv = json_string(dt);
            why = "is not a valid datetime";
            break;
        }
        case FT_RECOVER: {
            const char *s = json_string_value(e);
            if (s && !strcasecmp(s, "Enabled"))
                nv = json_string("Enabled");
            else if (s && !strcasecmp(s, "Disabled"))
                nv = json_string("Disabled");
            why = "must be 'Enabled' or 'Disabled'";
            break;
        }
        }
        if (!nv) {
            snprintf(err, errlen, "property '%s' %s", k, why);
            goto bad;
        }
        json_object_set_new(out, k, nv);
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

/* Puts the listed keys first, filling defaults for absent ones; returns a new object. */
static json_t *with_defaults(json_t *v, const char *const *keys, json_t *const *defs, size_t n)
{
    json_t *out = json_object(), *e;
    const char *k;
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_object_get(v, keys[i]);
        json_object_set(out, keys[i], x ? x : defs[i]);
    }
    json_object_foreach(v, k, e) if (!json_object_get(out, k)) json_object_set(out, k, e);
    for (size_t i = 0; i < n; i++)
        json_decref(defs[i]);
    return out;
}

static int require_keys(json_t *obj, const char *const *keys, size_t n, const char *what, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!json_object_get(obj, keys[i])) {
            snprintf(err, errlen, "%s: property '%s' is required", what, keys[i]);
            return -1;
        }
    }
    return 0;
}

/* Shape rules and defaults of one policy; takes and returns a normalized value. */
static json_t *finalize(const policy_info *pi, json_t *v, char *err, size_t errlen)
{
    const char *kw = pi->kw;
    if (pi->kind == PV_JSON_ARR) {
        size_t i;
        json_t *e, *out = json_array();
        if (!json_is_array(v)) {
            snprintf(err, errlen, "%s policy must be a JSON array", kw);
            goto bad;
        }
        json_array_foreach(v, i, e)
        {
            if (!json_is_object(e)) {
                snprintf(err, errlen, "%s policy entries must be JSON objects", kw);
                goto bad;
            }
            if (!strcmp(kw, "update")) {
                static const char *const req[] = {"Source", "Query"};
                static const char *const keys[] = {"IsEnabled", "Source", "Query",
                                                   "IsTransactional",
                                                   "PropagateIngestionProperties"};
                if (require_keys(e, req, 2, "update policy", err, errlen)) goto bad;
                json_t *defs[] = {json_false(), json_null(), json_null(), json_false(),
                                  json_false()};
                json_array_append_new(out, with_defaults(e, keys, defs, 5));
            } else {
                static const char *const req[] = {"TagPrefix", "RetentionPeriod"};
                if (require_keys(e, req, 2, "extent_tags_retention policy", err, errlen)) goto bad;
                json_array_append(out, e);
            }
        }
        return out;
    bad:
        json_decref(out);
        return NULL;
    }
    if (!json_is_object(v)) {
        snprintf(err, errlen, "%s policy must be a JSON object", kw);
        return NULL;
    }
    if (!strcmp(kw, "retention")) {
        static const char *const keys[] = {"SoftDeletePeriod", "Recoverability"};
        json_t *defs[] = {json_string("365000.00:00:00"), json_string("Enabled")};
        return with_defaults(v, keys, defs, 2);
    }
    if (!strcmp(kw, "ingestionbatching")) {
        static const char *const keys[] = {"MaximumBatchingTimeSpan", "MaximumNumberOfItems",
                                           "MaximumRawDataSizeMB"};
        json_t *defs[] = {json_string("00:05:00"), json_integer(500), json_integer(1024)};
        return with_defaults(v, keys, defs, 3);
    }
    if (!strcmp(kw, "streamingingestion")) {
        static const char *const keys[] = {"IsEnabled", "HintAllocatedRate"};
        json_t *defs[] = {json_false(), json_null()};
        return with_defaults(v, keys, defs, 2);
    }
    if (!strcmp(kw, "auto_delete")) {
        static const char *const req[] = {"ExpiryDate"};
        static const char *const keys[] = {"ExpiryDate", "DeleteIfNotEmpty"};
        if (require_keys(v, req, 1, "auto_delete policy", err, errlen)) return NULL;
        json_t *defs[] = {json_null(), json_false()};
        return with_defaults(v, keys, defs, 2);
    }
    if (!strcmp(kw, "partitioning")) {
        if (!json_is_array(json_object_get(v, "PartitionKeys"))) {
            snprintf(err, errlen, "partitioning policy: 'PartitionKeys' must be an array");
            return NULL;
        }
    }
    return json_incref(v);
}

/* Parses J (a decoded string literal) into a normalized policy value. */
static json_t *parse_policy_json(const sim_kusto_token *t, char *err, size_t errlen)
{
    json_error_t je;
    if (json_text_depth(t->text, t->len) > SIM_KUSTO_MAX_JSON_DEPTH) {
        snprintf(err, errlen, "policy JSON nested too deeply (limit %d)", SIM_KUSTO_MAX_JSON_DEPTH);
        return NULL;
    }
    json_t *raw = json_loadb(t->text, t->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!raw) {
        snprintf(err, errlen, "policy is not valid JSON: %s (position %d)", je.text, je.position);
        return NULL;
    }
    json_t *n = normalize(raw, 0, err, errlen);
    json_decref(raw);
    return n;
}

/* The value a write stores: J or special syntax; .alter-merge overlays the current
 * value (update policy: appends).  Returns a new reference or NULL (c set). */
static json_t *new_value(ctx *c, const cmd *k, json_t *current)
{
    char err[512] = "";
    json_t *in =
        k->special ? json_incref(k->special) : parse_policy_json(k->json_tok, err, sizeof err);
    if (!in) {
        fail_bad(c, "%s", err);
        return NULL;
    }
    if (k->verb == V_MERGE && current) {
        json_t *base = normalize(current, 0, err, sizeof err);
        if (base && json_is_array(base) && json_is_array(in)) {
            json_array_extend(base, in);
        } else if (base && json_is_object(base) && json_is_object(in)) {
            json_object_update(base, in);
        } else {
            json_decref(base);
            base = NULL;
            if (!err[0])
                snprintf(err, sizeof err, "cannot merge into the current %s policy", k->pol->kw);
        }
        json_decref(in);
        if (!base) {
            fail_bad(c, "%s", err);
            return NULL;
        }
        in = base;
    }
    json_t *out = finalize(k->pol, in, err, sizeof err);
    json_decref(in);
    if (!out) fail_bad(c, "%s", err);
    return out;
}

/* ------------------------------------------------------------------ frames */

static const char *const POLICY_COLS[] = {"PolicyName", "EntityName", "Policy", "ChildEntities",
                                          "EntityType"};
static const char *const ROLE_COLS[] = {
    "Role",         "PrincipalType", "PrincipalDisplayName",    "PrincipalObjectId",
    "PrincipalFQN", "Notes",         "RoleAssignmentIdentifier"};

/* {"Tables":[{"TableName":"Table_0","Columns":[string columns],"Rows":[]}]}; *rows is
 * borrowed from the frame. */
static json_t *frame_new(const char *const *cols, size_t n, json_t **rows)
{
    json_t *columns = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(columns, json_pack("{s:s, s:s, s:s}", "ColumnName", cols[i],
                                                 "DataType", "String", "ColumnType", "string"));
    *rows = json_array();
    return json_pack("{s:[{s:s, s:o, s:o}]}", "Tables", "TableName", "Table_0", "Columns", columns,
                     "Rows", *rows);
}

static json_t *str_or_null(char *s)
{
    json_t *v = s ? json_string(s) : json_null();
    free(s);
    return v;
}

static char *child_names(json_t *list)
{
    json_t *names = json_array(), *e;
    size_t i;
    json_array_foreach(list, i, e) json_array_append_new(names, json_string(ename(e)));
    char *s = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    return s;
}

static void policy_row(json_t *rows, const policy_info *pi, int level, json_t *db, json_t *e,
                       json_t *cluster)
{
    char entity[2 * SIM_KUSTO_MAX_NAME * 4 + 8];
    const char *type;
    char *children = NULL;
    json_t *v = pol_get(level, e, pi);
    switch (level) {
    case SC_CLUSTER:
        entity[0] = '\0';
        type = "Cluster";
        children = child_names(json_object_get(cluster, "databases"));
        break;
    case SC_DB:
        snprintf(entity, sizeof entity, "[%s]", ename(e));
        type = "Database";
        children = child_names(json_object_get(e, "tables"));
        break;
    case SC_MV:
        snprintf(entity, sizeof entity, "[%s].[%s]", ename(db), ename(e));
        type = "MaterializedView";
        break;
    default:
        snprintf(entity, sizeof entity, "[%s].[%s]", ename(db), ename(e));
        type = "Table";
        break;
    }
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    json_array_append_new(rows, json_pack("[s, s, o, o, s]", pi->name, entity, str_or_null(text),
                                          str_or_null(children), type));
}

/* ------------------------------------------------------------------ roles */

static int has_assignment(json_t *list, const char *app, const char *const *roles, size_t nroles)
{
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        const char *pid = json_string_value(json_object_get(a, "principalId"));
        const char *role = json_string_value(json_object_get(a, "role"));
        if (!pid || !role || strcasecmp(pid, app)) continue;
        for (size_t r = 0; r < nroles; r++)
            if (!strcasecmp(role, roles[r])) return 1;
    }
    return 0;
}

/* The app id inside "aadapp=<id>;<tenant>" (copied to out), or "" when fqn is no app. */
static void fqn_app(const char *fqn, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!fqn || strncasecmp(fqn, "aadapp=", 7)) return;
    const char *id = fqn + 7, *semi = strchr(id, ';');
    size_t n = semi ? (size_t)(semi - id) : strlen(id);
    if (n >= outlen) return;
    memcpy(out, id, n);
    out[n] = '\0';
}

static int db_principal_has(json_t *db, const char *app, int admin_only)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(db, "principals"), i, p)
    {
        const char *role = json_string_value(json_object_get(p, "role"));
        const char *appid = json_string_value(json_object_get(p, "appId"));
        char fromfqn[256];
        fqn_app(json_string_value(json_object_get(p, "fqn")), fromfqn, sizeof fromfqn);
        if (!role || (admin_only && strcasecmp(role, "Admin"))) continue;
        if ((appid && !strcasecmp(appid, app)) || !strcasecmp(fromfqn, app)) return 1;
    }
    return 0;
}

static int may(const ctx *c, json_t *db, int write)
{
    static const char *const cl_admin[] = {"AllDatabasesAdmin"};
    static const char *const cl_view[] = {"AllDatabasesAdmin", "AllDatabasesViewer"};
    static const char *const db_admin[] = {"Admin"};
    static const char *const db_any[] = {"Admin",    "User",   "Viewer", "UnrestrictedViewer",
                                         "Ingestor", "Monitor"};
    if (!c->caller) return 1;
    const char *app = c->caller->app_id;
    if (!app || !*app) return 0;
    json_t *cl = json_object_get(c->cluster, "principalAssignments");
    if (write ? has_assignment(cl, app, cl_admin, 1) : has_assignment(cl, app, cl_view, 2))
        return 1;
    if (!db) return 0;
    json_t *dl = json_object_get(db, "principalAssignments");
    if (write ? has_assignment(dl, app, db_admin, 1) : has_assignment(dl, app, db_any, 6)) return 1;
    return db_principal_has(db, app, write);
}

static int fail_forbidden(ctx *c, json_t *db, const char *op)
{
    const char *app = c->caller && c->caller->app_id ? c->caller->app_id : "";
    const char *tid = c->caller && c->caller->tenant_id ? c->caller->tenant_id : "";
    if (db)
        return fail(
            c, 403, "Forbidden", "Kusto.Data.Exceptions.UnauthorizedDatabaseAccessException", 1,
            "Principal 'aadapp=%.128s;%.128s' is not authorized to perform operation '%s' on "
            "database '%.1100s'.",
            app, tid, op, ename(db));
    return fail(c, 403, "Forbidden", "Kusto.Data.Exceptions.UnauthorizedOperationException", 1,
                "Principal 'aadapp=%.128s;%.128s' is not authorized to perform operation '%s' on "
                "the cluster.",
                app, tid, op);
}

/* Splits "aadapp=<id>;<tenant>" etc.; returns the ARM principal type or NULL. */
static const char *parse_fqn(const char *fqn, char *kind, size_t kindlen, char *id, size_t idlen,
                             char *tenant, size_t tenantlen)
{
    static const struct {
        const char *prefix, *type;
    } K[] = {{"aadapp", "App"}, {"aaduser", "User"}, {"aadgroup", "Group"}, {"msauser", "User"}};
    const char *eq = strchr(fqn, '=');
    if (!eq) return NULL;
    size_t plen = (size_t)(eq - fqn);
    for (size_t i = 0; i < sizeof K / sizeof K[0]; i++) {
        if (strlen(K[i].prefix) != plen || strncasecmp(fqn, K[i].prefix, plen)) continue;
        const char *rest = eq + 1, *semi = strchr(rest, ';');
        size_t n = semi ? (size_t)(semi - rest) : strlen(rest);
        if (n == 0 || n >= idlen) return NULL;
        memcpy(id, rest, n);
        id[n] = '\0';
        tenant[0] = '\0';
        if (semi) {
            if (strlen(semi + 1) >= tenantlen || strchr(semi + 1, ';')) return NULL;
            snprintf(tenant, tenantlen, "%s", semi + 1);
        }
        if (!strcmp(K[i].type, "App") && !tenant[0]) return NULL; /* app needs a tenant */
        for (const char *s = id; *s; s++)
            if ((unsigned char)*s < 0x20 || *s == '\'' || *s == '"') return NULL;
        for (const char *s = tenant; *s; s++)
            if ((unsigned char)*s < 0x20 || *s == '\'' || *s == '"') return NULL;
        snprintf(kind, kindlen, "%s", K[i].prefix);
        return K[i].type;
    }
    return NULL;
}

static void principals_rows(json_t *rows, json_t *db)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(db, "principals"), i, p)
    {
        const char *role = json_string_value(json_object_get(p, "role"));
        const char *type = json_string_value(json_object_get(p, "type"));
        const char *fqn = json_string_value(json_object_get(p, "fqn"));
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *appid = json_string_value(json_object_get(p, "appId"));
        const char *email = json_string_value(json_object_get(p, "email"));
        const char *notes = json_string_value(json_object_get(p, "notes"));
        char label[128], guid[37];
        if (!role) continue;
        snprintf(label, sizeof label, "Database %.64s %s", ename(db), role);
        const char *ptype = !type                       ? "AAD Application"
                            : !strcasecmp(type, "App")  ? "AAD Application"
                            : !strcasecmp(type, "User") ? "AAD User"
                                                        : "AAD Group";
        const char *oid = appid && *appid ? appid : email && *email ? email : name ? name : "";
        stable_guid(role, fqn ? fqn : oid, guid);
        json_array_append_new(rows,
                              json_pack("[s, s, s, s, s, s, s]", label, ptype, name ? name : oid,
                                        oid, fqn ? fqn : "", notes ? notes : "", guid));
    }
}

static int run_roles(ctx *c, const cmd *k, json_t *db)
{
    json_t *rows;
    if (k->principals) {
        if (!may(c, db, 0)) return fail_forbidden(c, db, "show principals");
        c->body = frame_new(ROLE_COLS, 7, &rows);
        principals_rows(rows, db);
        return 0;
    }
    if (!may(c, db, 1))
        return fail_forbidden(c, db,
                              k->verb == V_ADD    ? "add principals"
                              : k->verb == V_DROP ? "drop principals"
                                                  : "set principals");
    const char *role = ROLES[k->role].role;
    json_t *list = json_object_get(db, "principals");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(db, "principals", list);
    }
    /* validate every FQN before changing anything */
    for (size_t i = 0; i < k->nfqns; i++) {
        char kind[16], id[MAX_FQN], tenant[MAX_FQN];
        if (!parse_fqn(k->fqns[i], kind, sizeof kind, id, sizeof id, tenant, sizeof tenant))
            return fail_bad(c,
                            "principal '%.600s' is not a valid FQN (aadapp=<appId>;<tenant>, "
                            "aaduser=<upn>[;tenant], aadgroup=<name>[;tenant], msauser=<email>)",
                            k->fqns[i]);
    }
    if (k->verb == V_SET) { /* .set replaces everyone in the role */
        for (size_t j = json_array_size(list); j-- > 0;) {
            const char *r = json_string_value(json_object_get(json_array_get(list, j), "role"));
            if (r && !strcasecmp(r, role)) json_array_remove(list, j);
        }
    }
    for (size_t i = 0; i < k->nfqns; i++) {
        char kind[16], id[MAX_FQN], tenant[MAX_FQN], fqn[3 * MAX_FQN];
        const char *type =
            parse_fqn(k->fqns[i], kind, sizeof kind, id, sizeof id, tenant, sizeof tenant);
        snprintf(fqn, sizeof fqn, "%s=%s%s%s", kind, id, tenant[0] ? ";" : "", tenant);
        /* find an existing entry with the same role and principal */
        size_t j, found = (size_t)-1;
        json_t *p;
        json_array_foreach(list, j, p)
        {
            const char *r = json_string_value(json_object_get(p, "role"));
            const char *f = json_string_value(json_object_get(p, "fqn"));
            const char *a = json_string_value(json_object_get(p, "appId"));
            if (!r || strcasecmp(r, role)) continue;
            if ((f && !strcasecmp(f, fqn)) || (!strcmp(type, "App") && a && !strcasecmp(a, id))) {
                found = j;
                break;
            }
        }
        if (k->verb == V_DROP) {
            if (found != (size_t)-1) json_array_remove(list, found);
            continue;
        }
        if (found != (size_t)-1) {
            if (k->notes)
                json_object_set_new(json_array_get(list, found), "notes", json_string(k->notes));
            continue;
        }
        int app = !strcmp(type, "App");
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "role",
                                              role, "type", type, "name", id, "fqn", fqn, "appId",
                                              app ? id : "", "email", app ? "" : id, "tenantName",
                                              tenant, "notes", k->notes ? k->notes : ""));
    }
    c->body = frame_new(ROLE_COLS, 7, &rows);
    if (!k->skip_results) principals_rows(rows, db);
    return 0;
}

/* ------------------------------------------------------------------ execution */

typedef struct target {
    int level;
    json_t *db, *e;
} target;

/* Resolves a database named in the command (case-insensitive). */
static json_t *db_named(ctx *c, const char *name)
{
    json_t *d = find_db(c->cluster, name);
    if (!d) fail_not_found(c, name, "Database");
    return d;
}

static int run_policy(ctx *c, const cmd *k)
{
    target *tg = NULL;
    size_t n = 0;
    int write = k->verb != V_SHOW, rc = -1;
    json_t *rows;
    const char *op = k->verb == V_SHOW ? "show policy" : "alter policy";

    /* 1. the entities, checking rights per database before looking inside it */
    if (k->scope == SC_CLUSTER) {
        if (!may(c, NULL, write)) return fail_forbidden(c, NULL, op);
        tg = calloc(1, sizeof *tg);
        if (!tg) return fail_bad(c, "out of memory");
        tg[n++] = (target){SC_CLUSTER, NULL, c->cluster};
    } else if (k->scope == SC_DB && k->wildcard) {
        json_t *dbs = json_object_get(c->cluster, "databases"), *d;
        size_t i;
        tg = calloc(json_array_size(dbs) + 1, sizeof *tg);
        if (!tg) return fail_bad(c, "out of memory");
        json_array_foreach(dbs, i, d) if (may(c, d, 0)) tg[n++] = (target){SC_DB, d, d};
    } else if (k->scope == SC_DB) {
        json_t *d = db_named(c, k->names[0].name);
        if (!d) return -1;
        if (!may(c, d, write)) return fail_forbidden(c, d, op);
        tg = calloc(1, sizeof *tg);
        if (!tg) return fail_bad(c, "out of memory");
        tg[n++] = (target){SC_DB, d, d};
    } else if (k->wildcard) { /* .show table * */
        if (!c->ctx_db) return fail_bad(c, "the request names no database for 'table *'");
        if (!may(c, c->ctx_db, 0)) return fail_forbidden(c, c->ctx_db, op);
        json_t *tables = json_object_get(c->ctx_db, "tables"), *t;
        size_t i;
        tg = calloc(json_array_size(tables) + 1, sizeof *tg);
        if (!tg) return fail_bad(c, "out of memory");
        json_array_foreach(tables, i, t) tg[n++] = (target){SC_TABLE, c->ctx_db, t};
    } else {
        tg = calloc(k->nnames, sizeof *tg);
        if (!tg) return fail_bad(c, "out of memory");
        for (size_t i = 0; i < k->nnames; i++) {
            json_t *d = k->names[i].db ? db_named(c, k->names[i].db) : c->ctx_db;
            if (!d) {
                if (!k->names[i].db)
                    fail_bad(c, "the request names no database for '%.1100s'", k->names[i].name);
                goto out;
            }
            if (!may(c, d, write)) {
                fail_forbidden(c, d, op);
                goto out;
            }
            int mv = k->scope == SC_MV;
            json_t *e = find_named(d, mv ? "materializedViews" : "tables", k->names[i].name);
            if (!e) {
                fail_not_found(c, k->names[i].name, mv ? "MaterializedView" : "Table");
                goto out;
            }
            tg[n++] = (target){mv ? SC_MV : SC_TABLE, d, e};
        }
    }

    /* 2. the change: every value computed before anything is stored */
    if (k->verb == V_ALTER || k->verb == V_MERGE) {
        json_t **vals = calloc(n ? n : 1, sizeof *vals);
        if (!vals) {
            fail_bad(c, "out of memory");
            goto out;
        }
        size_t i;
        for (i = 0; i < n; i++) {
            json_t *cur = k->verb == V_MERGE ? pol_get(tg[i].level, tg[i].e, k->pol) : NULL;
            vals[i] = new_value(c, k, cur);
            json_decref(cur);
            if (!vals[i]) break;
        }
        if (i == n)
            for (i = 0; i < n; i++)
                pol_set(tg[i].level, tg[i].e, k->pol, vals[i]);
        int ok = i == n;
        for (i = 0; i < n; i++)
            json_decref(vals[i]);
        free(vals);
        if (!ok) goto out;
    } else if (k->verb == V_DELETE) {
        for (size_t i = 0; i < n; i++)
            pol_del(tg[i].level, tg[i].e, k->pol);
    }

    /* 3. the answer: the entities' policies as they now are */
    c->body = frame_new(POLICY_COLS, 5, &rows);
    for (size_t i = 0; i < n; i++)
        policy_row(rows, k->pol, tg[i].level, tg[i].db, tg[i].e, c->cluster);
    rc = 0;
out:
    free(tg);
    return rc;
}

static int execute(ctx *c, const char *db, const char *csl)
{
    sim_kusto_tokens toks = {0};
    size_t errpos = 0, len;
    char err[256];
    cmd *k;
    int rc;

    len = strnlen(csl, SIM_KUSTO_MAX_CSL + 1);
    if (len > SIM_KUSTO_MAX_CSL)
        return fail(c, 400, "BadRequest_SyntaxError", "Kusto.Data.Exceptions.SyntaxException", 1,
                    "Syntax error: the command text is longer than %d bytes", SIM_KUSTO_MAX_CSL);
    if (sim_kusto_lex(csl, len, &toks, &errpos, err, sizeof err))
        return fail(c, 400, "BadRequest_SyntaxError", "Kusto.Data.Exceptions.SyntaxException", 1,
                    "Syntax error: SYN0001: %s at position %zu", err, errpos);
    k = calloc(1, sizeof *k);
    if (!k) {
        sim_kusto_tokens_free(&toks);
        return fail_bad(c, "out of memory");
    }
    parser p = {&toks, 0};
    rc = parse_command(c, &p, k);
    if (rc == 0 && db && *db) {
        c->ctx_db = find_db(c->cluster, db);
        if (!c->ctx_db)
            rc = fail(c, 404, "NotFound", "Kusto.Data.Exceptions.EntityNameDoesNotExistException",
                      1, "Entity name '%.1100s' of kind 'Database' does not exist.", db);
    }
    if (rc == 0) {
        if (k->principals || (k->scope == SC_DB && !k->pol)) {
            json_t *d = k->nnames ? db_named(c, k->names[0].name) : c->ctx_db;
            if (!d && !k->nnames)
                rc = fail_bad(c, "the request names no database");
            else if (!d)
                rc = -1;
            else
                rc = run_roles(c, k, d);
        } else {
            rc = run_policy(c, k);
        }
    }
    json_decref(k->special);
    free(k);
    sim_kusto_tokens_free(&toks);
    return rc;
}

int sim_kusto_execute(json_t *cluster, const char *db, const char *csl,
                      const sim_kusto_caller *caller, const char *client_request_id,
                      const char *activity_id, json_t **body)
{
    ctx c = {cluster,
             NULL,
             caller,
             client_request_id,
             activity_id,
             csl ? csl : "",
             "DN.AdminCommand.ControlCommand",
             NULL,
             200};
    if (!csl || !json_is_object(cluster)) {
        fail(&c, 400, "BadRequest_SyntaxError", "Kusto.Data.Exceptions.SyntaxException", 1,
             "Syntax error: empty command");
    } else if (execute(&c, db, csl) == 0) {
        c.status = 200;
    }
    if (!c.body) fail_bad(&c, "internal error building the answer");
    if (!c.body) /* out of memory: the smallest answer that still says what happened */
        c.body = json_pack("{s:{s:s, s:s, s:b}}", "error", "code", "General_BadRequest", "message",
                           GENERIC_400, "@permanent", 0);
    *body = c.body;
    return c.status;
}
