/* sim_aad.c: azure-sim's Microsoft Entra ID (AAD) token endpoint: the client-credentials
 * grant with a client secret or a certificate-signed client assertion. */
#include "sim_core.h"
#include "kusto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define CLOCK_SKEW_S 300 /* AAD tolerates about five minutes of clock skew */
#define MAX_FIELD 16384  /* form fields longer than this are rejected */

json_t *sim_aad_error(const char *error, long code, const char *fmt, ...)
{
    char msg[1024], desc[1400], ts[32], trace[40], corr[40], uri[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sim_utf8_scrub(msg);
    sim_aad_timestamp(ts, sizeof(ts));
    sim_guid(trace, sizeof(trace));
    sim_guid(corr, sizeof(corr));
    snprintf(desc, sizeof(desc), "AADSTS%ld: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
             code, msg, trace, corr, ts);
    snprintf(uri, sizeof(uri), "https://login.microsoftonline.com/error?code=%ld", code);
    return json_pack("{s:s,s:s,s:[I],s:s,s:s,s:s,s:s}", "error", error, "error_description", desc,
                     "error_codes", (json_int_t)code, "timestamp", ts, "trace_id", trace,
                     "correlation_id", corr, "error_uri", uri);
}

static void fail(sim_response *resp, int status, const char *error, long code, const char *msg)
{
    resp->status = status;
    resp->body = sim_aad_error(error, code, "%s", msg);
}

/* The resource a scope names, or NULL (malloc'd). */
static char *scope_resource(const char *scope)
{
    const char *p = scope;
    while (p && *p) {
        size_t n = strcspn(p, " ");
        if (n > 9 && strncmp(p + n - 9, "/.default", 9) == 0) {
            char *r = strndup(p, n - 9);
            size_t l = strlen(r);
            while (l > 0 && r[l - 1] == '/')
                r[--l] = '\0';
            return r;
        }
        p += n;
        p += strspn(p, " ");
    }
    return NULL;
}

static bool resource_known(json_t *root, const char *res)
{
    static const char *const fixed[] = {
        "https://management.azure.com",    "https://management.core.windows.net",
        "https://kusto.kusto.windows.net", "https://api.kusto.windows.net",
        "https://help.kusto.windows.net",
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (sim_uri_eq(res, fixed[i])) return true;
    return sim_state_cluster_by_uri(root, res) != NULL;
}

/* The assertion's aud must be the token endpoint (v2, or v1 for /oauth2/token; the tenant as
 * the path names it or as its id), as Entra ID requires of certificate assertions. */
static bool aud_matches(json_t *aud, const char *tenant, const char *tid)
{
    char want[4][300];
    snprintf(want[0], sizeof(want[0]), "https://login.microsoftonline.com/%s/oauth2/v2.0/token",
             tenant);
    snprintf(want[1], sizeof(want[1]), "https://login.microsoftonline.com/%s/oauth2/v2.0/token",
             tid);
    snprintf(want[2], sizeof(want[2]), "https://login.microsoftonline.com/%s/oauth2/token", tenant);
    snprintf(want[3], sizeof(want[3]), "https://login.microsoftonline.com/%s/oauth2/token", tid);
    json_t *one = json_is_array(aud) ? NULL : aud;
    size_t i, n = json_is_array(aud) ? json_array_size(aud) : 1;
    for (i = 0; i < n; i++) {
        const char *a = json_string_value(one ? one : json_array_get(aud, i));
        for (size_t w = 0; a && w < 4; w++)
            if (sim_uri_eq(a, want[w])) return true;
    }
    return false;
}

/* base64url of the SHA-256 (sha256) or SHA-1 digest of x's DER; malloc'd. */
static char *thumbprint(X509 *x, int sha256)
{
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int n = i2d_X509(x, &der);
    char *out = NULL;
    if (n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, sha256 ? EVP_sha256() : EVP_sha1(),
                            NULL) == 1)
        out = sim_b64url_encode(md, mdlen);
    OPENSSL_free(der);
    return out;
}

/* Assertion ids seen (per app, until their exp): Entra ID refuses a replayed jti.  Touched
 * with st->lock held only. */
static json_t *g_seen_jti;
#define SEEN_JTI_MAX 50000

/* 0 when (app, jti) is new (then remembered until exp), 1 when seen before. */
static int jti_replayed(const char *app, const char *jti, long long exp, long long now)
{
    if (!g_seen_jti) g_seen_jti = json_object();
    if (json_object_size(g_seen_jti) > SEEN_JTI_MAX / 2) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(g_seen_jti, tmp, k, v) if (json_integer_value(v) < now)
            json_object_del(g_seen_jti, k);
        if (json_object_size(g_seen_jti) > SEEN_JTI_MAX) json_object_clear(g_seen_jti);
    }
    char key[600];
    snprintf(key, sizeof(key), "%s|%.500s", app, jti);
    json_t *v = json_object_get(g_seen_jti, key);
    if (v && json_integer_value(v) >= now) return 1;
    json_object_set_new(g_seen_jti, key, json_integer(exp + CLOCK_SKEW_S));
    return 0;
}

