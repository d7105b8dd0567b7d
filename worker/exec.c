/* exec.c: runs planned operations through Azure in per-target lanes and emits reply events.
 *
 * Ordering: at submit time every operation of a request is appended to the lane of its
 * target (cluster/database[/table]).  A request's operations form chains: a plain request
 * is one chain of all its operations; a rollout (pw/request.h) one chain per target, its
 * templates in order.  An operation starts when it is at the head of its lane, its lane is
 * idle, the previous operation of its chain has finished and its chain is released (a
 * rollout releases its targets wave by wave; a plain request's chain is released at once).
 * Since lanes are filled in one global order (request arrival, then operation index), and a
 * request waits only for its own earlier operations and for older requests, the oldest
 * waiting operation can always start: no deadlock.  A failed operation skips the rest of its
 * chain only; a rollout decides at the end of each wave whether the next one starts. */
#include "pw/exec.h"
#include "pw/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pw/reply.h"
#include "pw/rollout.h"
#include "pw/log.h"
#include "pw/metrics.h"
#include "pw/kql.h"
#include "pw/plan.h"
#include "pw/value.h"

#define LANE_BUCKETS 1024u
#define PROGRESS_MIN_INTERVAL_MS 1000 /* running events of one operation, at most one per */
#define PROGRESS_KEY_MAX                                                                           \
    96 /* what a running event shows: "<lro status>|<percent>|<attempts>|<queued>" */

typedef enum op_status {
    OP_PENDING = 0,
    OP_RUNNING,
    OP_SUCCEEDED,
    OP_PLANNED,
    OP_FAILED,
    OP_SKIPPED,
    OP_UNKNOWN,   /* the write was accepted, its outcome not learned in time: OutcomeUnknown */
    OP_UNCHANGED, /* the desired value was already in place: nothing written */
} op_status;

static const char *const op_status_names[] = {"pending", "running", "succeeded", "planned",
                                              "failed",  "skipped", "unknown",   "unchanged"};

typedef enum op_step { STEP_READ = 0, STEP_APPLY, STEP_REREAD } op_step;

typedef struct req_state req_state;
typedef struct lane lane;

typedef struct lane_entry {
    struct lane_entry *next;
    req_state *rs;
    size_t index;
} lane_entry;

struct lane {
    lane *next_in_bucket;
    char *key;
    lane_entry *head, *tail;
    int busy;
    lane *next_kick; /* in the executor's list of lanes to kick (kick_queued set) */
    int kick_queued;
    /* The answer the last operation's value came from (owned) and the read it stands for
     * (read_identity), kept from that operation's end to the next kick: when the next
     * operation starts right then and reads the same, that answer is its before. */
    json_t *last_answer;
    char *last_read;
};

typedef struct op_state {
    req_state *rs;
    size_t index;
    op_status status;
    op_step step;
    lane *lane;
    json_t *before, *after, *error;
    unsigned attempts;
    uint64_t start_ms, deadline_ms, duration_ms;
    char az_request_id[128], az_correlation_id[128], az_client_request_id[128];
    pw_timer *fail_timer; /* a call that could not start fails from the loop, not inline */
    char *apply_command;  /* owned: the write decided after the read (an array merge) */
    struct batch *batch;  /* the coalesced write it waits in or went with, else NULL */
    struct share *share;  /* the shared ARM read it waits in or went with, else NULL */
    json_t *answer;       /* owned: the answer its before (unchanged) or after came from, in the
                             shape of its read, for the lane's next operation */
    json_t *reused;       /* owned: the previous operation's answer, its before (reuse_timer) */
    pw_timer *reuse_timer;
    int has_lro;
    char lro_status[32];
    unsigned polls;
    int percent;
    int in_call; /* an Azure call of this operation is outstanding */
    int held;    /* running, its write waiting for the gate (no call outstanding) */
    /* running events: at most one per PROGRESS_MIN_INTERVAL_MS, and only for a change */
    uint64_t progress_at_ms;
    char progress_sent[PROGRESS_KEY_MAX]; /* lro status, percent, attempts of the last one */
    /* pacing: the budget the current call waits for ("" when none) and the time waited */
    char queued[40];
    double queue_level, queue_capacity;
    size_t queue_ahead;
    uint64_t queued_ms;
    uint64_t share_wait_at; /* when it began to wait for its cluster's shared read (0: not) */
    pw_timer *progress_timer;
} op_state;

/* One chain of a request: a plain request's operations, or a rollout target's. */
typedef struct chain {
    size_t next; /* its next operation (request index); its end once it is over */
    int failed;  /* an operation failed or ended unknown: the rest were skipped */
} chain;

/* A rollout's progress (rs->ro set). */
typedef struct rollout_state {
    size_t ends[PW_ROLLOUT_WAVES_MAX]; /* wave w: targets [ends[w-1], ends[w]) */
    size_t waves, wave;                /* wave count; the current wave */
    pw_reply_counts counts[PW_ROLLOUT_WAVES_MAX];
    size_t failed_targets; /* in all waves so far */
    int halted;            /* past the failure budget: the later waves are skipped */
    size_t *results;       /* finished targets not reported yet (capacity: every target) */
    size_t n_results;
    uint64_t results_at_ms; /* last results event */
    pw_timer *results_timer, *wave_timer;
    pw_rollout_lister *lister; /* a selector's listing in flight */
} rollout_state;

struct req_state {
    pw_exec *ex;
    req_state *prev, *next;
    pw_request *req;
    pw_plan *plan;
    pw_exec_event_cb cb;
    void *ctx;
    pw_timer *start_timer;
    unsigned seq;
    size_t count;    /* operations */
    size_t per;      /* operations a chain: count for a plain request, a rollout's templates */
    size_t chains;   /* 1 for a plain request (0 without operations), a rollout's targets */
    size_t released; /* chains that may run: all of a plain request's, a rollout's waves so far */
    size_t done;     /* chains over */
    chain *chain;
    int started, failed;
    long failed_index;
    const pw_request_rollout *ro; /* NULL: a plain request */
    rollout_state *rollout;
    op_state *ops;
};

struct pw_exec {
    pw_loop *loop;
    pw_azure *azure;
    const pw_config *cfg;
    lane *buckets[LANE_BUCKETS];
    req_state *reqs;
    size_t in_flight;
    long op_timeout_ms;
    long queue_timeout_ms; /* worker.queue.timeout.ms: queued time per operation, in all */
    size_t coalesce_max;   /* worker.coalesce.max, at most BATCH_MAX */
    char worker_id[128];
    pw_exec_owner owner;
    pw_timer *recheck_timer;
    struct batch *batches; /* coalesced writes: one per key with members waiting or in flight */
    struct share *shares;  /* shared ARM reads: one per database list with members */
    lane *kicks;           /* lanes to kick once the current change is done (run_kicks) */
};

static void kick(pw_exec *ex, lane *ln);
static void issue(op_state *os, op_step step);
static void issue_call(op_state *os, op_step step);
static int share_join(op_state *os, op_step step);
static void share_resume(struct share *sh);
static int share_abandon(op_state *os);
static void apply_op(op_state *os);
static void schedule_recheck(pw_exec *ex);

static pw_exec_gate gate_of(const req_state *rs)
{
    return rs->ex->owner.gate ? rs->ex->owner.gate(rs->ctx) : PW_EXEC_GO;
}

/* ------------------------------------------------------------------- lanes */

static unsigned hash_key(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % LANE_BUCKETS;
}

static lane *lane_get(pw_exec *ex, const char *key)
{
    unsigned b = hash_key(key);
    for (lane *ln = ex->buckets[b]; ln; ln = ln->next_in_bucket)
        if (strcmp(ln->key, key) == 0) return ln;
    lane *ln = calloc(1, sizeof *ln);
    if (!ln || !(ln->key = strdup(key))) {
        free(ln);
        return NULL;
    }
    ln->next_in_bucket = ex->buckets[b];
    ex->buckets[b] = ln;
    return ln;
}

static void lane_drop(pw_exec *ex, lane *ln)
{
    lane **pp = &ex->buckets[hash_key(ln->key)];
    while (*pp && *pp != ln)
        pp = &(*pp)->next_in_bucket;
    if (*pp) *pp = ln->next_in_bucket;
    json_decref(ln->last_answer);
    free(ln->last_read);
    free(ln->key);
    free(ln);
}

static void lane_forget(lane *ln)
{
    json_decref(ln->last_answer);
    free(ln->last_read);
    ln->last_answer = NULL;
    ln->last_read = NULL;
}

/* What op's read asks, as text: two operations with the same identity read the same. */
static char *read_identity(const pw_plan_op *pop)
{
    const pw_plan_call *c = &pop->read;
    char *id = NULL;
    int n = c->route == PW_ROUTE_ARM
                ? asprintf(&id, "arm %s %s", c->method, c->path ? c->path : "")
                : asprintf(&id, "kusto %s\n%s\n%s", c->cluster_uri ? c->cluster_uri : "",
                           c->database ? c->database : "", c->command ? c->command : "");
    return n < 0 ? NULL : id;
}

/* Removes the entry of (rs, index) from its lane.  Returns 1 when it was the head. */
static int lane_remove(lane *ln, const req_state *rs, size_t index)
{
    lane_entry **pp = &ln->head, *prev = NULL;
    while (*pp && !((*pp)->rs == rs && (*pp)->index == index)) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    lane_entry *e = *pp;
    if (!e) return 0;
    int was_head = e == ln->head;
    *pp = e->next;
    if (ln->tail == e) ln->tail = prev;
    free(e);
    return was_head;
}

