/* test_config.c: the worker's key=value configuration: defaults, keys, env, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pw/config.h"
#include "pw/names.h"

static char tmp_path[64];

static const char *write_file(const char *text)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/pw-test-config-XXXXXX");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return tmp_path;
}

static void clear_env(void)
{
    unsetenv("AZURE_TENANT_ID");
    unsetenv("AZURE_CLIENT_ID");
    unsetenv("AZURE_CLIENT_SECRET");
    unsetenv("AZURE_AUTHORITY_HOST");
}

/* Loads text; returns the load's result with err filled. */
static int load_text(pw_config *cfg, const char *text, char *err, size_t errlen)
{
    const char *p = write_file(text);
    int rc = pw_config_load(cfg, p, err, errlen);
    unlink(p);
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    clear_env();
    pw_config cfg;
    char err[256] = "";
    assert_int_equal(pw_config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.request_topic, "adx.policy.requests");
    assert_string_equal(cfg.reply_topic, "adx.policy.replies");
    assert_string_equal(cfg.dead_letter_topic, "adx.policy.deadletter");
    assert_int_equal(cfg.max_in_flight, 1000);
    assert_int_equal(cfg.max_message_bytes, 1048576);
    assert_int_equal(cfg.max_json_depth, 32);
    assert_int_equal(cfg.drain_timeout_ms, 30000);
    assert_int_equal(cfg.teardown_timeout_ms, 5000);
    assert_string_equal(cfg.log_level, "info");
    assert_non_null(cfg.worker_id);
    /* sized for a service: 16 exchanges per host held a worker to ~220 requests/s (bench/e2e) */
    assert_int_equal(cfg.azure.max_host_connections, 64);
    assert_int_equal(PW_CONFIG_HOST_CONNECTIONS_MAX, 64);
    /* The public and sovereign clouds, the same list the name checks fall back to. */
    const char *suffixes[] = {".kusto.windows.net", ".kusto.chinacloudapi.cn",
                              ".kusto.usgovcloudapi.net", ".kustomfa.windows.net"};
    assert_int_equal(cfg.kusto_host_suffix_count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(cfg.kusto_host_suffixes[i], suffixes[i]);
        assert_string_equal(pw_names_default_kusto_suffixes[i], suffixes[i]);
    }
    assert_null(pw_names_default_kusto_suffixes[4]);
    assert_non_null(cfg.azure.authority_host);
    assert_null(cfg.azure.client_secret);
    assert_int_equal(cfg.kafka_count, 0);
    /* Required values are missing: the worker would stop, naming the first one. */
    assert_int_equal(pw_config_require(&cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "azure.tenant.id"));
    pw_config_free(&cfg);
    pw_config_free(&cfg); /* zeroed: second free is a no-op */
}

static const char *full_config = "# comment\n"
                                 "\n"
                                 "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                                 "kafka.group.id=g1\n"
                                 "kafka.client.id=w\n"
                                 "  worker.request.topic = req  \n"
                                 "worker.reply.topic=rep\n"
                                 "worker.deadletter.topic=dlq\n"
                                 "worker.replyto.allowed= a , b,,c \n"
                                 "worker.inflight.max=7\n"
                                 "worker.drain.timeout.ms=1500\n"
                                 "worker.teardown.timeout.ms=250\n"
                                 "worker.json.max.depth=12\n"
                                 "worker.log.level=debug\n"
                                 "azure.tenant.id=t\n"
                                 "azure.client.id=c\n"
                                 "azure.client.secret=s3cr3t-value\n"
                                 "azure.connect.to=::127.0.0.1:8443, login.x:443:127.0.0.1:9\n"
                                 "azure.attempts.max=3\n"
                                 "azure.kusto.host.suffixes=.kusto.windows.net\n";