/* The time checks both kinds of assertion share: 0 or 700024 / 700027. */
static long check_times(json_t *claims, long long now, char *msg, size_t msglen)
{
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    if (!json_is_number(exp)) {
        snprintf(msg, msglen, "The client assertion has no 'exp' claim.");
        return 700027;
    }
    if ((long long)json_number_value(exp) + CLOCK_SKEW_S < now ||
        (json_is_number(nbf) && (long long)json_number_value(nbf) - CLOCK_SKEW_S > now)) {
        snprintf(msg, msglen, "Client assertion is not within its valid time range.");
        return 700024;
    }
    return 0;
}

/* A certificate assertion (iss = sub = the client id), checked as Entra ID does: the header's
 * x5t#S256 (or x5t) names a registered certificate, whose key verifies the RS256 signature;
 * aud = the token endpoint; exp/nbf; a jti not used before.  0 = ok, else the AADSTS code
 * with a message in msg. */
static long check_cert_assertion(json_t *app, const char *assertion, json_t *hdr0,
                                 const char *client_id, const char *tenant, const char *tid,
                                 char *msg, size_t msglen)
{
    const char *want256 = json_string_value(json_object_get(hdr0, "x5t#S256"));
    const char *want1 = json_string_value(json_object_get(hdr0, "x5t"));
    json_t *hdr = NULL, *claims = NULL;
    size_t i;
    json_t *c;
    int found = 0, verified = 0;
    json_array_foreach(json_object_get(app, "certificates"), i, c)
    {
        const char *pem = json_string_value(c);
        if (!pem) continue;
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!x) continue;
        char *t = thumbprint(x, want256 != NULL);
        const char *want = want256 ? want256 : want1;
        int match = t && want && strcmp(t, want) == 0;
        free(t);
        if (match) {
            found = 1;
            EVP_PKEY *k = X509_get0_pubkey(x);
            verified = k && sim_jwt_verify(assertion, k, &hdr, &claims) == 0;
        }
        X509_free(x);
        if (found) break;
    }
    ERR_clear_error();
    if (!found) {
        snprintf(msg, msglen,
                 "Client assertion contains an invalid signature. [Reason - The key was not "
                 "found., Thumbprint of key used by client: '%.64s'] No certificate with this "
                 "thumbprint (x5t#S256 or x5t header) is registered for app '%s'.",
                 want256 ? want256 : want1 ? want1 : "(none)", client_id);
        return 700027;
    }
    if (!verified) {
        snprintf(msg, msglen,
                 "Client assertion failed signature validation with the certificate registered "
                 "for app '%s'.",
                 client_id);
        return 700027;
    }
    long code = 0;
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    long long now = sim_wall_s();
    if (!aud_matches(json_object_get(claims, "aud"), tenant, tid)) {
        snprintf(msg, msglen,
                 "The audience claim of the client assertion must be the token endpoint "
                 "'https://login.microsoftonline.com/%s/oauth2/v2.0/token'.",
                 tenant);
        code = 700027;
    } else if (!iss || !sub || strcasecmp(iss, client_id) != 0 || strcasecmp(sub, client_id) != 0) {
        snprintf(msg, msglen,
                 "The issuer and subject claims of the client assertion must be the client "
                 "id '%s'.",
                 client_id);
        code = 700027;
    } else if ((code = check_times(claims, now, msg, msglen))) {
    } else if (!jti || !jti[0]) {
        snprintf(msg, msglen, "The client assertion has no 'jti' claim.");
        code = 700027;
    } else if (jti_replayed(client_id, jti, (long long)json_number_value(json_object_get(claims, "exp")), now)) {
        snprintf(msg, msglen, "The client assertion's jti '%.64s' was already used: assertions "
                 "cannot be replayed.", jti);
        code = 700027;
    }
    json_decref(hdr);
    json_decref(claims);
    return code;
}

