/* test_azure_client.c: pw_azure against the real azure-sim (forked on a free loopback port):
 * tokens, ARM GET, ARM PATCH LRO, Kusto mgmt, injected 429/503, token refresh, TLS, deadline,
 * pacing (ARM buckets, Kusto concurrency, 429 storms, busy answers) and per-host pools. */
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim_proc.h"

#include "pw/azure.h"
#include "pw/log.h"
#include "pw/loop.h"

#define SUB "22222222-2222-2222-2222-222222222222"
#define DB_PATH                                                                                    \
    "/subscriptions/" SUB "/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/"             \
    "mykustocluster/databases/mykustodatabase"
#define CLUSTER "https://mykustocluster.westus.kusto.windows.net"
#define SECRET "local-demo-secret"

static test_sim sim;

/* ---- azure-sim process ---- */

static json_t *sim_admin(const char *method, const char *path, const char *body)
{
    json_t *j = test_sim_admin_ok(&sim, method, path, body);
    assert_non_null(j);
    return j;
}

static void sim_admin_do(const char *method, const char *path, const char *body)
{
    json_decref(sim_admin(method, path, body));
}

/* Requests azure-sim logged for host since the log was last cleared. */
static size_t sim_count(const char *host, const char *path_prefix)
{
    json_t *j = sim_admin("GET", "/_sim/requests", NULL);
    size_t i, count = 0;
    json_t *r;
    json_array_foreach(json_object_get(j, "requests"), i, r)
    {
        const char *h = json_string_value(json_object_get(r, "host"));
        const char *p = json_string_value(json_object_get(r, "path"));
        if (h && !strcmp(h, host) &&
            (!path_prefix || (p && !strncmp(p, path_prefix, strlen(path_prefix)))))
            count++;
    }
    json_decref(j);
    return count;
}

/* Every logged header and body must be free of the client secret (the sim logs AAD bodies). */

static void sim_reset(void)
{
    sim_admin_do("DELETE", "/_sim/faults", NULL);
    sim_admin_do("DELETE", "/_sim/requests", NULL);
    sim_admin_do("PATCH", "/_sim/settings",
                 "{\"lroDurationMs\": 1500, \"lroRetryAfterSeconds\": 1, "
                 "\"tokenLifetimeSeconds\": 3600, \"armWriteBucket\": 200, "
                 "\"armWriteRefillPerSecond\": 10, \"armReadBucket\": 250, "
                 "\"armReadRefillPerSecond\": 25, \"kustoMaxConcurrent\": 8, "
                 "\"kustoCommandLatencyMs\": 0}");
}

/* ---- client side ---- */

typedef struct outcome {
    int done;
    pw_azure_result res;
    json_t *body;
    unsigned progress_calls;
    char last_status[64];
    int last_percent;
    unsigned queued_calls; /* on_queued reports */
    char queued[64];       /* the last one's text */
    uint64_t done_at;      /* pw_loop_now_ms when on_done ran (ordering checks only) */
} outcome;

static pw_loop *done_clock; /* the loop whose clock stamps done_at */

static void on_done(void *ctx, const pw_azure_result *r)
{
    outcome *o = ctx;
    assert_int_equal(o->done, 0); /* exactly once */
    o->done = 1;
    o->done_at = done_clock ? pw_loop_now_ms(done_clock) : 0;
    o->res = *r;
    o->res.body = NULL;
    o->body = r->body ? json_incref(r->body) : NULL;
}

static void on_progress(void *ctx, const pw_azure_progress *p)
{
    outcome *o = ctx;
    o->progress_calls++;
    snprintf(o->last_status, sizeof o->last_status, "%s", p->lro_status ? p->lro_status : "");
    o->last_percent = p->percent_complete;
}

static void on_queued(void *ctx, const pw_azure_progress *p)
{
    outcome *o = ctx;
    assert_null(p->lro_status);
    assert_non_null(p->queued);
    assert_true(p->capacity > 0);
    o->queued_calls++;
    snprintf(o->queued, sizeof o->queued, "%s", p->queued);
}

/* Applied by the fixtures after the defaults when set (pacing and pool settings). */
static void (*fixture_tune)(pw_azure_config *cfg);

typedef struct fixture {
    pw_loop *loop;
    pw_azure *az;
} fixture;

static void fixture_open(fixture *f, const char *ca, long token_margin_ms)
{
    char err[256];
    f->loop = pw_loop_new(err, sizeof err);
    assert_non_null(f->loop);
    pw_azure_config cfg;
    pw_azure_config_defaults(&cfg);
    test_sim_identity(&sim, &cfg);
    cfg.ca_file = ca;
    cfg.backoff_base_ms = 50;
    cfg.backoff_max_ms = 400;
    cfg.lro_poll_default_ms = 200;
    cfg.max_attempts = 6;
    cfg.token_refresh_margin_ms = token_margin_ms;
    if (fixture_tune) fixture_tune(&cfg);
    done_clock = f->loop;
    f->az = pw_azure_new(f->loop, &cfg, err, sizeof err);
    if (!f->az) fail_msg("pw_azure_new: %s", err);
}

static void fixture_close(fixture *f)
{
    done_clock = NULL;
    pw_azure_free(f->az);
    pw_loop_free(f->loop);
}

/* Runs the loop until o is done (generous bound for a slow shared machine). */
static void wait_done(fixture *f, outcome *o)
{
    uint64_t start = pw_loop_now_ms(f->loop);
    while (!o->done && pw_loop_now_ms(f->loop) - start < 120000)
        assert_int_equal(pw_loop_run_once(f->loop, 100), 0);
    assert_true(o->done);
}

static void outcome_clear(outcome *o)
{
    json_decref(o->body);
    memset(o, 0, sizeof *o);
}

static void arm(fixture *f, outcome *o, const char *method, const char *path, json_t *body,
                uint64_t deadline_ms)
{
    char err[256];
    pw_azure_call call = {.request_id = "itest",
                          .deadline_ms = deadline_ms,
                          .on_progress = on_progress,
                          .on_done = on_done,
                          .ctx = o};
    assert_int_equal(pw_azure_arm(f->az, method, path, body, &call, err, sizeof err), 0);
    assert_int_equal(o->done, 0); /* never synchronous */
    wait_done(f, o);
}

static void test_arm_get_and_token_cache(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome o = {0};
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    if (!o.res.ok) fail_msg("GET failed: %s %s", o.res.code, o.res.message);
    assert_int_equal(o.res.http_status, 200);
    assert_int_equal(o.res.attempts, 1);
    assert_true(o.res.request_id[0] != '\0');
    assert_true(o.res.correlation_id[0] != '\0');
    assert_int_equal(strlen(o.res.client_request_id), 36);
    assert_non_null(json_object_get(o.body, "properties"));
    outcome_clear(&o);
    /* Two calls started together share the cached token: still one AAD request. */
    outcome a = {0}, b = {0};
    char err[256];
    pw_azure_call ca = {.on_done = on_done, .ctx = &a}, cb = {.on_done = on_done, .ctx = &b};
    assert_int_equal(pw_azure_arm(f.az, "GET", DB_PATH, NULL, &ca, err, sizeof err), 0);
    assert_int_equal(pw_azure_arm(f.az, "GET", DB_PATH, NULL, &cb, err, sizeof err), 0);
    assert_int_equal(pw_azure_in_flight(f.az), 2);
    wait_done(&f, &a);
    wait_done(&f, &b);
    assert_true(a.res.ok && b.res.ok);
    assert_int_equal(sim_count("login.microsoftonline.com", NULL), 1);
    assert_int_equal(sim_count("management.azure.com", "/subscriptions/"), 3);
    outcome_clear(&a);
    outcome_clear(&b);
    fixture_close(&f);
}

static void test_shared_token_fetch(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    enum { N = 5 };
    outcome o[N];
    memset(o, 0, sizeof o);
    char err[256];
    for (int i = 0; i < N; i++) {
        pw_azure_call c = {.on_done = on_done, .ctx = &o[i]};
        assert_int_equal(pw_azure_arm(f.az, "GET", DB_PATH, NULL, &c, err, sizeof err), 0);
    }
    for (int i = 0; i < N; i++) {
        wait_done(&f, &o[i]);
        assert_true(o[i].res.ok);
        outcome_clear(&o[i]);
    }
    assert_int_equal(sim_count("login.microsoftonline.com", NULL), 1);
    fixture_close(&f);
}

