/* request_fuzz: libFuzzer target for pw_request_decode and what is built from its output.
 *
 * Input: a Kafka message payload (any bytes).  Every input is decoded by the worker's own
 * checker (schemas/ from the source tree, the built-in Kusto host suffixes, replyTo
 * "team.replies" allowed, every privileged kind of the catalogue allowed so that their
 * commands are fuzzed as well).  The oracle, beyond the sanitizers:
 *   - a rejection has a code from the documented list, a non-empty message, and its
 *     `rejected` event can be built and serialized (valid UTF-8 all the way);
 *   - an accepted request: every operation's kind is one pw_ops_lookup finds, with the
 *     action and route the catalogue gives it; a second checker that allows no privileged
 *     kind rejects the same input with OperationNotAllowed exactly when one of its kinds is
 *     privileged, and accepts it otherwise; desired values serialize;
 *   - every Kusto command follows the command grammar (command_why below), which is derived
 *     from the catalogue row and the value type, never from a list of kinds: a verb, the
 *     entity of the operation's scope with the request's names bracket-quoted, `policy
 *     <keyword of the row>` (or principals / a role and an FQN), then a value made only of
 *     string literals, bracket-quoted names, timespans, a few grammar words and
 *     punctuation.  So request text appears only inside literals or quoted names: nothing
 *     from a request changes a command's shape.  A JSON policy inside @'...' parses back to
 *     the request's "policy", a string literal back to one of the request's strings;
 *   - every ARM path is the request's cluster or database resource with the suffix of the
 *     value type (/listPrincipals, /addPrincipals, /removePrincipals,
 *     /principalAssignments/<name>) and path-safe characters only; every cluster URI is
 *     "https://" + a lower-case host under a default Kusto suffix;
 *   - the plan and the `accepted`-style plan JSON can be serialized.
 * Inputs starting with byte 0x01 are an Azure answer instead (the rest, as JSON): it is read
 * by pw_plan_value for a fixed set of operations, one per value type, route and value form,
 * taken from tests/data/ops/ (ARM database resources, principal lists and assignments,
 * Kusto policy, workload group and principal tables, .NET TimeSpans), which must return a
 * serializable value or an error text; a value read is compared with the desired one
 * (unchanged must imply verified). */
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pw/config.h"
#include "pw/names.h"
#include "pw/ops.h"
#include "pw/plan.h"
#include "pw/reply.h"
#include "pw/request.h"
#include "pw/value.h"

#ifndef FUZZ_SCHEMAS_DIR
#define FUZZ_SCHEMAS_DIR "schemas"
#endif
#ifndef FUZZ_OPS_DIR
#define FUZZ_OPS_DIR "tests/data/ops"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* cfg allows every privileged kind; strict_cfg is the same with none allowed. */
static pw_config cfg, strict_cfg;
static pw_request_checker *chk, *strict_chk;
static char *privileged[128];
static char *allowed[] = {"team.replies"};

/* The operations every Azure answer is read by: one request (and plan) each. */
#define FIXED_MAX 64
static pw_request *fixed_req[FIXED_MAX];
static pw_plan *fixed_plan[FIXED_MAX];
static size_t fixed_count;

/* A Kusto name as the worker may write it (the entity rule's 1024 and the quotes). */
#define NAME_BUF 1100

static const char *const codes[] = {
    PW_REJECT_MESSAGE_TOO_LARGE,
    PW_REJECT_INVALID_UTF8,
    PW_REJECT_NESTING_TOO_DEEP,
    PW_REJECT_INVALID_JSON,
    PW_REJECT_NOT_AN_OBJECT,
    PW_REJECT_MISSING_ID,
    PW_REJECT_INVALID_ID,
    PW_REJECT_TOO_MANY_OPERATIONS,
    PW_REJECT_UNKNOWN_KIND,
    PW_REJECT_SCHEMA,
    PW_REJECT_REPLY_TO,
    PW_REJECT_INVALID_DURATION,
    PW_REJECT_DURATION_RANGE,
    PW_REJECT_INVALID_NAME,
    PW_REJECT_INVALID_CLUSTER_URI,
    PW_REJECT_HOST_NOT_ALLOWED,
    PW_REJECT_NOT_ALLOWED,
};

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "request_fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Start-up failure: the fuzzer cannot run (a data file or schema the target needs). */
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "request_fuzz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

