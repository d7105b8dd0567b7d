/* test_admin.c: the admin endpoint in process, over loopback HTTP (libcurl): /healthz follows
 * the loop's beat (503 once it is older than PW_ADMIN_STALL_MS), /readyz lists what is not
 * ready, /metrics is the registry's text, only GET and HEAD, unknown paths 404, and listen
 * addresses that are not HOST:PORT are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/admin.h"
#include "pw/loop.h"
#include "pw/metrics.h"

typedef struct got {
    char body[8192];
    size_t len;
} got;

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    got *g = ctx;
    size_t k = size * n;
    size_t room = sizeof g->body - 1 - g->len;
    memcpy(g->body + g->len, p, k < room ? k : room);
    g->len += k < room ? k : room;
    g->body[g->len] = '\0';
    return k;
}

/* status of METHOD path; the body in *g */
static long fetch(const pw_admin *a, const char *method, const char *path, got *g)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", pw_admin_port(a), path);
    memset(g, 0, sizeof *g);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "POST")) curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

static void test_endpoints(void **state)
{
    (void)state;
    char err[256];
    pw_admin *a = pw_admin_start("127.0.0.1:0", err, sizeof err);
    assert_non_null(a);
    assert_true(pw_admin_port(a) > 0);
    got g;
    /* no beat yet, then a stale one: not healthy; a fresh one: healthy */
    assert_int_equal(fetch(a, "GET", "/healthz", &g), 503);
    pw_admin_beat(a, pw_monotonic_ms() - PW_ADMIN_STALL_MS - 1000);
    assert_int_equal(fetch(a, "GET", "/healthz", &g), 503);
    assert_non_null(strstr(g.body, "has not turned for"));
    pw_admin_beat(a, pw_monotonic_ms());
    assert_int_equal(fetch(a, "GET", "/healthz", &g), 200);
    assert_string_equal(g.body, "{\"healthy\":true}\n");
    /* every part starts not ready; reasons name the part, JSON-escaped */
    assert_int_equal(fetch(a, "GET", "/readyz", &g), 503);
    assert_non_null(strstr(g.body, "\"consumer: starting\""));
    pw_admin_ready(a, PW_ADMIN_CONSUMER, NULL);
    pw_admin_ready(a, PW_ADMIN_PRODUCER, NULL);
    pw_admin_ready(a, PW_ADMIN_CREDENTIAL, "AuthenticationFailed: AADSTS7000215: \"bad\"");
    assert_int_equal(fetch(a, "GET", "/readyz", &g), 503);
    assert_string_equal(g.body, "{\"ready\":false,\"reasons\":[\"credential: AuthenticationFailed: "
                                "AADSTS7000215: \\\"bad\\\"\"]}\n");
    pw_admin_ready(a, PW_ADMIN_CREDENTIAL, NULL);
    assert_int_equal(fetch(a, "GET", "/readyz", &g), 200);
    /* metrics */
    pw_metrics_reset();
    pw_metrics_add(PW_M_REQUESTS, 2, "succeeded", "", NULL);
    pw_metrics_observe(PW_M_REQUEST_SECONDS, 0.2, "succeeded");
    assert_int_equal(fetch(a, "GET", "/metrics", &g), 200);
    assert_non_null(strstr(g.body, "# TYPE pw_requests_total counter\n"
                                   "pw_requests_total{status=\"succeeded\",code=\"\"} 2\n"));
    assert_non_null(strstr(g.body, "pw_request_duration_seconds_bucket{status=\"succeeded\","
                                   "le=\"0.25\"} 1\n"));
    assert_non_null(strstr(g.body, "pw_request_duration_seconds_bucket{status=\"succeeded\","
                                   "le=\"0.1\"} 0\n"));
    assert_non_null(strstr(g.body, "pw_request_duration_seconds_count{status=\"succeeded\"} 1\n"));
    /* only GET / HEAD; unknown paths */
    assert_int_equal(fetch(a, "POST", "/metrics", &g), 405);
    assert_int_equal(fetch(a, "DELETE", "/readyz", &g), 405);
    assert_int_equal(fetch(a, "GET", "/nowhere", &g), 404);
    pw_admin_stop(a);
}

static void test_listen_forms(void **state)
{
    (void)state;
    assert_true(pw_admin_listen_ok("127.0.0.1:9464"));
    assert_true(pw_admin_listen_ok("0.0.0.0:0"));
    assert_true(pw_admin_listen_ok("[::1]:9464"));
    assert_false(pw_admin_listen_ok("localhost:9464")); /* an address, not a name */
    assert_false(pw_admin_listen_ok("127.0.0.1"));
    assert_false(pw_admin_listen_ok("127.0.0.1:70000"));
    assert_false(pw_admin_listen_ok("127.0.0.1:9x"));
    assert_false(pw_admin_listen_ok("[::1]9464"));
    char err[256];
    assert_null(pw_admin_start("nowhere", err, sizeof err));
    assert_non_null(strstr(err, "worker.admin.listen"));
}

/* Label values are escaped as the text format wants them; the series bound holds. */
static void test_metrics_text(void **state)
{
    (void)state;
    pw_metrics_reset();
    pw_metrics_add(PW_M_DEAD_LETTERS, 1, "a\"b\\c\nd", NULL, NULL);
    for (int i = 0; i < PW_METRICS_SERIES_MAX + 5; i++) {
        char p[16];
        snprintf(p, sizeof p, "%d", i);
        pw_metrics_set(PW_M_CONSUMER_LAG, i, "t", p, NULL);
    }
    size_t len = 0;
    char *text = pw_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "pw_dead_letters_total{code=\"a\\\"b\\\\c\\nd\"} 1\n"));
    assert_non_null(strstr(text, "pw_metrics_dropped_series_total 6\n"));
    free(text);
    pw_metrics_reset();
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_metrics_text),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
