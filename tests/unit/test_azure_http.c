/* test_azure_http.c: Azure transport helpers without network: Retry-After, backoff bounds,
 * URL/host checks, error bodies, LRO states, pw_azure argument checks, and the pacing state
 * machine (worker/azure/pace.c) on a clock of the test's own: refill, correction from the
 * remaining-count headers, drain on 429, FIFO, Kusto concurrency, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "pw/azure.h"
#include "azure/http.h" /* internal to worker/azure */
#include "azure/pace.h"
#include "pw/loop.h"

static void test_retry_after(void **state)
{
    (void)state;
    time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(pw_http_retry_after_ms("7", NULL, NULL, now), 7000);
    assert_int_equal(pw_http_retry_after_ms("0", NULL, NULL, now), 0);
    assert_int_equal(pw_http_retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT", NULL, NULL, now),
                     10000);
    assert_int_equal(pw_http_retry_after_ms("Sun, 06 Nov 1994 08:49:27 GMT", NULL, NULL, now), 0);
    assert_int_equal(pw_http_retry_after_ms("2", "250", NULL, now), 250);
    assert_int_equal(pw_http_retry_after_ms("2", "", "1500", now), 1500);
    assert_int_equal(pw_http_retry_after_ms(NULL, NULL, NULL, now), -1);
    assert_int_equal(pw_http_retry_after_ms("", "", "", now), -1);
    assert_int_equal(pw_http_retry_after_ms("soon", NULL, NULL, now), -1);
    assert_int_equal(pw_http_retry_after_ms("-5", NULL, NULL, now), -1);
    assert_int_equal(pw_http_retry_after_ms("5x", NULL, NULL, now), -1);
    assert_int_equal(pw_http_retry_after_ms("99999999999999999999", NULL, NULL, now), -1);
    assert_int_equal(pw_http_retry_after_ms(NULL, "abc", "300", now), 300);
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    for (unsigned n = 0; n < 70; n++) {
        long cap = 500;
        for (unsigned i = 0; i < n && cap < 30000; i++)
            cap *= 2;
        if (cap > 30000) cap = 30000;
        for (int k = 0; k < 200; k++) {
            long b = pw_http_backoff_ms(500, 30000, n, pw_http_random());
            assert_true(b >= 0 && b <= cap);
        }
        assert_int_equal(pw_http_backoff_ms(500, 30000, n, (uint64_t)cap), cap);
        assert_int_equal(pw_http_backoff_ms(500, 30000, n, 0), 0);
    }
    assert_int_equal(pw_http_backoff_ms(0, 30000, 3, 12345), 0);
    assert_true(pw_http_backoff_ms(LONG_MAX / 2, LONG_MAX, 40, UINT64_MAX) >= 0);
}

static void test_same_origin(void **state)
{
    (void)state;
    const char *arm = "https://management.azure.com";
    assert_true(pw_http_same_origin(
        "https://management.azure.com/subscriptions/x/providers/Microsoft.Kusto/locations/westus/"
        "operationResults/abc?api-version=2025-02-14",
        arm));
    assert_true(pw_http_same_origin("https://MANAGEMENT.azure.com:443/x", arm));
    assert_false(pw_http_same_origin("http://management.azure.com/x", arm));
    assert_false(pw_http_same_origin("https://evil.example.com/x", arm));
    assert_false(pw_http_same_origin("https://management.azure.com.evil.example.com/x", arm));
    assert_false(pw_http_same_origin("https://management.azure.com:8443/x", arm));
    assert_false(pw_http_same_origin("https://user:pw@management.azure.com/x", arm));
    assert_false(pw_http_same_origin("/relative/x", arm));
    assert_false(pw_http_same_origin("", arm));
    assert_false(pw_http_same_origin(NULL, arm));
}

