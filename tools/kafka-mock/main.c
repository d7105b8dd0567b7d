/* kafka-mock: librdkafka's mock Kafka cluster on loopback, with a line-based fault-control port. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "pw/version.h"

/* Hard limits: every input from the command line or the control port is checked against them. */
enum {
    KM_MAX_BROKERS = 32,
    KM_MAX_TOPICS = 64,
    KM_MAX_PARTITIONS = 1000,
    KM_MAX_TOPIC_NAME = 249, /* Kafka's own limit */
    KM_MAX_CLIENTS = 16,
    KM_MAX_LINE = 512, /* one control command, newline included */
    KM_MAX_TOKENS = 8,
    KM_MAX_ERROR_COUNT = 10000,
    KM_MAX_RTT_MS = 600000,
    KM_REPLY_MAX = 1024,
    /* What librdkafka 2.0's mock gives an auto-created topic; --topic NAME alone matches it. */
    KM_AUTO_PARTITIONS = 4,
};

typedef enum { KM_OK = 0, KM_ERR_USAGE, KM_ERR_SYSTEM } km_status;

struct km_topic_arg {
    const char *name; /* in argv: "NAME[:PARTITIONS]", the name is its first name_len bytes */
    size_t name_len;
    int partitions;
};

struct km_opts {
    int brokers;
    int replication; /* 0: min(3, brokers) */
    int control_port;
    int rtt_ms;
    int ntopics;
    struct km_topic_arg topics[KM_MAX_TOPICS];
};

struct km_client {
    int fd;         /* -1 when the slot is free */
    size_t len;     /* bytes buffered in line[] */
    int discarding; /* 1 while skipping the rest of an over-long line */
    char line[KM_MAX_LINE];
};

struct km_server {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    int brokers;
    int replication;
    int listen_fd;
    struct km_client clients[KM_MAX_CLIENTS];
};