static pw_value_type vtype(const pw_request_op *op)
{
    return pw_ops_at(op->kind)->value;
}

static int is_principal(pw_value_type vt)
{
    return vt == PW_VT_PRINCIPAL_ADD || vt == PW_VT_PRINCIPAL_REMOVE;
}

/* ------------------------------------------------------------ set-up: fixed plan */

static int json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

/* Decodes the data file's operation as a one-operation request and plans it. */
static void add_fixed(json_t *jop, const char *path)
{
    char id[32], err[256];
    if (fixed_count >= FIXED_MAX) die("more than %d fixed operations", FIXED_MAX);
    snprintf(id, sizeof id, "fixed-%zu", fixed_count);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:[O]}", "schema", "adx-policy-request/v1", "id", id,
                            "requestedBy", "fuzz@contoso.com", "operations", jop);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (!text) die("out of memory");
    pw_rejection rej;
    pw_request *req = pw_request_decode(chk, text, strlen(text), &rej);
    if (!req) die("%s: an operation of the data file is rejected: %s %s", path, rej.code, rej.message);
    pw_plan *plan = pw_plan_new(req, NULL, err, sizeof err);
    if (!plan) die("%s: plan: %s", path, err);
    fixed_req[fixed_count] = req;
    fixed_plan[fixed_count] = plan;
    fixed_count++;
    free(text);
    json_decref(doc);
}

/* One accepted operation of the data files per value type, route and form ("enabled" given
 * or not); then every value type the catalogue has must be covered on each of its routes,
 * so a new value type without a data file stops the fuzzer rather than go unfuzzed. */
