/* service.c: the worker process on one loop: intake, decode, execute, reply, commit, drain. */
#include "pw/service.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "pw/admin.h"
#include "pw/azure.h"
#include "pw/deliveries.h"
#include "pw/exec.h"
#include "pw/intake.h"
#include "pw/log.h"
#include "pw/loop.h"
#include "pw/metrics.h"
#include "pw/offsets.h"
#include "pw/plan.h"
#include "pw/producer.h"
#include "pw/reply.h"
#include "pw/request.h"
#include "pw/trace.h"

#define SVC_CORRELATION_HEADER "kafka_correlationId"
#define SVC_CORRELATION_MAX 1024     /* a longer header is not echoed (logged instead) */
#define SVC_FLUSH_TIMEOUT_MS 10000   /* at most, and never past the drain deadline */
#define SVC_CLOSE_TIMEOUT_MS 3000    /* final commit and leaving the group, after the drain */
#define SVC_TICK_MS 200              /* the loop's heartbeat, to notice that the process stalled */
#define SVC_COMMIT_DELAY_MS 20 /* commit points are committed this soon (coalesced) */
#define SVC_PROBE_RETRY_MS 1000      /* an unanswered or failed ownership probe is sent again */
#define SVC_SKIP_MAX 10000           /* done offsets above the commit point kept per partition */
#define SVC_CREDENTIAL_RETRY_MIN_MS 1000  /* the start-up credential check, tried again after */
#define SVC_CREDENTIAL_RETRY_MAX_MS 60000 /* ... doubling up to this */

#define SVC_REPLY_TOPIC_HEADER "kafka_replyTopic"         /* Spring request/reply */
#define SVC_REPLY_PARTITION_HEADER "kafka_replyPartition" /* 4-byte big-endian int */
#define SVC_TOPIC_NAME_MAX 249                            /* Kafka's limit on a topic name */
#define SVC_SEEN_MAX 4096        /* offsets per partition whose deliveries are counted */
#define SVC_REQUESTED_BY_MAX 256 /* audit texts kept (request.v1.json's bounds) */
#define SVC_REASON_MAX 1024
/* CloudEvents (Kafka protocol binding, binary mode): the type's reverse-DNS prefix is the
 * project's own domain, the one its schemas' $id use (schemas/README.md, CloudEvents). */
#define SVC_CE_TYPE_PREFIX "example.adx-policy-worker.adx.policy."
#define SVC_CE_SOURCE_PREFIX "/adx-policy-worker/"
#define SVC_CE_DATASCHEMA "https://adx-policy-worker.example/schemas/reply.v1.json"
#define SVC_REPLY_HEADERS 12 /* correlation id, eight ce_/content-type, trace context (2) */
/* A dead letter's own headers (besides the original message's): six pw-* about the
 * message, six kafka_dlt-*, two when cut. */
#define SVC_DEAD_LETTER_HEADERS 14

typedef struct svc svc;

/* A dead letter in flight: what it says, kept for its headers-only second form. */
typedef struct dead_letter_info {
    int headers_only; /* the form in flight: 0 the (cut) copy of the payload, 1 no payload */
    char code[sizeof(((pw_rejection *)0)->code)];
    char message[sizeof(((pw_rejection *)0)->message)];
    char partition[16], offset[24], bytes[24];
    /* the original message: key, headers, timestamp (Spring's kafka_dlt-* headers) */
    void *key;
    size_t key_len;
    rd_kafka_headers_t *headers; /* owned, or NULL */
    unsigned char be_partition[4], be_offset[8], be_timestamp[8];
    int has_timestamp;
    const char *timestamp_type;
    char exception[sizeof(((pw_rejection *)0)->code) + sizeof(((pw_rejection *)0)->message) + 2];
} dead_letter_info;


/* A partition this process was given, as ownership goes: the executor's gate asks it
 * whether a request's work may go on.  Kept until exit (bounded by the partition count). */
typedef struct part_state {
    struct part_state *next;
    char *topic;
    int32_t partition;
    unsigned epoch; /* bumped at each release: requests of an older epoch are not ours */
    size_t live;    /* contexts of this epoch not yet finished */
    int revoking;   /* announced revoked, not yet released */
    int lost;       /* revoked as lost: nothing of it can be committed or waited for */
    int assigned;   /* its committed offset read (on_assigned), not yet released */
    int64_t committed; /* the group's committed offset when it was assigned (-1: none) */
    /* Offsets above the commit point that are done already (ascending): their messages
     * are not processed again when they come (see on_assigned for when that is safe). */
    int64_t skip_below; /* ... and every offset below this one (-1: none) */
    int64_t *skip;
    size_t nskip;
    /* What this process had done of it when it was last released (every offset below
     * mem_below, and mem): used again only if the group's commit still carries this
     * process's token when it comes back. */
    int64_t mem_below;
    int64_t *mem;
    size_t nmem;
    /* Deliveries of each offset to this process, ascending (kept across releases: a
     * partition that comes back redelivers from its commit); the lowest are dropped beyond
     * SVC_SEEN_MAX. */
    pw_deliveries *seen;
} part_state;

/* One message from intake until its terminal reply is acknowledged. */
typedef struct req_ctx {
    struct req_ctx *prev, *next; /* every live context, freed at exit whatever their state */
    svc *s;
    char id[129];
    char *reply_topic;
    char *correlation; /* kafka_correlationId header value, or NULL */
    size_t correlation_len;
    char *topic;
    int32_t partition;
    int64_t offset;
    int tracked; /* in the offsets ledger */
    int terminal_sent;
    uint64_t received_ms; /* when it was taken (pw_loop_now_ms) */
    part_state *part;
    unsigned epoch;       /* part's epoch when the message arrived */
    dead_letter_info *dl; /* owned; set while a dead letter is in flight */
    int reply_partition;  /* kafka_replyPartition, or -1 */
    pw_trace trace;       /* the request's trace context (or one started for it) */
    char *requested_by, *reason; /* audit (NULL: not given) */
    unsigned attempt;            /* deliveryAttempt */
    pw_log_context *logctx;      /* the fields of every log line with its id */
} req_ctx;

struct svc {
    const pw_config *cfg;
    pw_loop *loop;
    pw_request_checker *checker;
    pw_azure *azure;
    pw_exec *exec;
    pw_producer *producer;
    pw_intake *intake;
    pw_offsets *ledger;
    size_t in_flight; /* messages taken and not yet finished (terminal acknowledged) */
    int draining;
    int stopping;
    int exit_code;
    pw_timer *drain_timer;
    uint64_t drain_deadline_ms; /* loop time the drain must end by (0: no drain begun) */
    pw_timer *watch_timer;
    size_t skipped; /* messages whose terminal reply or dead letter could never be produced */
    int sigfd;
    req_ctx *live;
    part_state *parts;
    pw_timer *revoke_timer;  /* bounds the wait of a revoke (worker.drain.timeout.ms) */
    pw_timer *release_timer; /* a revoke's release is checked from the loop */
    pw_timer *commit_timer;
    /* Stall fence: a loop that did not turn for a third of the session timeout may have
     * been dropped by the group meanwhile (process stopped, VM paused); until a commit
     * probe confirms membership or a rebalance settles it, no operation starts. */
    pw_timer *tick_timer;
    pw_timer *probe_timer;
    uint64_t last_tick_ms;
    uint64_t stall_ms;
    int fenced;
    int closing; /* tearing down: contexts are freed without further bookkeeping */
    pw_admin *admin; /* NULL when worker.admin.listen is empty */
    /* The start-up credential check (worker.credential.check): until a token for ARM was
     * obtained, nothing is consumed. */
    int credential_ok;
    int credential_failures;
    pw_timer *credential_timer;
    /* This process's mark in its commits' metadata (random at start, see on_assigned). */
    char token[PW_OFFSETS_TOKEN_MAX + 1];
};

static void schedule_release_check(svc *s);

static part_state *part_get(svc *s, const char *topic, int32_t partition)
{
    for (part_state *p = s->parts; p; p = p->next)
        if (p->partition == partition && !strcmp(p->topic, topic)) return p;
    part_state *p = calloc(1, sizeof *p);
    if (!p || !(p->topic = strdup(topic))) {
        free(p);
        return NULL;
    }
    p->partition = partition;
    p->next = s->parts;
    s->parts = p;
    return p;
}

