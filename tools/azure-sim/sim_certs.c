/* sim_certs.c: azure-sim's local PKI: a CA, a server certificate for every simulated
 * host, and the key that signs access tokens; created once and reused from the cert dir. */
#include "sim_core.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CA_DAYS 3650
#define SERVER_DAYS 365
#define MAX_PEM (256 * 1024)

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(MAX_PEM + 1);
    size_t n = buf ? fread(buf, 1, MAX_PEM, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    if (n == 0 || n == MAX_PEM) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Writes data to path atomically (temp file + rename) with the given mode. */
static int write_text(const char *path, const char *data, size_t len, mode_t mode)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    fchmod(fileno(f), mode);
    int ok = fwrite(data, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static char *bio_string(BIO *b, size_t *len)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *out = malloc((size_t)n + 1);
    if (!out) return NULL;
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    if (len) *len = (size_t)n;
    return out;
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1)
        s = bio_string(b, NULL);
    BIO_free(b);
    return s;
}

static char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_X509(b, x) == 1) s = bio_string(b, NULL);
    BIO_free(b);
    return s;
}

static EVP_PKEY *parse_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return k;
}

/* The certificate in the PEM file at path; NULL when absent or unreadable. */
static X509 *read_cert(const char *path)
{
    char *pem = read_text(path);
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    free(pem);
    return x;
}

/* Writes x (NULL: fails) to path as PEM; 0 = ok. */
static int write_cert(const char *path, X509 *x)
{
    char *s = x ? cert_pem(x) : NULL;
    int rc = s && write_text(path, s, strlen(s), 0644) == 0 ? 0 : -1;
    free(s);
    return rc;
}

/* Loads the key at path or creates (and writes) a new RSA-2048 key. */
static EVP_PKEY *load_or_create_key(const char *path, int *created)
{
    char *pem = read_text(path);
    EVP_PKEY *k = pem ? parse_key(pem) : NULL;
    free(pem);
    *created = 0;
    if (k) return k;
    k = EVP_RSA_gen(2048);
    if (!k) return NULL;
    char *s = key_pem(k);
    if (!s || write_text(path, s, strlen(s), 0600) != 0) {
        free(s);
        EVP_PKEY_free(k);
        return NULL;
    }
    free(s);
    *created = 1;
    return k;
}

static int add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e) return -1;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok == 1 ? 0 : -1;
}

/* A new certificate for key, signed by issuer_key (issuer NULL = self-signed). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, long days,
                       const char *san)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    if (!x || !bn) goto err;
    X509_set_version(x, 2);
    if (!BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto err;
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"azure-sim", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509 *iss = issuer ? issuer : x;
    if (add_ext(iss, x, NID_subject_key_identifier, "hash") ||
        add_ext(iss, x, NID_authority_key_identifier, "keyid:always"))
        goto err;
    if (!issuer) {
        if (add_ext(iss, x, NID_basic_constraints, "critical,CA:TRUE") ||
            add_ext(iss, x, NID_key_usage, "critical,keyCertSign,cRLSign"))
            goto err;
    } else {
        if (add_ext(iss, x, NID_basic_constraints, "critical,CA:FALSE") ||
            add_ext(iss, x, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
            add_ext(iss, x, NID_ext_key_usage, "serverAuth") ||
            add_ext(iss, x, NID_subject_alt_name, san))
            goto err;
    }
    if (!X509_sign(x, issuer_key, EVP_sha256())) goto err;
    BN_free(bn);
    return x;
err:
    BN_free(bn);
    X509_free(x);
    return NULL;
}

static int is_ip(const char *s)
{
    return strspn(s, "0123456789.") == strlen(s);
}

/* True when cert's SAN carries every name (exact DNS entries or IP addresses). */
static int covers(X509 *cert, char **names, size_t n)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!gens) return 0;
    int all = 1;
    for (size_t i = 0; i < n && all; i++) {
        if (is_ip(names[i])) {
            all = X509_check_ip_asc(cert, names[i], 0) == 1;
            continue;
        }
        int found = 0;
        for (int g = 0; g < sk_GENERAL_NAME_num(gens) && !found; g++) {
            GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, g);
            if (gn->type != GEN_DNS) continue;
            const char *d = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
            found = d && (size_t)ASN1_STRING_length(gn->d.dNSName) == strlen(names[i]) &&
                    strncasecmp(d, names[i], strlen(names[i])) == 0;
        }
        all = found;
    }
    GENERAL_NAMES_free(gens);
    return all;
}

static void fail(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char ebuf[256] = "";
    if (e) ERR_error_string_n(e, ebuf, sizeof(ebuf));
    snprintf(err, errlen, "%s %s: %s", what, path, e ? ebuf : strerror(errno));
}

