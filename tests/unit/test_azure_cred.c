/* test_azure_cred.c: credential selection (auto's order; managed identity never without a
 * configured endpoint), the client certificate's RS256 assertion (header, claims, signature,
 * x5c), certificate and federated token file errors, the redactor's secret slots and the
 * one plain-HTTP origin.  No network: nothing here sends a packet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "azure/cred.h" /* internal to worker/azure */
#include "azure/http.h"
#include "pw/azure.h"
#include "pw/config.h"
#include "pw/loop.h"

#define TENANT "11111111-1111-1111-1111-111111111111"
#define CLIENT "33333333-3333-3333-3333-333333333333"

static const char *const ENV_VARS[] = {"AZURE_TENANT_ID",
                                       "AZURE_CLIENT_ID",
                                       "AZURE_CLIENT_SECRET",
                                       "AZURE_AUTHORITY_HOST",
                                       "AZURE_CLIENT_CERTIFICATE_PATH",
                                       "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                                       "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
                                       "AZURE_FEDERATED_TOKEN_FILE",
                                       "IDENTITY_ENDPOINT",
                                       "IDENTITY_HEADER"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof ENV_VARS / sizeof ENV_VARS[0]; i++)
        unsetenv(ENV_VARS[i]);
}

static pw_azure_credential select_ok(const pw_azure_config *cfg)
{
    pw_azure_credential c = PW_AZ_CRED_AUTO;
    char err[600] = "";
    if (pw_azure_credential_select(cfg, &c, err, sizeof err)) fail_msg("select failed: %s", err);
    return c;
}

static void select_fails(const pw_azure_config *cfg, const char *want_in_err)
{
    pw_azure_credential c = PW_AZ_CRED_AUTO;
    char err[600] = "";
    assert_int_equal(pw_azure_credential_select(cfg, &c, err, sizeof err), -1);
    if (!strstr(err, want_in_err)) fail_msg("error \"%s\" lacks \"%s\"", err, want_in_err);
}

static void test_auto_order(void **state)
{
    (void)state;
    pw_azure_config cfg;
    pw_azure_config_defaults(&cfg);
    cfg.tenant_id = TENANT;
    cfg.client_id = CLIENT;
    cfg.client_secret = "s";
    cfg.client_certificate_path = "/c.pem";
    cfg.federated_token_file = "/t";
    cfg.imds_endpoint = "http://127.0.0.1:1/metadata/identity/oauth2/token";
    assert_int_equal(select_ok(&cfg), PW_AZ_CRED_SECRET); /* EnvironmentCredential: secret */
    cfg.client_secret = NULL;
    assert_int_equal(select_ok(&cfg), PW_AZ_CRED_CERTIFICATE); /* then certificate */
    cfg.client_certificate_path = "";
    assert_int_equal(select_ok(&cfg), PW_AZ_CRED_WORKLOAD); /* WorkloadIdentityCredential */
    cfg.federated_token_file = NULL;
    assert_int_equal(select_ok(&cfg), PW_AZ_CRED_MANAGED); /* ManagedIdentityCredential */
    /* an app credential without its tenant is not configured: next in the order */
    cfg.client_secret = "s";
    cfg.tenant_id = NULL;
    assert_int_equal(select_ok(&cfg), PW_AZ_CRED_MANAGED);
    cfg.imds_endpoint = NULL;
    cfg.identity_endpoint = "http://127.0.0.1:2/msi/token";
    cfg.identity_header = "h";
    assert_int_equal(select_ok(&cfg), PW_AZ_CRED_MANAGED);
    assert_string_equal(pw_azure_credential_name(PW_AZ_CRED_WORKLOAD), "workload");
    assert_string_equal(pw_azure_credential_name(PW_AZ_CRED_AUTO), "auto");
}

/* The rule of issue 11: auto never picks managed identity on the strength of the default
 * IMDS address; without IDENTITY_ENDPOINT or azure.imds.endpoint it fails instead. */
