/* sim_proc.c: fork/exec azure-sim for C integration tests and call its /_sim/ API. */
#include "sim_proc.h"

#include <curl/curl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int test_sim_start(test_sim *sim, const char *bin, const char *tag)
{
    memset(sim, 0, sizeof *sim);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "skip: %s not built\n", bin);
        return 77;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(sim->dir, sizeof sim->dir, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    if (!mkdtemp(sim->dir)) {
        sim->dir[0] = '\0';
        return 1;
    }
    int fds[2];
    if (pipe(fds) != 0) return 1;
    sim->pid = fork();
    if (sim->pid < 0) return 1;
    if (sim->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(bin, "azure-sim", "--listen", "127.0.0.1:0", "--cert-dir", sim->dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    /* The first stdout line is the base URL; certificate generation may take a while, but
     * not two minutes without a byte. */
    char line[256];
    size_t n = 0;
    while (n + 1 < sizeof line) {
        struct pollfd p = {fds[0], POLLIN, 0};
        if (poll(&p, 1, 120000) <= 0) break;
        ssize_t r = read(fds[0], line + n, 1);
        if (r <= 0 || line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    close(fds[0]);
    char *colon = strrchr(line, ':');
    sim->port = colon ? atoi(colon + 1) : 0;
    if (sim->port <= 0) {
        fprintf(stderr, "azure-sim did not print a base URL (got '%s')\n", line);
        return 1;
    }
    snprintf(sim->connect_to, sizeof sim->connect_to, "::127.0.0.1:%d", sim->port);
    sim->connect_list[0] = sim->connect_to;
    snprintf(sim->ca_file, sizeof sim->ca_file, "%s/ca.pem", sim->dir);
    return 0;
}

void test_sim_stop(test_sim *sim)
{
    if (sim->pid > 0) {
        kill(sim->pid, SIGTERM);
        waitpid(sim->pid, NULL, 0);
        sim->pid = 0;
    }
    if (sim->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", sim->dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", sim->dir);
        sim->dir[0] = '\0';
    }
}

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t buf_write(char *d, size_t s, size_t n, void *u)
{
    buf *b = u;
    char *p = realloc(b->p, b->n + s * n + 1);
    if (!p) return 0;
    memcpy(p + b->n, d, s * n);
    b->p = p;
    b->n += s * n;
    b->p[b->n] = '\0';
    return s * n;
}

json_t *test_sim_admin(const test_sim *sim, const char *method, const char *path, const char *body,
                       long *status)
{
    CURL *e = curl_easy_init();
    struct curl_slist *ct = curl_slist_append(NULL, sim->connect_to);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char url[512];
    snprintf(url, sizeof url, "https://management.azure.com%s", path);
    buf b = {0};
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CONNECT_TO, ct);
    curl_easy_setopt(e, CURLOPT_CAINFO, sim->ca_file);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(e);
    *status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(e);
    curl_slist_free_all(ct);
    curl_slist_free_all(h);
    json_t *j = NULL;
    if (rc != CURLE_OK)
        fprintf(stderr, "sim_admin %s %s: curl %d\n", method, path, rc);
    else
        j = b.n ? json_loads(b.p, 0, NULL) : json_object();
    if (rc == CURLE_OK && *status >= 300)
        fprintf(stderr, "sim_admin %s %s: HTTP %ld %s\n", method, path, *status, b.p ? b.p : "");
    free(b.p);
    return j;
}

json_t *test_sim_admin_ok(const test_sim *sim, const char *method, const char *path,
                          const char *body)
{
    long status;
    json_t *j = test_sim_admin(sim, method, path, body, &status);
    if (j && status >= 300) {
        json_decref(j);
        j = NULL;
    }
    if (!j) fprintf(stderr, "sim_admin %s %s failed (HTTP %ld)\n", method, path, status);
    return j;
}

void test_sim_identity(const test_sim *sim, pw_azure_config *cfg)
{
    cfg->tenant_id = "11111111-1111-1111-1111-111111111111";
    cfg->client_id = "33333333-3333-3333-3333-333333333333";
    cfg->client_secret = "local-demo-secret";
    cfg->ca_file = sim->ca_file;
    cfg->connect_to = sim->connect_list;
    cfg->connect_to_count = 1;
}