static int ctx_current(const req_ctx *c)
{
    return c->part && c->epoch == c->part->epoch;
}

static void ctx_free(req_ctx *c)
{
    if (!c) return;
    if (ctx_current(c)) {
        c->part->live--;
        if (c->part->revoking && !c->s->closing) schedule_release_check(c->s);
    }
    if (c->s) {
        if (c->prev)
            c->prev->next = c->next;
        else
            c->s->live = c->next;
        if (c->next) c->next->prev = c->prev;
    }
    pw_log_context_pop(c->logctx);
    free(c->reply_topic);
    free(c->correlation);
    free(c->topic);
    free(c->requested_by);
    free(c->reason);
    if (c->dl) {
        free(c->dl->key);
        if (c->dl->headers) rd_kafka_headers_destroy(c->dl->headers);
    }
    free(c->dl);
    free(c);
}

static void finish_loop_if_drained(svc *s)
{
    if (s->draining && !s->in_flight && !s->stopping) {
        s->stopping = 1;
        pw_log(PW_LOG_INFO, NULL, "worker.drained",
               "every request in flight has its terminal "
               "reply");
        pw_loop_stop(s->loop);
    }
}

static void update_backpressure(svc *s)
{
    if (s->draining) return;
    int over = !s->credential_ok || s->in_flight >= s->cfg->max_in_flight ||
               pw_offsets_pending_total(s->ledger) >= s->cfg->max_uncommitted;
    if (over != pw_intake_paused(s->intake)) {
        if (over && s->credential_ok)
            pw_log(PW_LOG_INFO, NULL, "worker.backpressure",
                   "pausing intake: %zu in flight, "
                   "%zu uncommitted",
                   s->in_flight, pw_offsets_pending_total(s->ledger));
        pw_intake_pause(s->intake, over);
    }
}

/* One Kafka message is over (acknowledged, or given up): count it finished, free its context,
 * and let intake resume or the drain end. */
static void ctx_finished(req_ctx *c)
{
    svc *s = c->s;
    s->in_flight--;
    ctx_free(c);
    update_backpressure(s);
    finish_loop_if_drained(s);
}

static void commit_cb(pw_loop *loop, void *ctx)
{
    svc *s = ctx;
    s->commit_timer = NULL;
    pw_intake_commit(s->intake);
}

/* Commits the commit points soon after an acknowledgement: a crash then
 * redelivers (and repeats) as little as possible. */
static void schedule_commit(svc *s)
{
    if (!s->commit_timer)
        s->commit_timer = pw_loop_timer_add(s->loop, SVC_COMMIT_DELAY_MS, commit_cb, s);
}

static int dead_letter_send(req_ctx *c, const void *payload, size_t len);

/* c's message is done: its offset counts towards the commit point, or, above it, among
 * what the next commit says is done (and skippable). */
static void ctx_done(req_ctx *c)
{
    svc *s = c->s;
    int64_t next = -1;
    if (c->tracked && ctx_current(c) &&
        pw_offsets_done(s->ledger, c->topic, c->partition, c->offset, &next) == PW_OK)
        schedule_commit(s);
}

static int offset_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int part_skips(const part_state *p, int64_t offset)
{
    return offset < p->skip_below ||
           (p->nskip && bsearch(&offset, p->skip, p->nskip, sizeof offset, offset_cmp) != NULL);
}

/* Sorts out[0..n) and drops repeats; returns the new count. */
static size_t offsets_sort_unique(int64_t *out, size_t n)
{
    qsort(out, n, sizeof *out, offset_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!m || out[m - 1] != out[i]) out[m++] = out[i];
    return m;
}

/* What of p is done at or above from and may be skipped by a later owner, ascending, into
 * out (SVC_SKIP_MAX): the ledger's skippable messages and the skip entries not received
 * yet.  Whatever is cut off is the highest: the rest stays skippable. */
static size_t part_done_above(svc *s, const part_state *p, int64_t from, int64_t *out)
{
    size_t n = pw_offsets_skippable(s->ledger, p->topic, p->partition, out, SVC_SKIP_MAX);
    int64_t last = pw_offsets_last_tracked(s->ledger, p->topic, p->partition);
    int64_t lo = last + 1 > from ? last + 1 : from;
    for (int64_t o = lo; o < p->skip_below && n < SVC_SKIP_MAX; o++)
        out[n++] = o;
    for (size_t i = 0; i < p->nskip && n < SVC_SKIP_MAX; i++)
        if (p->skip[i] >= lo) out[n++] = p->skip[i];
    return offsets_sort_unique(out, n);
}

/* Ties the skip entries of this request's targets: n = 0 for none written. */
static void ctx_targets(req_ctx *c, const pw_request *req)
{
    if (!c->tracked) return;
    uint64_t keys[PW_OFFSETS_TARGETS_MAX];
    size_t n = req ? pw_request_op_count(req) : 0;
    /* a rollout's targets may be listed only later: they are not known here */
    int known = n <= PW_OFFSETS_TARGETS_MAX && !(req && pw_request_rollout_of(req));
    for (size_t i = 0; known && i < n; i++) {
        char *key = pw_plan_lane_key(pw_request_op_at(req, i));
        if (!key) {
            known = 0;
            break;
        }
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        for (const char *q = key; *q; q++)
            h = (h ^ (unsigned char)*q) * 1099511628211ULL;
        keys[i] = h;
        free(key);
    }
    pw_offsets_targets(c->s->ledger, c->topic, c->partition, c->offset, known ? keys : NULL,
                       known ? n : PW_OFFSETS_TARGETS_MAX + 1);
}

/* The terminal message (reply or dead-letter) of one Kafka message is acknowledged, or can
 * never be produced.  Then a dead letter goes out once more without its payload; failing
 * that too, or for a reply, the message is skipped: logged with its coordinates, counted,
 * and its offset done all the same, so that it never holds its partition's commits back
 * (a restart would only meet it again). */
static void on_terminal_acked(void *ctx, int ok)
{
    req_ctx *c = ctx;
    svc *s = c->s;
    if (!ok && pw_producer_fatal(s->producer)) {
        /* Not the message's fault: no producer is left.  The worker stops; a restart
         * delivers it, so its offset stays behind it. */
        pw_log(PW_LOG_ERROR, c->id[0] ? c->id : NULL, "reply.undeliverable",
               "terminal message for %s [%d] @ %lld not produced, the producer is gone; its "
               "offset is not committed",
               c->topic, (int)c->partition, (long long)c->offset);
        ctx_finished(c);
        return;
    }
    if (!ok && c->dl && !c->dl->headers_only) {
        pw_log(PW_LOG_WARN, NULL, "deadletter.headers_only",
               "%s [%d] @ %lld: the dead letter with its payload could not be produced; "
               "sending its headers alone",
               c->topic, (int)c->partition, (long long)c->offset);
        c->dl->headers_only = 1;
        if (!dead_letter_send(c, NULL, 0)) return; /* acknowledged (or not) later */
    }
    if (!ok) {
        s->skipped++;
        pw_log(PW_LOG_ERROR, c->id[0] ? c->id : NULL, "message.skipped",
               "%s [%d] @ %lld: its %s could not be produced; skipped, the offset is committed "
               "past it (%zu skipped so far)",
               c->topic, (int)c->partition, (long long)c->offset,
               c->dl ? "dead letter" : "terminal reply", s->skipped);
    } else {
        pw_log(PW_LOG_DEBUG, c->id[0] ? c->id : NULL, "reply.acked", "%s [%d] @ %lld", c->topic,
               (int)c->partition, (long long)c->offset);
    }
    ctx_done(c);
    ctx_finished(c);
}

static size_t ctx_headers(const req_ctx *c, pw_producer_header *h)
{
    if (!c->correlation) return 0;
    h[0] = (pw_producer_header){SVC_CORRELATION_HEADER, c->correlation, c->correlation_len};
    return 1;
}