static void load_fixed(void)
{
    static unsigned char seen[PW_VT_COUNT][2][2];
    struct dirent **names;
    int n = scandir(FUZZ_OPS_DIR, &names, json_file, alphasort);
    if (n <= 0) die("no data files under %s", FUZZ_OPS_DIR);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", FUZZ_OPS_DIR, names[i]->d_name);
        free(names[i]);
        json_error_t jerr;
        json_t *file = json_load_file(path, 0, &jerr);
        if (!file) die("%s: %s", path, jerr.text);
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(file, "cases"), k, c)
        {
            json_t *jop = json_object_get(c, "operation");
            if (json_object_get(c, "reject") || !json_is_object(jop)) continue;
            pw_kind kind;
            if (pw_ops_lookup(json_string_value(json_object_get(jop, "kind")), &kind) != 0)
                die("%s: a case of unknown kind", path);
            const pw_ops_scope *at = pw_ops_at(kind);
            const char *via = json_string_value(json_object_get(jop, "via"));
            pw_route r = via ? (strcmp(via, "kusto") == 0 ? PW_ROUTE_KUSTO : PW_ROUTE_ARM)
                             : at->routes ? at->default_route
                                          : PW_ROUTE_KUSTO;
            int form = json_object_get(jop, "enabled") != NULL;
            if (seen[at->value][r][form]) continue;
            add_fixed(jop, path);
            seen[at->value][r][form] = 1;
        }
        json_decref(file);
    }
    free(names);
    for (size_t i = 0; i < pw_ops_count(); i++) {
        for (int s = 0; s < PW_SCOPE_COUNT; s++) {
            pw_kind k = {pw_ops_row_at(i), (pw_scope)s};
            char name[PW_OPS_KIND_NAME_MAX];
            if (!pw_ops_at(k)->actions) continue;
            for (int r = 0; r < 2; r++) {
                pw_value_type vt = pw_ops_at(k)->value;
                if ((pw_ops_routes(k) & PW_ROUTE_BIT(r)) && !seen[vt][r][0] && !seen[vt][r][1])
                    die("no data file operation of value type %s on the %s route (%s)",
                        pw_ops_value_name(vt), pw_ops_route_name((pw_route)r),
                        pw_ops_kind_name(k, name, sizeof name));
            }
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    size_t n = 0;
    for (size_t i = 0; i < pw_ops_count(); i++) {
        for (int s = 0; s < PW_SCOPE_COUNT; s++) {
            pw_kind k = {pw_ops_row_at(i), (pw_scope)s};
            char name[PW_OPS_KIND_NAME_MAX];
            if (!pw_ops_at(k)->actions || !pw_ops_privileged(k)) continue;
            if (n >= sizeof privileged / sizeof *privileged) die("too many privileged kinds");
            privileged[n++] = strdup(pw_ops_kind_name(k, name, sizeof name));
        }
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.reply_topic = "adx.policy.replies";
    cfg.allowed_reply_topics = allowed;
    cfg.allowed_reply_topic_count = 1;
    cfg.schemas_dir = FUZZ_SCHEMAS_DIR;
    cfg.max_message_bytes = 65536;
    cfg.max_json_depth = 16;
    cfg.max_operations = 8;
    strict_cfg = cfg;
    cfg.kinds_privileged_allowed = privileged;
    cfg.kinds_privileged_allowed_count = n;
    if (!(chk = pw_request_checker_new(&cfg, err, sizeof err))) die("checker: %s", err);
    if (!(strict_chk = pw_request_checker_new(&strict_cfg, err, sizeof err)))
        die("checker: %s", err);
    load_fixed();
    return 0;
}

/* ------------------------------------------------------------------ Azure answers */

static void read_value(const pw_plan_op *pop, const json_t *answer)
{
    json_t *value = NULL;
    char err[256] = "";
    if (pw_plan_value(pop, answer, &value, err, sizeof err) != 0) {
        CHECK(value == NULL && err[0] != '\0');
        return;
    }
    CHECK(value != NULL);
    char *text = json_dumps(value, JSON_COMPACT);
    CHECK(text != NULL);
    free(text);
    int unchanged = pw_value_unchanged(pop->op, pop->desired, value);
    int verified = pw_value_verified(pop->op, pop->desired, value);
    CHECK(unchanged == 0 || unchanged == 1);
    CHECK(verified == 0 || verified == 1);
    /* skipping the write must never leave a value that would fail its verification */
    CHECK(!unchanged || verified);
    json_decref(value);
}

/* Every fixed operation reads answer; a value must serialize, an error say why. */
static void check_answer(const uint8_t *data, size_t size)
{
    json_t *answer = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!answer) return;
    for (size_t i = 0; i < fixed_count; i++) {
        const pw_plan_op *pop = pw_plan_op_at(fixed_plan[i], 0);
        read_value(pop, answer);
        if (pop->read_absent_ok) read_value(pop, NULL);
    }
    json_decref(answer);
}

/* ------------------------------------------------------------ the command grammar */

static int lit(const char **p, const char *s)
{
    size_t n = strlen(s);
    if (strncmp(*p, s, n) != 0) return 0;
    *p += n;
    return 1;
}

/* ['name'] with a name of the Kusto entity alphabet; the name into out. */
static int quoted_name(const char **p, char *out, size_t len)
{
    const char *s = *p;
    if (!lit(&s, "['")) return 0;
    const char *end = strstr(s, "']");
    if (!end || (size_t)(end - s) >= len) return 0;
    memcpy(out, s, (size_t)(end - s));
    out[end - s] = '\0';
    if (pw_names_kusto_entity(out, NULL, 0) != PW_OK) return 0;
    *p = end + 2;
    return 1;
}

/* Does some top-level string of the operation equal text (a query, an encoding type)? */
static int request_string(const pw_request_op *op, const char *text)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)op->json, key, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), text) == 0) return 1;
    }
    return 0;
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* '...' with the escapes pw_value_kql_string writes (\\ \' \r \n \t \u00XX), no raw control
 * character; its text must be one of the request's strings. */
static const char *string_literal(const pw_request_op *op, const char **pp)
{
    const char *p = *pp + 1, *why = NULL;
    char *out = malloc(strlen(p) + 1), *o = out;
    CHECK(out != NULL);
    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == '\0') {
            why = "an unterminated string literal";
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            why = "a raw control character in a string literal";
            break;
        }
        p++;
        if (c == '\'') break;
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        c = (unsigned char)*p++;
        if (c == '\\' || c == '\'')
            *o++ = (char)c;
        else if (c == 'r')
            *o++ = '\r';
        else if (c == 'n')
            *o++ = '\n';
        else if (c == 't')
            *o++ = '\t';
        else if (c == 'u' && p[0] == '0' && p[1] == '0' && hexval(p[2]) >= 0 && hexval(p[3]) >= 0 &&
                 hexval(p[2]) * 16 + hexval(p[3]) > 0) {
            *o++ = (char)(hexval(p[2]) * 16 + hexval(p[3]));
            p += 4;
        } else {
            why = "an unknown escape in a string literal";
            break;
        }
    }
    *o = '\0';
    if (!why && !request_string(op, out)) why = "a string literal that is none of the request's strings";
    free(out);
    *pp = p;
    return why;
}

