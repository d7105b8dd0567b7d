/* admin.c: /healthz, /readyz and /metrics over libmicrohttpd (see pw/admin.h). */
#include "pw/admin.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pw/log.h"
#include "pw/loop.h"
#include "pw/metrics.h"
#include "pw/status.h"

static const char *const part_names[PW_ADMIN_PARTS] = {"consumer", "producer", "credential"};

struct pw_admin {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t lock;
    uint64_t beat_ms;
    int ready[PW_ADMIN_PARTS];
    char reason[PW_ADMIN_PARTS][PW_ADMIN_REASON_MAX];
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status,
                                    const char *type, const char *text)
{
    char *body = strdup(text);
    return body ? respond(conn, status, type, body, strlen(body)) : MHD_NO;
}

/* A JSON string's content (quotes and control characters escaped) appended to out. */
static void json_escape(char *out, size_t cap, const char *s)
{
    size_t n = strlen(out);
    for (; *s && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            n += (size_t)snprintf(out + n, cap - n, "\\%c", ch);
        else if (ch < 0x20)
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        else
            out[n++] = (char)ch;
    }
    out[n] = '\0';
}

static enum MHD_Result healthz(pw_admin *a, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&a->lock);
    uint64_t beat = a->beat_ms;
    pthread_mutex_unlock(&a->lock);
    uint64_t now = pw_monotonic_ms();
    if (beat && now - beat < PW_ADMIN_STALL_MS)
        return respond_text(conn, MHD_HTTP_OK, "application/json", "{\"healthy\":true}\n");
    char body[256];
    snprintf(body, sizeof body,
             "{\"healthy\":false,\"reason\":\"the event loop has not turned for %llu ms\"}\n",
             (unsigned long long)(beat ? now - beat : 0));
    return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", body);
}

static enum MHD_Result readyz(pw_admin *a, struct MHD_Connection *conn)
{
    char body[PW_ADMIN_PARTS * (PW_ADMIN_REASON_MAX * 2 + 32) + 64] = "";
    int ready = 1;
    pthread_mutex_lock(&a->lock);
    for (int p = 0; p < PW_ADMIN_PARTS; p++) {
        if (a->ready[p]) continue;
        strcat(body, ready ? "{\"ready\":false,\"reasons\":[\"" : ",\"");
        ready = 0;
        char reason[PW_ADMIN_REASON_MAX + 32];
        snprintf(reason, sizeof reason, "%s: %s", part_names[p], a->reason[p]);
        json_escape(body, sizeof body - 8, reason);
        strcat(body, "\"");
    }
    pthread_mutex_unlock(&a->lock);
    if (ready) return respond_text(conn, MHD_HTTP_OK, "application/json", "{\"ready\":true}\n");
    strcat(body, "]}\n");
    return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", body);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    pw_admin *a = cls;
    if (!*con_cls) { /* first call, headers only: a method other than GET is answered now */
        *con_cls = a;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
        return MHD_YES;
    }
    if (*upload_size) { /* a body on a GET: ignored (bounded by the connection's memory) */
        *upload_size = 0;
        return MHD_YES;
    }
    if (!strcmp(url, "/healthz")) return healthz(a, conn);
    if (!strcmp(url, "/readyz")) return readyz(a, conn);
    if (!strcmp(url, "/metrics")) {
        size_t len = 0;
        char *text = pw_metrics_render(&len);
        if (!text) return MHD_NO;
        return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
    }
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "text/plain",
                        "not found: /healthz, /readyz, /metrics\n");
}

/* "HOST:PORT" as a socket address; -1 when it is not one. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon;
    memset(ss, 0, sizeof *ss);
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof host) return -1;
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        host[close - listen - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof host) return -1;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535) return -1;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return -1;
}

int pw_admin_listen_ok(const char *listen)
{
    struct sockaddr_storage ss;
    return parse_listen(listen, &ss) == 0;
}

pw_admin *pw_admin_start(const char *listen, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (parse_listen(listen, &ss)) {
        pw_err_set(err, errlen,
                   "worker.admin.listen: '%s' is not HOST:PORT with an IP address (e.g. "
                   "127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464)",
                   listen);
        return NULL;
    }
    pw_admin *a = calloc(1, sizeof *a);
    if (!a) {
        pw_err_set(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    for (int p = 0; p < PW_ADMIN_PARTS; p++)
        snprintf(a->reason[p], sizeof a->reason[p], "starting");
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    a->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, a, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)PW_ADMIN_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)PW_ADMIN_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)PW_ADMIN_REQUEST_MAX, MHD_OPTION_END);
    if (!a->d) {
        pw_err_set(err, errlen, "worker.admin.listen: cannot listen on %s (address in use?)",
                   listen);
        pw_admin_stop(a);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? (int)info->port : 0;
    pw_log(PW_LOG_INFO, NULL, "admin.listening", "%.*s:%d (/healthz, /readyz, /metrics)",
           (int)(strrchr(listen, ':') - listen), listen, a->port);
    return a;
}

void pw_admin_stop(pw_admin *a)
{
    if (!a) return;
    if (a->d) MHD_stop_daemon(a->d);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

int pw_admin_port(const pw_admin *a)
{
    return a ? a->port : 0;
}

void pw_admin_beat(pw_admin *a, uint64_t now_ms)
{
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    a->beat_ms = now_ms;
    pthread_mutex_unlock(&a->lock);
}

void pw_admin_ready(pw_admin *a, pw_admin_part part, const char *reason)
{
    if (!a || part >= PW_ADMIN_PARTS) return;
    pthread_mutex_lock(&a->lock);
    a->ready[part] = reason == NULL;
    snprintf(a->reason[part], sizeof a->reason[part], "%s", reason ? reason : "");
    pthread_mutex_unlock(&a->lock);
}
