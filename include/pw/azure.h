/* pw/azure.h: calls to Azure (AAD tokens, ARM, Kusto management) over HTTPS, driven
 * by the event loop through libcurl multi.  Retries, backoff, Retry-After, token
 * cache/refresh and ARM long-running operations are handled here; callers say what
 * to send, not how to get it through.
 *
 * Credentials (azure.credential, see pw_azure_credential below): a client secret, a client
 * certificate's RS256 assertion, a federated token file (workload identity) or a managed
 * identity endpoint (IMDS, App Service).  The managed-identity endpoint is the one origin
 * reached over plain HTTP, and only on a loopback or link-local address.
 *
 * Security contract: a bearer token is only ever sent to the configured ARM
 * endpoint host, to a Kusto cluster URI the caller has validated (https, no
 * user-info, port or path; re-checked here), or - for LRO polling - to a URL on
 * the ARM endpoint host.  TLS peers are always verified.  Secrets and tokens are
 * never logged and never copied into pw_azure_result.  Text Azure (or a proxy) supplies -
 * error messages and codes, ids, LRO URLs - goes through pw_http_redact (the configured
 * secret, the latest assertion, federated token and identity header, client_secret= /
 * client_assertion= values, Bearer credentials and JWT-shaped text
 * become "***") before it is logged or copied into a result: endpoints that echo a request
 * in their errors cannot leak it.  An access token that is not an RFC 6750 b64token (CR/LF
 * would add a header) is refused: AzureProtocolError.
 *
 * Retry rules (per HTTP request of a call; the main request, each LRO poll and the final
 * GET each get max_attempts): retried with full-jitter backoff, or after Retry-After /
 * retry-after-ms / x-ms-retry-after-ms (capped by max_retry_after_ms) when the answer
 * carries one: 429, 500, 502, 503, 504, 520, transport errors (refused, reset, timeout),
 * and Kusto errors with "@permanent": false other than 401/403 - for every method.  Never
 * retried: other 4xx, Kusto "@permanent": true, TLS failures, oversized/unparseable answers.
 * A 401 drops the cached token and resends once with a fresh one (an attempt).
 * Tokens (pw/aad.h): a cached token is used until it really expires while its refresh runs
 * in the background; a call waiting for a token fails only when its deadline passes (the
 * cause named, see below) or AAD's failure is permanent (AuthenticationFailed, TlsError,
 * AzureProtocolError) - a call without a deadline after max_attempts token attempts.
 *
 * Deadline (documented choice): when call.deadline_ms passes, or the next retry would
 * start after it, the call ends at once.  If the last attempt had failed retryably the code
 * names that cause (Throttled or AzureUnavailable, retryable=1, message says "deadline");
 * otherwise (a request still in flight, an LRO still running, a token still coming) it is
 * DeadlineExceeded.  Each HTTP exchange is also bounded by min(request_timeout_ms, time left).
 *
 * LRO details: 201/202 with Azure-AsyncOperation (preferred) or Location is followed; the
 * URL must be https on the ARM endpoint's host and port, else AzureProtocolError and
 * nothing is sent to it.  Polls wait Retry-After (capped) or lro_poll_default_ms.  After
 * Succeeded, PUT/PATCH end with a GET of the resource (its body is the result); POST/DELETE
 * return the last poll's body (the operation status object, or Location's final body).  A
 * 200/201 without LRO headers is final as it is.  Failed/Canceled -> OperationFailed with
 * azure_code/message from the status body's error {code, message}, retryable=0.
 * Once ARM accepted a write (201/202 with an LRO URL) the call never ends in a plain failure:
 * polls are retried until the deadline (max_attempts bounds them only without a deadline),
 * and if the status still cannot be learned - the deadline passed, the status URL keeps
 * failing or answers 4xx, no token can be had - the code is OutcomeUnknown (retryable=1;
 * the message names the cause and the operation URL, also in operation_url).  If the final
 * GET after Succeeded fails, the call succeeds with no body: the outcome is known.
 *
 * Result ids: request_id/correlation_id are those of the main request's last answer
 * (x-ms-request-id + x-ms-correlation-request-id for ARM, x-ms-activity-id for Kusto);
 * client_request_id is one fresh GUID per call ("PW.execute;<guid>" for Kusto), sent on
 * every attempt and poll of that call.  attempts is 0 when no token could be obtained
 * (the code then is AAD's outcome: AuthenticationFailed with error_description, TlsError,
 * AzureUnavailable, ...).
 *
 * Pacing (worker/azure/pace.c): every HTTP request to ARM or to a Kusto cluster is admitted
 * first, in FIFO order per budget, without holding a connection; waiting is no attempt, and
 * a call whose deadline passes while it waits ends as above (DeadlineExceeded, or Throttled
 * when a 429 put it back in the queue).  The caller's on_queued hears once per budget that
 * a call waits, with the budget's level.
 * - ARM: a token bucket per (principal = client id, subscription id of the URL's path;
 *   "tenant" without one) for writes (PUT, PATCH, POST, DELETE: ARM counts deletes apart,
 *   with the same numbers; one bucket for both only under-uses) and one for reads (GET, LRO
 *   polls, the final GET), seeded with ARM's documented defaults (200 / 10 per s writes,
 *   250 / 25 per s reads, learn.microsoft.com "Understand how Azure Resource Manager
 *   throttles requests", token-bucket revision).  Every answer's
 *   x-ms-ratelimit-remaining-subscription-writes / -reads corrects the level: it becomes at
 *   most the server's count less the bucket's requests admitted after the answered one and
 *   still in flight (ARM answers parallel requests in no set order, so those may be
 *   uncounted; the ones admitted before it were sent before it, and one the server counted
 *   later lowers the level again with its own answer).  A count only lowers the level
 *   (a higher one is stale: an earlier request answered late), except one above the bucket's
 *   size, which shows the bucket is larger: size and level follow it.  A 429 without a remaining
 * count above 0 drains the bucket: level 0, and nothing of that bucket is sent before Retry-After
 *   (capped by max_retry_after_ms; without one, the time one token takes, at least 1 s).
 *   The call that got it goes back to the head of the queue (an attempt was spent).
 * - Kusto: at most kusto_concurrent_max control commands in flight per cluster host, the
 *   rest queued; a 429 (ControlCommandThrottledException) holds that cluster's queue until
 *   Retry-After (or a backoff) the same way.
 * - Busy and maintenance answers are retried with backoff (documented choice; Terraform
 *   provider issues 16471/22010 and azure-rest-api-specs 18845 show parallel changes to one
 *   cluster answered {"error":{"code":"ServiceIsInMaintenance","message":"[Conflict] Cluster
 *   'x' is in process of maintenance for a short period. You may retry ..."}}): an answer
 *   whose error code is ServiceIsInMaintenance or ServiceBusy/ServerBusy (any status, Kusto's
 *   "@permanent" notwithstanding); a Kusto 429 even with "@permanent": true; a 409 from ARM
 *   with code Conflict, AnotherOperationInProgress, RetryableErrorDueToAnotherOperation or
 *   none (others, such as ScopeLocked, are not retried); a 409 from Kusto unless
 *   "@permanent": true (an entity that already exists).  An ARM operation that ends Failed
 *   with ServiceIsInMaintenance/ServiceBusy changed nothing: the main request is sent again
 *   (a new attempt, within max_attempts and the deadline).  Out of attempts they end
 *   AzureUnavailable (retryable) with Azure's code in azure_code. */
