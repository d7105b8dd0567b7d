/* sim_core.h: the azure-sim front's private modules (state, certificates, JWT, AAD,
 * HTTPS server); ARM (arm*.c) and the Kusto engine (kusto_*.c) use sim.h only. */
#ifndef SIM_CORE_H
#define SIM_CORE_H

#include "sim.h"

#include <openssl/evp.h>
#include <stdbool.h>

/* Bounds on what the front accepts. */
#define SIM_BODY_LIMIT (1024 * 1024)           /* Azure hosts: larger bodies get 413 */
#define SIM_ADMIN_BODY_LIMIT (8 * 1024 * 1024) /* /_sim/...: whole states may be PUT */
#define SIM_STATE_MAX_DEPTH 64
#define SIM_MAX_NAMES 256 /* server certificate SAN entries */

/* ---- sim_util.c ------------------------------------------------------------ */
/* base64url without padding; returns a malloc'd NUL-terminated string. */
char *sim_b64url_encode(const unsigned char *in, size_t len);
/* Decodes base64url (padding optional); malloc'd buffer (NUL-terminated too), NULL on
 * bad input or when the result would exceed maxlen. */
unsigned char *sim_b64url_decode(const char *in, size_t inlen, size_t maxlen, size_t *outlen);
/* Looks up key in an application/x-www-form-urlencoded body; returns a malloc'd,
 * decoded value, or NULL when absent. */
char *sim_form_get(const char *body, const char *key);
/* Wall-clock seconds since the epoch. */
long long sim_wall_s(void);
/* AAD's timestamp format "2026-11-24 15:00:00Z". */
void sim_aad_timestamp(char *out, size_t outlen);
/* Case-insensitive string equality ignoring one trailing '/' on either side. */
bool sim_uri_eq(const char *a, const char *b);

/* ---- sim_state.c ----------------------------------------------------------- */
/* The documented default state (a new reference). */
json_t *sim_state_default(void);
/* Loads and checks a state file; NULL with err on failure. */
json_t *sim_state_load(const char *path, char *err, size_t errlen);
/* Checks the state's shape (arrays where arrays belong, names present); 0 = ok. */
int sim_state_check(const json_t *root, char *err, size_t errlen);
/* Lookups (borrowed references, NULL when absent). tenant matches id or domain. */
json_t *sim_state_tenant(json_t *root, const char *tenant);
json_t *sim_state_app(json_t *root, const char *app_id);
/* The cluster whose URI host equals host (case-insensitive). */
json_t *sim_state_cluster_by_host(json_t *root, const char *host);
/* The cluster whose URI equals uri (ignoring case and a trailing '/'). */
json_t *sim_state_cluster_by_uri(json_t *root, const char *uri);
/* Host names the server certificate must cover (malloc'd strings into names[],
 * returns the count, at most max). */
size_t sim_state_cert_names(json_t *root, char **names, size_t max);

/* ---- sim_certs.c ----------------------------------------------------------- */
typedef struct sim_certs {
    char *server_cert_pem; /* server certificate followed by the CA (chain) */
    char *server_key_pem;
    EVP_PKEY *signing_key; /* signs access tokens */
    char signing_kid[64];  /* base64url SHA-1 of the signing key's public DER */
    EVP_PKEY *issuer_key;  /* signs the test OIDC issuer's federated tokens */
    char issuer_kid[64];
} sim_certs;

/* The test OIDC issuer (a Kubernetes service account issuer stand-in): apps may register
 * federated credentials with it; POST /_sim/federated-token mints its tokens. */
#define SIM_TEST_ISSUER "https://oidc.azure-sim.test/issuer"
#define SIM_FEDERATED_AUDIENCE "api://AzureADTokenExchange"

/* Creates or reuses, in dir: ca.pem + ca-key.pem, server.pem + server-key.pem (covering
 * names[]), signing-key.pem.  0 = ok. */
int sim_certs_load(const char *dir, char **names, size_t nnames, sim_certs *out, char *err,
                   size_t errlen);
void sim_certs_clear(sim_certs *c);

/* ---- sim_jwt.c ------------------------------------------------------------- */
/* Signs claims (RS256) with key; header carries kid (and x5t when given). malloc'd token. */
char *sim_jwt_sign(EVP_PKEY *key, const char *kid, const json_t *claims);
/* Splits and verifies an RS256 compact JWT against key.  On success 0, *header and
 * *claims set (new references).  -1 malformed, -2 bad signature or algorithm. */
int sim_jwt_verify(const char *token, EVP_PKEY *key, json_t **header, json_t **claims);
/* Parses without verifying (for the header's x5t); 0 = ok. */
int sim_jwt_parse(const char *token, json_t **header, json_t **claims);

/* ---- sim_aad.c ------------------------------------------------------------- */
/* login.microsoftonline.com.  Called with st->lock held. */
void sim_aad_handle(sim_state *st, const sim_certs *certs, const sim_request *req,
                    sim_response *resp);
/* The managed-identity endpoints (plain HTTP listener): GET /metadata/identity/oauth2/token
 * (IMDS) and GET /msi/token (App Service).  Called with st->lock held. */
void sim_identity_handle(sim_state *st, const sim_certs *certs, const sim_request *req,
                         sim_response *resp);
/* A federated token of the test issuer (malloc'd): sub, aud, lifetime (may be negative). */
char *sim_federated_token(const sim_certs *certs, const char *issuer, const char *subject,
                          const char *audience, long lifetime_s);
/* The AAD error body (status set by the caller). */
json_t *sim_aad_error(const char *error, long code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- sim_server.c ---------------------------------------------------------- */
typedef struct sim_server sim_server;
/* Starts serving on listen ("127.0.0.1:0").  Takes ownership of nothing; st and
 * certs must outlive the server.  NULL with err on failure. */
sim_server *sim_server_start(sim_state *st, const sim_certs *certs, const char *listen, char *err,
                             size_t errlen);
/* The bound port. */
unsigned sim_server_port(const sim_server *srv);
/* Also serves the managed-identity endpoints (IMDS and App Service forms) over plain HTTP
 * on listen (a 127.x address only).  The bound port, or 0 with err. */
unsigned sim_server_identity_start(sim_server *srv, const char *listen, char *err,
                                   size_t errlen);
void sim_server_stop(sim_server *srv);

#endif
