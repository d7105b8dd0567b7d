/* main.c: azure-sim: AAD, ARM and Kusto over HTTPS on one loopback port (see README.md).
 * Prints its base URL as the first stdout line, then serves until SIGINT/SIGTERM. */
#include "sim_core.h"

#include "pw/version.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: azure-sim [--listen 127.0.0.1:PORT] [--state FILE] [--cert-dir DIR]\n"
               "                 [--identity-listen 127.0.0.1:PORT]\n"
               "  --listen    address and port (default 127.0.0.1:0 = a free port)\n"
               "  --state     JSON state to start from (default: the built-in default state)\n"
               "  --cert-dir  where ca.pem and the keys live (default "
               "${TMPDIR:-/tmp}/azure-sim-<uid>)\n"
               "  --identity-listen  also serve the managed-identity endpoints (IMDS\n"
               "              /metadata/identity/oauth2/token, App Service /msi/token) over\n"
               "              plain HTTP on this loopback address; its URL is stdout's 2nd line\n"
                "  --help      this text; --version: the version and the libraries'\n");
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0", *state_file = NULL, *cert_dir = NULL,
               *identity_listen = NULL;
    char def_dir[512], err[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--version")) {
            pw_version_print(stdout, "azure-sim");
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--listen"))
            listen = argv[++i];
        else if (!strcmp(a, "--state"))
            state_file = argv[++i];
        else if (!strcmp(a, "--cert-dir"))
            cert_dir = argv[++i];
        else if (!strcmp(a, "--identity-listen"))
            identity_listen = argv[++i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!cert_dir) {
        const char *tmp = getenv("TMPDIR");
        snprintf(def_dir, sizeof(def_dir), "%s/azure-sim-%ld", tmp && *tmp ? tmp : "/tmp",
                 (long)getuid());
        cert_dir = def_dir;
    }

    sim_state st;
    memset(&st, 0, sizeof(st));
    pthread_mutex_init(&st.lock, NULL);
    st.root = state_file ? sim_state_load(state_file, err, sizeof(err)) : sim_state_default();
    if (!st.root) {
        fprintf(stderr, "azure-sim: bad state: %s\n", err);
        return 1;
    }

    char *names[SIM_MAX_NAMES];
    size_t nnames = sim_state_cert_names(st.root, names, SIM_MAX_NAMES);
    sim_certs certs;
    int rc = sim_certs_load(cert_dir, names, nnames, &certs, err, sizeof(err));
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    if (rc != 0) {
        fprintf(stderr, "azure-sim: certificates: %s\n", err);
        json_decref(st.root);
        return 1;
    }

    /* Block the stop signals in every thread (MHD's inherit the mask); main waits. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    sim_server *srv = sim_server_start(&st, &certs, listen, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "azure-sim: %s\n", err);
        sim_certs_clear(&certs);
        json_decref(st.root);
        return 1;
    }
    unsigned identity_port = 0;
    if (identity_listen) {
        identity_port = sim_server_identity_start(srv, identity_listen, err, sizeof(err));
        if (!identity_port) {
            fprintf(stderr, "azure-sim: %s\n", err);
            sim_server_stop(srv);
            sim_certs_clear(&certs);
            json_decref(st.root);
            return 1;
        }
    }
    printf("%s\n", st.base_url);
    if (identity_port) {
        char host[64];
        snprintf(host, sizeof(host), "%.*s", (int)(strrchr(identity_listen, ':') - identity_listen),
                 identity_listen);
        printf("http://%s:%u\n", host, identity_port);
    }
    fflush(stdout);
    fprintf(stderr, "azure-sim: serving %s; CA %s/ca.pem\n", st.base_url, cert_dir);

    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "azure-sim: signal %d, stopping\n", sig);
    sim_server_stop(srv);
    sim_certs_clear(&certs);
    json_decref(st.root);
    pthread_mutex_destroy(&st.lock);
    return 0;
}