#ifndef PW_AZURE_H
#define PW_AZURE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "pw/loop.h"

typedef struct pw_azure pw_azure;

/* Defaults (pw_azure_config_defaults and the configuration loader use these). */
#define PW_AZ_AUTHORITY_HOST "https://login.microsoftonline.com"
#define PW_AZ_CREDENTIAL_DEFAULT "auto"
/* The Azure Instance Metadata Service's token endpoint.  Used only with credential
 * "managed" and no other endpoint configured: auto never selects managed identity on the
 * strength of this default (no blind probe of 169.254.169.254). */
#define PW_AZ_IMDS_ENDPOINT "http://169.254.169.254/metadata/identity/oauth2/token"
#define PW_AZ_IMDS_API_VERSION "2018-02-01"
#define PW_AZ_IDENTITY_API_VERSION "2019-08-01" /* App Service / Container Apps form */
#define PW_AZ_ASSERTION_LIFETIME_S 600          /* client assertions: exp = nbf + this */
#define PW_AZ_FEDERATED_TOKEN_MAX 16384         /* bytes of AZURE_FEDERATED_TOKEN_FILE read */

/* How the worker proves its identity to Entra ID (azure.credential).  AUTO picks, in the
 * order of the Azure SDKs' EnvironmentCredential and DefaultAzureCredential, the first one
 * the configuration (keys or environment) provides: secret (tenant, client id, secret),
 * certificate (tenant, client id, certificate path), workload (tenant, client id,
 * federated token file), managed (only when an identity endpoint is configured:
 * IDENTITY_ENDPOINT, or azure.imds.endpoint set). */