/* A federated credential's assertion (workload identity federation): a token of an external
 * issuer that one of the app's federatedCredentials names (issuer, subject, audiences), with
 * a valid signature by that issuer's key (the test issuer's only) and within exp/nbf.  Entra
 * ID's codes: 700211 issuer, 700212 audience, 70021 no record for the subject, 700024 time,
 * 50013 signature.  0 = ok. */
static long check_federated(json_t *app, const sim_certs *certs, const char *assertion,
                            json_t *claims0, const char *client_id, char *msg, size_t msglen)
{
    const char *iss = json_string_value(json_object_get(claims0, "iss"));
    json_t *fcs = json_object_get(app, "federatedCredentials");
    size_t i;
    json_t *fc;
    int issuer_known = 0;
    json_array_foreach(fcs, i, fc)
    {
        const char *fi = json_string_value(json_object_get(fc, "issuer"));
        if (iss && fi && strcmp(fi, iss) == 0) issuer_known = 1;
    }
    if (!issuer_known) {
        snprintf(msg, msglen,
                 "No matching federated identity record found for presented assertion issuer "
                 "'%.200s'. Please check your federated identity credential Subject, Audience "
                 "and Issuer against the presented assertion. (app '%s')",
                 iss ? iss : "", client_id);
        return 700211;
    }
    json_t *hdr = NULL, *claims = NULL;
    if (strcmp(iss, SIM_TEST_ISSUER) != 0 ||
        sim_jwt_verify(assertion, certs->issuer_key, &hdr, &claims) != 0) {
        snprintf(msg, msglen, "Assertion failed signature validation. (issuer '%.200s')", iss);
        return 50013;
    }
    long code = check_times(claims, sim_wall_s(), msg, msglen);
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    json_t *aud = json_object_get(claims, "aud");
    int aud_ok = 0, sub_ok = 0;
    json_array_foreach(fcs, i, fc)
    {
        const char *fi = json_string_value(json_object_get(fc, "issuer"));
        if (!fi || strcmp(fi, iss) != 0) continue;
        size_t k, m;
        json_t *fa, *ta;
        int this_aud = 0;
        json_array_foreach(json_object_get(fc, "audiences"), k, fa)
        {
            const char *want = json_string_value(fa);
            if (json_is_string(aud) && want && !strcmp(want, json_string_value(aud))) this_aud = 1;
            json_array_foreach(json_is_array(aud) ? aud : NULL, m, ta) if (
                want && json_is_string(ta) && !strcmp(want, json_string_value(ta))) this_aud = 1;
        }
        const char *fs = json_string_value(json_object_get(fc, "subject"));
        aud_ok |= this_aud;
        if (this_aud && fs && sub && strcmp(fs, sub) == 0) sub_ok = 1;
    }
    if (code) {
    } else if (!aud_ok) {
        snprintf(msg, msglen,
                 "No matching federated identity record found for presented assertion audience "
                 "'%.200s'. (app '%s')",
                 json_is_string(aud) ? json_string_value(aud) : "", client_id);
        code = 700212;
    } else if (!sub_ok) {
        snprintf(msg, msglen,
                 "No matching federated identity record found for presented assertion. "
                 "Assertion Issuer: '%.200s'. Assertion Subject: '%.200s'. (app '%s')",
                 iss, sub ? sub : "", client_id);
        code = 70021;
    }
    json_decref(hdr);
    json_decref(claims);
    return code;
}

/* Certificate assertion (iss = client id) or federated credential (any other issuer), as
 * Entra ID tells them apart.  0 = ok; *fed set for a federated one. */