static void test_full_file(void **state)
{
    (void)state;
    clear_env();
    pw_config cfg;
    char err[256] = "";
    assert_int_equal(load_text(&cfg, full_config, err, sizeof err), 0);
    assert_int_equal(cfg.kafka_count, 3);
    assert_string_equal(cfg.kafka[0].key, "bootstrap.servers");
    assert_string_equal(cfg.kafka[0].value, "127.0.0.1:9092");
    assert_string_equal(pw_config_kafka_get(&cfg, "group.id"), "g1");
    assert_null(pw_config_kafka_get(&cfg, "nope"));
    assert_string_equal(cfg.request_topic, "req");
    assert_string_equal(cfg.reply_topic, "rep");
    assert_string_equal(cfg.dead_letter_topic, "dlq");
    assert_int_equal(cfg.allowed_reply_topic_count, 3);
    assert_string_equal(cfg.allowed_reply_topics[0], "a");
    assert_string_equal(cfg.allowed_reply_topics[1], "b");
    assert_string_equal(cfg.allowed_reply_topics[2], "c");
    assert_true(pw_config_reply_topic_allowed(&cfg, "rep"));
    assert_true(pw_config_reply_topic_allowed(&cfg, "b"));
    assert_false(pw_config_reply_topic_allowed(&cfg, "evil"));
    assert_int_equal(cfg.max_in_flight, 7);
    assert_int_equal(cfg.drain_timeout_ms, 1500);
    assert_int_equal(cfg.teardown_timeout_ms, 250);
    assert_int_equal(cfg.max_json_depth, 12);
    assert_string_equal(cfg.log_level, "debug");
    assert_string_equal(cfg.azure.tenant_id, "t");
    assert_string_equal(cfg.azure.client_secret, "s3cr3t-value");
    assert_int_equal(cfg.azure.connect_to_count, 2);
    assert_string_equal(cfg.azure.connect_to[0], "::127.0.0.1:8443");
    assert_string_equal(cfg.azure.connect_to[1], "login.x:443:127.0.0.1:9");
    assert_int_equal(cfg.azure.max_attempts, 3);
    assert_int_equal(cfg.kusto_host_suffix_count, 1);
    assert_int_equal(pw_config_require(&cfg, err, sizeof err), 0);
    pw_config_free(&cfg);
}