static void test_arm_patch_lro(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome o = {0};
    json_t *body =
        json_pack("{s:s,s:{s:s}}", "kind", "ReadWrite", "properties", "softDeletePeriod", "P10D");
    arm(&f, &o, "PATCH", DB_PATH, body, 0);
    json_decref(body);
    if (!o.res.ok) fail_msg("PATCH failed: %s %s", o.res.code, o.res.message);
    assert_true(o.progress_calls >= 1);
    assert_string_equal(o.last_status, "Succeeded");
    json_t *props = json_object_get(o.body, "properties");
    assert_string_equal(json_string_value(json_object_get(props, "softDeletePeriod")), "P10D");
    assert_int_equal(o.res.attempts, 1);
    /* The poll went to the operation URL on the ARM host, then a final GET of the database. */
    assert_true(sim_count("management.azure.com", "/subscriptions/" SUB "/providers/") >= 1);
    outcome_clear(&o);
    fixture_close(&f);
}

static void test_kusto_show(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome o = {0};
    char err[256];
    pw_azure_call call = {.request_id = "itest-kusto", .on_done = on_done, .ctx = &o};
    assert_int_equal(pw_azure_kusto_mgmt(f.az, CLUSTER "/", "mykustodatabase",
                                         ".show database ['mykustodatabase'] policy retention",
                                         &call, err, sizeof err),
                     0);
    wait_done(&f, &o);
    if (!o.res.ok)
        fail_msg("kusto failed: %s %s (%s)", o.res.code, o.res.message, o.res.azure_code);
    assert_true(json_is_array(json_object_get(o.body, "Tables")));
    assert_true(strncmp(o.res.client_request_id, "PW.execute;", 11) == 0);
    assert_true(o.res.request_id[0] != '\0'); /* x-ms-activity-id */
    assert_int_equal(sim_count("mykustocluster.westus.kusto.windows.net", "/v1/rest/mgmt"), 1);
    outcome_clear(&o);
    /* A permanent Kusto error is not retried and keeps Azure's code. */
    pw_azure_call call2 = {.on_done = on_done, .ctx = &o};
    assert_int_equal(pw_azure_kusto_mgmt(f.az, CLUSTER, "mykustodatabase",
                                         ".show table ['NoSuchTable'] policy caching", &call2, err,
                                         sizeof err),
                     0);
    wait_done(&f, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.attempts, 1);
    assert_true(o.res.azure_code[0] != '\0');
    outcome_clear(&o);
    fixture_close(&f);
}

static void test_throttle_then_recover(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 2, \"status\": 429, \"host\": "
                 "\"management.azure.com\", \"retryAfter\": 0}, {\"count\": 1, \"status\": 503, "
                 "\"host\": \"management.azure.com\", \"retryAfter\": 0}]}");
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome o = {0};
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    if (!o.res.ok) fail_msg("GET failed: %s %s", o.res.code, o.res.message);
    assert_int_equal(o.res.attempts, 4);
    outcome_clear(&o);
    /* Throttled for longer than max_attempts: Throttled, retryable. */
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 50, \"status\": 429, \"host\": "
                 "\"management.azure.com\", \"retryAfter\": 0}]}");
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_THROTTLED);
    assert_true(o.res.retryable);
    assert_int_equal(o.res.attempts, 6);
    assert_int_equal(o.res.http_status, 429);
    outcome_clear(&o);
    /* A 404 is not retried. */
    sim_admin_do("DELETE", "/_sim/faults", NULL);
    arm(&f, &o, "GET",
        "/subscriptions/" SUB "/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/"
        "mykustocluster/databases/nosuchdb",
        NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_NOT_FOUND);
    assert_int_equal(o.res.attempts, 1);
    outcome_clear(&o);
    fixture_close(&f);
}

static void sleep_loop(fixture *f, uint64_t ms)
{
    uint64_t start = pw_loop_now_ms(f->loop);
    while (pw_loop_now_ms(f->loop) - start < ms)
        pw_loop_run_once(f->loop, 50);
}

static void test_token_refresh(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PATCH", "/_sim/settings", "{\"tokenLifetimeSeconds\": 2}");
    fixture f;
    fixture_open(&f, sim.ca_file, 300000); /* margin shrinks to half the 2 s lifetime */
    outcome o = {0};
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_true(o.res.ok);
    outcome_clear(&o);
    sleep_loop(&f, 2500);
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    if (!o.res.ok) fail_msg("GET after expiry failed: %s %s", o.res.code, o.res.message);
    outcome_clear(&o);
    assert_int_equal(sim_count("login.microsoftonline.com", NULL), 2);
    fixture_close(&f);

    /* With no margin the cached token expires at the server first: the 401 refreshes once. */
    sim_admin_do("DELETE", "/_sim/requests", NULL);
    fixture_open(&f, sim.ca_file, 0);
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_true(o.res.ok);
    outcome_clear(&o);
    sleep_loop(&f, 2200); /* token_refresh_margin 0 -> half-life margin = 1 s: refreshed anyway */
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_true(o.res.ok);
    outcome_clear(&o);
    fixture_close(&f);
}

/* AAD down while a cached token is due for refresh but still valid: calls keep using it
 * (the refresh goes on in the background) instead of failing. */
static void test_token_outage_keeps_valid_token(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PATCH", "/_sim/settings", "{\"tokenLifetimeSeconds\": 6}");
    fixture f;
    fixture_open(&f, sim.ca_file, 300000); /* margin shrinks to half the 6 s: refresh at 3 s */
    outcome o = {0};
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_true(o.res.ok);
    outcome_clear(&o);
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 100000, \"status\": 503, \"host\": "
                 "\"login.microsoftonline.com\", \"retryAfter\": 0}]}");
    sleep_loop(&f, 3500); /* past the refresh time, well before the expiry */
    for (int i = 0; i < 3; i++) {
        arm(&f, &o, "GET", DB_PATH, NULL, 0);
        if (!o.res.ok) fail_msg("GET %d with a valid token: %s %s", i, o.res.code, o.res.message);
        outcome_clear(&o);
    }
    assert_true(sim_count("login.microsoftonline.com", NULL) >= 2); /* a refresh was tried */
    fixture_close(&f);
    sim_admin_do("DELETE", "/_sim/faults", NULL);
}

/* Token retries are bounded by the waiting calls' deadlines, not by max_attempts: an outage
 * of more attempts than max_attempts (6) fails no call whose deadline is far off.  A call
 * without a deadline still gives up after max_attempts; one whose deadline passes first
 * fails then, naming the cause. */
static void test_token_outage_bounded_by_deadline(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 10, \"status\": 503, \"host\": "
                 "\"login.microsoftonline.com\", \"retryAfter\": 0}]}");
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome o = {0};
    arm(&f, &o, "GET", DB_PATH, NULL, pw_loop_now_ms(f.loop) + 60000);
    if (!o.res.ok) fail_msg("GET through a token outage: %s %s", o.res.code, o.res.message);
    outcome_clear(&o);
    assert_int_equal(sim_count("login.microsoftonline.com", NULL), 11);
    fixture_close(&f);

    sim_reset();
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 10, \"status\": 503, \"host\": "
                 "\"login.microsoftonline.com\", \"retryAfter\": 0}]}");
    fixture_open(&f, sim.ca_file, 300000);
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_UNAVAILABLE);
    assert_int_equal(o.res.attempts, 0);
    outcome_clear(&o);
    assert_int_equal(sim_count("login.microsoftonline.com", NULL), 6);
    fixture_close(&f);

    sim_reset();
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 100000, \"status\": 503, \"host\": "
                 "\"login.microsoftonline.com\", \"retryAfter\": 0}]}");
    fixture_open(&f, sim.ca_file, 300000);
    arm(&f, &o, "GET", DB_PATH, NULL, pw_loop_now_ms(f.loop) + 1500);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_UNAVAILABLE);
    assert_true(o.res.retryable);
    assert_non_null(strstr(o.res.message, "deadline"));
    outcome_clear(&o);
    fixture_close(&f);
    sim_admin_do("DELETE", "/_sim/faults", NULL);
}

