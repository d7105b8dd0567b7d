/* main.c: policy-worker command line: `--config FILE` runs the worker; `validate FILE...`. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/config.h"
#include "pw/kafka.h"
#include "pw/log.h"
#include "pw/ops.h"
#include "pw/service.h"
#include "pw/validate_cli.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: policy-worker --config FILE\n"
                "       policy-worker validate [--config FILE] [--json] FILE...\n"
                "                                     (check request files as the worker would)\n"
                "       policy-worker --check-config FILE (load the configuration and exit)\n"
                "       policy-worker kinds [--json]   (the operation kinds this build supports)\n"
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

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "validate")) return pw_validate_cli(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "kinds")) return cmd_kinds(argc - 1, argv + 1);
    const char *path = NULL;
    int check_only = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "--check-config") && i + 1 < argc) {
            path = argv[++i];
            check_only = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    pw_config cfg;
    char err[512] = "";
    if (pw_config_load(&cfg, path, err, sizeof err) || pw_config_require(&cfg, err, sizeof err)) {
        pw_log(PW_LOG_ERROR, NULL, "config.invalid", "%s", err);
        fprintf(stderr, "policy-worker: configuration error: %s\n", err);
        pw_config_free(&cfg);
        return 2;
    }
    pw_log_set_worker_id(cfg.worker_id);
    pw_log_set_level(parse_level(cfg.log_level));
    pw_kafka_check_limits(&cfg, check_only ? warn_check : warn_log, NULL);
    if (check_only) {
        printf("configuration ok: %s\n", path);
        pw_config_free(&cfg);
        return 0;
    }
    int rc = pw_service_run(&cfg);
    pw_config_free(&cfg);
    return rc;
}