/* Each bad file fails with a message naming the key. */
static void test_errors_name_the_key(void **state)
{
    (void)state;
    clear_env();
    struct {
        const char *text;
        const char *key;
    } cases[] = {
        {"worker.nope=1\n", "worker.nope"},
        {"azure.tenant=1\n", "azure.tenant"},
        {"bogus=1\n", "bogus"},
        {"worker.inflight.max=abc\n", "worker.inflight.max"},
        {"worker.inflight.max=0\n", "worker.inflight.max"},
        {"worker.inflight.max=-5\n", "worker.inflight.max"},
        {"worker.inflight.max=99999999999999999999999\n", "worker.inflight.max"},
        {"worker.drain.timeout.ms=1.5\n", "worker.drain.timeout.ms"},
        {"worker.teardown.timeout.ms=-1\n", "worker.teardown.timeout.ms"},
        {"worker.log.level=loud\n", "worker.log.level"},
        {"worker.reply.topic=\n", "worker.reply.topic"},
        {"kafka.no.such.property=1\n", "kafka.no.such.property"},
        {"kafka.acks=maybe\n", "kafka.acks"},
        {"azure.arm.endpoint=http://management.azure.com\n", "azure.arm.endpoint"},
        {"azure.ca.file=/nonexistent/ca.pem\n", "azure.ca.file"},
        {"azure.kusto.host.suffixes=kusto.windows.net\n", "azure.kusto.host.suffixes"},
        {"just a line\n", ":1:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pw_config cfg;
        char err[256] = "";
        int rc = load_text(&cfg, cases[i].text, err, sizeof err);
        if (rc != -1 || !strstr(err, cases[i].key))
            fail_msg("case %zu (%s): rc=%d err=%s", i, cases[i].text, rc, err);
        pw_config_free(&cfg);
    }
}

/* azure.ca.file must hold PEM certificates: garbage, or a certificate block OpenSSL cannot
 * read, is refused at load (so by --check-config too), naming the key and the file. */
static void test_ca_file_checked(void **state)
{
    (void)state;
    clear_env();
    static const char *const bad[] = {
        "this is not a certificate\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char ca[64], conf[128];
        snprintf(ca, sizeof ca, "/tmp/pw-test-ca-XXXXXX");
        int fd = mkstemp(ca);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
        close(fd);
        snprintf(conf, sizeof conf, "azure.ca.file=%s\n", ca);
        pw_config cfg;
        char err[256] = "";
        int rc = load_text(&cfg, conf, err, sizeof err);
        unlink(ca);
        if (rc != -1 || !strstr(err, "azure.ca.file") || !strstr(err, ca))
            fail_msg("case %zu: rc=%d err=%s", i, rc, err);
        pw_config_free(&cfg);
    }
    /* a real bundle loads */
    const char *bundle = "/etc/ssl/certs/ca-certificates.crt";
    if (access(bundle, R_OK) == 0) {
        char conf[128];
        snprintf(conf, sizeof conf, "azure.ca.file=%s\n", bundle);
        pw_config cfg;
        char err[256] = "";
        if (load_text(&cfg, conf, err, sizeof err) != 0) fail_msg("%s", err);
        pw_config_free(&cfg);
    }
}

static void test_missing_file(void **state)
{
    (void)state;
    pw_config cfg;
    char err[256] = "";
    assert_int_equal(pw_config_load(&cfg, "/nonexistent/pw.conf", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/pw.conf"));
}

/* The secret never shows up in an error message. */
static void test_secret_not_echoed(void **state)
{
    (void)state;
    clear_env();
    pw_config cfg;
    char err[256] = "";
    assert_int_equal(
        load_text(&cfg, "kafka.sasl.password=hunter2\nkafka.bogus.x=1\n", err, sizeof err), -1);
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(load_text(&cfg, "azure.client.secret=\n", err, sizeof err), -1);
    assert_non_null(strstr(err, "azure.client.secret"));
}

static void test_env_fills_unset(void **state)
{
    (void)state;
    clear_env();
    setenv("AZURE_TENANT_ID", "env-tenant", 1);
    setenv("AZURE_CLIENT_ID", "env-client", 1);
    setenv("AZURE_CLIENT_SECRET", "env-secret", 1);
    setenv("AZURE_AUTHORITY_HOST", "https://login.example.test", 1);
    pw_config cfg;
    char err[256] = "";
    assert_int_equal(load_text(&cfg, "azure.client.id=file-client\n", err, sizeof err), 0);
    assert_string_equal(cfg.azure.tenant_id, "env-tenant");
    assert_string_equal(cfg.azure.client_id, "file-client"); /* the file wins */
    assert_string_equal(cfg.azure.client_secret, "env-secret");
    assert_string_equal(cfg.azure.authority_host, "https://login.example.test");
    pw_config_free(&cfg);
    clear_env();
}

static void test_require_kafka(void **state)
{
    (void)state;
    clear_env();
    pw_config cfg;
    char err[256] = "";
    assert_int_equal(load_text(&cfg,
                               "azure.tenant.id=t\nazure.client.id=c\n"
                               "azure.client.secret=s\n",
                               err, sizeof err),
                     0);
    assert_int_equal(pw_config_require(&cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "kafka.bootstrap.servers"));
    assert_int_equal(pw_config_set(&cfg, "kafka.bootstrap.servers", "x:1", err, sizeof err), 0);
    assert_int_equal(pw_config_require(&cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "kafka.group.id"));
    assert_int_equal(pw_config_set(&cfg, "kafka.group.id", "g", err, sizeof err), 0);
    assert_int_equal(pw_config_require(&cfg, err, sizeof err), 0);
    pw_config_free(&cfg);
}

/* worker.kinds.*: names of the catalogue only, privileged ones in the privileged list. */
static void test_kind_lists(void **state)
{
    (void)state;
    clear_env();
    pw_config cfg;
    char err[256] = "";
    assert_int_equal(load_text(&cfg,
                               "worker.kinds.allowed=table.merge,database.retention\n"
                               "worker.kinds.privileged.allowed=cluster.callout\n",
                               err, sizeof err),
                     0);
    assert_int_equal(cfg.kinds_allowed_count, 2);
    assert_int_equal(cfg.kinds_privileged_allowed_count, 1);
    assert_int_equal(pw_config_set(&cfg, "worker.kinds.allowed", "table.nosuch", err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "worker.kinds.allowed"));
    assert_non_null(strstr(err, "table.nosuch"));
    assert_int_equal(
        pw_config_set(&cfg, "worker.kinds.privileged.allowed", "table.merge", err, sizeof err), -1);
    assert_non_null(strstr(err, "not privileged"));
    assert_int_equal(cfg.kinds_privileged_allowed_count, 1); /* a refused value changes nothing */
    pw_config_free(&cfg);
}

static void test_long_line(void **state)
{
    (void)state;
    size_t n = 20000;
    char *text = malloc(n + 32);
    assert_non_null(text);
    strcpy(text, "worker.id=");
    memset(text + 10, 'x', n);
    strcpy(text + 10 + n, "\n");
    pw_config cfg;
    char err[256] = "";
    assert_int_equal(load_text(&cfg, text, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than"));
    free(text);
}

/* deploy/worker.example.conf documents every key and must itself load. */
static void test_example_config_loads(void **state)
{
    (void)state;
    clear_env();
    setenv("AZURE_CLIENT_SECRET", "example-secret", 1);
    pw_config cfg;
    char err[256] = "";
    int rc = pw_config_load(&cfg, PW_SOURCE_DIR "/deploy/worker.example.conf", err, sizeof err);
    if (rc) fail_msg("worker.example.conf: %s", err);
    assert_string_equal(pw_config_kafka_get(&cfg, "group.id"), "adx-policy-worker");
    assert_string_equal(cfg.request_topic, "adx.policy.requests");
    pw_config_free(&cfg);
    clear_env();
}

/* Collects reported problems as "WHERE|TEXT" lines. */
typedef struct problems {
    char text[4096];
    int n;
} problems;

static void collect(void *ctx, const char *where, const char *text)
{
    problems *p = ctx;
    size_t used = strlen(p->text);
    snprintf(p->text + used, sizeof p->text - used, "%s|%s\n", where ? where : "-", text);
    p->n++;
}

static void clear_pw_env(void)
{
    const char *names[] = {"PW_KAFKA_BOOTSTRAP_SERVERS", "PW_KAFKA_GROUP_ID", "PW_WORKER_INFLIGHT_MAX",
                           "PW_WORKER_NOPE", "PW_AZURE_CLIENT_SECRET", "PW_WORKER_REPLY_TOPIC",
                           "PW_KAFKA_SSL_KEY_PASSWORD", "PW_BIN_DIR", "PW_WORKER_LOG_LEVEL",
                           "PW_KAFKA_CLIENT_ID"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
}

/* PW_<KEY>: '.' as '_', '_' as '__', '-' as '___', upper case; both directions agree. */
static void test_env_names(void **state)
{
    (void)state;
    char name[128];
    assert_int_equal(pw_config_env_name("worker.inflight.max", name, sizeof name), 0);
    assert_string_equal(name, "PW_WORKER_INFLIGHT_MAX");
    assert_int_equal(pw_config_env_name("kafka.bootstrap.servers", name, sizeof name), 0);
    assert_string_equal(name, "PW_KAFKA_BOOTSTRAP_SERVERS");
    assert_int_equal(pw_config_env_name("kafka.a_b-c.d", name, sizeof name), 0);
    assert_string_equal(name, "PW_KAFKA_A__B___C_D");
    assert_int_equal(pw_config_env_name("worker.inflight.max", name, 8), -1);
}

/* Every key from the environment, the file optional; PW_* wins over the file; names outside
 * PW_KAFKA_/PW_WORKER_/PW_AZURE_ are not configuration. */
static void test_env_keys(void **state)
{
    (void)state;
    clear_env();
    clear_pw_env();
    setenv("PW_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092", 1);
    setenv("PW_KAFKA_GROUP_ID", "env-group", 1);
    setenv("PW_WORKER_INFLIGHT_MAX", "7", 1);
    setenv("PW_AZURE_CLIENT_SECRET", "env-secret", 1);
    setenv("PW_BIN_DIR", "/not/configuration", 1);
    setenv("AZURE_TENANT_ID", "t", 1);
    setenv("AZURE_CLIENT_ID", "c", 1);
    pw_config cfg;
    char err[256] = "";
    /* no file at all */
    assert_int_equal(pw_config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(pw_config_kafka_get(&cfg, "bootstrap.servers"), "k1:9092,k2:9092");
    assert_string_equal(pw_config_kafka_get(&cfg, "group.id"), "env-group");
    assert_int_equal(cfg.max_in_flight, 7);
    assert_string_equal(cfg.azure.client_secret, "env-secret");
    assert_int_equal(pw_config_require(&cfg, err, sizeof err), 0);
    assert_string_equal(pw_config_origin(&cfg, "worker.inflight.max"),
                        "environment PW_WORKER_INFLIGHT_MAX");
    pw_config_free(&cfg);
    /* over a file: the environment wins, the file fills the rest */
    assert_int_equal(load_text(&cfg, "worker.inflight.max=3\nkafka.group.id=file-group\n"
                                     "worker.uncommitted.max=50\n",
                               err, sizeof err),
                     0);
    assert_int_equal(cfg.max_in_flight, 7);
    assert_string_equal(pw_config_kafka_get(&cfg, "group.id"), "env-group");
    assert_int_equal(cfg.max_uncommitted, 50);
    char where[128];
    snprintf(where, sizeof where, "%s:3", tmp_path);
    assert_string_equal(pw_config_origin(&cfg, "worker.uncommitted.max"), where);
    pw_config_free(&cfg);
    clear_env();
    clear_pw_env();
}

/* A bad variable fails like a bad line, naming the variable; a secret's value never shows. */
static void test_env_errors(void **state)
{
    (void)state;
    clear_env();
    clear_pw_env();
    pw_config cfg;
    char err[256] = "";
    setenv("PW_WORKER_NOPE", "1", 1);
    assert_int_equal(pw_config_load(&cfg, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "PW_WORKER_NOPE"));
    assert_non_null(strstr(err, "worker.nope"));
    unsetenv("PW_WORKER_NOPE");
    setenv("PW_WORKER_INFLIGHT_MAX", "lots", 1);
    assert_int_equal(pw_config_load(&cfg, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "environment PW_WORKER_INFLIGHT_MAX: worker.inflight.max"));
    unsetenv("PW_WORKER_INFLIGHT_MAX");
    setenv("PW_KAFKA_SSL_KEY_PASSWORD", "hunter2", 1);
    setenv("PW_KAFKA_CLIENT_ID", "", 1); /* librdkafka takes an empty client.id */
    assert_int_equal(pw_config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(pw_config_kafka_get(&cfg, "ssl.key.password"), "hunter2");
    pw_config_free(&cfg);
    clear_pw_env();
}

/* pw_config_load_report lists every problem, each with FILE:LINE (or the variable). */
static void test_every_problem_reported(void **state)
{
    (void)state;
    clear_env();
    clear_pw_env();
    setenv("PW_WORKER_LOG_LEVEL", "chatty", 1);
    const char *p = write_file("kafka.bootstrap.servers=x:1\n"
                               "worker.inflight.max=lots\n"
                               "# a comment\n"
                               "worker.nonsense=1\n"
                               "kafka.acks=sometimes\n"
                               "no equals sign\n"
                               "azure.ca.file=/nonexistent/ca.pem\n"
                               "worker.reply.topic=adx.policy.requests\n");
    pw_config cfg;
    problems got = {"", 0};
    int n = pw_config_load_report(&cfg, p, collect, &got);
    n += pw_config_require_report(&cfg, collect, &got);
    char want[6][160];
    snprintf(want[0], sizeof want[0], "%s:2|worker.inflight.max: not a number", p);
    snprintf(want[1], sizeof want[1], "%s:4|worker.nonsense: unknown", p);
    snprintf(want[2], sizeof want[2], "%s:5|kafka.acks: ", p);
    snprintf(want[3], sizeof want[3], "%s:6|expected key=value", p);
    snprintf(want[4], sizeof want[4], "%s:7|azure.ca.file: /nonexistent/ca.pem", p);
    snprintf(want[5], sizeof want[5], "%s:8|worker.reply.topic: \"adx.policy.requests\" is also", p);
    for (size_t i = 0; i < 6; i++)
        if (!strstr(got.text, want[i])) fail_msg("missing \"%s\" in:\n%s", want[i], got.text);
    if (!strstr(got.text, "environment PW_WORKER_LOG_LEVEL|worker.log.level: expected"))
        fail_msg("no PW_WORKER_LOG_LEVEL problem in:\n%s", got.text);
    if (!strstr(got.text, "-|kafka.group.id: required") ||
        !strstr(got.text, "-|azure.credential=auto: no credential is configured"))
        fail_msg("required keys not all reported:\n%s", got.text);
    assert_int_equal(n, got.n);
    assert_true(n >= 8); /* (the credential is one problem: what auto found missing) */
    /* what could be loaded was: the file's good line */
    assert_string_equal(pw_config_kafka_get(&cfg, "bootstrap.servers"), "x:1");
    pw_config_free(&cfg);
    unlink(p);
    clear_pw_env();
}

/* From the build tree's bin/ (where this test runs) the default schemas are the source tree's. */
static void test_default_schemas_dir(void **state)
{
    (void)state;
    clear_env();
    clear_pw_env();
    pw_config cfg;
    char err[256] = "";
    assert_int_equal(pw_config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.schemas_dir, PW_SOURCE_DIR "/schemas");
    pw_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_errors_name_the_key),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_ca_file_checked),
        cmocka_unit_test(test_secret_not_echoed),
        cmocka_unit_test(test_env_fills_unset),
        cmocka_unit_test(test_require_kafka),
        cmocka_unit_test(test_kind_lists),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_example_config_loads),
        cmocka_unit_test(test_env_names),
        cmocka_unit_test(test_env_keys),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_every_problem_reported),
        cmocka_unit_test(test_default_schemas_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
