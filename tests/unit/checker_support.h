/* checker_support.h: the request checker the unit tests decode with: the source tree's
 * schemas/, reply topic "r", and (privileged = 1) every privileged kind of the catalogue
 * allowed.  One per test program (static state); free with support_checker_free. */
#ifndef PW_TEST_CHECKER_SUPPORT_H
#define PW_TEST_CHECKER_SUPPORT_H

#include <stdlib.h>
#include <string.h>

#include "pw/ops.h"
#include "pw/request.h"

static pw_config support_cfg;
static char *support_privileged[128];

static pw_request_checker *support_checker_new(int privileged, char *err, size_t errlen)
{
    memset(&support_cfg, 0, sizeof support_cfg);
    support_cfg.reply_topic = "r";
    support_cfg.schemas_dir = PW_SOURCE_DIR "/schemas";
    size_t n = 0;
    for (size_t i = 0; privileged && i < pw_ops_count(); i++) {
        for (int s = 0; s < PW_SCOPE_COUNT; s++) {
            pw_kind k = {pw_ops_row_at(i), (pw_scope)s};
            char name[PW_OPS_KIND_NAME_MAX];
            if (!pw_ops_at(k)->actions || !pw_ops_privileged(k)) continue;
            if (n == sizeof support_privileged / sizeof *support_privileged) break;
            support_privileged[n++] = strdup(pw_ops_kind_name(k, name, sizeof name));
        }
    }
    support_cfg.kinds_privileged_allowed = support_privileged;
    support_cfg.kinds_privileged_allowed_count = n;
    return pw_request_checker_new(&support_cfg, err, errlen);
}

static void support_checker_free(pw_request_checker *chk)
{
    pw_request_checker_free(chk);
    for (size_t i = 0; i < support_cfg.kinds_privileged_allowed_count; i++)
        free(support_privileged[i]);
    memset(&support_cfg, 0, sizeof support_cfg);
}

/* cmocka group setup and teardown over one checker, chk; SUPPORT_PRIVILEGED (default 1)
 * says whether privileged kinds are allowed. */
#ifndef SUPPORT_PRIVILEGED
#define SUPPORT_PRIVILEGED 1
#endif
static pw_request_checker *chk;

static int setup(void **state)
{
    (void)state;
    char err[256];
    chk = support_checker_new(SUPPORT_PRIVILEGED, err, sizeof err);
    if (!chk) fail_msg("%s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    support_checker_free(chk);
    return 0;
}

#endif
