/* test_rollout.c: a rollout's wave boundaries (canary, cumulative percentages rounded up, at
 * least one target a wave) and its events as reply.v1.json describes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pw/reply.h"
#include "pw/rollout.h"
#include "pw/schema.h"

/* The waves of n targets with canary and steps (percentages, 0-terminated) as "1,2,10,20". */
static void expect_waves(size_t n, size_t canary, const unsigned *steps, const char *want)
{
    pw_request_rollout ro = {.canary = canary};
    while (steps[ro.step_count])
        ro.steps[ro.step_count] = steps[ro.step_count], ro.step_count++;
    size_t ends[PW_ROLLOUT_WAVES_MAX];
    size_t w = pw_rollout_waves(&ro, n, ends);
    char got[512] = "";
    for (size_t i = 0; i < w; i++) {
        size_t len = strlen(got);
        snprintf(got + len, sizeof got - len, "%s%zu", i ? "," : "", ends[i]);
    }
    if (strcmp(got, want) != 0)
        fail_msg("%zu targets, canary %zu: waves end at %s, expected %s", n, canary, got, want);
}

static void wave_arithmetic(void **state)
{
    (void)state;
    const unsigned issue[] = {10, 50, 100, 0}, all[] = {100, 0}, fine[] = {1, 2, 3, 100, 0};
    expect_waves(20, 1, issue, "1,2,10,20"); /* the issue's example */
    expect_waves(20, 0, issue, "2,10,20");   /* no canary */
    expect_waves(3, 1, issue, "1,2,3");      /* 10% and 50% of 3 round up, one more each */
    expect_waves(1, 1, issue, "1");          /* the canary is everything: no empty waves */
    expect_waves(5, 10, issue, "5");         /* a canary larger than the list */
    expect_waves(0, 1, issue, "");           /* nothing to do */
    expect_waves(10, 1, all, "1,10");        /* default steps */
    expect_waves(10, 0, all, "10");
    expect_waves(1000, 1, issue, "1,100,500,1000");
    expect_waves(7, 2, fine, "2,3,4,5,7");            /* 1% 2% 3% of 7 each add one target */
    expect_waves(10001, 0, issue, "1001,5001,10001"); /* rounded up */
    const unsigned short_steps[] = {50, 0};           /* (decode refuses a last step below 100%) */
    expect_waves(10, 1, short_steps, "1,5,10");
}

static pw_schema_registry *reg;
static pw_schema *reply;

static void expect_valid(json_t *ev)
{
    pw_schema_result res = {0};
    if (pw_schema_validate(reply, ev, &res) != PW_SCHEMA_VALID) {
        char *t = json_dumps(ev, 0);
        fail_msg("invalid event %s: %s: %s", t, res.count ? res.errors[0].instance_location : "",
                 res.count ? res.errors[0].message : "");
    }
    pw_schema_result_clear(&res);
    json_decref(ev);
}

static json_t *event(const char *status, json_t *member, const json_t *error)
{
    pw_reply_request r = {.request_id = "ro-1",
                          .status = status,
                          .worker_id = "w",
                          .sequence = 2,
                          .operation_index = -1,
                          .error = error,
                          .error_index = -1,
                          .rollout = member};
    return pw_reply_request_event(&r);
}

/* The events a rollout emits have the shapes reply.v1.json gives them; results chunk. */
static void rollout_events(void **state)
{
    (void)state;
    char err[512];
    reg = pw_schema_registry_new();
    if (pw_schema_registry_add_file(reg, NULL, PW_SOURCE_DIR "/schemas/reply.v1.json", err,
                                    sizeof err) != 0)
        fail_msg("%s", err);
    reply = pw_schema_compile(reg, "https://adx-policy-worker.example/schemas/reply.v1.json", NULL,
                              err, sizeof err);
    assert_non_null(reply);

    pw_reply_counts c = {.targets = 8, .succeeded = 5, .unchanged = 1, .failed = 1, .skipped = 1};
    expect_valid(event("accepted",
                       json_pack("{s:i, s:i, s:[{s:i, s:i}], s:i, s:i}", "targets", 8, "templates",
                                 1, "waves", "wave", 0, "targets", 8, "failureBudget", 0,
                                 "pauseBetweenWavesSeconds", 0),
                       NULL));
    expect_valid(
        event("wave",
              json_pack("{s:i, s:o, s:i, s:i, s:s}", "wave", 0, "counts", pw_reply_counts_json(&c),
                        "failedTargets", 1, "failureBudget", 0, "next", "halt"),
              NULL));
    json_t *wave = pw_reply_counts_json(&c);
    json_object_set_new(wave, "wave", json_integer(0));
    json_t *error = pw_reply_error("RolloutHalted", "m", 0);
    expect_valid(event("failed",
                       json_pack("{s:i, s:[o], s:o}", "targets", 8, "waves", wave, "totals",
                                 pw_reply_counts_json(&c)),
                       error));
    json_decref(error);

    /* results: at most PW_REPLY_RESULTS_MAX a chunk, and about PW_REPLY_RESULTS_BYTES */
    json_t *target = json_pack("{s:s, s:s}", "clusterUri", "https://a.westus.kusto.windows.net",
                               "database", "d");
    json_t *results = json_array();
    size_t bytes = 0, taken = 0;
    for (size_t i = 0; i < 2 * PW_REPLY_RESULTS_MAX; i++) {
        pw_reply_target t = {.index = i, .wave = 0, .status = "unchanged", .target = target};
        int rc = pw_reply_results_add(results, &bytes, pw_reply_target_result(&t));
        assert_true(rc >= 0);
        if (rc == 0) break;
        taken++;
    }
    assert_int_equal(taken, PW_REPLY_RESULTS_MAX);
    expect_valid(event("running", json_pack("{s:i, s:o}", "wave", 0, "results", results), NULL));

    results = json_array();
    bytes = 0;
    json_t *big = json_pack("{s:s, s:s, s:s}", "clusterUri", "https://a.westus.kusto.windows.net",
                            "database", "d", "pad", "");
    char *pad = calloc(1, PW_REPLY_RESULTS_BYTES / 3);
    memset(pad, 'x', PW_REPLY_RESULTS_BYTES / 3 - 1);
    json_object_set_new(big, "pad", json_string(pad));
    free(pad);
    taken = 0;
    for (size_t i = 0; i < 10; i++) {
        pw_reply_target t = {.index = i, .wave = 0, .status = "succeeded", .target = big};
        if (pw_reply_results_add(results, &bytes, pw_reply_target_result(&t)) != 1) break;
        taken++;
    }
    assert_int_equal(taken, 2); /* a third would pass PW_REPLY_RESULTS_BYTES */
    assert_true(bytes <= PW_REPLY_RESULTS_BYTES);
    json_decref(results);
    json_decref(big);
    json_decref(target);
    pw_schema_free(reply);
    pw_schema_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wave_arithmetic),
        cmocka_unit_test(rollout_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
