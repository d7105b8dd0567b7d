/* test_ops.c: the catalogue against schemas/ and tests/data/ops/, and every data file run
 * through decode -> plan with the exact commands and ARM calls compared.
 *
 * A data file tests/data/ops/<kind>.json: {"kind", "cases": [{"name", "operation",
 * "read": call, "apply": call} | {"name", "operation", "reject": "<code>"}]}, a call being
 * {"kusto": "<command>"} or {"method", "path", "body"}. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "pw/ops.h"
#include "pw/plan.h"
#include "pw/request.h"
#include "checker_support.h"

#define SCHEMAS PW_SOURCE_DIR "/schemas"
#define DATA PW_SOURCE_DIR "/tests/data/ops"


static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static json_t *load(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!j) fail_msg("%s: %s (line %d)", path, e.text, e.line);
    return j;
}

/* Every kind of the catalogue, as JSON strings. */
static json_t *catalogue_kinds(void)
{
    json_t *all = pw_ops_json(), *names = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(all, i, row) json_array_append(names, json_object_get(row, "kind"));
    json_decref(all);
    return names;
}

static int contains(const json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), s)) return 1;
    return 0;
}

/* Each row has its schema, its data file and its place in request.v1.json's kind enum,
 * and nothing else has. */
static void catalogue_matches_schemas(void **state)
{
    (void)state;
    json_t *kinds = catalogue_kinds();
    json_t *request = load(SCHEMAS "/request.v1.json");
    json_t *kind_enum = json_object_get(
        json_object_get(json_object_get(json_object_get(json_object_get(request, "$defs"), "operation"),
                                        "properties"),
                        "kind"),
        "enum");
    assert_true(json_is_array(kind_enum));
    size_t i;
    json_t *k;
    json_array_foreach(kinds, i, k)
    {
        const char *name = json_string_value(k);
        char path[512];
        snprintf(path, sizeof path, SCHEMAS "/ops/%s.v1.json", name);
        if (!file_exists(path)) fail_msg("kind %s has no schema %s", name, path);
        snprintf(path, sizeof path, DATA "/%s.json", name);
        if (!file_exists(path)) fail_msg("kind %s has no data file %s", name, path);
        if (!contains(kind_enum, name)) fail_msg("kind %s is not in request.v1.json's kind enum", name);
    }
    json_array_foreach(kind_enum, i, k)
    {
        if (!contains(kinds, json_string_value(k)))
            fail_msg("request.v1.json lists %s, which the catalogue does not have",
                     json_string_value(k));
    }
    DIR *d = opendir(SCHEMAS "/ops");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 9 || strcmp(e->d_name + n - 8, ".v1.json") != 0) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 8), e->d_name);
        if (!contains(kinds, name)) fail_msg("schemas/ops/%s is no kind of the catalogue", e->d_name);
    }
    closedir(d);
    json_decref(request);
    json_decref(kinds);
}

static void expect_call(const char *where, const pw_plan_call *got, const json_t *want)
{
    const json_t *kusto = json_object_get(want, "kusto");
    if (kusto) {
        if (got->route != PW_ROUTE_KUSTO || !got->command)
            fail_msg("%s: expected the kusto command %s", where, json_string_value(kusto));
        if (strcmp(got->command, json_string_value(kusto)) != 0)
            fail_msg("%s:\n  want %s\n  got  %s", where, json_string_value(kusto), got->command);
        return;
    }
    const char *method = json_string_value(json_object_get(want, "method"));
    const char *path = json_string_value(json_object_get(want, "path"));
    if (got->route != PW_ROUTE_ARM || !method || !path) fail_msg("%s: expected an ARM call", where);
    if (strcmp(got->method, method) != 0 || strcmp(got->path, path) != 0)
        fail_msg("%s:\n  want %s %s\n  got  %s %s", where, method, path, got->method, got->path);
    const json_t *body = json_object_get(want, "body");
    int want_body = body && !json_is_null(body);
    if (want_body != (got->body != NULL) || (want_body && !json_equal(body, got->body))) {
        char *g = got->body ? json_dumps(got->body, JSON_COMPACT) : NULL;
        char *w = want_body ? json_dumps(body, JSON_COMPACT) : NULL;
        fail_msg("%s: body\n  want %s\n  got  %s", where, w ? w : "none", g ? g : "none");
    }
}