/* Kafka protocol request types by name, for `request-errors`. Numbers are also accepted. */
static const struct {
    const char *name;
    int16_t key;
} km_apis[] = {
    {"Produce", 0},
    {"Fetch", 1},
    {"ListOffsets", 2},
    {"Metadata", 3},
    {"OffsetCommit", 8},
    {"OffsetFetch", 9},
    {"FindCoordinator", 10},
    {"JoinGroup", 11},
    {"Heartbeat", 12},
    {"LeaveGroup", 13},
    {"SyncGroup", 14},
    {"DescribeGroups", 15},
    {"ListGroups", 16},
    {"SaslHandshake", 17},
    {"ApiVersions", 18},
    {"CreateTopics", 19},
    {"DeleteTopics", 20},
    {"DeleteRecords", 21},
    {"InitProducerId", 22},
    {"OffsetForLeaderEpoch", 23},
    {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25},
    {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
    {"DescribeConfigs", 32},
    {"SaslAuthenticate", 36},
    {"OffsetDelete", 47},
};

static void km_usage(FILE *f)
{
    fprintf(f,
            "usage: kafka-mock [--brokers N] [--topic NAME[:PARTITIONS]]... [--replication N]\n"
            "                  [--control-port PORT] [--rtt MS]\n"
            "Prints the bootstrap list on stdout's first line, the control address on the second,\n"
            "then runs until SIGINT/SIGTERM. See tools/kafka-mock/README.md.\n"
            "  --help: this text; --version: the version and the libraries'\n");
}

/* Parses a whole decimal integer in [lo, hi]; 0 on success. */
static int km_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (!s || !*s) return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Kafka topic names: 1..249 of [A-Za-z0-9._-], not "." or "..". */
static int km_topic_name_ok(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > KM_MAX_TOPIC_NAME) return 0;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) return 0;
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static km_status km_parse_args(int argc, char **argv, struct km_opts *o)
{
    int i;
    long v;

    memset(o, 0, sizeof(*o));
    o->brokers = 3;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            km_usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--version")) {
            pw_version_print(stdout, "kafka-mock");
            exit(0);
        }
        if (!val) {
            fprintf(stderr, "kafka-mock: %s needs a value\n", a);
            return KM_ERR_USAGE;
        }
        i++;
        if (!strcmp(a, "--brokers")) {
            if (km_parse_int(val, 1, KM_MAX_BROKERS, &v)) {
                fprintf(stderr, "kafka-mock: --brokers: 1..%d\n", KM_MAX_BROKERS);
                return KM_ERR_USAGE;
            }
            o->brokers = (int)v;
        } else if (!strcmp(a, "--replication")) {
            if (km_parse_int(val, 1, KM_MAX_BROKERS, &v)) {
                fprintf(stderr, "kafka-mock: --replication: 1..%d\n", KM_MAX_BROKERS);
                return KM_ERR_USAGE;
            }
            o->replication = (int)v;
        } else if (!strcmp(a, "--control-port")) {
            if (km_parse_int(val, 0, 65535, &v)) {
                fprintf(stderr, "kafka-mock: --control-port: 0..65535\n");
                return KM_ERR_USAGE;
            }
            o->control_port = (int)v;
        } else if (!strcmp(a, "--rtt")) {
            if (km_parse_int(val, 0, KM_MAX_RTT_MS, &v)) {
                fprintf(stderr, "kafka-mock: --rtt: 0..%d ms\n", KM_MAX_RTT_MS);
                return KM_ERR_USAGE;
            }
            o->rtt_ms = (int)v;
        } else if (!strcmp(a, "--topic")) {
            const char *colon = strchr(val, ':');
            size_t nlen = colon ? (size_t)(colon - val) : strlen(val);
            if (o->ntopics >= KM_MAX_TOPICS) {
                fprintf(stderr, "kafka-mock: at most %d --topic\n", KM_MAX_TOPICS);
                return KM_ERR_USAGE;
            }
            if (!km_topic_name_ok(val, nlen)) {
                fprintf(stderr, "kafka-mock: --topic %s: bad topic name\n", val);
                return KM_ERR_USAGE;
            }
            v = 0;
            if (colon && km_parse_int(colon + 1, 1, KM_MAX_PARTITIONS, &v)) {
                fprintf(stderr, "kafka-mock: --topic %s: partitions 1..%d\n", val,
                        KM_MAX_PARTITIONS);
                return KM_ERR_USAGE;
            }
            o->topics[o->ntopics].name = val;
            o->topics[o->ntopics].name_len = nlen;
            o->topics[o->ntopics].partitions = (int)v;
            o->ntopics++;
        } else {
            fprintf(stderr, "kafka-mock: unknown option %s\n", a);
            km_usage(stderr);
            return KM_ERR_USAGE;
        }
    }
    if (o->replication > o->brokers) {
        fprintf(stderr, "kafka-mock: --replication %d exceeds --brokers %d\n", o->replication,
                o->brokers);
        return KM_ERR_USAGE;
    }
    return KM_OK;
}

/* ---- control channel ---------------------------------------------------------------------- */

/* Resolves an error name (NOT_LEADER_FOR_PARTITION, ERR_..., RD_KAFKA_RESP_ERR_..., any case)
 * or number. */
static int km_lookup_error(const char *s, rd_kafka_resp_err_t *out)
{
    const struct rd_kafka_err_desc *descs;
    size_t n, i;
    long v;

    if (!km_parse_int(s, -200, 200, &v)) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    if (!strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18))
        s += 18;
    else if (!strncasecmp(s, "ERR_", 4))
        s += 4;
    /* Kafka renamed error 6 in 2.x; librdkafka 2.0 still uses the old name. */
    if (!strcasecmp(s, "NOT_LEADER_OR_FOLLOWER")) {
        *out = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
        return 0;
    }
    rd_kafka_get_err_descs(&descs, &n);
    for (i = 0; i < n; i++) {
        if (descs[i].name && !strcasecmp(descs[i].name, s)) {
            *out = descs[i].code;
            return 0;
        }
    }
    return -1;
}

static int km_lookup_api(const char *s, int16_t *out)
{
    size_t i;
    long v;

    if (!km_parse_int(s, 0, 100, &v)) {
        *out = (int16_t)v;
        return 0;
    }
    for (i = 0; i < sizeof(km_apis) / sizeof(km_apis[0]); i++) {
        if (!strcasecmp(km_apis[i].name, s)) {
            *out = km_apis[i].key;
            return 0;
        }
    }
    return -1;
}

