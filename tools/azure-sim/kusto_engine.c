/* kusto_engine.c: azure-sim's Kusto management-command engine: parses one command
 * (policies at cluster/database/table/materialized-view/column/external-table scope,
 * security roles of databases, tables and materialized views, workload groups) and runs it
 * against a cluster's JSON state, answering a v1 frame or a OneApi error.  The policy
 * values themselves (checks, defaults, merging) are kusto_policy.c's. */
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
#define MAX_CUSTOM_WORKLOAD_GROUPS 10 /* besides the built-in ones (Kusto's limit) */

/* ------------------------------------------------------------------ policies */

enum {
    SC_CLUSTER = 1,
    SC_DB = 2,
    SC_TABLE = 4,
    SC_MV = 8,
    SC_TABLES = 16,
    SC_COLUMN = 32,
    SC_EXT = 64 /* external table */
};
enum { V_SHOW, V_ALTER, V_MERGE, V_DELETE, V_ADD, V_DROP, V_SET, V_CREATE_OR_ALTER };
#define ROLE_VERB(v) ((v) == V_ADD || (v) == V_DROP || (v) == V_SET)
/* How a policy's value is written after "policy <kw>" in .alter / .alter-merge. */
enum {
    PV_JSON_OBJ,
    PV_JSON_ARR,
    PV_CACHING,   /* hot = ts [, hot_window = datetime(a) .. datetime(b)]... */
    PV_RETENTION, /* J, or (merge) softdelete = ts [recoverability = enabled|disabled] */
    PV_STREAMING, /* J, or (database, table .alter) enable | disable */
    PV_BOOL,      /* true | false */
    PV_RLS,       /* enable | disable [with (k = v, ...)] 'query' */
    PV_ROWORDER,  /* (col asc|desc, ...) */
    PV_ENCODING,  /* J; a column's .alter also: [type = 'Identifier'] */
    PV_CLASSIFY   /* J <| function body (.alter); J (.alter-merge) */
};
/* Rights a write needs beyond the scope's usual admin role. */
enum {
    R_ENTITY = 0,  /* a table's (materialized view's) own Admin role is enough */
    R_DB = 1,      /* Database Admin even at table scope */
    R_CLUSTER = 2, /* AllDatabasesAdmin at every scope */
};

typedef struct policy_info {
    const char *kw;
    const char *name;                 /* PolicyName column */
    int kind;                         /* PV_* */
    unsigned alter, merge, del, show; /* SC_* masks: where each verb exists */
    int rights;                       /* R_* */
} policy_info;

#define ALL_DB_T (SC_DB | SC_TABLE)
#define ALL_DTM (SC_DB | SC_TABLE | SC_MV)
#define ALL_CDT (SC_CLUSTER | SC_DB | SC_TABLE)

/* Scopes per verb as the reference's §4 table and the Kusto documentation list them; a verb
 * a policy lacks at a scope does not parse (400 BadRequest_SyntaxError). */
static const policy_info POLICIES[] = {
    {"caching", "CachingPolicy", PV_CACHING, SC_CLUSTER | ALL_DTM | SC_COLUMN | SC_TABLES, 0,
     SC_CLUSTER | ALL_DTM | SC_COLUMN, SC_CLUSTER | ALL_DTM | SC_COLUMN, R_ENTITY},
    {"retention", "RetentionPolicy", PV_RETENTION, ALL_DTM | SC_TABLES, ALL_DTM, ALL_DTM, ALL_DTM,
     R_ENTITY},
    {"merge", "MergePolicy", PV_JSON_OBJ, ALL_DTM | SC_TABLES, ALL_DTM, ALL_DTM, ALL_DTM, R_ENTITY},
    {"partitioning", "PartitioningPolicy", PV_JSON_OBJ, SC_TABLE | SC_MV, SC_TABLE | SC_MV,
     SC_TABLE | SC_MV, SC_TABLE | SC_MV, R_DB},
    {"ingestionbatching", "IngestionBatchingPolicy", PV_JSON_OBJ, ALL_CDT | SC_TABLES,
     ALL_CDT | SC_TABLES, ALL_DB_T, ALL_CDT, R_ENTITY},
    {"streamingingestion", "StreamingIngestionPolicy", PV_STREAMING, ALL_CDT, ALL_CDT, ALL_CDT,
     ALL_CDT, R_ENTITY},
    {"sharding", "ShardingPolicy", PV_JSON_OBJ, ALL_CDT, ALL_CDT, ALL_CDT, ALL_CDT, R_ENTITY},
    {"auto_delete", "AutoDeletePolicy", PV_JSON_OBJ, SC_TABLE, 0, SC_TABLE, SC_TABLE, R_ENTITY},
    {"extent_tags_retention", "ExtentTagsRetentionPolicy", PV_JSON_ARR, ALL_DB_T, 0, ALL_DB_T,
     ALL_DB_T, R_ENTITY},
    {"ingestiontime", "IngestionTimePolicy", PV_BOOL, SC_TABLE | SC_TABLES, 0, SC_TABLE, SC_TABLE,
     R_ENTITY},
    {"restricted_view_access", "RestrictedViewAccessPolicy", PV_BOOL, SC_TABLE | SC_TABLES, 0,
     SC_TABLE, SC_TABLE, R_DB},
    {"update", "UpdatePolicy", PV_JSON_ARR, SC_TABLE, SC_TABLE, SC_TABLE, SC_TABLE, R_ENTITY},
    {"row_level_security", "RowLevelSecurityPolicy", PV_RLS, SC_TABLE | SC_MV | SC_EXT, 0,
     SC_TABLE | SC_MV | SC_EXT, SC_TABLE | SC_MV | SC_EXT, R_DB},
    {"encoding", "EncodingPolicy", PV_ENCODING, ALL_DB_T | SC_COLUMN, ALL_DB_T | SC_COLUMN,
     ALL_DB_T | SC_COLUMN, ALL_DB_T | SC_COLUMN, R_ENTITY},
    {"roworder", "RowOrderPolicy", PV_ROWORDER, SC_TABLE | SC_TABLES, SC_TABLE | SC_TABLES,
     SC_TABLE, SC_TABLE, R_ENTITY},
    {"query_acceleration", "QueryAccelerationPolicy", PV_JSON_OBJ, SC_EXT, SC_EXT, SC_EXT, SC_EXT,
     R_DB},
    {"mirroring", "MirroringPolicy", PV_JSON_OBJ, SC_TABLE, SC_TABLE, SC_TABLE, SC_TABLE, R_DB},
    {"managed_identity", "ManagedIdentityPolicy", PV_JSON_ARR, SC_CLUSTER | SC_DB,
     SC_CLUSTER | SC_DB, SC_CLUSTER | SC_DB, SC_CLUSTER | SC_DB, R_CLUSTER},
    {"callout", "CalloutPolicy", PV_JSON_ARR, SC_CLUSTER, SC_CLUSTER, SC_CLUSTER, SC_CLUSTER,
     R_CLUSTER},
    {"capacity", "CapacityPolicy", PV_JSON_OBJ, SC_CLUSTER, SC_CLUSTER, 0, SC_CLUSTER, R_CLUSTER},
    {"sandbox", "SandboxPolicy", PV_JSON_ARR, SC_CLUSTER, 0, SC_CLUSTER, SC_CLUSTER, R_CLUSTER},
    {"request_classification", "ClusterRequestClassificationPolicy", PV_CLASSIFY, SC_CLUSTER,
     SC_CLUSTER, SC_CLUSTER, SC_CLUSTER, R_CLUSTER},
    {"query_weak_consistency", "QueryWeakConsistencyPolicy", PV_JSON_OBJ, SC_CLUSTER, SC_CLUSTER, 0,
     SC_CLUSTER, R_CLUSTER},
};
#define NPOLICIES (sizeof POLICIES / sizeof POLICIES[0])