/* Marks ln to be kicked by run_kicks (once, however often it is queued).  A queued lane is
 * not dropped meanwhile (kick leaves it). */
static void queue_kick(pw_exec *ex, lane *ln)
{
    if (!ln || ln->kick_queued) return;
    ln->kick_queued = 1;
    ln->next_kick = ex->kicks;
    ex->kicks = ln;
}

/* Kicks every queued lane.  A kick may start operations that end at once and queue more:
 * they are kicked too.  O(lanes queued). */
static void run_kicks(pw_exec *ex)
{
    while (ex->kicks) {
        lane *ln = ex->kicks;
        ex->kicks = ln->next_kick;
        ln->kick_queued = 0;
        kick(ex, ln);
    }
}

/* ------------------------------------------------------------------ events */

/* Operation i as the reply contract shows it (borrows from rs). */
static pw_reply_op op_view(const req_state *rs, size_t i, int with_plan)
{
    const op_state *os = &rs->ops[i];
    uint64_t dur =
        os->status == OP_RUNNING ? pw_loop_now_ms(rs->ex->loop) - os->start_ms : os->duration_ms;
    return (pw_reply_op){
        .index = i,
        .op = pw_plan_op_at(rs->plan, i)->op,
        .status = op_status_names[os->status],
        .before = os->before,
        .after = os->after,
        .error = os->error,
        .attempts = os->attempts,
        .duration_ms = dur,
        .az_request_id = os->az_request_id,
        .az_correlation_id = os->az_correlation_id,
        .az_client_request_id = os->az_client_request_id,
        .has_lro = os->has_lro,
        .lro_status = os->lro_status,
        .polls = os->polls,
        .percent = os->percent,
        .plan = with_plan ? rs->plan : NULL,
        .queued = os->queued[0] ? os->queued : NULL,
        .queue_level = os->queue_level,
        .queue_capacity = os->queue_capacity,
        .queue_ahead = os->queue_ahead,
        .queued_ms = os->queued_ms,
    };
}

/* Builds and hands over one event; terminal events free the request afterwards. */
static void emit(req_state *rs, const char *status, long op_index, int terminal)
{
    pw_exec *ex = rs->ex;
    int accepted = strcmp(status, "accepted") == 0;
    pw_reply_op small[16], *ops = rs->count <= 16 ? small : malloc(rs->count * sizeof *ops);
    json_t *ev = NULL;
    if (ops) {
        for (size_t i = 0; i < rs->count; i++)
            ops[i] = op_view(rs, i, accepted);
        int with_error = terminal && rs->failed && rs->failed_index >= 0;
        pw_reply_request r = {
            .request_id = pw_request_id(rs->req),
            .status = status,
            .worker_id = ex->worker_id,
            .sequence = ++rs->seq,
            .dry_run = pw_request_dry_run(rs->req),
            .operation_index = op_index,
            .ops = ops,
            .count = rs->count,
            .error = with_error ? rs->ops[rs->failed_index].error : NULL,
            .error_index = with_error ? rs->failed_index : -1,
        };
        ev = pw_reply_request_event(&r);
        if (ops != small) free(ops);
    }
    if (!ev)
        pw_log(PW_LOG_ERROR, pw_request_id(rs->req), "exec.nomem", "event %s not built", status);
    if (ev || terminal) rs->cb(rs->ctx, ev, terminal); /* takes ownership of ev */
}

static void req_free(req_state *rs)
{
    pw_exec *ex = rs->ex;
    if (rs->prev)
        rs->prev->next = rs->next;
    else
        ex->reqs = rs->next;
    if (rs->next) rs->next->prev = rs->prev;
    if (rs->start_timer) pw_loop_timer_cancel(ex->loop, rs->start_timer);
    for (size_t i = 0; i < rs->count; i++) {
        if (rs->ops[i].fail_timer) pw_loop_timer_cancel(ex->loop, rs->ops[i].fail_timer);
        if (rs->ops[i].progress_timer) pw_loop_timer_cancel(ex->loop, rs->ops[i].progress_timer);
        if (rs->ops[i].reuse_timer) pw_loop_timer_cancel(ex->loop, rs->ops[i].reuse_timer);
        json_decref(rs->ops[i].answer);
        json_decref(rs->ops[i].reused);
        json_decref(rs->ops[i].before);
        json_decref(rs->ops[i].after);
        json_decref(rs->ops[i].error);
        free(rs->ops[i].apply_command);
    }
    if (rs->rollout) {
        if (rs->rollout->results_timer) pw_loop_timer_cancel(ex->loop, rs->rollout->results_timer);
        if (rs->rollout->wave_timer) pw_loop_timer_cancel(ex->loop, rs->rollout->wave_timer);
        pw_rollout_lister_free(rs->rollout->lister);
        free(rs->rollout->results);
        free(rs->rollout);
    }
    free(rs->ops);
    free(rs->chain);
    pw_plan_free(rs->plan);
    pw_request_free(rs->req);
    free(rs);
}

/* ---------------------------------------------------------------- rollouts */

/* The outcome of chain c (over): failed, else planned (dry run), succeeded when something was
 * written, unchanged when nothing needed to be. */
static const char *chain_status(const req_state *rs, size_t c)
{
    if (rs->chain[c].failed) return "failed";
    int planned = 0, written = 0;
    for (size_t i = c * rs->per; i < (c + 1) * rs->per; i++) {
        planned |= rs->ops[i].status == OP_PLANNED;
        written |= rs->ops[i].status == OP_SUCCEEDED;
    }
    return planned ? "planned" : written ? "succeeded" : "unchanged";
}

/* Wave of target t. */
static size_t wave_of(const rollout_state *ro, size_t t)
{
    size_t w = 0;
    while (w + 1 < ro->waves && t >= ro->ends[w])
        w++;
    return w;
}

/* A rollout event: the frame and its "rollout" member (taken). */
static void emit_rollout(req_state *rs, const char *status, json_t *member, const json_t *error,
                         int terminal)
{
    pw_reply_request r = {.request_id = pw_request_id(rs->req),
                          .status = status,
                          .worker_id = rs->ex->worker_id,
                          .sequence = ++rs->seq,
                          .dry_run = pw_request_dry_run(rs->req),
                          .operation_index = -1,
                          .error = error,
                          .error_index = -1,
                          .rollout = member};
    json_t *ev = member ? pw_reply_request_event(&r) : NULL;
    if (!ev)
        pw_log(PW_LOG_ERROR, pw_request_id(rs->req), "exec.nomem", "event %s not built", status);
    if (ev || terminal) rs->cb(rs->ctx, ev, terminal); /* takes ownership of ev */
}

/* The running events of the targets that finished since the last one, chunked. */
static void results_flush(req_state *rs)
{
    rollout_state *ro = rs->rollout;
    size_t from = 0;
    if (ro->results_timer) {
        pw_loop_timer_cancel(rs->ex->loop, ro->results_timer);
        ro->results_timer = NULL;
    }
    ro->results_at_ms = pw_loop_now_ms(rs->ex->loop);
    while (from < ro->n_results) {
        json_t *results = json_array();
        size_t bytes = 0, wave = wave_of(ro, ro->results[from]);
        while (results && from < ro->n_results) {
            size_t t = ro->results[from];
            pw_reply_op small[16], *ops = rs->per <= 16 ? small : malloc(rs->per * sizeof *ops);
            json_t *one = NULL;
            if (ops) {
                for (size_t k = 0; k < rs->per; k++) {
                    ops[k] = op_view(rs, t * rs->per + k, pw_request_dry_run(rs->req));
                    ops[k].index = k;
                }
                pw_reply_target view = {.index = t,
                                        .wave = wave_of(ro, t),
                                        .status = chain_status(rs, t),
                                        .target = pw_request_target_at(rs->req, t),
                                        .ops = ops,
                                        .count = rs->per};
                one = pw_reply_target_result(&view);
                if (ops != small) free(ops);
            }
            int rc = pw_reply_results_add(results, &bytes, one);
            if (rc == 0) break;
            from++; /* (a result that could not be built is lost: logged below) */
            if (rc < 0)
                pw_log(PW_LOG_ERROR, pw_request_id(rs->req), "exec.nomem",
                       "target %zu's result not reported", t);
        }
        if (!results) from++;
        emit_rollout(rs, "running",
                     results ? json_pack("{s:I, s:o}", "wave", (json_int_t)wave, "results", results)
                             : NULL,
                     NULL, 0);
    }
    ro->n_results = 0;
}

static void results_due(pw_loop *loop, void *ctx)
{
    (void)loop;
    req_state *rs = ctx;
    rs->rollout->results_timer = NULL;
    results_flush(rs);
}

/* Target t finished: reported with the next results event (at most one per
 * PROGRESS_MIN_INTERVAL_MS, or once a chunk is full). */
static void results_push(req_state *rs, size_t t)
{
    rollout_state *ro = rs->rollout;
    pw_exec *ex = rs->ex;
    ro->results[ro->n_results++] = t;
    if (ro->n_results >= PW_REPLY_RESULTS_MAX) {
        results_flush(rs);
        return;
    }
    if (ro->results_timer) return;
    uint64_t now = pw_loop_now_ms(ex->loop), due = ro->results_at_ms + PROGRESS_MIN_INTERVAL_MS;
    ro->results_timer = pw_loop_timer_add(ex->loop, due > now ? due - now : 0, results_due, rs);
    if (!ro->results_timer) results_flush(rs);
}