/* @'...' with '' for a quote and no raw C0 character: compact JSON that must parse back to
 * the request's policy. */
static const char *verbatim_literal(const pw_request_op *op, const char **pp)
{
    const char *p = *pp + 2, *why = NULL;
    char *out = malloc(strlen(p) + 1), *o = out;
    CHECK(out != NULL);
    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == '\0') {
            why = "an unterminated verbatim literal";
            break;
        }
        /* compact JSON escapes every C0 character (a line break would end the command);
         * DEL is valid raw JSON and harmless here */
        if (c < 0x20) {
            why = "a raw control character in a verbatim literal";
            break;
        }
        p++;
        if (c == '\'' && *p == '\'') {
            *o++ = '\'';
            p++;
        } else if (c == '\'') {
            break;
        } else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    if (!why) {
        json_t *back = json_loads(out, JSON_DECODE_ANY, NULL);
        const json_t *policy = json_object_get(op->json, "policy");
        if (!back)
            why = "a verbatim literal that is not JSON";
        else if (!policy || !json_equal(back, (json_t *)policy))
            why = "a verbatim literal that is not the request's policy";
        json_decref(back);
    }
    free(out);
    *pp = p;
    return why;
}

/* A number with a KQL timespan unit (pw_duration_format_kql). */
static int timespan(const char **pp)
{
    static const char *const units[] = {"d", "h", "m", "s", "ms", "microsecond", "tick"};
    const char *p = *pp, *u;
    while (isdigit((unsigned char)*p))
        p++;
    u = p;
    while (islower((unsigned char)*p))
        p++;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (strlen(units[i]) == (size_t)(p - u) && strncmp(u, units[i], (size_t)(p - u)) == 0) {
            *pp = p;
            return 1;
        }
    }
    return 0;
}

/* A grammar word; datetime(...) and time(...) with their contents. */
static const char *word(const char **pp)
{
    static const char *const words[] = {"hot",     "hot_window", "datetime", "softdelete",
                                        "recoverability", "enabled", "disabled", "enable",
                                        "disable", "true",       "false",    "asc",
                                        "desc",    "type",       "time"};
    const char *p = *pp, *w = p;
    while (islower((unsigned char)*p) || *p == '_')
        p++;
    size_t n = (size_t)(p - w);
    int known = 0;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        known |= strlen(words[i]) == n && strncmp(w, words[i], n) == 0;
    if (!known) return "a word outside the command grammar";
    int is_datetime = n == 8 && strncmp(w, "datetime", 8) == 0;
    if ((is_datetime || (n == 4 && strncmp(w, "time", 4) == 0)) && *p == '(') {
        char inner[64], canon[64];
        size_t k = strspn(p + 1, is_datetime ? "0123456789-:.TZ" : "0123456789:.");
        if (p[1 + k] != ')' || k == 0 || k >= sizeof inner) return "bad datetime(...) contents";
        memcpy(inner, p + 1, k);
        inner[k] = '\0';
        if (is_datetime && pw_value_datetime(inner, canon, sizeof canon) != 0)
            return "datetime(...) holds no datetime";
        p += k + 2;
    }
    *pp = p;
    return NULL;
}

