/* pacing_bench.c: ARM write pacing through the Azure client (pw_azure) against azure-sim at its
 * default ARM throttle (writes 200 / 10 per s, reads 250 / 25 per s per principal and
 * subscription): N database caching PATCHes over D databases, all started at once, each
 * followed to its end (LRO polls and the final GET, as the worker does).  Prints the elapsed
 * time beside the ideal one, the 429s per kind and the failures.  Run by bench/pacing.sh.
 *
 * Usage: pacing-bench [--n N] [--databases D] [--sim PATH] [--sim-reads 0|1]
 *                     [--pacing 0|1] [--attempts A] [--timeout-s S] */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_proc.h"

#include "pw/azure.h"
#include "pw/log.h"
#include "pw/loop.h"

#define SUB "22222222-2222-2222-2222-222222222222"
#define CLUSTER_PATH                                                                               \
    "/subscriptions/" SUB "/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/"             \
    "mykustocluster"
#define MAX_CODES 16

typedef struct outcome {
    int done, ok;
    char code[48];
} outcome;

static size_t n_done;

static void on_done(void *ctx, const pw_azure_result *r)
{
    outcome *o = ctx;
    o->done = 1;
    o->ok = r->ok;
    snprintf(o->code, sizeof o->code, "%s", r->ok ? "" : r->code);
    n_done++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The default state with D copies of its database (benchdb0 ...), the throttle as configured. */
static int set_state(test_sim *sim, long dbs, int sim_reads)
{
    json_t *st = test_sim_admin_ok(sim, "GET", "/_sim/state", NULL);
    if (!st) return -1;
    json_object_del(st, "armRuntime");
    json_t *cl = json_array_get(
        json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(st, "subscriptions"), 0),
                                           "resourceGroups"),
                           0),
            "clusters"),
        0);
    json_t *proto = json_deep_copy(json_array_get(json_object_get(cl, "databases"), 0));
    json_t *list = json_array();
    for (long i = 0; proto && list && i < dbs; i++) {
        json_t *d = json_deep_copy(proto);
        char name[32];
        snprintf(name, sizeof name, "benchdb%ld", i);
        json_object_set_new(d, "name", json_string(name));
        json_object_set_new(d, "tables", json_array());
        json_array_append_new(list, d);
    }
    json_decref(proto);
    json_object_set_new(cl, "databases", list);
    json_t *set = json_object_get(st, "settings");
    json_object_set_new(set, "armWriteBucket", json_integer(200));
    json_object_set_new(set, "armWriteRefillPerSecond", json_integer(10));
    json_object_set_new(set, "armReadBucket", json_integer(sim_reads ? 250 : 0));
    json_object_set_new(set, "armReadRefillPerSecond", json_integer(25));
    char *text = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    json_t *r = text ? test_sim_admin_ok(sim, "PUT", "/_sim/state", text) : NULL;
    free(text);
    if (!r) return -1;
    json_decref(r);
    return 0;
}