static long check_assertion(json_t *app, const sim_certs *certs, const char *assertion,
                            const char *client_id, const char *tenant, const char *tid,
                            int *fed, char *msg, size_t msglen)
{
    json_t *hdr = NULL, *claims = NULL;
    *fed = 0;
    if (sim_jwt_parse(assertion, &hdr, &claims) != 0) {
        snprintf(msg, msglen, "The client assertion is not a well-formed JWT.");
        return 700027;
    }
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    long code;
    if (iss && strcasecmp(iss, client_id) != 0 &&
        json_array_size(json_object_get(app, "federatedCredentials")) > 0) {
        *fed = 1;
        code = check_federated(app, certs, assertion, claims, client_id, msg, msglen);
    } else {
        code = check_cert_assertion(app, assertion, hdr, client_id, tenant, tid, msg, msglen);
    }
    json_decref(hdr);
    json_decref(claims);
    return code;
}

static bool secret_matches(json_t *app, const char *secret)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(app, "secrets"), i, s)
    {
        const char *v = json_string_value(s);
        if (v && strcmp(v, secret) == 0) return true;
    }
    return false;
}

/* base64url of an RSA parameter of key ("n" or "e"); malloc'd. */
static char *rsa_param(EVP_PKEY *key, const char *name)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return NULL;
    int n = BN_num_bytes(bn);
    unsigned char *buf = malloc((size_t)n + 1);
    char *out = NULL;
    if (buf) {
        BN_bn2bin(bn, buf);
        out = sim_b64url_encode(buf, (size_t)n);
    }
    free(buf);
    BN_free(bn);
    return out;
}

/* GET .../discovery/[v2.0/]keys: the JWKS with the token signing key. */
static void jwks(const sim_certs *certs, sim_response *resp)
{
    char *n = rsa_param(certs->signing_key, OSSL_PKEY_PARAM_RSA_N);
    char *e = rsa_param(certs->signing_key, OSSL_PKEY_PARAM_RSA_E);
    if (n && e) {
        resp->status = 200;
        resp->body = json_pack("{s:[{s:s,s:s,s:s,s:s,s:s}]}", "keys", "kty", "RSA", "use", "sig",
                               "kid", certs->signing_kid, "n", n, "e", e);
    } else {
        fail(resp, 500, "server_error", 50000, "The signing key cannot be exported.");
    }
    ERR_clear_error();
    free(n);
    free(e);
}

/* GET /{tenant}/v2.0/.well-known/openid-configuration (what MSAL reads before a token). */
static void openid_configuration(sim_state *st, const char *tenant, sim_response *resp)
{
    json_t *ten = sim_state_tenant(st->root, tenant);
    const char *tid = ten ? json_string_value(json_object_get(ten, "id")) : NULL;
    if (!tid && strcasecmp(tenant, "common") && strcasecmp(tenant, "organizations")) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Tenant '%.200s' not found.", tenant);
        fail(resp, 400, "invalid_tenant", 90002, msg);
        return;
    }
    const char *t = tid ? tid : "{tenantid}";
    const char *base = "https://login.microsoftonline.com";
    char token[256], jwks_uri[256], issuer[256], authz[256];
    snprintf(token, sizeof(token), "%s/%s/oauth2/v2.0/token", base, tid ? tid : tenant);
    snprintf(jwks_uri, sizeof(jwks_uri), "%s/%s/discovery/v2.0/keys", base, tid ? tid : tenant);
    snprintf(issuer, sizeof(issuer), "%s/%s/v2.0", base, t);
    snprintf(authz, sizeof(authz), "%s/%s/oauth2/v2.0/authorize", base, tid ? tid : tenant);
    resp->status = 200;
    resp->body = json_pack(
        "{s:s,s:[s,s,s],s:s,s:[s],s:[s],s:[s,s],s:s,s:s,s:s,s:s,s:s,s:s}", "token_endpoint", token,
        "token_endpoint_auth_methods_supported", "client_secret_post", "private_key_jwt",
        "client_secret_basic", "jwks_uri", jwks_uri, "id_token_signing_alg_values_supported",
        "RS256", "subject_types_supported", "pairwise", "response_modes_supported", "query",
        "form_post", "issuer", issuer, "authorization_endpoint", authz, "tenant_region_scope", "NA",
        "cloud_instance_name", "microsoftonline.com", "cloud_graph_host_name", "graph.windows.net",
        "msgraph_host", "graph.microsoft.com");
}

