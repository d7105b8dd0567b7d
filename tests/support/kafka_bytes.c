/* kafka_bytes.c: a test helper for Kafka messages whose key or headers hold any bytes
 * (kcat takes header values from argv and prints them as text, so it can neither send nor
 * show a 4-byte big-endian kafka_replyPartition or Spring's binary kafka_dlt-* numbers).
 *
 *   kafka-bytes produce BROKERS TOPIC KEY-HEX|- VALUE-FILE [NAME=HEX]...
 *   kafka-bytes consume BROKERS TOPIC COUNT TIMEOUT-S
 *     one JSON line per message: {"partition","offset","key","value","headers":[[name, hex]]}
 *     (key hex, null when none; value as text); exit 1 when fewer than COUNT came in time. */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t unhex(const char *s, unsigned char *out, size_t cap)
{
    size_t n = 0;
    for (; s[0] && s[1] && n < cap; s += 2) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1) break;
        out[n++] = (unsigned char)v;
    }
    return n;
}

static char *hex(const void *p, size_t n)
{
    char *out = malloc(2 * n + 1);
    if (!out) exit(2);
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", ((const unsigned char *)p)[i]);
    out[2 * n] = '\0';
    return out;
}

static rd_kafka_conf_t *conf_new(const char *brokers)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    return c;
}

static int produce(int argc, char **argv)
{
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf_new(argv[2]), err, sizeof err);
    if (!rk) return fprintf(stderr, "%s\n", err), 2;
    unsigned char key[1024];
    size_t klen = strcmp(argv[4], "-") ? unhex(argv[4], key, sizeof key) : 0;
    FILE *f = fopen(argv[5], "rb");
    if (!f) return perror(argv[5]), 2;
    static char value[1 << 20];
    size_t vlen = fread(value, 1, sizeof value, f);
    fclose(f);
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    for (int i = 6; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) return fprintf(stderr, "NAME=HEX: %s\n", argv[i]), 2;
        unsigned char v[1024];
        size_t n = unhex(eq + 1, v, sizeof v);
        rd_kafka_header_add(h, argv[i], eq - argv[i], v, (ssize_t)n);
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(argv[3]), RD_KAFKA_V_KEY(strcmp(argv[4], "-") ? key : NULL, klen),
        RD_KAFKA_V_VALUE(value, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e) return fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e)), 1;
    int left = rd_kafka_flush(rk, 30000) ? 1 : 0;
    rd_kafka_destroy(rk);
    return left;
}

static int consume(char **argv)
{
    char err[256], group[64];
    rd_kafka_conf_t *c = conf_new(argv[2]);
    snprintf(group, sizeof group, "kafka-bytes-%ld-%d", (long)time(NULL), rand());
    rd_kafka_conf_set(c, "group.id", group, err, sizeof err);
    rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof err);
    rd_kafka_conf_set(c, "topic.metadata.refresh.interval.ms", "1000", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk) return fprintf(stderr, "%s\n", err), 2;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, argv[3], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    long want = atol(argv[4]), got = 0;
    time_t end = time(NULL) + atol(argv[5]);
    while (got < want && time(NULL) < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        json_t *line = json_object();
        json_object_set_new(line, "partition", json_integer(m->partition));
        json_object_set_new(line, "offset", json_integer(m->offset));
        char *k = m->key ? hex(m->key, m->key_len) : NULL;
        json_object_set_new(line, "key", k ? json_string(k) : json_null());
        free(k);
        json_object_set_new(line, "value",
                            json_stringn_nocheck(m->payload ? m->payload : "", m->len));
        json_t *hs = json_array();
        rd_kafka_headers_t *h = NULL;
        if (!rd_kafka_message_headers(m, &h)) {
            const char *name;
            const void *v;
            size_t size;
            for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &v, &size); i++) {
                char *x = hex(v ? v : "", v ? size : 0);
                json_array_append_new(hs, json_pack("[ss]", name, x));
                free(x);
            }
        }
        json_object_set_new(line, "headers", hs);
        char *text = json_dumps(line, JSON_COMPACT);
        printf("%s\n", text);
        fflush(stdout);
        free(text);
        json_decref(line);
        rd_kafka_message_destroy(m);
        got++;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return got < want;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && !strcmp(argv[1], "produce")) return produce(argc, argv);
    if (argc == 6 && !strcmp(argv[1], "consume")) return consume(argv);
    fprintf(stderr, "usage: kafka-bytes produce BROKERS TOPIC KEY-HEX|- VALUE-FILE [NAME=HEX]...\n"
                    "       kafka-bytes consume BROKERS TOPIC COUNT TIMEOUT-S\n");
    return 2;
}