/* The value text after `policy <keyword> ` (or a workload group's name): only literals,
 * quoted names, timespans, grammar words, punctuation; for a classification, " <|\n" and
 * the request's function body to the end.  *verbatims counts the @'...' literals. */
static const char *value_why(const pw_request_op *op, const char *v, int *verbatims)
{
    const char *p = v, *why;
    char name[NAME_BUF];
    *verbatims = 0;
    while (*p) {
        unsigned char c = (unsigned char)*p;
        if (c == ' ') {
            p++;
        } else if (vtype(op) == PW_VT_CLASSIFICATION && p > v && p[-1] == ' ' && lit(&p, "<|\n")) {
            const char *fn = json_string_value(json_object_get(op->json, "classificationFunction"));
            return fn && strcmp(p, fn) == 0 ? NULL
                                            : "the text after <| is not the classificationFunction";
        } else if (c == '@' && p[1] == '\'') {
            if ((why = verbatim_literal(op, &p))) return why;
            (*verbatims)++;
        } else if (c == '\'') {
            if ((why = string_literal(op, &p))) return why;
        } else if (c == '[') {
            if (!quoted_name(&p, name, sizeof name)) return "a bracket that is no quoted name";
        } else if (isdigit(c)) {
            if (!timespan(&p)) return "a number that is no timespan";
        } else if (islower(c)) {
            if ((why = word(&p))) return why;
        } else if (lit(&p, "..")) {
        } else if (strchr("=,()", c)) {
            p++;
        } else {
            return "a character outside the command grammar";
        }
    }
    return NULL;
}

static const char *const verbs[] = {".show", ".alter",   ".alter-merge",    ".delete",
                                    ".add",  ".drop",    ".create-or-alter"};

/* Is verb what the operation's read or apply may use?  By action and value type only. */
static int verb_fits(const pw_request_op *op, int is_read, const char *verb)
{
    if (is_read) return strcmp(verb, ".show") == 0;
    if (vtype(op) == PW_VT_PRINCIPAL_ADD) return strcmp(verb, ".add") == 0;
    if (vtype(op) == PW_VT_PRINCIPAL_REMOVE) return strcmp(verb, ".drop") == 0;
    switch (op->action) {
    case PW_ACTION_DELETE:
        return strcmp(verb, ".delete") == 0 || strcmp(verb, ".drop") == 0;
    case PW_ACTION_MERGE:
        return strcmp(verb, ".alter-merge") == 0;
    default:
        return strcmp(verb, ".alter") == 0 || strcmp(verb, ".alter-merge") == 0 ||
               strcmp(verb, ".create-or-alter") == 0;
    }
}