/* A random (version 4) UUID, 36 characters: each reply event's ce_id. */
static void uuid_new(char *out)
{
    char hex[33];
    pw_trace_random_hex(hex, 32);
    hex[12] = '4';
    hex[16] = "89ab"[hex[16] % 4];
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* ce_source: the prefix and worker.id, the id percent-encoded outside RFC 3986's unreserved
 * characters (a URI-reference, as the attribute must be). */
static void ce_source(const char *worker_id, char *out, size_t len)
{
    size_t n = (size_t)snprintf(out, len, "%s", SVC_CE_SOURCE_PREFIX);
    for (const unsigned char *p = (const unsigned char *)worker_id; *p && n + 4 < len; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, len - n, "%%%02X", *p);
    }
    out[n] = '\0';
}

/* The texts a reply's headers point into, for as long as it is being sent. */
typedef struct reply_headers {
    char id[37], source[SVC_TOPIC_NAME_MAX * 3 + 32], type[64],
        traceparent[PW_TRACE_PARENT_LEN + 1];
    char sequence[16];
} reply_headers;

/* The headers of one reply event: the correlation id, the CloudEvents attributes (binary
 * mode: ce_* and content-type) and the trace context.  Returns the count. */
static size_t reply_headers_fill(const req_ctx *c, const json_t *event, reply_headers *t,
                                 pw_producer_header *h)
{
    size_t n = ctx_headers(c, h);
    const char *status = json_string_value(json_object_get(event, "status"));
    const char *time = json_string_value(json_object_get(event, "time"));
    uuid_new(t->id);
    ce_source(c->s->cfg->worker_id, t->source, sizeof t->source);
    snprintf(t->type, sizeof t->type, "%s%s", SVC_CE_TYPE_PREFIX, status ? status : "unknown");
    pw_trace_child(&c->trace, t->traceparent);
#define HDR(name, v) (h[n++] = (pw_producer_header){(name), (v), strlen(v)})
    HDR("ce_specversion", "1.0");
    HDR("ce_id", t->id);
    HDR("ce_source", t->source);
    HDR("ce_type", t->type);
    if (time) HDR("ce_time", time);
    HDR("ce_subject", c->id);
    HDR("ce_dataschema", SVC_CE_DATASCHEMA);
    HDR("content-type", "application/json");
    HDR("traceparent", t->traceparent);
    if (c->trace.state[0]) HDR("tracestate", c->trace.state);
#undef HDR
    return n;
}

/* Produces one reply event, cut to what Kafka carries (it says "truncated" then); terminal
 * ones are retried until acknowledged or given up (on_terminal_acked).  Every event gets the
 * request's audit fields here (pw_reply_audit_add). */