/* Security roles and where each exists (databases, tables, materialized views). */
static const struct {
    const char *kw, *role;
    unsigned scopes;
} ROLES[] = {
    {"admins", "Admin", SC_DB | SC_TABLE | SC_MV},
    {"users", "User", SC_DB},
    {"viewers", "Viewer", SC_DB},
    {"unrestrictedviewers", "UnrestrictedViewer", SC_DB},
    {"ingestors", "Ingestor", SC_DB | SC_TABLE},
    {"monitors", "Monitor", SC_DB},
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
    const char *column; /* SC_COLUMN: the column of table names[0] */
    const policy_info *pol;
    const sim_kusto_token *json_tok; /* J value, validated at execution */
    const sim_kusto_token *body_tok; /* "<| body" of request_classification */
    json_t *special;                 /* value from special syntax (owned) */
    int principals;                  /* .show <securable> principals */
    int role;                        /* index in ROLES for .add/.drop/.set */
    const char *fqns[SIM_KUSTO_MAX_LIST];
    size_t nfqns;
    const char *notes;
    int skip_results;
    int wg;              /* 1: .show workload_groups; 2: a command on workload group wg_name */
    int show_tables;     /* .show tables (of the request's database) */
    const char *wg_name; /* borrowed from the tokens */
} cmd;

typedef struct ctx {
    json_t *cluster;
    json_t *ctx_db; /* the request's database, NULL when none */
    const sim_kusto_caller *caller;
    const char *crid, *aid, *csl;
    const char *activity_type;
    json_t *body;
    int status;
    const sim_kusto_hooks *hooks;
} ctx;

/* Forward declarations: the parser checks names against what it reads. */
static json_t *find_db(json_t *cluster, const char *name);
static json_t *find_named(json_t *db, const char *list, const char *name);
static const char *ename(json_t *e);
static json_t *frame_new(const char *const *cols, size_t n, json_t **rows);
static const char *const POLICY_COLS[];
static const char *const ROLE_COLS[];

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
        json_array_append_new(windows, json_pack("{s:s, s:s}", "MinValue", a, "MaxValue", b));
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

/* row_level_security: enable | disable [with (k = v, ...)] 'query' */
static int parse_rls(ctx *c, parser *p, cmd *k)
{
    int on;
    if (accept_kw(p, "enable"))
        on = 1;
    else if (accept_kw(p, "disable"))
        on = 0;
    else
        return syntax(c, p);
    if (parse_with(c, p)) return -1;
    const sim_kusto_token *t = peek(p);
    if (t->type != SK_TOK_STRING) return syntax(c, p);
    if (strlen(t->text) != t->len || !utf8_valid(t->text, t->len))
        return fail_bad(c, "the row level security query must be text without NUL characters");
    advance(p);
    k->special = json_pack("{s:b, s:s}", "IsEnabled", on, "Query", t->text);
    return 0;
}

/* roworder: ( col [asc|desc] [, col [asc|desc]]... ); a column without a direction is asc. */
static int parse_roworder(ctx *c, parser *p, cmd *k)
{
    if (!accept_punct(p, "(")) return syntax(c, p);
    json_t *list = json_array();
    k->special = json_pack("{s:o}", "OrderBy", list);
    for (;;) {
        const char *col, *order = "asc";
        if (parse_name(c, p, &col)) return -1;
        if (accept_kw(p, "desc"))
            order = "desc";
        else
            accept_kw(p, "asc");
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            if (!strcmp(json_string_value(json_object_get(e, "ColumnName")), col))
                return fail_bad(c, "roworder names column '%.1100s' twice", col);
        }
        if (json_array_size(list) >= SIM_KUSTO_MAX_LIST)
            return fail_bad(c, "too many roworder columns (limit %d)", SIM_KUSTO_MAX_LIST);
        json_array_append_new(list, json_pack("{s:s, s:s}", "ColumnName", col, "Order", order));
        if (accept_punct(p, ")")) return 0;
        if (!accept_punct(p, ",")) return syntax(c, p);
    }
}

