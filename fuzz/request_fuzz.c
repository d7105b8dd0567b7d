/* request_fuzz: libFuzzer target for pw_request_decode and what is built from its output.
 *
 * Input: a Kafka message payload (any bytes).  Every input is decoded by the worker's own
 * checker (schemas/ from the source tree, the built-in Kusto host suffixes, replyTo
 * "team.replies" allowed).  The oracle, beyond the sanitizers:
 *   - a rejection has a code from the documented list, a non-empty message, and its
 *     `rejected` event can be built and serialized (valid UTF-8 all the way);
 *   - an accepted request is planned; every Kusto command it produces has exactly the
 *     shape the worker documents, with only bracket-quoted names of the entity alphabet
 *     and a plain timespan; every ARM path has only path-safe characters, no "..", no
 *     query; every cluster URI is "https://" + a lower-case host under an allowed suffix;
 *   - the plan and the `accepted`-style plan JSON can be serialized.
 * Inputs starting with byte 0x01 are an Azure answer instead (the rest, as JSON): it is read
 * by pw_plan_value for every operation of a fixed plan (each kind and route: ARM database
 * resources and principal lists, Kusto policy and principal tables, .NET TimeSpans), which
 * must return a serializable value or an error text. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/config.h"
#include "pw/names.h"
#include "pw/plan.h"
#include "pw/reply.h"
#include "pw/request.h"

#ifndef FUZZ_SCHEMAS_DIR
#define FUZZ_SCHEMAS_DIR "schemas"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static pw_config cfg;
static pw_request_checker *chk;
static pw_request *fixed_req;
static pw_plan *fixed_plan;

#define ARM_T                                                                                      \
    "{\"subscriptionId\":\"22222222-2222-2222-2222-222222222222\",\"resourceGroup\":\"rg\","       \
    "\"cluster\":\"mykustocluster\",\"database\":\"db\"}"
#define KUSTO_T                                                                                    \
    "{\"clusterUri\":\"https://mykustocluster.westus.kusto.windows.net\",\"database\":\"db\""
static const char fixed_text[] =
    "{\"schema\":\"adx-policy-request/v1\",\"id\":\"fixed\",\"requestedBy\":\"fuzz@contoso.com\","
    "\"operations\":["
    "{\"kind\":\"database.retention\",\"target\":" ARM_T ",\"softDeletePeriod\":\"P10D\"},"
    "{\"kind\":\"database.caching\",\"target\":" ARM_T ",\"hotCachePeriod\":\"P5D\"},"
    "{\"kind\":\"database.retention\",\"via\":\"kusto\",\"target\":" KUSTO_T "},"
    "\"softDeletePeriod\":\"P10D\"},"
    "{\"kind\":\"table.caching\",\"target\":" KUSTO_T
    ",\"table\":\"T\"},\"hotCachePeriod\":\"P5D\"},"
    "{\"kind\":\"database.principal.add\",\"target\":" ARM_T ",\"principal\":{\"role\":\"Admin\","
    "\"name\":\"n\",\"type\":\"App\",\"appId\":\"44444444-4444-4444-4444-444444444444\"}},"
    "{\"kind\":\"database.principal.add\",\"via\":\"kusto\",\"target\":" KUSTO_T "},"
    "\"principal\":{\"role\":\"User\",\"name\":\"n\",\"type\":\"User\",\"email\":\"a@b.c\"}},"
    "{\"kind\":\"database.principal.add\",\"target\":" ARM_T ",\"principal\":{\"role\":\"Viewer\","
    "\"name\":\"n\",\"type\":\"Group\"}}]}";
static char *allowed[] = {"team.replies"};

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
};

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "request_fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    memset(&cfg, 0, sizeof cfg);
    cfg.reply_topic = "adx.policy.replies";
    cfg.allowed_reply_topics = allowed;
    cfg.allowed_reply_topic_count = 1;
    cfg.schemas_dir = FUZZ_SCHEMAS_DIR;
    cfg.max_message_bytes = 65536;
    cfg.max_json_depth = 16;
    cfg.max_operations = 8;
    chk = pw_request_checker_new(&cfg, err, sizeof err);
    if (!chk) {
        fprintf(stderr, "request_fuzz: checker: %s\n", err);
        abort();
    }
    pw_rejection rej;
    fixed_req = pw_request_decode(chk, fixed_text, strlen(fixed_text), &rej);
    if (!fixed_req) {
        fprintf(stderr, "request_fuzz: fixed request: %s %s\n", rej.code, rej.message);
        abort();
    }
    fixed_plan = pw_plan_new(fixed_req, NULL, err, sizeof err);
    if (!fixed_plan) abort();
    return 0;
}

/* Every operation of the fixed plan reads answer; a value must serialize, an error say why. */
static void check_answer(const uint8_t *data, size_t size)
{
    json_t *answer = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!answer) return;
    for (size_t i = 0; i < pw_plan_count(fixed_plan); i++) {
        json_t *value = NULL;
        char err[256] = "";
        if (pw_plan_value(pw_plan_op_at(fixed_plan, i), answer, &value, err, sizeof err) == 0) {
            CHECK(value != NULL);
            char *text = json_dumps(value, JSON_COMPACT);
            CHECK(text != NULL);
            free(text);
            json_decref(value);
        } else {
            CHECK(value == NULL && err[0] != '\0');
        }
    }
    json_decref(answer);
}