/* Operations [from, to) of rs will not run: skipped, out of their lanes (kicked later). */
static void skip_ops(req_state *rs, size_t from, size_t to)
{
    for (size_t j = from; j < to; j++) {
        rs->ops[j].status = OP_SKIPPED;
        if (rs->plan) {
            const pw_request_op *rop = pw_plan_op_at(rs->plan, j)->op;
            pw_metrics_add(PW_M_OPERATIONS, 1, rop->kind_name, pw_ops_route_name(rop->route),
                           op_status_names[OP_SKIPPED]);
        }
        lane *lj = rs->ops[j].lane;
        if (lj && lane_remove(lj, rs, j)) queue_kick(rs->ex, lj);
    }
}

/* Lets the chains of the next wave run (their lanes are kicked by run_kicks). */
static void release_wave(req_state *rs)
{
    rollout_state *ro = rs->rollout;
    size_t from = rs->released;
    rs->released = ro->ends[ro->wave];
    pw_log(PW_LOG_INFO, pw_request_id(rs->req), "rollout.wave",
           "wave %zu of %zu: targets %zu to %zu", ro->wave, ro->waves, from, rs->released - 1);
    for (size_t c = from; c < rs->released; c++)
        queue_kick(rs->ex, rs->ops[c * rs->per].lane);
}

static void wave_due(pw_loop *loop, void *ctx)
{
    (void)loop;
    req_state *rs = ctx;
    pw_exec *ex = rs->ex;
    rs->rollout->wave_timer = NULL;
    release_wave(rs);
    run_kicks(ex);
}

static void finish_request(req_state *rs);

/* The current wave is over: its event, then the next wave (after the pause), or the end. */
static void wave_over(req_state *rs)
{
    rollout_state *ro = rs->rollout;
    size_t w = ro->wave;
    int last = rs->released == rs->chains;
    ro->halted = !last && ro->failed_targets > rs->ro->failure_budget;
    results_flush(rs);
    json_t *member = json_pack("{s:I, s:o, s:I, s:I, s:s}", "wave", (json_int_t)w, "counts",
                               pw_reply_counts_json(&ro->counts[w]), "failedTargets",
                               (json_int_t)ro->failed_targets, "failureBudget",
                               (json_int_t)rs->ro->failure_budget, "next",
                               last         ? "end"
                               : ro->halted ? "halt"
                                            : "wave");
    emit_rollout(rs, "wave", member, NULL, 0);
    if (ro->halted) {
        /* the later waves never start: each of their targets is skipped */
        for (size_t v = w + 1; v < ro->waves; v++)
            ro->counts[v].skipped = ro->counts[v].targets;
        skip_ops(rs, rs->released * rs->per, rs->count);
        rs->done = rs->chains;
    }
    if (ro->halted || last) {
        finish_request(rs); /* rs is gone */
        return;
    }
    ro->wave++;
    if (rs->ro->pause_s) {
        ro->wave_timer =
            pw_loop_timer_add(rs->ex->loop, (uint64_t)rs->ro->pause_s * 1000, wave_due, rs);
        if (ro->wave_timer) return;
    }
    release_wave(rs);
}

/* Chain c is over.  A plain request is over with its chain; a rollout counts the target and
 * ends its wave when it was the wave's last. */
static void chain_over(req_state *rs, size_t c)
{
    rs->done++;
    if (!rs->ro) {
        finish_request(rs);
        return;
    }
    rollout_state *ro = rs->rollout;
    const char *st = chain_status(rs, c);
    pw_reply_counts *n = &ro->counts[ro->wave];
    if (!strcmp(st, "failed")) {
        n->failed++;
        ro->failed_targets++;
    } else if (!strcmp(st, "planned")) {
        n->planned++;
    } else if (!strcmp(st, "succeeded")) {
        n->succeeded++;
    } else {
        n->unchanged++;
    }
    results_push(rs, c);
    if (rs->done == rs->released) wave_over(rs);
}

/* ------------------------------------------------------------------ events */

static void finish_request(req_state *rs)
{
    pw_exec *ex = rs->ex;
    const char *rid = pw_request_id(rs->req);
    if (rs->ro) {
        rollout_state *ro = rs->rollout;
        pw_reply_counts all = {0};
        json_t *waves = json_array();
        for (size_t w = 0; w < ro->waves; w++) {
            const pw_reply_counts *n = &ro->counts[w];
            all.targets += n->targets;
            all.succeeded += n->succeeded;
            all.unchanged += n->unchanged;
            all.planned += n->planned;
            all.failed += n->failed;
            all.skipped += n->skipped;
            json_t *one = pw_reply_counts_json(n);
            if (one) json_object_set_new(one, "wave", json_integer((json_int_t)w));
            json_array_append_new(waves, one);
        }
        char msg[256];
        json_t *error = NULL;
        if (ro->halted) {
            snprintf(msg, sizeof msg,
                     "%zu failed targets by the end of wave %zu, over the failure budget of %zu: "
                     "%zu targets of later waves skipped",
                     ro->failed_targets, ro->wave, rs->ro->failure_budget, all.skipped);
            error = pw_reply_error("RolloutHalted", msg, 0);
        } else if (all.failed) {
            snprintf(msg, sizeof msg,
                     "%zu of %zu targets failed (within the failure budget of %zu): every wave "
                     "ran",
                     all.failed, all.targets, rs->ro->failure_budget);
            error = pw_reply_error("TargetsFailed", msg, 0);
        }
        pw_log(error ? PW_LOG_WARN : PW_LOG_INFO, rid,
               error ? "rollout.failed" : "rollout.succeeded",
               "%zu targets: %zu succeeded, %zu unchanged, %zu planned, %zu failed, %zu skipped",
               all.targets, all.succeeded, all.unchanged, all.planned, all.failed, all.skipped);
        json_t *member = json_pack("{s:I, s:o, s:o}", "targets", (json_int_t)rs->chains, "waves",
                                   waves, "totals", pw_reply_counts_json(&all));
        emit_rollout(rs, error ? "failed" : "succeeded", member, error, 1);
        json_decref(error);
    } else {
        pw_log(rs->failed ? PW_LOG_WARN : PW_LOG_INFO, rid,
               rs->failed ? "request.failed" : "request.succeeded", "%zu operations%s", rs->count,
               pw_request_dry_run(rs->req) ? " (dry run)" : "");
        emit(rs, rs->failed ? "failed" : "succeeded", -1, 1);
    }
    ex->in_flight--;
    req_free(rs);
}

/* -------------------------------------------------------------- operations */

static void set_error(op_state *os, const char *code, const char *message, int retryable,
                      int http_status, const char *azure_code)
{
    json_decref(os->error);
    os->error = pw_reply_op_error(code, message, retryable, http_status, azure_code, NULL);
}

static void record_ids(op_state *os, const pw_azure_result *r)
{
    snprintf(os->az_request_id, sizeof os->az_request_id, "%s", r->request_id);
    snprintf(os->az_correlation_id, sizeof os->az_correlation_id, "%s", r->correlation_id);
    snprintf(os->az_client_request_id, sizeof os->az_client_request_id, "%s", r->client_request_id);
}

/* The operation is over (any final status): free its lane, move its chain on; a failure
 * skips the rest of the chain. */
static void finish_op(op_state *os, op_status status)
{
    req_state *rs = os->rs;
    pw_exec *ex = rs->ex;
    lane *ln = os->lane;
    int stops = status == OP_FAILED || status == OP_UNKNOWN; /* the chain ends failed */
    os->status = status;
    os->held = 0;
    os->duration_ms = pw_loop_now_ms(ex->loop) - os->start_ms;
    if (os->progress_timer) {
        pw_loop_timer_cancel(ex->loop, os->progress_timer);
        os->progress_timer = NULL;
    }
    const pw_request_op *rop = pw_plan_op_at(rs->plan, os->index)->op;
    pw_metrics_add(PW_M_OPERATIONS, 1, rop->kind_name, pw_ops_route_name(rop->route),
                   op_status_names[status]);
    pw_log(stops ? PW_LOG_WARN : PW_LOG_INFO, pw_request_id(rs->req), "op.finished",
           "operation %zu %s: %s in %llu ms", os->index,
           pw_plan_op_at(rs->plan, os->index)->op->kind_name, op_status_names[status],
           (unsigned long long)os->duration_ms);
    ln->busy = 0;
    lane_forget(ln);
    if ((status == OP_SUCCEEDED || status == OP_UNCHANGED) && os->answer) {
        ln->last_read = read_identity(pw_plan_op_at(rs->plan, os->index));
        if (ln->last_read) {
            ln->last_answer = os->answer;
            os->answer = NULL;
        }
    }
    lane_remove(ln, rs, os->index);
    queue_kick(ex, ln);
    size_t c = os->index / rs->per, end = (c + 1) * rs->per;
    chain *ch = &rs->chain[c];
    ch->next = os->index + 1;
    if (stops) {
        ch->failed = 1;
        if (!rs->failed) {
            rs->failed = 1;
            rs->failed_index = (long)os->index;
        }
        skip_ops(rs, ch->next, end);
        ch->next = end;
    }
    if (ch->next < end)
        queue_kick(ex, rs->ops[ch->next].lane);
    else
        chain_over(rs, c); /* rs may be gone from here on */
    run_kicks(ex);
}

static void fail_op(op_state *os, const pw_azure_result *r)
{
    int unknown = r->code && strcmp(r->code, PW_AZ_CODE_OUTCOME_UNKNOWN) == 0;
    json_decref(os->error);
    os->error = pw_reply_op_error(r->code ? r->code : PW_AZ_CODE_PROTOCOL, r->message, r->retryable,
                                  r->http_status, r->azure_code, unknown ? r->operation_url : NULL);
    record_ids(os, r);
    finish_op(os, unknown ? OP_UNKNOWN : OP_FAILED);
}