static void test_cluster_uri(void **state)
{
    (void)state;
    char out[256], err[256];
    assert_int_equal(pw_http_cluster_uri("https://mykustocluster.westus.kusto.windows.net", out,
                                         sizeof out, err, sizeof err),
                     0);
    assert_string_equal(out, "https://mykustocluster.westus.kusto.windows.net");
    assert_int_equal(pw_http_cluster_uri("https://MyKusto.westus.kusto.windows.net/", out,
                                         sizeof out, err, sizeof err),
                     0);
    assert_string_equal(out, "https://mykusto.westus.kusto.windows.net");
    const char *bad[] = {
        "http://c.kusto.windows.net",
        "https://user@c.kusto.windows.net",
        "https://c.kusto.windows.net:443",
        "https://c.kusto.windows.net/v1/rest/mgmt",
        "https://c.kusto.windows.net?x=1",
        "https://c.kusto.windows.net/#frag",
        "https://c.kusto.windows.net\\@evil.com",
        "https://c.kusto.windows.net%2F@evil",
        "https://",
        "https:// c.kusto.windows.net",
        "ftp://c.kusto.windows.net",
        "",
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(pw_http_cluster_uri(bad[i], out, sizeof out, err, sizeof err), -1);
        assert_true(err[0] != '\0');
    }
}

static void test_parse_error(void **state)
{
    (void)state;
    char code[128], msg[1024];
    int perm;
    const char *arm = "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"no access\"}}";
    pw_http_parse_error(NULL, arm, strlen(arm), code, sizeof code, msg, sizeof msg, &perm);
    assert_string_equal(code, "AuthorizationFailed");
    assert_string_equal(msg, "no access");
    assert_int_equal(perm, -1);

    const char *kusto = "{\"error\":{\"code\":\"BadRequest_EntityNotFound\",\"message\":\"Request "
                        "is invalid\",\"@type\":\"X\",\"@message\":\"Entity 'T' not found\","
                        "\"@permanent\":true}}";
    pw_http_parse_error(NULL, kusto, strlen(kusto), code, sizeof code, msg, sizeof msg, &perm);
    assert_string_equal(code, "BadRequest_EntityNotFound");
    assert_string_equal(msg, "Entity 'T' not found");
    assert_int_equal(perm, 1);

    const char *transient = "{\"error\":{\"code\":\"X\",\"message\":\"m\",\"@permanent\":false}}";
    pw_http_parse_error(NULL, transient, strlen(transient), code, sizeof code, msg, sizeof msg,
                        &perm);
    assert_int_equal(perm, 0);
    assert_string_equal(msg, "m");

    const char *aad = "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: "
                      "Invalid client secret provided.\"}";
    pw_http_parse_error(NULL, aad, strlen(aad), code, sizeof code, msg, sizeof msg, &perm);
    assert_string_equal(code, "invalid_client");
    assert_string_equal(msg, "AADSTS7000215: Invalid client secret provided.");

    /* A message longer than the buffer is cut at a character boundary (a localized
     * message: 1500 two-byte characters; the buffer's 1023 bytes end inside one). */
    char big[4000];
    size_t o = (size_t)snprintf(big, sizeof big, "{\"error\":{\"code\":\"X\",\"message\":\"");
    for (int i = 0; i < 1500; i++) {
        big[o++] = (char)0xC3;
        big[o++] = (char)0xA9;
    }
    snprintf(big + o, sizeof big - o, "\"}}");
    pw_http_parse_error(NULL, big, strlen(big), code, sizeof code, msg, sizeof msg, &perm);
    assert_int_equal(strlen(msg), 1022);
    json_t *j = json_string(msg); /* NULL when not valid UTF-8 */
    assert_non_null(j);
    json_decref(j);

    pw_http_parse_error(NULL, "<html>", 6, code, sizeof code, msg, sizeof msg, &perm);
    assert_string_equal(code, "");
    assert_string_equal(msg, "");
    pw_http_parse_error(NULL, "", 0, code, sizeof code, msg, sizeof msg, &perm);
    assert_string_equal(code, "");
    pw_http_parse_error(NULL, "[1]", 3, code, sizeof code, msg, sizeof msg, &perm);
    assert_string_equal(code, "");
}

static void redacts(const pw_http *http, const char *in, const char *want)
{
    char out[256];
    pw_http_redact(http, out, sizeof out, in, strlen(in));
    if (strcmp(out, want) != 0) fail_msg("redact(%s) = %s, want %s", in, out, want);
}

