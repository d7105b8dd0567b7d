/* pw/config.h: the worker's configuration, from a key=value file and the environment.
 *
 * File format (the librdkafka/kcat convention): one `key=value` per line, `#` starts a
 * comment line, blank lines ignored, whitespace around key and value trimmed.
 *   kafka.*   passed through verbatim (prefix removed) to librdkafka, consumer and producer
 *   worker.*  topics, limits, timeouts (see the fields below)
 *   azure.*   identity and endpoints; the Azure SDKs' variables AZURE_TENANT_ID,
 *             AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST,
 *             AZURE_CLIENT_CERTIFICATE_PATH, AZURE_CLIENT_CERTIFICATE_PASSWORD,
 *             AZURE_CLIENT_SEND_CERTIFICATE_CHAIN, AZURE_FEDERATED_TOKEN_FILE, IDENTITY_ENDPOINT
 *             and IDENTITY_HEADER fill what the file leaves unset (azure.credential, pw/azure.h).
 * Environment (containers): every key can also be given as PW_<KEY>, where the key's
 * letters are upper-cased and written with `_` for `.`, `__` for `_` and `___` for `-`
 * (the convention of Confluent's images): PW_WORKER_INFLIGHT_MAX=10 is
 * worker.inflight.max=10, PW_KAFKA_BOOTSTRAP_SERVERS is kafka.bootstrap.servers.  Only
 * names starting PW_KAFKA_, PW_WORKER_ or PW_AZURE_ are read (PW_BIN_DIR and the like are
 * not configuration); a PW_WORKER_/PW_AZURE_ name that is no key is an error like an
 * unknown key in the file.  PW_* values are applied after the file, so they win over it.
 * An unknown worker.* or azure.* key, or a bad value, fails the load naming the key (and
 * FILE:LINE, or the environment variable, it came from). */
#ifndef PW_CONFIG_H
#define PW_CONFIG_H

#include <stddef.h>
#include <string.h>

#include "pw/azure.h"

/* Defaults that more than the loader needs (an executor built without a configuration). */
#define PW_CONFIG_OPERATION_TIMEOUT_MS 600000
#define PW_CONFIG_QUEUE_TIMEOUT_MS 3600000
#define PW_CONFIG_COALESCE_MAX 64
#define PW_CONFIG_ROLLOUT_TARGETS_MAX 10000
#define PW_CONFIG_ADMIN_LISTEN "127.0.0.1:9464" /* Prometheus' port range; loopback */
/* azure.host.connections.max: exchanges (HTTP/1.1 connections) in flight per real host.  Sized
 * for a service: a worker with hundreds of operations in flight over 50 ms round trips keeps
 * 64 exchanges busy on ARM alone (bench/e2e, issue workload: 16 held it at ~220 requests/s,
 * 64 reached ~320; 128 and 256 added nothing). */
#define PW_CONFIG_HOST_CONNECTIONS_MAX 64

typedef struct pw_config_kv {
    char *key; /* without the "kafka." prefix */
    char *value;
} pw_config_kv;

typedef struct pw_config {
    pw_config_kv *kafka; /* kafka.* pass-through, in file order */
    size_t kafka_count;

    char *worker_id;             /* worker.id; default "<hostname>-<pid>" */
    char *request_topic;         /* worker.request.topic; default "adx.policy.requests" */
    char *reply_topic;           /* worker.reply.topic; default "adx.policy.replies" */
    char *dead_letter_topic;     /* worker.deadletter.topic; default "adx.policy.deadletter" */
    char **allowed_reply_topics; /* worker.replyto.allowed: comma list; reply_topic is always
                                    allowed */
    size_t allowed_reply_topic_count;
    char *schemas_dir; /* worker.schemas.dir; default pw_paths_schemas_dir() (pw/paths.h) */
    /* worker.kinds.allowed: comma list of kinds (pw/ops.h); NULL (unset): every kind that is
     * not privileged.  worker.kinds.privileged.allowed: the privileged kinds allowed (empty by
     * default).  A privileged kind needs the second list, and the first when it is set. */
    char **kinds_allowed;
    size_t kinds_allowed_count;
    char **kinds_privileged_allowed;
    size_t kinds_privileged_allowed_count;

    size_t max_in_flight;       /* worker.inflight.max: requests being processed; default 1000 */
    size_t max_uncommitted;     /* worker.uncommitted.max: messages received but not yet
                                   committable (in flight or behind one); default 10000 */
    size_t max_message_bytes;   /* worker.message.max.bytes; default 1048576 */
    unsigned max_json_depth;    /* worker.json.max.depth; default 32 */
    size_t max_operations;      /* worker.operations.max per request; default 100 */
    long operation_timeout_ms;  /* worker.operation.timeout.ms: deadline per operation; default
                                   600000 */
    long queue_timeout_ms;      /* worker.queue.timeout.ms: the longest an operation waits in
                                   all for Azure's budgets (pacing) before it fails; that wait
                                   does not count against operation_timeout_ms; default 3600000 */
    size_t rollout_targets_max; /* worker.rollout.targets.max: targets one rollout may name or
                                   a selector may expand to (TooManyTargets); default 10000 */
    size_t coalesce_max;        /* worker.coalesce.max: tables one `.alter tables (…)` command
                                   may carry (1: every write alone); default 64 */
    long drain_timeout_ms;      /* worker.drain.timeout.ms: SIGTERM drain deadline; default 30000 */
    long teardown_timeout_ms;   /* worker.teardown.timeout.ms: releasing the Kafka and Azure
                                   clients after the worker stopped, past which the process
                                   exits without them; default 5000 */
    long reply_retry_backoff_ms; /* worker.reply.retry.backoff.ms: wait before re-producing a
                                    reply whose delivery failed; default 1000 */
    char *log_level;             /* worker.log.level: debug|info|warn|error; default info */
    char *admin_listen;          /* worker.admin.listen: HOST:PORT of /healthz, /readyz and
                                    /metrics; default PW_CONFIG_ADMIN_LISTEN; "" disables */
    char *credential_check;      /* worker.credential.check: on (default) | off: obtain a token
                                    for ARM before taking requests */

    char **kusto_host_suffixes; /* azure.kusto.host.suffixes: comma list; default the public and
                                   sovereign Kusto suffixes (".kusto.windows.net", ...) */
    size_t kusto_host_suffix_count;

    pw_azure_config azure; /* azure.credential, azure.tenant.id, azure.client.id,
                              azure.client.secret, azure.client.certificate.path/.password,
                              azure.client.send.certificate.chain, azure.federated.token.file,
                              azure.imds.endpoint,
                              azure.authority.host, azure.arm.endpoint, azure.arm.api.version,
                              azure.ca.file, azure.connect.to (comma list), azure.*.ms timeouts;
                              its strings are owned by pw_config */

    struct pw_config_origin *origins; /* where each key was set (pw_config_origin) */
    size_t origin_count;
} pw_config;