/* What a running event of os shows that a reader would call a change. */
static void progress_key(const op_state *os, char out[PROGRESS_KEY_MAX])
{
    char key[PROGRESS_KEY_MAX]; /* (out may be os's own progress_sent) */
    snprintf(key, sizeof key, "%s|%d|%u|%s", os->lro_status, os->percent, os->attempts, os->queued);
    memcpy(out, key, sizeof key);
}

/* Emits os's running event if it shows a change since the last one, at most one per
 * PROGRESS_MIN_INTERVAL_MS: a change inside the interval is emitted when it ends. */
static void progress_emit(op_state *os);

static void progress_due(pw_loop *loop, void *ctx)
{
    (void)loop;
    op_state *os = ctx;
    os->progress_timer = NULL;
    progress_emit(os);
}

static void progress_emit(op_state *os)
{
    pw_exec *ex = os->rs->ex;
    if (os->rs->ro) return; /* a rollout reports its targets as they finish */
    char key[sizeof os->progress_sent];
    progress_key(os, key);
    if (strcmp(key, os->progress_sent) == 0 || os->progress_timer) return;
    uint64_t now = pw_loop_now_ms(ex->loop);
    if (os->progress_at_ms && now < os->progress_at_ms + PROGRESS_MIN_INTERVAL_MS) {
        os->progress_timer = pw_loop_timer_add(
            ex->loop, os->progress_at_ms + PROGRESS_MIN_INTERVAL_MS - now, progress_due, os);
        if (os->progress_timer) return; /* (no timer: emit now rather than lose it) */
    }
    os->progress_at_ms = now;
    memcpy(os->progress_sent, key, sizeof key);
    emit(os->rs, "running", (long)os->index, 0);
}

static void on_progress(void *ctx, const pw_azure_progress *p)
{
    op_state *os = ctx;
    os->has_lro = 1;
    snprintf(os->lro_status, sizeof os->lro_status, "%s", p->lro_status ? p->lro_status : "");
    os->polls = p->polls;
    os->percent = p->percent_complete;
    progress_emit(os);
}

/* After the write: the value read back must hold what was asked for. */
static void verify_after(op_state *os, const pw_plan_op *pop)
{
    if (pw_value_verified(pop->op, pop->desired, os->after)) {
        finish_op(os, OP_SUCCEEDED);
        return;
    }
    json_decref(os->error);
    os->error = pw_reply_op_error("VerificationFailed",
                                  "the value read after the write differs from the desired one "
                                  "(error.desired, error.actual)",
                                  0, 0, NULL, NULL);
    if (os->error) {
        json_object_set(os->error, "desired", pop->desired);
        json_object_set_new(os->error, "actual", os->after ? json_incref(os->after) : json_null());
    }
    pw_log(PW_LOG_WARN, pw_request_id(os->rs->req), "op.verification_failed",
           "operation %zu: the value read back is not the desired one", os->index);
    finish_op(os, OP_FAILED);
}

/* A read that found nothing where "nothing" is a value (an ARM principal assignment). */
static int read_absent(const pw_plan_op *pop, const pw_azure_result *r)
{
    return pop->read_absent_ok && r->http_status == 404;
}

/* A call waits for an Azure budget (pacing): a running event says which. */
static void on_queued(void *ctx, const pw_azure_progress *p)
{
    op_state *os = ctx;
    snprintf(os->queued, sizeof os->queued, "%s",
             p->queued && !strncmp(p->queued, "queued: ", 8) ? p->queued + 8
             : p->queued                                     ? p->queued
                                                             : "");
    os->queue_level = p->level;
    os->queue_capacity = p->capacity;
    os->queue_ahead = p->ahead;
    progress_emit(os);
}

static void batch_resume(struct batch *b);

/* What every ended call of os counts: its attempts, and its time queued for Azure's budgets,
 * which does not count against the operation's deadline. */
static void call_ended(op_state *os, const pw_azure_result *r)
{
    os->in_call = 0;
    os->attempts += r->attempts;
    os->queued[0] = '\0';
    os->queued_ms += r->queued_ms;
    if (os->deadline_ms) os->deadline_ms += r->queued_ms;
}

static void op_done(void *ctx, const pw_azure_result *r);

/* An operation's own call ended; a write that held its key's batch lets the batch go on. */
static void on_done(void *ctx, const pw_azure_result *r)
{
    op_state *os = ctx;
    struct batch *b = os->step == STEP_APPLY ? os->batch : NULL;
    struct share *sh = os->step != STEP_APPLY ? os->share : NULL;
    os->batch = NULL;
    os->share = NULL;
    op_done(ctx, r);
    if (b) batch_resume(b);
    if (sh) share_resume(sh);
}

static void op_done(void *ctx, const pw_azure_result *r)
{
    op_state *os = ctx;
    req_state *rs = os->rs;
    const pw_plan_op *pop = pw_plan_op_at(rs->plan, os->index);
    char err[256];
    json_t *value = NULL;

    call_ended(os, r);
    if (os->step == STEP_APPLY) {
        record_ids(os, r);
        if (os->has_lro && r->ok) snprintf(os->lro_status, sizeof os->lro_status, "Succeeded");
    }
    int absent = !r->ok && os->step != STEP_APPLY && read_absent(pop, r);
    if (!r->ok && !absent) {
        if (os->step == STEP_REREAD) {
            /* applied; only the confirmation read failed */
            pw_log(PW_LOG_WARN, pw_request_id(rs->req), "op.reread_failed", "%s: %s",
                   r->code ? r->code : "?", r->message);
            finish_op(os, OP_SUCCEEDED);
            return;
        }
        fail_op(os, r);
        return;
    }
    int parsed = pw_plan_value(pop, absent ? NULL : r->body, &value, err, sizeof err) == 0;
    switch (os->step) {
    case STEP_READ:
        if (!parsed) {
            record_ids(os, r);
            set_error(os, PW_AZ_CODE_PROTOCOL, err, 0, r->http_status, NULL);
            finish_op(os, OP_FAILED);
            return;
        }
        os->before = value;
        if (pw_value_unchanged(pop->op, pop->desired, value)) {
            /* already in place: no write (a redelivered or repeated request writes nothing) */
            os->after = json_incref(value);
            json_decref(os->answer);
            os->answer = json_incref(r->body);
            record_ids(os, r);
            finish_op(os, OP_UNCHANGED);
            return;
        }
        if (pw_request_dry_run(rs->req)) {
            os->after = json_incref(pop->desired);
            record_ids(os, r);
            finish_op(os, OP_PLANNED);
            return;
        }
        os->apply_command = pw_plan_merge_missing(pop, value);
        apply_op(os);
        return;
    case STEP_APPLY:
        if (parsed && !pop->after_from_reread) {
            /* the write's answer is its value, in the shape of the read */
            os->after = value;
            json_decref(os->answer);
            os->answer = json_incref(r->body);
            verify_after(os, pop);
            return;
        }
        json_decref(value);
        issue(os, STEP_REREAD);
        return;
    case STEP_REREAD:
        os->after = parsed ? value : NULL;
        if (!parsed) {
            pw_log(PW_LOG_WARN, pw_request_id(rs->req), "op.reread_unreadable", "%s", err);
            finish_op(os, OP_SUCCEEDED);
            return;
        }
        json_decref(os->answer);
        os->answer = json_incref(r->body);
        verify_after(os, pop);
        return;
    }
}

/* ------------------------------------------------------------ coalescing */

/* Writes that set the same policy to the same value on tables of one database go as one
 * `.alter tables (…)` command (pw_plan_coalesce_key).  Per key at most one write is in
 * flight; the writes ready meanwhile wait and go together when it ends (up to
 * worker.coalesce.max tables a command), each operation still reported on its own.  A coalesced
 * command that fails is sent again table by table, so one bad table fails alone. */
#define BATCH_MAX 256 /* the most worker.coalesce.max may say */

typedef struct batch {
    struct batch *next;
    pw_exec *ex;
    char *key;
    op_state **waiting;
    size_t n_waiting, cap_waiting;
    op_state *sent[BATCH_MAX]; /* members of the coalesced command in flight */
    size_t n_sent;
    int in_flight; /* a write of this key is outstanding (coalesced or alone) */
    pw_timer *flush_timer;
    char *command;
} batch;

static void batch_free(batch *b)
{
    pw_exec *ex = b->ex;
    for (batch **p = &ex->batches; *p; p = &(*p)->next) {
        if (*p == b) {
            *p = b->next;
            break;
        }
    }
    if (b->flush_timer) pw_loop_timer_cancel(ex->loop, b->flush_timer);
    free(b->waiting);
    free(b->command);
    free(b->key);
    free(b);
}

static void batch_flush(pw_loop *loop, void *ctx);

/* Goes on after a write of the key ended: what waits goes next, an idle batch goes away. */
static void batch_resume(batch *b)
{
    b->in_flight = 0;
    b->n_sent = 0;
    if (!b->n_waiting) {
        batch_free(b);
        return;
    }
    if (!b->flush_timer) b->flush_timer = pw_loop_timer_add(b->ex->loop, 0, batch_flush, b);
    if (!b->flush_timer) batch_flush(b->ex->loop, b);
}

