/* names.c: validation of Kusto names, ARM path segments and cluster URIs (no escaping, ever). */
#include "pw/names.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *const pw_names_default_kusto_suffixes[] = {
    ".kusto.windows.net",       /* public cloud */
    ".kusto.chinacloudapi.cn",  /* Azure China */
    ".kusto.usgovcloudapi.net", /* Azure US Government */
    ".kustomfa.windows.net",    /* public cloud, MFA-enforced endpoint */
    NULL,
};

/* ClusterHostNotAllowed lists at most this many allowed suffixes ("and N more" after), and
 * quotes at most this many bytes of the host. */
#define NAMES_SUFFIXES_LISTED 8
#define NAMES_HOST_QUOTED 64

static pw_status fail(char *err, size_t errlen, pw_status st, const char *msg)
{
    pw_err_set(err, errlen, "%s", msg);
    return st;
}

pw_status pw_names_kusto_entity(const char *name, char *err, size_t errlen)
{
    if (!name || !*name)
        return fail(err, errlen, PW_ERR_INVALID, "an entity name must not be empty");
    size_t n = strlen(name);
    if (n > 1024)
        return fail(err, errlen, PW_ERR_INVALID, "an entity name has at most 1024 characters");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isascii(c) && (isalnum(c) || c == '_' || c == ' ' || c == '.' || c == '-')))
            return fail(err, errlen, PW_ERR_INVALID,
                        "an entity name may hold only letters, digits, '_', ' ', '.' and '-'");
    }
    if ((n >= 2 && name[0] == '_' && name[1] == '_') ||
        (n >= 2 && name[n - 1] == '_' && name[n - 2] == '_'))
        return fail(err, errlen, PW_ERR_INVALID,
                    "entity names starting or ending with '__' are reserved");
    return PW_OK;
}

pw_status pw_names_arm_database(const char *name, char *err, size_t errlen)
{
    pw_status st = pw_names_kusto_entity(name, err, errlen);
    if (st != PW_OK) return st;
    size_t n = strlen(name);
    /* A trailing '.' is dropped from a path segment by URL normalization on the way
     * (.NET, IIS): ".../databases/db." would address database "db". */
    if (strstr(name, "..") || name[0] == ' ' || name[n - 1] == ' ' || name[n - 1] == '.')
        return fail(err, errlen, PW_ERR_INVALID,
                    "a database name in an ARM path must not contain '..', start or end with a "
                    "space, or end with '.' (the kusto route takes such names)");
    return PW_OK;
}

pw_status pw_names_arm_child(const char *name, char *err, size_t errlen)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > PW_NAMES_ARM_CHILD_MAX)
        return fail(err, errlen, PW_ERR_INVALID, "the name has 1 to 128 characters");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isascii(c) && (isalnum(c) || c == '_' || c == '.' || c == '-')))
            return fail(err, errlen, PW_ERR_INVALID,
                        "the name may hold only letters, digits, '_', '.' and '-'");
    }
    if (name[n - 1] == '.' || strstr(name, ".."))
        return fail(err, errlen, PW_ERR_INVALID, "the name must not end with '.' or hold '..'");
    return PW_OK;
}

pw_status pw_names_subscription_id(const char *id, char *err, size_t errlen)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (!id || strlen(id) != sizeof shape - 1)
        return fail(err, errlen, PW_ERR_INVALID, "a subscription id is a GUID");
    for (size_t i = 0; shape[i]; i++) {
        int ok = shape[i] == '-' ? id[i] == '-' : isxdigit((unsigned char)id[i]) != 0;
        if (!ok) return fail(err, errlen, PW_ERR_INVALID, "a subscription id is a GUID");
    }
    return PW_OK;
}

pw_status pw_names_resource_group(const char *name, char *err, size_t errlen)
{
    if (!name || !*name || strlen(name) > 90)
        return fail(err, errlen, PW_ERR_INVALID, "a resource group name has 1 to 90 characters");
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(isascii(c) && (isalnum(c) || strchr("_-.()", c))))
            return fail(err, errlen, PW_ERR_INVALID,
                        "a resource group name may hold only letters, digits, '_', '-', '.', "
                        "'(' and ')' (no '/', '?', '#', control characters)");
    }
    if (strstr(name, ".."))
        return fail(err, errlen, PW_ERR_INVALID, "a resource group name must not contain '..'");
    if (name[strlen(name) - 1] == '.')
        return fail(err, errlen, PW_ERR_INVALID, "a resource group name must not end with '.'");
    return PW_OK;
}

pw_status pw_names_cluster(const char *name, char *err, size_t errlen)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 4 || n > 22 || !islower((unsigned char)name[0]))
        return fail(err, errlen, PW_ERR_INVALID,
                    "a cluster name has 4 to 22 lower-case letters and digits, starting with a "
                    "letter");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isascii(c) && (islower(c) || isdigit(c))))
            return fail(err, errlen, PW_ERR_INVALID,
                        "a cluster name has only lower-case letters and digits");
    }
    return PW_OK;
}

