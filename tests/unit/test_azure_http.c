/* test_azure_http.c: Azure transport helpers without network: Retry-After, backoff bounds,
 * URL/host checks, error bodies, LRO states, and pw_azure argument checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "pw/azure.h"
#include "azure/http.h" /* internal to worker/azure */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after),     cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_same_origin),     cmocka_unit_test(test_cluster_uri),
        cmocka_unit_test(test_parse_error),     cmocka_unit_test(test_redact),
        cmocka_unit_test(test_lro_terminal),    cmocka_unit_test(test_guid),
        cmocka_unit_test(test_azure_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