/* Broker id 1..N, or "all" / -1 for every broker. */
static int km_parse_broker(const struct km_server *srv, const char *s, int allow_all, int32_t *out)
{
    long v;

    if (allow_all && (!strcasecmp(s, "all") || !strcmp(s, "-1"))) {
        *out = -1;
        return 0;
    }
    if (km_parse_int(s, 1, srv->brokers, &v)) return -1;
    *out = (int32_t)v;
    return 0;
}

static void km_reply(char *reply, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void km_reply(char *reply, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reply, len, fmt, ap);
    va_end(ap);
}

static int km_mock_result(rd_kafka_resp_err_t err, char *reply, size_t len)
{
    if (err) {
        km_reply(reply, len, "error %s", rd_kafka_err2name(err));
        return -1;
    }
    km_reply(reply, len, "ok");
    return 0;
}

/* One control command: argv[0] is the command word, argc counts it. Writes a one-line reply
 * (no newline). Returns 1 if the connection should be closed after the reply. */
typedef int (*km_cmd_fn)(struct km_server *srv, int argc, char **argv, char *reply, size_t rlen);

static int km_cmd_ping(struct km_server *srv, int argc, char **argv, char *reply, size_t rlen)
{
    km_reply(reply, rlen, "ok");
    return 0;
}

static int km_cmd_quit(struct km_server *srv, int argc, char **argv, char *reply, size_t rlen)
{
    km_reply(reply, rlen, "ok");
    return 1;
}

static int km_cmd_help(struct km_server *srv, int argc, char **argv, char *reply, size_t rlen);

static int km_cmd_bootstraps(struct km_server *srv, int argc, char **argv, char *reply, size_t rlen)
{
    km_reply(reply, rlen, "ok %s", rd_kafka_mock_cluster_bootstraps(srv->mc));
    return 0;
}

static int km_cmd_broker_updown(struct km_server *srv, int argc, char **argv, char *reply,
                                size_t rlen)
{
    int32_t b;

    if (km_parse_broker(srv, argv[1], 1, &b)) {
        km_reply(reply, rlen, "error broker id must be 1..%d or all", srv->brokers);
        return 0;
    }
    km_mock_result(!strcmp(argv[0], "broker-down") ? rd_kafka_mock_broker_set_down(srv->mc, b)
                                                   : rd_kafka_mock_broker_set_up(srv->mc, b),
                   reply, rlen);
    return 0;
}

static int km_cmd_rtt(struct km_server *srv, int argc, char **argv, char *reply, size_t rlen)
{
    int32_t b;
    long ms;

    if (km_parse_broker(srv, argv[1], 1, &b)) {
        km_reply(reply, rlen, "error broker id must be 1..%d or all", srv->brokers);
        return 0;
    }
    if (km_parse_int(argv[2], 0, KM_MAX_RTT_MS, &ms)) {
        km_reply(reply, rlen, "error rtt must be 0..%d ms", KM_MAX_RTT_MS);
        return 0;
    }
    km_mock_result(rd_kafka_mock_broker_set_rtt(srv->mc, b, (int)ms), reply, rlen);
    return 0;
}

/* Parses "API ERROR COUNT" starting at argv[i]; on failure writes the reply and returns -1. */
static int km_parse_api_error_count(char **argv, int i, int16_t *api, rd_kafka_resp_err_t *err,
                                    long *count, char *reply, size_t rlen)
{
    if (km_lookup_api(argv[i], api)) {
        km_reply(reply, rlen, "error unknown API (a name like Produce or a number 0..100)");
        return -1;
    }
    if (km_lookup_error(argv[i + 1], err)) {
        km_reply(reply, rlen, "error unknown error code (e.g. NOT_LEADER_FOR_PARTITION)");
        return -1;
    }
    if (km_parse_int(argv[i + 2], 1, KM_MAX_ERROR_COUNT, count)) {
        km_reply(reply, rlen, "error count must be 1..%d", KM_MAX_ERROR_COUNT);
        return -1;
    }
    return 0;
}

