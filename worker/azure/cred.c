/* cred.c: credential selection, the client certificate and its assertion, the federated
 * token file (see cred.h and pw/azure.h). */
#include "cred.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pw/azure.h"
#include "pw/status.h"

#define CERT_FILE_MAX (1024 * 1024) /* a certificate file larger than this is refused */

struct pw_cred_cert {
    EVP_PKEY *key;
    X509 *chain[PW_CRED_CHAIN_MAX]; /* leaf first */
    size_t n;
    char x5t_s256[48];
};

void pw_cred_wipe(char *s)
{
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

const char *pw_azure_credential_name(pw_azure_credential c)
{
    switch (c) {
    case PW_AZ_CRED_SECRET:
        return "secret";
    case PW_AZ_CRED_CERTIFICATE:
        return "certificate";
    case PW_AZ_CRED_WORKLOAD:
        return "workload";
    case PW_AZ_CRED_MANAGED:
        return "managed";
    case PW_AZ_CRED_AUTO:
        break;
    }
    return "auto";
}

static int set(const char *s)
{
    return s && *s;
}

/* What an app registration credential lacks: the first of tenant and client id missing. */
static int need_app(const pw_azure_config *cfg, const char *what, char *err, size_t errlen)
{
    if (!set(cfg->tenant_id)) {
        pw_err_set(err, errlen,
                   "azure.tenant.id: required for azure.credential=%s (or "
                   "AZURE_TENANT_ID)",
                   what);
        return -1;
    }
    if (!set(cfg->client_id)) {
        pw_err_set(err, errlen,
                   "azure.client.id: required for azure.credential=%s (or "
                   "AZURE_CLIENT_ID)",
                   what);
        return -1;
    }
    return 0;
}

int pw_azure_credential_select(const pw_azure_config *cfg, pw_azure_credential *out, char *err,
                               size_t errlen)
{
    const char *name = cfg->credential ? cfg->credential : PW_AZ_CREDENTIAL_DEFAULT;
    pw_azure_credential c;
    if (!strcmp(name, "auto")) {
        int app = set(cfg->tenant_id) && set(cfg->client_id);
        /* EnvironmentCredential (secret, then certificate), WorkloadIdentityCredential,
         * ManagedIdentityCredential: DefaultAzureCredential's order.  Managed identity only
         * with an endpoint configured: the SDKs' blind IMDS probe is not made. */
        if (app && set(cfg->client_secret))
            c = PW_AZ_CRED_SECRET;
        else if (app && set(cfg->client_certificate_path))
            c = PW_AZ_CRED_CERTIFICATE;
        else if (app && set(cfg->federated_token_file))
            c = PW_AZ_CRED_WORKLOAD;
        else if (set(cfg->identity_endpoint) || set(cfg->imds_endpoint))
            c = PW_AZ_CRED_MANAGED;
        else {
            pw_err_set(err, errlen,
                       "azure.credential=auto: no credential is configured: set azure.tenant.id "
                       "and azure.client.id (AZURE_TENANT_ID, AZURE_CLIENT_ID) with "
                       "azure.client.secret (AZURE_CLIENT_SECRET), "
                       "azure.client.certificate.path (AZURE_CLIENT_CERTIFICATE_PATH) or "
                       "azure.federated.token.file (AZURE_FEDERATED_TOKEN_FILE); or an identity "
                       "endpoint (IDENTITY_ENDPOINT, azure.imds.endpoint) or "
                       "azure.credential=managed for managed identity");
            return -1;
        }
    } else if (!strcmp(name, "secret")) {
        c = PW_AZ_CRED_SECRET;
    } else if (!strcmp(name, "certificate")) {
        c = PW_AZ_CRED_CERTIFICATE;
    } else if (!strcmp(name, "workload")) {
        c = PW_AZ_CRED_WORKLOAD;
    } else if (!strcmp(name, "managed")) {
        c = PW_AZ_CRED_MANAGED;
    } else {
        pw_err_set(err, errlen,
                   "azure.credential: expected secret, certificate, workload, "
                   "managed or auto, not \"%.40s\"",
                   name);
        return -1;
    }
    switch (c) {
    case PW_AZ_CRED_SECRET:
        if (need_app(cfg, "secret", err, errlen)) return -1;
        if (!set(cfg->client_secret)) {
            pw_err_set(err, errlen,
                       "azure.client.secret: required for azure.credential=secret "
                       "(or AZURE_CLIENT_SECRET)");
            return -1;
        }
        break;
    case PW_AZ_CRED_CERTIFICATE:
        if (need_app(cfg, "certificate", err, errlen)) return -1;
        if (!set(cfg->client_certificate_path)) {
            pw_err_set(err, errlen,
                       "azure.client.certificate.path: required for "
                       "azure.credential=certificate (or AZURE_CLIENT_CERTIFICATE_PATH)");
            return -1;
        }
        break;
    case PW_AZ_CRED_WORKLOAD:
        if (need_app(cfg, "workload", err, errlen)) return -1;
        if (!set(cfg->federated_token_file)) {
            pw_err_set(err, errlen,
                       "azure.federated.token.file: required for "
                       "azure.credential=workload (or AZURE_FEDERATED_TOKEN_FILE)");
            return -1;
        }
        break;
    case PW_AZ_CRED_MANAGED:
        if (set(cfg->identity_endpoint) && !set(cfg->identity_header)) {
            pw_err_set(err, errlen,
                       "IDENTITY_ENDPOINT is set without IDENTITY_HEADER (the App "
                       "Service / Container Apps form needs both; other forms are not "
                       "supported)");
            return -1;
        }
        break;
    case PW_AZ_CRED_AUTO:
        break;
    }
    *out = c;
    return 0;
}

/* ---- base64 ---- */

char *pw_cred_b64(const unsigned char *p, size_t n, int std)
{
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    static const char plain[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *tab = std ? plain : url;
    char *out = malloc(n / 3 * 4 + 5);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        if (i + 1 < n) out[o++] = tab[v >> 6 & 63];
        if (std) {
            if (i + 1 >= n) out[o++] = '=';
            out[o++] = '=';
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- the certificate ---- */

void pw_cred_cert_free(pw_cred_cert *c)
{
    if (!c) return;
    EVP_PKEY_free(c->key);
    for (size_t i = 0; i < c->n; i++)
        X509_free(c->chain[i]);
    free(c);
}

static char *der_b64(X509 *x, int std, int sha256)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0) return NULL;
    char *out;
    if (sha256) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        out = EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) == 1
                  ? pw_cred_b64(md, mdlen, std)
                  : NULL;
    } else {
        out = pw_cred_b64(der, (size_t)n, std);
    }
    OPENSSL_free(der);
    return out;
}