static void test_redact(void **state)
{
    (void)state;
    redacts(NULL, "plain text, nothing to hide", "plain text, nothing to hide");
    redacts(NULL, "grant_type=client_credentials&client_secret=s%2Bx&scope=a",
            "grant_type=client_credentials&client_secret=***&scope=a");
    redacts(NULL, "CLIENT_SECRET=ab", "CLIENT_SECRET=***");
    redacts(NULL, "x client_assertion=eyJa.b.c&y", "x client_assertion=***&y");
    redacts(NULL, "Authorization: Bearer abc-._~+/== next", "Authorization: Bearer *** next");
    redacts(NULL, "bearer\tXYZ", "bearer\t***");
    redacts(NULL, "token eyJhbGciOi.eyJzdWIi.c2ln done", "token *** done");
    redacts(NULL, "cut eyJhbGciOi.eyJzdWIi", "cut ***"); /* the signature was cut off */
    redacts(NULL, "header only eyJhbGciOi", "header only eyJhbGciOi"); /* no token */
    redacts(NULL, "keyJ.x is a word", "keyJ.x is a word");
    redacts(NULL, "Bearer", "Bearer");
    /* The configured secret, raw and form-encoded, wherever it is. */
    char err[256];
    pw_loop *loop = pw_loop_new(err, sizeof err);
    assert_non_null(loop);
    pw_http_opts o = {.secret = "s3cr3t+/x", .max_response_bytes = 1024};
    pw_http *http = pw_http_new(loop, &o, err, sizeof err);
    assert_non_null(http);
    redacts(http, "echo: s3cr3t+/x and s3cr3t%2B%2Fx.", "echo: *** and ***.");
    redacts(http, "client_secret=s3cr3t%2B%2Fx", "client_secret=***");
    /* In place, redacted before the cut: the secret at the end is not left half there. */
    char buf[16];
    snprintf(buf, sizeof buf, "ab s3cr3t+/x");
    pw_http_redact(http, buf, 8, buf, strlen(buf));
    assert_string_equal(buf, "ab ***");
    /* A cut never splits a character. */
    pw_http_redact(NULL, buf, 4, "a\xc3\xa9\xc3\xa9", 5);
    assert_string_equal(buf, "a\xc3\xa9");
    pw_http_redact(NULL, buf, 3, "a\xc3\xa9", 3);
    assert_string_equal(buf, "a");
    pw_http_free(http);
    pw_loop_free(loop);
}

static void test_lro_terminal(void **state)
{
    (void)state;
    assert_int_equal(pw_http_lro_terminal("Succeeded"), 1);
    assert_int_equal(pw_http_lro_terminal("succeeded"), 1);
    assert_int_equal(pw_http_lro_terminal("FAILED"), 2);
    assert_int_equal(pw_http_lro_terminal("Canceled"), 3);
    assert_int_equal(pw_http_lro_terminal("Running"), 0);
    assert_int_equal(pw_http_lro_terminal("InProgress"), 0);
    assert_int_equal(pw_http_lro_terminal(NULL), 0);
}

static void test_guid(void **state)
{
    (void)state;
    char a[37], b[37];
    pw_http_guid(a);
    pw_http_guid(b);
    assert_int_equal(strlen(a), 36);
    assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    assert_true(a[14] == '4');
    assert_string_not_equal(a, b);
}

static void never_cb(void *ctx, const pw_azure_result *r)
{
    (void)ctx;
    (void)r;
    fail_msg("on_done must not run");
}