static void test_auto_never_blind_imds(void **state)
{
    (void)state;
    pw_azure_config cfg;
    pw_azure_config_defaults(&cfg);
    assert_null(cfg.imds_endpoint); /* the default is not "configured" */
    select_fails(&cfg, "no credential is configured");
    cfg.client_id = CLIENT; /* a user-assigned identity's client id alone is no endpoint */
    select_fails(&cfg, "no credential is configured");
    cfg.tenant_id = TENANT;
    select_fails(&cfg, "no credential is configured");
    cfg.identity_header = "h"; /* the header without the endpoint */
    select_fails(&cfg, "no credential is configured");
    cfg.credential = "auto";
    select_fails(&cfg, "no credential is configured");
    /* pw_azure_new refuses it the same way (and sends nothing: no call was made) */
    char err[600];
    pw_loop *loop = pw_loop_new(err, sizeof err);
    assert_null(pw_azure_new(loop, &cfg, err, sizeof err));
    assert_non_null(strstr(err, "no credential is configured"));

    /* The loader: a configuration without a credential, nothing in the environment. */
    clear_env();
    char path[] = "/tmp/pw-cred-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "kafka.bootstrap.servers=127.0.0.1:1\nkafka.group.id=g\n"
                       "azure.tenant.id=" TENANT "\nazure.client.id=" CLIENT "\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    pw_config pc;
    assert_int_equal(pw_config_load(&pc, path, err, sizeof err), 0);
    assert_null(pc.azure.imds_endpoint);
    assert_int_equal(pw_config_require(&pc, err, sizeof err), -1);
    assert_non_null(strstr(err, "no credential is configured"));
    pw_config_free(&pc);
    /* ... and with IDENTITY_ENDPOINT (App Service) it is managed identity */
    setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token", 1);
    setenv("IDENTITY_HEADER", "hdr", 1);
    assert_int_equal(pw_config_load(&pc, path, err, sizeof err), 0);
    assert_int_equal(pw_config_require(&pc, err, sizeof err), 0);
    assert_int_equal(select_ok(&pc.azure), PW_AZ_CRED_MANAGED);
    pw_config_free(&pc);
    clear_env();
    unlink(path);
    pw_loop_free(loop);
}

static void test_explicit(void **state)
{
    (void)state;
    pw_azure_config cfg;
    pw_azure_config_defaults(&cfg);
    cfg.credential = "managed"; /* explicit: the default IMDS address, nothing else needed */
    assert_int_equal(select_ok(&cfg), PW_AZ_CRED_MANAGED);
    cfg.identity_endpoint = "http://127.0.0.1:2/msi/token";
    select_fails(&cfg, "IDENTITY_HEADER");
    cfg.identity_endpoint = NULL;
    cfg.credential = "secret";
    select_fails(&cfg, "azure.tenant.id");
    cfg.tenant_id = TENANT;
    select_fails(&cfg, "azure.client.id");
    cfg.client_id = CLIENT;
    select_fails(&cfg, "azure.client.secret");
    cfg.credential = "certificate";
    cfg.client_secret = "s"; /* explicit wins over auto's order */
    select_fails(&cfg, "azure.client.certificate.path");
    cfg.credential = "workload";
    select_fails(&cfg, "azure.federated.token.file");
    cfg.federated_token_file = "/t";
    assert_int_equal(select_ok(&cfg), PW_AZ_CRED_WORKLOAD);
    cfg.credential = "password";
    select_fails(&cfg, "azure.credential: expected");
}

/* ---- the certificate ---- */

static EVP_PKEY *g_key;
static X509 *g_cert, *g_ca;
static char g_pem[64], g_enc[64];