static void test_401_refreshes_once(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome o = {0};
    arm(&f, &o, "GET", DB_PATH, NULL, 0); /* caches a token */
    assert_true(o.res.ok);
    outcome_clear(&o);
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 1, \"status\": 401, \"host\": "
                 "\"management.azure.com\"}]}");
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    if (!o.res.ok) fail_msg("GET after 401 failed: %s %s", o.res.code, o.res.message);
    assert_int_equal(o.res.attempts, 2);
    outcome_clear(&o);
    assert_int_equal(sim_count("login.microsoftonline.com", NULL), 2);
    /* Two 401s in a row: AuthenticationFailed, not retried further. */
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 2, \"status\": 401, \"host\": "
                 "\"management.azure.com\"}]}");
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_AUTH);
    assert_int_equal(o.res.attempts, 2);
    outcome_clear(&o);
    fixture_close(&f);
}

static void test_untrusted_ca(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, NULL, 300000); /* system store: azure-sim's CA is not in it */
    outcome o = {0};
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_TLS);
    assert_false(o.res.retryable);
    assert_true(o.res.message[0] != '\0');
    fprintf(stderr, "TLS message: %s\n", o.res.message);
    /* The message says which host failed and what it was checked against. */
    assert_non_null(strstr(o.res.message, "login.microsoftonline.com"));
    assert_non_null(strstr(o.res.message, "system trust store"));
    outcome_clear(&o);
    fixture_close(&f);
    assert_int_equal(sim_count("login.microsoftonline.com", NULL), 0);
    /* A configured CA file that does not hold azure-sim's CA: the file is named. */
    const char *other_ca = "/etc/ssl/certs/ca-certificates.crt";
    if (access(other_ca, R_OK) != 0) return;
    fixture_open(&f, other_ca, 300000);
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_TLS);
    fprintf(stderr, "TLS message: %s\n", o.res.message);
    assert_non_null(strstr(o.res.message, "login.microsoftonline.com"));
    assert_non_null(strstr(o.res.message, other_ca));
    outcome_clear(&o);
    fixture_close(&f);
}

/* A token whose text would leave the Authorization header (CR/LF: an extra header) or is
 * no RFC 6750 b64token is refused: AzureProtocolError, and nothing is sent with it. */
static void test_token_bad_characters_refused(void **state)
{
    (void)state;
    static const char *const appends[] = {"\\r\\nX-Evil: 1", " x", "\\\"", "\\u00e9"};
    for (size_t i = 0; i < sizeof appends / sizeof appends[0]; i++) {
        sim_reset();
        char faults[128];
        snprintf(faults, sizeof faults, "{\"tokenAppend\": \"%s\"}", appends[i]);
        sim_admin_do("PUT", "/_sim/faults", faults);
        fixture f;
        fixture_open(&f, sim.ca_file, 300000);
        outcome o = {0};
        arm(&f, &o, "GET", DB_PATH, NULL, 0);
        if (o.res.ok || strcmp(o.res.code, PW_AZ_CODE_PROTOCOL) != 0)
            fail_msg("token + %s: %s %s", appends[i], o.res.ok ? "ok" : o.res.code, o.res.message);
        assert_int_equal(o.res.attempts, 0);
        assert_int_equal(sim_count("management.azure.com", NULL), 0);
        outcome_clear(&o);
        fixture_close(&f);
    }
    sim_admin_do("DELETE", "/_sim/faults", NULL);
}

/* Endpoints and proxies that echo the request in an error: the token endpoint repeating the
 * form body (client_secret=...), ARM repeating the Authorization header (the bearer JWT).
 * Neither reaches the result (hence the reply) nor a log line (checked at the end of main). */
static void test_echoed_secrets_redacted(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 1, \"status\": 400, \"host\": "
                 "\"login.microsoftonline.com\", \"echo\": \"body\"}]}");
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome o = {0};
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_AUTH);
    fprintf(stderr, "echoed form: %s\n", o.res.message);
    assert_non_null(strstr(o.res.message, "the request body was")); /* the echo is there */
    assert_null(strstr(o.res.message, SECRET));
    assert_non_null(strstr(o.res.message, "client_secret=***"));
    outcome_clear(&o);

    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 1, \"status\": 400, \"host\": "
                 "\"management.azure.com\", \"echo\": \"authorization\"}]}");
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_BAD_REQUEST);
    fprintf(stderr, "echoed header: %s\n", o.res.message);
    assert_non_null(strstr(o.res.message, "Authorization header was"));
    assert_null(strstr(o.res.message, "eyJ"));
    assert_non_null(strstr(o.res.message, "Bearer ***"));
    assert_null(strstr(o.res.azure_code, "eyJ"));
    outcome_clear(&o);
    fixture_close(&f);
    sim_admin_do("DELETE", "/_sim/faults", NULL);
}

static void test_deadline(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PATCH", "/_sim/settings", "{\"lroDurationMs\": 60000}");
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome o = {0};
    json_t *body =
        json_pack("{s:s,s:{s:s}}", "kind", "ReadWrite", "properties", "hotCachePeriod", "P5D");
    uint64_t deadline = pw_loop_now_ms(f.loop) + 3000;
    arm(&f, &o, "PATCH", DB_PATH, body, deadline);
    json_decref(body);
    assert_false(o.res.ok);
    /* ARM accepted the PATCH: not a failure but an unknown outcome, naming the operation */
    assert_string_equal(o.res.code, PW_AZ_CODE_OUTCOME_UNKNOWN);
    assert_true(o.res.retryable);
    assert_non_null(strstr(o.res.operation_url, "/operationResults/"));
    assert_non_null(strstr(o.res.message, "/operationResults/"));
    outcome_clear(&o);
    /* Unavailable past the deadline: the last cause is named. */
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 1000, \"status\": 503, \"host\": "
                 "\"management.azure.com\", \"retryAfter\": 1}]}");
    arm(&f, &o, "GET", DB_PATH, NULL, pw_loop_now_ms(f.loop) + 1500);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_UNAVAILABLE);
    assert_true(o.res.retryable);
    assert_true(o.res.attempts < 6); /* cut by the deadline, not by max_attempts */
    assert_non_null(strstr(o.res.message, "deadline"));
    outcome_clear(&o);
    fixture_close(&f);
}

/* Starts an ARM PATCH and runs the loop until its first LRO poll was answered. */
static void start_patch_until_polled(fixture *f, outcome *o, const char *period,
                                     uint64_t deadline_ms)
{
    char err[256];
    json_t *body =
        json_pack("{s:s,s:{s:s}}", "kind", "ReadWrite", "properties", "softDeletePeriod", period);
    pw_azure_call call = {.request_id = "itest",
                          .deadline_ms = deadline_ms,
                          .on_progress = on_progress,
                          .on_done = on_done,
                          .ctx = o};
    assert_int_equal(pw_azure_arm(f->az, "PATCH", DB_PATH, body, &call, err, sizeof err), 0);
    json_decref(body);
    uint64_t start = pw_loop_now_ms(f->loop);
    while (!o->done && o->progress_calls == 0 && pw_loop_now_ms(f->loop) - start < 120000)
        assert_int_equal(pw_loop_run_once(f->loop, 100), 0);
    assert_false(o->done);
    assert_true(o->progress_calls >= 1);
}

/* Once ARM accepted a write, polling problems never turn into a plain failure: a status URL
 * failing more often than max_attempts (6) is polled on until the operation is done; a
 * token outage while polling ends, at the deadline, in OutcomeUnknown with the URL. */