/* Argument checks are synchronous (-1, no callback); nothing touches the network. */
static void test_azure_arguments(void **state)
{
    (void)state;
    char err[256];
    pw_loop *loop = pw_loop_new(err, sizeof err);
    assert_non_null(loop);
    pw_azure_config cfg;
    pw_azure_config_defaults(&cfg);
    /* Pacing defaults: ARM's documented buckets, 8 Kusto commands per cluster. */
    assert_int_equal(cfg.arm_write_bucket, 200);
    assert_int_equal(cfg.arm_write_refill_per_s, 10);
    assert_int_equal(cfg.arm_read_bucket, 250);
    assert_int_equal(cfg.arm_read_refill_per_s, 25);
    assert_int_equal(cfg.kusto_concurrent_max, 8);
    assert_null(pw_azure_new(loop, &cfg, err, sizeof err)); /* no tenant */
    cfg.tenant_id = "11111111-1111-1111-1111-111111111111";
    cfg.client_id = "33333333-3333-3333-3333-333333333333";
    cfg.client_secret = "not-a-real-secret";
    cfg.arm_endpoint = "http://management.azure.com";
    assert_null(pw_azure_new(loop, &cfg, err, sizeof err));
    cfg.arm_endpoint = "https://management.azure.com/";
    pw_azure *az = pw_azure_new(loop, &cfg, err, sizeof err);
    assert_non_null(az);
    pw_azure_call call = {.request_id = "t1", .on_done = never_cb};
    assert_int_equal(pw_azure_arm(az, "GET", "/subscriptions/x/../y", NULL, &call, err, sizeof err),
                     -1);
    assert_int_equal(pw_azure_arm(az, "GET", "/subscriptions/x?a=b", NULL, &call, err, sizeof err),
                     -1);
    assert_int_equal(pw_azure_arm(az, "GET", "subscriptions/x", NULL, &call, err, sizeof err), -1);
    assert_int_equal(pw_azure_arm(az, "HEAD", "/subscriptions/x", NULL, &call, err, sizeof err),
                     -1);
    assert_int_equal(pw_azure_kusto_mgmt(az, "https://evil.example.com:444", "db", ".show x", &call,
                                         err, sizeof err),
                     -1);
    assert_int_equal(pw_azure_kusto_mgmt(az, "https://c.kusto.windows.net/path", "db", ".show x",
                                         &call, err, sizeof err),
                     -1);
    assert_int_equal(pw_azure_in_flight(az), 0);
    /* A started call is abandoned by pw_azure_free without its callback. */
    assert_int_equal(pw_azure_arm(az, "GET", "/subscriptions/x", NULL, &call, err, sizeof err), 0);
    assert_int_equal(pw_azure_in_flight(az), 1);
    pw_azure_free(az);
    pw_azure_free(NULL);
    pw_loop_free(loop);
}

static void test_header_count(void **state)
{
    (void)state;
    assert_int_equal(pw_http_header_count("199"), 199);
    assert_int_equal(pw_http_header_count("0"), 0);
    assert_int_equal(pw_http_header_count("12 "), 12);
    assert_int_equal(pw_http_header_count(""), -1);
    assert_int_equal(pw_http_header_count(NULL), -1);
    assert_int_equal(pw_http_header_count("-1"), -1);
    assert_int_equal(pw_http_header_count("12x"), -1);
    assert_int_equal(pw_http_header_count("99999999999999999999"), -1);
}

/* ---- pacing ---- */

static pw_pace *pace_with(long wb, long wr, long rb, long rr, long kmax)
{
    pw_pace_limits lim = {.arm_write_bucket = wb,
                          .arm_write_refill_per_s = wr,
                          .arm_read_bucket = rb,
                          .arm_read_refill_per_s = rr,
                          .kusto_concurrent_max = kmax,
                          .max_retry_after_ms = 5000};
    pw_pace *p = pw_pace_new(&lim, "33333333-3333-3333-3333-333333333333");
    assert_non_null(p);
    return p;
}

static pw_pace_gate *gate(pw_pace *p, pw_azure_pace_kind kind, const char *scope, uint64_t now)
{
    pw_pace_gate *g = NULL;
    assert_int_equal(pw_pace_gate_get(p, kind, scope, now, &g), 0);
    assert_non_null(g);
    return g;
}

static const pw_pace_answer ANSWER_200 = {.status = 200, .remaining = -1, .retry_after_ms = -1};

/* A bucket starts full, refills at its rate, never above its size; a request waits exactly as
 * long as its token takes. */
