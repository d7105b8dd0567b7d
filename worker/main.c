/* main.c: policy-worker command line: runs the worker, checks a configuration, `validate`. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/config.h"
#include "pw/kafka.h"
#include "pw/log.h"
#include "pw/ops.h"
#include "pw/request.h"
#include "pw/service.h"
#include "pw/validate_cli.h"
#include "pw/version.h"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: policy-worker [--config FILE]\n"
            "       policy-worker --check-config [FILE]\n"
            "       policy-worker validate [--config FILE] [--json] FILE...\n"
            "       policy-worker kinds [--json]\n"
            "       policy-worker --help | --version\n"
            "\n"
            "Consumes Azure Data Explorer policy-change requests from Kafka, applies them through\n"
            "Azure Resource Manager or Kusto management commands and publishes every status event\n"
            "to the reply topic.\n"
            "\n"
            "  --config FILE, -c FILE  run with FILE (key=value lines; the example configuration,\n"
            "                          share/policy-worker/worker.example.conf, lists every key)\n"
            "  --check-config [FILE]   load and check the configuration as start-up would (every\n"
            "                          key, the schema directory, the CA file, the topics), print\n"
            "                          every problem with FILE:LINE or the variable, and exit\n"
            "  validate                check request files offline as the worker would\n"
            "                          (policy-worker validate --help)\n"
            "  kinds [--json]          the operation kinds this build supports\n"
            "  --help, -h              this text\n"
            "  --version               the version, and those of librdkafka, libcurl, Jansson and\n"
            "                          OpenSSL\n"
            "\n"
            "Environment: every key a.b.c may be given as PW_A_B_C (letters upper-cased, '.' as\n"
            "'_', '_' as '__', '-' as '___'), e.g. PW_KAFKA_BOOTSTRAP_SERVERS, PW_WORKER_ID; these\n"
            "win over the file, which is optional when they supply the required keys.\n"
            "AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_AUTHORITY_HOST fill\n"
            "what the file leaves unset, as in the Azure SDKs.\n"
            "\n"
            "Signals: SIGTERM or SIGINT drains (worker.drain.timeout.ms) and exits 0; a second one\n"
            "stops at once.\n"
            "Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.\n");
}

/* A disagreement between the worker's limits and librdkafka's: not fatal, but said. */
static void warn_check(void *ctx, const char *text)
{
    (void)ctx;
    fprintf(stderr, "policy-worker: warning: %s\n", text);
}

static void warn_log(void *ctx, const char *text)
{
    (void)ctx;
    pw_log(PW_LOG_WARN, NULL, "config.limits", "%s", text);
}

/* `policy-worker kinds [--json]`: the catalogue, one kind per line or as JSON. */
static int cmd_kinds(int argc, char **argv)
{
    int as_json = argc == 2 && !strcmp(argv[1], "--json");
    if (argc > 2 || (argc == 2 && !as_json)) {
        usage(stderr);
        return 2;
    }
    json_t *kinds = pw_ops_json();
    if (!kinds) {
        fprintf(stderr, "policy-worker: out of memory\n");
        return 1;
    }
    if (as_json) {
        char *text = json_dumps(kinds, JSON_INDENT(2));
        if (text) puts(text);
        free(text);
    } else {
        printf("%-40s %-20s %-10s %-20s %s\n", "KIND", "ACTIONS", "ROUTES", "VALUE", "PRIVILEGED");
        size_t i;
        json_t *k;
        json_array_foreach(kinds, i, k)
        {
            char actions[32] = "", routes[16] = "";
            size_t j;
            json_t *a;
            json_array_foreach(json_object_get(k, "actions"), j, a)
            {
                if (j) strcat(actions, ",");
                strcat(actions, json_string_value(a));
            }
            json_array_foreach(json_object_get(k, "routes"), j, a)
            {
                if (j) strcat(routes, ",");
                strcat(routes, json_string_value(a));
            }
            printf("%-40s %-20s %-10s %-20s %s\n", json_string_value(json_object_get(k, "kind")),
                   actions, routes, json_string_value(json_object_get(k, "value")),
                   json_is_true(json_object_get(k, "privileged")) ? "yes" : "no");
        }
    }
    json_decref(kinds);
    return 0;
}

static pw_log_level parse_level(const char *s)
{
    if (!strcmp(s, "debug")) return PW_LOG_DEBUG;
    if (!strcmp(s, "warn")) return PW_LOG_WARN;
    if (!strcmp(s, "error")) return PW_LOG_ERROR;
    return PW_LOG_INFO;
}

/* Prints one configuration problem (and logs it when the worker was to run). */
typedef struct report_ctx {
    int check_only;
} report_ctx;

static void report_problem(void *ctx, const char *where, const char *text)
{
    const report_ctx *rc = ctx;
    if (!rc->check_only) {
        if (where)
            pw_log(PW_LOG_ERROR, NULL, "config.invalid", "%s: %s", where, text);
        else
            pw_log(PW_LOG_ERROR, NULL, "config.invalid", "%s", text);
    }
    fprintf(stderr, "policy-worker: %s%s%s%s\n", rc->check_only ? "error: " : "configuration error: ",
            where ? where : "", where ? ": " : "", text);
}

/* What start-up compiles before it consumes: the schemas (worker.schemas.dir). */
static int check_schemas(const pw_config *cfg, report_ctx *rc)
{
    char err[512] = "";
    pw_request_checker *chk = pw_request_checker_new(cfg, err, sizeof err);
    if (chk) {
        pw_request_checker_free(chk);
        return 0;
    }
    char text[1024];
    if (strstr(err, "worker.schemas.dir"))
        snprintf(text, sizeof text, "%s", err);
    else
        snprintf(text, sizeof text, "worker.schemas.dir: %s: %s", cfg->schemas_dir, err);
    report_problem(rc, pw_config_origin(cfg, "worker.schemas.dir"), text);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "validate")) return pw_validate_cli(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "kinds")) return cmd_kinds(argc - 1, argv + 1);
    const char *path = NULL;
    int check_only = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) && i + 1 < argc && !path) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "--check-config")) {
            check_only = 1;
            if (i + 1 < argc && argv[i + 1][0] != '-' && !path) path = argv[++i];
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            pw_version_print(stdout, "policy-worker");
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    /* Every problem is reported, not only the first: the file's lines, the PW_* variables,
     * librdkafka's verdicts, the required keys, the topics and, for --check-config, the
     * schema directory start-up would compile. */
    pw_config cfg;
    report_ctx rctx = {check_only};
    int problems = pw_config_load_report(&cfg, path, report_problem, &rctx);
    problems += pw_config_require_report(&cfg, report_problem, &rctx);
    if (check_only) problems += check_schemas(&cfg, &rctx);
    if (problems) {
        if (check_only)
            fprintf(stderr, "policy-worker: %d configuration problem%s in %s\n", problems,
                    problems == 1 ? "" : "s", path ? path : "the environment");
        else if (!path && argc == 1)
            usage(stderr);
        pw_config_free(&cfg);
        return 2;
    }
    pw_log_set_worker_id(cfg.worker_id);
    pw_log_set_level(parse_level(cfg.log_level));
    pw_kafka_check_limits(&cfg, check_only ? warn_check : warn_log, NULL);
    if (check_only) {
        printf("configuration ok: %s (schemas: %s)\n", path ? path : "(environment)",
               cfg.schemas_dir);
        pw_config_free(&cfg);
        return 0;
    }
    int rc = pw_service_run(&cfg);
    pw_config_free(&cfg);
    return rc;
}