static void send_event(req_ctx *c, json_t *event, int terminal)
{
    svc *s = c->s;
    pw_reply_audit audit = {.requested_by = c->requested_by,
                            .reason = c->reason,
                            .topic = c->topic,
                            .partition = (int)c->partition,
                            .offset = (long long)c->offset,
                            .delivery_attempt = c->attempt};
    pw_reply_audit_add(event, &audit);
    const char *status = json_string_value(json_object_get(event, "status"));
    pw_log_kv(terminal ? PW_LOG_INFO : PW_LOG_DEBUG, c->id, "reply.event",
              (pw_log_field[]){PW_LOG_S("replyStatus", status ? status : "?"),
                               PW_LOG_S("replyTopic", c->reply_topic),
                               PW_LOG_N("replyPartition", c->reply_partition)},
              3, "%s -> %s", status ? status : "?", c->reply_topic);
    char err[256] = "";
    pw_producer_header h[SVC_REPLY_HEADERS];
    reply_headers texts;
    size_t nh = reply_headers_fill(c, event, &texts, h);
    size_t room = pw_producer_value_room(s->producer, strlen(c->id), h, nh);
    int cut = 0;
    char *text = pw_reply_dump_fit(event, room, &cut);
    if (text && cut)
        pw_log(PW_LOG_WARN, c->id, "reply.truncated",
               "%s event cut to %zu bytes to fit the producer's and broker's limits (%zu)",
               status ? status : "?", strlen(text), room);
    int rc = -1;
    if (text) {
        pw_producer_msg m = {.topic = c->reply_topic,
                             .partition = c->reply_partition,
                             .key = c->id,
                             .key_len = strlen(c->id),
                             .log_id = c->id,
                             .value = text,
                             .len = strlen(text),
                             .headers = h,
                             .header_count = nh};
        rc = pw_producer_produce(s->producer, &m, terminal, terminal ? on_terminal_acked : NULL,
                                 terminal ? c : NULL, err, sizeof err);
    }
    free(text);
    if (terminal && status) {
        json_t *e = json_object_get(event, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        pw_metrics_add(PW_M_REQUESTS, 1, status, code ? code : "", NULL);
        pw_metrics_observe(PW_M_REQUEST_SECONDS,
                           (double)(pw_loop_now_ms(s->loop) - c->received_ms) / 1000, status);
    }
    if (rc) {
        pw_log(PW_LOG_ERROR, c->id, "reply.send_failed", "%s", text ? err : "out of memory");
        /* Cannot even queue it: count it finished but leave its offset uncommitted. */
        if (terminal) ctx_finished(c);
    }
}

static void on_exec_event(void *ctx, json_t *event, int terminal)
{
    req_ctx *c = ctx;
    if (c->terminal_sent) { /* contract breach by the executor: never two terminals */
        json_decref(event);
        return;
    }
    if (terminal) c->terminal_sent = 1;
    send_event(c, event, terminal);
    json_decref(event);
}

/* Produces c's dead letter: the original key and headers, then the pw-* and Spring's
 * kafka_dlt-* headers, and the payload (NULL: none, the headers-only form) cut to the
 * worker's bound and to what the producer and a default broker carry, headers included.
 * Returns 0, or -1 (logged) when it cannot even be queued. */
static int dead_letter_send(req_ctx *c, const void *payload, size_t len)
{
    svc *s = c->s;
    const dead_letter_info *dl = c->dl;
    size_t orig = dl->headers ? rd_kafka_header_cnt(dl->headers) : 0;
    pw_producer_header *h = calloc(orig + SVC_DEAD_LETTER_HEADERS, sizeof *h);
    if (!h) {
        pw_log(PW_LOG_ERROR, NULL, "deadletter.send_failed", "out of memory");
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < orig; i++) {
        const char *name;
        const void *val;
        size_t size;
        if (rd_kafka_header_get_all(dl->headers, i, &name, &val, &size)) break;
        h[n++] = (pw_producer_header){name, val ? val : "", val ? size : 0};
    }
    h[n++] = (pw_producer_header){"pw-error-code", dl->code, strlen(dl->code)};
    h[n++] = (pw_producer_header){"pw-error-message", dl->message, strlen(dl->message)};
    h[n++] = (pw_producer_header){"pw-source-topic", c->topic, strlen(c->topic)};
    h[n++] = (pw_producer_header){"pw-source-partition", dl->partition, strlen(dl->partition)};
    h[n++] = (pw_producer_header){"pw-source-offset", dl->offset, strlen(dl->offset)};
    h[n++] = (pw_producer_header){"pw-worker", s->cfg->worker_id, strlen(s->cfg->worker_id)};
    /* Spring Kafka's DeadLetterPublishingRecoverer: numbers big-endian binary */
    h[n++] = (pw_producer_header){"kafka_dlt-original-topic", c->topic, strlen(c->topic)};
    h[n++] = (pw_producer_header){"kafka_dlt-original-partition", dl->be_partition, 4};
    h[n++] = (pw_producer_header){"kafka_dlt-original-offset", dl->be_offset, 8};
    if (dl->has_timestamp) {
        h[n++] = (pw_producer_header){"kafka_dlt-original-timestamp", dl->be_timestamp, 8};
        h[n++] = (pw_producer_header){"kafka_dlt-original-timestamp-type", dl->timestamp_type,
                                      strlen(dl->timestamp_type)};
    }
    h[n++] =
        (pw_producer_header){"kafka_dlt-exception-message", dl->exception, strlen(dl->exception)};
    /* The room is counted with the two truncation headers, whether they are needed or not. */
    pw_producer_header *cut_h = &h[n];
    cut_h[0] = (pw_producer_header){"pw-payload-truncated", "true", 4};
    cut_h[1] = (pw_producer_header){"pw-payload-bytes", dl->bytes, strlen(dl->bytes)};
    size_t room = pw_producer_value_room(s->producer, dl->key ? dl->key_len : 0, h, n + 2);
    if (room > s->cfg->max_message_bytes) room = s->cfg->max_message_bytes;
    if (!payload) len = 0;
    if (dl->headers_only || len > room) {
        if (len > room) len = room;
        n += 2;
    }
    char err[256] = "";
    pw_producer_msg m = {.topic = s->cfg->dead_letter_topic,
                         .partition = -1,
                         .key = dl->key,
                         .key_len = dl->key_len,
                         .value = payload ? payload : "",
                         .len = len,
                         .headers = h,
                         .header_count = n};
    int rc = pw_producer_produce(s->producer, &m, 1, on_terminal_acked, c, err, sizeof err);
    free(h);
    if (rc) {
        pw_log(PW_LOG_ERROR, NULL, "deadletter.send_failed", "%s", err);
        return -1;
    }
    return 0;
}

static void put_be(unsigned char *out, uint64_t v, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        out[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
}

static void dead_letter(svc *s, req_ctx *c, const rd_kafka_message_t *msg, const pw_rejection *rej)
{
    pw_log_kv(PW_LOG_WARN, NULL, "request.deadletter",
              (pw_log_field[]){
                  PW_LOG_S("code", rej->code), PW_LOG_S("topic", c->topic),
                  PW_LOG_N("partition", msg->partition), PW_LOG_N("offset", msg->offset),
                  PW_LOG_N("deliveryAttempt", c->attempt), PW_LOG_S("traceId", c->trace.trace_id)},
              6, "%s [%d] @ %lld: %s: %s", c->topic, (int)msg->partition, (long long)msg->offset,
              rej->code, rej->message);
    pw_metrics_add(PW_M_DEAD_LETTERS, 1, rej->code, NULL, NULL);
    dead_letter_info *dl = calloc(1, sizeof *dl);
    if (dl && msg->key) {
        dl->key = malloc(msg->key_len ? msg->key_len : 1);
        if (dl->key) {
            memcpy(dl->key, msg->key, msg->key_len);
            dl->key_len = msg->key_len;
        }
    }
    rd_kafka_headers_t *hdrs = NULL;
    if (dl && !rd_kafka_message_headers(msg, &hdrs) && hdrs)
        dl->headers = rd_kafka_headers_copy(hdrs);
    if (!dl || (msg->key && !dl->key) || (hdrs && !dl->headers)) {
        /* Cannot even be queued: count it finished but leave its offset uncommitted. */
        pw_log(PW_LOG_ERROR, NULL, "deadletter.send_failed", "out of memory");
        if (dl) {
            free(dl->key);
            if (dl->headers) rd_kafka_headers_destroy(dl->headers);
        }
        free(dl);
        ctx_finished(c);
        return;
    }
    snprintf(dl->code, sizeof dl->code, "%s", rej->code);
    snprintf(dl->message, sizeof dl->message, "%s", rej->message);
    snprintf(dl->partition, sizeof dl->partition, "%d", (int)msg->partition);
    snprintf(dl->offset, sizeof dl->offset, "%lld", (long long)msg->offset);
    snprintf(dl->bytes, sizeof dl->bytes, "%zu", msg->len);
    snprintf(dl->exception, sizeof dl->exception, "%s: %s", rej->code, rej->message);
    put_be(dl->be_partition, (uint32_t)msg->partition, 4);
    put_be(dl->be_offset, (uint64_t)msg->offset, 8);
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(msg, &tstype);
    if (ts >= 0 && tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) {
        dl->has_timestamp = 1;
        put_be(dl->be_timestamp, (uint64_t)ts, 8);
        dl->timestamp_type =
            tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "LogAppendTime" : "CreateTime";
    }
    c->dl = dl;
    if (dead_letter_send(c, msg->payload, msg->len)) ctx_finished(c);
}

/* The last value of header name, or NULL. */
static const void *header_get(const rd_kafka_message_t *msg, const char *name, size_t *size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    *size = 0;
    if (rd_kafka_message_headers(msg, &hdrs) || !hdrs) return NULL;
    if (rd_kafka_header_get_last(hdrs, name, &val, size) || !val) return NULL;
    return val;
}

static void copy_correlation(req_ctx *c, const rd_kafka_message_t *msg)
{
    size_t size = 0;
    const void *val = header_get(msg, SVC_CORRELATION_HEADER, &size);
    if (!val) return;
    if (size > SVC_CORRELATION_MAX) {
        pw_log(PW_LOG_WARN, NULL, "request.correlation_dropped",
               "%s header of %zu bytes is "
               "over %d and is not echoed",
               SVC_CORRELATION_HEADER, size, SVC_CORRELATION_MAX);
        return;
    }
    c->correlation = malloc(size ? size : 1);
    if (!c->correlation) return;
    memcpy(c->correlation, val, size);
    c->correlation_len = size;
}

/* The request's trace context from its traceparent/tracestate headers, or a new trace. */
static void read_trace(req_ctx *c, const rd_kafka_message_t *msg)
{
    size_t tp_len = 0, ts_len = 0;
    const void *tp = header_get(msg, "traceparent", &tp_len);
    const void *ts = header_get(msg, "tracestate", &ts_len);
    if (pw_trace_from_headers(&c->trace, tp, tp_len, ts, ts_len) && tp)
        pw_log(PW_LOG_WARN, NULL, "request.traceparent_invalid",
               "%s [%d] @ %lld: the traceparent header is not a valid version-00 one; a new "
               "trace %s is started",
               c->topic, (int)c->partition, (long long)c->offset, c->trace.trace_id);
}

/* deliveryAttempt: 1 + how many times this process received (topic, partition, offset)
 * before (the last SVC_SEEN_MAX offsets of the partition). */
static unsigned count_delivery(part_state *p, int64_t offset)
{
    if (!p) return 1;
    if (!p->seen) p->seen = pw_deliveries_new(SVC_SEEN_MAX);
    return pw_deliveries_count(p->seen, offset);
}

/* The request's requestedBy and reason, from its JSON (a rejected one's too, as far as it
 * is JSON with those as strings); cut to the request schema's bounds. */
static void read_audit(req_ctx *c, const rd_kafka_message_t *msg)
{
    if (!msg->payload || !msg->len) return;
    json_t *doc = json_loadb(msg->payload, msg->len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return;
    }
    const char *by = json_string_value(json_object_get(doc, "requestedBy"));
    const char *why = json_string_value(json_object_get(doc, "reason"));
    if (by) c->requested_by = strndup(by, SVC_REQUESTED_BY_MAX);
    if (why) c->reason = strndup(why, SVC_REASON_MAX);
    if (c->requested_by) pw_reply_scrub(c->requested_by); /* (a cut may split a character) */
    if (c->reason) pw_reply_scrub(c->reason);
    json_decref(doc);
}

/* From here on every log line with c's id carries the request's audit and trace fields. */
static void log_context(req_ctx *c)
{
    pw_log_field f[8];
    size_t n = 0;
    f[n++] = PW_LOG_S("traceId", c->trace.trace_id);
    if (c->requested_by) f[n++] = PW_LOG_S("requestedBy", c->requested_by);
    if (c->reason) f[n++] = PW_LOG_S("reason", c->reason);
    f[n++] = PW_LOG_S("topic", c->topic);
    f[n++] = PW_LOG_N("partition", c->partition);
    f[n++] = PW_LOG_N("offset", c->offset);
    f[n++] = PW_LOG_N("deliveryAttempt", c->attempt);
    c->logctx = pw_log_context_push(c->id, f, n);
}

/* Where the reply goes when the body names no replyTo: the kafka_replyTopic header (Spring
 * request/reply) when present.  Returns 0 with *topic set (NULL: the default), or -1 when
 * the header names a topic the configuration does not allow (why filled). */
static int header_reply_topic(const svc *s, const rd_kafka_message_t *msg, char **topic, char *why,
                              size_t whylen)
{
    *topic = NULL;
    size_t size = 0;
    const char *val = header_get(msg, SVC_REPLY_TOPIC_HEADER, &size);
    if (!val) return 0;
    char name[SVC_TOPIC_NAME_MAX + 1];
    int ok = size && size <= SVC_TOPIC_NAME_MAX && !memchr(val, '\0', size);
    if (ok) {
        memcpy(name, val, size);
        name[size] = '\0';
        ok = pw_config_reply_topic_allowed(s->cfg, name);
    }
    if (!ok) {
        snprintf(why, whylen,
                 "the %s header \"%.*s%s\" is not allowed: the worker replies to its reply "
                 "topic (worker.reply.topic) or to a topic listed in worker.replyto.allowed",
                 SVC_REPLY_TOPIC_HEADER, (int)(size > 64 ? 64 : size), val, size > 64 ? "..." : "");
        pw_reply_scrub(why);
        return -1;
    }
    *topic = strdup(name);
    return 0;
}

/* kafka_replyPartition: a 4-byte big-endian partition, or -1 (none, or not such a value). */
static int header_reply_partition(const rd_kafka_message_t *msg)
{
    size_t size = 0;
    const unsigned char *v = header_get(msg, SVC_REPLY_PARTITION_HEADER, &size);
    if (!v) return -1;
    if (size != 4 || (v[0] & 0x80)) {
        pw_log(PW_LOG_WARN, NULL, "request.reply_partition_ignored",
               "%s header of %zu bytes is not a 4-byte big-endian partition; ignored",
               SVC_REPLY_PARTITION_HEADER, size);
        return -1;
    }
    return (int)(((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) | ((uint32_t)v[2] << 8) | v[3]);
}

/* Sends c's rejected event (its id and reply topic set). */
static void send_rejection(svc *s, req_ctx *c, const pw_rejection *rej)
{
    pw_log_kv(PW_LOG_WARN, c->id, "request.rejected", (pw_log_field[]){PW_LOG_S("code", rej->code)},
              1, "%s: %s", rej->code, rej->message);
    json_t *event = pw_reply_rejection(rej, s->cfg->worker_id);
    if (!c->reply_topic || !event) {
        pw_log(PW_LOG_ERROR, c->id, "intake.nomem", "rejection not sent");
        json_decref(event);
        ctx_finished(c);
    } else {
        c->terminal_sent = 1;
        send_event(c, event, 1);
        json_decref(event);
    }
}

static void on_message(void *ctx, const rd_kafka_message_t *msg)
{
    svc *s = ctx;
    const char *topic = rd_kafka_topic_name(msg->rkt);
    req_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->topic = strdup(topic))) {
        /* Not tracked, so never committed: redelivered after a restart. */
        pw_log(PW_LOG_ERROR, NULL, "intake.nomem", "message %s [%d] @ %lld dropped", topic,
               (int)msg->partition, (long long)msg->offset);
        free(c);
        return;
    }
    c->s = s;
    c->next = s->live;
    if (s->live) s->live->prev = c;
    s->live = c;
    c->partition = msg->partition;
    c->offset = msg->offset;
    c->received_ms = pw_loop_now_ms(s->loop);
    c->reply_partition = -1;
    if ((c->part = part_get(s, topic, msg->partition))) {
        c->epoch = c->part->epoch;
        c->part->live++;
    }
    c->attempt = count_delivery(c->part, msg->offset);
    pw_status st = pw_offsets_track(s->ledger, topic, msg->partition, msg->offset);
    c->tracked = st == PW_OK;
    if (st)
        pw_log(PW_LOG_WARN, NULL, "intake.untracked", "%s [%d] @ %lld: ledger status %d", topic,
               (int)msg->partition, (long long)msg->offset, (int)st);
    s->in_flight++;
    if (c->tracked && c->part && part_skips(c->part, msg->offset)) {
        /* Done before (by this process or the partition's previous owner), and no message
         * before it on the same targets is replayed: answered already, nothing to do. */
        pw_log(PW_LOG_DEBUG, NULL, "request.already_done", "%s [%d] @ %lld", topic,
               (int)msg->partition, (long long)msg->offset);
        pw_metrics_add(PW_M_SKIPPED_DONE, 1, NULL, NULL, NULL);
        ctx_targets(c, NULL);
        ctx_done(c);
        ctx_finished(c);
        return;
    }
    copy_correlation(c, msg);
    read_trace(c, msg);
    read_audit(c, msg);
    char *header_topic = NULL;
    char header_why[256] = "";
    int header_bad = header_reply_topic(s, msg, &header_topic, header_why, sizeof header_why);

    pw_rejection rej;
    memset(&rej, 0, sizeof rej);
    /* A tombstone (no value) decodes as an empty payload. */
    pw_request *req =
        pw_request_decode(s->checker, msg->payload ? msg->payload : "", msg->len, &rej);
    if (!req) {
        if (!rej.internal) ctx_targets(c, NULL); /* answered without a write */
        if (rej.internal) {
            /* Not a verdict on the message: no reply, no dead letter.  It stays tracked and is
             * never marked done, so neither its offset nor any later one of its partition is
             * committed: as after a crash, it is redelivered to the group. */
            pw_log(PW_LOG_ERROR, rej.id[0] ? rej.id : NULL, "request.internal_error",
                   "%s [%d] @ %lld left uncommitted: %s", topic, (int)msg->partition,
                   (long long)msg->offset, rej.message);
            ctx_finished(c);
        } else if (!rej.id[0]) {
            dead_letter(s, c, msg, &rej);
        } else {
            snprintf(c->id, sizeof c->id, "%s", rej.id);
            log_context(c);
            /* the body's replyTo wins; else the header's when allowed; else the default */
            int body_refused = !strcmp(rej.code, PW_REJECT_REPLY_TO); /* the body's: default */
            const char *to = rej.reply_to[0] ? rej.reply_to : body_refused ? NULL : header_topic;
            if (!rej.reply_to[0] && !body_refused && header_topic)
                c->reply_partition = header_reply_partition(msg);
            c->reply_topic = strdup(to ? to : s->cfg->reply_topic);
            send_rejection(s, c, &rej);
        }
        pw_rejection_clear(&rej);
        free(header_topic);
        update_backpressure(s);
        return;
    }
    snprintf(c->id, sizeof c->id, "%s", pw_request_id(req));
    log_context(c);
    const char *rt = pw_request_reply_to(req);
    if (!rt && header_bad) {
        /* kafka_replyTopic is held to replyTo's allow-list: the same rejection */
        pw_request_free(req);
        ctx_targets(c, NULL); /* answered without a write */
        memset(&rej, 0, sizeof rej);
        snprintf(rej.code, sizeof rej.code, "%s", PW_REJECT_REPLY_TO);
        snprintf(rej.message, sizeof rej.message, "%s", header_why);
        snprintf(rej.id, sizeof rej.id, "%s", c->id);
        c->reply_topic = strdup(s->cfg->reply_topic);
        send_rejection(s, c, &rej);
        pw_rejection_clear(&rej);
        update_backpressure(s);
        return;
    }
    if (!rt && header_topic) rt = header_topic;
    if (!pw_request_reply_to(req)) c->reply_partition = header_reply_partition(msg);
    c->reply_topic = strdup(rt ? rt : s->cfg->reply_topic);
    free(header_topic);
    if (!c->reply_topic) {
        pw_log(PW_LOG_ERROR, c->id, "intake.nomem", "request dropped");
        pw_request_free(req);
        ctx_finished(c);
        return;
    }
    pw_log(PW_LOG_INFO, c->id, "request.received", "%s [%d] @ %lld", topic, (int)msg->partition,
           (long long)msg->offset);
    ctx_targets(c, req);
    pw_exec_submit(s->exec, req, on_exec_event, c);
    update_backpressure(s);
}

/* ------------------------------------------------------------- ownership */

/* Ends the revoke: the partitions' offsets are no longer ours, what is stored is committed
 * and they are unassigned.  Requests of theirs still in flight (past the deadline) belong
 * to an old epoch from here on: the gate drops them before anything further starts. */
static void release_now(svc *s)
{
    if (s->revoke_timer) {
        pw_loop_timer_cancel(s->loop, s->revoke_timer);
        s->revoke_timer = NULL;
    }
    /* What was done is remembered, should the partition come back with nobody having worked
     * on it in between (its commit at the release below may well be refused). */
    for (part_state *p = s->parts; p; p = p->next) {
        if (!p->revoking) continue;
        free(p->mem);
        p->mem = NULL;
        p->nmem = 0;
        if (p->lost) continue; /* someone else's already */
        int64_t from = pw_offsets_commit_point(s->ledger, p->topic, p->partition);
        if (from < 0) from = p->committed;
        if (from < 0 || !(p->mem = malloc(SVC_SKIP_MAX * sizeof *p->mem))) continue;
        p->mem_below = from; /* everything below its commit point is done */
        p->nmem = part_done_above(s, p, from, p->mem);
    }
    pw_intake_release(s->intake); /* (commits the commit points, these partitions' too) */
    for (part_state *p = s->parts; p; p = p->next) {
        if (!p->revoking) continue;
        pw_offsets_drop(s->ledger, p->topic, p->partition);
        p->revoking = p->lost = p->assigned = 0;
        p->epoch++;
        p->live = 0;
        free(p->skip);
        p->skip = NULL;
        p->nskip = 0;
    }
    pw_exec_recheck(s->exec);
    update_backpressure(s);
}

/* A revoke is released once every request of its partitions that was in flight has its
 * terminal reply acknowledged (lost partitions wait for nothing: they are someone else's). */
static void release_check_cb(pw_loop *loop, void *ctx)
{
    svc *s = ctx;
    s->release_timer = NULL;
    if (!pw_intake_revoking(s->intake)) return;
    for (part_state *p = s->parts; p; p = p->next)
        if (p->revoking && !p->lost && p->live) return;
    pw_log(PW_LOG_INFO, NULL, "worker.revoke_drained",
           "the revoked partitions' requests in flight are finished");
    release_now(s);
}

static void schedule_release_check(svc *s)
{
    if (!s->release_timer) s->release_timer = pw_loop_timer_add(s->loop, 0, release_check_cb, s);
}

static void revoke_deadline_cb(pw_loop *loop, void *ctx)
{
    svc *s = ctx;
    s->revoke_timer = NULL;
    size_t left = 0;
    for (part_state *p = s->parts; p; p = p->next)
        if (p->revoking) left += p->live;
    pw_log(PW_LOG_WARN, NULL, "worker.revoke_timeout",
           "%zu requests of revoked partitions still in flight after %ld ms: releasing the "
           "partitions; those requests start nothing more and are redelivered to the next owner",
           left, s->cfg->drain_timeout_ms);
    release_now(s);
}

static void on_revoked(void *ctx, const char *topic, int32_t partition, int lost)
{
    svc *s = ctx;
    part_state *p = part_get(s, topic, partition);
    if (p) {
        p->revoking = 1;
        p->lost |= lost;
    }
    if (!s->revoke_timer)
        s->revoke_timer =
            pw_loop_timer_add(s->loop, (uint64_t)s->cfg->drain_timeout_ms, revoke_deadline_cb, s);
    /* What has not started is dropped (redelivered to the next owner); what runs ends. */
    pw_exec_recheck(s->exec);
    schedule_release_check(s);
}

static void fence_lift(svc *s, const char *why)
{
    if (!s->fenced) return;
    s->fenced = 0;
    if (s->probe_timer) {
        pw_loop_timer_cancel(s->loop, s->probe_timer);
        s->probe_timer = NULL;
    }
    pw_log(PW_LOG_INFO, NULL, "worker.fence_lifted", "%s: operations may start again", why);
    pw_exec_recheck(s->exec);
}

static void probe_send(svc *s);

static void probe_retry_cb(pw_loop *loop, void *ctx)
{
    svc *s = ctx;
    s->probe_timer = NULL;
    probe_send(s);
}

static void probe_done(void *ctx, const char *error)
{
    svc *s = ctx;
    if (!s->fenced) return;
    if (!error) {
        fence_lift(s, "the group accepted a commit of this member: it still owns its partitions");
        return;
    }
    pw_log(PW_LOG_WARN, NULL, "worker.ownership_unconfirmed",
           "%s; operations stay on hold until a rebalance settles ownership", error);
    if (!s->probe_timer)
        s->probe_timer = pw_loop_timer_add(s->loop, SVC_PROBE_RETRY_MS, probe_retry_cb, s);
}

/* Sends the ownership probe: a commit of the commit points. */
static void probe_send(svc *s)
{
    int rc = pw_intake_probe(s->intake, probe_done, s);
    if (rc == 1) {
        fence_lift(s, "no partition has anything to commit");
        return;
    }
    if (rc && !s->probe_timer)
        s->probe_timer = pw_loop_timer_add(s->loop, SVC_PROBE_RETRY_MS, probe_retry_cb, s);
}

/* Notices a stall of the whole process (the loop did not turn for stall_ms): from here
 * until ownership is confirmed, no operation starts and no write is sent. */
static int stall_check(svc *s)
{
    uint64_t now = pw_monotonic_ms();
    uint64_t gap = now - s->last_tick_ms;
    if (gap < s->stall_ms) return s->fenced;
    s->last_tick_ms = now;
    if (!s->fenced) {
        s->fenced = 1;
        pw_log(PW_LOG_WARN, NULL, "worker.stalled",
               "the process did not run for %llu ms (the limit is %llu ms, a third of the "
               "session timeout): the group may have given its partitions to another member; "
               "no operation starts until that is settled",
               (unsigned long long)gap, (unsigned long long)s->stall_ms);
        probe_send(s);
    }
    return 1;
}

/* What /readyz and the gauges say, from the loop's own state (the admin thread reads it). */
static void report_state(svc *s)
{
    pw_metrics_set(PW_M_REQUESTS_IN_FLIGHT, (double)s->in_flight, NULL, NULL, NULL);
    pw_metrics_set(PW_M_OPERATIONS_IN_FLIGHT, (double)pw_exec_in_flight(s->exec), NULL, NULL,
                   NULL);
    pw_metrics_set(PW_M_PARTITIONS_PAUSED, (double)pw_intake_paused_partitions(s->intake), NULL,
                   NULL, NULL);
    if (!s->admin) return;
    pw_admin_beat(s->admin, pw_monotonic_ms());
    char why[256] = "";
    if (!pw_intake_joined(s->intake)) {
        const char *group = pw_config_kafka_get(s->cfg, "group.id");
        snprintf(why, sizeof why, "not yet a member of group %s", group ? group : "(none)");
    }
    pw_admin_ready(s->admin, PW_ADMIN_CONSUMER, why[0] ? why : NULL);
    pw_admin_ready(s->admin, PW_ADMIN_PRODUCER,
                   pw_producer_fatal(s->producer) ? "the Kafka producer failed for good" : NULL);
}

static void tick_cb(pw_loop *loop, void *ctx)
{
    svc *s = ctx;
    s->tick_timer = pw_loop_timer_add(loop, SVC_TICK_MS, tick_cb, s);
    stall_check(s);
    s->last_tick_ms = pw_monotonic_ms();
    report_state(s);
}

static void credential_check(svc *s);

static void credential_retry_cb(pw_loop *loop, void *ctx)
{
    (void)loop;
    svc *s = ctx;
    s->credential_timer = NULL;
    credential_check(s);
}

/* The start-up check's answer: a token, so requests may come; or why not, said once as an
 * error (then as warnings), and tried again with backoff while /readyz says so. */
static void credential_checked(void *ctx, const char *code, const char *message)
{
    svc *s = ctx;
    if (!code) {
        s->credential_ok = 1;
        pw_log(PW_LOG_INFO, NULL, "credential.ok", "a token for ARM was obtained%s",
               s->credential_failures ? " (after failures); taking requests" : "");
        pw_admin_ready(s->admin, PW_ADMIN_CREDENTIAL, NULL);
        update_backpressure(s);
        return;
    }
    uint64_t delay = SVC_CREDENTIAL_RETRY_MIN_MS;
    for (int i = 0; i < s->credential_failures && delay < SVC_CREDENTIAL_RETRY_MAX_MS; i++)
        delay *= 2;
    if (delay > SVC_CREDENTIAL_RETRY_MAX_MS) delay = SVC_CREDENTIAL_RETRY_MAX_MS;
    char why[PW_ADMIN_REASON_MAX];
    snprintf(why, sizeof why, "%s: %s", code, message ? message : "");
    pw_log(s->credential_failures ? PW_LOG_WARN : PW_LOG_ERROR, NULL, "credential.failed",
           "no token for ARM (%s); no request is taken until there is one; trying again in "
           "%llu ms",
           why, (unsigned long long)delay);
    s->credential_failures++;
    pw_admin_ready(s->admin, PW_ADMIN_CREDENTIAL, why);
    s->credential_timer = pw_loop_timer_add(s->loop, delay, credential_retry_cb, s);
}

static void credential_check(svc *s)
{
    if (pw_azure_check_credential(s->azure, credential_checked, s))
        credential_checked(s, "InternalError", "out of memory");
}

static pw_exec_gate gate_cb(void *ctx)
{
    req_ctx *c = ctx;
    svc *s = c->s;
    if (!ctx_current(c) || c->part->revoking) return PW_EXEC_DROP;
    if (stall_check(s)) return PW_EXEC_HOLD;
    /* librdkafka knows the assignment is gone; its revoke is on the way */
    if (pw_intake_assignment_lost(s->intake)) return PW_EXEC_HOLD;
    return PW_EXEC_GO;
}

static void dropped_cb(void *ctx)
{
    req_ctx *c = ctx;
    /* Left unfinished in the ledger: its partition is no longer ours, the next owner
     * processes it from the committed offset. */
    ctx_finished(c);
}

/* A random token naming this process in its commits: 16 lower-case hex digits. */
static void token_new(char *out)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) /* (then time and pid: unique enough) */
        r = (pw_monotonic_ms() * 1000003u) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
    snprintf(out, PW_OFFSETS_TOKEN_MAX + 1, "%016llx", (unsigned long long)r);
}