static X509 *make_cert(EVP_PKEY *key, const char *cn, long serial)
{
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static int cert_setup(void **state)
{
    (void)state;
    g_key = EVP_RSA_gen(2048);
    EVP_PKEY *ca_key = EVP_RSA_gen(2048);
    g_cert = make_cert(g_key, "policy-worker-app", 1);
    g_ca = make_cert(ca_key, "some-ca", 2);
    EVP_PKEY_free(ca_key);
    /* the chain file: a CA first, then the key, then the leaf (the leaf is found by its key) */
    snprintf(g_pem, sizeof g_pem, "/tmp/pw-cert-XXXXXX");
    int fd = mkstemp(g_pem);
    FILE *f = fdopen(fd, "w");
    PEM_write_X509(f, g_ca);
    PEM_write_PrivateKey(f, g_key, NULL, NULL, 0, NULL, NULL);
    PEM_write_X509(f, g_cert);
    fclose(f);
    snprintf(g_enc, sizeof g_enc, "/tmp/pw-cert-enc-XXXXXX");
    fd = mkstemp(g_enc);
    f = fdopen(fd, "w");
    PEM_write_PKCS8PrivateKey(f, g_key, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)"pa55word");
    PEM_write_X509(f, g_cert);
    fclose(f);
    return 0;
}

static int cert_teardown(void **state)
{
    (void)state;
    unlink(g_pem);
    unlink(g_enc);
    EVP_PKEY_free(g_key);
    X509_free(g_cert);
    X509_free(g_ca);
    return 0;
}

static json_t *part(const char *s, size_t n)
{
    /* base64url -> bytes via EVP_DecodeBlock on the padded standard form */
    char *b = calloc(1, n + 4);
    size_t k;
    for (k = 0; k < n; k++)
        b[k] = s[k] == '-' ? '+' : s[k] == '_' ? '/' : s[k];
    while (k % 4)
        b[k++] = '=';
    unsigned char *raw = malloc(k);
    int len = EVP_DecodeBlock(raw, (unsigned char *)b, (int)k);
    assert_true(len >= 0);
    while (len > 0 && k > 0 && b[--k] == '=')
        len--;
    json_t *j = json_loadb((char *)raw, (size_t)len, 0, NULL);
    free(b);
    free(raw);
    return j;
}

static char *leaf_hash(X509 *x)
{
    unsigned char *der = NULL, md[32];
    unsigned mdlen = 0;
    int n = i2d_X509(x, &der);
    EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    return pw_cred_b64(md, mdlen, 0);
}

static void test_assertion(void **state)
{
    (void)state;
    char err[400];
    pw_cred_cert *c = pw_cred_cert_load(g_pem, NULL, err, sizeof err);
    if (!c) fail_msg("%s", err);
    assert_int_equal(pw_cred_cert_chain_len(c), 2);
    char *want = leaf_hash(g_cert);
    assert_string_equal(pw_cred_cert_thumbprint(c), want);
    const char *url = "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token";
    for (int chain = 0; chain < 2; chain++) {
        char *a = pw_cred_assertion(c, CLIENT, url, 1700000000, "jti-1", chain);
        assert_non_null(a);
        const char *d1 = strchr(a, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        assert_non_null(d2);
        json_t *h = part(a, (size_t)(d1 - a)), *p = part(d1 + 1, (size_t)(d2 - d1 - 1));
        assert_non_null(h);
        assert_non_null(p);
        assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
        assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
        assert_string_equal(json_string_value(json_object_get(h, "x5t#S256")), want);
        json_t *x5c = json_object_get(h, "x5c");
        if (chain) {
            assert_int_equal(json_array_size(x5c), 2);
            unsigned char *der = NULL;
            int n = i2d_X509(g_cert, &der);
            char *b = pw_cred_b64(der, (size_t)n, 1);
            assert_string_equal(json_string_value(json_array_get(x5c, 0)), b); /* leaf first */
            free(b);
            OPENSSL_free(der);
        } else {
            assert_null(x5c);
        }
        assert_string_equal(json_string_value(json_object_get(p, "aud")), url);
        assert_string_equal(json_string_value(json_object_get(p, "iss")), CLIENT);
        assert_string_equal(json_string_value(json_object_get(p, "sub")), CLIENT);
        assert_string_equal(json_string_value(json_object_get(p, "jti")), "jti-1");
        assert_int_equal(json_integer_value(json_object_get(p, "nbf")), 1700000000);
        assert_int_equal(json_integer_value(json_object_get(p, "iat")), 1700000000);
        assert_int_equal(json_integer_value(json_object_get(p, "exp")),
                         1700000000 + PW_AZ_ASSERTION_LIFETIME_S);
        /* the RS256 signature verifies with the certificate's public key */
        const char *s = d2 + 1;
        size_t sl = strlen(s), k;
        char *b = calloc(1, sl + 4);
        for (k = 0; k < sl; k++)
            b[k] = s[k] == '-' ? '+' : s[k] == '_' ? '/' : s[k];
        while (k % 4)
            b[k++] = '=';
        unsigned char sig[512];
        int siglen = EVP_DecodeBlock(sig, (unsigned char *)b, (int)k);
        while (k > 0 && b[--k] == '=')
            siglen--;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        assert_int_equal(
            EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(g_cert)), 1);
        assert_int_equal(
            EVP_DigestVerify(md, sig, (size_t)siglen, (const unsigned char *)a, (size_t)(d2 - a)),
            1);
        EVP_MD_CTX_free(md);
        free(b);
        json_decref(h);
        json_decref(p);
        pw_cred_wipe(a);
    }
    free(want);
    pw_cred_cert_free(c);
    pw_cred_cert_free(NULL);
}

