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

static bool aud_matches(json_t *aud, const char *tenant, const char *tid)
{
    char want[6][300];
    snprintf(want[0], sizeof(want[0]), "https://login.microsoftonline.com/%s/oauth2/v2.0/token",
             tenant);
    snprintf(want[1], sizeof(want[1]), "https://login.microsoftonline.com/%s/oauth2/v2.0/token",
             tid);
    snprintf(want[2], sizeof(want[2]), "https://login.microsoftonline.com/%s/oauth2/token", tenant);
    snprintf(want[3], sizeof(want[3]), "https://login.microsoftonline.com/%s/oauth2/token", tid);
    snprintf(want[4], sizeof(want[4]), "https://login.microsoftonline.com/%s/v2.0", tid);
    snprintf(want[5], sizeof(want[5]), "https://login.microsoftonline.com/%s/", tid);
    json_t *one = json_is_array(aud) ? NULL : aud;
    size_t i, n = json_is_array(aud) ? json_array_size(aud) : 1;
    for (i = 0; i < n; i++) {
        const char *a = json_string_value(one ? one : json_array_get(aud, i));
        for (size_t w = 0; a && w < 6; w++)
            if (sim_uri_eq(a, want[w])) return true;
    }
    return false;
}

/* Checks a client assertion against the app's certificates.  0 = ok, else the AADSTS code
 * with a message in msg. */
static long check_assertion(json_t *app, const char *assertion, const char *client_id,
                            const char *tenant, const char *tid, char *msg, size_t msglen)
{
    json_t *hdr = NULL, *claims = NULL;
    size_t i;
    json_t *c;
    int verified = 0;
    json_array_foreach(json_object_get(app, "certificates"), i, c)
    {
        const char *pem = json_string_value(c);
        if (!pem) continue;
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!x) continue;
        EVP_PKEY *k = X509_get0_pubkey(x);
        int rc = k ? sim_jwt_verify(assertion, k, &hdr, &claims) : -2;
        X509_free(x);
        if (rc == -1) {
            snprintf(msg, msglen, "The client assertion is not a well-formed JWT.");
            ERR_clear_error();
            return 700027;
        }
        if (rc == 0) {
            verified = 1;
            break;
        }
    }
    ERR_clear_error();
    if (!verified) {
        snprintf(msg, msglen,
                 "Client assertion failed signature validation. No certificate registered "
                 "for app '%s' verifies it.",
                 client_id);
        return 700027;
    }
    long code = 0;
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
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
    } else if (!json_is_number(exp)) {
        snprintf(msg, msglen, "The client assertion has no 'exp' claim.");
        code = 700027;
    } else if ((long long)json_number_value(exp) + CLOCK_SKEW_S < now ||
               (json_is_number(nbf) && (long long)json_number_value(nbf) - CLOCK_SKEW_S > now)) {
        snprintf(msg, msglen, "Client assertion is not within its valid time range.");
        code = 700024;
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
        long code = check_assertion(app, assertion, client_id, tenant, tid, msg, sizeof(msg));
        if (code) {
            fail(resp, 401, "invalid_client", code, msg);
            goto done;
        }
        acr = "2";
    } else {
        fail(resp, 401, "invalid_client", 7000218,
             "The request body must contain the following parameter: 'client_assertion' or "
             "'client_secret'.");
        goto done;
    }

    /* Issue the access token. */
    long life = sim_setting(st, "tokenLifetimeSeconds", 3600);
    if (life < 1) life = 1;
    long long now = sim_wall_s();
    char iss[128], uti[40];
    snprintf(iss, sizeof(iss), "https://sts.windows.net/%s/", tid);
    sim_guid(uti, sizeof(uti));
    const char *appid = json_string_value(json_object_get(app, "appId"));
    const char *oid = json_string_value(json_object_get(app, "objectId"));
    if (!oid) oid = appid;
    json_t *claims =
        json_pack("{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "aud", resource, "iss",
                  iss, "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
                  (json_int_t)(now + life), "tid", tid, "appid", appid, "oid", oid, "sub", oid,
                  "appidacr", acr, "idtyp", "app", "ver", "1.0", "uti", uti);
    char *tok = claims ? sim_jwt_sign(certs->signing_key, certs->signing_kid, claims) : NULL;
    json_decref(claims);
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
