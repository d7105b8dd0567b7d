/* aad.h: internal to worker/azure: access tokens, cached per audience.
 *
 * Where they come from (pw_azure_credential_select picks the credential):
 * - secret, certificate, workload: Entra ID's client-credentials grant, POST
 *   <authority>/<tenant>/oauth2/v2.0/token with client_secret, or with client_assertion =
 *   a fresh certificate-signed JWT (cred.h) or the federated token file's content, read
 *   again at every fetch (Kubernetes rotates it);
 * - managed: GET <identity endpoint>?api-version=..&resource=<audience>[&client_id=..]:
 *   IMDS (Metadata: true, 2018-02-01) or the App Service / Container Apps form
 *   (IDENTITY_ENDPOINT with X-IDENTITY-HEADER: IDENTITY_HEADER, 2019-08-01).  The
 *   endpoint may be plain HTTP on a loopback or link-local address only (pw_http allows
 *   that one origin); IMDS's 404/410 (being updated) are retried like 5xx.
 * Every answer goes through the same checks (b64token characters, bounded size and life);
 * the assertion, the federated token and the identity header are registered with the
 * redactor (pw_http_set_secret) before they are sent.
 *
 * One fetch per audience at a time; every caller waiting for that audience shares it.
 * A cached token is handed out until it expires.  From token_refresh_margin_ms before
 * that (the margin is shrunk to half the token's lifetime for short-lived tokens) its next
 * use starts a fetch in the background; a failing refresh never takes the valid token away.
 *
 * Retries of a fetch (transport errors, 429, 5xx; Retry-After honoured) are bounded by who
 * waits: a waiter with a deadline waits until the deadline (its caller ends it there) or a
 * permanent failure (AAD's 4xx such as invalid_client, TLS, a malformed answer); a waiter
 * without one fails after max_attempts attempts; a background refresh goes on until the
 * cached token expires.  Backoff waits are cut to half the time left before the earliest
 * deadline (or the expiry), so attempts keep coming until it.  At most 256 audiences are
 * cached; a new one then replaces an idle entry (no fetch, wait or delivery under way),
 * failed or expired ones first.  Tokens never leave this
 * module except as the borrowed string handed to a waiter; they are never logged. */
#ifndef PW_AAD_H
#define PW_AAD_H

#include <stddef.h>
#include <stdint.h>

#include "pw/azure.h"
#include "http.h"
#include "pw/loop.h"

typedef struct pw_aad pw_aad;
typedef struct pw_aad_wait pw_aad_wait;

typedef struct pw_aad_result {
    const char *token; /* borrowed, valid during the callback; NULL on failure */
    unsigned gen;      /* pass to pw_aad_invalidate after a 401 */
    const char *code;  /* PW_AZ_CODE_* on failure */
    int retryable;
    int http_status;
    const char *message; /* AAD's error_description or the transport error */
} pw_aad_result;

typedef void (*pw_aad_cb)(void *ctx, const pw_aad_result *res);

/* cfg: the credential fields, authority_host, request_timeout_ms, max_attempts, backoff_*,
 * max_retry_after_ms, token_refresh_margin_ms are used.  Fails (err filled) when the
 * credential is incomplete, the certificate or the federated token file cannot be read, or
 * the identity endpoint is not acceptable. */
pw_aad *pw_aad_new(pw_loop *loop, pw_http *http, const pw_azure_config *cfg, char *err,
                   size_t errlen);
void pw_aad_free(pw_aad *aad); /* waiters are dropped without callbacks */

/* The managed-identity endpoint cfg names: IDENTITY_ENDPOINT, else azure.imds.endpoint,
 * else PW_AZ_IMDS_ENDPOINT.  Meaningful only when the credential is managed. */
const char *pw_aad_identity_endpoint(const pw_azure_config *cfg);

/* A usable (unexpired) cached token for the audience, or NULL.  *gen is set when non-NULL.
 * When the token is due for refresh, this schedules the background fetch. */
const char *pw_aad_cached(pw_aad *aad, const char *audience, unsigned *gen);

/* Waits for a token (fetching one when needed) until deadline_ms (pw_loop_now_ms clock;
 * 0 = none, see above); cb runs later, never inside this call.  The caller cancels the wait
 * when its deadline passes (no callback comes for it).  NULL on out-of-memory. */
pw_aad_wait *pw_aad_get(pw_aad *aad, const char *audience, const char *request_id,
                        uint64_t deadline_ms, pw_aad_cb cb, void *ctx);
void pw_aad_cancel(pw_aad *aad, pw_aad_wait *w); /* NULL ok; no callback afterwards */

/* While a fetch for the audience is backing off after a retryable failure: that failure's
 * code (Throttled or AzureUnavailable) and message; NULL otherwise. */
const char *pw_aad_retry_cause(pw_aad *aad, const char *audience, const char **message);

/* Drops the cached token of this generation (a newer one is kept). */
void pw_aad_invalidate(pw_aad *aad, const char *audience, unsigned gen);

#endif