static void test_cert_errors(void **state)
{
    (void)state;
    char err[400];
    assert_null(pw_cred_cert_load("/nonexistent/cert.pem", NULL, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));
    /* encrypted key: no password, a wrong one, the right one */
    assert_null(pw_cred_cert_load(g_enc, NULL, err, sizeof err));
    assert_non_null(strstr(err, "private key"));
    assert_null(pw_cred_cert_load(g_enc, "Xq7-not-it", err, sizeof err));
    assert_null(strstr(err, "Xq7-not-it")); /* the password is never echoed */
    pw_cred_cert *c = pw_cred_cert_load(g_enc, "pa55word", err, sizeof err);
    if (!c) fail_msg("%s", err);
    assert_int_equal(pw_cred_cert_chain_len(c), 1);
    pw_cred_cert_free(c);
    /* a certificate without its key; a key whose certificate is missing */
    char path[] = "/tmp/pw-cert-bad-XXXXXX";
    FILE *f = fdopen(mkstemp(path), "w");
    PEM_write_X509(f, g_ca);
    fclose(f);
    assert_null(pw_cred_cert_load(path, NULL, err, sizeof err));
    f = fopen(path, "w");
    PEM_write_PrivateKey(f, g_key, NULL, NULL, 0, NULL, NULL);
    PEM_write_X509(f, g_ca);
    fclose(f);
    assert_null(pw_cred_cert_load(path, NULL, err, sizeof err));
    assert_non_null(strstr(err, "matches its private key"));
    unlink(path);
}

static void write_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
}

static void test_token_file(void **state)
{
    (void)state;
    char path[] = "/tmp/pw-token-XXXXXX", err[400];
    close(mkstemp(path));
    write_file(path, "  eyJhbGc.eyJzdWIi.c2ln\n", 24);
    char *t = pw_cred_read_token_file(path, err, sizeof err);
    assert_non_null(t);
    assert_string_equal(t, "eyJhbGc.eyJzdWIi.c2ln");
    pw_cred_wipe(t);
    write_file(path, "\n", 1);
    assert_null(pw_cred_read_token_file(path, err, sizeof err));
    assert_non_null(strstr(err, "empty"));
    write_file(path, "abc\r\nInjected: x", 16);
    assert_null(pw_cred_read_token_file(path, err, sizeof err));
    assert_null(strstr(err, "Injected")); /* never quoted */
    char *big = malloc(PW_AZ_FEDERATED_TOKEN_MAX + 10);
    memset(big, 'a', PW_AZ_FEDERATED_TOKEN_MAX + 10);
    write_file(path, big, PW_AZ_FEDERATED_TOKEN_MAX + 10);
    free(big);
    assert_null(pw_cred_read_token_file(path, err, sizeof err));
    unlink(path);
    assert_null(pw_cred_read_token_file(path, err, sizeof err));
}