/* A partition given to this process, before any of its messages.  The offsets its commit
 * says are done are skipped when they come: their writer answered them, and on each target
 * the skipped messages come first, so replaying the rest in order ends with the right
 * value.  That holds as long as nobody worked on the partition after that commit, which
 * the claims guarantee (pw/intake.h): every owner commits before its first message.  So
 * when the commit carries this process's own token, nobody else worked on it since this
 * process last had it, and what this process remembers having done is skippable too. */
static void on_assigned(void *ctx, const char *topic, int32_t partition, int64_t committed,
                        const char *metadata)
{
    svc *s = ctx;
    part_state *p = part_get(s, topic, partition);
    if (p) {
        p->assigned = 1;
        p->committed = committed;
        free(p->skip);
        p->skip = NULL;
        p->nskip = 0;
        p->skip_below = -1;
        char token[PW_OFFSETS_TOKEN_MAX + 1];
        int64_t *got = committed >= 0 ? malloc(2 * SVC_SKIP_MAX * sizeof *got) : NULL;
        size_t n = got ? pw_offsets_metadata_decode(metadata, committed, token, got, SVC_SKIP_MAX)
                       : 0;
        int own = got && p->mem && !strcmp(token, s->token);
        if (own) {
            p->skip_below = p->mem_below;
            for (size_t i = 0; i < p->nmem; i++)
                if (p->mem[i] >= committed) got[n++] = p->mem[i];
        }
        /* the union of two sets that each are the first messages of every target is too;
         * cut, the lowest SVC_SKIP_MAX stay so */
        n = got ? offsets_sort_unique(got, n) : 0;
        if (n) {
            p->nskip = n < SVC_SKIP_MAX ? n : SVC_SKIP_MAX;
            p->skip = got;
            got = NULL;
        }
        free(got);
        free(p->mem);
        p->mem = NULL;
        p->nmem = 0;
        pw_log(PW_LOG_INFO, NULL, "kafka.skip_set",
               "%s [%d] @ %lld: %zu offsets above it done already, and all below %lld (%s)",
               topic, (int)partition, (long long)committed, p->nskip, (long long)p->skip_below,
               own ? "this process's commit: its own memory counts" : "from the commit");
    }
    /* A new assignment is a current generation of the group: any doubt is settled. */
    fence_lift(s, "a new assignment");
}