typedef enum pw_azure_credential {
    PW_AZ_CRED_AUTO,
    PW_AZ_CRED_SECRET,
    PW_AZ_CRED_CERTIFICATE,
    PW_AZ_CRED_WORKLOAD,
    PW_AZ_CRED_MANAGED,
} pw_azure_credential;

typedef struct pw_azure_config {
    const char *credential;        /* "secret" | "certificate" | "workload" | "managed" | "auto";
                                      NULL = PW_AZ_CREDENTIAL_DEFAULT */
    const char *tenant_id;         /* required except for managed identity */
    const char *client_id;         /* required except for managed identity (there: the
                                      user-assigned identity's client id, NULL = system) */
    const char *client_secret;     /* secret: the client-credentials grant's client_secret */
    const char *client_certificate_path;     /* certificate: PEM with the certificate (chain)
                                                and its private key */
    const char *client_certificate_password; /* its key's passphrase; may be NULL */
    int send_certificate_chain;    /* 1: the assertion's header carries x5c (SNI auth) */
    const char *federated_token_file; /* workload: read again at each token fetch */
    const char *imds_endpoint;     /* managed, IMDS form; NULL = not configured (then
                                      PW_AZ_IMDS_ENDPOINT, and only with credential=managed) */
    const char *identity_endpoint; /* managed, App Service form (IDENTITY_ENDPOINT) */
    const char *identity_header;   /* its X-IDENTITY-HEADER secret (IDENTITY_HEADER) */
    const char *authority_host;    /* default PW_AZ_AUTHORITY_HOST */
    const char *arm_endpoint;      /* default "https://management.azure.com" */
    const char *arm_api_version;   /* default "2025-02-14" */
    const char *ca_file;           /* NULL: the system trust store */
    const char *const *connect_to; /* libcurl CURLOPT_CONNECT_TO entries, may be NULL */
    size_t connect_to_count;
    long connect_timeout_ms;   /* default 10000 */
    long request_timeout_ms;   /* one HTTP exchange; default 60000 */
    size_t max_response_bytes; /* default 4 MiB; larger bodies fail the call */
    unsigned max_attempts;     /* per HTTP request, first try included; default 8 */
    long backoff_base_ms;    /* full jitter: sleep = random(0, min(max, base * 2^n)); default 500 */
    long backoff_max_ms;     /* default 30000 */
    long max_retry_after_ms; /* honoured Retry-After is capped here; default 60000 */
    long
        lro_poll_default_ms; /* poll interval when a poll answer has no Retry-After; default 5000 */
    long token_refresh_margin_ms; /* refresh a cached token this long before expiry; default 300000
                                   */
    long max_host_connections;    /* exchanges in flight per real host (the URL's host:port, also
                                     when connect_to sends several hosts to one address): each
                                     holds a connection over HTTP/1.1; default
                                     PW_CONFIG_HOST_CONNECTIONS_MAX (64) */
    /* Pacing (see "Pacing" above); proposed configuration keys in [].  A bucket or limit of 0
     * turns that pacing off, below 0 means the default; a refill below 1 means the default. */
    long arm_write_bucket;       /* ARM writes per (principal, subscription): burst; default 200
                                    [azure.arm.writes.burst] */
    long arm_write_refill_per_s; /* tokens per second; default 10 [azure.arm.writes.per.second] */
    long arm_read_bucket;        /* ARM reads (GET, LRO polls): burst; default 250
                                    [azure.arm.reads.burst] */
    long arm_read_refill_per_s;  /* default 25 [azure.arm.reads.per.second] */
    long kusto_concurrent_max;   /* control commands in flight per Kusto cluster; default 8
                                    [azure.kusto.concurrent.max] */
} pw_azure_config;

