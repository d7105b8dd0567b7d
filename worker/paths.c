/* paths.c: a program's data directory from its own location (installed) or the source tree. */
#include "pw/paths.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Compile-time facts, from CMake (paths.c is built once per build tree):
 *   PW_BUILD_BIN_DIR    the build tree's bin/ (where CMake writes the programs)
 *   PW_SOURCE_DIR_PATH  the source tree
 *   PW_INSTALL_BINDIR   bin directory relative to the prefix ("bin")
 *   PW_INSTALL_DATADIR  data directory relative to the prefix ("share")
 *   PW_INSTALL_PREFIX   the configured prefix: used only when /proc/self/exe is unreadable */
#ifndef PW_BUILD_BIN_DIR
#define PW_BUILD_BIN_DIR ""
#endif
#ifndef PW_SOURCE_DIR_PATH
#define PW_SOURCE_DIR_PATH "."
#endif
#ifndef PW_INSTALL_BINDIR
#define PW_INSTALL_BINDIR "bin"
#endif
#ifndef PW_INSTALL_DATADIR
#define PW_INSTALL_DATADIR "share"
#endif
#ifndef PW_INSTALL_PREFIX
#define PW_INSTALL_PREFIX "/usr/local"
#endif

static pthread_once_t paths_once = PTHREAD_ONCE_INIT;
static char schemas_dir[PATH_MAX];

/* The directory of the running program, resolved (symlinks followed), or "" when unknown. */
static void exe_dir(char *out, size_t outlen)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    out[0] = '\0';
    if (n <= 0 || (size_t)n >= sizeof exe - 1) return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash || slash == exe) return;
    *slash = '\0';
    if ((size_t)snprintf(out, outlen, "%s", exe) >= outlen) out[0] = '\0';
}

/* 1 when a and b name the same directory (both resolved; a missing one never matches). */
static int same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    if (!*a || !*b || !realpath(a, ra) || !realpath(b, rb)) return 0;
    return !strcmp(ra, rb);
}

/* PREFIX from PREFIX/<bindir>: one ".." per component of PW_INSTALL_BINDIR. */
static int prefix_of(const char *dir, char *out, size_t outlen)
{
    if ((size_t)snprintf(out, outlen, "%s", dir) >= outlen) return -1;
    for (const char *p = PW_INSTALL_BINDIR; *p;) {
        while (*p == '/')
            p++;
        if (!*p) break;
        char *slash = strrchr(out, '/');
        if (!slash) return -1;
        if (slash == out)
            slash[1] = '\0'; /* the prefix is "/" */
        else
            *slash = '\0';
        while (*p && *p != '/')
            p++;
    }
    return 0;
}

static void compute(void)
{
    char dir[PATH_MAX], prefix[PATH_MAX];
    exe_dir(dir, sizeof dir);
    if (same_dir(dir, PW_BUILD_BIN_DIR)) {
        snprintf(schemas_dir, sizeof schemas_dir, "%s/schemas", PW_SOURCE_DIR_PATH);
        return;
    }
    if (!*dir || prefix_of(dir, prefix, sizeof prefix))
        snprintf(prefix, sizeof prefix, "%s", PW_INSTALL_PREFIX);
    const char *sep = prefix[strlen(prefix) - 1] == '/' ? "" : "/";
    int n = snprintf(schemas_dir, sizeof schemas_dir, "%s%s%s/policy-worker/schemas", prefix,
                     sep, PW_INSTALL_DATADIR);
    if (n < 0 || (size_t)n >= sizeof schemas_dir) schemas_dir[0] = '\0'; /* fails the load */
}

const char *pw_paths_schemas_dir(void)
{
    pthread_once(&paths_once, compute);
    return schemas_dir;
}