static void test_lro_polling_after_accept(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome o = {0};
    start_patch_until_polled(&f, &o, "P11D", pw_loop_now_ms(f.loop) + 60000);
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 8, \"status\": 503, \"host\": "
                 "\"management.azure.com\", \"retryAfter\": 0}]}");
    wait_done(&f, &o);
    if (!o.res.ok) fail_msg("PATCH through failing polls: %s %s", o.res.code, o.res.message);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o.body, "properties"),
                                                          "softDeletePeriod")),
                        "P11D");
    outcome_clear(&o);

    /* The status URL answers 401 (token revoked) and AAD is down until after the deadline. */
    sim_admin_do("PATCH", "/_sim/settings", "{\"lroDurationMs\": 60000}");
    start_patch_until_polled(&f, &o, "P12D", pw_loop_now_ms(f.loop) + 4000);
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 1, \"status\": 401, \"host\": "
                 "\"management.azure.com\"}, {\"count\": 100000, \"status\": 503, \"host\": "
                 "\"login.microsoftonline.com\", \"retryAfter\": 0}]}");
    wait_done(&f, &o);
    assert_false(o.res.ok);
    if (strcmp(o.res.code, PW_AZ_CODE_OUTCOME_UNKNOWN) != 0)
        fail_msg("token outage while polling: %s %s", o.res.code, o.res.message);
    assert_true(o.res.retryable);
    assert_non_null(strstr(o.res.operation_url, "/operationResults/"));
    assert_non_null(strstr(o.res.message, "/operationResults/"));
    fprintf(stderr, "unknown outcome: %s\n", o.res.message);
    outcome_clear(&o);
    fixture_close(&f);
    sim_admin_do("DELETE", "/_sim/faults", NULL);
}

/* A call whose deadline has already passed when it would be sent (an operation's change
 * issued after its read used up the time) sends nothing: with a cached token, and with one
 * still to fetch. */
static void test_deadline_passed_sends_nothing(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    for (int cached = 0; cached < 2; cached++) {
        if (cached) { /* warm the ARM token */
            outcome w = {0};
            arm(&f, &w, "GET", DB_PATH, NULL, 0);
            assert_true(w.res.ok);
            outcome_clear(&w);
        }
        sim_admin_do("DELETE", "/_sim/requests", NULL);
        outcome o = {0};
        json_t *body =
            json_pack("{s:s,s:{s:s}}", "kind", "ReadWrite", "properties", "hotCachePeriod", "P9D");
        arm(&f, &o, "PATCH", DB_PATH, body, pw_loop_now_ms(f.loop));
        json_decref(body);
        assert_false(o.res.ok);
        assert_string_equal(o.res.code, PW_AZ_CODE_DEADLINE);
        assert_int_equal(o.res.attempts, 0);
        outcome_clear(&o);
        /* let anything curl might still have queued go out before looking */
        sleep_loop(&f, 300);
        assert_int_equal(sim_count("management.azure.com", NULL), 0);
    }
    fixture_close(&f);
}

/* ---- a one-answer HTTPS server posing as management.azure.com (the sim's server cert) ----
 * Used where azure-sim cannot misbehave on purpose: a foreign LRO URL, an oversized body. */

typedef struct fake_srv {
    int lfd, port;
    pthread_t thread;
    volatile int stop;
    const char *answer; /* full HTTP response */
    size_t answer_len;
    const char *const *answers; /* when set: one per request, the last one repeats */
    size_t n_answers;
    int requests;
    SSL_CTX *ctx;
} fake_srv;

static void *fake_run(void *arg)
{
    fake_srv *f = arg;
    while (!f->stop) {
        struct pollfd p = {.fd = f->lfd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0) continue;
        SSL *ssl = SSL_new(f->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            char req[8192];
            size_t n = 0;
            while (n + 1 < sizeof req) {
                int r = SSL_read(ssl, req + n, (int)(sizeof req - 1 - n));
                if (r <= 0) break;
                n += (size_t)r;
                req[n] = '\0';
                char *end = strstr(req, "\r\n\r\n");
                if (end) {
                    const char *cl = strcasestr(req, "Content-Length:");
                    size_t want = cl ? (size_t)atol(cl + 15) : 0;
                    if (n - (size_t)(end + 4 - req) >= want) break;
                }
            }
            int k = __atomic_fetch_add(&f->requests, 1, __ATOMIC_SEQ_CST);
            const char *ans = f->answer;
            size_t ans_len = f->answer_len;
            if (f->answers) {
                ans = f->answers[(size_t)k < f->n_answers ? (size_t)k : f->n_answers - 1];
                ans_len = strlen(ans);
            }
            size_t off = 0;
            while (off < ans_len) {
                int w = SSL_write(ssl, ans + off, (int)(ans_len - off));
                if (w <= 0) break;
                off += (size_t)w;
            }
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

static void fake_start(fake_srv *f, const char *answer, size_t len)
{
    memset(f, 0, sizeof *f);
    f->answer = answer;
    f->answer_len = len;
    f->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(f->ctx);
    char cert[320], key[320];
    snprintf(cert, sizeof cert, "%s/server.pem", sim.dir);
    snprintf(key, sizeof key, "%s/server-key.pem", sim.dir);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(f->ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(f->ctx, key, SSL_FILETYPE_PEM), 1);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    socklen_t al = sizeof a;
    getsockname(f->lfd, (struct sockaddr *)&a, &al);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

static void fake_stop(fake_srv *f)
{
    f->stop = 1;
    pthread_join(f->thread, NULL);
    close(f->lfd);
    SSL_CTX_free(f->ctx);
}

/* ARM goes to the fake server; AAD to azure-sim, or to the fake server too with aad_fake. */
static void fixture_open_fake_aad(fixture *fx, const fake_srv *f, size_t max_body, int aad_fake)
{
    static char aad_to[80], arm_to[80], kusto_to[120];
    static const char *list[3];
    const char *colon = strrchr(sim.connect_to, ':');
    if (aad_fake)
        snprintf(aad_to, sizeof aad_to, "login.microsoftonline.com::127.0.0.1:%d", f->port);
    else
        snprintf(aad_to, sizeof aad_to, "login.microsoftonline.com::127.0.0.1:%s", colon + 1);
    snprintf(arm_to, sizeof arm_to, "management.azure.com::127.0.0.1:%d", f->port);
    snprintf(kusto_to, sizeof kusto_to, "mykustocluster.westus.kusto.windows.net::127.0.0.1:%d",
             f->port);
    list[0] = aad_to;
    list[1] = arm_to;
    list[2] = kusto_to;
    char err[256];
    fx->loop = pw_loop_new(err, sizeof err);
    pw_azure_config cfg;
    pw_azure_config_defaults(&cfg);
    test_sim_identity(&sim, &cfg);
    cfg.connect_to = list;
    cfg.connect_to_count = 3;
    cfg.max_attempts = 2;
    cfg.backoff_base_ms = 10;
    if (max_body) cfg.max_response_bytes = max_body;
    if (fixture_tune) fixture_tune(&cfg);
    done_clock = fx->loop;
    fx->az = pw_azure_new(fx->loop, &cfg, err, sizeof err);
    if (!fx->az) fail_msg("pw_azure_new: %s", err);
}

static void fixture_open_fake(fixture *fx, const fake_srv *f, size_t max_body)
{
    fixture_open_fake_aad(fx, f, max_body, 0);
}

static void test_lro_foreign_host_refused(void **state)
{
    (void)state;
    sim_reset();
    static const char *const answers[] = {
        "HTTP/1.1 202 Accepted\r\nAzure-AsyncOperation: https://evil.example.com/op?x=1\r\n"
        "Retry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 202 Accepted\r\nLocation: http://management.azure.com/op?x=1\r\n"
        "Retry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 202 Accepted\r\nLocation: https://management.azure.com:8443/op\r\n"
        "Retry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        /* host tricks: a longer host, user-info, a backslash, a trailing dot */
        "HTTP/1.1 202 Accepted\r\nAzure-AsyncOperation: "
        "https://management.azure.com.evil.example.com/op\r\n"
        "Retry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 202 Accepted\r\nAzure-AsyncOperation: "
        "https://management.azure.com@evil.example.com/op\r\n"
        "Retry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 202 Accepted\r\nLocation: https://evil.example.com\\@management.azure.com/op\r\n"
        "Retry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 202 Accepted\r\nLocation: https://management.azure.com./op\r\n"
        "Retry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 202 Accepted\r\nLocation: /subscriptions/x/operationResults/1\r\n"
        "Retry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        fake_srv f;
        fake_start(&f, answers[i], strlen(answers[i]));
        fixture fx;
        fixture_open_fake(&fx, &f, 0);
        outcome o = {0};
        json_t *body = json_pack("{s:{s:s}}", "properties", "softDeletePeriod", "P1D");
        arm(&fx, &o, "PATCH", DB_PATH, body, 0);
        json_decref(body);
        assert_false(o.res.ok);
        assert_string_equal(o.res.code, PW_AZ_CODE_PROTOCOL);
        assert_int_equal(o.res.http_status, 202);
        /* Nothing was sent anywhere after the 202: one request reached the fake server. */
        assert_int_equal(__atomic_load_n(&f.requests, __ATOMIC_SEQ_CST), 1);
        outcome_clear(&o);
        fixture_close(&fx);
        fake_stop(&f);
    }
}

/* Location-only LRO (202, 202, 200) then the final GET; and a 429 with an HTTP-date Retry-After. */
static void test_lro_location_and_http_date(void **state)
{
    (void)state;
    sim_reset();
    static const char *const answers[] = {
        "HTTP/1.1 202 Accepted\r\nLocation: https://management.azure.com/op/1?api-version=x\r\n"
        "Retry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 202 Accepted\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: "
        "close\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nx-ms-request-id: final-get\r\nContent-Length: 41\r\nConnection: "
        "close\r\n\r\n{\"properties\":{\"softDeletePeriod\":\"P1D\"}}",
    };
    fake_srv f;
    fake_start(&f, NULL, 0);
    f.answers = answers;
    f.n_answers = 4;
    fixture fx;
    fixture_open_fake(&fx, &f, 0);
    outcome o = {0};
    json_t *body = json_pack("{s:{s:s}}", "properties", "softDeletePeriod", "P1D");
    arm(&fx, &o, "PATCH", DB_PATH, body, 0);
    json_decref(body);
    if (!o.res.ok) fail_msg("PATCH failed: %s %s", o.res.code, o.res.message);
    assert_int_equal(o.progress_calls, 2);
    assert_string_equal(o.last_status, "Succeeded");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o.body, "properties"),
                                                          "softDeletePeriod")),
                        "P1D");
    assert_string_not_equal(o.res.request_id, "final-get"); /* ids of the PATCH, not the GET */
    assert_int_equal(__atomic_load_n(&f.requests, __ATOMIC_SEQ_CST), 4);
    outcome_clear(&o);
    fixture_close(&fx);
    fake_stop(&f);

    /* 429 with Retry-After as an HTTP-date one second ahead, then 200. */
    static char first[256];
    time_t when = time(NULL) + 1;
    struct tm tm;
    gmtime_r(&when, &tm);
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(first, sizeof first,
             "HTTP/1.1 429 Too Many Requests\r\nRetry-After: %s\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n",
             date);
    static const char *answers2[2];
    answers2[0] = first;
    answers2[1] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    fake_start(&f, NULL, 0);
    f.answers = answers2;
    f.n_answers = 2;
    fixture_open_fake(&fx, &f, 0);
    arm(&fx, &o, "GET", DB_PATH, NULL, 0);
    assert_true(o.res.ok);
    assert_int_equal(o.res.attempts, 2);
    outcome_clear(&o);
    fixture_close(&fx);
    fake_stop(&f);
}