/* After "policy <kw>": the value for .alter / .alter-merge. */
static int parse_policy_value(ctx *c, parser *p, cmd *k)
{
    const policy_info *pi = k->pol;
    if (k->verb == V_SHOW || k->verb == V_DELETE) return 0;
    switch (pi->kind) {
    case PV_CACHING:
        return parse_caching(c, p, k);
    case PV_BOOL: /* bare true / false, stored as {"IsEnabled": b} */
        if (accept_kw(p, "true"))
            k->special = json_pack("{s:b}", "IsEnabled", 1);
        else if (accept_kw(p, "false"))
            k->special = json_pack("{s:b}", "IsEnabled", 0);
        else
            return syntax(c, p);
        return 0;
    case PV_RLS:
        return parse_rls(c, p, k);
    case PV_ROWORDER:
        return parse_roworder(c, p, k);
    case PV_RETENTION:
        if (k->verb == V_MERGE && peek(p)->type == SK_TOK_IDENT)
            return parse_retention_special(c, p, k);
        break;
    case PV_STREAMING:
        if (k->verb == V_ALTER && (k->scope & (SC_DB | SC_TABLE))) {
            if (accept_kw(p, "enable")) {
                k->special = json_pack("{s:b, s:n}", "IsEnabled", 1, "HintAllocatedRate");
                return 0;
            }
            if (accept_kw(p, "disable")) {
                k->special = json_pack("{s:b, s:n}", "IsEnabled", 0, "HintAllocatedRate");
                return 0;
            }
        }
        break;
    case PV_ENCODING:
        /* a column: type = 'Identifier'; no type at all resets it to the default */
        if (k->scope == SC_COLUMN && k->verb == V_ALTER) {
            if (accept_kw(p, "type")) {
                if (!accept_punct(p, "=") || peek(p)->type != SK_TOK_STRING) return syntax(c, p);
                const sim_kusto_token *t = advance(p);
                if (strlen(t->text) != t->len || !utf8_valid(t->text, t->len))
                    return fail_bad(c, "invalid encoding policy type");
                k->special = json_pack("{s:s}", "EncodingType", t->text);
                return 0;
            }
            if (peek(p)->type == SK_TOK_EOF) {
                k->special = json_pack("{s:s}", "EncodingType", "Null");
                return 0;
            }
        }
        break;
    default:
        break;
    }
    if (peek(p)->type != SK_TOK_STRING) return syntax(c, p);
    k->json_tok = advance(p);
    if (!strcmp(pi->kw, "update")) return parse_with(c, p);
    if (pi->kind == PV_CLASSIFY && k->verb == V_ALTER) {
        if (peek(p)->type != SK_TOK_BODY) return syntax(c, p);
        k->body_tok = advance(p);
    }
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

/* A role keyword that exists at k->scope, then the principal list. */
static int parse_role(ctx *c, parser *p, cmd *k)
{
    for (size_t i = 0; i < NROLES; i++) {
        if ((ROLES[i].scopes & (unsigned)k->scope) && accept_kw(p, ROLES[i].kw)) {
            k->role = (int)i;
            c->activity_type = k->verb == V_DROP ? "DN.AdminCommand.DropPrincipalsCommand"
                                                 : "DN.AdminCommand.AddPrincipalsCommand";
            return parse_principal_list(c, p, k);
        }
    }
    return syntax(c, p);
}

/* column [Db.]T.C */
static int parse_column(ctx *c, parser *p, cmd *k)
{
    const char *a, *b, *d;
    if (parse_name(c, p, &a)) return -1;
    if (!accept_punct(p, ".")) return syntax(c, p);
    if (parse_name(c, p, &b)) return -1;
    if (accept_punct(p, ".")) {
        if (parse_name(c, p, &d)) return -1;
        k->names[0] = (qname){a, b};
        k->column = d;
    } else {
        k->names[0] = (qname){NULL, a};
        k->column = b;
    }
    k->nnames = 1;
    return 0;
}

/* .show workload_group G, .create-or-alter workload_group G J, .alter-merge workload_group
 * G J, .drop workload_group G; .show workload_groups. */
static int parse_workload_group(ctx *c, parser *p, cmd *k, int all)
{
    c->activity_type = k->verb == V_SHOW ? "DN.AdminCommand.WorkloadGroupShowCommand"
                                         : "DN.AdminCommand.WorkloadGroupAlterCommand";
    if (all) {
        if (k->verb != V_SHOW) return syntax(c, p);
        k->wg = 1;
        return 0;
    }
    if (k->verb != V_SHOW && k->verb != V_CREATE_OR_ALTER && k->verb != V_MERGE &&
        k->verb != V_DROP)
        return syntax(c, p);
    if (parse_name(c, p, &k->wg_name)) return -1;
    k->wg = 2;
    if (k->verb == V_CREATE_OR_ALTER || k->verb == V_MERGE) {
        if (peek(p)->type != SK_TOK_STRING) return syntax(c, p);
        k->json_tok = advance(p);
    }
    return 0;
}

static int parse_command(ctx *c, parser *p, cmd *k)
{
    static const struct {
        const char *kw;
        int verb;
    } VERBS[] = {{"show", V_SHOW},         {"alter", V_ALTER},
                 {"alter-merge", V_MERGE}, {"delete", V_DELETE},
                 {"add", V_ADD},           {"drop", V_DROP},
                 {"set", V_SET},           {"create-or-alter", V_CREATE_OR_ALTER}};
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

    if (k->verb == V_SHOW && accept_kw(p, "tables")) {
        /* .show tables: every table of the request's database */
        k->show_tables = 1;
        if (peek(p)->type != SK_TOK_EOF) return syntax(c, p);
        return 0;
    }
    if (accept_kw(p, "workload_group") || accept_kw(p, "workload_groups")) {
        if (parse_workload_group(c, p, k, is_kw(&p->t->v[p->i - 1], "workload_groups"))) return -1;
    } else if (k->verb == V_CREATE_OR_ALTER) {
        return syntax(c, p);
    } else if (accept_kw(p, "cluster")) {
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
            if (parse_role(c, p, k)) return -1;
        } else if (k->verb == V_SHOW && !k->wildcard && accept_kw(p, "principals")) {
            c->activity_type = "DN.AdminCommand.DatabasePrincipalsShowCommand";
            k->principals = 1;
        } else if (parse_policy(c, p, k)) {
            return -1;
        }
    } else if (accept_kw(p, "table") || accept_kw(p, "materialized-view")) {
        int mv = is_kw(&p->t->v[p->i - 1], "materialized-view");
        k->scope = mv ? SC_MV : SC_TABLE;
        if (!mv && k->verb == V_SHOW && accept_punct(p, "*")) {
            k->wildcard = 1;
        } else {
            if (parse_qualified(c, p, &k->names[0])) return -1;
            k->nnames = 1;
        }
        if (ROLE_VERB(k->verb)) {
            if (parse_role(c, p, k)) return -1;
        } else if (k->verb == V_SHOW && !k->wildcard && accept_kw(p, "principals")) {
            c->activity_type = "DN.AdminCommand.PrincipalsShowCommand";
            k->principals = 1;
        } else if (parse_policy(c, p, k)) {
            return -1;
        }
    } else if (accept_kw(p, "column")) {
        if (ROLE_VERB(k->verb)) return syntax(c, p);
        k->scope = SC_COLUMN;
        if (parse_column(c, p, k) || parse_policy(c, p, k)) return -1;
    } else if (accept_kw(p, "external")) {
        if (ROLE_VERB(k->verb) || !accept_kw(p, "table")) return syntax(c, p);
        k->scope = SC_EXT;
        if (parse_qualified(c, p, &k->names[0])) return -1;
        k->nnames = 1;
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

/* An entity's name; a column may be a bare string in the state. */
static const char *ename(json_t *e)
{
    const char *n =
        json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "name"));
    return n ? n : "";
}

