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

static int usage(FILE *to, const char *prog)
{
    fprintf(to,
            "usage: %s [--config FILE] [--schemas DIR] [--json] FILE...|-\n"
            "  Checks each request FILE exactly as the worker checks a message (\"-\": stdin);\n"
            "  every schema error of a file is reported, not only the first.\n"
            "  --config FILE  the worker's configuration (limits, replyTo allow-list,\n"
            "                 Kusto host suffixes); default: built-in defaults\n"
            "  --schemas DIR  the schemas directory (worker.schemas.dir)\n"
            "  --json         one JSON line per file: the `rejected` reply event, or\n"
            "                 {\"file\",\"valid\":true,\"status\":\"accepted\",\"requestId\"}\n"
            "  --help, -h     this text; --version: the versions\n"
            "  Options may come anywhere; \"--\" ends them.\n"
            "  exit: 0 all accepted, 1 some rejected, 2 usage, I/O or configuration error\n",
            prog);
    return 2;
}

/* Reads at most limit + 1 bytes, so an oversized file is reported by the decoder as
 * MessageTooLarge rather than read whole.  Returns NULL with errno set on failure. */
static char *read_bounded(const char *path, size_t limit, size_t *len)
{
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(limit + 1);
    if (!buf) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    *len = fread(buf, 1, limit + 1, f);
    int failed = ferror(f);
    if (!is_stdin) fclose(f);
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
        json_object_set_new(ev, "valid", json_false());
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

static void print_accepted(const char *path, const pw_request *req, int json_out)
{
    if (!json_out) {
        printf("%s: accepted: %s\n", path, pw_request_id(req));
        return;
    }
    json_t *j = json_pack("{s:s, s:b, s:s, s:s}", "file", path, "valid", 1, "status", "accepted",
                          "requestId", pw_request_id(req));
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(j);
}

int pw_validate_cli_run(const char *prog, int argc, char **argv)
{
    const char *config_path = NULL, *schemas_dir = NULL;
    int json_out = 0, nfiles = 0, stdin_used = 0, opts_done = 0;
    /* Options anywhere: the files are collected in argv order into files[]. */
    char **files = calloc((size_t)(argc > 0 ? argc : 1), sizeof *files);
    if (!files) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts_done || !strcmp(a, "-") || a[0] != '-') {
            if (!strcmp(a, "-") && stdin_used++) {
                fprintf(stderr, "%s: \"-\" (stdin) given twice\n", prog);
                free(files);
                return 2;
            }
            files[nfiles++] = argv[i];
        } else if (!strcmp(a, "--")) {
            opts_done = 1;
        } else if (!strcmp(a, "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (!strcmp(a, "--schemas") && i + 1 < argc) {
            schemas_dir = argv[++i];
        } else if (!strcmp(a, "--json")) {
            json_out = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, prog);
            free(files);
            return 0;
        } else if (!strcmp(a, "--version")) {
            pw_version_print(stdout, strncmp(prog, "policyctl", 9) ? "policy-worker" : "policyctl");
            free(files);
            return 0;
        } else {
            fprintf(stderr, "%s: unknown option %s\n", prog, a);
            free(files);
            return usage(stderr, prog);
        }
    }
    if (nfiles == 0) {
        free(files);
        return usage(stderr, prog);
    }

    char err[1024];
    pw_config cfg;
    if (pw_config_load(&cfg, config_path, err, sizeof err) ||
        (schemas_dir && pw_config_set(&cfg, "worker.schemas.dir", schemas_dir, err, sizeof err))) {
        fprintf(stderr, "%s: %s\n", prog, err);
        pw_config_free(&cfg);
        free(files);
        return 2;
    }
    pw_request_checker *chk = pw_request_checker_new(&cfg, err, sizeof err);
    if (!chk) {
        fprintf(stderr, "%s: %s\n", prog, err);
        pw_config_free(&cfg);
        free(files);
        return 2;
    }
    int rc = 0;
    for (int i = 0; i < nfiles; i++) {
        const char *path = files[i];
        size_t len = 0;
        char *buf = read_bounded(path, cfg.max_message_bytes, &len);
        if (!buf) {
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
            rc = 2;
            continue;
        }
        pw_rejection rej;
        memset(&rej, 0, sizeof rej);
        pw_request *req = pw_request_decode(chk, buf, len, &rej);
        if (req) {
            print_accepted(path, req, json_out);
            pw_request_free(req);
        } else if (rej.internal) { /* no verdict: the check itself failed (out of memory) */
            fprintf(stderr, "%s: %s: %s\n", prog, path, rej.message);
            rc = 2;
        } else {
            print_rejection(path, &rej, json_out, cfg.worker_id);
            if (rc == 0) rc = 1;
        }
        pw_rejection_clear(&rej);
        free(buf);
    }
    pw_request_checker_free(chk);
    pw_config_free(&cfg);
    free(files);
    return rc;
}

int pw_validate_cli(int argc, char **argv)
{
    return pw_validate_cli_run("policy-worker validate", argc, argv);
}