static int entity_char(int c)
{
    return isascii(c) && (isalnum(c) || c == '_' || c == ' ' || c == '.' || c == '-');
}

/* Skips "['<entity>']" at *p; 0 when it is not exactly that. */
static int skip_quoted(const char **p)
{
    const char *s = *p;
    if (strncmp(s, "['", 2) != 0) return 0;
    s += 2;
    const char *start = s;
    while (entity_char((unsigned char)*s))
        s++;
    if (s == start || strncmp(s, "']", 2) != 0) return 0;
    *p = s + 2;
    return 1;
}

static int skip_lit(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n) != 0) return 0;
    *p += n;
    return 1;
}

/* A KQL timespan literal as pw_duration_format_kql writes it. */
static int skip_timespan(const char **p)
{
    static const char *const units[] = {"microsecond", "tick", "ms", "d", "h", "m", "s"};
    const char *s = *p;
    while (isdigit((unsigned char)*s))
        s++;
    if (s == *p) return 0;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (skip_lit(&s, units[i])) {
            *p = s;
            return 1;
        }
    }
    return 0;
}

/* Exactly one of the command shapes in pw/kql.h, nothing after. */
static int command_shape_ok(const char *c)
{
    const char *p = c;
    if (skip_lit(&p, ".show database ")) {
        if (!skip_quoted(&p)) return 0;
        return strcmp(p, " policy retention") == 0 || strcmp(p, " policy caching") == 0 ||
               strcmp(p, " principals") == 0;
    }
    if (skip_lit(&p, ".show table ")) {
        if (!skip_quoted(&p)) return 0;
        return strcmp(p, " policy retention") == 0 || strcmp(p, " policy caching") == 0;
    }
    p = c;
    if (skip_lit(&p, ".alter-merge database ") || skip_lit(&p, ".alter-merge table ")) {
        if (!skip_quoted(&p) || !skip_lit(&p, " policy retention softdelete = ") ||
            !skip_timespan(&p))
            return 0;
        return *p == '\0';
    }
    p = c;
    if (skip_lit(&p, ".alter database ") || skip_lit(&p, ".alter table ")) {
        if (!skip_quoted(&p) || !skip_lit(&p, " policy caching hot = ") || !skip_timespan(&p))
            return 0;
        return *p == '\0';
    }
    p = c;
    if (skip_lit(&p, ".add database ")) {
        if (!skip_quoted(&p) || *p++ != ' ') return 0;
        while (islower((unsigned char)*p))
            p++;
        if (!skip_lit(&p, " ('")) return 0;
        const char *start = p;
        while (*p && *p != '\'')
            p++;
        if (p == start || strcmp(p, "')") != 0) return 0;
        char fqn[600];
        size_t n = (size_t)(p - start);
        if (n >= sizeof fqn) return 0;
        memcpy(fqn, start, n);
        fqn[n] = '\0';
        return pw_names_principal_fqn(fqn, NULL, 0) == PW_OK;
    }
    return 0;
}

static int arm_path_ok(const char *path)
{
    static const char prefix[] = "/subscriptions/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0) return 0;
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(isascii(c) && (isalnum(c) || strchr("/_-.()%", c)))) return 0;
        if (c == '%' && strncmp(p, "%20", 3) != 0) return 0;
    }
    if (strstr(path, "..") || strstr(path, "//") || strstr(path, "/./")) return 0;
    size_t n = strlen(path);
    return path[n - 1] != '/' && path[n - 1] != '.';
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

static void check_call(const pw_plan_call *c)
{
    if (c->route == PW_ROUTE_ARM) {
        CHECK(c->path && arm_path_ok(c->path));
        CHECK(c->method && c->command == NULL);
    } else {
        CHECK(c->command && command_shape_ok(c->command));
        CHECK(c->cluster_uri && cluster_uri_ok(c->cluster_uri));
        CHECK(c->database && c->path == NULL);
    }
}

static void check_accepted(const pw_request *req)
{
    char err[256];
    pw_plan *plan = pw_plan_new(req, NULL, err, sizeof err);
    CHECK(plan != NULL);
    CHECK(pw_plan_count(plan) == pw_request_op_count(req));
    for (size_t i = 0; i < pw_plan_count(plan); i++) {
        const pw_plan_op *pop = pw_plan_op_at(plan, i);
        const pw_request_op *op = pw_request_op_at(req, i);
        CHECK(pop->op == op);
        CHECK(pop->read.route == op->route && pop->apply.route == op->route);
        check_call(&pop->read);
        check_call(&pop->apply);
        CHECK(pop->lane && pop->lane[0]);
        char *planned = json_dumps(pop->desired, JSON_COMPACT);
        CHECK(planned != NULL);
        free(planned);
        json_t *pj = pw_reply_plan(plan, i);
        char *text = json_dumps(pj, JSON_COMPACT);
        CHECK(text != NULL);
        free(text);
        json_decref(pj);
    }
    pw_plan_free(plan);
}

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
        check_accepted(req);
        pw_request_free(req);
    } else {
        check_rejected(&rej);
    }
    pw_rejection_clear(&rej);
    return 0;
}