static void test_pace_refill(void **state)
{
    (void)state;
    pw_pace *p = pace_with(5, 2, 250, 25, 8);
    pw_pace_gate *g = gate(p, PW_AZ_PACE_ARM_WRITE, "SUB-1", 0);
    pw_pace_ticket t[7] = {0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(pw_pace_acquire(p, g, &t[i], 0, 0), 1);
    assert_true(pw_pace_level(g, 0) < 0.001);
    assert_int_equal(pw_pace_acquire(p, g, &t[5], 0, 0), 0);
    assert_int_equal(pw_pace_ahead(&t[5]), 0);
    assert_int_equal(pw_pace_acquire(p, g, &t[6], 0, 0), 0);
    assert_int_equal(pw_pace_ahead(&t[6]), 1);
    assert_int_equal(pw_pace_next_ms(p, 0), 500); /* one token at 2 per second */
    assert_null(pw_pace_pop_ready(p, 499));
    assert_ptr_equal(pw_pace_pop_ready(p, 500), &t[5]);
    assert_null(pw_pace_pop_ready(p, 500));
    assert_int_equal(pw_pace_next_ms(p, 500), 1000);
    assert_ptr_equal(pw_pace_pop_ready(p, 1000), &t[6]);
    assert_int_equal(pw_pace_next_ms(p, 1000), UINT64_MAX); /* nothing queued */
    for (int i = 0; i < 7; i++)
        assert_int_equal(pw_pace_done(p, &t[i], &ANSWER_200, 1000), 0);
    assert_true(pw_pace_level(g, 1000000) <= 5.0 && pw_pace_level(g, 1000000) > 4.999);
    pw_azure_stats st;
    pw_pace_stats(p, 1000, &st);
    assert_int_equal(st.admitted[PW_AZ_PACE_ARM_WRITE], 7);
    assert_int_equal(st.waited[PW_AZ_PACE_ARM_WRITE], 2);
    assert_int_equal(st.wait_ms[PW_AZ_PACE_ARM_WRITE], 500 + 1000);
    assert_int_equal(st.in_flight[PW_AZ_PACE_ARM_WRITE], 0);
    assert_int_equal(st.budgets[PW_AZ_PACE_ARM_WRITE], 1);
    /* Subscriptions are told apart, case aside; writes and reads are separate buckets. */
    assert_ptr_equal(gate(p, PW_AZ_PACE_ARM_WRITE, "sub-1", 0), g);
    assert_ptr_not_equal(gate(p, PW_AZ_PACE_ARM_WRITE, "sub-2", 0), g);
    assert_ptr_not_equal(gate(p, PW_AZ_PACE_ARM_READ, "sub-1", 0), g);
    assert_int_equal(pw_pace_capacity(gate(p, PW_AZ_PACE_ARM_READ, "sub-1", 0)), 250);
    pw_pace_free(p);
}

/* Answers out of order take requests off twice; once every request is answered, the lowest
 * count among them is the server's level (plus the refill since). */
static void test_pace_settles_when_all_answered(void **state)
{
    (void)state;
    pw_pace *p = pace_with(10, 1, 250, 25, 8);
    pw_pace_gate *g = gate(p, PW_AZ_PACE_ARM_WRITE, "sub", 0);
    pw_pace_ticket a = {0}, b = {0}, c = {0};
    assert_int_equal(pw_pace_acquire(p, g, &a, 0, 0), 1);
    assert_int_equal(pw_pace_acquire(p, g, &b, 0, 0), 1);
    assert_int_equal(pw_pace_acquire(p, g, &c, 0, 0), 1);
    /* the server counted c, a, b (remaining 9, 8, 7); the answers come b, a, c */
    pw_pace_answer ans = {.status = 200, .remaining = 7, .retry_after_ms = -1};
    assert_int_equal(pw_pace_done(p, &b, &ans, 0), 0);
    assert_true(pw_pace_level(g, 0) > 5.999 && pw_pace_level(g, 0) < 6.001); /* 7 - c */
    ans.remaining = 8;
    assert_int_equal(pw_pace_done(p, &a, &ans, 0), 0);
    assert_true(pw_pace_level(g, 0) > 5.999 && pw_pace_level(g, 0) < 6.001);
    ans.remaining = 9;
    assert_int_equal(pw_pace_done(p, &c, &ans, 0), 0);
    assert_true(pw_pace_level(g, 0) > 6.999 && pw_pace_level(g, 0) < 7.001); /* settled */
    /* the next burst starts afresh: its own lowest count */
    assert_int_equal(pw_pace_acquire(p, g, &a, 0, 2000), 1);
    ans.remaining = 4; /* (another tool spent some) */
    assert_int_equal(pw_pace_done(p, &a, &ans, 2000), 0);
    assert_true(pw_pace_level(g, 2000) > 3.999 && pw_pace_level(g, 2000) < 4.001);
    pw_pace_free(p);
}

/* The server's remaining count caps the level, less the requests admitted after the answered
 * one and still in flight; a higher (stale) count changes nothing; a count above the size
 * enlarges the bucket. */
static void test_pace_header_correction(void **state)
{
    (void)state;
    pw_pace *p = pace_with(10, 1, 250, 25, 8);
    pw_pace_gate *g = gate(p, PW_AZ_PACE_ARM_WRITE, "sub", 0);
    pw_pace_ticket a = {0}, b = {0}, c = {0}, d = {0};
    assert_int_equal(pw_pace_acquire(p, g, &a, 0, 0), 1);
    assert_int_equal(pw_pace_acquire(p, g, &b, 0, 0), 1);
    assert_int_equal(pw_pace_acquire(p, g, &c, 0, 0), 1);
    assert_true(pw_pace_level(g, 0) > 6.999 && pw_pace_level(g, 0) < 7.001);
    pw_pace_answer ans = {.status = 200, .remaining = 5, .retry_after_ms = -1};
    assert_int_equal(pw_pace_done(p, &c, &ans, 0), 0); /* answered first, sent last */
    /* a and b were sent before c: counted (they were not: their own answers lower it) */
    assert_true(pw_pace_level(g, 0) > 4.999 && pw_pace_level(g, 0) < 5.001);
    ans.remaining = 3;
    assert_int_equal(pw_pace_done(p, &a, &ans, 0), 0);
    assert_true(pw_pace_level(g, 0) > 1.999 && pw_pace_level(g, 0) < 2.001); /* 3 - b */
    ans.remaining = 9; /* b reached the server first: its count is stale */
    assert_int_equal(pw_pace_done(p, &b, &ans, 0), 0);
    /* ... and so a's 3 counted it: with every request answered, the lowest count stands */
    assert_true(pw_pace_level(g, 0) > 2.999 && pw_pace_level(g, 0) < 3.001);
    /* Lower than we thought (another tool spends the same budget): honoured, refill goes on. */
    assert_int_equal(pw_pace_acquire(p, g, &d, 0, 0), 1);
    ans.remaining = 0;
    assert_int_equal(pw_pace_done(p, &d, &ans, 0), 0);
    assert_true(pw_pace_level(g, 0) < 0.001);
    assert_int_equal(pw_pace_acquire(p, g, &a, 0, 0), 0);
    assert_int_equal(pw_pace_next_ms(p, 0), 1000);
    assert_ptr_equal(pw_pace_pop_ready(p, 1000), &a);
    ans.remaining = 50;
    assert_int_equal(pw_pace_done(p, &a, &ans, 1000), 0);
    assert_int_equal(pw_pace_capacity(g), 50);
    assert_true(pw_pace_level(g, 1000) > 49.999);
    pw_pace_free(p);
}

/* A 429 drains the bucket: everything of it, the caller that got it first (at the head), waits
 * for Retry-After (capped), then goes in FIFO order. */
static void test_pace_drain_on_429(void **state)
{
    (void)state;
    pw_pace *p = pace_with(10, 10, 250, 25, 8);
    pw_pace_gate *g = gate(p, PW_AZ_PACE_ARM_WRITE, "sub", 0);
    pw_pace_ticket a = {0}, b = {0}, c = {0};
    assert_int_equal(pw_pace_acquire(p, g, &a, 0, 0), 1);
    pw_pace_answer t429 = {.status = 429, .remaining = 0, .retry_after_ms = 2000};
    assert_int_equal(pw_pace_done(p, &a, &t429, 100), 1);
    uint64_t until = 0;
    assert_true(pw_pace_blocked(g, 100, &until));
    assert_int_equal(until, 2100);
    assert_int_equal(pw_pace_acquire(p, g, &b, 0, 200), 0); /* tokens or not: it waits */
    assert_int_equal(pw_pace_acquire(p, g, &c, 0, 300), 0);
    assert_int_equal(pw_pace_acquire(p, g, &a, 1, 300), 0); /* back at the head */
    assert_int_equal(pw_pace_ahead(&a), 0);
    assert_int_equal(pw_pace_ahead(&c), 2);
    assert_int_equal(pw_pace_next_ms(p, 300), 2100);
    assert_null(pw_pace_pop_ready(p, 2099));
    assert_ptr_equal(pw_pace_pop_ready(p, 2100), &a);
    assert_ptr_equal(pw_pace_pop_ready(p, 2100), &b);
    assert_ptr_equal(pw_pace_pop_ready(p, 2100), &c);
    pw_azure_stats st;
    pw_pace_stats(p, 2100, &st);
    assert_int_equal(st.throttled[PW_AZ_PACE_ARM_WRITE], 1);
    assert_int_equal(st.in_flight[PW_AZ_PACE_ARM_WRITE], 3);
    /* Retry-After is capped (max_retry_after_ms 5000); without one, at least a second. */
    t429.retry_after_ms = 60000;
    assert_int_equal(pw_pace_done(p, &a, &t429, 3000), 1);
    assert_true(pw_pace_blocked(g, 3000, &until));
    assert_int_equal(until, 8000);
    t429.retry_after_ms = 100;
    assert_int_equal(pw_pace_done(p, &b, &t429, 3100), 1);
    assert_true(pw_pace_blocked(g, 3100, &until));
    assert_int_equal(until, 8000); /* a shorter hold never shortens a longer one */
    /* A 429 that still reports budget is not the subscription's bucket: no drain. */
    pw_pace_answer rp = {.status = 429, .remaining = 3, .retry_after_ms = 1000};
    assert_int_equal(pw_pace_done(p, &c, &rp, 9000), 0);
    assert_false(pw_pace_blocked(g, 9000, NULL));
    /* Without Retry-After: the time a token takes (100 ms here), but at least a second. */
    assert_int_equal(pw_pace_acquire(p, g, &a, 0, 9000), 1);
    t429.retry_after_ms = -1;
    assert_int_equal(pw_pace_done(p, &a, &t429, 9000), 1);
    assert_true(pw_pace_blocked(g, 9000, &until));
    assert_int_equal(until, 10000);
    pw_pace_free(p);
}

/* FIFO: a newcomer never overtakes a queued request, even when a token has come. */
static void test_pace_fifo(void **state)
{
    (void)state;
    pw_pace *p = pace_with(1, 1, 250, 25, 8);
    pw_pace_gate *g = gate(p, PW_AZ_PACE_ARM_READ, "sub", 0);
    assert_int_equal(pw_pace_capacity(g), 250);
    pw_pace_gate *w = gate(p, PW_AZ_PACE_ARM_WRITE, "sub", 0);
    pw_pace_ticket a = {0}, b = {0}, c = {0};
    assert_int_equal(pw_pace_acquire(p, w, &a, 0, 0), 1);
    assert_int_equal(pw_pace_acquire(p, w, &b, 0, 0), 0);
    assert_int_equal(pw_pace_acquire(p, w, &c, 0, 1000), 0); /* the token is b's */
    assert_ptr_equal(pw_pace_pop_ready(p, 1000), &b);
    assert_null(pw_pace_pop_ready(p, 1000));
    assert_ptr_equal(pw_pace_pop_ready(p, 2000), &c);
    /* Cancelling a queued request takes it out of the line. */
    pw_pace_ticket d = {0}, e = {0};
    assert_int_equal(pw_pace_acquire(p, w, &d, 0, 2000), 0);
    assert_int_equal(pw_pace_acquire(p, w, &e, 0, 2000), 0);
    pw_pace_cancel(p, &d);
    assert_null(d.gate);
    assert_int_equal(pw_pace_ahead(&e), 0);
    assert_ptr_equal(pw_pace_pop_ready(p, 3000), &e);
    pw_pace_cancel(p, &a);
    pw_pace_cancel(p, NULL);
    pw_pace_free(p);
}

/* Kusto: at most N in flight per cluster; the rest wait for a release, not for time; a 429
 * holds the cluster's queue for Retry-After (or the fallback). */
static void test_pace_kusto(void **state)
{
    (void)state;
    pw_pace *p = pace_with(200, 10, 250, 25, 2);
    pw_pace_gate *g = gate(p, PW_AZ_PACE_KUSTO, "https://a.westus.kusto.windows.net", 0);
    pw_pace_gate *h = gate(p, PW_AZ_PACE_KUSTO, "https://b.westus.kusto.windows.net", 0);
    pw_pace_ticket t[6] = {0};
    assert_int_equal(pw_pace_acquire(p, g, &t[0], 0, 0), 1);
    assert_int_equal(pw_pace_acquire(p, g, &t[1], 0, 0), 1);
    assert_int_equal(pw_pace_acquire(p, g, &t[2], 0, 0), 0);
    assert_int_equal(pw_pace_acquire(p, g, &t[3], 0, 0), 0);
    assert_int_equal(pw_pace_acquire(p, h, &t[4], 0, 0), 1); /* another cluster: its own limit */
    assert_int_equal(pw_pace_level(g, 0), 2);
    assert_int_equal(pw_pace_next_ms(p, 0), UINT64_MAX);
    assert_null(pw_pace_pop_ready(p, 100000));
    assert_int_equal(pw_pace_done(p, &t[0], &ANSWER_200, 10), 0);
    assert_int_equal(pw_pace_next_ms(p, 10), 10);
    assert_ptr_equal(pw_pace_pop_ready(p, 10), &t[2]);
    pw_pace_cancel(p, &t[3]);
    pw_pace_answer k429 = {
        .status = 429, .remaining = -1, .retry_after_ms = -1, .fallback_ms = 300};
    assert_int_equal(pw_pace_done(p, &t[1], &k429, 20), 1);
    assert_int_equal(pw_pace_acquire(p, g, &t[5], 0, 20), 0); /* a place is free, but held */
    assert_int_equal(pw_pace_next_ms(p, 20), 320);
    assert_null(pw_pace_pop_ready(p, 319));
    assert_ptr_equal(pw_pace_pop_ready(p, 320), &t[5]);
    pw_azure_stats st;
    pw_pace_stats(p, 320, &st);
    assert_int_equal(st.throttled[PW_AZ_PACE_KUSTO], 1);
    assert_int_equal(st.in_flight[PW_AZ_PACE_KUSTO], 3);
    assert_int_equal(st.budgets[PW_AZ_PACE_KUSTO], 2);
    assert_true(st.level_min[PW_AZ_PACE_KUSTO] > 1.999); /* the busiest cluster: 2 in flight */
    pw_azure_budget b[4];
    assert_int_equal(pw_pace_budgets(p, 320, b, 4), 2);
    pw_pace_free(p);
}

/* 0 turns a kind off; the gate table is bounded: idle gates make room, busy ones do not. */
static void test_pace_off_and_bounds(void **state)
{
    (void)state;
    pw_pace *p = pace_with(0, 10, 250, 25, 0);
    pw_pace_gate *g = (pw_pace_gate *)1;
    assert_int_equal(pw_pace_gate_get(p, PW_AZ_PACE_ARM_WRITE, "sub", 0, &g), 0);
    assert_null(g);
    assert_int_equal(pw_pace_gate_get(p, PW_AZ_PACE_KUSTO, "https://x", 0, &g), 0);
    assert_null(g);
    static pw_pace_ticket t[PW_PACE_MAX_GATES];
    char scope[64];
    for (int i = 0; i < PW_PACE_MAX_GATES; i++) {
        snprintf(scope, sizeof scope, "sub-%d", i);
        pw_pace_gate *r = gate(p, PW_AZ_PACE_ARM_READ, scope, 0);
        assert_int_equal(pw_pace_acquire(p, r, &t[i], 0, 0), 1);
    }
    assert_int_equal(pw_pace_gate_get(p, PW_AZ_PACE_ARM_READ, "one-more", 0, &g), -1);
    assert_int_equal(pw_pace_done(p, &t[7], &ANSWER_200, 0), 0); /* sub-7 is idle now */
    pw_pace_gate *n = gate(p, PW_AZ_PACE_ARM_READ, "one-more", 0);
    assert_int_equal(pw_pace_level(n, 0), 250);
    pw_azure_stats st;
    pw_pace_stats(p, 0, &st);
    assert_int_equal(st.budgets[PW_AZ_PACE_ARM_READ], PW_PACE_MAX_GATES);
    for (int i = 0; i < PW_PACE_MAX_GATES; i++)
        pw_pace_cancel(p, &t[i]);
    pw_pace_free(p);
    pw_pace_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_same_origin),
        cmocka_unit_test(test_cluster_uri),
        cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_lro_terminal),
        cmocka_unit_test(test_guid),
        cmocka_unit_test(test_azure_arguments),
        cmocka_unit_test(test_header_count),
        cmocka_unit_test(test_pace_refill),
        cmocka_unit_test(test_pace_header_correction),
        cmocka_unit_test(test_pace_settles_when_all_answered),
        cmocka_unit_test(test_pace_drain_on_429),
        cmocka_unit_test(test_pace_fifo),
        cmocka_unit_test(test_pace_kusto),
        cmocka_unit_test(test_pace_off_and_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
