/* render.c: reply events as text: live operation lines, one-line summaries, dry-run plans. */
#include "render.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CTL_OPS_MAX 100 /* a request's operations (request.v1: 1..100) */
#define CTL_LINE_MAX 1024

struct ctl_view {
    FILE *out;
    int tty, quiet;
    json_t *ops[CTL_OPS_MAX]; /* latest state of each operation (owned) */
    char *last[CTL_OPS_MAX];  /* last printed line of each (plain mode) */
    size_t nops;
    int drawn;                /* lines on screen from the last redraw (tty) */
    json_t *terminal;         /* owned */
    char status[32];
};

/* Appends printf text at *pos, never past len (the line is cut, never overrun). */
static void add(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
    if (*pos >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    if (n > 0) *pos += (size_t)n < len - *pos ? (size_t)n : len - *pos - 1;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

ctl_view *ctl_view_new(FILE *out, int tty, int quiet)
{
    ctl_view *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->out = out;
    v->tty = tty;
    v->quiet = quiet;
    return v;
}

void ctl_view_free(ctl_view *v)
{
    if (!v) return;
    for (size_t i = 0; i < CTL_OPS_MAX; i++) {
        json_decref(v->ops[i]);
        free(v->last[i]);
    }
    json_decref(v->terminal);
    free(v);
}

const json_t *ctl_view_terminal(const ctl_view *v) { return v->terminal; }

int ctl_status_exit(const char *status)
{
    if (!status) return 3;
    if (!strcmp(status, "succeeded")) return 0;
    if (!strcmp(status, "failed")) return 1;
    if (!strcmp(status, "rejected")) return 2;
    return 3;
}

static int is_terminal(const char *s)
{
    return !strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "rejected");
}

/* A target in a few words: cluster/database[/entity] (ARM) or host's first label/... */
static void render_target(const json_t *t, char *buf, size_t len, size_t *pos)
{
    const char *cluster = str(t, "cluster"), *uri = str(t, "clusterUri");
    char host[128] = "";
    if (!*cluster && *uri) {
        const char *h = strstr(uri, "://");
        h = h ? h + 3 : uri;
        size_t n = strcspn(h, ".:/");
        if (n >= sizeof host) n = sizeof host - 1;
        memcpy(host, h, n);
        host[n] = 0;
        cluster = host;
    }
    add(buf, len, pos, "%s", *cluster ? cluster : "?");
    static const char *const parts[] = {"database", "table", "materializedView", "externalTable",
                                        "column", "workloadGroup", "principalAssignment"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        const char *p = str(t, parts[i]);
        if (*p) add(buf, len, pos, "/%s", p);
    }
}

/* A value in request terms, short: "softDeletePeriod=P10D", "policy={...}", "-" for null. */
static void render_value(const json_t *val, char *buf, size_t len, size_t *pos)
{
    if (!json_is_object(val) || json_object_size(val) == 0) {
        add(buf, len, pos, "-");
        return;
    }
    const char *k;
    json_t *x;
    int first = 1;
    json_object_foreach((json_t *)val, k, x)
    {
        add(buf, len, pos, "%s%s=", first ? "" : " ", k);
        first = 0;
        if (json_is_string(x)) {
            add(buf, len, pos, "%s", json_string_value(x));
        } else {
            char *s = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
            if (s && strlen(s) > 120) strcpy(s + 117, "...");
            add(buf, len, pos, "%s", s ? s : "?");
            free(s);
        }
    }
}

void ctl_render_op(const json_t *op, char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = 0;
    const char *status = str(op, "status");
    add(buf, len, &pos, "  [%d] %s ", (int)json_integer_value(json_object_get(op, "index")),
        str(op, "kind"));
    render_target(json_object_get(op, "target"), buf, len, &pos);
    add(buf, len, &pos, " via %s  %s", str(op, "route"), status);
    json_int_t attempts = json_integer_value(json_object_get(op, "attempts"));
    if (attempts > 0) add(buf, len, &pos, "  attempts=%d", (int)attempts);
    const json_t *lro = json_object_get(op, "lro");
    if (lro) {
        add(buf, len, &pos, "  lro %s", str(lro, "status"));
        const json_t *pc = json_object_get(lro, "percentComplete");
        if (json_is_integer(pc)) {
            int p = (int)json_integer_value(pc), n = p / 5;
            add(buf, len, &pos, " [");
            for (int i = 0; i < 20; i++) add(buf, len, &pos, "%c", i < n ? '#' : '.');
            add(buf, len, &pos, "] %3d%%", p);
        } else {
            add(buf, len, &pos, " (poll %d)", (int)json_integer_value(json_object_get(lro, "polls")));
        }
    }
    const json_t *q = json_object_get(op, "queue");
    if (q)
        add(buf, len, &pos, "  waiting for %s (%d ahead)", str(q, "waitingFor"),
            (int)json_integer_value(json_object_get(q, "ahead")));
    json_int_t queued = json_integer_value(json_object_get(op, "queuedMs"));
    if (queued > 0) add(buf, len, &pos, "  queued %dms", (int)queued);
    const json_t *before = json_object_get(op, "before"), *after = json_object_get(op, "after");
    if (json_is_object(before) || json_is_object(after)) {
        add(buf, len, &pos, "  ");
        render_value(before, buf, len, &pos);
        add(buf, len, &pos, " -> ");
        render_value(after, buf, len, &pos);
    }
    const json_t *err = json_object_get(op, "error");
    if (err) add(buf, len, &pos, "  %s: %s", str(err, "code"), str(err, "message"));
}

static void counts_text(const json_t *c, char *buf, size_t len, size_t *pos)
{
    static const char *const keys[] = {"succeeded", "unchanged", "planned", "failed", "skipped"};
    add(buf, len, pos, "%d targets", (int)json_integer_value(json_object_get(c, "targets")));
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        json_int_t n = json_integer_value(json_object_get(c, keys[i]));
        if (n) add(buf, len, pos, ", %d %s", (int)n, keys[i]);
    }
}