/* The entity text, which must be the operation's scope with the request's names. */
static const char *entity_why(const pw_request_op *op, const char **p)
{
    static const struct {
        const char *head;
        pw_scope scope;
        int names; /* quoted names after the head */
    } forms[] = {{"database ", PW_SCOPE_DATABASE, 1},
                 {"table ", PW_SCOPE_TABLE, 1},
                 {"materialized-view ", PW_SCOPE_MATERIALIZED_VIEW, 1},
                 {"column ", PW_SCOPE_COLUMN, 2},
                 {"external table ", PW_SCOPE_EXTERNAL_TABLE, 1},
                 {"workload_group ", PW_SCOPE_CLUSTER, 1}};
    char first[NAME_BUF], second[NAME_BUF];
    if (lit(p, "cluster"))
        return op->kind.scope == PW_SCOPE_CLUSTER && vtype(op) != PW_VT_WORKLOAD_GROUP
                   ? NULL
                   : "the cluster is not the operation's entity";
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        if (!lit(p, forms[i].head)) continue;
        if (!quoted_name(p, first, sizeof first)) return "no quoted name after the entity";
        if (forms[i].names == 2 && !(lit(p, ".") && quoted_name(p, second, sizeof second)))
            return "no quoted column name";
        if (forms[i].scope != op->kind.scope ||
            (vtype(op) == PW_VT_WORKLOAD_GROUP) != (strcmp(forms[i].head, "workload_group ") == 0))
            return "an entity of another scope";
        const char *want = op->kind.scope == PW_SCOPE_DATABASE               ? op->database
                           : op->kind.scope == PW_SCOPE_TABLE ||
                                   op->kind.scope == PW_SCOPE_COLUMN ? op->table
                                                                     : op->entity;
        if (!want || strcmp(first, want) != 0) return "not the request's entity name";
        if (forms[i].names == 2 && strcmp(second, op->column) != 0)
            return "not the request's column name";
        return NULL;
    }
    return "no entity";
}

/* ` <role keyword> ('<fqn>')` of a principal change, to the end. */
static const char *principal_why(const pw_request_op *op, const char *p)
{
    static const char *const roles[] = {"admins", "ingestors",           "monitors",
                                        "users",  "unrestrictedviewers", "viewers"};
    const char *role = json_string_value(json_object_get(op->principal, "role"));
    const char *w = p;
    while (islower((unsigned char)*p))
        p++;
    size_t n = (size_t)(p - w);
    int known = 0;
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
        known |= strlen(roles[i]) == n && strncmp(w, roles[i], n) == 0;
    if (!known) return "no role keyword";
    /* the keyword is the role's name in lower case, plural */
    if (!role || strlen(role) + 1 != n || strncasecmp(w, role, n - 1) != 0)
        return "a role keyword that is not the request's role";
    if (!lit(&p, " ('")) return "no ('fqn')";
    const char *end = strstr(p, "')");
    char fqn[600];
    if (!end || end[2] != '\0' || (size_t)(end - p) >= sizeof fqn) return "text after ('fqn')";
    memcpy(fqn, p, (size_t)(end - p));
    fqn[end - p] = '\0';
    if (pw_names_principal_fqn(fqn, NULL, 0) != PW_OK) return "an FQN outside the FQN alphabet";
    if (!op->principal_fqn || strcmp(fqn, op->principal_fqn) != 0) return "not the request's FQN";
    return NULL;
}

/* NULL when command is a command of op in the grammar of pw/kql.h, else why not. */
static const char *command_why(const pw_request_op *op, const char *command, int is_read)
{
    const char *p = command, *verb = NULL, *why;
    for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++) {
        size_t n = strlen(verbs[i]);
        if (strncmp(p, verbs[i], n) == 0 && p[n] == ' ') {
            verb = verbs[i];
            p += n + 1;
            break;
        }
    }
    if (!verb) return "no verb";
    if (!verb_fits(op, is_read, verb)) return "a verb the operation does not use";
    if ((why = entity_why(op, &p))) return why;
    if (is_principal(vtype(op))) {
        if (is_read) return strcmp(p, " principals") == 0 ? NULL : "not `principals`";
        return lit(&p, " ") ? principal_why(op, p) : "no role";
    }
    if (vtype(op) != PW_VT_WORKLOAD_GROUP) {
        const char *kw = op->kind.row->keyword;
        if (!kw) return "a policy command for a row without keyword";
        if (!lit(&p, " policy ") || !lit(&p, kw) || (*p && *p != ' '))
            return "not `policy <keyword of the row>`";
    }
    int want_value = !is_read && op->action != PW_ACTION_DELETE;
    if (!*p) return want_value ? "no value" : NULL;
    if (!want_value) return "a value where none belongs";
    if (!lit(&p, " ")) return "no space before the value";
    int verbatims;
    if ((why = value_why(op, p, &verbatims))) return why;
    if (verbatims > 1) return "more than one verbatim literal";
    if (json_object_get(op->json, "policy") && verbatims != 1)
        return "the request's policy is not in a verbatim literal";
    return NULL;
}

