/* render.h: policyctl's readable views of reply events (live per-operation lines, plans). */
#ifndef PW_CTL_RENDER_H
#define PW_CTL_RENDER_H

#include <jansson.h>
#include <stdio.h>

/* The state of one followed request, as its events arrive.  tty = 1: the operation lines are
 * redrawn in place (ANSI cursor up + erase line); 0: a line is printed each time an
 * operation's line changes.  quiet = 1: nothing is printed (plan collects silently). */
typedef struct ctl_view ctl_view;

ctl_view *ctl_view_new(FILE *out, int tty, int quiet);
void ctl_view_free(ctl_view *v);

/* Takes one reply event (borrowed).  Returns 1 when it is terminal (succeeded, failed,
 * rejected), else 0. */
int ctl_view_event(ctl_view *v, const json_t *ev);

/* The last terminal event (borrowed, owned by v), or NULL. */
const json_t *ctl_view_terminal(const ctl_view *v);

/* Exit code of a terminal status: 0 succeeded, 1 failed, 2 rejected; 3 none yet. */
int ctl_status_exit(const char *status);

/* One readable line for a reply event of any request (watch): time, id, #seq, status and a
 * summary of its operations or rollout.  Writes at most len bytes (NUL-terminated). */
void ctl_render_event_line(const json_t *ev, char *buf, size_t len);

/* One operation as a live line: [i] kind target route status attempts progress wait
 * before -> after.  Writes at most len bytes. */
void ctl_render_op(const json_t *op, char *buf, size_t len);

/* `terraform plan`-like text of a followed dry run (its terminal event, with each operation's
 * plan from the accepted event).  Returns the number of operations that would change. */
int ctl_render_plan(FILE *out, const ctl_view *v);

#endif