/* Fills every field with its default (strings NULL where there is none). */
void pw_azure_config_defaults(pw_azure_config *cfg);

/* The credential cfg selects (cfg->credential, or for "auto" the rule above) with what it
 * needs present: 0 and *out set, or -1 with err naming the missing key or environment
 * variable (never a secret's value).  Pure: reads no environment, sends nothing. */
int pw_azure_credential_select(const pw_azure_config *cfg, pw_azure_credential *out, char *err,
                               size_t errlen);
/* "secret", "certificate", "workload", "managed", "auto". */
const char *pw_azure_credential_name(pw_azure_credential c);

/* Stable error codes (pw_azure_result.code), shared with the reply contract. */
#define PW_AZ_CODE_THROTTLED "Throttled" /* 429 until attempts/deadline ran out */
#define PW_AZ_CODE_UNAVAILABLE                                                                     \
    "AzureUnavailable"            /* 5xx or transport errors until attempts/deadline ran out */
#define PW_AZ_CODE_TLS "TlsError" /* certificate verification or handshake failed */
#define PW_AZ_CODE_AUTH "AuthenticationFailed" /* AAD refused, or 401 after one refresh */
#define PW_AZ_CODE_FORBIDDEN "Forbidden"       /* 403 (ARM AuthorizationFailed, Kusto forbidden) */
#define PW_AZ_CODE_NOT_FOUND "NotFound"        /* 404, Kusto EntityNotFound */
#define PW_AZ_CODE_BAD_REQUEST "AzureBadRequest" /* other 4xx, Kusto @permanent errors */
#define PW_AZ_CODE_DEADLINE "DeadlineExceeded"   /* the call's deadline passed first */
#define PW_AZ_CODE_LRO_FAILED                                                                      \
    "OperationFailed"           /* ARM long-running operation ended Failed/Canceled */
#define PW_AZ_ARM_PATH_MAX 2048 /* bytes of an ARM path (query excluded) the client sends */
#define PW_AZ_CODE_PROTOCOL "AzureProtocolError" /* unparseable/oversized answer, bad LRO URL */
#define PW_AZ_CODE_OUTCOME_UNKNOWN                                                                 \
    "OutcomeUnknown" /* ARM accepted the write (201/202), its outcome was not learned in time */

typedef struct pw_azure_result {
    int ok;                      /* 1 = success; otherwise code/message say why */
    const char *code;            /* one of PW_AZ_CODE_*, NULL on success */
    int retryable;               /* would trying again later plausibly work */
    int http_status;             /* last HTTP status seen, 0 if none */
    json_t *body;                /* borrowed, valid only during the callback: final body or NULL */
    char azure_code[128];        /* Azure's own error code from the body ("AuthorizationFailed",
                                    "BadRequest_EntityNotFound") */
    char message[1024];          /* Azure's message (@message for Kusto) or the transport error */
    unsigned attempts;           /* HTTP attempts of the main request (LRO polls not counted) */
    uint64_t duration_ms;        /* from the call to the callback */
    char request_id[128];        /* x-ms-request-id (ARM) or x-ms-activity-id (Kusto) */
    char correlation_id[128];    /* x-ms-correlation-request-id (ARM), empty for Kusto */
    char client_request_id[128]; /* the x-ms-client-request-id sent */
    char operation_url[2048];    /* the LRO status URL followed (redacted), empty when none */
    uint64_t queued_ms;          /* time the call spent queued for admission (pacing) */
} pw_azure_result;