/* ------------------------------------------------------------ ARM paths, cluster URIs */

/* The request's cluster (cluster scope) or database resource, then the value type's suffix,
 * only path-safe characters.  NULL when so, else why not. */
static const char *arm_path_why(const pw_request_op *op, const char *path, int is_read)
{
    char head[512];
    const char *p = path, *suffix = "";
    if (!op->subscription_id || !op->resource_group || !op->cluster) return "no ARM target";
    snprintf(head, sizeof head,
             "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Kusto/clusters/%s",
             op->subscription_id, op->resource_group, op->cluster);
    if (!lit(&p, head)) return "not the request's cluster resource";
    if (op->kind.scope != PW_SCOPE_CLUSTER) {
        if (!lit(&p, "/databases/")) return "no database segment";
        for (const char *d = op->database; *d; d++)
            if (*d == ' ' ? !lit(&p, "%20") : *p++ != *d) return "not the request's database";
    }
    switch (vtype(op)) {
    case PW_VT_PRINCIPAL_ADD:
        suffix = is_read ? "/listPrincipals" : "/addPrincipals";
        break;
    case PW_VT_PRINCIPAL_REMOVE:
        suffix = is_read ? "/listPrincipals" : "/removePrincipals";
        break;
    case PW_VT_ASSIGNMENT:
        suffix = "/principalAssignments/";
        break;
    default:
        if (op->kind.scope != PW_SCOPE_DATABASE) return "an ARM property outside a database";
        break;
    }
    if (!lit(&p, suffix)) return "not the value type's suffix";
    if (vtype(op) == PW_VT_ASSIGNMENT) {
        if (pw_names_arm_child(p, NULL, 0) != PW_OK) return "an assignment name outside its rule";
        if (!op->assignment || strcmp(p, op->assignment) != 0) return "not the request's assignment";
        p += strlen(p);
    }
    if (*p) return "text after the resource";
    for (p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(isascii(c) && (isalnum(c) || strchr("/_-.()%", c)))) return "a character unsafe in a path";
        if (c == '%' && strncmp(p, "%20", 3) != 0) return "a % other than %20";
    }
    if (strstr(path, "..") || strstr(path, "//") || strstr(path, "/./")) return "a dot segment";
    size_t n = strlen(path);
    return path[n - 1] != '/' && path[n - 1] != '.' ? NULL : "a trailing / or .";
}

static int cluster_uri_ok(const char *uri)
{
    if (strncmp(uri, "https://", 8) != 0) return 0;
    const char *host = uri + 8;
    for (const char *p = host; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '.' || *p == '-'))
            return 0;
    for (size_t i = 0; pw_names_default_kusto_suffixes[i]; i++) {
        const char *s = pw_names_default_kusto_suffixes[i];
        size_t h = strlen(host), n = strlen(s);
        if (h > n && strcmp(host + h - n, s) == 0 && host[h - n - 1] != '.') return 1;
    }
    return 0;
}

