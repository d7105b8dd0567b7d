/* sim_proc.h: for C integration tests: the real azure-sim forked on a free loopback port,
 * and blocking calls to its /_sim/ API (the test side only, never the worker's code path). */
#ifndef PW_TEST_SIM_PROC_H
#define PW_TEST_SIM_PROC_H

#include <jansson.h>
#include <sys/types.h>

#include "pw/azure.h"

typedef struct test_sim {
    pid_t pid;
    int port;
    char dir[256];               /* its --cert-dir; removed by test_sim_stop */
    char ca_file[300];           /* dir/ca.pem */
    char connect_to[64];         /* "::127.0.0.1:PORT", a libcurl CONNECT_TO entry */
    const char *connect_list[1]; /* { connect_to }, for pw_azure_config.connect_to */
} test_sim;

/* Starts bin with --listen 127.0.0.1:0 --cert-dir $TMPDIR/<tag>-XXXXXX (TMPDIR defaults to
 * /tmp) and waits for its base URL.  Returns 0, 77 when bin is not built (skip), 1 on
 * failure (call test_sim_stop all the same). */
int test_sim_start(test_sim *sim, const char *bin, const char *tag);
/* SIGTERM, wait, remove the directory.  Safe to call twice. */
void test_sim_stop(test_sim *sim);

/* METHOD https://management.azure.com<path> through the simulator (connect-to + its CA).
 * Returns the parsed body (an empty object for an empty body; new reference) or NULL when
 * the transport failed or the body is not JSON; *status gets the HTTP status (0 if none). */
json_t *test_sim_admin(const test_sim *sim, const char *method, const char *path, const char *body,
                       long *status);
/* test_sim_admin for calls that must succeed (set-up, state reads): the parsed body (new
 * reference), or NULL when the transport failed, the body is not JSON or the status is not
 * below 300 (the reason goes to stderr).  Callers assert on the result. */
json_t *test_sim_admin_ok(const test_sim *sim, const char *method, const char *path,
                          const char *body);

/* The simulator's default identity (tenant, app, secret) and its CA and connect-to rule,
 * into a configuration the caller has filled with pw_azure_config_defaults. */
void test_sim_identity(const test_sim *sim, pw_azure_config *cfg);

#endif