static int km_cmd_request_errors(struct km_server *srv, int argc, char **argv, char *reply,
                                 size_t rlen)
{
    rd_kafka_resp_err_t err, *errs;
    int16_t api;
    long count, i;

    if (km_parse_api_error_count(argv, 1, &api, &err, &count, reply, rlen)) return 0;
    errs = malloc(sizeof(*errs) * (size_t)count);
    if (!errs) {
        km_reply(reply, rlen, "error out of memory");
        return 0;
    }
    for (i = 0; i < count; i++)
        errs[i] = err;
    rd_kafka_mock_push_request_errors_array(srv->mc, api, (size_t)count, errs);
    free(errs);
    km_reply(reply, rlen, "ok");
    return 0;
}

static int km_cmd_broker_request_errors(struct km_server *srv, int argc, char **argv, char *reply,
                                        size_t rlen)
{
    rd_kafka_resp_err_t err, r;
    int16_t api;
    long count, rtt = 0, i;
    int32_t b;

    if (km_parse_broker(srv, argv[1], 0, &b)) {
        km_reply(reply, rlen, "error broker id must be 1..%d", srv->brokers);
        return 0;
    }
    if (km_parse_api_error_count(argv, 2, &api, &err, &count, reply, rlen)) return 0;
    if (argc == 6 && km_parse_int(argv[5], 0, KM_MAX_RTT_MS, &rtt)) {
        km_reply(reply, rlen, "error rtt must be 0..%d ms", KM_MAX_RTT_MS);
        return 0;
    }
    /* The broker variant takes (error, rtt) pairs as varargs: push them one at a time. */
    for (i = 0; i < count; i++) {
        r = rd_kafka_mock_broker_push_request_error_rtts(srv->mc, b, api, 1, err, (int)rtt);
        if (r) {
            km_mock_result(r, reply, rlen);
            return 0;
        }
    }
    km_reply(reply, rlen, "ok");
    return 0;
}

static int km_cmd_clear_request_errors(struct km_server *srv, int argc, char **argv, char *reply,
                                       size_t rlen)
{
    int16_t api;

    if (km_lookup_api(argv[1], &api)) {
        km_reply(reply, rlen, "error unknown API");
        return 0;
    }
    rd_kafka_mock_clear_request_errors(srv->mc, api);
    km_reply(reply, rlen, "ok");
    return 0;
}

static int km_check_topic(const char *name, char *reply, size_t rlen)
{
    if (km_topic_name_ok(name, strlen(name))) return 0;
    km_reply(reply, rlen, "error bad topic name (1..%d of A-Z a-z 0-9 . _ -)", KM_MAX_TOPIC_NAME);
    return -1;
}

static int km_cmd_leader(struct km_server *srv, int argc, char **argv, char *reply, size_t rlen)
{
    long part;
    int32_t b;

    if (km_check_topic(argv[1], reply, rlen)) return 0;
    if (km_parse_int(argv[2], 0, KM_MAX_PARTITIONS - 1, &part)) {
        km_reply(reply, rlen, "error partition must be 0..%d", KM_MAX_PARTITIONS - 1);
        return 0;
    }
    if (km_parse_broker(srv, argv[3], 1, &b)) {
        km_reply(reply, rlen, "error broker id must be 1..%d or -1", srv->brokers);
        return 0;
    }
    km_mock_result(rd_kafka_mock_partition_set_leader(srv->mc, argv[1], (int32_t)part, b), reply,
                   rlen);
    return 0;
}

static int km_cmd_topic_create(struct km_server *srv, int argc, char **argv, char *reply,
                               size_t rlen)
{
    long parts, repl = srv->replication;

    if (km_check_topic(argv[1], reply, rlen)) return 0;
    if (km_parse_int(argv[2], 1, KM_MAX_PARTITIONS, &parts)) {
        km_reply(reply, rlen, "error partitions must be 1..%d", KM_MAX_PARTITIONS);
        return 0;
    }
    if (argc == 4 && km_parse_int(argv[3], 1, srv->brokers, &repl)) {
        km_reply(reply, rlen, "error replication must be 1..%d", srv->brokers);
        return 0;
    }
    km_mock_result(rd_kafka_mock_topic_create(srv->mc, argv[1], (int)parts, (int)repl), reply,
                   rlen);
    return 0;
}

