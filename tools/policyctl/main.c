/* policyctl: the platform teams' client: submit a request and follow it, plan (dry run),
 * status and watch from the reply topic, and validate files with the worker's decoder. */
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "pw/validate_cli.h"
#include "pw/version.h"
#include "render.h"

#define CTL_REQUEST_MAX (1024 * 1024) /* the worker's default worker.message.max.bytes */
#define CTL_FILTERS_MAX 16

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: policyctl submit [KAFKA] [--follow|--no-follow] [--json] [--timeout S] FILE|-\n"
            "       policyctl plan   [KAFKA] [--json] [--timeout S] FILE|-\n"
            "       policyctl status [KAFKA] [--json] [--timeout S] ID\n"
            "       policyctl watch  [KAFKA] [--json] [--from-beginning] [--filter F]...\n"
            "                        [--max-events N] [--timeout S]\n"
            "       policyctl validate [--config FILE] [--schemas DIR] [--json] FILE...|-\n"
            "       policyctl --help | --version\n"
            "KAFKA: -F FILE (the worker's configuration: kafka.* keys, worker.request.topic,\n"
            "       worker.reply.topic), -b BROKERS, -X key=value (librdkafka; later wins),\n"
            "       --topic NAME (requests), -t/--reply-topic NAME (default: the request's\n"
            "       replyTo, else the worker's reply topic).\n"
            "submit  produces FILE keyed by its id and, on a terminal by default, follows it on\n"
            "        the reply topic until its terminal event: one line per operation (kind,\n"
            "        target, route, status, attempts, LRO progress, waits, before -> after),\n"
            "        redrawn in place on a terminal, printed as plain lines otherwise.\n"
            "        --json: the raw reply events, one JSON line each.  --timeout: default 600.\n"
            "        exit: 0 succeeded, 1 failed, 2 rejected or usage, 3 timed out\n"
            "        (--no-follow: 0 once the request is delivered to Kafka).\n"
            "plan    submits FILE with \"dryRun\": true and prints, per operation, the exact\n"
            "        Kusto command or ARM call and before -> desired (or unchanged); same exits.\n"
            "status  the last known state of request ID: reads the reply topic from the\n"
            "        beginning to its current end (--timeout: default 30).\n"
            "        exit: 0 succeeded, 1 failed, 2 rejected, 3 no event found, 4 in progress.\n"
            "watch   prints every reply event as it comes, one readable line each (from now on;\n"
            "        --from-beginning: all of them).  --filter KEY=GLOB, KEY one of id, status,\n"
            "        worker, kind (all filters must match).  Stops after --max-events N or\n"
            "        --timeout S (default: never), or on SIGINT/SIGTERM.  exit 0.\n"
            "validate runs each FILE through the worker's own decoder (policy-worker validate):\n"
            "        exit 0 all accepted, 1 some rejected, 2 usage or I/O error.\n");
}

typedef struct ctl_args {
    ctl_kafka_opts kafka;
    int follow;  /* -1: by isatty(stdout) */
    int json;
    int from_beginning;
    double timeout; /* seconds; < 0: the command's default */
    long max_events;
    const char *filters[CTL_FILTERS_MAX];
    size_t nfilters;
    const char *arg; /* FILE or ID */
} ctl_args;

