/* client.h: policyctl's Kafka side: produce a request, read the reply topic from a point. */
#ifndef PW_CTL_CLIENT_H
#define PW_CTL_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#define CTL_X_MAX 64

/* Where Kafka is: -F FILE (the worker's configuration format: kafka.* keys, and its
 * worker.request.topic / worker.reply.topic), then -b, then each -X key=value (later wins). */
typedef struct ctl_kafka_opts {
    const char *config_file;
    const char *brokers;
    const char *x[CTL_X_MAX]; /* "key=value" */
    size_t nx;
    const char *request_topic; /* NULL: the configuration's (worker default) */
    const char *reply_topic;
    int verbose; /* librdkafka's warnings on stderr */
} ctl_kafka_opts;

typedef struct ctl_client ctl_client;

typedef enum ctl_start { CTL_FROM_END = 0, CTL_FROM_BEGINNING } ctl_start;

/* Connects a consumer to the reply topic, positioned at each partition's end (CTL_FROM_END:
 * only what comes after this call) or beginning, with no committed offsets (a unique group,
 * never committed).  NULL with err on failure. */
ctl_client *ctl_client_new(const ctl_kafka_opts *o, ctl_start start, char *err, size_t errlen);
void ctl_client_free(ctl_client *c);

const char *ctl_client_reply_topic(const ctl_client *c);
const char *ctl_client_request_topic(const ctl_client *c);

/* Produces value keyed by key to the request topic and waits for its delivery (timeout_ms).
 * 0 or -1 with err. */
int ctl_client_produce(ctl_client *c, const char *key, const void *value, size_t len,
                       int timeout_ms, char *err, size_t errlen);

/* The next reply event within timeout_ms: 1 with *ev (caller owns) and key copied into key;
 * 0 nothing yet; 2 every partition has reached the end it had at ctl_client_new (only with
 * CTL_FROM_BEGINNING); -1 a fatal error (err).  Payloads that are not JSON are skipped. */
int ctl_client_next(ctl_client *c, int timeout_ms, json_t **ev, char *key, size_t keylen,
                    char *err, size_t errlen);

#endif