/* GET /common/discovery/instance: MSAL's instance discovery. */
static void instance_discovery(const sim_request *req, sim_response *resp)
{
    const char *ae = req->query(req, "authorization_endpoint");
    char tde[512] =
        "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration";
    const char *pfx = "https://login.microsoftonline.com/";
    if (ae && strncasecmp(ae, pfx, strlen(pfx)) == 0) {
        const char *tn = ae + strlen(pfx);
        int n = (int)strcspn(tn, "/");
        if (n > 0 && n < 200)
            snprintf(tde, sizeof(tde), "%s%.*s/v2.0/.well-known/openid-configuration", pfx, n, tn);
    }
    resp->status = 200;
    resp->body = json_pack("{s:s,s:s,s:[{s:s,s:s,s:[s,s,s,s]}]}", "tenant_discovery_endpoint", tde,
                           "api-version", "1.1", "metadata", "preferred_network",
                           "login.microsoftonline.com", "preferred_cache", "login.windows.net",
                           "aliases", "login.microsoftonline.com", "login.windows.net",
                           "login.microsoft.com", "sts.windows.net");
}

/* An access token for app (of tenant tid) to resource; *life and *now set.  malloc'd. */
static char *issue_token(sim_state *st, const sim_certs *certs, json_t *app, const char *tid,
                         const char *resource, const char *acr, long *life, long long *now)
{
    *life = sim_setting(st, "tokenLifetimeSeconds", 3600);
    if (*life < 1) *life = 1;
    *now = sim_wall_s();
    char iss[128], uti[40];
    snprintf(iss, sizeof(iss), "https://sts.windows.net/%s/", tid);
    sim_guid(uti, sizeof(uti));
    const char *appid = json_string_value(json_object_get(app, "appId"));
    const char *oid = json_string_value(json_object_get(app, "objectId"));
    if (!oid) oid = appid;
    json_t *claims =
        json_pack("{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "aud", resource, "iss",
                  iss, "iat", (json_int_t)*now, "nbf", (json_int_t)*now, "exp",
                  (json_int_t)(*now + *life), "tid", tid, "appid", appid, "oid", oid, "sub", oid,
                  "appidacr", acr, "idtyp", "app", "ver", "1.0", "uti", uti);
    char *tok = claims ? sim_jwt_sign(certs->signing_key, certs->signing_kid, claims) : NULL;
    json_decref(claims);
    return tok;
}

char *sim_federated_token(const sim_certs *certs, const char *issuer, const char *subject,
                          const char *audience, long lifetime_s)
{
    long long now = sim_wall_s();
    char jti[40];
    sim_guid(jti, sizeof(jti));
    json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s}", "iss", issuer, "sub", subject,
                               "aud", audience, "iat", (json_int_t)now, "nbf",
                               (json_int_t)(lifetime_s < 0 ? now + lifetime_s - 60 : now), "exp",
                               (json_int_t)(now + lifetime_s), "jti", jti);
    char *tok = claims ? sim_jwt_sign(certs->issuer_key, certs->issuer_kid, claims) : NULL;
    json_decref(claims);
    return tok;
}

static void identity_fail(sim_response *resp, int status, const char *error, const char *desc)
{
    resp->status = status;
    resp->body = json_pack("{s:s,s:s}", "error", error, "error_description", desc);
}

/* The identity a managed-identity request names: client_id = one of the user-assigned ones,
 * none = the system-assigned one.  state.managedIdentity = {"systemAssigned": appId,
 * "userAssigned": [appId...], "identityHeader": secret}. */
static json_t *identity_app(sim_state *st, const char *client_id)
{
    json_t *mi = json_object_get(st->root, "managedIdentity");
    const char *want = NULL;
    if (client_id && client_id[0]) {
        size_t i;
        json_t *u;
        json_array_foreach(json_object_get(mi, "userAssigned"), i, u)
        {
            if (json_is_string(u) && !strcasecmp(json_string_value(u), client_id))
                want = json_string_value(u);
        }
    } else {
        want = json_string_value(json_object_get(mi, "systemAssigned"));
    }
    return want ? sim_state_app(st->root, want) : NULL;
}