static int one_of(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

static void check_call(const pw_request_op *op, const pw_plan_call *c, int is_read)
{
    static const char *const reads[] = {"GET", "POST"};
    static const char *const applies[] = {"PATCH", "PUT", "POST", "DELETE"};
    const char *why;
    CHECK(c->route == op->route);
    if (c->route == PW_ROUTE_ARM) {
        CHECK(c->path && c->command == NULL);
        CHECK(is_read ? one_of(c->method, reads, 2) : one_of(c->method, applies, 4));
        why = arm_path_why(op, c->path, is_read);
        if (c->body) {
            char *text = json_dumps(c->body, JSON_COMPACT);
            CHECK(text != NULL);
            free(text);
        }
    } else {
        CHECK(c->command && c->path == NULL);
        CHECK(c->cluster_uri && cluster_uri_ok(c->cluster_uri));
        /* the call's db: the request's database, none at cluster scope */
        CHECK(op->kind.scope == PW_SCOPE_CLUSTER ? c->database == NULL
                                                 : c->database && op->database &&
                                                       strcmp(c->database, op->database) == 0);
        why = command_why(op, c->command, is_read);
    }
    if (why) {
        fprintf(stderr, "request_fuzz: %s (%s, %s): %s\n  %s\n", op->kind_name,
                pw_ops_action_name(op->action), is_read ? "read" : "apply", why,
                c->command ? c->command : c->path);
        abort();
    }
}

/* ------------------------------------------------------------ decoded requests */

static void check_rejected(const pw_rejection *rej)
{
    int known = 0;
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        known |= strcmp(rej->code, codes[i]) == 0;
    CHECK(known);
    CHECK(rej->message[0] != '\0');
    json_t *ev = pw_reply_rejection(rej, "fuzz");
    CHECK(ev != NULL);
    char *text = json_dumps(ev, JSON_COMPACT);
    CHECK(text != NULL);
    free(text);
    json_decref(ev);
}

/* The same payload without the privileged allow-list: refused exactly when it needs it. */
static void check_strict(const uint8_t *data, size_t size, int privileged_kinds)
{
    pw_rejection rej;
    pw_request *req = pw_request_decode(strict_chk, data, size, &rej);
    if (privileged_kinds) {
        CHECK(req == NULL && strcmp(rej.code, PW_REJECT_NOT_ALLOWED) == 0);
        check_rejected(&rej);
    } else {
        CHECK(req != NULL);
    }
    pw_request_free(req);
    pw_rejection_clear(&rej);
}

static void check_accepted(const pw_request *req, const uint8_t *data, size_t size)
{
    char err[256];
    int privileged_kinds = 0;
    for (size_t i = 0; i < pw_request_op_count(req); i++) {
        const pw_request_op *op = pw_request_op_at(req, i);
        pw_kind k;
        CHECK(pw_ops_lookup(op->kind_name, &k) == 0);
        CHECK(k.row == op->kind.row && k.scope == op->kind.scope);
        CHECK(pw_ops_at(k)->actions & PW_ACTION_BIT(op->action));
        CHECK(pw_ops_routes(k) & PW_ROUTE_BIT(op->route));
        privileged_kinds |= pw_ops_privileged(k);
    }
    pw_plan *plan = pw_plan_new(req, NULL, err, sizeof err);
    CHECK(plan != NULL);
    CHECK(pw_plan_count(plan) == pw_request_op_count(req));
    for (size_t i = 0; i < pw_plan_count(plan); i++) {
        const pw_plan_op *pop = pw_plan_op_at(plan, i);
        const pw_request_op *op = pw_request_op_at(req, i);
        CHECK(pop->op == op);
        check_call(op, &pop->read, 1);
        check_call(op, &pop->apply, 0);
        CHECK(pop->lane && pop->lane[0]);
        json_t *desired = pw_value_desired(op);
        CHECK(desired != NULL && json_equal(desired, pop->desired));
        char *planned = json_dumps(desired, JSON_COMPACT);
        CHECK(planned != NULL);
        free(planned);
        json_decref(desired);
        json_t *pj = pw_reply_plan(plan, i);
        CHECK(pj != NULL);
        char *text = json_dumps(pj, JSON_COMPACT);
        CHECK(text != NULL);
        free(text);
        json_decref(pj);
    }
    pw_plan_free(plan);
    check_strict(data, size, privileged_kinds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 0x01) {
        check_answer(data + 1, size - 1);
        return 0;
    }
    pw_rejection rej;
    pw_request *req = pw_request_decode(chk, data, size, &rej);
    if (req) {
        CHECK(rej.code[0] == '\0' && rej.errors == NULL);
        CHECK(pw_request_id(req) && pw_request_id(req)[0]);
        check_accepted(req, data, size);
        pw_request_free(req);
    } else {
        check_rejected(&rej);
    }
    pw_rejection_clear(&rej);
    return 0;
}