static int km_cmd_topic_error(struct km_server *srv, int argc, char **argv, char *reply,
                              size_t rlen)
{
    rd_kafka_resp_err_t err;

    if (km_check_topic(argv[1], reply, rlen)) return 0;
    if (km_lookup_error(argv[2], &err)) {
        km_reply(reply, rlen, "error unknown error code");
        return 0;
    }
    rd_kafka_mock_topic_set_error(srv->mc, argv[1], err);
    km_reply(reply, rlen, "ok");
    return 0;
}

static int km_cmd_coordinator(struct km_server *srv, int argc, char **argv, char *reply,
                              size_t rlen)
{
    int32_t b;

    if (strcmp(argv[1], "group") && strcmp(argv[1], "transaction")) {
        km_reply(reply, rlen, "error key type must be group or transaction");
        return 0;
    }
    if (km_parse_broker(srv, argv[3], 0, &b)) {
        km_reply(reply, rlen, "error broker id must be 1..%d", srv->brokers);
        return 0;
    }
    km_mock_result(rd_kafka_mock_coordinator_set(srv->mc, argv[1], argv[2], b), reply, rlen);
    return 0;
}

/* The command table: name, argument count range (command word excluded), usage, handler. */
static const struct km_command {
    const char *name;
    int min_args, max_args;
    const char *usage;
    km_cmd_fn fn;
} km_commands[] = {
    {"ping", 0, 0, "ping", km_cmd_ping},
    {"help", 0, 0, "help", km_cmd_help},
    {"quit", 0, 0, "quit", km_cmd_quit},
    {"bootstraps", 0, 0, "bootstraps", km_cmd_bootstraps},
    {"broker-down", 1, 1, "broker-down ID|all", km_cmd_broker_updown},
    {"broker-up", 1, 1, "broker-up ID|all", km_cmd_broker_updown},
    {"rtt", 2, 2, "rtt ID|all MS", km_cmd_rtt},
    {"request-errors", 3, 3, "request-errors API ERROR COUNT", km_cmd_request_errors},
    {"broker-request-errors", 4, 5, "broker-request-errors ID API ERROR COUNT [RTT_MS]",
     km_cmd_broker_request_errors},
    {"clear-request-errors", 1, 1, "clear-request-errors API", km_cmd_clear_request_errors},
    {"leader", 3, 3, "leader TOPIC PARTITION ID|-1", km_cmd_leader},
    {"topic-create", 2, 3, "topic-create NAME PARTITIONS [REPLICATION]", km_cmd_topic_create},
    {"topic-error", 2, 2, "topic-error TOPIC ERROR", km_cmd_topic_error},
    {"coordinator", 3, 3, "coordinator group|transaction KEY ID", km_cmd_coordinator},
};

#define KM_NCOMMANDS (sizeof(km_commands) / sizeof(km_commands[0]))

static int km_cmd_help(struct km_server *srv, int argc, char **argv, char *reply, size_t rlen)
{
    size_t i, off;

    km_reply(reply, rlen, "ok commands:");
    for (i = 0; i < KM_NCOMMANDS; i++) {
        off = strlen(reply);
        km_reply(reply + off, rlen - off, "%s %s", i ? " |" : "", km_commands[i].usage);
    }
    return 0;
}

/* Splits a command line into words and runs it. Returns 1 if the connection should close. */
static int km_execute(struct km_server *srv, char *line, char *reply, size_t rlen)
{
    char *argv[KM_MAX_TOKENS + 1];
    char *save = NULL, *t;
    int argc = 0;
    size_t i;

    for (t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (argc == KM_MAX_TOKENS) {
            km_reply(reply, rlen, "error too many words (at most %d)", KM_MAX_TOKENS);
            return 0;
        }
        argv[argc++] = t;
    }
    argv[argc] = NULL;
    if (argc == 0) {
        km_reply(reply, rlen, "error empty command");
        return 0;
    }
    for (i = 0; i < KM_NCOMMANDS; i++) {
        const struct km_command *c = &km_commands[i];
        if (strcmp(c->name, argv[0])) continue;
        if (argc - 1 < c->min_args || argc - 1 > c->max_args) {
            km_reply(reply, rlen, "error usage: %s", c->usage);
            return 0;
        }
        return c->fn(srv, argc, argv, reply, rlen);
    }
    km_reply(reply, rlen, "error unknown command (try help)");
    return 0;
}

