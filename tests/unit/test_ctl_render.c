/* test_ctl_render.c: policyctl's views of reply events: the operation line (progress bar,
 * waits, before -> after), the terminal redraw in place, plain lines, the plan, exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "render.h"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    assert_non_null(j);
    return j;
}

#define ARM_TARGET                                                                              \
    "{\"subscriptionId\":\"s\",\"resourceGroup\":\"rg\",\"cluster\":\"c1\",\"database\":\"db\"}"

static void test_op_line(void **state)
{
    (void)state;
    char buf[1024];
    json_t *op = load("{\"index\":0,\"kind\":\"database.retention\",\"route\":\"arm\",\"target\":" ARM_TARGET
                      ",\"status\":\"running\",\"attempts\":1,\"before\":{\"softDeletePeriod\":\"P365D\"},"
                      "\"after\":null,\"lro\":{\"status\":\"Running\",\"polls\":2,\"percentComplete\":40}}");
    ctl_render_op(op, buf, sizeof buf);
    assert_string_equal(buf, "  [0] database.retention c1/db via arm  running  attempts=1  lro Running "
                             "[########............]  40%  softDeletePeriod=P365D -> -");
    json_decref(op);

    op = load("{\"index\":3,\"kind\":\"table.caching\",\"route\":\"kusto\",\"target\":{\"clusterUri\":"
              "\"https://k1.westus.kusto.windows.net\",\"database\":\"db\",\"table\":\"T\"},\"status\":"
              "\"running\",\"queue\":{\"waitingFor\":\"Kusto cluster concurrency\",\"level\":8,"
              "\"capacity\":8,\"ahead\":2}}");
    ctl_render_op(op, buf, sizeof buf);
    assert_string_equal(buf, "  [3] table.caching k1/db/T via kusto  running  waiting for Kusto cluster "
                             "concurrency (2 ahead)");
    json_decref(op);

    /* a short buffer is cut, never overrun */
    op = load("{\"index\":0,\"kind\":\"table.caching\",\"route\":\"kusto\",\"target\":{},\"status\":\"x\"}");
    char small[12];
    ctl_render_op(op, small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    json_decref(op);
}

static const char *const EVENTS[] = {
    "{\"requestId\":\"r1\",\"status\":\"accepted\",\"sequence\":1,\"workerId\":\"w\",\"operations\":"
    "[{\"index\":0,\"kind\":\"database.retention\",\"route\":\"arm\",\"target\":" ARM_TARGET ",\"status\":"
    "\"pending\",\"plan\":{\"read\":{\"route\":\"arm\",\"method\":\"GET\",\"path\":\"/p\",\"apiVersion\":\"v\"},"
    "\"apply\":{\"route\":\"arm\",\"method\":\"PATCH\",\"path\":\"/p\",\"apiVersion\":\"v\",\"body\":{\"a\":1}}}}]}",
    "{\"requestId\":\"r1\",\"status\":\"running\",\"sequence\":2,\"workerId\":\"w\",\"operationIndex\":0,"
    "\"operations\":[{\"index\":0,\"kind\":\"database.retention\",\"route\":\"arm\",\"target\":" ARM_TARGET
    ",\"status\":\"running\",\"lro\":{\"status\":\"Running\",\"polls\":1,\"percentComplete\":50}}]}",
    "{\"requestId\":\"r1\",\"status\":\"succeeded\",\"sequence\":3,\"workerId\":\"w\",\"dryRun\":true,"
    "\"operations\":[{\"index\":0,\"kind\":\"database.retention\",\"route\":\"arm\",\"target\":" ARM_TARGET
    ",\"status\":\"planned\",\"before\":{\"softDeletePeriod\":\"P365D\"},\"after\":{\"softDeletePeriod\":\"P10D\"}}]}",
};

/* Feeds EVENTS to a view; returns what it printed (caller frees). */
static char *follow(int tty, ctl_view **keep)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    ctl_view *v = ctl_view_new(f, tty, 0);
    int terminal = 0;
    for (size_t i = 0; i < sizeof EVENTS / sizeof *EVENTS; i++) {
        json_t *ev = load(EVENTS[i]);
        terminal = ctl_view_event(v, ev);
        assert_int_equal(terminal, i + 1 == sizeof EVENTS / sizeof *EVENTS);
        json_decref(ev);
    }
    fflush(f);
    if (keep) {
        *keep = v;
    } else {
        ctl_view_free(v);
    }
    fclose(f);
    return text;
}

static void test_tty_redraws_in_place(void **state)
{
    (void)state;
    char *t = follow(1, NULL);
    /* the first drawing moves nowhere; each later one goes up one line and erases it */
    assert_non_null(strstr(t, "\033[1A\r\033[2K  [0] database.retention c1/db via arm  running  lro Running "
                              "[##########..........]  50%"));
    assert_null(strstr(t, "\033[2A"));
    assert_non_null(strstr(t, "r1 succeeded: 0 changed, 0 unchanged, 1 planned\n"));
    free(t);
}

static void test_plain_lines(void **state)
{
    (void)state;
    char *t = follow(0, NULL);
    assert_null(strchr(t, '\033'));
    assert_string_equal(t, "r1 accepted by w: 1 operation\n"
                           "  [0] database.retention c1/db via arm  pending\n"
                           "  [0] database.retention c1/db via arm  running  lro Running "
                           "[##########..........]  50%\n"
                           "  [0] database.retention c1/db via arm  planned  softDeletePeriod=P365D -> "
                           "softDeletePeriod=P10D\n"
                           "r1 succeeded: 0 changed, 0 unchanged, 1 planned\n");
    free(t);
}

static void test_plan(void **state)
{
    (void)state;
    ctl_view *v = NULL;
    free(follow(0, &v));
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(ctl_render_plan(f, v), 1);
    fclose(f);
    assert_string_equal(text, "Plan for r1 (dry run: nothing was changed)\n\n"
                              "  ~ database.retention c1/db via arm\n"
                              "      read   GET /p?api-version=v\n"
                              "      apply  PATCH /p?api-version=v  {\"a\":1}\n"
                              "      softDeletePeriod=P365D -> softDeletePeriod=P10D\n"
                              "\nPlan: 1 to change, 0 unchanged.\n");
    free(text);
    ctl_view_free(v);
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(ctl_status_exit("succeeded"), 0);
    assert_int_equal(ctl_status_exit("failed"), 1);
    assert_int_equal(ctl_status_exit("rejected"), 2);
    assert_int_equal(ctl_status_exit("running"), 3);
    assert_int_equal(ctl_status_exit(NULL), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_line),
        cmocka_unit_test(test_tty_redraws_in_place),
        cmocka_unit_test(test_plain_lines),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