void sim_identity_handle(sim_state *st, const sim_certs *certs, const sim_request *req,
                         sim_response *resp)
{
    sim_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    int imds = !strcmp(req->path, "/metadata/identity/oauth2/token");
    int appsvc = !strcasecmp(req->path, "/msi/token");
    if (!imds && !appsvc) {
        identity_fail(resp, 404, "not_found",
                      "azure-sim's identity endpoint serves GET /metadata/identity/oauth2/token "
                      "(IMDS) and GET /msi/token (App Service).");
        return;
    }
    if (strcmp(req->method, "GET")) {
        identity_fail(resp, 405, "invalid_request", "Only GET is allowed.");
        return;
    }
    const char *api = req->query(req, "api-version");
    const char *resource = req->query(req, "resource");
    const char *client_id = req->query(req, "client_id");
    json_t *mi = json_object_get(st->root, "managedIdentity");
    if (imds) {
        const char *md = req->header(req, "Metadata");
        if (!md || strcasecmp(md, "true")) {
            identity_fail(resp, 400, "invalid_request", "Required metadata header not specified");
            return;
        }
        if (!api || strcmp(api, "2018-02-01")) {
            identity_fail(resp, 400, "invalid_request",
                          "azure-sim's IMDS serves api-version 2018-02-01");
            return;
        }
    } else {
        const char *want = json_string_value(json_object_get(mi, "identityHeader"));
        const char *got = req->header(req, "X-IDENTITY-HEADER");
        if (!want || !got || strcmp(want, got)) {
            identity_fail(resp, 401, "unauthorized",
                          "The X-IDENTITY-HEADER header is missing or does not match.");
            return;
        }
        if (!api || strcmp(api, "2019-08-01")) {
            identity_fail(resp, 400, "invalid_request",
                          "azure-sim's identity endpoint serves api-version 2019-08-01");
            return;
        }
    }
    if (!resource || !resource[0]) {
        identity_fail(resp, 400, "invalid_request", "Required query variable 'resource' is missing");
        return;
    }
    char res[600];
    snprintf(res, sizeof(res), "%s", resource);
    for (size_t l = strlen(res); l > 0 && res[l - 1] == '/'; l--)
        res[l - 1] = '\0';
    if (!resource_known(st->root, res)) {
        identity_fail(resp, 400, "invalid_resource",
                      "AADSTS500011: The resource principal was not found in the tenant.");
        return;
    }
    json_t *app = identity_app(st, client_id);
    if (!app) {
        identity_fail(resp, 400, "invalid_request", "Identity not found");
        return;
    }
    const char *tid = json_string_value(json_object_get(app, "tenantId"));
    if (!tid) tid = "11111111-1111-1111-1111-111111111111";
    long life;
    long long now;
    char *tok = issue_token(st, certs, app, tid, res, "2", &life, &now);
    if (!tok) {
        identity_fail(resp, 500, "server_error", "The token could not be signed.");
        return;
    }
    char exp_on[32], nbf_s[32], ein[32];
    snprintf(exp_on, sizeof(exp_on), "%lld", now + life);
    snprintf(nbf_s, sizeof(nbf_s), "%lld", now);
    snprintf(ein, sizeof(ein), "%ld", life);
    const char *appid = json_string_value(json_object_get(app, "appId"));
    resp->status = 200;
    if (imds)
        resp->body = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "access_token", tok,
                               "client_id", appid, "expires_in", ein, "expires_on", exp_on,
                               "ext_expires_in", ein, "not_before", nbf_s, "resource", resource,
                               "token_type", "Bearer");
    else /* 2019-08-01: no expires_in */
        resp->body = json_pack("{s:s,s:s,s:s,s:s,s:s}", "access_token", tok, "expires_on", exp_on,
                               "resource", resource, "token_type", "Bearer", "client_id", appid);
    free(tok);
}