/* A token answer with an absurd expires_in (integer or string) is used, capped, without
 * arithmetic overflow (UBSan aborts on one), and cached for the next call. */
static void test_token_absurd_lifetime(void **state)
{
    (void)state;
    const char *lifetimes[] = {"9223372036854775807", "\"99999999999999999999999\""};
    for (size_t k = 0; k < 2; k++) {
        static char token[512];
        char body[300];
        int n = snprintf(body, sizeof body,
                         "{\"token_type\":\"Bearer\",\"expires_in\":%s,\"access_token\":\"t0k\"}",
                         lifetimes[k]);
        snprintf(token, sizeof token,
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 "Connection: close\r\n\r\n%s",
                 n, body);
        static const char *answers[2];
        answers[0] = token;
        answers[1] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        fake_srv f;
        fake_start(&f, NULL, 0);
        f.answers = answers;
        f.n_answers = 2;
        fixture fx;
        fixture_open_fake_aad(&fx, &f, 0, 1);
        for (int call = 0; call < 2; call++) {
            outcome o = {0};
            arm(&fx, &o, "GET", DB_PATH, NULL, 0);
            if (!o.res.ok) fail_msg("call %d: %s %s", call, o.res.code, o.res.message);
            outcome_clear(&o);
        }
        /* one token fetch, two ARM calls: the token was cached */
        assert_int_equal(__atomic_load_n(&f.requests, __ATOMIC_SEQ_CST), 3);
        fixture_close(&fx);
        fake_stop(&f);
    }
}

static void test_response_too_large(void **state)
{
    (void)state;
    sim_reset();
    static char answer[70000];
    int n = snprintf(answer, sizeof answer,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     "%d\r\nConnection: close\r\n\r\n{\"pad\":\"",
                     65536);
    size_t len = (size_t)n;
    size_t body_start = len - 8;
    while (len - body_start < 65536 - 2)
        answer[len++] = 'x';
    answer[len++] = '"';
    answer[len++] = '}';
    fake_srv f;
    fake_start(&f, answer, len);
    fixture fx;
    fixture_open_fake(&fx, &f, 4096);
    outcome o = {0};
    arm(&fx, &o, "GET", DB_PATH, NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_PROTOCOL);
    outcome_clear(&o);
    fixture_close(&fx);
    fake_stop(&f);
}

/* Nothing listens (a port bound then closed): transport errors, retried, AzureUnavailable. */
static void test_nothing_listening(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    static char dead_to[64];
    static const char *list[1];
    snprintf(dead_to, sizeof dead_to, "::127.0.0.1:%d", ntohs(a.sin_port));
    list[0] = dead_to;
    char err[256];
    fixture f;
    f.loop = pw_loop_new(err, sizeof err);
    pw_azure_config cfg;
    pw_azure_config_defaults(&cfg);
    test_sim_identity(&sim, &cfg);
    cfg.connect_to = list;
    cfg.connect_to_count = 1;
    cfg.max_attempts = 3;
    cfg.backoff_base_ms = 20;
    f.az = pw_azure_new(f.loop, &cfg, err, sizeof err);
    assert_non_null(f.az);
    outcome o = {0};
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_UNAVAILABLE);
    assert_true(o.res.retryable);
    outcome_clear(&o);
    /* With a deadline and many attempts, the deadline ends it with the same cause. */
    pw_azure_free(f.az);
    cfg.max_attempts = 1000;
    cfg.backoff_base_ms = 200;
    cfg.backoff_max_ms = 200;
    f.az = pw_azure_new(f.loop, &cfg, err, sizeof err);
    arm(&f, &o, "GET", DB_PATH, NULL, pw_loop_now_ms(f.loop) + 1500);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_UNAVAILABLE);
    assert_non_null(strstr(o.res.message, "deadline"));
    outcome_clear(&o);
    fixture_close(&f);
}

/* Many calls at once through the per-host connection cap: all succeed, one token fetch. */
static void test_many_in_flight(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    enum { N = 120 };
    outcome *o = calloc(N, sizeof *o);
    assert_non_null(o);
    char err[256];
    for (int i = 0; i < N; i++) {
        pw_azure_call c = {.on_done = on_done, .ctx = &o[i]};
        if (i % 3 == 2)
            assert_int_equal(
                pw_azure_kusto_mgmt(f.az, CLUSTER, "mykustodatabase",
                                    ".show database ['mykustodatabase'] policy caching", &c, err,
                                    sizeof err),
                0);
        else
            assert_int_equal(pw_azure_arm(f.az, "GET", DB_PATH, NULL, &c, err, sizeof err), 0);
    }
    assert_int_equal(pw_azure_in_flight(f.az), N);
    for (int i = 0; i < N; i++) {
        wait_done(&f, &o[i]);
        if (!o[i].res.ok) fail_msg("call %d failed: %s %s", i, o[i].res.code, o[i].res.message);
        outcome_clear(&o[i]);
    }
    free(o);
    assert_int_equal(pw_azure_in_flight(f.az), 0);
    /* One token per audience (ARM and the cluster). */
    assert_int_equal(sim_count("login.microsoftonline.com", NULL), 2);
    fixture_close(&f);
}