static void km_client_close(struct km_client *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->len = 0;
    c->discarding = 0;
}

/* Sends a whole reply line. Replies are short, so a client that does not read them (its socket
 * buffer full) is dropped rather than allowed to stall the control loop. */
static int km_client_send(struct km_client *c, const char *s)
{
    char buf[KM_REPLY_MAX + 2];
    size_t len = strlen(s), off = 0;

    if (len > KM_REPLY_MAX) len = KM_REPLY_MAX;
    memcpy(buf, s, len);
    buf[len++] = '\n';
    while (off < len) {
        ssize_t w = send(c->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        off += (size_t)w;
    }
    return 0;
}

/* Runs one complete line (every line gets exactly one reply, blank ones included) and logs it
 * on stderr. Returns -1 when the connection must close. */
static int km_run_line(struct km_server *srv, struct km_client *c, char *reply, size_t rlen)
{
    char shown[KM_MAX_LINE];
    int quit;

    snprintf(shown, sizeof(shown), "%s", c->line); /* km_execute splits line in place */
    quit = km_execute(srv, c->line, reply, rlen);
    fprintf(stderr, "kafka-mock: control: %s -> %s\n", shown, reply);
    if (km_client_send(c, reply) || quit) return -1;
    return 0;
}

/* Reads what is available and runs every complete line. Returns -1 when the client is done. */
static int km_client_read(struct km_server *srv, struct km_client *c)
{
    char buf[1024];
    char reply[KM_REPLY_MAX];
    ssize_t r;
    ssize_t i;

    r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (r <= 0) return -1;
    for (i = 0; i < r; i++) {
        char ch = buf[i];
        if (ch == '\n') {
            if (c->discarding) {
                c->discarding = 0;
                c->len = 0;
                if (km_client_send(c, "error line too long")) return -1;
                continue;
            }
            if (c->len > 0 && c->line[c->len - 1] == '\r') c->len--;
            c->line[c->len] = '\0';
            c->len = 0;
            if (km_run_line(srv, c, reply, sizeof(reply))) return -1;
            continue;
        }
        if (c->discarding) continue;
        if (ch == '\0' || ((unsigned char)ch < 0x20 && ch != '\t' && ch != '\r') ||
            (unsigned char)ch >= 0x7f)
            ch = '?'; /* binary garbage: keep the line bounded and printable; it will not match */
        if (c->len + 1 >= sizeof(c->line)) {
            c->discarding = 1;
            continue;
        }
        c->line[c->len++] = ch;
    }
    return 0;
}

static int km_listen(int port, int *out_port)
{
    struct sockaddr_in sa;
    socklen_t slen = sizeof(sa);
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&sa, &slen)) {
        close(fd);
        return -1;
    }
    *out_port = ntohs(sa.sin_port);
    return fd;
}

static void km_accept(struct km_server *srv)
{
    int fd, i;

    for (;;) {
        fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;
        for (i = 0; i < KM_MAX_CLIENTS; i++) {
            if (srv->clients[i].fd < 0) break;
        }
        if (i == KM_MAX_CLIENTS) {
            static const char busy[] = "error too many control connections\n";
            if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                /* nothing to do: the connection is closed either way */
            }
            close(fd);
            continue;
        }
        srv->clients[i].fd = fd;
        srv->clients[i].len = 0;
        srv->clients[i].discarding = 0;
    }
}