static size_t run_file(const char *path)
{
    json_t *file = load(path);
    const char *kind = json_string_value(json_object_get(file, "kind"));
    json_t *cases = json_object_get(file, "cases");
    if (!kind || !json_array_size(cases)) fail_msg("%s: no kind or no cases", path);
    size_t i, n = 0;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        char where[512];
        snprintf(where, sizeof where, "%s: case %zu (%s)", kind, i,
                 json_string_value(json_object_get(c, "name")) ? json_string_value(json_object_get(c, "name")) : "");
        json_t *req = json_pack("{s:s, s:s, s:s, s:[O]}", "schema", "adx-policy-request/v1", "id",
                                "data-1", "requestedBy", "test@contoso.com", "operations",
                                json_object_get(c, "operation"));
        char *text = json_dumps(req, JSON_COMPACT);
        pw_rejection rej;
        pw_request *r = pw_request_decode(chk, text, strlen(text), &rej);
        const char *reject = json_string_value(json_object_get(c, "reject"));
        if (reject) {
            if (r) fail_msg("%s: accepted, expected %s", where, reject);
            if (strcmp(rej.code, reject) != 0)
                fail_msg("%s: rejected with %s (%s), expected %s", where, rej.code, rej.message, reject);
            pw_rejection_clear(&rej);
        } else {
            if (!r) fail_msg("%s: rejected: %s: %s", where, rej.code, rej.message);
            char err[256];
            pw_plan *plan = pw_plan_new(r, NULL, err, sizeof err);
            if (!plan) fail_msg("%s: not planned: %s", where, err);
            const pw_plan_op *pop = pw_plan_op_at(plan, 0);
            char w2[600];
            snprintf(w2, sizeof w2, "%s read", where);
            expect_call(w2, &pop->read, json_object_get(c, "read"));
            snprintf(w2, sizeof w2, "%s apply", where);
            expect_call(w2, &pop->apply, json_object_get(c, "apply"));
            pw_plan_free(plan);
            pw_request_free(r);
        }
        free(text);
        json_decref(req);
        n++;
    }
    json_decref(file);
    return n;
}

static void data_files_plan_exactly(void **state)
{
    (void)state;
    DIR *d = opendir(DATA);
    assert_non_null(d);
    struct dirent *e;
    size_t files = 0, cases = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        char path[512];
        snprintf(path, sizeof path, DATA "/%s", e->d_name);
        cases += run_file(path);
        files++;
    }
    closedir(d);
    print_message("%zu data files, %zu cases\n", files, cases);
    assert_true(files > 0);
}

/* The README's table of kinds is the catalogue: same kinds, actions and routes, in order. */
static void readme_lists_the_catalogue(void **state)
{
    (void)state;
    FILE *f = fopen(PW_SOURCE_DIR "/README.md", "r");
    assert_non_null(f);
    json_t *all = pw_ops_json();
    char line[1024];
    size_t row = 0;
    int in_table = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "| kind | actions | routes |", 26) == 0) {
            in_table = 1;
            continue;
        }
        if (!in_table || strncmp(line, "|---", 4) == 0) continue;
        if (line[0] != '|') break;
        json_t *k = json_array_get(all, row++);
        if (!k) fail_msg("README lists more kinds than the catalogue: %s", line);
        char want[512], actions[64] = "", routes[64] = "";
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(k, "actions"), i, a)
        {
            strcat(actions, i ? ", " : "");
            strcat(actions, json_string_value(a));
        }
        size_t nroutes = json_array_size(json_object_get(k, "routes"));
        json_array_foreach(json_object_get(k, "routes"), i, a)
        {
            const char *r = json_string_value(a);
            int dflt = nroutes > 1 && !strcmp(r, json_string_value(json_object_get(k, "defaultRoute")));
            snprintf(routes + strlen(routes), sizeof routes - strlen(routes), "%s%s%s%s",
                     i ? ", " : "", dflt ? "**" : "", r, dflt ? "**" : "");
        }
        snprintf(want, sizeof want, "| `%s` | %s | %s | %s | %s |",
                 json_string_value(json_object_get(k, "kind")), actions, routes,
                 json_string_value(json_object_get(k, "value")),
                 json_is_true(json_object_get(k, "privileged")) ? "yes" : "");
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, want) != 0) fail_msg("README row %zu:\n  want %s\n  got  %s", row, want, line);
    }
    fclose(f);
    if (row != json_array_size(all))
        fail_msg("README lists %zu kinds, the catalogue has %zu", row, json_array_size(all));
    json_decref(all);
}