/* Kusto calls to more distinct clusters than the token cache has entries (256): each gets
 * AAD's own answer (these hosts are no resources AAD knows: AuthenticationFailed), never a
 * local failure, and a known cluster after them still gets its token and its answer. */
static void test_many_audiences(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    char err[256];
    for (int i = 0; i < 300; i++) {
        char uri[96];
        snprintf(uri, sizeof uri, "https://nosuch%03d.westus.kusto.windows.net", i);
        outcome o = {0};
        pw_azure_call c = {.on_done = on_done, .ctx = &o};
        assert_int_equal(pw_azure_kusto_mgmt(f.az, uri, "db", ".show version", &c, err, sizeof err),
                         0);
        wait_done(&f, &o);
        if (o.res.ok || strcmp(o.res.code, PW_AZ_CODE_AUTH) != 0)
            fail_msg("call %d to %s: %s %s", i, uri, o.res.ok ? "ok" : o.res.code, o.res.message);
        outcome_clear(&o);
    }
    outcome o = {0};
    pw_azure_call c = {.on_done = on_done, .ctx = &o};
    assert_int_equal(pw_azure_kusto_mgmt(f.az, CLUSTER, "mykustodatabase",
                                         ".show database ['mykustodatabase'] policy caching", &c,
                                         err, sizeof err),
                     0);
    wait_done(&f, &o);
    if (!o.res.ok) fail_msg("known cluster after 300 others: %s %s", o.res.code, o.res.message);
    outcome_clear(&o);
    fixture_close(&f);
}

static void test_wrong_secret(void **state)
{
    (void)state;
    sim_reset();
    char err[256];
    pw_loop *loop = pw_loop_new(err, sizeof err);
    pw_azure_config cfg;
    pw_azure_config_defaults(&cfg);
    test_sim_identity(&sim, &cfg);
    cfg.client_secret = "wrong-secret-value";
    fixture f = {.loop = loop, .az = pw_azure_new(loop, &cfg, err, sizeof err)};
    assert_non_null(f.az);
    outcome o = {0};
    arm(&f, &o, "GET", DB_PATH, NULL, 0);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_AUTH);
    assert_null(strstr(o.res.message, "wrong-secret-value"));
    fprintf(stderr, "AAD message: %s\n", o.res.message);
    outcome_clear(&o);
    fixture_close(&f);
}

/* A log line leaks when it holds the secret, a JWT, or a credential after client_secret=,
 * client_assertion= or Bearer that is not the redaction mark. */
static int log_line_leaks(const char *line)
{
    static const char *const keys[] = {"client_secret=", "client_assertion=", "Bearer "};
    if (strstr(line, SECRET) || strstr(line, "eyJ")) return 1;
    for (size_t k = 0; k < 3; k++)
        for (const char *p = strcasestr(line, keys[k]); p; p = strcasestr(p + 1, keys[k]))
            if (strncmp(p + strlen(keys[k]), "***", 3) != 0) return 1;
    return 0;
}

/* ---- pacing ---- */

static void tune_small_arm(pw_azure_config *cfg)
{
    cfg->arm_write_bucket = 20;
    cfg->arm_write_refill_per_s = 20;
    cfg->arm_read_bucket = 50;
    cfg->arm_read_refill_per_s = 100;
}

static json_t *caching_patch(int days)
{
    char d[16];
    snprintf(d, sizeof d, "P%dD", days);
    return json_pack("{s:s,s:{s:s}}", "kind", "ReadWrite", "properties", "hotCachePeriod", d);
}

/* Many ARM writes against a small bucket (azure-sim and the client both at 20, refilled 20 per
 * second; reads 50 / 100 per second): all succeed, almost none is answered 429, and the calls
 * beyond the burst report that they wait for the write budget. */
static void test_pacing_arm_writes(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PATCH", "/_sim/settings",
                 "{\"armWriteBucket\": 20, \"armWriteRefillPerSecond\": 20, \"armReadBucket\": 50, "
                 "\"armReadRefillPerSecond\": 100, \"lroDurationMs\": 100, "
                 "\"lroRetryAfterSeconds\": 0}");
    fixture_tune = tune_small_arm;
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    enum { N = 200 };
    outcome *o = calloc(N, sizeof *o);
    assert_non_null(o);
    char err[256];
    for (int i = 0; i < N; i++) {
        json_t *body = caching_patch(1 + i % 30);
        pw_azure_call c = {.on_done = on_done, .on_queued = on_queued, .ctx = &o[i]};
        assert_int_equal(pw_azure_arm(f.az, "PATCH", DB_PATH, body, &c, err, sizeof err), 0);
        json_decref(body);
    }
    unsigned queued_writes = 0, attempts = 0;
    for (int i = 0; i < N; i++) {
        wait_done(&f, &o[i]);
        if (!o[i].res.ok) fail_msg("PATCH %d failed: %s %s", i, o[i].res.code, o[i].res.message);
        if (o[i].queued_calls && !strcmp(o[i].queued, "queued: ARM write budget")) queued_writes++;
        attempts += o[i].res.attempts;
        outcome_clear(&o[i]);
    }
    free(o);
    pw_azure_stats st;
    pw_azure_stats_get(f.az, &st);
    fprintf(stderr,
            "pacing: %d PATCHes, %u attempts; 429s: writes %llu, reads %llu; queued: %llu "
            "writes, %llu reads\n",
            N, attempts, (unsigned long long)st.throttled[PW_AZ_PACE_ARM_WRITE],
            (unsigned long long)st.throttled[PW_AZ_PACE_ARM_READ],
            (unsigned long long)st.waited[PW_AZ_PACE_ARM_WRITE],
            (unsigned long long)st.waited[PW_AZ_PACE_ARM_READ]);
    assert_true(st.throttled[PW_AZ_PACE_ARM_WRITE] <= 5);
    assert_true(st.throttled[PW_AZ_PACE_ARM_READ] <= 5);
    assert_true(attempts <= N + 5);
    assert_true(queued_writes >= N / 2); /* all but the burst waited, and said so once */
    assert_int_equal(st.admitted[PW_AZ_PACE_ARM_WRITE], attempts);
    assert_int_equal(st.queued[PW_AZ_PACE_ARM_WRITE], 0);
    assert_int_equal(st.in_flight[PW_AZ_PACE_ARM_WRITE], 0);
    pw_azure_budget b[4];
    assert_int_equal(pw_azure_budgets(f.az, b, 4), 2);
    fixture_close(&f);
    fixture_tune = NULL;
    sim_reset();
}

/* A 429 storm (injected, without a remaining count): every read waits for the bucket's
 * Retry-After, and every call still succeeds. */
static void test_pacing_429_storm(void **state)
{
    (void)state;
    sim_reset();
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome w = {0};
    arm(&f, &w, "GET", DB_PATH, NULL, 0); /* token first: the storm is for ARM alone */
    assert_true(w.res.ok);
    outcome_clear(&w);
    sim_admin_do("PUT", "/_sim/faults",
                 "{\"failNext\": [{\"count\": 8, \"status\": 429, \"host\": "
                 "\"management.azure.com\", \"retryAfter\": 1}]}");
    enum { N = 20 };
    outcome o[N];
    memset(o, 0, sizeof o);
    char err[256];
    for (int i = 0; i < N; i++) {
        pw_azure_call c = {.on_done = on_done, .ctx = &o[i]};
        assert_int_equal(pw_azure_arm(f.az, "GET", DB_PATH, NULL, &c, err, sizeof err), 0);
    }
    unsigned attempts = 0;
    for (int i = 0; i < N; i++) {
        wait_done(&f, &o[i]);
        if (!o[i].res.ok) fail_msg("GET %d failed: %s %s", i, o[i].res.code, o[i].res.message);
        attempts += o[i].res.attempts;
        outcome_clear(&o[i]);
    }
    pw_azure_stats st;
    pw_azure_stats_get(f.az, &st);
    assert_int_equal(st.throttled[PW_AZ_PACE_ARM_READ], 8);
    assert_int_equal(attempts, N + 8);
    fixture_close(&f);
    sim_admin_do("DELETE", "/_sim/faults", NULL);
}

