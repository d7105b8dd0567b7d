/* test_sim_units.c: cmocka unit tests of azure-sim's front helpers: base64url, form
 * parsing, RS256 JWTs, state checks and lookups (no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sim_core.h"

#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

static void test_b64url_roundtrip(void **state)
{
    (void)state;
    const unsigned char in[] = {0xfb, 0xff, 0x00, 0x10, 0x7e};
    for (size_t n = 0; n <= sizeof(in); n++) {
        char *e = sim_b64url_encode(in, n);
        assert_non_null(e);
        assert_null(strpbrk(e, "+/="));
        size_t len = 0;
        unsigned char *d = sim_b64url_decode(e, strlen(e), 64, &len);
        assert_non_null(d);
        assert_int_equal(len, n);
        assert_memory_equal(d, in, n);
        free(d);
        free(e);
    }
}

static void test_b64url_rejects(void **state)
{
    (void)state;
    size_t len;
    assert_null(sim_b64url_decode("ab$d", 4, 64, &len)); /* bad character */
    assert_null(sim_b64url_decode("a", 1, 64, &len));    /* impossible length */
    assert_null(sim_b64url_decode("QR", 2, 64, &len));   /* non-canonical last character */
    unsigned char *d = sim_b64url_decode("QQ", 2, 64, &len);
    assert_non_null(d);
    assert_int_equal(len, 1);
    assert_int_equal(d[0], 'A');
    free(d);
    assert_null(sim_b64url_decode("QUFBQUFBQUFB", 12, 4, &len)); /* over maxlen */
}

static void test_form_get(void **state)
{
    (void)state;
    const char *body = "grant_type=client_credentials&scope=https%3A%2F%2Fx%2F.default&"
                       "client_secret=a+b%2Bc&empty=&flag&bad=%zz";
    char *v = sim_form_get(body, "scope");
    assert_string_equal(v, "https://x/.default");
    free(v);
    v = sim_form_get(body, "client_secret");
    assert_string_equal(v, "a b+c");
    free(v);
    v = sim_form_get(body, "empty");
    assert_string_equal(v, "");
    free(v);
    v = sim_form_get(body, "flag");
    assert_string_equal(v, "");
    free(v);
    v = sim_form_get(body, "bad");
    assert_string_equal(v, "%zz");
    free(v);
    assert_null(sim_form_get(body, "grant"));
    assert_null(sim_form_get("", "x"));
}

static void test_jwt(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_RSA_gen(2048), *other = EVP_RSA_gen(2048);
    assert_non_null(k);
    json_t *claims = json_pack("{s:s,s:i}", "aud", "https://management.azure.com", "exp", 42);
    char *tok = sim_jwt_sign(k, "kid1", claims);
    assert_non_null(tok);
    json_t *h = NULL, *c = NULL;
    assert_int_equal(sim_jwt_verify(tok, k, &h, &c), 0);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(h, "kid")), "kid1");
    assert_true(json_equal(c, claims));
    json_decref(h);
    json_decref(c);
    assert_int_equal(sim_jwt_verify(tok, other, &h, &c), -2);
    assert_null(h);
    /* any change to the signature text fails */
    size_t n = strlen(tok);
    tok[n - 1] = tok[n - 1] == 'A' ? 'B' : 'A';
    assert_int_not_equal(sim_jwt_verify(tok, k, &h, &c), 0);
    assert_int_equal(sim_jwt_verify("a.b", k, &h, &c), -1);
    assert_int_equal(sim_jwt_verify("a.b.c.d", k, &h, &c), -1);
    assert_int_equal(sim_jwt_verify("", k, &h, &c), -1);
    /* alg none is refused even when it parses */
    assert_int_equal(sim_jwt_verify("eyJhbGciOiJub25lIn0.e30.", k, &h, &c), -2);
    free(tok);
    json_decref(claims);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static void test_state(void **state)
{
    (void)state;
    char err[256];
    json_t *root = sim_state_default();
    assert_int_equal(sim_state_check(root, err, sizeof(err)), 0);
    assert_non_null(sim_state_tenant(root, "11111111-1111-1111-1111-111111111111"));
    assert_non_null(sim_state_tenant(root, "CONTOSO.onmicrosoft.com"));
    assert_null(sim_state_tenant(root, "nope"));
    assert_non_null(sim_state_app(root, "33333333-3333-3333-3333-333333333333"));
    assert_non_null(sim_state_cluster_by_host(root, "MyKustoCluster.westus.kusto.windows.net"));
    assert_null(sim_state_cluster_by_host(root, "other.westus.kusto.windows.net"));
    assert_non_null(
        sim_state_cluster_by_uri(root, "https://mykustocluster.westus.kusto.windows.net/"));
    char *names[SIM_MAX_NAMES];
    size_t n = sim_state_cert_names(root, names, SIM_MAX_NAMES);
    int wild = 0, host = 0, ip = 0;
    for (size_t i = 0; i < n; i++) {
        wild |= !strcmp(names[i], "*.westus.kusto.windows.net");
        host |= !strcmp(names[i], "mykustocluster.westus.kusto.windows.net");
        ip |= !strcmp(names[i], "127.0.0.1");
        free(names[i]);
    }
    assert_true(wild && host && ip);
    json_decref(root);

    json_t *bad = json_loads("{\"tenants\": {}}", 0, NULL);
    assert_int_not_equal(sim_state_check(bad, err, sizeof(err)), 0);
    json_decref(bad);
    bad = json_loads("{\"subscriptions\": [{\"id\": \"s\", \"resourceGroups\": [{\"name\": "
                     "\"rg\", \"clusters\": [{\"name\": \"c\", \"uri\": \"http://x\"}]}]}]}",
                     0, NULL);
    assert_int_not_equal(sim_state_check(bad, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "uri"));
    json_decref(bad);
}

static void test_uri_eq(void **state)
{
    (void)state;
    assert_true(sim_uri_eq("https://management.azure.com/", "https://Management.Azure.com"));
    assert_false(sim_uri_eq("https://management.azure.com.evil", "https://management.azure.com"));
    assert_false(sim_uri_eq(NULL, "x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_roundtrip),
        cmocka_unit_test(test_b64url_rejects),
        cmocka_unit_test(test_form_get),
        cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_uri_eq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