static int batch_push(batch *b, op_state *os)
{
    if (b->n_waiting == b->cap_waiting) {
        size_t cap = b->cap_waiting ? b->cap_waiting * 2 : 16;
        op_state **g = realloc(b->waiting, cap * sizeof *g);
        if (!g) return -1;
        b->waiting = g;
        b->cap_waiting = cap;
    }
    b->waiting[b->n_waiting++] = os;
    return 0;
}

/* The write of os, after its read: alone, or with others of its key. */
static void apply_op(op_state *os)
{
    pw_exec *ex = os->rs->ex;
    const pw_plan_op *pop = pw_plan_op_at(os->rs->plan, os->index);
    char *key = os->apply_command || ex->coalesce_max < 2 || gate_of(os->rs) != PW_EXEC_GO
                    ? NULL
                    : pw_plan_coalesce_key(pop);
    if (!key) {
        issue(os, STEP_APPLY);
        return;
    }
    batch *b = ex->batches;
    while (b && strcmp(b->key, key) != 0)
        b = b->next;
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b) {
            free(key);
            issue(os, STEP_APPLY);
            return;
        }
        b->ex = ex;
        b->key = key;
        b->next = ex->batches;
        ex->batches = b;
    } else {
        free(key);
    }
    if (batch_push(b, os) != 0) {
        if (!b->in_flight && !b->n_waiting) batch_free(b);
        issue(os, STEP_APPLY);
        return;
    }
    os->step = STEP_APPLY;
    os->in_call = 1; /* it waits for its write: not to be dropped meanwhile */
    os->batch = b;
    if (!b->in_flight && !b->flush_timer) {
        b->flush_timer = pw_loop_timer_add(ex->loop, 0, batch_flush, b);
        if (!b->flush_timer) batch_flush(ex->loop, b);
    }
}

/* Sends os's own write (it leaves the batch); the batch waits for it when hold is set. */
static void send_alone(batch *b, op_state *os, int hold)
{
    os->in_call = 0;
    os->batch = hold ? b : NULL;
    if (hold) b->in_flight = 1;
    issue(os, STEP_APPLY);
}

static void batch_on_queued(void *ctx, const pw_azure_progress *p)
{
    batch *b = ctx;
    for (size_t i = 0; i < b->n_sent; i++)
        on_queued(b->sent[i], p);
}

static void batch_on_done(void *ctx, const pw_azure_result *r)
{
    batch *b = ctx;
    size_t n = b->n_sent;
    op_state *members[BATCH_MAX];
    memcpy(members, b->sent, n * sizeof *members);
    b->n_sent = 0;
    /* in_flight stays set while members are processed (they may add to the batch): what
     * they add goes at batch_resume below */
    for (size_t i = 0; i < n; i++) {
        op_state *os = members[i];
        const pw_plan_op *pop = pw_plan_op_at(os->rs->plan, os->index);
        os->batch = NULL;
        call_ended(os, r);
        if (!r->ok) { /* each alone: one bad table fails by itself */
            issue(os, STEP_APPLY);
            continue;
        }
        record_ids(os, r);
        json_t *doc = NULL, *value = NULL;
        char err[256];
        if (pw_kql_parse_policy_for(r->body, pop->op->table, &doc, err, sizeof err) == 0 &&
            pw_value_from_policy(pop->op, doc, &value, err, sizeof err) == 0) {
            os->after = value;
            verify_after(os, pop);
        } else {
            issue(os, STEP_REREAD);
        }
        json_decref(doc);
    }
    batch_resume(b);
}

static void batch_flush(pw_loop *loop, void *ctx)
{
    (void)loop;
    batch *b = ctx;
    pw_exec *ex = b->ex;
    b->flush_timer = NULL;
    if (b->in_flight) return;
    /* members whose owner no longer lets them write leave, to be held or dropped alone */
    size_t n = 0, rest = 0, total = b->n_waiting;
    for (size_t i = 0; i < total; i++) {
        op_state *os = b->waiting[i];
        if (gate_of(os->rs) != PW_EXEC_GO)
            send_alone(b, os, 0);
        else if (n < ex->coalesce_max)
            b->sent[n++] = os;
        else
            b->waiting[rest++] = os; /* the next command */
    }
    b->n_waiting = rest;
    if (n == 0) {
        batch_resume(b);
        return;
    }
    if (n == 1) {
        b->n_sent = 0;
        send_alone(b, b->sent[0], 1);
        return;
    }
    const char *tables[BATCH_MAX];
    uint64_t deadline = 0;
    long queue_timeout = ex->queue_timeout_ms;
    for (size_t i = 0; i < n; i++) {
        op_state *os = b->sent[i];
        tables[i] = pw_plan_op_at(os->rs->plan, os->index)->op->table;
        if (os->deadline_ms && (!deadline || os->deadline_ms < deadline))
            deadline = os->deadline_ms;
        long left = ex->queue_timeout_ms - (long)os->queued_ms;
        if (left < queue_timeout) queue_timeout = left > 0 ? left : 1;
    }
    op_state *first = b->sent[0];
    const pw_plan_op *pop = pw_plan_op_at(first->rs->plan, first->index);
    free(b->command);
    b->command = pw_plan_tables_command(pop, tables, n);
    b->n_sent = n;
    b->in_flight = 1;
    pw_azure_call call = {.request_id = pw_request_id(first->rs->req),
                          .deadline_ms = deadline,
                          .queue_timeout_ms = queue_timeout,
                          .on_queued = batch_on_queued,
                          .on_done = batch_on_done,
                          .ctx = b};
    char err[256];
    if (!b->command || pw_azure_kusto_mgmt(ex->azure, pop->apply.cluster_uri, pop->apply.database,
                                           b->command, &call, err, sizeof err) != 0) {
        /* could not go together: each alone */
        b->n_sent = 0;
        b->in_flight = 0;
        for (size_t i = 0; i < n; i++)
            send_alone(b, b->sent[i], 0);
        if (!b->n_waiting && !b->in_flight) batch_free(b);
        return;
    }
    pw_log(PW_LOG_INFO, pw_request_id(first->rs->req), "op.coalesced",
           "%zu table writes in one command", n);
}

/* ---------------------------------------------------------- shared reads */

/* ARM reads of databases of one cluster (an operation's read, or its read after the write)
 * share its database list (pw_plan_op.read_list).  The reads that become ready at one moment
 * (one loop iteration) go together: one alone as its GET, several as one GET {C}/databases,
 * its pages followed (nextLink) only until every member is found; while a list is in flight,
 * the reads that become ready wait for it to end and go together next.  Each member gets its
 * database's entry as its answer, with the list's ids and attempts; a member its pages do not hold,
 * and every member of a list that fails, is read again alone.  So 1,000 operations queued at one
 * moment cost one list, not 1,000 GETs of ARM's read budget. */
#define SHARE_MAX 1000 /* members of one list; more wait for the next */

typedef struct share {
    struct share *next;
    pw_exec *ex;
    char *path; /* the list's path (the first member's read_list) */
    op_state **waiting, **sent;
    size_t n_waiting, cap_waiting, n_sent, cap_sent, left; /* left: sent members not found */
    int in_flight; /* the list is outstanding (ctx: the share) */
    pw_timer *flush_timer;
} share;

static void share_free(share *sh)
{
    pw_exec *ex = sh->ex;
    for (share **p = &ex->shares; *p; p = &(*p)->next) {
        if (*p == sh) {
            *p = sh->next;
            break;
        }
    }
    if (sh->flush_timer) pw_loop_timer_cancel(ex->loop, sh->flush_timer);
    free(sh->waiting);
    free(sh->sent);
    free(sh->path);
    free(sh);
}

static void share_flush(pw_loop *loop, void *ctx);

static void share_schedule(share *sh)
{
    if (!sh->flush_timer) sh->flush_timer = pw_loop_timer_add(sh->ex->loop, 0, share_flush, sh);
    if (!sh->flush_timer) share_flush(sh->ex->loop, sh);
}

/* The read of this cluster ended: what waits goes next, an idle share goes away. */
static void share_resume(share *sh)
{
    sh->in_flight = 0;
    sh->n_sent = sh->left = 0;
    if (!sh->n_waiting) {
        share_free(sh);
        return;
    }
    share_schedule(sh);
}

/* os's read (step) waits for its cluster's shared read.  0 when it does; -1 when it goes
 * alone (no list holds its answer, coalescing is off, or out of memory). */
static int share_join(op_state *os, op_step step)
{
    pw_exec *ex = os->rs->ex;
    const pw_plan_op *pop = pw_plan_op_at(os->rs->plan, os->index);
    if (!pop->read_list || ex->coalesce_max < 2) return -1;
    share *sh = ex->shares;
    while (sh && strcasecmp(sh->path, pop->read_list) != 0)
        sh = sh->next;
    if (!sh) {
        sh = calloc(1, sizeof *sh);
        if (!sh || !(sh->path = strdup(pop->read_list))) {
            free(sh);
            return -1;
        }
        sh->ex = ex;
        sh->next = ex->shares;
        ex->shares = sh;
    }
    if (sh->n_waiting == sh->cap_waiting) {
        size_t cap = sh->cap_waiting ? sh->cap_waiting * 2 : 16;
        op_state **g = realloc(sh->waiting, cap * sizeof *g);
        if (!g) {
            if (!sh->in_flight && !sh->n_waiting) share_free(sh);
            return -1;
        }
        sh->waiting = g;
        sh->cap_waiting = cap;
    }
    sh->waiting[sh->n_waiting++] = os;
    os->share_wait_at = pw_loop_now_ms(ex->loop);
    os->step = step;
    os->in_call = 1; /* it waits for its read */
    os->share = sh;
    if (!sh->in_flight) share_schedule(sh);
    return 0;
}