static int host_has_suffix(const char *host, const char *suffix)
{
    char want[256];
    if (!suffix || !*suffix) return 0;
    snprintf(want, sizeof want, "%s%s", suffix[0] == '.' ? "" : ".", suffix);
    size_t h = strlen(host), w = strlen(want);
    /* at least one label before the suffix */
    return h > w && strcasecmp(host + h - w, want) == 0 && host[h - w - 1] != '.';
}

/* "cluster host 'h' does not end with an allowed Kusto host suffix (allowed: .a, .b and 3
 * more)": whole suffixes only, as many as fit in err (bounded by NAMES_SUFFIXES_LISTED). */
static void host_not_allowed(char *err, size_t errlen, const char *host,
                             const char *const *suffixes, size_t count)
{
    if (!err || !errlen) return;
    int n = snprintf(err, errlen,
                     "cluster host '%.*s%s' does not end with an allowed Kusto host suffix "
                     "(allowed:",
                     NAMES_HOST_QUOTED, host, strlen(host) > NAMES_HOST_QUOTED ? "..." : "");
    if (n < 0 || (size_t)n >= errlen) return;
    size_t used = (size_t)n, listed = 0;
    static const char more_fmt[] = " and %zu more)";
    const size_t more_room = sizeof more_fmt + 20; /* the tail, whatever the count */
    for (; listed < count && listed < NAMES_SUFFIXES_LISTED; listed++) {
        const char *s = suffixes[listed] ? suffixes[listed] : "";
        size_t need = 2 + (s[0] != '.') + strlen(s); /* ", " or " " and the suffix */
        if (used + need + more_room >= errlen) break;
        used += (size_t)snprintf(err + used, errlen - used, "%s%s%s", listed ? ", " : " ",
                                 s[0] == '.' ? "" : ".", s);
    }
    if (listed < count)
        snprintf(err + used, errlen - used, more_fmt, count - listed);
    else
        snprintf(err + used, errlen - used, ")");
}

pw_status pw_names_cluster_uri(const char *uri, const char *const *suffixes, size_t count,
                               char *normalized, size_t normalized_len, char *cluster,
                               size_t cluster_len, char *err, size_t errlen)
{
    static const char scheme[] = "https://";
    char host[256];
    if (!uri || strncasecmp(uri, scheme, sizeof scheme - 1) != 0)
        return fail(err, errlen, PW_ERR_SYNTAX, "a cluster URI must start with https://");
    const char *h = uri + sizeof scheme - 1;
    size_t n = strcspn(h, "/?#@:");
    if (n == 0 || n >= sizeof host)
        return fail(err, errlen, PW_ERR_SYNTAX, "a cluster URI needs a host");
    switch (h[n]) {
    case '\0':
        break;
    case '/':
        if (h[n + 1] == '\0') break;
        return fail(err, errlen, PW_ERR_SYNTAX, "a cluster URI must not have a path");
    case '@':
        return fail(err, errlen, PW_ERR_SYNTAX, "a cluster URI must not carry user-info");
    case ':':
        return fail(err, errlen, PW_ERR_SYNTAX, "a cluster URI must not carry a port");
    default:
        return fail(err, errlen, PW_ERR_SYNTAX, "a cluster URI must not have a query or fragment");
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!(isascii(c) && (isalnum(c) || c == '-' || c == '.')))
            return fail(err, errlen, PW_ERR_SYNTAX,
                        "a cluster URI's host may hold only letters, digits, '-' and '.'");
        host[i] = (char)tolower(c);
    }
    host[n] = '\0';
    if (host[0] == '.' || host[0] == '-' || strstr(host, ".."))
        return fail(err, errlen, PW_ERR_SYNTAX, "a cluster URI's host is malformed");

    if (!suffixes || count == 0) {
        suffixes = pw_names_default_kusto_suffixes;
        count = 0;
        while (suffixes[count])
            count++;
    }
    int allowed = 0;
    for (size_t i = 0; i < count && !allowed; i++)
        allowed = host_has_suffix(host, suffixes[i]);
    if (!allowed) {
        host_not_allowed(err, errlen, host, suffixes, count);
        return PW_ERR_NOT_ALLOWED;
    }
    if (normalized &&
        snprintf(normalized, normalized_len, "https://%s", host) >= (int)normalized_len)
        return fail(err, errlen, PW_ERR_SYNTAX, "a cluster URI is too long");
    if (cluster) {
        size_t l = strcspn(host, ".");
        if (l >= cluster_len)
            return fail(err, errlen, PW_ERR_SYNTAX, "a cluster URI's first label is too long");
        memcpy(cluster, host, l);
        cluster[l] = '\0';
    }
    return PW_OK;
}

pw_status pw_names_principal_fqn(const char *fqn, char *err, size_t errlen)
{
    size_t n = fqn ? strlen(fqn) : 0;
    if (n < 1 || n > 512)
        return fail(err, errlen, PW_ERR_INVALID, "a principal FQN has 1 to 512 characters");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)fqn[i];
        if (!(isascii(c) && (isalnum(c) || strchr("@._-;=:", c))))
            return fail(err, errlen, PW_ERR_INVALID,
                        "a principal FQN may hold only letters, digits and @ . _ - ; = :");
    }
    return PW_OK;
}