/* One problem found while loading or checking: where is "FILE:LINE", "environment NAME" or
 * NULL (a default, or no single place); text names the key ("worker.inflight.max: not a
 * number: ..."), never a secret's value. */
typedef void (*pw_config_report_fn)(void *ctx, const char *where, const char *text);

/* Loads like pw_config_load but goes on past a problem and reports each one through fn:
 * every bad line of the file, every bad PW_* variable, every kafka.* key librdkafka refuses,
 * every bad value.  Returns the number of problems (0: loaded).  cfg is always left loaded
 * as far as it could be (a refused value leaves the previous one) and must be freed. */
int pw_config_load_report(pw_config *cfg, const char *path, pw_config_report_fn fn, void *ctx);

/* What a running worker needs before it starts, every problem reported through fn:
 * pw_config_require's checks plus worker.reply.topic / worker.deadletter.topic differing
 * from worker.request.topic.  Returns the number of problems. */
int pw_config_require_report(const pw_config *cfg, pw_config_report_fn fn, void *ctx);

/* Where key (a full name, "kafka.group.id") got its value: "FILE:LINE" or "environment
 * PW_..."; NULL when it has its default (or came from AZURE_*).  Owned by cfg. */
const char *pw_config_origin(const pw_config *cfg, const char *key);

/* The PW_* environment variable that sets key ("worker.inflight.max" ->
 * "PW_WORKER_INFLIGHT_MAX").  Returns 0, or -1 when out does not hold it. */
int pw_config_env_name(const char *key, char *out, size_t outlen);

/* Loads path (NULL: defaults + environment only).  Returns 0, or -1 with err naming the key
 * (the first problem; pw_config_load_report lists them all).  Order: defaults, then AZURE_*
 * environment, then the file, then PW_* environment (each later one wins).  Every kafka.*
 * key is checked by librdkafka here.  Required values are not checked: see pw_config_require.
 * On failure cfg is left zeroed (nothing to free). */
int pw_config_load(pw_config *cfg, const char *path, char *err, size_t errlen);
void pw_config_free(pw_config *cfg); /* frees the members; accepts a zeroed struct */

/* Sets one key as a file line would (kafka.* appended; worker.* / azure.* replaced).
 * Returns 0 or -1 with err naming the key (never echoing a secret value). */
int pw_config_set(pw_config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* What a running worker needs: a complete credential (pw_azure_credential_select),
 * kafka.bootstrap.servers, kafka.group.id, reply and dead-letter topics other than the
 * request topic.  Returns 0 or -1 with err naming the key (the first problem;
 * pw_config_require_report lists them all). */
int pw_config_require(const pw_config *cfg, char *err, size_t errlen);

/* The last value of a kafka.* key (name without the prefix), or NULL. */
const char *pw_config_kafka_get(const pw_config *cfg, const char *key);

/* 1 when topic is the reply topic or listed in worker.replyto.allowed.  Inline: request
 * decoding uses it without linking the config loader (and librdkafka). */
static inline int pw_config_reply_topic_allowed(const pw_config *cfg, const char *topic)
{
    if (cfg->reply_topic && !strcmp(topic, cfg->reply_topic)) return 1;
    for (size_t i = 0; i < cfg->allowed_reply_topic_count; i++)
        if (!strcmp(topic, cfg->allowed_reply_topics[i])) return 1;
    return 0;
}

#endif
