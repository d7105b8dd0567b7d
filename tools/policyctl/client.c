/* client.c: policyctl's Kafka client: one producer for requests, one consumer of replies
 * assigned by hand (no group membership, no commits) from a chosen offset. */
#include "client.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "pw/config.h"

#define CTL_PARTITIONS_MAX 1024

struct ctl_client {
    rd_kafka_t *producer, *consumer;
    char *request_topic, *reply_topic;
    int64_t end[CTL_PARTITIONS_MAX]; /* high watermark at start, per partition */
    int reached[CTL_PARTITIONS_MAX];
    int partitions;
    int verbose;
    int delivered; /* delivery report: 1 ok, -1 failed */
    char delivery_err[256];
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const ctl_client *c = rd_kafka_opaque(rk);
    if (level <= LOG_ERR || (c && c->verbose)) fprintf(stderr, "policyctl: kafka %s: %s\n", fac, buf);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    ctl_client *c = opaque;
    if (m->err) {
        c->delivered = -1;
        snprintf(c->delivery_err, sizeof c->delivery_err, "%s", rd_kafka_err2str(m->err));
    } else {
        c->delivered = 1;
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen)
{
    char e[256];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka setting %s: %s", k, e);
        return -1;
    }
    return 0;
}

/* The configuration both clients share: the file's kafka.*, -b, -X. */
static rd_kafka_conf_t *base_conf(const ctl_kafka_opts *o, const pw_config *cfg, char *err,
                                  size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        /* the worker's consumer group and consumer tuning are not ours */
        if (!strcmp(cfg->kafka[i].key, "group.id")) continue;
        if (conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, err, errlen)) goto fail;
    }
    if (o->brokers && conf_set(conf, "bootstrap.servers", o->brokers, err, errlen)) goto fail;
    for (size_t i = 0; i < o->nx; i++) {
        char kv[1024];
        snprintf(kv, sizeof kv, "%s", o->x[i]);
        char *eq = strchr(kv, '=');
        if (!eq) {
            snprintf(err, errlen, "-X %s: expected key=value", o->x[i]);
            goto fail;
        }
        *eq = 0;
        if (conf_set(conf, kv, eq + 1, err, errlen)) goto fail;
    }
    char v[512];
    size_t vl = sizeof v;
    if (rd_kafka_conf_get(conf, "bootstrap.servers", v, &vl) != RD_KAFKA_CONF_OK || !v[0]) {
        snprintf(err, errlen, "no Kafka brokers: give -b BROKERS, -F FILE or -X bootstrap.servers=");
        goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

const char *ctl_client_reply_topic(const ctl_client *c) { return c->reply_topic; }
const char *ctl_client_request_topic(const ctl_client *c) { return c->request_topic; }

ctl_client *ctl_client_new(const ctl_kafka_opts *o, ctl_start start, char *err, size_t errlen)
{
    pw_config cfg;
    if (pw_config_load(&cfg, o->config_file, err, errlen)) return NULL;
    ctl_client *c = calloc(1, sizeof *c);
    rd_kafka_conf_t *pconf = NULL, *cconf = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    const struct rd_kafka_metadata *md = NULL;
    if (!c) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    c->verbose = o->verbose;
    c->request_topic = strdup(o->request_topic ? o->request_topic : cfg.request_topic);
    c->reply_topic = strdup(o->reply_topic ? o->reply_topic : cfg.reply_topic);
    if (!(pconf = base_conf(o, &cfg, err, errlen))) goto fail;
    if (!(cconf = rd_kafka_conf_dup(pconf))) goto fail;
    rd_kafka_conf_set_opaque(pconf, c);
    rd_kafka_conf_set_opaque(cconf, c);
    rd_kafka_conf_set_dr_msg_cb(pconf, dr_cb);
    /* A group of our own that never commits: nothing we read moves anyone's offsets. */
    char group[128];
    snprintf(group, sizeof group, "policyctl-%ld-%ld", (long)getpid(), (long)time(NULL));
    if (conf_set(cconf, "group.id", group, err, errlen) ||
        conf_set(cconf, "enable.auto.commit", "false", err, errlen) ||
        conf_set(cconf, "enable.partition.eof", "true", err, errlen) ||
        conf_set(pconf, "acks", "all", err, errlen))
        goto fail;
    char e[512];
    c->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, e, sizeof e);
    if (!c->producer) {
        snprintf(err, errlen, "kafka producer: %s", e);
        goto fail;
    }
    pconf = NULL; /* owned by the producer now */
    c->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, e, sizeof e);
    if (!c->consumer) {
        snprintf(err, errlen, "kafka consumer: %s", e);
        goto fail;
    }
    cconf = NULL; /* owned by the consumer now */

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->consumer, c->reply_topic, NULL);
    rd_kafka_resp_err_t rerr = rd_kafka_metadata(c->consumer, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (rerr || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
        snprintf(err, errlen, "reply topic %s: %s", c->reply_topic,
                 rd_kafka_err2str(rerr ? rerr : md->topic_cnt ? md->topics[0].err
                                                               : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto fail;
    }
    c->partitions = md->topics[0].partition_cnt;
    if (c->partitions > CTL_PARTITIONS_MAX) c->partitions = CTL_PARTITIONS_MAX;
    parts = rd_kafka_topic_partition_list_new(c->partitions);
    for (int i = 0; i < c->partitions; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        rerr = rd_kafka_query_watermark_offsets(c->consumer, c->reply_topic, p, &lo, &hi, 10000);
        if (rerr) {
            snprintf(err, errlen, "reply topic %s [%d] offsets: %s", c->reply_topic, (int)p,
                     rd_kafka_err2str(rerr));
            goto fail;
        }
        c->end[i] = hi;
        c->reached[i] = hi <= lo;
        rd_kafka_topic_partition_list_add(parts, c->reply_topic, p)->offset =
            start == CTL_FROM_END ? hi : lo;
    }
    if (start == CTL_FROM_END)
        for (int i = 0; i < c->partitions; i++) c->reached[i] = 1;
    rerr = rd_kafka_assign(c->consumer, parts);
    if (rerr) {
        snprintf(err, errlen, "assign %s: %s", c->reply_topic, rd_kafka_err2str(rerr));
        goto fail;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_metadata_destroy(md);
    pw_config_free(&cfg);
    return c;
fail:
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (md) rd_kafka_metadata_destroy(md);
    if (pconf) rd_kafka_conf_destroy(pconf);
    if (cconf) rd_kafka_conf_destroy(cconf);
    ctl_client_free(c);
    pw_config_free(&cfg);
    return NULL;
}

void ctl_client_free(ctl_client *c)
{
    if (!c) return;
    if (c->consumer) {
        rd_kafka_consumer_close(c->consumer);
        rd_kafka_destroy(c->consumer);
    }
    if (c->producer) {
        rd_kafka_flush(c->producer, 5000);
        rd_kafka_destroy(c->producer);
    }
    free(c->request_topic);
    free(c->reply_topic);
    free(c);
}

int ctl_client_produce(ctl_client *c, const char *key, const void *value, size_t len,
                       int timeout_ms, char *err, size_t errlen)
{
    c->delivered = 0;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        c->producer, RD_KAFKA_V_TOPIC(c->request_topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_END);
    if (e) {
        snprintf(err, errlen, "produce to %s: %s", c->request_topic, rd_kafka_err2str(e));
        return -1;
    }
    rd_kafka_flush(c->producer, timeout_ms);
    if (c->delivered == 1) return 0;
    snprintf(err, errlen, "produce to %s: %s", c->request_topic,
             c->delivered ? c->delivery_err : "not delivered in time");
    return -1;
}

static int all_reached(const ctl_client *c)
{
    for (int i = 0; i < c->partitions; i++)
        if (!c->reached[i]) return 0;
    return 1;
}

static void mark(ctl_client *c, int32_t partition, int64_t offset)
{
    if (partition >= 0 && partition < c->partitions && offset + 1 >= c->end[partition])
        c->reached[partition] = 1;
}

int ctl_client_next(ctl_client *c, int timeout_ms, json_t **ev, char *key, size_t keylen,
                    char *err, size_t errlen)
{
    *ev = NULL;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->consumer, timeout_ms);
    if (!m) return 0;
    int rc = 0;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        mark(c, m->partition, m->offset - 1);
        rc = all_reached(c) ? 2 : 0;
    } else if (m->err) {
        snprintf(err, errlen, "consume %s: %s", c->reply_topic, rd_kafka_message_errstr(m));
        /* broker and transport trouble is retried by librdkafka: inform, go on */
        rc = m->err == RD_KAFKA_RESP_ERR__TRANSPORT || m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? 0 : -1;
    } else {
        mark(c, m->partition, m->offset);
        size_t kl = m->key_len < keylen - 1 ? m->key_len : keylen - 1;
        memcpy(key, m->key ? m->key : "", m->key ? kl : 0);
        key[m->key ? kl : 0] = 0;
        json_error_t je;
        *ev = json_loadb(m->payload, m->len, 0, &je);
        rc = *ev ? 1 : 0;
    }
    rd_kafka_message_destroy(m);
    return rc;
}