/* A table's column (an object {"name", "type", "policies"} or a bare name), or NULL. */
static json_t *find_column(json_t *table, const char *name, size_t *idx)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(table, "columns"), i, e)
    {
        if (!strcmp(ename(e), name)) {
            if (idx) *idx = i;
            return e;
        }
    }
    return NULL;
}

static json_t *policies_of(json_t *entity, int create)
{
    json_t *p = json_object_get(entity, "policies");
    if (!json_is_object(p) && create && json_is_object(entity)) {
        p = json_object();
        json_object_set_new(entity, "policies", p);
    }
    return json_is_object(p) ? p : NULL;
}

/* One entity a policy command works on. */
typedef struct target {
    int level;     /* SC_* */
    json_t *db;    /* its database (NULL for the cluster) */
    json_t *table; /* SC_COLUMN: the column's table */
    json_t *e;     /* the entity; a column may be a bare string */
    size_t col;    /* SC_COLUMN: index in table.columns */
} target;

/* A column given as a bare name becomes an object, so that it can hold policies. */
static json_t *column_object(target *t)
{
    if (json_is_object(t->e)) return t->e;
    json_t *o = json_pack("{s:s}", "name", ename(t->e));
    json_array_set_new(json_object_get(t->table, "columns"), t->col, o);
    t->e = o;
    return o;
}

/* The policy as set at this entity's level (new reference), NULL when unset; policies that
 * always exist (capacity, query_weak_consistency) show their defaults until altered. */
static json_t *pol_get(const target *t, const policy_info *pi)
{
    json_t *e = t->e;
    if (t->level == SC_DB && pi->kind == PV_RETENTION) {
        int64_t ticks;
        const char *iso = json_string_value(json_object_get(e, "softDeletePeriod"));
        const char *rec = json_string_value(json_object_get(e, "recoverability"));
        if (!iso || sim_kusto_iso_parse(iso, &ticks)) return NULL;
        return json_pack("{s:o, s:s}", "SoftDeletePeriod", ts_json(ticks), "Recoverability",
                         rec && !strcasecmp(rec, "Disabled") ? "Disabled" : "Enabled");
    }
    if (t->level == SC_DB && pi->kind == PV_CACHING) {
        int64_t ticks;
        const char *iso = json_string_value(json_object_get(e, "hotCachePeriod"));
        if (!iso || sim_kusto_iso_parse(iso, &ticks)) return NULL;
        json_t *flat = json_pack("{s:o}", "DataHotSpan", ts_json(ticks));
        json_t *w = json_object_get(e, "hotWindows");
        if (json_is_array(w)) json_object_set(flat, "HotWindows", w);
        json_t *v = sim_kusto_caching_display(flat);
        json_decref(flat);
        return v;
    }
    json_t *v = json_object_get(policies_of(e, 0), pi->kw);
    if (!v || json_is_null(v)) return sim_kusto_policy_default(pi->kw);
    if (pi->kind == PV_CACHING) return sim_kusto_caching_display(v); /* older flat form too */
    return json_deep_copy(v);
}

static void pol_del(target *t, const policy_info *pi)
{
    json_t *e = t->e;
    if (t->level == SC_DB && pi->kind == PV_RETENTION) {
        json_object_del(e, "softDeletePeriod");
        json_object_del(e, "recoverability");
        return;
    }
    if (t->level == SC_DB && pi->kind == PV_CACHING) {
        json_object_del(e, "hotCachePeriod");
        json_object_del(e, "hotWindows");
        return;
    }
    json_t *pol = policies_of(e, 0);
    if (pol) json_object_del(pol, pi->kw);
}

/* Stores v (JSON null: deletes).  A database's retention and caching live in its fields
 * (softDeletePeriod, recoverability, hotCachePeriod ISO-8601, hotWindows) that ARM shares. */