/* A rollout event's summary (events carry "rollout" instead of operations). */
static void render_rollout(const json_t *ev, char *buf, size_t len, size_t *pos)
{
    const json_t *r = json_object_get(ev, "rollout");
    const char *status = str(ev, "status");
    if (!strcmp(status, "accepted")) {
        add(buf, len, pos, "rollout of %d targets x %d templates in %d waves",
            (int)json_integer_value(json_object_get(r, "targets")),
            (int)json_integer_value(json_object_get(r, "templates")),
            (int)json_array_size(json_object_get(r, "waves")));
    } else if (!strcmp(status, "running")) {
        size_t i;
        json_t *t;
        add(buf, len, pos, "wave %d:", (int)json_integer_value(json_object_get(r, "wave")));
        json_array_foreach(json_object_get(r, "results"), i, t)
        {
            add(buf, len, pos, " ");
            render_target(json_object_get(t, "target"), buf, len, pos);
            add(buf, len, pos, "=%s", str(t, "status"));
        }
    } else if (!strcmp(status, "wave")) {
        add(buf, len, pos, "wave %d done: ", (int)json_integer_value(json_object_get(r, "wave")));
        counts_text(json_object_get(r, "counts"), buf, len, pos);
        add(buf, len, pos, "; next: %s", str(r, "next"));
    } else if (json_object_get(r, "totals")) {
        counts_text(json_object_get(r, "totals"), buf, len, pos);
    }
}

