/* validate_cli.c: `policy-worker validate`: run request files through the worker's decoder. */
#include "pw/validate_cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw/config.h"
#include "pw/reply.h"
#include "pw/request.h"
#include "pw/version.h"

static int usage(FILE *to)
{
    fprintf(to,
            "usage: policy-worker validate [--config FILE] [--json] FILE...\n"
            "  Checks each request FILE exactly as the worker checks a message.\n"
            "  --config FILE  the worker's configuration (limits, replyTo allow-list,\n"
            "                 Kusto host suffixes); default: built-in defaults\n"
            "  --json         print the `rejected` reply event for each rejected file\n"
            "  --help, -h     this text; --version: the versions (policy-worker --version)\n"
            "  exit: 0 all accepted, 1 some rejected, 2 usage, I/O or configuration error\n");
    return 2;
}

/* Reads at most limit + 1 bytes, so an oversized file is reported by the decoder as
 * MessageTooLarge rather than read whole.  Returns NULL with errno set on failure. */
static char *read_bounded(const char *path, size_t limit, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(limit + 1);
    if (!buf) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    *len = fread(buf, 1, limit + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    return buf;
}

static void print_rejection(const char *path, const pw_rejection *rej, int json_out,
                            const char *worker_id)
{
    if (json_out) {
        json_t *ev = pw_reply_rejection(rej, worker_id);
        json_object_set_new(ev, "file", json_string(path));
        char *s = json_dumps(ev, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(ev);
        return;
    }
    printf("%s: rejected: %s: %s\n", path, rej->code, rej->message);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(rej->errors, "errors"), i, e)
    {
        const char *where = json_string_value(json_object_get(e, "instanceLocation"));
        printf("%s:   %s: %s\n", path, where && *where ? where : "(root)",
               json_string_value(json_object_get(e, "error")));
    }
}

int pw_validate_cli(int argc, char **argv)
{
    const char *config_path = NULL;
    int json_out = 0, first = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            json_out = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            pw_version_print(stdout, "policy-worker");
            return 0;
        } else if (!strcmp(argv[i], "--")) {
            first = i + 1;
            break;
        } else if (argv[i][0] == '-') {
            return usage(stderr);
        } else {
            first = i;
            break;
        }
    }
    if (first >= argc) return usage(stderr);

    char err[1024];
    pw_config cfg;
    if (pw_config_load(&cfg, config_path, err, sizeof err)) {
        fprintf(stderr, "policy-worker validate: %s\n", err);
        return 2;
    }
    pw_request_checker *chk = pw_request_checker_new(&cfg, err, sizeof err);
    if (!chk) {
        fprintf(stderr, "policy-worker validate: %s\n", err);
        pw_config_free(&cfg);
        return 2;
    }
    int rc = 0;
    for (int i = first; i < argc; i++) {
        size_t len = 0;
        char *buf = read_bounded(argv[i], cfg.max_message_bytes, &len);
        if (!buf) {
            fprintf(stderr, "policy-worker validate: %s: %s\n", argv[i], strerror(errno));
            rc = 2;
            continue;
        }
        pw_rejection rej;
        memset(&rej, 0, sizeof rej);
        pw_request *req = pw_request_decode(chk, buf, len, &rej);
        if (req) {
            if (!json_out) printf("%s: accepted: %s\n", argv[i], pw_request_id(req));
            pw_request_free(req);
        } else if (rej.internal) { /* no verdict: the check itself failed (out of memory) */
            fprintf(stderr, "policy-worker validate: %s: %s\n", argv[i], rej.message);
            rc = 2;
        } else {
            print_rejection(argv[i], &rej, json_out, cfg.worker_id);
            if (rc == 0) rc = 1;
        }
        pw_rejection_clear(&rej);
        free(buf);
    }
    pw_request_checker_free(chk);
    pw_config_free(&cfg);
    return rc;
}
