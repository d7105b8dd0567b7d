/* config.c: loads the worker's key=value configuration file and its environment variables. */
#include "pw/config.h"

#include "pw/admin.h"
#include "pw/ops.h"

#include <ctype.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "pw/names.h"
#include "pw/paths.h"

#define CFG_MAX_LINE 8192   /* a longer line is an error, not a silent cut */
#define CFG_MAX_LINES 10000 /* bounded file */
#define CFG_MAX_LIST 256    /* entries in a comma list */
#define CFG_MAX_CA_CERTS                                                                           \
    10000 /* certificates read from azure.ca.file (a system bundle has ~150)                       \
           */

/* Keys whose values are never echoed in an error message. */
static int is_sensitive_key(const char *key)
{
    return strstr(key, "secret") || strstr(key, "password") || strstr(key, "header") || strstr(key, "sasl.oauthbearer") ||
           strstr(key, "ssl.key.pem") || strstr(key, "ssl_key");
}

static int replace_str(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy) return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

static int replace_cstr(const char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy) return -1;
    free((char *)*slot);
    *slot = copy;
    return 0;
}

extern char **environ;

struct pw_config_origin {
    char *key;   /* full name: "kafka.group.id" */
    char *where; /* "FILE:LINE" or "environment PW_..." */
};

/* One load in progress: where problems go and how many there were. */
typedef struct loader {
    pw_config *cfg;
    pw_config_report_fn report;
    void *ctx;
    int problems;
} loader;

static void problem(loader *L, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(loader *L, const char *where, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    L->problems++;
    if (L->report) L->report(L->ctx, where, text);
}

/* Remembers that key was last set at where (a later setter replaces it). */
static int set_origin(pw_config *cfg, const char *key, const char *where)
{
    for (size_t i = 0; i < cfg->origin_count; i++) {
        if (!strcmp(cfg->origins[i].key, key)) {
            char *w = strdup(where);
            if (!w) return -1;
            free(cfg->origins[i].where);
            cfg->origins[i].where = w;
            return 0;
        }
    }
    struct pw_config_origin *grown =
        realloc(cfg->origins, (cfg->origin_count + 1) * sizeof *cfg->origins);
    if (!grown) return -1;
    cfg->origins = grown;
    struct pw_config_origin *o = &cfg->origins[cfg->origin_count];
    o->key = strdup(key);
    o->where = strdup(where);
    if (!o->key || !o->where) {
        free(o->key);
        free(o->where);
        return -1;
    }
    cfg->origin_count++;
    return 0;
}

const char *pw_config_origin(const pw_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->origin_count; i++)
        if (!strcmp(cfg->origins[i].key, key)) return cfg->origins[i].where;
    return NULL;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* Splits a comma list, trimming blanks and dropping empty entries. */
static int parse_list(const char *key, const char *value, char ***out, size_t *count, char *err,
                      size_t errlen)
{
    char **list = NULL;
    size_t n = 0;
    const char *p = value;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (len) {
            if (n == CFG_MAX_LIST) {
                pw_err_set(err, errlen, "%s: more than %d entries", key, CFG_MAX_LIST);
                free_list(list, n);
                return -1;
            }
            char **grown = realloc(list, (n + 1) * sizeof *list);
            if (!grown) {
                free_list(list, n);
                pw_err_set(err, errlen, "%s: out of memory", key);
                return -1;
            }
            list = grown;
            if (!(list[n] = strndup(p, len))) {
                free_list(list, n);
                pw_err_set(err, errlen, "%s: out of memory", key);
                return -1;
            }
            n++;
        }
        if (!end) break;
        p = end + 1;
    }
    *out = list;
    *count = n;
    return 0;
}