void ctl_render_event_line(const json_t *ev, char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = 0;
    add(buf, len, &pos, "%s %s #%d %s", str(ev, "time"), str(ev, "requestId"),
        (int)json_integer_value(json_object_get(ev, "sequence")), str(ev, "status"));
    if (json_is_true(json_object_get(ev, "dryRun"))) add(buf, len, &pos, " (dry run)");
    const json_t *err = json_object_get(ev, "error");
    if (err) add(buf, len, &pos, "  %s: %s", str(err, "code"), str(err, "message"));
    if (json_object_get(ev, "rollout")) {
        add(buf, len, &pos, "  ");
        render_rollout(ev, buf, len, &pos);
        return;
    }
    const json_t *ops = json_object_get(ev, "operations");
    const json_t *idx = json_object_get(ev, "operationIndex");
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        if (json_is_integer(idx) && json_integer_value(json_object_get(op, "index")) !=
                                        json_integer_value(idx))
            continue;
        char line[CTL_LINE_MAX];
        ctl_render_op(op, line, sizeof line);
        add(buf, len, &pos, " |%s", line + 1);
    }
}

static void print_rejection(FILE *out, const json_t *ev)
{
    const json_t *err = json_object_get(ev, "error");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(err, "errors"), i, e)
    {
        const char *where = str(e, "instanceLocation");
        fprintf(out, "    %s: %s\n", *where ? where : "(root)", str(e, "error"));
    }
}

static void redraw(ctl_view *v)
{
    if (v->drawn) fprintf(v->out, "\033[%dA", v->drawn);
    char line[CTL_LINE_MAX];
    for (size_t i = 0; i < v->nops; i++) {
        if (!v->ops[i]) continue;
        ctl_render_op(v->ops[i], line, sizeof line);
        fprintf(v->out, "\r\033[2K%s\n", line);
    }
    v->drawn = (int)v->nops;
    fflush(v->out);
}

static void print_changed(ctl_view *v)
{
    char line[CTL_LINE_MAX];
    for (size_t i = 0; i < v->nops; i++) {
        if (!v->ops[i]) continue;
        ctl_render_op(v->ops[i], line, sizeof line);
        if (v->last[i] && !strcmp(v->last[i], line)) continue;
        free(v->last[i]);
        v->last[i] = strdup(line);
        fprintf(v->out, "%s\n", line);
    }
    fflush(v->out);
}

int ctl_view_event(ctl_view *v, const json_t *ev)
{
    const char *status = str(ev, "status");
    int terminal = is_terminal(status);
    snprintf(v->status, sizeof v->status, "%s", status);
    const json_t *ops = json_object_get(ev, "operations");
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        json_int_t ix = json_integer_value(json_object_get(op, "index"));
        if (ix < 0 || ix >= CTL_OPS_MAX) continue;
        json_t *copy = json_deep_copy(op);
        /* the accepted event carries each operation's plan; later events do not repeat it */
        const json_t *plan = v->ops[ix] ? json_object_get(v->ops[ix], "plan") : NULL;
        if (copy && plan && !json_object_get(copy, "plan"))
            json_object_set_new(copy, "plan", json_deep_copy(plan));
        json_decref(v->ops[ix]);
        v->ops[ix] = copy;
        if ((size_t)ix + 1 > v->nops) v->nops = (size_t)ix + 1;
    }
    if (terminal) {
        json_decref(v->terminal);
        v->terminal = json_deep_copy(ev);
    }
    if (v->quiet) return terminal;
    char line[CTL_LINE_MAX];
    if (json_object_get(ev, "rollout")) {
        ctl_render_event_line(ev, line, sizeof line);
        fprintf(v->out, "%s\n", line);
    } else if (!strcmp(status, "accepted")) {
        fprintf(v->out, "%s accepted by %s%s: %d operation%s\n", str(ev, "requestId"),
                str(ev, "workerId"), json_is_true(json_object_get(ev, "dryRun")) ? " (dry run)" : "",
                (int)v->nops, v->nops == 1 ? "" : "s");
    }
    if (!json_object_get(ev, "rollout")) {
        if (v->tty)
            redraw(v);
        else
            print_changed(v);
    }
    if (terminal) {
        const json_t *err = json_object_get(ev, "error");
        if (err) {
            fprintf(v->out, "%s %s: %s: %s\n", str(ev, "requestId"), status, str(err, "code"),
                    str(err, "message"));
            if (!strcmp(status, "rejected")) print_rejection(v->out, ev);
        } else {
            int n[4] = {0};
            json_array_foreach(ops, i, op)
            {
                const char *s = str(op, "status");
                n[!strcmp(s, "succeeded") ? 0 : !strcmp(s, "unchanged") ? 1 : !strcmp(s, "planned") ? 2 : 3]++;
            }
            fprintf(v->out, "%s %s: %d changed, %d unchanged%s", str(ev, "requestId"), status,
                    n[0], n[1], n[2] ? "" : "\n");
            if (n[2]) fprintf(v->out, ", %d planned\n", n[2]);
        }
        fflush(v->out);
    }
    return terminal;
}