/* os stops waiting for a shared read to be sent: that wait is queue time, like a wait for a
 * pacing budget (it does not count against the operation's deadline, but against
 * worker.queue.timeout.ms). */
static void share_wait_over(op_state *os)
{
    if (!os->share_wait_at) return;
    uint64_t waited = pw_loop_now_ms(os->rs->ex->loop) - os->share_wait_at;
    os->share_wait_at = 0;
    os->queued_ms += waited;
    if (os->deadline_ms) os->deadline_ms += waited;
}

/* Member os reads alone after all (not found, or the list failed); the share does not wait. */
static void share_alone(op_state *os)
{
    share_wait_over(os);
    os->share = NULL;
    os->in_call = 0;
    issue_call(os, os->step);
}

static void share_on_queued(void *ctx, const pw_azure_progress *p)
{
    share *sh = ctx;
    for (size_t i = 0; i < sh->n_sent; i++)
        if (sh->sent[i]) on_queued(sh->sent[i], p);
}

static int share_list(share *sh, const char *next_link);

static void share_on_done(void *ctx, const pw_azure_result *r)
{
    share *sh = ctx;
    const char *next = r->ok ? json_string_value(json_object_get(r->body, "nextLink")) : NULL;
    /* members handed their answers may start reads of this cluster: they wait (in_flight) */
    for (size_t i = 0; i < sh->n_sent; i++) {
        op_state *os = sh->sent[i];
        if (!os) continue;
        const json_t *entry =
            r->ok ? pw_plan_list_entry(pw_plan_op_at(os->rs->plan, os->index), r->body) : NULL;
        if (!entry && r->ok && next) { /* perhaps on a later page */
            os->queued_ms += r->queued_ms; /* (this page's queue time is not its deadline's) */
            if (os->deadline_ms) os->deadline_ms += r->queued_ms;
            continue;
        }
        sh->sent[i] = NULL;
        sh->left--;
        if (!entry) {
            /* the list failed, or its last page does not hold it: its own GET says why */
            call_ended(os, r);
            share_alone(os);
            continue;
        }
        pw_azure_result one = *r;
        one.body = (json_t *)entry;
        os->share = NULL;
        op_done(os, &one);
    }
    if (sh->left && next && share_list(sh, next) == 0) return;
    for (size_t i = 0; i < sh->n_sent; i++) /* (a next page that could not be asked for) */
        if (sh->sent[i]) share_alone(sh->sent[i]);
    share_resume(sh);
}

/* Asks for the list (next_link NULL: its first page).  0 when started. */
static int share_list(share *sh, const char *next_link)
{
    pw_exec *ex = sh->ex;
    uint64_t deadline = 0;
    long queue_timeout = ex->queue_timeout_ms;
    op_state *first = NULL;
    for (size_t i = 0; i < sh->n_sent; i++) {
        op_state *os = sh->sent[i];
        if (!os) continue;
        if (!first) first = os;
        if (os->deadline_ms && (!deadline || os->deadline_ms < deadline))
            deadline = os->deadline_ms;
        long left = ex->queue_timeout_ms - (long)os->queued_ms;
        if (left < queue_timeout) queue_timeout = left > 0 ? left : 1;
    }
    if (!first) return -1;
    pw_azure_call call = {.request_id = pw_request_id(first->rs->req),
                          .deadline_ms = deadline,
                          .queue_timeout_ms = queue_timeout,
                          .on_queued = share_on_queued,
                          .on_done = share_on_done,
                          .ctx = sh,
                          .read_only = 1};
    char err[256];
    int rc = next_link ? pw_azure_arm_next(ex->azure, next_link, &call, err, sizeof err)
                       : pw_azure_arm(ex->azure, "GET", sh->path, NULL, &call, err, sizeof err);
    if (rc != 0) {
        pw_log(PW_LOG_WARN, pw_request_id(first->rs->req), "op.shared_read_not_started", "%s", err);
        return -1;
    }
    sh->in_flight = 1;
    return 0;
}

static void share_flush(pw_loop *loop, void *ctx)
{
    (void)loop;
    share *sh = ctx;
    sh->flush_timer = NULL;
    if (sh->in_flight || !sh->n_waiting) {
        if (!sh->in_flight) share_resume(sh);
        return;
    }
    size_t n = sh->n_waiting < SHARE_MAX ? sh->n_waiting : SHARE_MAX;
    if (n == 1) { /* alone: its own GET (a lone read waits for nobody) */
        op_state *os = sh->waiting[0];
        sh->n_waiting = 0;
        share_alone(os);
        share_resume(sh);
        return;
    }
    if (sh->cap_sent < n) {
        op_state **g = realloc(sh->sent, n * sizeof *g);
        if (!g) { /* each alone */
            while (sh->n_waiting)
                share_alone(sh->waiting[--sh->n_waiting]);
            share_resume(sh);
            return;
        }
        sh->sent = g;
        sh->cap_sent = n;
    }
    memcpy(sh->sent, sh->waiting, n * sizeof *sh->sent);
    for (size_t i = 0; i < n; i++)
        share_wait_over(sh->sent[i]);
    memmove(sh->waiting, sh->waiting + n, (sh->n_waiting - n) * sizeof *sh->waiting);
    sh->n_waiting -= n;
    sh->n_sent = sh->left = n;
    if (share_list(sh, NULL) != 0) {
        for (size_t i = 0; i < n; i++)
            share_alone(sh->sent[i]);
        share_resume(sh);
        return;
    }
    pw_log(PW_LOG_DEBUG, pw_request_id(sh->sent[0]->rs->req), "op.shared_read",
           "%zu database reads in one list", n);
}

/* A revoke abandons os's read: out of the queue, or (a read before the write) out of the list
 * in flight (the list itself is abandoned once no member is left).  1 when os no longer waits
 * for anything. */
static int share_abandon(op_state *os)
{
    share *sh = os->share;
    pw_exec *ex = os->rs->ex;
    for (size_t i = 0; i < sh->n_waiting; i++) {
        if (sh->waiting[i] != os) continue;
        memmove(sh->waiting + i, sh->waiting + i + 1,
                (sh->n_waiting - i - 1) * sizeof *sh->waiting);
        sh->n_waiting--;
        os->share = NULL;
        if (!sh->in_flight && !sh->n_waiting) share_free(sh);
        return 1;
    }
    for (size_t i = 0; i < sh->n_sent; i++) {
        if (sh->sent[i] != os) continue;
        /* a read after a write reports that write: like any such call, it is abandoned only
         * while it waits (above), not once its list may be on the wire */
        if (os->step == STEP_REREAD) return 0;
        sh->sent[i] = NULL;
        os->share = NULL;
        if (--sh->left == 0 && pw_azure_abandon(ex->azure, sh)) share_resume(sh);
        return 1;
    }
    return 0;
}

static void on_not_started(pw_loop *loop, void *ctx)
{
    (void)loop;
    op_state *os = ctx;
    batch *b = os->step == STEP_APPLY ? os->batch : NULL;
    struct share *sh = os->step != STEP_APPLY ? os->share : NULL;
    os->fail_timer = NULL;
    os->batch = NULL;
    os->share = NULL;
    finish_op(os, OP_FAILED);
    if (b) batch_resume(b);
    if (sh) share_resume(sh);
}

/* Sends the call of os's step: a read that can share its cluster's database list waits for
 * it (share_join), anything else goes alone. */
static void issue(op_state *os, op_step step)
{
    if (step != STEP_APPLY && share_join(os, step) == 0) return;
    issue_call(os, step);
}

static void issue_call(op_state *os, op_step step)
{
    req_state *rs = os->rs;
    pw_exec *ex = rs->ex;
    const pw_plan_op *pop = pw_plan_op_at(rs->plan, os->index);
    const pw_plan_call *c = step == STEP_APPLY ? &pop->apply : &pop->read;
    pw_azure_call call = {
        .request_id = pw_request_id(rs->req),
        .deadline_ms = os->deadline_ms,
        .on_progress = step == STEP_APPLY ? on_progress : NULL,
        .on_queued = on_queued,
        .queue_timeout_ms = ex->queue_timeout_ms > (long)os->queued_ms
                                ? ex->queue_timeout_ms - (long)os->queued_ms
                                : 1,
        .on_done = on_done,
        .ctx = os,
        .read_only = step == STEP_READ, /* (a read after the write reports that write) */
        /* a database's PATCH: the read after it is shared with others of its cluster */
        .no_final_get = step == STEP_APPLY && pop->read_list && ex->coalesce_max >= 2,
    };
    char err[256];
    int rc;
    os->step = step;
    if (step == STEP_APPLY) {
        pw_exec_gate g = gate_of(rs);
        if (g != PW_EXEC_GO) {
            /* Not ours to write now: wait for pw_exec_recheck, which resumes or drops. */
            os->held = 1;
            pw_log(PW_LOG_INFO, pw_request_id(rs->req), "op.held", "operation %zu: write %s",
                   os->index, g == PW_EXEC_DROP ? "dropped (partition revoked)" : "on hold");
            if (g == PW_EXEC_DROP) schedule_recheck(ex);
            return;
        }
    }
    if (c->route == PW_ROUTE_ARM)
        rc = pw_azure_arm(ex->azure, c->method, c->path, c->body, &call, err, sizeof err);
    else
        rc = pw_azure_kusto_mgmt(ex->azure, c->cluster_uri, c->database,
                                 step == STEP_APPLY && os->apply_command ? os->apply_command
                                                                         : c->command,
                                 &call, err, sizeof err);
    if (rc == 0) {
        os->in_call = 1;
    } else {
        pw_log(PW_LOG_ERROR, pw_request_id(rs->req), "op.not_started", "%s", err);
        set_error(os, "InternalError", err, 0, 0, NULL);
        os->fail_timer = pw_loop_timer_add(ex->loop, 0, on_not_started, os);
        if (!os->fail_timer) {
            batch *b = step == STEP_APPLY ? os->batch : NULL;
            struct share *sh = step != STEP_APPLY ? os->share : NULL;
            os->batch = NULL;
            os->share = NULL;
            finish_op(os, OP_FAILED);
            if (b) batch_resume(b);
            if (sh) share_resume(sh);
        }
    }
}