int main(int argc, char **argv)
{
    long n = 1000, dbs = -1, attempts = 8, timeout_s = 1800;
    int sim_reads = 1, pacing = 1;
    const char *bin = AZURE_SIM_BIN;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            n = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--databases"))
            dbs = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--sim"))
            bin = argv[i + 1];
        else if (!strcmp(argv[i], "--sim-reads"))
            sim_reads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pacing"))
            pacing = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--attempts"))
            attempts = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--timeout-s"))
            timeout_s = atol(argv[i + 1]);
        else {
            fprintf(stderr, "pacing-bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (dbs <= 0) dbs = n;
    if (n <= 0 || n > 100000 || dbs > 100000) {
        fprintf(stderr, "pacing-bench: --n and --databases must be 1..100000\n");
        return 2;
    }
    pw_log_set_level(PW_LOG_ERROR);
    test_sim sim;
    int rc = test_sim_start(&sim, bin, "pw-pacing-bench");
    if (rc) {
        test_sim_stop(&sim);
        return rc;
    }
    if (set_state(&sim, dbs, sim_reads) < 0) {
        fprintf(stderr, "pacing-bench: azure-sim refused the state\n");
        test_sim_stop(&sim);
        return 1;
    }
    char err[256];
    pw_loop *loop = pw_loop_new(err, sizeof err);
    pw_azure_config cfg;
    pw_azure_config_defaults(&cfg);
    test_sim_identity(&sim, &cfg);
    cfg.max_attempts = (unsigned)attempts;
    if (!pacing) cfg.arm_write_bucket = cfg.arm_read_bucket = 0;
    if (!sim_reads) cfg.arm_read_bucket = 0;
    pw_azure *az = loop ? pw_azure_new(loop, &cfg, err, sizeof err) : NULL;
    if (!az) {
        fprintf(stderr, "pacing-bench: %s\n", err);
        test_sim_stop(&sim);
        return 1;
    }
    outcome *o = calloc((size_t)n, sizeof *o);
    if (!o) return 1;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        char path[PW_AZ_ARM_PATH_MAX], days[16];
        snprintf(path, sizeof path, CLUSTER_PATH "/databases/benchdb%ld", i % dbs);
        snprintf(days, sizeof days, "P%ldD", 1 + i % 30);
        json_t *body =
            json_pack("{s:s,s:{s:s}}", "kind", "ReadWrite", "properties", "hotCachePeriod", days);
        pw_azure_call c = {.request_id = "bench", .on_done = on_done, .ctx = &o[i]};
        if (pw_azure_arm(az, "PATCH", path, body, &c, err, sizeof err) < 0) {
            fprintf(stderr, "pacing-bench: %s\n", err);
            return 1;
        }
        json_decref(body);
    }
    double last_report = t0;
    while (n_done < (size_t)n && now_s() - t0 < (double)timeout_s) {
        pw_loop_run_once(loop, 200);
        if (now_s() - last_report >= 10) {
            last_report = now_s();
            fprintf(stderr, "pacing-bench: %.0f s, %zu of %ld done\n", last_report - t0, n_done, n);
        }
    }
    double elapsed = now_s() - t0;
    pw_azure_stats st;
    pw_azure_stats_get(az, &st);
    size_t failed = 0, unfinished = 0, ncodes = 0, counts[MAX_CODES] = {0};
    const char *codes[MAX_CODES];
    for (long i = 0; i < n; i++) {
        if (!o[i].done) {
            unfinished++;
            continue;
        }
        if (o[i].ok) continue;
        failed++;
        size_t k = 0;
        while (k < ncodes && strcmp(codes[k], o[i].code) != 0)
            k++;
        if (k == ncodes && ncodes < MAX_CODES) codes[ncodes++] = o[i].code;
        if (k < ncodes) counts[k]++;
    }
    uint64_t w = st.admitted[PW_AZ_PACE_ARM_WRITE], r = st.admitted[PW_AZ_PACE_ARM_READ];
    uint64_t w429 = st.throttled[PW_AZ_PACE_ARM_WRITE], r429 = st.throttled[PW_AZ_PACE_ARM_READ];
    printf("pacing-bench: %ld ARM writes (database caching PATCH) over %ld databases, client "
           "pacing %s, azure-sim reads throttled: %s\n",
           n, dbs, pacing ? "on" : "off", sim_reads ? "yes (250 / 25 per s)" : "no");
    printf("elapsed_s %.1f\n", elapsed);
    printf("ideal_writes_s %.1f   ((N - 200) / 10)\n", n > 200 ? (double)(n - 200) / 10.0 : 0.0);
    if (pacing && sim_reads)
        printf("ideal_reads_s %.1f   ((reads sent - 250) / 25: LRO polls and final GETs)\n",
               r > 250 ? (double)(r - 250) / 25.0 : 0.0);
    {
        printf("arm_writes_sent %llu  answered_429 %llu (%.2f%%)\n", (unsigned long long)w,
               (unsigned long long)w429, w ? 100.0 * (double)w429 / (double)w : 0.0);
        printf("arm_reads_sent %llu  answered_429 %llu (%.2f%%)\n", (unsigned long long)r,
               (unsigned long long)r429, r ? 100.0 * (double)r429 / (double)r : 0.0);
        printf("arm_429_share %.2f%% of %llu ARM requests\n",
               w + r ? 100.0 * (double)(w429 + r429) / (double)(w + r) : 0.0,
               (unsigned long long)(w + r));
        printf("queued_writes %llu (avg %.0f ms), queued_reads %llu (avg %.0f ms)\n",
               (unsigned long long)st.waited[PW_AZ_PACE_ARM_WRITE],
               st.waited[PW_AZ_PACE_ARM_WRITE] ? (double)st.wait_ms[PW_AZ_PACE_ARM_WRITE] /
                                                     (double)st.waited[PW_AZ_PACE_ARM_WRITE]
                                               : 0.0,
               (unsigned long long)st.waited[PW_AZ_PACE_ARM_READ],
               st.waited[PW_AZ_PACE_ARM_READ] ? (double)st.wait_ms[PW_AZ_PACE_ARM_READ] /
                                                    (double)st.waited[PW_AZ_PACE_ARM_READ]
                                              : 0.0);
    }
    printf("succeeded %zu  failed %zu  unfinished %zu\n", (size_t)n - failed - unfinished, failed,
           unfinished);
    for (size_t k = 0; k < ncodes; k++)
        printf("  failed %s: %zu\n", codes[k], counts[k]);
    pw_azure_free(az);
    pw_loop_free(loop);
    free(o);
    test_sim_stop(&sim);
    return failed || unfinished ? 1 : 0;
}