/* What a paced call waits for (pw_azure_stats and pw_azure_progress.queued_kind). */
typedef enum pw_azure_pace_kind {
    PW_AZ_PACE_ARM_WRITE, /* "ARM write budget" */
    PW_AZ_PACE_ARM_READ,  /* "ARM read budget" */
    PW_AZ_PACE_KUSTO,     /* "Kusto cluster concurrency" */
    PW_AZ_PACE_KINDS
} pw_azure_pace_kind;

typedef struct pw_azure_progress {
    const char *lro_status; /* "Running", ... as Azure reported it; NULL in a queued report */
    unsigned polls;         /* polls so far */
    int percent_complete;   /* -1 when unknown */
    /* Queued reports (on_queued) only: */
    const char *queued; /* "queued: ARM write budget", "queued: ARM read budget",
                           "queued: Kusto cluster concurrency"; NULL otherwise */
    pw_azure_pace_kind queued_kind;
    double level;    /* tokens left (ARM; may be below 0 while requests are in flight) or
                        commands in flight (Kusto) when the wait began */
    double capacity; /* bucket size, or kusto_concurrent_max */
    size_t ahead;    /* calls queued before this one */
} pw_azure_progress;

typedef void (*pw_azure_done_cb)(void *ctx, const pw_azure_result *result);
typedef void (*pw_azure_progress_cb)(void *ctx, const pw_azure_progress *progress);

typedef struct pw_azure_call {
    const char *request_id;           /* for logs and the x-ms-client-request-id; may be NULL */
    uint64_t deadline_ms;             /* absolute, pw_loop_now_ms() clock; 0 = no deadline */
    pw_azure_progress_cb on_progress; /* LRO polls; may be NULL */
    /* > 0: time spent queued for admission does not count against deadline_ms (the deadline
     * stops while the call waits), and waiting is bounded by this many ms over the call's
     * life (past it: DeadlineExceeded, "queued longer than ...").  0: queue time counts. */
    long queue_timeout_ms;
    pw_azure_progress_cb on_queued; /* once per budget a request of the call waits for; may be
                                       NULL; never from inside the starting call */
    pw_azure_done_cb on_done;       /* called exactly once, never from inside the starting call;
                                       the call is already gone (in_flight excludes it), and the
                                       callback may start new calls */
    void *ctx;
    int read_only;    /* 1: the call changes nothing (a read, or a Kusto .show): it may be
                         abandoned even while a request of it is on the wire */
    int no_final_get; /* 1: a PUT/PATCH followed as a long-running operation ends when it
                         Succeeded, with no body: the caller reads the resource itself (e.g.
                         with other reads, one list for many); a write answered 200/201 without
                         an operation to follow still returns its answer's body */
} pw_azure_call;

/* Copies everything it needs from cfg.  NULL with err filled on bad configuration. */
pw_azure *pw_azure_new(pw_loop *loop, const pw_azure_config *cfg, char *err, size_t errlen);
/* Accepts NULL.  Abandons calls in flight without calling their callbacks.
 * Must not be called from inside a pw_azure callback. */
void pw_azure_free(pw_azure *az);

/* ARM request.  path: "/subscriptions/..." with no query (api-version is appended);
 * method: GET, PUT, PATCH, POST or DELETE; body: borrowed, may be NULL.
 * 201/202 answers are followed as long-running operations (Azure-AsyncOperation
 * preferred, else Location; Retry-After honoured) until terminal; a PUT or PATCH
 * then ends with a GET of the resource, whose body is the result's body.
 * Returns 0 when started, -1 (err filled) when the call cannot be made. */