static int mkdirs(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

int sim_certs_load(const char *dir, char **names, size_t nnames, sim_certs *out, char *err,
                   size_t errlen)
{
    char path[4096], kpath[4096];
    EVP_PKEY *ca_key = NULL, *srv_key = NULL;
    X509 *ca = NULL, *srv = NULL;
    int created, rc = -1;
    memset(out, 0, sizeof(*out));

    if (mkdirs(dir) != 0) {
        fail(err, errlen, "cannot create cert dir", dir);
        return -1;
    }
    /* CA: kept when both files parse and match. */
    snprintf(kpath, sizeof(kpath), "%s/ca-key.pem", dir);
    snprintf(path, sizeof(path), "%s/ca.pem", dir);
    ca_key = load_or_create_key(kpath, &created);
    if (!ca_key) {
        fail(err, errlen, "cannot create key", kpath);
        goto done;
    }
    ca = created ? NULL : read_cert(path);
    if (ca && X509_check_private_key(ca, ca_key) != 1) {
        X509_free(ca);
        ca = NULL;
    }
    if (!ca) {
        ca = make_cert(ca_key, "azure-sim local CA", NULL, ca_key, CA_DAYS, NULL);
        if (write_cert(path, ca) != 0) {
            fail(err, errlen, "cannot write", path);
            goto done;
        }
        /* A new CA invalidates the old server certificate. */
        snprintf(path, sizeof(path), "%s/server.pem", dir);
        unlink(path);
    }

    /* Server certificate: regenerated when not signed by this CA, expiring within a
     * day, or not covering every name. */
    snprintf(kpath, sizeof(kpath), "%s/server-key.pem", dir);
    snprintf(path, sizeof(path), "%s/server.pem", dir);
    srv_key = load_or_create_key(kpath, &created);
    if (!srv_key) {
        fail(err, errlen, "cannot create key", kpath);
        goto done;
    }
    srv = created ? NULL : read_cert(path);
    if (srv) {
        EVP_PKEY *capub = X509_get0_pubkey(ca);
        time_t soon = time(NULL) + 86400;
        if (X509_verify(srv, capub) != 1 || X509_check_private_key(srv, srv_key) != 1 ||
            X509_cmp_time(X509_get0_notAfter(srv), &soon) <= 0 || !covers(srv, names, nnames)) {
            X509_free(srv);
            srv = NULL;
        }
    }
    if (!srv) {
        size_t cap = 16;
        for (size_t i = 0; i < nnames; i++)
            cap += strlen(names[i]) + 5;
        char *san = malloc(cap);
        if (!san) goto done;
        size_t o = 0;
        for (size_t i = 0; i < nnames; i++)
            o += (size_t)snprintf(san + o, cap - o, "%s%s:%s", i ? "," : "",
                                  is_ip(names[i]) ? "IP" : "DNS", names[i]);
        srv = make_cert(srv_key, "azure-sim", ca, ca_key, SERVER_DAYS, san);
        free(san);
        if (write_cert(path, srv) != 0) {
            fail(err, errlen, "cannot write", path);
            goto done;
        }
    }
    {
        char *a = cert_pem(srv), *b = cert_pem(ca);
        if (a && b) {
            out->server_cert_pem = malloc(strlen(a) + strlen(b) + 1);
            if (out->server_cert_pem) {
                strcpy(out->server_cert_pem, a);
                strcat(out->server_cert_pem, b);
            }
        }
        free(a);
        free(b);
    }
    out->server_key_pem = key_pem(srv_key);
    if (!out->server_cert_pem || !out->server_key_pem) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }

    /* Token signing key. */
    snprintf(kpath, sizeof(kpath), "%s/signing-key.pem", dir);
    out->signing_key = load_or_create_key(kpath, &created);
    if (!out->signing_key) {
        fail(err, errlen, "cannot create key", kpath);
        goto done;
    }
    {
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(out->signing_key, &der);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        if (n <= 0 || !EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha1(), NULL)) {
            OPENSSL_free(der);
            snprintf(err, errlen, "cannot hash the signing key");
            goto done;
        }
        OPENSSL_free(der);
        char *kid = sim_b64url_encode(md, mdlen);
        snprintf(out->signing_kid, sizeof(out->signing_kid), "%s", kid ? kid : "sim");
        free(kid);
    }
    /* The test OIDC issuer's key (federated tokens minted by POST /_sim/federated-token). */
    snprintf(kpath, sizeof(kpath), "%s/issuer-key.pem", dir);
    out->issuer_key = load_or_create_key(kpath, &created);
    if (!out->issuer_key) {
        fail(err, errlen, "cannot create key", kpath);
        goto done;
    }
    snprintf(out->issuer_kid, sizeof(out->issuer_kid), "azure-sim-test-issuer");
    rc = 0;
done:
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    X509_free(ca);
    X509_free(srv);
    if (rc != 0) sim_certs_clear(out);
    return rc;
}

void sim_certs_clear(sim_certs *c)
{
    if (!c) return;
    free(c->server_cert_pem);
    free(c->server_key_pem);
    EVP_PKEY_free(c->signing_key);
    EVP_PKEY_free(c->issuer_key);
    memset(c, 0, sizeof(*c));
}