/* Strict unsigned/long parse: decimal digits only, within [min, max]. */
static int parse_num(const char *key, const char *value, long long min, long long max,
                     long long *out, char *err, size_t errlen)
{
    const char *p = value;
    if (!*p || !(isdigit((unsigned char)*p) || *p == '-')) {
        pw_err_set(err, errlen, "%s: not a number: \"%s\"", key, value);
        return -1;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(p, &end, 10);
    if (errno || !end || *end) {
        pw_err_set(err, errlen, "%s: not a number: \"%s\"", key, value);
        return -1;
    }
    if (v < min || v > max) {
        pw_err_set(err, errlen, "%s: %lld is out of range [%lld, %lld]", key, v, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int set_defaults(pw_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    /* The Azure client's own defaults; its string defaults are literals, replaced here by
     * owned copies because pw_config_free frees every azure string. */
    pw_azure_config_defaults(&cfg->azure);
    const char *authority = cfg->azure.authority_host, *arm = cfg->azure.arm_endpoint,
               *version = cfg->azure.arm_api_version;
    cfg->azure.authority_host = cfg->azure.arm_endpoint = cfg->azure.arm_api_version = NULL;
    if (replace_cstr(&cfg->azure.authority_host, authority) ||
        replace_cstr(&cfg->azure.arm_endpoint, arm) ||
        replace_cstr(&cfg->azure.arm_api_version, version))
        goto oom;

    char host[128] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    char id[200];
    snprintf(id, sizeof id, "%s-%ld", host, (long)getpid());
    if (replace_str(&cfg->worker_id, id) ||
        replace_str(&cfg->request_topic, "adx.policy.requests") ||
        replace_str(&cfg->reply_topic, "adx.policy.replies") ||
        replace_str(&cfg->dead_letter_topic, "adx.policy.deadletter") ||
        replace_str(&cfg->schemas_dir, pw_paths_schemas_dir()) ||
        replace_str(&cfg->log_level, "info") ||
        replace_str(&cfg->admin_listen, PW_CONFIG_ADMIN_LISTEN) ||
        replace_str(&cfg->credential_check, "on"))
        goto oom;
    cfg->max_in_flight = 1000;
    cfg->max_uncommitted = 10000;
    cfg->max_message_bytes = 1048576;
    cfg->max_json_depth = 32;
    cfg->max_operations = 100;
    cfg->operation_timeout_ms = PW_CONFIG_OPERATION_TIMEOUT_MS;
    cfg->queue_timeout_ms = PW_CONFIG_QUEUE_TIMEOUT_MS;
    cfg->coalesce_max = PW_CONFIG_COALESCE_MAX;
    cfg->rollout_targets_max = PW_CONFIG_ROLLOUT_TARGETS_MAX;
    cfg->drain_timeout_ms = 30000;
    cfg->teardown_timeout_ms = 5000;
    cfg->reply_retry_backoff_ms = 1000;

    size_t n = 0;
    while (pw_names_default_kusto_suffixes[n])
        n++;
    cfg->kusto_host_suffixes = calloc(n, sizeof *cfg->kusto_host_suffixes);
    if (!cfg->kusto_host_suffixes) goto oom;
    for (size_t i = 0; i < n; i++) {
        cfg->kusto_host_suffixes[i] = strdup(pw_names_default_kusto_suffixes[i]);
        if (!cfg->kusto_host_suffixes[i]) goto oom;
        cfg->kusto_host_suffix_count = i + 1;
    }
    return 0;
oom:
    pw_err_set(err, errlen, "out of memory");
    return -1;
}

typedef enum { K_STR, K_ASTR, K_LIST, K_NUM, K_BOOL } key_type;

typedef struct key_spec {
    const char *name;
    key_type type;
    long long min, max;
    size_t offset; /* of the field in pw_config */
    int width;     /* K_NUM: sizeof the field */
} key_spec;

#define F(field) offsetof(pw_config, field)
#define NUMK(name, field, min, max)                                                                \
    {                                                                                              \
        name, K_NUM, min, max, F(field), (int)sizeof(((pw_config *)0)->field)                      \
    }

static const key_spec key_specs[] = {
    {"worker.id", K_STR, 0, 0, F(worker_id), 0},
    {"worker.request.topic", K_STR, 0, 0, F(request_topic), 0},
    {"worker.reply.topic", K_STR, 0, 0, F(reply_topic), 0},
    {"worker.deadletter.topic", K_STR, 0, 0, F(dead_letter_topic), 0},
    {"worker.replyto.allowed", K_LIST, 0, 0, F(allowed_reply_topics), 0},
    {"worker.schemas.dir", K_STR, 0, 0, F(schemas_dir), 0},
    {"worker.kinds.allowed", K_LIST, 0, 0, F(kinds_allowed), 0},
    {"worker.kinds.privileged.allowed", K_LIST, 0, 0, F(kinds_privileged_allowed), 0},
    {"worker.log.level", K_STR, 0, 0, F(log_level), 0},
    {"worker.admin.listen", K_STR, 0, 0, F(admin_listen), 0},
    {"worker.credential.check", K_STR, 0, 0, F(credential_check), 0},
    NUMK("worker.inflight.max", max_in_flight, 1, 1000000),
    NUMK("worker.uncommitted.max", max_uncommitted, 1, 10000000),
    NUMK("worker.message.max.bytes", max_message_bytes, 2, 100 * 1024 * 1024),
    NUMK("worker.json.max.depth", max_json_depth, 2, 1000),
    NUMK("worker.operations.max", max_operations, 1, 10000),
    NUMK("worker.operation.timeout.ms", operation_timeout_ms, 1, 86400000),
    NUMK("worker.queue.timeout.ms", queue_timeout_ms, 1, 86400000),
    NUMK("worker.coalesce.max", coalesce_max, 1, 256),
    NUMK("worker.rollout.targets.max", rollout_targets_max, 1, 1000000),
    NUMK("worker.drain.timeout.ms", drain_timeout_ms, 0, 3600000),
    NUMK("worker.teardown.timeout.ms", teardown_timeout_ms, 0, 3600000),
    NUMK("worker.reply.retry.backoff.ms", reply_retry_backoff_ms, 1, 600000),
    {"azure.kusto.host.suffixes", K_LIST, 0, 0, F(kusto_host_suffixes), 0},
    {"azure.tenant.id", K_ASTR, 0, 0, F(azure.tenant_id), 0},
    {"azure.client.id", K_ASTR, 0, 0, F(azure.client_id), 0},
    {"azure.client.secret", K_ASTR, 0, 0, F(azure.client_secret), 0},
    {"azure.credential", K_ASTR, 0, 0, F(azure.credential), 0},
    {"azure.client.certificate.path", K_ASTR, 0, 0, F(azure.client_certificate_path), 0},
    {"azure.client.certificate.password", K_ASTR, 0, 0, F(azure.client_certificate_password), 0},
    {"azure.client.send.certificate.chain", K_BOOL, 0, 1, F(azure.send_certificate_chain),
     (int)sizeof(int)},
    {"azure.federated.token.file", K_ASTR, 0, 0, F(azure.federated_token_file), 0},
    {"azure.imds.endpoint", K_ASTR, 0, 0, F(azure.imds_endpoint), 0},
    {"azure.authority.host", K_ASTR, 0, 0, F(azure.authority_host), 0},
    {"azure.arm.endpoint", K_ASTR, 0, 0, F(azure.arm_endpoint), 0},
    {"azure.arm.api.version", K_ASTR, 0, 0, F(azure.arm_api_version), 0},
    {"azure.ca.file", K_ASTR, 0, 0, F(azure.ca_file), 0},
    {"azure.connect.to", K_LIST, 0, 0, F(azure.connect_to), 0},
    NUMK("azure.connect.timeout.ms", azure.connect_timeout_ms, 1, 3600000),
    NUMK("azure.request.timeout.ms", azure.request_timeout_ms, 1, 3600000),
    NUMK("azure.response.max.bytes", azure.max_response_bytes, 1024, 1024 * 1024 * 1024),
    NUMK("azure.attempts.max", azure.max_attempts, 1, 1000),
    NUMK("azure.backoff.base.ms", azure.backoff_base_ms, 0, 3600000),
    NUMK("azure.backoff.max.ms", azure.backoff_max_ms, 0, 3600000),
    NUMK("azure.retry.after.max.ms", azure.max_retry_after_ms, 0, 3600000),
    NUMK("azure.lro.poll.interval.ms", azure.lro_poll_default_ms, 1, 3600000),
    NUMK("azure.token.refresh.margin.ms", azure.token_refresh_margin_ms, 0, 86400000),
    NUMK("azure.host.connections.max", azure.max_host_connections, 1, 10000),
    NUMK("azure.arm.writes.burst", azure.arm_write_bucket, 0, 1000000),
    NUMK("azure.arm.writes.per.second", azure.arm_write_refill_per_s, 1, 1000000),
    NUMK("azure.arm.reads.burst", azure.arm_read_bucket, 0, 1000000),
    NUMK("azure.arm.reads.per.second", azure.arm_read_refill_per_s, 1, 1000000),
    NUMK("azure.kusto.concurrent.max", azure.kusto_concurrent_max, 0, 10000),
};

static const key_spec *find_spec(const char *key)
{
    for (size_t i = 0; i < sizeof key_specs / sizeof key_specs[0]; i++)
        if (!strcmp(key_specs[i].name, key)) return &key_specs[i];
    return NULL;
}

static size_t *list_count_slot(pw_config *cfg, const key_spec *spec)
{
    if (spec->offset == F(allowed_reply_topics)) return &cfg->allowed_reply_topic_count;
    if (spec->offset == F(kusto_host_suffixes)) return &cfg->kusto_host_suffix_count;
    if (spec->offset == F(kinds_allowed)) return &cfg->kinds_allowed_count;
    if (spec->offset == F(kinds_privileged_allowed)) return &cfg->kinds_privileged_allowed_count;
    return &cfg->azure.connect_to_count;
}

/* The worker.kinds.* lists name kinds of the catalogue; the privileged list only
 * privileged ones (a mistake there would read as a grant that does nothing). */
static int check_kinds(const key_spec *spec, char **list, size_t n, char *err, size_t errlen)
{
    int privileged_list = spec->offset == F(kinds_privileged_allowed);
    if (!privileged_list && spec->offset != F(kinds_allowed)) return 0;
    for (size_t i = 0; i < n; i++) {
        pw_kind k;
        if (pw_ops_lookup(list[i], &k) != 0) {
            pw_err_set(err, errlen, "%s: \"%.64s\" is not an operation kind (policy-worker kinds "
                       "lists them)", spec->name, list[i]);
            return -1;
        }
        if (privileged_list && !pw_ops_privileged(k)) {
            pw_err_set(err, errlen, "%s: \"%s\" is not privileged; it is allowed unless "
                       "worker.kinds.allowed leaves it out", spec->name, list[i]);
            return -1;
        }
    }
    return 0;
}

/* true/false/1/0 (any case: AZURE_CLIENT_SEND_CERTIFICATE_CHAIN's values); -1 otherwise. */
static int parse_bool(const char *v)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1")) return 1;
    if (!strcasecmp(v, "false") || !strcmp(v, "0")) return 0;
    return -1;
}

static int apply_key(pw_config *cfg, const key_spec *spec, const char *value, char *err,
                     size_t errlen)
{
    char *base = (char *)cfg;
    switch (spec->type) {
    case K_STR:
        if (!*value) {
            pw_err_set(err, errlen, "%s: empty value", spec->name);
            return -1;
        }
        if (replace_str((char **)(base + spec->offset), value)) goto oom;
        return 0;
    case K_ASTR:
        if (!*value) {
            pw_err_set(err, errlen, "%s: empty value", spec->name);
            return -1;
        }
        if (replace_cstr((const char **)(base + spec->offset), value)) goto oom;
        return 0;
    case K_LIST: {
        char **list = NULL;
        size_t n = 0;
        if (parse_list(spec->name, value, &list, &n, err, errlen)) return -1;
        if (check_kinds(spec, list, n, err, errlen)) {
            free_list(list, n);
            return -1;
        }
        size_t *count = list_count_slot(cfg, spec);
        char ***slot = (char ***)(base + spec->offset);
        free_list(*slot, *count);
        *slot = list;
        *count = n;
        return 0;
    }
    case K_BOOL: {
        int v = parse_bool(value);
        if (v < 0) {
            pw_err_set(err, errlen, "%s: expected true or false (or 1, 0), not \"%.40s\"",
                       spec->name, value);
            return -1;
        }
        *(int *)(base + spec->offset) = v;
        return 0;
    }
    case K_NUM: {
        long long v;
        if (parse_num(spec->name, value, spec->min, spec->max, &v, err, errlen)) return -1;
        void *slot = base + spec->offset;
        if (spec->width == (int)sizeof(long long))
            *(long long *)slot = v;
        else if (spec->width == (int)sizeof(int))
            *(int *)slot = (int)v;
        else if (spec->width == (int)sizeof(short))
            *(short *)slot = (short)v;
        else
            *(char *)slot = (char)v;
        return 0;
    }
    }
    return 0;
oom:
    pw_err_set(err, errlen, "%s: out of memory", spec->name);
    return -1;
}

static int add_kafka(pw_config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    if (cfg->kafka_count >= CFG_MAX_LINES) {
        pw_err_set(err, errlen, "kafka.%s: too many kafka.* keys", key);
        return -1;
    }
    pw_config_kv *grown = realloc(cfg->kafka, (cfg->kafka_count + 1) * sizeof *grown);
    if (!grown) {
        pw_err_set(err, errlen, "kafka.%s: out of memory", key);
        return -1;
    }
    cfg->kafka = grown;
    pw_config_kv *kv = &cfg->kafka[cfg->kafka_count];
    kv->key = strdup(key);
    kv->value = strdup(value);
    if (!kv->key || !kv->value) {
        free(kv->key);
        free(kv->value);
        pw_err_set(err, errlen, "kafka.%s: out of memory", key);
        return -1;
    }
    cfg->kafka_count++;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Reads the file line by line; a bad line is reported ("FILE:LINE: ...") and the next one
 * read, so one pass lists every problem. */
static void load_file(loader *L, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        problem(L, NULL, "%s: %s", path, strerror(errno));
        return;
    }
    char *line = malloc(CFG_MAX_LINE + 2);
    if (!line) {
        fclose(f);
        problem(L, NULL, "out of memory");
        return;
    }
    unsigned lineno = 0;
    int skipping = 0; /* inside the rest of an overlong line */
    char where[PATH_MAX + 32];
    char err[512];
    while (fgets(line, CFG_MAX_LINE + 2, f)) {
        size_t len = strlen(line);
        int complete = len && line[len - 1] == '\n';
        if (skipping) {
            skipping = !complete;
            continue;
        }
        lineno++;
        snprintf(where, sizeof where, "%s:%u", path, lineno);
        if (lineno > CFG_MAX_LINES) {
            problem(L, NULL, "%s: more than %d lines", path, CFG_MAX_LINES);
            break;
        }
        if (len > CFG_MAX_LINE && !complete) {
            problem(L, where, "line longer than %d bytes", CFG_MAX_LINE);
            skipping = 1;
            continue;
        }
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            problem(L, where, "expected key=value");
            continue;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        if (pw_config_set(L->cfg, key, value, err, sizeof err)) {
            problem(L, where, "%s", err);
            continue;
        }
        if (set_origin(L->cfg, key, where)) problem(L, where, "%s: out of memory", key);
    }
    if (ferror(f)) problem(L, NULL, "%s: read error", path);
    free(line);
    fclose(f);
}

int pw_config_env_name(const char *key, char *out, size_t outlen)
{
    size_t o = 0;
    const char *prefix = "PW_";
    for (const char *p = prefix; *p; p++) {
        if (o + 1 >= outlen) return -1;
        out[o++] = *p;
    }
    for (const char *p = key; *p; p++) {
        const char *rep;
        char one[2] = {(char)toupper((unsigned char)*p), '\0'};
        rep = *p == '.' ? "_" : *p == '_' ? "__" : *p == '-' ? "___" : one;
        for (; *rep; rep++) {
            if (o + 1 >= outlen) return -1;
            out[o++] = *rep;
        }
    }
    out[o] = '\0';
    return 0;
}

/* PW_A_B_C -> "a.b.c" ("__" -> "_", "___" -> "-"); name without the "PW_" prefix. */
static int env_to_key(const char *name, size_t namelen, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < namelen;) {
        char c;
        if (name[i] == '_') {
            size_t run = 0;
            while (i + run < namelen && name[i + run] == '_' && run < 3)
                run++;
            c = run == 1 ? '.' : run == 2 ? '_' : '-';
            i += run;
        } else {
            c = (char)tolower((unsigned char)name[i]);
            i++;
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* Every PW_KAFKA_*, PW_WORKER_*, PW_AZURE_* variable, as if it were a line after the file's.
 * Sorted by name, so the order (which matters only for kafka.* aliases) does not depend on
 * the environment's. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_pw_env(loader *L)
{
    static const char *const prefixes[] = {"PW_KAFKA_", "PW_WORKER_", "PW_AZURE_"};
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        problem(L, NULL, "out of memory");
        return;
    }
    size_t m = 0;
    for (char **e = environ; e && *e; e++)
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
            if (!strncmp(*e, prefixes[i], strlen(prefixes[i])) && strchr(*e, '=')) names[m++] = *e;
    qsort(names, m, sizeof *names, cmp_str);
    char err[512], key[512], where[600];
    for (size_t i = 0; i < m; i++) {
        const char *eq = strchr(names[i], '=');
        size_t namelen = (size_t)(eq - names[i]);
        snprintf(where, sizeof where, "environment %.*s", (int)namelen, names[i]);
        if (env_to_key(names[i] + 3, namelen - 3, key, sizeof key)) {
            problem(L, where, "variable name too long");
            continue;
        }
        if (pw_config_set(L->cfg, key, eq + 1, err, sizeof err)) {
            problem(L, where, "%s", err);
            continue;
        }
        if (set_origin(L->cfg, key, where)) problem(L, where, "%s: out of memory", key);
    }
    free(names);
}

int pw_config_set(pw_config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    if (!strncmp(key, "kafka.", 6)) {
        if (!key[6]) {
            pw_err_set(err, errlen, "kafka.: empty librdkafka property name");
            return -1;
        }
        return add_kafka(cfg, key + 6, value, err, errlen);
    }
    const key_spec *spec = find_spec(key);
    if (!spec) {
        if (!strncmp(key, "worker.", 7) || !strncmp(key, "azure.", 6))
            pw_err_set(err, errlen, "%s: unknown configuration key", key);
        else
            pw_err_set(err, errlen,
                       "%s: unknown configuration key (expected a kafka.*, worker.* "
                       "or azure.* key)",
                       key);
        return -1;
    }
    if (apply_key(cfg, spec, value, err, errlen)) {
        if (is_sensitive_key(key)) pw_err_set(err, errlen, "%s: invalid value", key);
        return -1;
    }
    return 0;
}

/* Each kafka.* key goes through librdkafka once here, so a bad one fails at start with its
 * name instead of at the first rd_kafka_new. */
static void check_kafka(loader *L)
{
    const pw_config *cfg = L->cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        problem(L, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        char rderr[512] = "", full[512];
        snprintf(full, sizeof full, "kafka.%s", cfg->kafka[i].key);
        if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, rderr, sizeof rderr) !=
            RD_KAFKA_CONF_OK) {
            const char *where = pw_config_origin(cfg, full);
            if (is_sensitive_key(cfg->kafka[i].key))
                problem(L, where, "kafka.%s: rejected by librdkafka", cfg->kafka[i].key);
            else
                problem(L, where, "kafka.%s: %s", cfg->kafka[i].key, rderr);
        }
    }
    rd_kafka_conf_destroy(conf);
}

/* azure.ca.file is what libcurl (OpenSSL) will trust: PEM certificates.  A file with none
 * (garbage, DER, a key) or with a block OpenSSL cannot read would fail every TLS handshake
 * at run time; refused here, naming the file. */
static int check_ca_file(const char *path, char *err, size_t errlen)
{
    BIO *bio = BIO_new_file(path, "r");
    if (!bio) {
        pw_err_set(err, errlen, "azure.ca.file: %s: cannot be opened", path);
        return -1;
    }
    size_t certs = 0;
    X509 *x;
    ERR_clear_error();
    while (certs < CFG_MAX_CA_CERTS && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_free(x);
        certs++;
    }
    /* The loop ends at the end of the file ("no start line": no further PEM certificate) or
     * at a block it cannot read. */
    unsigned long e = ERR_peek_last_error();
    int at_end = certs == CFG_MAX_CA_CERTS ||
                 (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
    char why[160] = "";
    if (!at_end) ERR_error_string_n(e, why, sizeof why);
    ERR_clear_error();
    BIO_free(bio);
    if (!at_end) {
        pw_err_set(err, errlen, "azure.ca.file: %s: certificate %zu is not readable (%s)", path,
                   certs + 1, why);
        return -1;
    }
    if (!certs) {
        pw_err_set(err, errlen, "azure.ca.file: %s holds no PEM certificate", path);
        return -1;
    }
    return 0;
}

/* Values each key accepts alone but that cannot work; every one is reported. */
static void check_values(loader *L)
{
    pw_config *cfg = L->cfg;
    char err[512];
    const char *lvl = cfg->log_level;
    if (strcmp(lvl, "debug") && strcmp(lvl, "info") && strcmp(lvl, "warn") &&
        strcmp(lvl, "error"))
        problem(L, pw_config_origin(cfg, "worker.log.level"),
                "worker.log.level: expected debug, info, warn or error, not \"%s\"", lvl);
    if (strcmp(cfg->credential_check, "on") && strcmp(cfg->credential_check, "off"))
        problem(L, pw_config_origin(cfg, "worker.credential.check"),
                "worker.credential.check: expected on or off, not \"%s\"", cfg->credential_check);
    if (cfg->admin_listen[0] && !pw_admin_listen_ok(cfg->admin_listen))
        problem(L, pw_config_origin(cfg, "worker.admin.listen"),
                "worker.admin.listen: \"%s\" is not HOST:PORT with an IP address (e.g. "
                "127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464; empty disables it)",
                cfg->admin_listen);
    const char *urls[][2] = {{"azure.authority.host", cfg->azure.authority_host},
                             {"azure.arm.endpoint", cfg->azure.arm_endpoint}};
    for (size_t i = 0; i < 2; i++) {
        if (urls[i][1] && strncmp(urls[i][1], "https://", 8))
            problem(L, pw_config_origin(cfg, urls[i][0]), "%s: must be an https:// URL, not \"%s\"",
                    urls[i][0], urls[i][1]);
    }
    static const char *const creds[] = {"auto", "secret", "certificate", "workload", "managed"};
    size_t ci = 0;
    while (cfg->azure.credential && ci < 5 && strcmp(cfg->azure.credential, creds[ci]))
        ci++;
    if (ci == 5)
        problem(L, pw_config_origin(cfg, "azure.credential"),
                "azure.credential: expected secret, certificate, workload, managed or auto, not "
                "\"%.40s\"",
                cfg->azure.credential);
    if (cfg->azure.imds_endpoint && strncmp(cfg->azure.imds_endpoint, "http://", 7) &&
        strncmp(cfg->azure.imds_endpoint, "https://", 8))
        problem(L, pw_config_origin(cfg, "azure.imds.endpoint"),
                "azure.imds.endpoint: must be an http:// or https:// URL, not \"%.200s\"",
                cfg->azure.imds_endpoint);
    const char *files[][2] = {{"azure.client.certificate.path", cfg->azure.client_certificate_path},
                              {"azure.federated.token.file", cfg->azure.federated_token_file}};
    for (size_t i = 0; i < 2; i++)
        if (files[i][1] && access(files[i][1], R_OK))
            problem(L, pw_config_origin(cfg, files[i][0]), "%s: %s: %s", files[i][0], files[i][1],
                    strerror(errno));
    const char *ca_where = pw_config_origin(cfg, "azure.ca.file");
    if (cfg->azure.ca_file && access(cfg->azure.ca_file, R_OK))
        problem(L, ca_where, "azure.ca.file: %s: %s", cfg->azure.ca_file, strerror(errno));
    else if (cfg->azure.ca_file && check_ca_file(cfg->azure.ca_file, err, sizeof err))
        problem(L, ca_where, "%s", err);
    for (size_t i = 0; i < cfg->kusto_host_suffix_count; i++) {
        if (cfg->kusto_host_suffixes[i][0] != '.')
            problem(L, pw_config_origin(cfg, "azure.kusto.host.suffixes"),
                    "azure.kusto.host.suffixes: \"%s\" must start with '.'",
                    cfg->kusto_host_suffixes[i]);
    }
}

/* The Azure SDKs' environment variables: applied before the file, so a value the file sets
 * wins and the environment fills only what the file leaves unset (or at its default). */
static int apply_env(pw_config *cfg, char *err, size_t errlen)
{
    struct {
        const char *env;
        const char **slot;
    } map[] = {
        {"AZURE_TENANT_ID", &cfg->azure.tenant_id},
        {"AZURE_CLIENT_ID", &cfg->azure.client_id},
        {"AZURE_CLIENT_SECRET", &cfg->azure.client_secret},
        {"AZURE_AUTHORITY_HOST", &cfg->azure.authority_host},
        {"AZURE_CLIENT_CERTIFICATE_PATH", &cfg->azure.client_certificate_path},
        {"AZURE_CLIENT_CERTIFICATE_PASSWORD", &cfg->azure.client_certificate_password},
        {"AZURE_FEDERATED_TOKEN_FILE", &cfg->azure.federated_token_file},
        {"IDENTITY_ENDPOINT", &cfg->azure.identity_endpoint},
        {"IDENTITY_HEADER", &cfg->azure.identity_header},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = getenv(map[i].env);
        if (!v || !*v) continue;
        if (replace_cstr(map[i].slot, v)) {
            pw_err_set(err, errlen, "%s: out of memory", map[i].env);
            return -1;
        }
    }
    const char *chain = getenv("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN");
    if (chain && *chain) {
        int v = parse_bool(chain);
        if (v < 0) {
            pw_err_set(err, errlen, "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: expected true or false "
                       "(or 1, 0)");
            return -1;
        }
        cfg->azure.send_certificate_chain = v;
    }
    return 0;
}

int pw_config_load_report(pw_config *cfg, const char *path, pw_config_report_fn fn, void *ctx)
{
    loader L = {cfg, fn, ctx, 0};
    char err[512] = "";
    if (set_defaults(cfg, err, sizeof err) || apply_env(cfg, err, sizeof err)) {
        problem(&L, NULL, "%s", err);
        return L.problems;
    }
    if (path) load_file(&L, path);
    load_pw_env(&L);
    check_kafka(&L);
    check_values(&L);
    return L.problems;
}

/* pw_config_load's reporter: keeps the first problem as "WHERE: TEXT". */
typedef struct first_problem {
    char *err;
    size_t errlen;
    int seen;
} first_problem;

static void keep_first(void *ctx, const char *where, const char *text)
{
    first_problem *fp = ctx;
    if (fp->seen++) return;
    if (where)
        pw_err_set(fp->err, fp->errlen, "%s: %s", where, text);
    else
        pw_err_set(fp->err, fp->errlen, "%s", text);
}

int pw_config_load(pw_config *cfg, const char *path, char *err, size_t errlen)
{
    first_problem fp = {err, errlen, 0};
    if (pw_config_load_report(cfg, path, keep_first, &fp) == 0) return 0;
    pw_config_free(cfg);
    return -1;
}

int pw_config_require_report(const pw_config *cfg, pw_config_report_fn fn, void *ctx)
{
    loader L = {(pw_config *)cfg, fn, ctx, 0};
    pw_azure_credential cred;
    char cerr[512];
    if (pw_azure_credential_select(&cfg->azure, &cred, cerr, sizeof cerr))
        problem(&L, NULL, "%s", cerr);
    if (!pw_config_kafka_get(cfg, "bootstrap.servers") &&
        !pw_config_kafka_get(cfg, "metadata.broker.list"))
        problem(&L, NULL, "kafka.bootstrap.servers: required");
    if (!pw_config_kafka_get(cfg, "group.id")) problem(&L, NULL, "kafka.group.id: required");
    /* Replies or dead letters on the request topic would be consumed as requests again. */
    const char *topics[][2] = {{"worker.reply.topic", cfg->reply_topic},
                               {"worker.deadletter.topic", cfg->dead_letter_topic}};
    for (size_t i = 0; i < 2; i++) {
        if (topics[i][1] && cfg->request_topic && !strcmp(topics[i][1], cfg->request_topic)) {
            const char *where = pw_config_origin(cfg, topics[i][0]);
            problem(&L, where ? where : pw_config_origin(cfg, "worker.request.topic"),
                    "%s: \"%s\" is also worker.request.topic (the worker would consume its "
                    "own output)",
                    topics[i][0], topics[i][1]);
        }
    }
    for (size_t i = 0; i < cfg->allowed_reply_topic_count; i++) {
        if (cfg->request_topic && !strcmp(cfg->allowed_reply_topics[i], cfg->request_topic))
            problem(&L, pw_config_origin(cfg, "worker.replyto.allowed"),
                    "worker.replyto.allowed: \"%s\" is also worker.request.topic",
                    cfg->allowed_reply_topics[i]);
    }
    return L.problems;
}

int pw_config_require(const pw_config *cfg, char *err, size_t errlen)
{
    first_problem fp = {err, errlen, 0};
    return pw_config_require_report(cfg, keep_first, &fp) ? -1 : 0;
}

const char *pw_config_kafka_get(const pw_config *cfg, const char *key)
{
    const char *found = NULL;
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (!strcmp(cfg->kafka[i].key, key))
            found = cfg->kafka[i].value; /* the last one wins, as in librdkafka */
    return found;
}

void pw_config_free(pw_config *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    free(cfg->worker_id);
    free(cfg->request_topic);
    free(cfg->reply_topic);
    free(cfg->dead_letter_topic);
    free_list(cfg->allowed_reply_topics, cfg->allowed_reply_topic_count);
    free(cfg->schemas_dir);
    free_list(cfg->kinds_allowed, cfg->kinds_allowed_count);
    free_list(cfg->kinds_privileged_allowed, cfg->kinds_privileged_allowed_count);
    free(cfg->log_level);
    free(cfg->admin_listen);
    free(cfg->credential_check);
    free_list(cfg->kusto_host_suffixes, cfg->kusto_host_suffix_count);
    /* Do not leave secrets lying in freed heap memory. */
    const char *secrets[] = {cfg->azure.client_secret, cfg->azure.client_certificate_password,
                             cfg->azure.identity_header};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        if (secrets[i]) explicit_bzero((char *)secrets[i], strlen(secrets[i]));
    free((char *)cfg->azure.credential);
    free((char *)cfg->azure.client_certificate_path);
    free((char *)cfg->azure.client_certificate_password);
    free((char *)cfg->azure.federated_token_file);
    free((char *)cfg->azure.imds_endpoint);
    free((char *)cfg->azure.identity_endpoint);
    free((char *)cfg->azure.identity_header);
    free((char *)cfg->azure.tenant_id);
    free((char *)cfg->azure.client_id);
    free((char *)cfg->azure.client_secret);
    free((char *)cfg->azure.authority_host);
    free((char *)cfg->azure.arm_endpoint);
    free((char *)cfg->azure.arm_api_version);
    free((char *)cfg->azure.ca_file);
    free_list((char **)cfg->azure.connect_to, cfg->azure.connect_to_count);
    for (size_t i = 0; i < cfg->origin_count; i++) {
        free(cfg->origins[i].key);
        free(cfg->origins[i].where);
    }
    free(cfg->origins);
    memset(cfg, 0, sizeof *cfg);
}