/* The before of os is the answer its lane's previous operation ended with. */
static void on_reused(pw_loop *loop, void *ctx)
{
    (void)loop;
    op_state *os = ctx;
    json_t *answer = os->reused;
    os->reuse_timer = NULL;
    os->reused = NULL;
    os->step = STEP_READ;
    pw_log(PW_LOG_DEBUG, pw_request_id(os->rs->req), "op.before_reused",
           "operation %zu: before is the previous operation's answer on %s", os->index,
           os->lane->key);
    pw_azure_result r = {.ok = 1, .http_status = 200, .body = answer};
    op_done(os, &r);
    json_decref(answer);
}

static void start_op(req_state *rs, size_t i)
{
    pw_exec *ex = rs->ex;
    op_state *os = &rs->ops[i];
    os->status = OP_RUNNING;
    os->start_ms = pw_loop_now_ms(ex->loop);
    os->progress_at_ms = os->start_ms;
    progress_key(os, os->progress_sent);
    os->deadline_ms = ex->op_timeout_ms > 0 ? os->start_ms + (uint64_t)ex->op_timeout_ms : 0;
    os->lane->busy = 1;
    pw_log(PW_LOG_INFO, pw_request_id(rs->req), "op.started", "operation %zu %s via %s on %s", i,
           pw_plan_op_at(rs->plan, i)->op->kind_name,
           pw_ops_route_name(pw_plan_op_at(rs->plan, i)->op->route), os->lane->key);
    if (!rs->ro) emit(rs, "running", (long)i, 0);
    lane *ln = os->lane;
    json_t *prev = ln->last_answer;
    char *id = prev ? read_identity(pw_plan_op_at(rs->plan, i)) : NULL;
    int same = id && strcmp(id, ln->last_read) == 0;
    free(id);
    if (same) {
        /* the previous operation on this target just ended with this read's answer: it is
         * this one's before, no second read (from the loop, as an answer comes) */
        os->reuse_timer = pw_loop_timer_add(ex->loop, 0, on_reused, os);
        if (os->reuse_timer) {
            os->reused = prev;
            ln->last_answer = NULL;
            lane_forget(ln);
            return;
        }
    }
    lane_forget(ln);
    issue(os, STEP_READ);
}

/* Starts the lane's head operation when it may run and its owner lets it; drops the lane
 * when it is empty.  A head whose request is to be dropped waits for the recheck, which
 * drops it outside any lane walk. */
static void kick(pw_exec *ex, lane *ln)
{
    if (ln->busy) return;
    if (!ln->head) {
        if (!ln->kick_queued) lane_drop(ex, ln);
        return;
    }
    lane_entry *e = ln->head;
    const req_state *rs = e->rs;
    size_t c = rs->per ? e->index / rs->per : 0;
    if (!rs->started || c >= rs->released || rs->chain[c].next != e->index) {
        lane_forget(ln); /* not back to back: the next one reads afresh */
        return;
    }
    switch (gate_of(e->rs)) {
    case PW_EXEC_GO:
        start_op(e->rs, e->index);
        return;
    case PW_EXEC_DROP:
        lane_forget(ln);
        schedule_recheck(ex);
        return;
    case PW_EXEC_HOLD:
        lane_forget(ln);
        return;
    }
}

/* --------------------------------------------------------------- ownership */

/* An Azure call of rs is outstanding, or about to fail from the loop. */
static int req_in_call(const req_state *rs)
{
    if (rs->rollout && rs->rollout->lister) return 1;
    for (size_t i = 0; i < rs->count; i++)
        if (rs->ops[i].in_call) return 1;
    return 0;
}

/* Releases a request its owner no longer lets go on: its waiting operations leave their
 * lanes (emptied lanes are swept by the caller's kick_all), no further event is emitted. */
static void drop_request(req_state *rs)
{
    pw_exec *ex = rs->ex;
    size_t left = 0;
    for (size_t j = 0; rs->plan && j < rs->count; j++) {
        op_state *os = &rs->ops[j];
        if (!os->lane || (os->status != OP_PENDING && os->status != OP_RUNNING)) continue;
        if (os->status == OP_RUNNING) os->lane->busy = 0; /* held, or failing from a timer */
        lane_remove(os->lane, rs, j);
        left++;
    }
    pw_log(PW_LOG_INFO, pw_request_id(rs->req), "request.dropped",
           "its partition is no longer ours: %zu of %zu operations not done, nothing more is "
           "reported (the message is redelivered to the partition's owner)",
           left, rs->count);
    void (*dropped)(void *) = ex->owner.dropped;
    void *ctx = rs->ctx;
    ex->in_flight--;
    req_free(rs);
    if (dropped) dropped(ctx);
}

/* Abandons what of rs's calls may go without a trace (pw_azure_abandon): reads, and writes
 * that nothing of is on the wire or accepted; a revoke then waits only for the rest. */
static void abandon_calls(req_state *rs)
{
    for (size_t i = 0; i < rs->count; i++) {
        op_state *os = &rs->ops[i];
        if (os->in_call && os->share
                ? share_abandon(os)
                : os->in_call && !os->batch && pw_azure_abandon(rs->ex->azure, os))
            os->in_call = 0;
    }
}

static void kick_all(pw_exec *ex)
{
    for (unsigned b = 0; b < LANE_BUCKETS; b++) {
        lane *ln = ex->buckets[b];
        while (ln) {
            lane *next = ln->next_in_bucket; /* kick may drop ln, never another lane */
            kick(ex, ln);
            ln = next;
        }
    }
}

static void recheck_cb(pw_loop *loop, void *ctx)
{
    (void)loop;
    pw_exec *ex = ctx;
    ex->recheck_timer = NULL;
    for (req_state *rs = ex->reqs, *next; rs; rs = next) {
        next = rs->next;
        if (gate_of(rs) != PW_EXEC_DROP) continue;
        if (req_in_call(rs)) abandon_calls(rs);
        if (!req_in_call(rs)) drop_request(rs);
    }
    for (req_state *rs = ex->reqs, *next; rs; rs = next) {
        next = rs->next;
        if (!rs->started) continue;
        for (size_t c = 0; c < rs->released; c++) {
            size_t i = rs->chain[c].next, in_flight = ex->in_flight;
            if (i >= (c + 1) * rs->per || !rs->ops[i].held) continue;
            if (gate_of(rs) != PW_EXEC_GO) break;
            rs->ops[i].held = 0;
            issue(&rs->ops[i], STEP_APPLY); /* (a call that cannot start fails from a timer) */
            if (ex->in_flight != in_flight) break; /* (it failed at once and ended rs) */
        }
    }
    kick_all(ex);
}

static void schedule_recheck(pw_exec *ex)
{
    if (!ex->recheck_timer) ex->recheck_timer = pw_loop_timer_add(ex->loop, 0, recheck_cb, ex);
    if (!ex->recheck_timer)
        pw_log(PW_LOG_ERROR, NULL, "exec.nomem", "ownership recheck not scheduled");
}

void pw_exec_set_owner(pw_exec *ex, const pw_exec_owner *owner)
{
    ex->owner = *owner;
}

void pw_exec_recheck(pw_exec *ex)
{
    schedule_recheck(ex);
}

/* ------------------------------------------------------------------ submit */

/* A terminal failure before any operation ran: planning ran out of memory, or a selector's
 * listing or expansion failed.  error.code, message, errors (borrowed, may be NULL). */
static void fail_unstarted(req_state *rs, const char *code, const char *message,
                           const json_t *errors)
{
    pw_exec *ex = rs->ex;
    rs->failed = 1;
    rs->failed_index = -1;
    pw_log_kv(PW_LOG_WARN, pw_request_id(rs->req), "request.failed",
              (pw_log_field[]){PW_LOG_S("code", code)}, 1, "%s: %s", code, message);
    json_t *err = pw_reply_error(code, message, 0);
    json_t *list = json_object_get(errors, "errors");
    if (err && json_array_size(list)) json_object_set(err, "errors", list);
    pw_reply_request r = {.request_id = pw_request_id(rs->req),
                          .status = "failed",
                          .worker_id = ex->worker_id,
                          .sequence = ++rs->seq,
                          .dry_run = pw_request_dry_run(rs->req),
                          .operation_index = -1,
                          .error = err,
                          .error_index = -1};
    json_t *ev = err ? pw_reply_request_event(&r) : NULL;
    json_decref(err);
    rs->cb(rs->ctx, ev, 1);
    ex->in_flight--;
    req_free(rs);
}

/* Sets up rs's operations once they are known (at submit, or once a selector's targets are
 * listed): their states, chains, waves, plan, and their places in the lanes, which is what
 * orders requests on one target.  rs->plan stays NULL when out of memory. */
