/* cred.h: internal to worker/azure: what each credential type needs besides HTTP - the
 * client certificate and its RS256 client assertion, the federated token file.  Pure
 * functions (no network, no loop); unit-tested.
 *
 * Client assertion (Entra ID "certificate credentials", private_key_jwt): a compact JWT
 *   header  {"alg":"RS256","typ":"JWT","x5t#S256":<base64url SHA-256 of the leaf's DER>
 *            [,"x5c":[<base64 DER of each certificate of the file, leaf first>]]}
 *   claims  {"aud":<token endpoint URL>,"iss":<client id>,"sub":<client id>,
 *            "jti":<fresh GUID>,"nbf":now,"iat":now,"exp":now + PW_AZ_ASSERTION_LIFETIME_S}
 * signed RS256 (RSASSA-PKCS1-v1_5, SHA-256) with the certificate's private key, sent as
 * client_assertion with client_assertion_type urn:ietf:params:oauth:client-assertion-type:
 * jwt-bearer.  The assertion is a credential: callers wipe it after use. */
#ifndef PW_CRED_H
#define PW_CRED_H

#include <stddef.h>

#define PW_CRED_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define PW_CRED_CHAIN_MAX 10 /* certificates of a chain file that go into x5c */

typedef struct pw_cred_cert pw_cred_cert;

/* Reads a PEM file holding a private key (RSA; encrypted when password is not NULL) and
 * the certificate that matches it, plus any further certificates (the chain, kept in file
 * order after the leaf).  NULL with err naming the file and the problem (never the
 * password).  The file is read once: a rotated certificate needs a restart. */
pw_cred_cert *pw_cred_cert_load(const char *path, const char *password, char *err, size_t errlen);
void pw_cred_cert_free(pw_cred_cert *c); /* NULL ok; wipes the key */

/* The leaf's x5t#S256 thumbprint (base64url, 43 characters). */
const char *pw_cred_cert_thumbprint(const pw_cred_cert *c);
/* Certificates in the chain (leaf included). */
size_t pw_cred_cert_chain_len(const pw_cred_cert *c);

/* A signed client assertion (malloc'd), see above; jti is the caller's fresh GUID;
 * send_chain adds x5c.  NULL on out-of-memory or a signing failure. */
char *pw_cred_assertion(const pw_cred_cert *c, const char *client_id, const char *token_url,
                        long long now, const char *jti, int send_chain);

/* The federated token file's content (malloc'd), surrounding whitespace removed.  It must
 * be 1..PW_AZ_FEDERATED_TOKEN_MAX bytes of RFC 6750 b64token characters ('.' included, as
 * in a JWT).  NULL with err otherwise (naming the file, never quoting it). */
char *pw_cred_read_token_file(const char *path, char *err, size_t errlen);

/* base64url without padding of n bytes (malloc'd); base64 (standard, padded) when std. */
char *pw_cred_b64(const unsigned char *p, size_t n, int std);

/* Wipes and frees a malloc'd credential string (NULL ok). */
void pw_cred_wipe(char *s);

#endif
