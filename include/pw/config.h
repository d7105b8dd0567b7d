/* pw/config.h: the worker's configuration, from a key=value file and AZURE_* env vars.
 *
 * File format (the librdkafka/kcat convention): one `key=value` per line, `#` starts a
 * comment line, blank lines ignored, whitespace around key and value trimmed.
 *   kafka.*   passed through verbatim (prefix removed) to librdkafka, consumer and producer
 *   worker.*  topics, limits, timeouts (see the fields below)
 *   azure.*   identity and endpoints; AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
 *             AZURE_AUTHORITY_HOST fill what the file leaves unset, as in the Azure SDKs.
 * An unknown worker.* or azure.* key, or a bad value, fails the load naming the key. */
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
    char *schemas_dir; /* worker.schemas.dir; default the source tree's schemas/ */
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

    char **kusto_host_suffixes; /* azure.kusto.host.suffixes: comma list; default the public and
                                   sovereign Kusto suffixes (".kusto.windows.net", ...) */
    size_t kusto_host_suffix_count;

    pw_azure_config azure; /* azure.tenant.id, azure.client.id, azure.client.secret,
                              azure.authority.host, azure.arm.endpoint, azure.arm.api.version,
                              azure.ca.file, azure.connect.to (comma list), azure.*.ms timeouts;
                              its strings are owned by pw_config */
} pw_config;

/* Loads path (NULL: defaults + environment only).  Returns 0, or -1 with err naming the key.
 * Order: defaults, then AZURE_* environment, then the file (the file wins).  Every kafka.*
 * key is checked by librdkafka here.  Required values are not checked: see pw_config_require.
 * On failure cfg is left zeroed (nothing to free). */
int pw_config_load(pw_config *cfg, const char *path, char *err, size_t errlen);
void pw_config_free(pw_config *cfg); /* frees the members; accepts a zeroed struct */

/* Sets one key as a file line would (kafka.* appended; worker.* / azure.* replaced).
 * Returns 0 or -1 with err naming the key (never echoing a secret value). */
int pw_config_set(pw_config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* What a running worker needs: azure tenant/client id/secret, kafka.bootstrap.servers,
 * kafka.group.id.  Returns 0 or -1 with err naming the missing key. */
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