static void pol_set(target *t, const policy_info *pi, json_t *v)
{
    char iso[64];
    int64_t ticks;
    if (json_is_null(v)) {
        pol_del(t, pi);
        return;
    }
    json_t *e = t->e;
    if (t->level == SC_DB && pi->kind == PV_RETENTION) {
        if (sim_kusto_timespan_parse_net(json_string_value(json_object_get(v, "SoftDeletePeriod")),
                                         &ticks))
            ticks = 365000LL * SIM_KUSTO_TICKS_PER_DAY;
        sim_kusto_iso_format(ticks, iso, sizeof iso);
        json_object_set_new(e, "softDeletePeriod", json_string(iso));
        json_object_set(e, "recoverability", json_object_get(v, "Recoverability"));
        return;
    }
    if (t->level == SC_DB && pi->kind == PV_CACHING) {
        json_t *d = json_object_get(json_object_get(v, "DataHotSpan"), "Value");
        if (sim_kusto_timespan_parse_net(json_string_value(d), &ticks)) ticks = 0;
        sim_kusto_iso_format(ticks, iso, sizeof iso);
        json_object_set_new(e, "hotCachePeriod", json_string(iso));
        json_t *w = json_object_get(v, "HotWindows");
        if (json_is_array(w))
            json_object_set_new(e, "hotWindows", json_deep_copy(w));
        else
            json_object_del(e, "hotWindows");
        json_t *pol = policies_of(e, 0); /* an older layout kept windows here */
        if (pol) json_object_del(pol, "caching");
        return;
    }
    if (t->level == SC_COLUMN) e = column_object(t);
    json_object_set_new(policies_of(e, 1), pi->kw, json_deep_copy(v));
}

/* ------------------------------------------------------------------ policy values */

static size_t trim_len(const char **s, size_t len)
{
    while (len && isspace((unsigned char)**s)) {
        (*s)++;
        len--;
    }
    while (len && isspace((unsigned char)(*s)[len - 1]))
        len--;
    return len;
}

/* The value a write stores: J or special syntax; .alter-merge overlays the current value
 * (kusto_policy.c's merge rules).  Returns a new reference (JSON null: clear the policy)
 * or NULL with c's error set. */
static json_t *new_value(ctx *c, const cmd *k, int level, json_t *current)
{
    char err[512] = "";
    const char *kw = k->pol->kw;
    json_t *in = k->special ? json_deep_copy(k->special)
                            : sim_kusto_policy_parse_json(kw, k->json_tok->text, k->json_tok->len,
                                                          err, sizeof err);
    if (!in) {
        fail_bad(c, "%s", err);
        return NULL;
    }
    if (k->body_tok) { /* request_classification: the function is the text after '<|' */
        const char *b = k->body_tok->text;
        size_t n = trim_len(&b, k->body_tok->len);
        if (!json_is_object(in) || !utf8_valid(b, n)) {
            json_decref(in);
            fail_bad(c, "request_classification policy: the policy must be a JSON object and "
                        "the function valid UTF-8");
            return NULL;
        }
        json_object_set_new(in, "ClassificationFunction", json_stringn(b, n));
    }
    if (k->verb == V_MERGE) {
        json_t *merged = sim_kusto_policy_merge(kw, current, in, c->cluster, err, sizeof err);
        json_decref(in);
        if (!merged) {
            fail_bad(c, "%s", err);
            return NULL;
        }
        in = merged;
    }
    json_t *out =
        sim_kusto_policy_finalize(kw, level == SC_COLUMN, in, c->cluster, err, sizeof err);
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
static const char *const WG_COLS[] = {"WorkloadGroupName", "WorkloadGroup"};
static const char *const TABLES_COLS[] = {"TableName", "DatabaseName", "Folder", "DocString"};

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

/* Compact JSON text with numbers as short as they can be and still read back the same
 * (Kusto prints 2.1, not jansson's default 2.1000000000000001).  malloc'd; NULL for NULL. */
static char *dump_json(json_t *v)
{
    if (!v) return NULL;
    for (int prec = 15; prec < 17; prec++) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(prec));
        json_t *back = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
        int same = back && json_equal(back, v);
        json_decref(back);
        if (same) return s;
        free(s);
    }
    return json_dumps(v, JSON_COMPACT);
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

static void policy_row(json_t *rows, const policy_info *pi, const target *t, json_t *cluster)
{
    json_t *entity = NULL;
    const char *type;
    char *children = NULL;
    json_t *v = pol_get(t, pi);
    switch (t->level) {
    case SC_CLUSTER:
        entity = json_string("");
        type = "Cluster";
        children = child_names(json_object_get(cluster, "databases"));
        break;
    case SC_DB:
        entity = json_sprintf("[%s]", ename(t->e));
        type = "Database";
        children = child_names(json_object_get(t->e, "tables"));
        break;
    case SC_MV:
        entity = json_sprintf("[%s].[%s]", ename(t->db), ename(t->e));
        type = "MaterializedView";
        break;
    case SC_COLUMN:
        entity = json_sprintf("[%s].[%s].[%s]", ename(t->db), ename(t->table), ename(t->e));
        type = "Column";
        break;
    case SC_EXT:
        entity = json_sprintf("[%s].[%s]", ename(t->db), ename(t->e));
        type = "ExternalTable";
        break;
    default:
        entity = json_sprintf("[%s].[%s]", ename(t->db), ename(t->e));
        type = "Table";
        break;
    }
    char *text = dump_json(v);
    json_decref(v);
    json_array_append_new(rows,
                          json_pack("[s, o, o, o, s]", pi->name, entity ? entity : json_null(),
                                    str_or_null(text), str_or_null(children), type));
    if (t->level == SC_CLUSTER && !strcmp(pi->kw, "callout")) {
        json_t *imm = sim_kusto_callout_immutable();
        char *itext = dump_json(imm);
        json_decref(imm);
        json_array_append_new(rows, json_pack("[s, s, o, n, s]", pi->name, "", str_or_null(itext),
                                              "Cluster immutable policy"));
    }
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

/* 1 when app holds a role in the entity's (database's, table's, view's) principals. */
static int principal_has(json_t *entity, const char *app, int admin_only)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(entity, "principals"), i, p)
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
    return principal_has(db, app, write);
}