/* The rules the catalogue states once, checked on a few kinds. */
static void catalogue_rules(void **state)
{
    (void)state;
    pw_kind k;
    assert_int_equal(pw_ops_lookup("table.merge", &k), 0);
    assert_int_equal(k.scope, PW_SCOPE_TABLE);
    assert_false(pw_ops_privileged(k));
    assert_int_equal(pw_ops_lookup("cluster.caching", &k), 0);
    assert_true(pw_ops_privileged(k)); /* every cluster scope */
    assert_int_equal(pw_ops_lookup("table.row_level_security", &k), 0);
    assert_true(pw_ops_privileged(k));
    assert_int_equal(pw_ops_lookup("cluster.retention", &k), -1); /* no such scope */
    assert_int_equal(pw_ops_lookup("table.nosuch", &k), -1);
    assert_int_equal(pw_ops_lookup("tablemerge", &k), -1);
    assert_int_equal(pw_ops_lookup("database.principalAssignment", &k), 0);
    assert_int_equal(pw_ops_routes(k), PW_ROUTE_BIT(PW_ROUTE_ARM));
}

static pw_request *decode_with(pw_request_checker *c, const char *op, pw_rejection *rej)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"schema\":\"adx-policy-request/v1\",\"id\":\"a1\",\"requestedBy\":\"t@c.com\","
             "\"operations\":[%s]}",
             op);
    return pw_request_decode(c, text, strlen(text), rej);
}

#define KT "{\"clusterUri\":\"https://c1.westus.kusto.windows.net\",\"database\":\"db\",\"table\":\"T\"}"
#define RLS "{\"kind\":\"table.row_level_security\",\"target\":" KT ",\"enabled\":true,\"query\":\"F\"}"
#define MERGE "{\"kind\":\"table.merge\",\"target\":" KT ",\"policy\":{\"MaxRangeInHours\":24}}"
#define RET "{\"kind\":\"table.retention\",\"target\":" KT ",\"softDeletePeriod\":\"P10D\"}"

/* Privileged kinds need worker.kinds.privileged.allowed; worker.kinds.allowed narrows. */
static void privileged_and_narrowed(void **state)
{
    (void)state;
    pw_config c;
    char err[256];
    memset(&c, 0, sizeof c);
    c.reply_topic = "r";
    c.schemas_dir = SCHEMAS;
    pw_request_checker *k = pw_request_checker_new(&c, err, sizeof err);
    assert_non_null(k);
    pw_rejection rej;
    assert_null(decode_with(k, RLS, &rej));
    assert_string_equal(rej.code, PW_REJECT_NOT_ALLOWED);
    assert_non_null(strstr(rej.message, "worker.kinds.privileged.allowed"));
    assert_non_null(strstr(rej.message, "/operations/0/kind"));
    pw_rejection_clear(&rej);
    pw_request *r = decode_with(k, MERGE, &rej);
    assert_non_null(r);
    pw_request_free(r);
    pw_request_checker_free(k);

    char *allowed[] = {"table.merge"};
    char *priv[] = {"table.row_level_security"};
    c.kinds_allowed = allowed;
    c.kinds_allowed_count = 1;
    k = pw_request_checker_new(&c, err, sizeof err);
    assert_null(decode_with(k, RET, &rej)); /* narrowed away */
    assert_string_equal(rej.code, PW_REJECT_NOT_ALLOWED);
    pw_rejection_clear(&rej);
    assert_null(decode_with(k, RLS, &rej)); /* privileged and not in the narrow list */
    pw_rejection_clear(&rej);
    c.kinds_privileged_allowed = priv;
    c.kinds_privileged_allowed_count = 1;
    assert_null(decode_with(k, RLS, &rej)); /* privileged-allowed, but narrowed away */
    pw_rejection_clear(&rej);
    c.kinds_allowed = NULL;
    c.kinds_allowed_count = 0;
    r = decode_with(k, RLS, &rej);
    if (!r) fail_msg("%s: %s", rej.code, rej.message);
    pw_request_free(r);
    pw_request_checker_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(catalogue_rules),
        cmocka_unit_test(catalogue_matches_schemas),
        cmocka_unit_test(readme_lists_the_catalogue),
        cmocka_unit_test(data_files_plan_exactly),
        cmocka_unit_test(privileged_and_narrowed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