static void test_http_secrets_and_plain(void **state)
{
    (void)state;
    char err[300], out[300];
    pw_loop *loop = pw_loop_new(err, sizeof err);
    pw_http_opts o = {.max_response_bytes = 1024,
                      .secret = "sec-1",
                      .plain_http_endpoint =
                          "http://127.0.0.1:8080/metadata/identity/oauth2/token"};
    pw_http *h = pw_http_new(loop, &o, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(pw_http_set_secret(h, PW_HTTP_SECRET_ASSERTION, "assert+ion/value"), 0);
    assert_int_equal(pw_http_set_secret(h, PW_HTTP_SECRET_FEDERATED, "fed.token.value"), 0);
    assert_int_equal(pw_http_set_secret(h, PW_HTTP_SECRET_IDENTITY, "idhdr-123"), 0);
    const char *in = "a sec-1 b assert%2Bion%2Fvalue c fed.token.value d idhdr-123 e";
    pw_http_redact(h, out, sizeof out, in, strlen(in));
    assert_string_equal(out, "a *** b *** c *** d *** e");
    /* a rotated federated token replaces the old one in its slot */
    assert_int_equal(pw_http_set_secret(h, PW_HTTP_SECRET_FEDERATED, "fed.token.two"), 0);
    in = "fed.token.two";
    pw_http_redact(h, out, sizeof out, in, strlen(in));
    assert_string_equal(out, "***");
    /* plain HTTP for the identity endpoint's origin alone */
    assert_true(
        pw_http_plain_allowed(h, "http://127.0.0.1:8080/metadata/identity/oauth2/token?a=b"));
    assert_false(pw_http_plain_allowed(h, "http://127.0.0.1:8081/metadata/identity/oauth2/token"));
    assert_false(pw_http_plain_allowed(h, "http://management.azure.com/subscriptions"));
    assert_false(pw_http_plain_allowed(h, "http://u:p@127.0.0.1:8080/x"));
    assert_false(pw_http_plain_allowed(h, "https://127.0.0.1:8080/x"));
    pw_http_free(h);
    o.plain_http_endpoint = NULL;
    h = pw_http_new(loop, &o, err, sizeof err);
    assert_false(pw_http_plain_allowed(h, "http://127.0.0.1:8080/x"));
    pw_http_free(h);
    /* the managed-identity endpoint: https, or http on loopback / link-local only */
    pw_azure_config cfg;
    pw_azure_config_defaults(&cfg);
    cfg.credential = "managed";
    cfg.imds_endpoint = "http://10.1.2.3/metadata/identity/oauth2/token";
    assert_null(pw_azure_new(loop, &cfg, err, sizeof err));
    assert_non_null(strstr(err, "loopback"));
    cfg.imds_endpoint = "http://127.0.0.1:1/metadata/identity/oauth2/token?x=1";
    assert_null(pw_azure_new(loop, &cfg, err, sizeof err));
    cfg.imds_endpoint = "http://127.0.0.1:1/metadata/identity/oauth2/token";
    pw_azure *az = pw_azure_new(loop, &cfg, err, sizeof err); /* made, nothing sent */
    if (!az) fail_msg("%s", err);
    pw_azure_free(az);
    pw_loop_free(loop);
}

int main(void)
{
    clear_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_order),
        cmocka_unit_test(test_auto_never_blind_imds),
        cmocka_unit_test(test_explicit),
        cmocka_unit_test_setup_teardown(test_assertion, cert_setup, cert_teardown),
        cmocka_unit_test_setup_teardown(test_cert_errors, cert_setup, cert_teardown),
        cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_http_secrets_and_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