int pw_azure_arm(pw_azure *az, const char *method, const char *path, const json_t *body,
                 const pw_azure_call *call, char *err, size_t errlen);

/* GET of a URL ARM gave for the next page of a list (nextLink: absolute, with its own query,
 * api-version included), sent as it is.  It must be https on the ARM endpoint's host and
 * port, like an LRO URL; otherwise -1 (err filled) and nothing is sent.  A read: paced,
 * retried and answered as pw_azure_arm's GET. */
int pw_azure_arm_next(pw_azure *az, const char *url, const pw_azure_call *call, char *err,
                      size_t errlen);

/* Kusto management command: POST <cluster_uri>/v1/rest/mgmt {"db":db,"csl":csl}.
 * The token audience is the cluster URI.  The result's body is the v1 response.
 * Returns 0 when started, -1 (err filled) when cluster_uri is not acceptable. */
int pw_azure_kusto_mgmt(pw_azure *az, const char *cluster_uri, const char *db, const char *csl,
                        const pw_azure_call *call, char *err, size_t errlen);

/* Abandons the call started with ctx when nothing it may have changed can still be in
 * progress: a read-only call at any time before its long-running part, any other while no
 * request of it is on the wire (waiting for admission, a token, or its next attempt) and
 * before Azure accepted it as a long-running operation.  Returns 1 when abandoned (its
 * on_done never comes), 0 when the call must run to its end (or there is none). */
int pw_azure_abandon(pw_azure *az, void *ctx);

/* Obtains a token for ARM now (cached or fetched), to check the credential: cb runs once,
 * later, with code NULL (a token) or a PW_AZ_CODE_* and Azure's message (scrubbed).  One
 * check at a time; a second one replaces the first (no callback for it).  -1 on
 * out-of-memory. */
typedef void (*pw_azure_check_cb)(void *ctx, const char *code, const char *message);
int pw_azure_check_credential(pw_azure *az, pw_azure_check_cb cb, void *ctx);

/* Calls in flight (for drain and metrics). */
size_t pw_azure_in_flight(const pw_azure *az);

/* Pacing counters since pw_azure_new, indexed by pw_azure_pace_kind. */
typedef struct pw_azure_stats {
    uint64_t admitted[PW_AZ_PACE_KINDS];  /* requests let through (each then sent), or sent
                                             when that kind is not paced */
    uint64_t waited[PW_AZ_PACE_KINDS];    /* requests that had to queue first */
    uint64_t wait_ms[PW_AZ_PACE_KINDS];   /* time requests spent queued (admitted ones) */
    uint64_t throttled[PW_AZ_PACE_KINDS]; /* 429 answers seen, paced or not */
    size_t queued[PW_AZ_PACE_KINDS];      /* requests queued now */
    size_t in_flight[PW_AZ_PACE_KINDS];   /* admitted requests without an answer yet */
    size_t budgets[PW_AZ_PACE_KINDS];     /* buckets / clusters tracked */
    double level_min[PW_AZ_PACE_KINDS];   /* ARM: the lowest bucket level now (0 when none);
                                             Kusto: the most commands in flight on a cluster */
} pw_azure_stats;

/* Fills *out (all zero for NULL az). */
void pw_azure_stats_get(const pw_azure *az, pw_azure_stats *out);

typedef struct pw_azure_budget {
    pw_azure_pace_kind kind;
    char scope[160]; /* ARM: "<client id>|<subscription>"; Kusto: "https://host" */
    double level;    /* as in pw_azure_progress */
    double capacity;
    size_t in_flight, queued;
    uint64_t blocked_ms; /* how long it still waits for a Retry-After; 0 when not */
} pw_azure_budget;

/* Copies up to max budgets into out; returns how many there are in all. */
size_t pw_azure_budgets(const pw_azure *az, pw_azure_budget *out, size_t max);

#endif