/* Runs the control loop until SIGINT or SIGTERM arrives on sigfd. */
static void km_serve(struct km_server *srv, int sigfd)
{
    struct pollfd pfd[KM_MAX_CLIENTS + 2];
    int idx[KM_MAX_CLIENTS + 2];
    int n, i;

    for (;;) {
        n = 0;
        pfd[n].fd = sigfd;
        pfd[n].events = POLLIN;
        idx[n++] = -1;
        pfd[n].fd = srv->listen_fd;
        pfd[n].events = POLLIN;
        idx[n++] = -1;
        for (i = 0; i < KM_MAX_CLIENTS; i++) {
            if (srv->clients[i].fd < 0) continue;
            pfd[n].fd = srv->clients[i].fd;
            pfd[n].events = POLLIN;
            idx[n++] = i;
        }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "kafka-mock: poll: %s\n", strerror(errno));
            return;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                fprintf(stderr, "kafka-mock: signal %u, shutting down\n", si.ssi_signo);
                return;
            }
        }
        if (pfd[1].revents & POLLIN) km_accept(srv);
        for (i = 2; i < n; i++) {
            struct km_client *c = &srv->clients[idx[i]];
            if (!pfd[i].revents) continue;
            if ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) && km_client_read(srv, c) < 0)
                km_client_close(c);
        }
    }
}

int main(int argc, char **argv)
{
    struct km_opts o;
    struct km_server srv;
    rd_kafka_conf_t *conf;
    char errstr[512];
    sigset_t mask;
    int sigfd = -1, port = 0, i, rc = 1;

    if (km_parse_args(argc, argv, &o)) return 2;

    /* Block the shutdown signals before librdkafka starts its threads, so that they inherit
     * the mask and the signals reach only our signalfd. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL)) {
        fprintf(stderr, "kafka-mock: cannot block signals\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sigfd < 0) {
        fprintf(stderr, "kafka-mock: signalfd: %s\n", strerror(errno));
        return 1;
    }

    memset(&srv, 0, sizeof(srv));
    srv.listen_fd = -1;
    for (i = 0; i < KM_MAX_CLIENTS; i++)
        srv.clients[i].fd = -1;
    srv.brokers = o.brokers;
    srv.replication = o.replication ? o.replication : (o.brokers < 3 ? o.brokers : 3);

    /* The mock cluster needs a client handle for its bookkeeping only; this one never
     * connects anywhere (no bootstrap.servers). */
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "client.id", "kafka-mock", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka-mock: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    srv.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!srv.rk) {
        fprintf(stderr, "kafka-mock: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    conf = NULL; /* owned by srv.rk now */
    srv.mc = rd_kafka_mock_cluster_new(srv.rk, o.brokers);
    if (!srv.mc) {
        fprintf(stderr, "kafka-mock: cannot create the mock cluster\n");
        goto out;
    }
    if (o.rtt_ms) rd_kafka_mock_broker_set_rtt(srv.mc, -1, o.rtt_ms);
    for (i = 0; i < o.ntopics; i++) {
        char name[KM_MAX_TOPIC_NAME + 1];
        size_t nlen = o.topics[i].name_len;
        int parts = o.topics[i].partitions ? o.topics[i].partitions : KM_AUTO_PARTITIONS;
        rd_kafka_resp_err_t e;

        memcpy(name, o.topics[i].name, nlen);
        name[nlen] = '\0';
        e = rd_kafka_mock_topic_create(srv.mc, name, parts, srv.replication);
        if (e) {
            fprintf(stderr, "kafka-mock: topic %s: %s\n", name, rd_kafka_err2str(e));
            goto out;
        }
    }
    srv.listen_fd = km_listen(o.control_port, &port);
    if (srv.listen_fd < 0) {
        fprintf(stderr, "kafka-mock: control port %d: %s\n", o.control_port, strerror(errno));
        goto out;
    }

    printf("%s\n127.0.0.1:%d\n", rd_kafka_mock_cluster_bootstraps(srv.mc), port);
    fflush(stdout);
    fprintf(stderr, "kafka-mock: %d brokers at %s, control on 127.0.0.1:%d\n", o.brokers,
            rd_kafka_mock_cluster_bootstraps(srv.mc), port);

    km_serve(&srv, sigfd);
    rc = 0;

out:
    for (i = 0; i < KM_MAX_CLIENTS; i++)
        km_client_close(&srv.clients[i]);
    if (srv.listen_fd >= 0) close(srv.listen_fd);
    if (srv.mc) rd_kafka_mock_cluster_destroy(srv.mc);
    if (srv.rk) rd_kafka_destroy(srv.rk);
    if (sigfd >= 0) close(sigfd);
    return rc;
}