/* A table's or materialized view's own roles: Admin may write, any role may read. */
static int may_entity(const ctx *c, json_t *entity, int write)
{
    if (!c->caller) return 1;
    const char *app = c->caller->app_id;
    return app && *app && entity && principal_has(entity, app, write);
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

/* Asks the hooks whether this write (which passed every check) is to be lost. */
static int write_ignored(const ctx *c)
{
    return c->hooks && c->hooks->ignore_write && c->hooks->ignore_write(c->hooks->arg);
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

/* The principals table of a securable; label: "Database Db", "Table Db.T",
 * "Materialized View Db.V" (the Role column is "<label> <role>"). */
static void principals_rows(json_t *rows, json_t *entity, const char *label)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(entity, "principals"), i, p)
    {
        const char *role = json_string_value(json_object_get(p, "role"));
        const char *type = json_string_value(json_object_get(p, "type"));
        const char *fqn = json_string_value(json_object_get(p, "fqn"));
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *appid = json_string_value(json_object_get(p, "appId"));
        const char *email = json_string_value(json_object_get(p, "email"));
        const char *notes = json_string_value(json_object_get(p, "notes"));
        char guid[37];
        if (!role) continue;
        const char *ptype = !type                       ? "AAD Application"
                            : !strcasecmp(type, "App")  ? "AAD Application"
                            : !strcasecmp(type, "User") ? "AAD User"
                                                        : "AAD Group";
        const char *oid = appid && *appid ? appid : email && *email ? email : name ? name : "";
        char seed[2200];
        snprintf(seed, sizeof seed, "%s|%s", label, role);
        stable_guid(seed, fqn ? fqn : oid, guid);
        json_array_append_new(
            rows, json_pack("[o, s, s, s, s, s, s]", json_sprintf("%s %s", label, role), ptype,
                            name ? name : oid, oid, fqn ? fqn : "", notes ? notes : "", guid));
    }
}

/* Resolves a database named in the command (case-insensitive). */
static json_t *db_named(ctx *c, const char *name)
{
    json_t *d = find_db(c->cluster, name);
    if (!d) fail_not_found(c, name, "Database");
    return d;
}

/* The database a table-like name lives in: the one it names, else the request's. */
static json_t *db_of(ctx *c, const qname *q)
{
    if (q->db) return db_named(c, q->db);
    if (!c->ctx_db) fail_bad(c, "the request names no database for '%.1100s'", q->name);
    return c->ctx_db;
}

static int run_roles(ctx *c, const cmd *k)
{
    json_t *rows, *db, *entity;
    const int write = k->verb != V_SHOW;
    const char *op = !write              ? "show principals"
                     : k->verb == V_ADD  ? "add principals"
                     : k->verb == V_DROP ? "drop principals"
                                         : "set principals";
    json_t *label = NULL;
    if (k->scope == SC_DB) {
        db = k->nnames ? db_named(c, k->names[0].name) : c->ctx_db;
        if (!db) return k->nnames ? -1 : fail_bad(c, "the request names no database");
        if (!may(c, db, write)) return fail_forbidden(c, db, op);
        entity = db;
        label = json_sprintf("Database %s", ename(db));
    } else {
        int mv = k->scope == SC_MV;
        db = db_of(c, &k->names[0]);
        if (!db) return -1;
        entity = find_named(db, mv ? "materializedViews" : "tables", k->names[0].name);
        /* no hint whether the entity exists to a caller without rights */
        if (!may(c, db, write) && !may_entity(c, entity, write)) return fail_forbidden(c, db, op);
        if (!entity) return fail_not_found(c, k->names[0].name, mv ? "MaterializedView" : "Table");
        label =
            json_sprintf("%s %s.%s", mv ? "Materialized View" : "Table", ename(db), ename(entity));
    }
    if (!label) return fail_bad(c, "out of memory");
    const char *lab = json_string_value(label);
    if (k->principals) {
        c->body = frame_new(ROLE_COLS, 7, &rows);
        principals_rows(rows, entity, lab);
        json_decref(label);
        return 0;
    }
    const char *role = ROLES[k->role].role;
    /* validate every FQN before changing anything */
    for (size_t i = 0; i < k->nfqns; i++) {
        char kind[16], id[MAX_FQN], tenant[MAX_FQN];
        if (!parse_fqn(k->fqns[i], kind, sizeof kind, id, sizeof id, tenant, sizeof tenant)) {
            json_decref(label);
            return fail_bad(c,
                            "principal '%.600s' is not a valid FQN (aadapp=<appId>;<tenant>, "
                            "aaduser=<upn>[;tenant], aadgroup=<name>[;tenant], msauser=<email>)",
                            k->fqns[i]);
        }
    }
    if (write_ignored(c)) goto answer;
    json_t *list = json_object_get(entity, "principals");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(entity, "principals", list);
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
answer:
    c->body = frame_new(ROLE_COLS, 7, &rows);
    if (!k->skip_results) principals_rows(rows, entity, lab);
    json_decref(label);
    return 0;
}

/* ------------------------------------------------------------------ workload groups */

/* The definition of workload group name, NULL when there is none; "default" always exists
 * (with its built-in definition until altered).  *idx: its index in the state, or -1. */
static json_t *wg_get(json_t *cluster, const char *name, long *idx)
{
    size_t i;
    json_t *g;
    *idx = -1;
    json_array_foreach(json_object_get(cluster, "workloadGroups"), i, g)
    {
        if (!strcmp(ename(g), name)) {
            *idx = (long)i;
            return json_incref(json_object_get(g, "definition"));
        }
    }
    return strcmp(name, "default") ? NULL : sim_kusto_default_workload_group();
}

static void wg_row(json_t *rows, const char *name, json_t *def)
{
    char *text = dump_json(def);
    json_array_append_new(rows, json_pack("[s, o]", name, str_or_null(text)));
}

static void wg_all_rows(json_t *cluster, json_t *rows)
{
    long idx;
    json_t *d = wg_get(cluster, "default", &idx);
    if (idx < 0) wg_row(rows, "default", d); /* not in the state: built in */
    json_decref(d);
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(cluster, "workloadGroups"), i, g)
        wg_row(rows, ename(g), json_object_get(g, "definition"));
}

/* Workload group names follow the entity rule; '$' is for system groups only. */
static int wg_name_ok(const char *n)
{
    for (const char *s = n; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x80 && !isalnum(ch) && ch != '_' && ch != ' ' && ch != '.' && ch != '-') return 0;
    }
    return 1;
}