/* The commit of every partition this process holds (lost ones excepted: someone else's):
 * its commit point (or, before any of its messages, the offset it was assigned at) and as
 * metadata this process's token and what is done above it. */
static size_t commit_points_cb(void *ctx, pw_intake_position *pos, size_t cap)
{
    svc *s = ctx;
    size_t n = 0;
    int64_t *done = NULL;
    for (part_state *p = s->parts; p && n < cap; p = p->next) {
        if (!p->assigned || (p->revoking && p->lost)) continue;
        int64_t at = pw_offsets_commit_point(s->ledger, p->topic, p->partition);
        if (at < 0) at = p->committed;
        if (at < 0) continue; /* nothing received, nothing committed: nothing to say */
        char *meta = malloc(PW_INTAKE_METADATA_MAX + 1);
        if (!done) done = malloc(SVC_SKIP_MAX * sizeof *done);
        if (meta && done) {
            size_t k = part_done_above(s, p, at, done);
            if (!pw_offsets_metadata_encode(meta, PW_INTAKE_METADATA_MAX + 1, s->token, at, done,
                                            k)) {
                free(meta);
                meta = NULL;
            }
        } else {
            free(meta);
            meta = NULL; /* (committed without: nothing is skipped later, all is replayed) */
        }
        pos[n++] = (pw_intake_position){p->topic, p->partition, at, meta};
    }
    free(done);
    return n;
}