/* A read queued behind an empty bucket whose deadline passes ends DeadlineExceeded, with no
 * attempt spent. */
static void tune_one_read(pw_azure_config *cfg)
{
    cfg->arm_read_bucket = 1;
    cfg->arm_read_refill_per_s = 1;
}

static void test_pacing_deadline_while_queued(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PATCH", "/_sim/settings",
                 "{\"armReadBucket\": 1, \"armReadRefillPerSecond\": 1}");
    fixture_tune = tune_one_read;
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    outcome a = {0}, b = {0};
    char err[256];
    pw_azure_call ca = {.on_done = on_done, .ctx = &a};
    pw_azure_call cb = {.on_done = on_done,
                        .on_queued = on_queued,
                        .ctx = &b,
                        .deadline_ms = pw_loop_now_ms(f.loop) + 300};
    assert_int_equal(pw_azure_arm(f.az, "GET", DB_PATH, NULL, &ca, err, sizeof err), 0);
    assert_int_equal(pw_azure_arm(f.az, "GET", DB_PATH, NULL, &cb, err, sizeof err), 0);
    wait_done(&f, &b);
    assert_false(b.res.ok);
    assert_string_equal(b.res.code, PW_AZ_CODE_DEADLINE);
    assert_int_equal(b.res.attempts, 0);
    assert_non_null(strstr(b.res.message, "queued for the ARM read budget"));
    assert_int_equal(b.queued_calls, 1);
    assert_string_equal(b.queued, "queued: ARM read budget");
    wait_done(&f, &a);
    assert_true(a.res.ok);
    outcome_clear(&a);
    outcome_clear(&b);
    fixture_close(&f);
    fixture_tune = NULL;
    sim_reset();
}

/* More Kusto commands than the cluster admits at once (azure-sim: 8, 300 ms each): the client
 * keeps 8 in flight and queues the rest, so the cluster never answers 429. */
static void test_pacing_kusto_concurrency(void **state)
{
    (void)state;
    sim_reset();
    sim_admin_do("PATCH", "/_sim/settings", "{\"kustoCommandLatencyMs\": 300}");
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    enum { N = 24 };
    outcome o[N];
    memset(o, 0, sizeof o);
    char err[256];
    for (int i = 0; i < N; i++) {
        pw_azure_call c = {.on_done = on_done, .on_queued = on_queued, .ctx = &o[i]};
        assert_int_equal(pw_azure_kusto_mgmt(f.az, CLUSTER, "mykustodatabase",
                                             ".show database ['mykustodatabase'] policy caching",
                                             &c, err, sizeof err),
                         0);
    }
    unsigned queued = 0;
    for (int i = 0; i < N; i++) {
        wait_done(&f, &o[i]);
        if (!o[i].res.ok) fail_msg("command %d: %s %s", i, o[i].res.code, o[i].res.message);
        assert_int_equal(o[i].res.attempts, 1);
        if (o[i].queued_calls) {
            assert_string_equal(o[i].queued, "queued: Kusto cluster concurrency");
            queued++;
        }
        outcome_clear(&o[i]);
    }
    pw_azure_stats st;
    pw_azure_stats_get(f.az, &st);
    assert_int_equal(st.throttled[PW_AZ_PACE_KUSTO], 0);
    assert_true(queued >= N - 8);
    assert_int_equal(sim_count("mykustocluster.westus.kusto.windows.net", "/v1/rest/mgmt"), N);
    fixture_close(&f);
    sim_reset();
}

/* Connections are pooled per real host even though connect-to sends every host to azure-sim's
 * one address: with 2 connections per host, two slow Kusto commands do not hold up an ARM read
 * (before, the three shared one curl bundle of 2 and the read waited for a command). */
static void tune_two_connections(pw_azure_config *cfg)
{
    cfg->max_host_connections = 2;
}

static void test_pool_per_real_host(void **state)
{
    (void)state;
    sim_reset();
    fixture_tune = tune_two_connections;
    fixture f;
    fixture_open(&f, sim.ca_file, 300000);
    char err[256];
    outcome w = {0};
    arm(&f, &w, "GET", DB_PATH, NULL, 0); /* both tokens cached first */
    outcome_clear(&w);
    pw_azure_call cw = {.on_done = on_done, .ctx = &w};
    assert_int_equal(pw_azure_kusto_mgmt(f.az, CLUSTER, "mykustodatabase",
                                         ".show database ['mykustodatabase'] policy caching", &cw,
                                         err, sizeof err),
                     0);
    wait_done(&f, &w);
    assert_true(w.res.ok);
    outcome_clear(&w);
    sim_admin_do("PATCH", "/_sim/settings", "{\"kustoCommandLatencyMs\": 2000}");
    outcome k[2], g = {0};
    memset(k, 0, sizeof k);
    for (int i = 0; i < 2; i++) {
        pw_azure_call c = {.on_done = on_done, .ctx = &k[i]};
        assert_int_equal(pw_azure_kusto_mgmt(f.az, CLUSTER, "mykustodatabase",
                                             ".show database ['mykustodatabase'] policy caching",
                                             &c, err, sizeof err),
                         0);
    }
    sleep_loop(&f, 300); /* both commands are at the cluster */
    pw_azure_call c = {.on_done = on_done, .ctx = &g};
    assert_int_equal(pw_azure_arm(f.az, "GET", DB_PATH, NULL, &c, err, sizeof err), 0);
    wait_done(&f, &g);
    assert_true(g.res.ok);
    assert_false(k[0].done || k[1].done);
    for (int i = 0; i < 2; i++) {
        wait_done(&f, &k[i]);
        assert_true(k[i].res.ok);
        outcome_clear(&k[i]);
    }
    outcome_clear(&g);
    fixture_close(&f);
    fixture_tune = NULL;
    sim_reset();
}

/* Busy, maintenance and conflict answers are retried (see pw/azure.h, Pacing). */
static void tune_five_attempts(pw_azure_config *cfg)
{
    cfg->max_attempts = 5;
    cfg->backoff_base_ms = 10;
    cfg->backoff_max_ms = 50;
}

/* Runs one call against the fake server answering answers[] in turn; returns its outcome and
 * how many requests the server saw in *requests. */
static void fake_call(const char *const *answers, size_t n, int kusto, const char *method,
                      outcome *o, int *requests)
{
    fake_srv f;
    fake_start(&f, NULL, 0);
    f.answers = answers;
    f.n_answers = n;
    fixture fx;
    fixture_tune = tune_five_attempts;
    fixture_open_fake(&fx, &f, 0);
    fixture_tune = NULL;
    if (kusto) {
        char err[256];
        pw_azure_call c = {.on_done = on_done, .ctx = o};
        assert_int_equal(pw_azure_kusto_mgmt(fx.az, CLUSTER, "mykustodatabase", ".show version", &c,
                                             err, sizeof err),
                         0);
        wait_done(&fx, o);
    } else {
        json_t *body = strcmp(method, "GET") ? caching_patch(3) : NULL;
        arm(&fx, o, method, DB_PATH, body, 0);
        json_decref(body);
    }
    *requests = __atomic_load_n(&f.requests, __ATOMIC_SEQ_CST);
    fixture_close(&fx);
    fake_stop(&f);
}