static void prepare(req_state *rs)
{
    pw_exec *ex = rs->ex;
    size_t count = pw_request_op_count(rs->req);
    size_t per = rs->ro ? rs->ro->templates : count;
    size_t chains = per ? count / per : 0;
    rs->ops = count ? calloc(count, sizeof *rs->ops) : NULL;
    rs->chain = chains ? calloc(chains, sizeof *rs->chain) : NULL;
    if (rs->ro && chains) rs->rollout->results = calloc(chains, sizeof *rs->rollout->results);
    if ((count && !rs->ops) || (chains && !rs->chain) ||
        (rs->ro && chains && !rs->rollout->results))
        return;
    rs->count = count;
    rs->per = per;
    rs->chains = chains;
    if (rs->ro) {
        rollout_state *ro = rs->rollout;
        ro->waves = pw_rollout_waves(rs->ro, chains, ro->ends);
        for (size_t w = 0; w < ro->waves; w++)
            ro->counts[w].targets = ro->ends[w] - (w ? ro->ends[w - 1] : 0);
    }
    char err[256];
    /* (pw_plan_new supplies the default version when the configuration has none) */
    rs->plan =
        pw_plan_new(rs->req, ex->cfg ? ex->cfg->azure.arm_api_version : NULL, err, sizeof err);
    for (size_t i = 0; i < count; i++) {
        rs->ops[i].rs = rs;
        rs->ops[i].index = i;
        rs->ops[i].percent = -1;
    }
    for (size_t c = 0; c < chains; c++)
        rs->chain[c].next = c * per;
    for (size_t i = 0; rs->plan && i < count; i++) {
        lane *ln = lane_get(ex, pw_plan_op_at(rs->plan, i)->lane);
        lane_entry *e = ln ? calloc(1, sizeof *e) : NULL;
        if (!e) {
            for (size_t j = 0; j < i; j++)
                lane_remove(rs->ops[j].lane, rs, j); /* (empty lanes are dropped at next kick) */
            pw_plan_free(rs->plan);
            rs->plan = NULL;
            break;
        }
        e->rs = rs;
        e->index = i;
        if (ln->tail)
            ln->tail->next = e;
        else
            ln->head = e;
        ln->tail = e;
        rs->ops[i].lane = ln;
    }
}

/* Starts a prepared request: accepted, then its first chains (a rollout's first wave). */
static void begin(req_state *rs)
{
    pw_exec *ex = rs->ex;
    if (!rs->plan) {
        fail_unstarted(rs, "InternalError", "the request could not be planned", NULL);
        return;
    }
    if (gate_of(rs) == PW_EXEC_DROP) { /* revoked before it started: never answered here */
        drop_request(rs);
        schedule_recheck(ex); /* sweeps the lanes it left empty */
        return;
    }
    rs->started = 1;
    if (rs->ro) {
        const rollout_state *ro = rs->rollout;
        json_t *waves = json_array();
        for (size_t w = 0; w < ro->waves; w++)
            json_array_append_new(waves, json_pack("{s:I, s:I}", "wave", (json_int_t)w, "targets",
                                                   (json_int_t)ro->counts[w].targets));
        emit_rollout(rs, "accepted",
                     json_pack("{s:I, s:I, s:o, s:I, s:I}", "targets", (json_int_t)rs->chains,
                               "templates", (json_int_t)rs->per, "waves", waves, "failureBudget",
                               (json_int_t)rs->ro->failure_budget, "pauseBetweenWavesSeconds",
                               (json_int_t)rs->ro->pause_s),
                     NULL, 0);
    } else {
        emit(rs, "accepted", -1, 0);
    }
    if (rs->chains == 0) { /* (the schema requires an operation; nothing to do is success) */
        finish_request(rs);
        return;
    }
    if (rs->ro) {
        release_wave(rs);
    } else {
        rs->released = 1;
        queue_kick(ex, rs->ops[0].lane);
    }
    run_kicks(ex);
}

/* A selector's targets are listed (or could not be): expanded into operations, prepared and
 * begun, as a rollout over a list is at submit. */
static void on_listed(void *ctx, json_t *targets, const char *code, const char *message)
{
    req_state *rs = ctx;
    pw_exec *ex = rs->ex;
    rs->rollout->lister = NULL; /* (it frees itself) */
    if (gate_of(rs) == PW_EXEC_DROP) {
        json_decref(targets);
        drop_request(rs);
        schedule_recheck(ex);
        return;
    }
    if (!targets) {
        char msg[1200];
        snprintf(msg, sizeof msg, "listing the rollout's targets failed: %s", message);
        fail_unstarted(rs, code, msg, NULL);
        return;
    }
    pw_rejection rej;
    int rc = pw_request_expand(rs->req, targets, &rej);
    size_t listed = json_array_size(targets);
    json_decref(targets);
    if (rc != 0) {
        /* TooManyTargets as the rejection says; a listed target that would be rejected
         * fails the request as InvalidTarget, naming the rejection's code */
        char msg[700];
        snprintf(msg, sizeof msg, "a listed target: %s (%s)", rej.message, rej.code);
        fail_unstarted(rs,
                       rej.internal                                    ? "InternalError"
                       : !strcmp(rej.code, PW_REJECT_TOO_MANY_TARGETS) ? rej.code
                                                                       : "InvalidTarget",
                       rej.internal || !strcmp(rej.code, PW_REJECT_TOO_MANY_TARGETS) ? rej.message
                                                                                     : msg,
                       rej.errors);
        pw_rejection_clear(&rej);
        return;
    }
    pw_log(PW_LOG_INFO, pw_request_id(rs->req), "rollout.listed", "%zu targets", listed);
    prepare(rs);
    begin(rs);
}

static void on_start(pw_loop *loop, void *ctx)
{
    (void)loop;
    req_state *rs = ctx;
    pw_exec *ex = rs->ex;
    rs->start_timer = NULL;
    if (!rs->ro || rs->ro->source == PW_REQUEST_TARGET_LIST) {
        begin(rs);
        return;
    }
    if (gate_of(rs) == PW_EXEC_DROP) {
        drop_request(rs);
        schedule_recheck(ex);
        return;
    }
    char err[256];
    uint64_t deadline = pw_loop_now_ms(ex->loop) + (uint64_t)ex->op_timeout_ms;
    rs->rollout->lister =
        pw_rollout_list(ex->azure, rs->req, deadline, on_listed, rs, err, sizeof err);
    if (!rs->rollout->lister) fail_unstarted(rs, "InternalError", err, NULL);
}

pw_exec *pw_exec_new(pw_loop *loop, pw_azure *azure, const pw_config *cfg, char *err, size_t errlen)
{
    pw_exec *ex = calloc(1, sizeof *ex);
    if (!ex) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    ex->loop = loop;
    ex->azure = azure;
    ex->cfg = cfg;
    ex->op_timeout_ms = cfg && cfg->operation_timeout_ms > 0 ? cfg->operation_timeout_ms
                                                             : PW_CONFIG_OPERATION_TIMEOUT_MS;
    ex->queue_timeout_ms =
        cfg && cfg->queue_timeout_ms > 0 ? cfg->queue_timeout_ms : PW_CONFIG_QUEUE_TIMEOUT_MS;
    ex->coalesce_max = cfg && cfg->coalesce_max ? cfg->coalesce_max : PW_CONFIG_COALESCE_MAX;
    if (ex->coalesce_max > BATCH_MAX) ex->coalesce_max = BATCH_MAX;
    snprintf(ex->worker_id, sizeof ex->worker_id, "%s",
             cfg && cfg->worker_id ? cfg->worker_id : "policy-worker");
    return ex;
}

void pw_exec_free(pw_exec *ex)
{
    if (!ex) return;
    if (ex->recheck_timer) pw_loop_timer_cancel(ex->loop, ex->recheck_timer);
    while (ex->batches)
        batch_free(ex->batches);
    while (ex->shares)
        share_free(ex->shares);
    while (ex->reqs)
        req_free(ex->reqs);
    for (unsigned b = 0; b < LANE_BUCKETS; b++) {
        while (ex->buckets[b]) {
            lane *ln = ex->buckets[b];
            while (ln->head) {
                lane_entry *e = ln->head;
                ln->head = e->next;
                free(e);
            }
            ex->buckets[b] = ln->next_in_bucket;
            lane_forget(ln);
            free(ln->key);
            free(ln);
        }
    }
    free(ex);
}

void pw_exec_submit(pw_exec *ex, pw_request *req, pw_exec_event_cb cb, void *ctx)
{
    req_state *rs = calloc(1, sizeof *rs);
    const pw_request_rollout *ro = pw_request_rollout_of(req);
    if (rs && ro && !(rs->rollout = calloc(1, sizeof *rs->rollout))) {
        free(rs);
        rs = NULL;
    }
    if (!rs) {
        /* Nothing to report through: the caller's request stays unanswered and is
         * redelivered after a restart, like any request in flight at a crash. */
        pw_log(PW_LOG_ERROR, pw_request_id(req), "exec.nomem", "request dropped");
        pw_request_free(req);
        return;
    }
    rs->ex = ex;
    rs->req = req;
    rs->cb = cb;
    rs->ctx = ctx;
    rs->ro = ro;
    rs->failed_index = -1;
    /* Enqueue now, in arrival order (a selector's once its targets are listed). */
    if (!ro || ro->source == PW_REQUEST_TARGET_LIST) prepare(rs);
    rs->next = ex->reqs;
    if (ex->reqs) ex->reqs->prev = rs;
    ex->reqs = rs;
    ex->in_flight++;
    rs->start_timer = pw_loop_timer_add(ex->loop, 0, on_start, rs);
}

size_t pw_exec_in_flight(const pw_exec *ex)
{
    return ex->in_flight;
}