static void drain_deadline_cb(pw_loop *loop, void *ctx)
{
    svc *s = ctx;
    s->drain_timer = NULL;
    if (s->stopping) return;
    s->stopping = 1;
    pw_log(PW_LOG_WARN, NULL, "worker.drain_timeout",
           "%zu requests still in flight after %ld "
           "ms; their offsets are not committed and they will be redelivered",
           s->in_flight, s->cfg->drain_timeout_ms);
    pw_loop_stop(loop);
}

static void begin_drain(svc *s, const char *why)
{
    if (s->draining) return;
    s->draining = 1;
    pw_log(PW_LOG_INFO, NULL, "worker.draining",
           "%s: stop taking requests, %zu in flight, "
           "deadline %ld ms",
           why, s->in_flight, s->cfg->drain_timeout_ms);
    pw_intake_stop(s->intake);
    s->drain_deadline_ms = pw_loop_now_ms(s->loop) + (uint64_t)s->cfg->drain_timeout_ms;
    s->drain_timer =
        pw_loop_timer_add(s->loop, (uint64_t)s->cfg->drain_timeout_ms, drain_deadline_cb, s);
    finish_loop_if_drained(s);
}

static void signal_cb(pw_loop *loop, int fd, unsigned events, void *ctx)
{
    svc *s = ctx;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        const char *name = si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT";
        if (s->draining) {
            pw_log(PW_LOG_WARN, NULL, "worker.signal", "%s again: stopping now", name);
            s->stopping = 1;
            pw_loop_stop(loop);
            return;
        }
        begin_drain(s, name);
    }
}

/* Watches for a fatal producer error (the idempotent producer cannot go on). */
static void watch_cb(pw_loop *loop, void *ctx)
{
    svc *s = ctx;
    s->watch_timer = pw_loop_timer_add(loop, 1000, watch_cb, s);
    if (pw_producer_fatal(s->producer) && !s->draining) {
        s->exit_code = 1;
        begin_drain(s, "fatal producer error");
    }
}

/* Teardown watchdog.  Once the worker has stopped, every reply is acknowledged or given up
 * and the consumer has closed or been abandoned: nothing is left to deliver or commit.  Yet
 * destroying librdkafka's handles can block for as long as a broker connection hangs (it
 * waits for its broker threads; a group coordinator stuck in connection setup held a worker
 * for a minute).  Past worker.teardown.timeout.ms the process exits with its status,
 * without freeing the rest. */
typedef struct teardown_watch {
    int pipe[2]; /* closing the write end tells the thread that teardown is over */
    long timeout_ms;
    int exit_code;
    pthread_t thread;
    int started;
} teardown_watch;