/* POST /{tenant}/oauth2/v2.0/token (v2, scope) and /{tenant}/oauth2/token (v1, resource). */
static void token(sim_state *st, const sim_certs *certs, const sim_request *req, const char *tenant,
                  int v1, sim_response *resp)
{
    char msg[1024];
    char *grant = NULL, *client_id = NULL, *secret = NULL, *assertion = NULL, *atype = NULL,
         *scope = NULL, *resource = NULL;
    json_t *ten = sim_state_tenant(st->root, tenant);
    if (!ten) {
        snprintf(msg, sizeof(msg),
                 "Tenant '%.200s' not found. Check to make sure you have the correct tenant ID "
                 "and are signing into the correct cloud.",
                 tenant);
        fail(resp, 400, "invalid_request", 90002, msg);
        return;
    }
    const char *tid = json_string_value(json_object_get(ten, "id"));
    grant = sim_form_get(req->body, "grant_type");
    client_id = sim_form_get(req->body, "client_id");
    secret = sim_form_get(req->body, "client_secret");
    assertion = sim_form_get(req->body, "client_assertion");
    atype = sim_form_get(req->body, "client_assertion_type");
    scope = sim_form_get(req->body, v1 ? "resource" : "scope");

    if (!grant || !grant[0]) {
        fail(resp, 400, "invalid_request", 900144,
             "The request body must contain the following parameter: 'grant_type'.");
        goto done;
    }
    if (strcmp(grant, "client_credentials") != 0) {
        snprintf(msg, sizeof(msg), "The app requested an unsupported grant type '%.100s'.", grant);
        fail(resp, 400, "unsupported_grant_type", 70003, msg);
        goto done;
    }
    if (!client_id || !client_id[0]) {
        fail(resp, 400, "invalid_request", 900144,
             "The request body must contain the following parameter: 'client_id'.");
        goto done;
    }
    if (!scope || !scope[0]) {
        snprintf(msg, sizeof(msg), "The request body must contain the following parameter: '%s'.",
                 v1 ? "resource" : "scope");
        fail(resp, 400, "invalid_request", 900144, msg);
        goto done;
    }
    if (v1) {
        resource = strdup(scope);
        size_t l = strlen(resource);
        while (l > 0 && resource[l - 1] == '/')
            resource[--l] = '\0';
    } else {
        resource = scope_resource(scope);
    }
    if (!resource || !resource[0]) {
        snprintf(msg, sizeof(msg),
                 "The provided value for the input parameter 'scope' is not valid. The scope "
                 "'%.200s' is not valid: the client credentials flow needs '<resource>/.default'.",
                 scope);
        fail(resp, 400, "invalid_scope", 70011, msg);
        goto done;
    }
    if (!resource_known(st->root, resource)) {
        snprintf(msg, sizeof(msg),
                 "The resource principal named %.200s was not found in the tenant named %s. "
                 "This can happen if the application has not been installed by the "
                 "administrator of the tenant.",
                 resource, tid);
        fail(resp, 400, "invalid_resource", 500011, msg);
        goto done;
    }
    json_t *app = sim_state_app(st->root, client_id);
    const char *app_tid = json_string_value(json_object_get(app, "tenantId"));
    if (!app || (app_tid && strcasecmp(app_tid, tid) != 0)) {
        snprintf(msg, sizeof(msg),
                 "Application with identifier '%.100s' was not found in the directory '%s'. "
                 "This can happen if the application has not been installed by the "
                 "administrator of the tenant or consented to by any user in the tenant.",
                 client_id, tenant);
        fail(resp, 400, "unauthorized_client", 700016, msg);
        goto done;
    }
    const char *acr;
    if (assertion && secret) {
        fail(resp, 401, "invalid_client", 7000219,
             "Only one of 'client_assertion' and 'client_secret' may be sent.");
        goto done;
    } else if (secret) {
        if (!secret_matches(app, secret)) {
            snprintf(msg, sizeof(msg),
                     "Invalid client secret provided. Ensure the secret being sent in the "
                     "request is the client secret value, not the client secret ID, for a "
                     "secret added to app '%.100s'.",
                     client_id);
            fail(resp, 401, "invalid_client", 7000215, msg);
            goto done;
        }
        acr = "1";
    } else if (assertion) {
        if (!atype || strcmp(atype, ASSERTION_TYPE) != 0) {
            fail(resp, 400, "invalid_request", 700027,
                 "The client_assertion_type must be "
                 "'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.");
            goto done;
        }
        int fed = 0;
        long code = check_assertion(app, certs, assertion, client_id, tenant, tid, &fed, msg,
                                    sizeof(msg));
        if (code) {
            fail(resp, code == 700211 || code == 700212 || code == 70021 ? 400 : 401,
                 code == 700211 || code == 700212 || code == 70021 ? "invalid_request"
                                                                   : "invalid_client",
                 code, msg);
            goto done;
        }
        acr = "2";
    } else {
        fail(resp, 401, "invalid_client", 7000218,
             "The request body must contain the following parameter: 'client_assertion' or "
             "'client_secret'.");
        goto done;
    }

    long life;
    long long now;
    char *tok = issue_token(st, certs, app, tid, resource, acr, &life, &now);
    if (!tok) {
        fail(resp, 500, "server_error", 50000, "The token could not be signed.");
        goto done;
    }
    resp->status = 200;
    if (v1) {
        char exp_on[32], nbf_s[32], ein[32];
        snprintf(exp_on, sizeof(exp_on), "%lld", now + life);
        snprintf(nbf_s, sizeof(nbf_s), "%lld", now);
        snprintf(ein, sizeof(ein), "%ld", life);
        resp->body = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "token_type", "Bearer",
                               "expires_in", ein, "ext_expires_in", ein, "expires_on", exp_on,
                               "not_before", nbf_s, "resource", resource, "access_token", tok);
    } else {
        resp->body =
            json_pack("{s:s,s:I,s:I,s:s}", "token_type", "Bearer", "expires_in", (json_int_t)life,
                      "ext_expires_in", (json_int_t)life, "access_token", tok);
    }
    free(tok);
    sim_response_header(resp, "Cache-Control", "no-store, no-cache");
    sim_response_header(resp, "Pragma", "no-cache");