pw_cred_cert *pw_cred_cert_load(const char *path, const char *password, char *err, size_t errlen)
{
    pw_cred_cert *c = calloc(1, sizeof *c);
    X509 *certs[PW_CRED_CHAIN_MAX] = {0};
    size_t ncerts = 0;
    BIO *b = NULL;
    char why[200] = "";
    if (!c) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        pw_err_set(err, errlen, "client certificate %s: %s", path, strerror(errno));
        goto fail;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    if (size > CERT_FILE_MAX) {
        pw_err_set(err, errlen, "client certificate %s: larger than %d bytes", path, CERT_FILE_MAX);
        goto fail;
    }
    /* The key: PEM_read_bio_PrivateKey skips the blocks that are no key. */
    b = BIO_new_file(path, "r");
    ERR_clear_error();
    c->key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)(password ? password : "")) : NULL;
    BIO_free(b);
    b = NULL;
    if (!c->key) {
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
        pw_err_set(err, errlen, "client certificate %s: no readable private key (%s%s)", path, why,
                   password ? "; wrong password?" : "; encrypted without a password?");
        goto fail;
    }
    if (EVP_PKEY_base_id(c->key) != EVP_PKEY_RSA) {
        pw_err_set(err, errlen, "client certificate %s: the key is not RSA (RS256 needs one)",
                   path);
        goto fail;
    }
    b = BIO_new_file(path, "r");
    X509 *x;
    while (b && ncerts < PW_CRED_CHAIN_MAX && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        certs[ncerts++] = x;
    BIO_free(b);
    b = NULL;
    ERR_clear_error();
    /* The leaf is the certificate of the key; the others follow in file order. */
    for (size_t i = 0; i < ncerts; i++) {
        if (X509_check_private_key(certs[i], c->key) == 1) {
            c->chain[c->n++] = certs[i];
            certs[i] = NULL;
            break;
        }
    }
    ERR_clear_error();
    if (!c->n) {
        pw_err_set(err, errlen, "client certificate %s: %s", path,
                   ncerts ? "no certificate in it matches its private key"
                          : "holds no PEM certificate");
        goto fail;
    }
    for (size_t i = 0; i < ncerts; i++)
        if (certs[i]) {
            c->chain[c->n++] = certs[i];
            certs[i] = NULL;
        }
    char *t = der_b64(c->chain[0], 0, 1);
    if (!t) {
        pw_err_set(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(c->x5t_s256, sizeof c->x5t_s256, "%s", t);
    free(t);
    return c;
fail:
    for (size_t i = 0; i < ncerts; i++)
        X509_free(certs[i]);
    ERR_clear_error();
    pw_cred_cert_free(c);
    return NULL;
}

const char *pw_cred_cert_thumbprint(const pw_cred_cert *c)
{
    return c->x5t_s256;
}

size_t pw_cred_cert_chain_len(const pw_cred_cert *c)
{
    return c->n;
}

static char *json_b64(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s) return NULL;
    char *out = pw_cred_b64((const unsigned char *)s, strlen(s), 0);
    free(s);
    return out;
}

char *pw_cred_assertion(const pw_cred_cert *c, const char *client_id, const char *token_url,
                        long long now, const char *jti, int send_chain)
{
    char *out = NULL, *h = NULL, *p = NULL, *input = NULL, *sig64 = NULL;
    unsigned char *sig = NULL;
    EVP_MD_CTX *md = NULL;
    json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", "RS256", "typ", "JWT", "x5t#S256", c->x5t_s256);
    json_t *claims =
        json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "aud", token_url, "iss", client_id, "sub",
                  client_id, "jti", jti, "nbf", (json_int_t)now, "iat", (json_int_t)now, "exp",
                  (json_int_t)(now + PW_AZ_ASSERTION_LIFETIME_S));
    if (!hdr || !claims) goto done;
    if (send_chain) {
        json_t *x5c = json_array();
        if (!x5c || json_object_set_new(hdr, "x5c", x5c)) goto done;
        for (size_t i = 0; i < c->n; i++) {
            char *d = der_b64(c->chain[i], 1, 0);
            if (!d || json_array_append_new(x5c, json_string(d))) {
                free(d);
                goto done;
            }
            free(d);
        }
    }
    h = json_b64(hdr);
    p = json_b64(claims);
    if (!h || !p || asprintf(&input, "%s.%s", h, p) < 0) {
        input = NULL;
        goto done;
    }
    size_t siglen = 0;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, c->key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (unsigned char *)input, strlen(input)) != 1 ||
        !(sig = malloc(siglen)) ||
        EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, strlen(input)) != 1 ||
        !(sig64 = pw_cred_b64(sig, siglen, 0)))
        goto done;
    if (asprintf(&out, "%s.%s", input, sig64) < 0) out = NULL;
done:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    json_decref(hdr);
    json_decref(claims);
    free(h);
    free(p);
    free(input);
    free(sig);
    free(sig64);
    return out;
}

/* ---- the federated token file ---- */

char *pw_cred_read_token_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        pw_err_set(err, errlen, "federated token file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(PW_AZ_FEDERATED_TOKEN_MAX + 2);
    if (!buf) {
        fclose(f);
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    size_t n = fread(buf, 1, PW_AZ_FEDERATED_TOKEN_MAX + 1, f);
    int bad_read = ferror(f);
    fclose(f);
    buf[n] = '\0';
    const char *why = NULL;
    if (bad_read)
        why = "read error";
    else if (n > PW_AZ_FEDERATED_TOKEN_MAX)
        why = "larger than the bound (PW_AZ_FEDERATED_TOKEN_MAX bytes)";
    size_t s = 0, e = n;
    while (s < e && isspace((unsigned char)buf[s]))
        s++;
    while (e > s && isspace((unsigned char)buf[e - 1]))
        e--;
    if (!why && s == e) why = "empty";
    for (size_t i = s; !why && i < e; i++)
        if (!isalnum((unsigned char)buf[i]) && !strchr("-._~+/=", buf[i]))
            why = "holds characters a token cannot (not a JWT)";
    if (why) {
        pw_err_set(err, errlen, "federated token file %s: %s", path, why);
        explicit_bzero(buf, n);
        free(buf);
        return NULL;
    }
    memmove(buf, buf + s, e - s);
    explicit_bzero(buf + (e - s), n - (e - s));
    buf[e - s] = '\0';
    return buf;
}
