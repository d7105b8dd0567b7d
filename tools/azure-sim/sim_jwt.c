/* sim_jwt.c: compact JWTs signed with RS256 (access tokens azure-sim issues, and the
 * client assertions apps sign with their certificates). */
#include "sim_core.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#define JWT_MAX_LEN (16 * 1024) /* a token longer than this is malformed */

static char *b64_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (!s) return NULL;
    char *e = sim_b64url_encode((const unsigned char *)s, strlen(s));
    free(s);
    return e;
}

char *sim_jwt_sign(EVP_PKEY *key, const char *kid, const json_t *claims)
{
    json_t *hdr = json_pack("{s:s,s:s,s:s}", "typ", "JWT", "alg", "RS256", "kid", kid);
    char *h = hdr ? b64_json(hdr) : NULL;
    char *c = b64_json(claims);
    char *out = NULL, *sig64 = NULL;
    unsigned char *sig = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    json_decref(hdr);
    if (!h || !c || !md) goto done;
    size_t inlen = strlen(h) + 1 + strlen(c);
    char *input = malloc(inlen + 1);
    if (!input) goto done;
    snprintf(input, inlen + 1, "%s.%s", h, c);
    size_t siglen = 0;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (unsigned char *)input, inlen) != 1 ||
        !(sig = malloc(siglen)) ||
        EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, inlen) != 1 ||
        !(sig64 = sim_b64url_encode(sig, siglen))) {
        free(input);
        goto done;
    }
    out = malloc(inlen + 1 + strlen(sig64) + 1);
    if (out) sprintf(out, "%s.%s", input, sig64);
    free(input);
done:
    EVP_MD_CTX_free(md);
    free(h);
    free(c);
    free(sig);
    free(sig64);
    return out;
}

static json_t *decode_part(const char *s, size_t n)
{
    size_t len = 0;
    unsigned char *raw = sim_b64url_decode(s, n, JWT_MAX_LEN, &len);
    if (!raw) return NULL;
    json_t *j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* Splits token at its two dots; 0 = ok. */
static int split(const char *token, const char **d1, const char **d2)
{
    if (!token || strlen(token) > JWT_MAX_LEN) return -1;
    *d1 = strchr(token, '.');
    *d2 = *d1 ? strchr(*d1 + 1, '.') : NULL;
    if (!*d2 || strchr(*d2 + 1, '.')) return -1;
    return 0;
}

int sim_jwt_parse(const char *token, json_t **header, json_t **claims)
{
    const char *d1, *d2;
    *header = *claims = NULL;
    if (split(token, &d1, &d2) != 0) return -1;
    *header = decode_part(token, (size_t)(d1 - token));
    *claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!*header || !*claims) {
        json_decref(*header);
        json_decref(*claims);
        *header = *claims = NULL;
        return -1;
    }
    return 0;
}

int sim_jwt_verify(const char *token, EVP_PKEY *key, json_t **header, json_t **claims)
{
    const char *d1 = NULL, *d2 = NULL;
    if (sim_jwt_parse(token, header, claims) != 0) return -1;
    split(token, &d1, &d2); /* cannot fail: sim_jwt_parse split it already */
    const char *alg = json_string_value(json_object_get(*header, "alg"));
    size_t siglen = 0;
    unsigned char *sig =
        d2 ? sim_b64url_decode(d2 + 1, strlen(d2 + 1), JWT_MAX_LEN, &siglen) : NULL;
    int ok = 0;
    if (alg && strcmp(alg, "RS256") == 0 && sig && key && d2) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(md, sig, siglen, (const unsigned char *)token,
                              (size_t)(d2 - token)) == 1;
        EVP_MD_CTX_free(md);
    }
    free(sig);
    if (!ok) {
        ERR_clear_error(); /* the thread's OpenSSL error queue must not grow */
        json_decref(*header);
        json_decref(*claims);
        *header = *claims = NULL;
        return -2;
    }
    return 0;
}