/* "HTTP/1.1 <status>" with a JSON body and extra header lines (each ending in \r\n). */
static const char *answer(char *buf, size_t len, const char *status, const char *headers,
                          const char *body)
{
    snprintf(buf, len,
             "HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             status, headers, strlen(body), body);
    return buf;
}

#define MAINTENANCE                                                                                \
    "{\"error\":{\"code\":\"ServiceIsInMaintenance\",\"message\":\"[Conflict] Cluster "            \
    "'mykustocluster' is in process of maintenance for a short period. You may retry to invoke "   \
    "the operation in a few minutes.\"}}"

static void test_busy_answers_retried(void **state)
{
    (void)state;
    sim_reset();
    static char b[6][900];
    const char *ans[6];
    outcome o = {0};
    int requests;

    /* ARM: maintenance on the request itself, then a bare Conflict, then the answer. */
    ans[0] = answer(b[0], sizeof b[0], "409 Conflict", "", MAINTENANCE);
    ans[1] = answer(b[1], sizeof b[1], "409 Conflict", "",
                    "{\"error\":{\"code\":\"Conflict\",\"message\":\"busy\"}}");
    ans[2] = answer(b[2], sizeof b[2], "200 OK", "", "{\"properties\":{}}");
    fake_call(ans, 3, 0, "GET", &o, &requests);
    if (!o.res.ok) fail_msg("ARM: %s %s", o.res.code, o.res.message);
    assert_int_equal(o.res.attempts, 3);
    outcome_clear(&o);

    /* ARM: an operation that ended Failed with ServiceIsInMaintenance changed nothing: the
     * PATCH goes again, and its operation succeeds. */
    ans[0] = answer(b[0], sizeof b[0], "202 Accepted",
                    "Azure-AsyncOperation: https://management.azure.com/op/1?api-version=x\r\n"
                    "Retry-After: 0\r\n",
                    "{}");
    ans[1] = answer(b[1], sizeof b[1], "200 OK", "",
                    "{\"status\":\"Failed\",\"error\":{\"code\":\"ServiceIsInMaintenance\","
                    "\"message\":\"[Conflict] Cluster 'mykustocluster' is in process of "
                    "maintenance for a short period.\"}}");
    ans[2] = answer(b[2], sizeof b[2], "202 Accepted",
                    "Azure-AsyncOperation: https://management.azure.com/op/2?api-version=x\r\n"
                    "Retry-After: 0\r\n",
                    "{}");
    ans[3] = answer(b[3], sizeof b[3], "200 OK", "", "{\"status\":\"Succeeded\"}");
    ans[4] =
        answer(b[4], sizeof b[4], "200 OK", "", "{\"properties\":{\"hotCachePeriod\":\"P3D\"}}");
    fake_call(ans, 5, 0, "PATCH", &o, &requests);
    if (!o.res.ok) fail_msg("ARM LRO: %s %s", o.res.code, o.res.message);
    assert_int_equal(o.res.attempts, 2);
    assert_int_equal(requests, 5);
    outcome_clear(&o);

    /* Kusto: a 429 that says "@permanent": true, ServiceBusy, a 409 that is not permanent. */
    ans[0] = answer(b[0], sizeof b[0], "429 Too Many Requests", "Retry-After: 0\r\n",
                    "{\"error\":{\"code\":\"TooManyRequests\",\"@type\":\"Kusto.DataNode."
                    "Exceptions.ControlCommandThrottledException\",\"@message\":\"The control "
                    "command was aborted due to throttling.\",\"@permanent\":true}}");
    ans[1] = answer(b[1], sizeof b[1], "503 Service Unavailable", "",
                    "{\"error\":{\"code\":\"ServiceBusy\",\"@message\":\"busy\","
                    "\"@permanent\":true}}");
    ans[2] = answer(b[2], sizeof b[2], "409 Conflict", "",
                    "{\"error\":{\"code\":\"Conflict\",\"@message\":\"in progress\","
                    "\"@permanent\":false}}");
    ans[3] = answer(b[3], sizeof b[3], "200 OK", "", "{\"Tables\":[]}");
    fake_call(ans, 4, 1, NULL, &o, &requests);
    if (!o.res.ok) fail_msg("Kusto: %s %s", o.res.code, o.res.message);
    assert_int_equal(o.res.attempts, 4);
    outcome_clear(&o);

    /* Not retried: an ARM 409 that is no conflict in progress, a Kusto 409 that is permanent. */
    ans[0] = answer(b[0], sizeof b[0], "409 Conflict", "",
                    "{\"error\":{\"code\":\"ScopeLocked\",\"message\":\"locked\"}}");
    fake_call(ans, 1, 0, "GET", &o, &requests);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_BAD_REQUEST);
    assert_string_equal(o.res.azure_code, "ScopeLocked");
    assert_int_equal(o.res.attempts, 1);
    outcome_clear(&o);
    ans[0] = answer(b[0], sizeof b[0], "409 Conflict", "",
                    "{\"error\":{\"code\":\"EntityAlreadyExists\",\"@message\":\"exists\","
                    "\"@permanent\":true}}");
    fake_call(ans, 1, 1, NULL, &o, &requests);
    assert_false(o.res.ok);
    assert_int_equal(o.res.attempts, 1);
    outcome_clear(&o);

    /* Busy until the attempts run out: AzureUnavailable, retryable, Azure's code kept. */
    ans[0] = answer(b[0], sizeof b[0], "409 Conflict", "", MAINTENANCE);
    fake_call(ans, 1, 0, "GET", &o, &requests);
    assert_false(o.res.ok);
    assert_string_equal(o.res.code, PW_AZ_CODE_UNAVAILABLE);
    assert_true(o.res.retryable);
    assert_string_equal(o.res.azure_code, "ServiceIsInMaintenance");
    assert_int_equal(o.res.attempts, 5);
    outcome_clear(&o);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = test_sim_start(&sim, AZURE_SIM_BIN, "pw-azure-client");
    if (rc != 0) {
        test_sim_stop(&sim);
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arm_get_and_token_cache),
        cmocka_unit_test(test_shared_token_fetch),
        cmocka_unit_test(test_arm_patch_lro),
        cmocka_unit_test(test_kusto_show),
        cmocka_unit_test(test_throttle_then_recover),
        cmocka_unit_test(test_token_refresh),
        cmocka_unit_test(test_token_outage_keeps_valid_token),
        cmocka_unit_test(test_token_outage_bounded_by_deadline),
        cmocka_unit_test(test_untrusted_ca),
        cmocka_unit_test(test_token_bad_characters_refused),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_deadline_passed_sends_nothing),
        cmocka_unit_test(test_lro_polling_after_accept),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_echoed_secrets_redacted),
        cmocka_unit_test(test_401_refreshes_once),
        cmocka_unit_test(test_lro_foreign_host_refused),
        cmocka_unit_test(test_lro_location_and_http_date),
        cmocka_unit_test(test_token_absurd_lifetime),
        cmocka_unit_test(test_response_too_large),
        cmocka_unit_test(test_nothing_listening),
        cmocka_unit_test(test_many_in_flight),
        cmocka_unit_test(test_many_audiences),
        cmocka_unit_test(test_pacing_arm_writes),
        cmocka_unit_test(test_pacing_429_storm),
        cmocka_unit_test(test_pacing_deadline_while_queued),
        cmocka_unit_test(test_pacing_kusto_concurrency),
        cmocka_unit_test(test_pool_per_real_host),
        cmocka_unit_test(test_busy_answers_retried),
    };
    /* Capture this process's log lines (debug included) to check that no secret leaks. */
    char log_path[] = "/tmp/pw-azure-client-log-XXXXXX";
    int log_fd = mkstemp(log_path);
    int saved_err = dup(2);
    if (log_fd >= 0 && saved_err >= 0) dup2(log_fd, 2);
    pw_log_set_level(PW_LOG_DEBUG);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    fflush(stderr);
    if (saved_err >= 0) dup2(saved_err, 2);
    FILE *lf = log_fd >= 0 ? fopen(log_path, "r") : NULL;
    int leaks = 0;
    char line[65536];
    while (lf && fgets(line, sizeof line, lf)) {
        fputs(line, stderr);
        if (log_line_leaks(line)) {
            fprintf(stderr, "^^^ leaks a secret\n");
            leaks++;
        }
    }
    if (lf) fclose(lf);
    if (log_fd >= 0) {
        close(log_fd);
        unlink(log_path);
    }
    fprintf(stderr, "secret scan of the log: %d suspicious line(s)\n", leaks);
    if (leaks) rc = 1;
    test_sim_stop(&sim);
    curl_global_cleanup();
    return rc;
}