/* One planned call: the exact Kusto command or ARM request. */
static void print_call(FILE *out, const char *what, const json_t *c)
{
    if (!c) return;
    if (!strcmp(str(c, "route"), "arm")) {
        fprintf(out, "      %-6s %s %s?api-version=%s", what, str(c, "method"), str(c, "path"),
                str(c, "apiVersion"));
        const json_t *body = json_object_get(c, "body");
        if (body && !json_is_null(body)) {
            char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
            fprintf(out, "  %s", s ? s : "");
            free(s);
        }
        fprintf(out, "\n");
    } else {
        const char *db = str(c, "database");
        fprintf(out, "      %-6s %s%s%s: %s\n", what, str(c, "clusterUri"), *db ? "/" : "", db,
                str(c, "command"));
    }
}

int ctl_render_plan(FILE *out, const ctl_view *v)
{
    const json_t *ev = v->terminal;
    const char *status = str(ev, "status");
    const json_t *err = json_object_get(ev, "error");
    if (!strcmp(status, "rejected")) {
        fprintf(out, "%s rejected: %s: %s\n", str(ev, "requestId"), str(err, "code"),
                str(err, "message"));
        print_rejection(out, ev);
        return 0;
    }
    fprintf(out, "Plan for %s (dry run: nothing was changed)\n\n", str(ev, "requestId"));
    int change = 0, same = 0, bad = 0;
    size_t i;
    json_t *op;
    for (i = 0; i < v->nops; i++) {
        op = v->ops[i];
        if (!op) continue;
        const char *s = str(op, "status");
        int unchanged = !strcmp(s, "unchanged"), failed = !strcmp(s, "failed");
        size_t pos = 0;
        char t[256];
        render_target(json_object_get(op, "target"), t, sizeof t, &pos);
        const char *action = str(op, "action");
        fprintf(out, "  %c %s%s%s %s via %s%s\n", unchanged ? '=' : failed ? '!' : '~',
                str(op, "kind"), *action ? " " : "", action, t, str(op, "route"),
                unchanged ? "  (unchanged)" : "");
        const json_t *plan = json_object_get(op, "plan");
        print_call(out, "read", json_object_get(plan, "read"));
        if (!unchanged) print_call(out, "apply", json_object_get(plan, "apply"));
        char b[CTL_LINE_MAX];
        pos = 0;
        render_value(json_object_get(op, "before"), b, sizeof b, &pos);
        if (unchanged) {
            fprintf(out, "      %s (unchanged)\n", b);
        } else {
            add(b, sizeof b, &pos, " -> ");
            render_value(json_object_get(op, "after"), b, sizeof b, &pos);
            fprintf(out, "      %s\n", b);
        }
        const json_t *oerr = json_object_get(op, "error");
        if (oerr) fprintf(out, "      error %s: %s\n", str(oerr, "code"), str(oerr, "message"));
        if (unchanged)
            same++;
        else if (failed)
            bad++;
        else
            change++;
    }
    fprintf(out, "\nPlan: %d to change, %d unchanged%s", change, same, bad ? "" : ".\n");
    if (bad) fprintf(out, ", %d failed to plan.\n", bad);
    if (err) fprintf(out, "%s: %s\n", str(err, "code"), str(err, "message"));
    return change;
}