/* Options anywhere; one positional argument (required unless watch).  0 or 2 (usage). */
static int parse(int argc, char **argv, int want_arg, ctl_args *a)
{
    memset(a, 0, sizeof *a);
    a->follow = -1;
    a->timeout = -1;
    int done = 0;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if (done || !strcmp(s, "-") || s[0] != '-') {
            if (a->arg || !want_arg) {
                fprintf(stderr, "policyctl: unexpected argument %s\n", s);
                return 2;
            }
            a->arg = s;
        } else if (!strcmp(s, "--")) {
            done = 1;
        } else if (!strcmp(s, "-F") && more) {
            a->kafka.config_file = argv[++i];
        } else if (!strcmp(s, "-b") && more) {
            a->kafka.brokers = argv[++i];
        } else if (!strcmp(s, "-X") && more) {
            if (a->kafka.nx == CTL_X_MAX) {
                fprintf(stderr, "policyctl: more than %d -X\n", CTL_X_MAX);
                return 2;
            }
            a->kafka.x[a->kafka.nx++] = argv[++i];
        } else if (!strcmp(s, "--topic") && more) {
            a->kafka.request_topic = argv[++i];
        } else if ((!strcmp(s, "-t") || !strcmp(s, "--reply-topic")) && more) {
            a->kafka.reply_topic = argv[++i];
        } else if (!strcmp(s, "--follow")) {
            a->follow = 1;
        } else if (!strcmp(s, "--no-follow")) {
            a->follow = 0;
        } else if (!strcmp(s, "--json")) {
            a->json = 1;
        } else if (!strcmp(s, "--from-beginning")) {
            a->from_beginning = 1;
        } else if (!strcmp(s, "-v") || !strcmp(s, "--verbose")) {
            a->kafka.verbose = 1;
        } else if (!strcmp(s, "--timeout") && more) {
            char *end;
            a->timeout = strtod(argv[++i], &end);
            if (*end || a->timeout <= 0) {
                fprintf(stderr, "policyctl: --timeout %s: not a positive number of seconds\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(s, "--max-events") && more) {
            char *end;
            a->max_events = strtol(argv[++i], &end, 10);
            if (*end || a->max_events <= 0) {
                fprintf(stderr, "policyctl: --max-events %s: not a positive number\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(s, "--filter") && more) {
            const char *f = argv[++i];
            if (a->nfilters == CTL_FILTERS_MAX || !strchr(f, '=')) {
                fprintf(stderr, "policyctl: --filter %s: expected KEY=GLOB (at most %d)\n", f,
                        CTL_FILTERS_MAX);
                return 2;
            }
            a->filters[a->nfilters++] = f;
        } else {
            fprintf(stderr, "policyctl: unknown option %s\n", s);
            usage(stderr);
            return 2;
        }
    }
    if (want_arg && !a->arg) {
        usage(stderr);
        return 2;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads FILE (or stdin for "-"), at most CTL_REQUEST_MAX bytes, as a JSON object. */
static json_t *read_request(const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "policyctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(CTL_REQUEST_MAX + 1);
    size_t n = buf ? fread(buf, 1, CTL_REQUEST_MAX + 1, f) : 0;
    if (f != stdin) fclose(f);
    if (!buf) return NULL;
    if (n > CTL_REQUEST_MAX) {
        fprintf(stderr, "policyctl: %s: larger than %d bytes (MessageTooLarge)\n", path, CTL_REQUEST_MAX);
        free(buf);
        return NULL;
    }
    json_error_t je;
    json_t *req = json_loadb(buf, n, 0, &je);
    free(buf);
    if (!req) {
        fprintf(stderr, "policyctl: %s:%d:%d: %s\n", path, je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(req) || !json_is_string(json_object_get(req, "id"))) {
        fprintf(stderr, "policyctl: %s: not a request object with a string \"id\"\n", path);
        json_decref(req);
        return NULL;
    }
    return req;
}

static void print_json_line(const json_t *ev)
{
    char *s = json_dumps(ev, JSON_COMPACT);
    printf("%s\n", s ? s : "{}");
    free(s);
    fflush(stdout);
}

/* submit and plan: produce, then follow (unless follow == 0) until the terminal event. */
static int cmd_submit(int argc, char **argv, int plan)
{
    ctl_args a;
    if (parse(argc, argv, 1, &a)) return 2;
    int tty = isatty(STDOUT_FILENO);
    int follow = plan ? 1 : a.follow >= 0 ? a.follow : tty;
    double timeout = a.timeout > 0 ? a.timeout : 600;
    json_t *req = read_request(a.arg);
    if (!req) return 2;
    if (plan) json_object_set_new(req, "dryRun", json_true());
    /* the worker answers on the request's replyTo when its allow-list has it: follow there */
    const char *reply_to = json_string_value(json_object_get(req, "replyTo"));
    char reply_topic[256] = "";
    if (!a.kafka.reply_topic && reply_to && *reply_to) {
        snprintf(reply_topic, sizeof reply_topic, "%s", reply_to);
        a.kafka.reply_topic = reply_topic;
    }
    char *body = json_dumps(req, JSON_COMPACT);
    char id[256];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(req, "id")));
    json_decref(req);
    if (!body) return 2;
    char err[1024];
    /* The consumer is positioned at the reply topic's end before the request is produced, so
     * every reply to it comes after. */
    ctl_client *c = ctl_client_new(&a.kafka, CTL_FROM_END, err, sizeof err);
    if (!c) {
        fprintf(stderr, "policyctl: %s\n", err);
        free(body);
        return 2;
    }
    double deadline = now_s() + timeout;
    int rc = ctl_client_produce(c, id, body, strlen(body), (int)(timeout * 1000), err, sizeof err);
    free(body);
    if (rc) {
        fprintf(stderr, "policyctl: %s\n", err);
        ctl_client_free(c);
        return 3;
    }
    if (!follow) {
        if (a.json) {
            json_t *j = json_pack("{s:s, s:s}", "submitted", id, "topic", ctl_client_request_topic(c));
            if (j) print_json_line(j);
            json_decref(j);
        } else
            printf("submitted %s to %s (replies on %s)\n", id, ctl_client_request_topic(c),
                   ctl_client_reply_topic(c));
        ctl_client_free(c);
        return 0;
    }
    if (!a.json && !plan) fprintf(stdout, "submitted %s; following on %s\n", id, ctl_client_reply_topic(c));
    ctl_view *v = ctl_view_new(stdout, tty, plan || a.json);
    rc = 3;
    while (!stop && now_s() < deadline) {
        json_t *ev = NULL;
        char key[256];
        int n = ctl_client_next(c, 200, &ev, key, sizeof key, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "policyctl: %s\n", err);
            break;
        }
        if (n != 1) continue;
        if (strcmp(key, id)) {
            json_decref(ev);
            continue;
        }
        if (a.json) print_json_line(ev);
        int terminal = ctl_view_event(v, ev);
        json_decref(ev);
        if (terminal) {
            const json_t *t = ctl_view_terminal(v);
            rc = ctl_status_exit(json_string_value(json_object_get(t, "status")));
            if (plan && !a.json) ctl_render_plan(stdout, v);
            break;
        }
    }
    if (rc == 3) fprintf(stderr, "policyctl: %s: no terminal reply within %.0f s\n", id, timeout);
    ctl_view_free(v);
    ctl_client_free(c);
    return rc;
}

static int cmd_status(int argc, char **argv)
{
    ctl_args a;
    if (parse(argc, argv, 1, &a)) return 2;
    double deadline = now_s() + (a.timeout > 0 ? a.timeout : 30);
    char err[1024];
    ctl_client *c = ctl_client_new(&a.kafka, CTL_FROM_BEGINNING, err, sizeof err);
    if (!c) {
        fprintf(stderr, "policyctl: %s\n", err);
        return 2;
    }
    ctl_view *v = ctl_view_new(stdout, 0, 1);
    json_t *last = NULL;
    int complete = 0;
    while (!stop && now_s() < deadline) {
        json_t *ev = NULL;
        char key[256];
        int n = ctl_client_next(c, 200, &ev, key, sizeof key, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "policyctl: %s\n", err);
            break;
        }
        if (n == 2) {
            complete = 1;
            break;
        }
        if (n != 1) continue;
        if (strcmp(key, a.arg)) {
            json_decref(ev);
            continue;
        }
        /* the last event wins: a redelivered request's new processing comes after the old */
        ctl_view_event(v, ev);
        json_decref(last);
        last = ev;
    }
    int rc;
    if (!last) {
        fprintf(stderr, "policyctl: no reply event for %s on %s%s\n", a.arg, ctl_client_reply_topic(c),
                complete ? "" : " (reading was cut short by --timeout)");
        rc = 3;
    } else if (a.json) {
        print_json_line(last);
        rc = ctl_status_exit(json_string_value(json_object_get(last, "status")));
        if (rc == 3) rc = 4;
    } else {
        char line[2048];
        ctl_render_event_line(last, line, sizeof line);
        printf("%s\n", strchr(line, ' ') ? strchr(line, ' ') + 1 : line);
        const json_t *ops = json_object_get(last, "operations");
        size_t i;
        json_t *op;
        json_array_foreach(ops, i, op)
        {
            ctl_render_op(op, line, sizeof line);
            printf("%s\n", line);
        }
        rc = ctl_status_exit(json_string_value(json_object_get(last, "status")));
        if (rc == 3) rc = 4;
    }
    json_decref(last);
    ctl_view_free(v);
    ctl_client_free(c);
    return rc;
}

/* KEY=GLOB on one event: id, status, worker, or kind (any operation's). */
static int filter_match(const char *f, const json_t *ev)
{
    const char *eq = strchr(f, '=');
    size_t kl = (size_t)(eq - f);
    const char *glob = eq + 1, *field = NULL;
    if (kl == 2 && !strncmp(f, "id", 2)) field = "requestId";
    else if (kl == 6 && !strncmp(f, "status", 6)) field = "status";
    else if (kl == 6 && !strncmp(f, "worker", 6)) field = "workerId";
    if (field) {
        const char *v = json_string_value(json_object_get(ev, field));
        return v && !fnmatch(glob, v, 0);
    }
    if (kl == 4 && !strncmp(f, "kind", 4)) {
        size_t i;
        json_t *op;
        json_array_foreach(json_object_get(ev, "operations"), i, op)
        {
            const char *k = json_string_value(json_object_get(op, "kind"));
            if (k && !fnmatch(glob, k, 0)) return 1;
        }
    }
    return 0;
}

static int cmd_watch(int argc, char **argv)
{
    ctl_args a;
    if (parse(argc, argv, 0, &a)) return 2;
    for (size_t i = 0; i < a.nfilters; i++) {
        const char *f = a.filters[i];
        if (strncmp(f, "id=", 3) && strncmp(f, "status=", 7) && strncmp(f, "worker=", 7) &&
            strncmp(f, "kind=", 5)) {
            fprintf(stderr, "policyctl: --filter %s: KEY is one of id, status, worker, kind\n", f);
            return 2;
        }
    }
    char err[1024];
    ctl_client *c = ctl_client_new(&a.kafka, a.from_beginning ? CTL_FROM_BEGINNING : CTL_FROM_END,
                                   err, sizeof err);
    if (!c) {
        fprintf(stderr, "policyctl: %s\n", err);
        return 2;
    }
    fprintf(stderr, "policyctl: watching %s from %s\n", ctl_client_reply_topic(c),
            a.from_beginning ? "the beginning" : "now on");
    double deadline = a.timeout > 0 ? now_s() + a.timeout : 0;
    long seen = 0;
    int rc = 0;
    while (!stop && (!deadline || now_s() < deadline) && (!a.max_events || seen < a.max_events)) {
        json_t *ev = NULL;
        char key[256];
        int n = ctl_client_next(c, 200, &ev, key, sizeof key, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "policyctl: %s\n", err);
            rc = 1;
            break;
        }
        if (n != 1) continue;
        int ok = 1;
        for (size_t i = 0; i < a.nfilters && ok; i++) ok = filter_match(a.filters[i], ev);
        if (ok) {
            if (a.json) {
                print_json_line(ev);
            } else {
                char line[2048];
                ctl_render_event_line(ev, line, sizeof line);
                printf("%s\n", line);
                fflush(stdout);
            }
            seen++;
        }
        json_decref(ev);
    }
    ctl_client_free(c);
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && !strcmp(argv[1], "validate"))
        return pw_validate_cli_run("policyctl validate", argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "submit")) return cmd_submit(argc - 2, argv + 2, 0);
    if (argc >= 2 && !strcmp(argv[1], "plan")) return cmd_submit(argc - 2, argv + 2, 1);
    if (argc >= 2 && !strcmp(argv[1], "status")) return cmd_status(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "watch")) return cmd_watch(argc - 2, argv + 2);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        pw_version_print(stdout, "policyctl");
        return 0;
    }
    usage(stderr);
    return 2;
}