done:
    free(grant);
    free(client_id);
    free(secret);
    free(assertion);
    free(atype);
    free(scope);
    free(resource);
}

void sim_aad_handle(sim_state *st, const sim_certs *certs, const sim_request *req,
                    sim_response *resp)
{
    char tenant[130];
    const char *p = req->path + (req->path[0] == '/');
    size_t n = strcspn(p, "/");
    const char *rest = p + n;
    sim_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    if (n > 0 && n < sizeof(tenant) && !strcmp(req->method, "GET")) {
        memcpy(tenant, p, n);
        tenant[n] = '\0';
        if (!strcasecmp(rest, "/discovery/v2.0/keys") || !strcasecmp(rest, "/discovery/keys")) {
            jwks(certs, resp);
            return;
        }
        if (!strcasecmp(rest, "/v2.0/.well-known/openid-configuration")) {
            openid_configuration(st, tenant, resp);
            return;
        }
        if (!strcasecmp(rest, "/discovery/instance")) {
            instance_discovery(req, resp);
            return;
        }
    }
    if (n == 0 || n >= sizeof(tenant) ||
        (strcasecmp(rest, "/oauth2/v2.0/token") != 0 && strcasecmp(rest, "/oauth2/token") != 0)) {
        fail(resp, 404, "invalid_request", 900561,
             "The endpoint is not served by azure-sim; it serves POST "
             "/{tenant}/oauth2/v2.0/token, /{tenant}/oauth2/token and GET "
             "/{tenant}/v2.0/.well-known/openid-configuration, /{tenant}/discovery/v2.0/keys, "
             "/common/discovery/instance.");
        return;
    }
    memcpy(tenant, p, n);
    tenant[n] = '\0';
    if (strcmp(req->method, "POST") != 0) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "The endpoint only accepts POST requests. Received a %.10s "
                 "request.",
                 req->method);
        fail(resp, 400, "invalid_request", 900561, msg);
        return;
    }
    if (req->body_len > MAX_FIELD * 4) {
        fail(resp, 400, "invalid_request", 900144, "The request body is too large.");
        return;
    }
    token(st, certs, req, tenant, strcasecmp(rest, "/oauth2/token") == 0, resp);
}