static int run_wg(ctx *c, const cmd *k)
{
    json_t *rows;
    const char *name = k->wg_name;
    if (!may(c, NULL, 1))
        return fail_forbidden(c, NULL,
                              k->verb == V_SHOW ? "show workload groups" : "alter workload group");
    if (k->wg == 1) {
        c->body = frame_new(WG_COLS, 2, &rows);
        wg_all_rows(c->cluster, rows);
        return 0;
    }
    long idx;
    json_t *cur = wg_get(c->cluster, name, &idx);
    if (k->verb == V_SHOW) {
        c->body = frame_new(WG_COLS, 2, &rows);
        if (cur) wg_row(rows, name, cur);
        json_decref(cur);
        return 0;
    }
    if (!strcmp(name, "internal") || name[0] == '$') {
        json_decref(cur);
        return fail_bad(c, "the built-in workload group '%.100s' cannot be changed", name);
    }
    if (k->verb == V_DROP) {
        if (!strcmp(name, "default")) {
            json_decref(cur);
            return fail_bad(c, "the workload group 'default' cannot be dropped");
        }
        json_decref(cur);
        if (idx < 0) return fail_not_found(c, name, "WorkloadGroup");
        if (!write_ignored(c))
            json_array_remove(json_object_get(c->cluster, "workloadGroups"), (size_t)idx);
        c->body = frame_new(WG_COLS, 2, &rows);
        wg_all_rows(c->cluster, rows);
        return 0;
    }
    char err[512] = "";
    if (!wg_name_ok(name) || !*name) {
        json_decref(cur);
        return fail_bad(c, "'%.1100s' is not a valid workload group name", name);
    }
    json_t *in = sim_kusto_policy_parse_json("workload_group", k->json_tok->text, k->json_tok->len,
                                             err, sizeof err);
    json_t *def = in ? sim_kusto_workload_group_check(in, err, sizeof err) : NULL;
    json_decref(in);
    if (def && k->verb == V_MERGE) {
        if (!cur) {
            json_decref(def);
            return fail_not_found(c, name, "WorkloadGroup");
        }
        json_t *merged = sim_kusto_deep_merge(cur, def);
        json_decref(def);
        def = sim_kusto_workload_group_check(merged, err, sizeof err);
        json_decref(merged);
    }
    json_decref(cur);
    if (!def) return fail_bad(c, "%s", err);
    json_t *list = json_object_get(c->cluster, "workloadGroups");
    if (idx < 0 && strcmp(name, "default")) {
        size_t custom = 0, i;
        json_t *g;
        json_array_foreach(list, i, g) custom += strcmp(ename(g), "default") != 0;
        if (custom >= MAX_CUSTOM_WORKLOAD_GROUPS) {
            json_decref(def);
            return fail_bad(c,
                            "a cluster may have at most %d workload groups besides the "
                            "built-in ones",
                            MAX_CUSTOM_WORKLOAD_GROUPS);
        }
    }
    if (!write_ignored(c)) {
        if (!json_is_array(list)) {
            list = json_array();
            json_object_set_new(c->cluster, "workloadGroups", list);
        }
        long didx;
        json_t *d = wg_get(c->cluster, "default", &didx);
        if (didx < 0) { /* the built-in default becomes explicit, first, as .show lists it */
            json_array_insert_new(list, 0,
                                  json_pack("{s:s, s:o}", "name", "default", "definition", d));
            if (idx >= 0) idx++;
            if (!strcmp(name, "default")) idx = 0;
        } else {
            json_decref(d);
        }
        if (idx >= 0)
            json_object_set(json_array_get(list, (size_t)idx), "definition", def);
        else
            json_array_append_new(list, json_pack("{s:s, s:O}", "name", name, "definition", def));
        c->body = frame_new(WG_COLS, 2, &rows);
        wg_row(rows, name, def);
    } else { /* answered from the unchanged state */
        long unused;
        json_t *now = wg_get(c->cluster, name, &unused);
        c->body = frame_new(WG_COLS, 2, &rows);
        if (now) wg_row(rows, name, now);
        json_decref(now);
    }
    json_decref(def);
    return 0;
}

/* ------------------------------------------------------------------ execution */

/* The rights check of a policy command on one entity of database d (NULL: the cluster).
 * entity: the table or view whose own Admin role may also do (NULL when none applies). */
static int policy_allowed(const ctx *c, const cmd *k, json_t *d, json_t *entity, int write)
{
    if (write && k->pol->rights == R_CLUSTER) return may(c, NULL, 1);
    if (!d) return may(c, NULL, write);
    if (may(c, d, write)) return 1;
    return (!write || k->pol->rights == R_ENTITY) && may_entity(c, entity, write);
}