static void *teardown_watch_main(void *arg)
{
    teardown_watch *w = arg;
    struct pollfd p = {.fd = w->pipe[0], .events = POLLIN};
    int rc;
    do
        rc = poll(&p, 1, (int)w->timeout_ms); /* at most an hour (config bound) */
    while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        pw_log(PW_LOG_WARN, NULL, "worker.teardown_timeout",
               "releasing the Kafka and Azure clients took more than %ld ms; exiting with "
               "status %d without them",
               w->timeout_ms, w->exit_code);
        _exit(w->exit_code);
    }
    return NULL;
}

static void teardown_watch_start(teardown_watch *w, long timeout_ms, int exit_code)
{
    w->timeout_ms = timeout_ms;
    w->exit_code = exit_code;
    if (timeout_ms == 0) {
        /* No time at all: exit here.  A watchdog thread would race the teardown it is meant
         * to cut short (a fast teardown can finish before the thread first runs). */
        pw_log(PW_LOG_WARN, NULL, "worker.teardown_timeout",
               "worker.teardown.timeout.ms is 0; exiting with status %d without releasing the "
               "Kafka and Azure clients",
               exit_code);
        _exit(exit_code);
    }
    if (pipe2(w->pipe, O_CLOEXEC)) return; /* unwatched: teardown is merely unbounded */
    if (pthread_create(&w->thread, NULL, teardown_watch_main, w)) {
        close(w->pipe[0]);
        close(w->pipe[1]);
        return;
    }
    w->started = 1;
}

static void teardown_watch_end(teardown_watch *w)
{
    if (!w->started) return;
    close(w->pipe[1]);
    pthread_join(w->thread, NULL);
    close(w->pipe[0]);
}

static int setup_signals(svc *s, sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, old)) return -1;
    s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sigfd < 0) return -1;
    return pw_loop_fd_watch(s->loop, s->sigfd, PW_LOOP_READ, signal_cb, s);
}

int pw_service_run(const pw_config *cfg)
{
    svc s_, *s = &s_;
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->sigfd = -1;
    char err[512] = "";
    sigset_t oldmask;
    sigemptyset(&oldmask);
    signal(SIGPIPE, SIG_IGN);

    if (!(s->loop = pw_loop_new(err, sizeof err))) {
        pw_log(PW_LOG_ERROR, NULL, "worker.start_failed", "loop: %s", err);
        return 1;
    }
    if (setup_signals(s, &oldmask)) {
        pw_log(PW_LOG_ERROR, NULL, "worker.start_failed", "signals: %s", strerror(errno));
        s->exit_code = 1;
        goto out;
    }
    s->exit_code = 2;
    token_new(s->token);
    if (!(s->ledger = pw_offsets_new())) {
        snprintf(err, sizeof err, "out of memory");
        goto start_failed;
    }
    if (!(s->checker = pw_request_checker_new(cfg, err, sizeof err))) goto start_failed;
    if (!(s->azure = pw_azure_new(s->loop, &cfg->azure, err, sizeof err))) goto start_failed;
    if (!(s->exec = pw_exec_new(s->loop, s->azure, cfg, err, sizeof err))) goto start_failed;
    if (!(s->producer = pw_producer_new(s->loop, cfg, err, sizeof err))) goto start_failed;
    pw_intake_handlers h = {.on_message = on_message,
                            .on_revoked = on_revoked,
                            .on_assigned = on_assigned,
                            .commit_points = commit_points_cb,
                            .ctx = s};
    if (cfg->admin_listen[0] && !(s->admin = pw_admin_start(cfg->admin_listen, err, sizeof err)))
        goto start_failed;
    s->credential_ok = strcmp(cfg->credential_check, "on") != 0;
    pw_admin_ready(s->admin, PW_ADMIN_CREDENTIAL,
                   s->credential_ok ? NULL : "checking: obtaining a token for ARM");
    if (!(s->intake = pw_intake_new(s->loop, cfg, &h, err, sizeof err))) goto start_failed;
    update_backpressure(s); /* (paused until the credential is checked) */
    if (!s->credential_ok) credential_check(s);
    pw_exec_owner owner = {.gate = gate_cb, .dropped = dropped_cb};
    pw_exec_set_owner(s->exec, &owner);
    /* (librdkafka always holds a value for it, its default when not configured) */
    long session_ms = pw_intake_session_timeout_ms(s->intake);
    if (session_ms <= 0) {
        snprintf(err, sizeof err, "kafka session.timeout.ms could not be read");
        goto start_failed;
    }
    s->stall_ms = (uint64_t)session_ms / 3;
    s->exit_code = 0;
    s->last_tick_ms = pw_monotonic_ms();
    s->watch_timer = pw_loop_timer_add(s->loop, 1000, watch_cb, s);
    s->tick_timer = pw_loop_timer_add(s->loop, SVC_TICK_MS, tick_cb, s);
    pw_log(PW_LOG_INFO, NULL, "worker.started",
           "consuming %s in group %s; replies to %s, "
           "dead letters to %s; in-flight limit %zu",
           cfg->request_topic, pw_config_kafka_get(cfg, "group.id"), cfg->reply_topic,
           cfg->dead_letter_topic, cfg->max_in_flight);

    if (pw_loop_run(s->loop)) {
        pw_log(PW_LOG_ERROR, NULL, "worker.loop_failed", "%s", strerror(errno));
        s->exit_code = 1;
    }

    /* Shutdown, in order: no new work; deliver what is produced; commit what is stored;
     * leave the group; destroy. */
    /* The drain deadline bounds the flush too: a reply broker that is down must not hold the
     * process past it (what is not acknowledged is not committed, so it is redelivered). */
    pw_intake_stop(s->intake);
    uint64_t now = pw_loop_now_ms(s->loop);
    uint64_t budget = s->drain_deadline_ms > now ? s->drain_deadline_ms - now : 0;
    if (budget > SVC_FLUSH_TIMEOUT_MS) budget = SVC_FLUSH_TIMEOUT_MS;
    size_t left = pw_producer_flush(s->producer, (int)budget);
    if (left)
        pw_log(PW_LOG_WARN, NULL, "worker.flush_incomplete", "%zu messages not acknowledged", left);
    pw_intake_close(s->intake, SVC_CLOSE_TIMEOUT_MS);
    pw_log(PW_LOG_INFO, NULL, "worker.stopped", "%zu requests unfinished (to be redelivered)",
           s->in_flight);
    goto out;

start_failed:
    pw_log(PW_LOG_ERROR, NULL, "worker.start_failed", "%s", err);
out:;
    s->closing = 1;
    teardown_watch watch = {0};
    teardown_watch_start(&watch, cfg->teardown_timeout_ms, s->exit_code);
    if (s->drain_timer) pw_loop_timer_cancel(s->loop, s->drain_timer);
    if (s->watch_timer) pw_loop_timer_cancel(s->loop, s->watch_timer);
    pw_loop_timer_cancel(s->loop, s->tick_timer);
    pw_loop_timer_cancel(s->loop, s->probe_timer);
    pw_loop_timer_cancel(s->loop, s->revoke_timer);
    pw_loop_timer_cancel(s->loop, s->release_timer);
    pw_loop_timer_cancel(s->loop, s->commit_timer);
    pw_loop_timer_cancel(s->loop, s->credential_timer);
    pw_admin_stop(s->admin); /* (first: it reads the metrics the rest updates) */
    pw_intake_free(s->intake);
    pw_exec_free(s->exec); /* abandons unfinished requests: their contexts leak no callbacks */
    pw_producer_free(s->producer);
    pw_azure_free(s->azure);
    pw_request_checker_free(s->checker);
    pw_offsets_free(s->ledger);
    while (s->live)
        ctx_free(s->live);
    while (s->parts) {
        part_state *p = s->parts;
        s->parts = p->next;
        free(p->skip);
        free(p->mem);
        pw_deliveries_free(p->seen);
        free(p->topic);
        free(p);
    }
    if (s->sigfd >= 0) {
        pw_loop_fd_watch(s->loop, s->sigfd, 0, NULL, NULL);
        close(s->sigfd);
    }
    pw_loop_free(s->loop);
    teardown_watch_end(&watch);
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    return s->exit_code;
}