/* Fills t for name i of k (a table, view, column or external table in some database). */
static int resolve_entity(ctx *c, const cmd *k, size_t i, int write, const char *op, target *t)
{
    static const struct {
        int scope;
        const char *list, *kind;
    } KINDS[] = {{SC_TABLE, "tables", "Table"},
                 {SC_TABLES, "tables", "Table"},
                 {SC_MV, "materializedViews", "MaterializedView"},
                 {SC_COLUMN, "tables", "Table"},
                 {SC_EXT, "externalTables", "ExternalTable"}};
    size_t kk = 0;
    while (KINDS[kk].scope != k->scope)
        kk++;
    json_t *d = db_of(c, &k->names[i]);
    if (!d) return -1;
    json_t *e = find_named(d, KINDS[kk].list, k->names[i].name);
    json_t *owner = k->scope == SC_EXT ? NULL : e; /* who has roles of its own */
    if (!policy_allowed(c, k, d, owner, write)) return fail_forbidden(c, d, op);
    if (!e) return fail_not_found(c, k->names[i].name, KINDS[kk].kind);
    *t = (target){k->scope == SC_TABLES ? SC_TABLE : k->scope, d, NULL, e, 0};
    if (k->scope == SC_COLUMN) {
        size_t ci;
        json_t *col = find_column(e, k->column, &ci);
        if (!col) return fail_not_found(c, k->column, "Column");
        *t = (target){SC_COLUMN, d, e, col, ci};
    }
    return 0;
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
        if (!policy_allowed(c, k, NULL, NULL, write)) return fail_forbidden(c, NULL, op);
        tg = calloc(1, sizeof *tg);
        if (!tg) return fail_bad(c, "out of memory");
        tg[n++] = (target){SC_CLUSTER, NULL, NULL, c->cluster, 0};
    } else if (k->scope == SC_DB && k->wildcard) {
        json_t *dbs = json_object_get(c->cluster, "databases"), *d;
        size_t i;
        tg = calloc(json_array_size(dbs) + 1, sizeof *tg);
        if (!tg) return fail_bad(c, "out of memory");
        json_array_foreach(dbs, i, d) if (may(c, d, 0)) tg[n++] = (target){SC_DB, d, NULL, d, 0};
    } else if (k->scope == SC_DB) {
        json_t *d = db_named(c, k->names[0].name);
        if (!d) return -1;
        if (!policy_allowed(c, k, d, NULL, write)) return fail_forbidden(c, d, op);
        tg = calloc(1, sizeof *tg);
        if (!tg) return fail_bad(c, "out of memory");
        tg[n++] = (target){SC_DB, d, NULL, d, 0};
    } else if (k->wildcard) { /* .show table * */
        if (!c->ctx_db) return fail_bad(c, "the request names no database for 'table *'");
        if (!may(c, c->ctx_db, 0)) return fail_forbidden(c, c->ctx_db, op);
        json_t *tables = json_object_get(c->ctx_db, "tables"), *t;
        size_t i;
        tg = calloc(json_array_size(tables) + 1, sizeof *tg);
        if (!tg) return fail_bad(c, "out of memory");
        json_array_foreach(tables, i, t) tg[n++] = (target){SC_TABLE, c->ctx_db, NULL, t, 0};
    } else {
        tg = calloc(k->nnames, sizeof *tg);
        if (!tg) return fail_bad(c, "out of memory");
        for (size_t i = 0; i < k->nnames; i++) {
            if (resolve_entity(c, k, i, write, op, &tg[n])) goto out;
            n++;
        }
    }
    /* roworder names columns: each must exist in every table it is set on */
    if (k->pol->kind == PV_ROWORDER && k->special) {
        size_t i, j;
        json_t *e;
        for (i = 0; i < n; i++) {
            json_array_foreach(json_object_get(k->special, "OrderBy"), j, e)
            {
                const char *col = json_string_value(json_object_get(e, "ColumnName"));
                if (!find_column(tg[i].e, col, NULL)) {
                    fail_not_found(c, col, "Column");
                    goto out;
                }
            }
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
            json_t *cur = k->verb == V_MERGE ? pol_get(&tg[i], k->pol) : NULL;
            vals[i] = new_value(c, k, tg[i].level, cur);
            json_decref(cur);
            if (!vals[i]) break;
        }
        int ok = i == n;
        if (ok && !write_ignored(c))
            for (i = 0; i < n; i++)
                pol_set(&tg[i], k->pol, vals[i]);
        for (i = 0; i < n; i++)
            json_decref(vals[i]);
        free(vals);
        if (!ok) goto out;
    } else if (k->verb == V_DELETE) {
        if (!write_ignored(c))
            for (size_t i = 0; i < n; i++)
                pol_del(&tg[i], k->pol);
    }

    /* 3. the answer: the entities' policies as they now are */
    c->body = frame_new(POLICY_COLS, 5, &rows);
    for (size_t i = 0; i < n; i++)
        policy_row(rows, k->pol, &tg[i], c->cluster);
    rc = 0;
out:
    free(tg);
    return rc;
}

/* .show tables: TableName, DatabaseName, Folder, DocString (the documentation's columns),
 * one row per table of the request's database, in state order; any database role may. */
static int run_show_tables(ctx *c)
{
    if (!c->ctx_db) return fail_bad(c, "the request names no database for '.show tables'");
    if (!may(c, c->ctx_db, 0)) return fail_forbidden(c, c->ctx_db, "show tables");
    c->activity_type = "DN.AdminCommand.TablesShowCommand";
    json_t *rows, *t;
    size_t i;
    c->body = frame_new(TABLES_COLS, 4, &rows);
    const char *db = json_string_value(json_object_get(c->ctx_db, "name"));
    json_array_foreach(json_object_get(c->ctx_db, "tables"), i, t)
    {
        const char *folder = json_string_value(json_object_get(t, "folder"));
        const char *doc = json_string_value(json_object_get(t, "docString"));
        json_array_append_new(rows, json_pack("[s, s, s, s]",
                                              json_string_value(json_object_get(t, "name")), db,
                                              folder ? folder : "", doc ? doc : ""));
    }
    return 0;
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
        if (k->show_tables)
            rc = run_show_tables(c);
        else if (k->wg)
            rc = run_wg(c, k);
        else if (k->principals || ROLE_VERB(k->verb))
            rc = run_roles(c, k);
        else
            rc = run_policy(c, k);
    }
    json_decref(k->special);
    free(k);
    sim_kusto_tokens_free(&toks);
    return rc;
}

int sim_kusto_execute_hooked(json_t *cluster, const char *db, const char *csl,
                             const sim_kusto_caller *caller, const char *client_request_id,
                             const char *activity_id, const sim_kusto_hooks *hooks, json_t **body)
{
    ctx c = {cluster,
             NULL,
             caller,
             client_request_id,
             activity_id,
             csl ? csl : "",
             "DN.AdminCommand.ControlCommand",
             NULL,
             200,
             hooks};
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

int sim_kusto_execute(json_t *cluster, const char *db, const char *csl,
                      const sim_kusto_caller *caller, const char *client_request_id,
                      const char *activity_id, json_t **body)
{
    return sim_kusto_execute_hooked(cluster, db, csl, caller, client_request_id, activity_id, NULL,
                                    body);
}
