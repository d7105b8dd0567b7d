/* uri.c: RFC 3986 reference resolution for $id, $ref and $dynamicRef. */
#include "schema_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct uri_parts {
    const char *scheme;
    size_t scheme_len;
    const char *auth;
    size_t auth_len;
    int has_auth;
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
    int has_query;
    const char *frag;
    size_t frag_len;
    int has_frag;
} uri_parts;

static void uri_split(const char *s, uri_parts *p)
{
    memset(p, 0, sizeof *p);
    const char *c = s;
    /* scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    const char *q = c;
    while (*q && *q != ':' && *q != '/' && *q != '?' && *q != '#')
        q++;
    if (*q == ':' && q > c) {
        p->scheme = c;
        p->scheme_len = (size_t)(q - c);
        c = q + 1;
    }
    if (c[0] == '/' && c[1] == '/') {
        c += 2;
        p->has_auth = 1;
        p->auth = c;
        while (*c && *c != '/' && *c != '?' && *c != '#')
            c++;
        p->auth_len = (size_t)(c - p->auth);
    }
    p->path = c;
    while (*c && *c != '?' && *c != '#')
        c++;
    p->path_len = (size_t)(c - p->path);
    if (*c == '?') {
        c++;
        p->has_query = 1;
        p->query = c;
        while (*c && *c != '#')
            c++;
        p->query_len = (size_t)(c - p->query);
    }
    if (*c == '#') {
        c++;
        p->has_frag = 1;
        p->frag = c;
        p->frag_len = strlen(c);
    }
}

/* RFC 3986 5.2.4, writing into out (which has room for strlen(in)+1). */
static void remove_dots(const char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        if (n - i >= 3 && !strncmp(in + i, "../", 3)) {
            i += 3;
        } else if (n - i >= 2 && !strncmp(in + i, "./", 2)) {
            i += 2;
        } else if (n - i >= 3 && !strncmp(in + i, "/./", 3)) {
            i += 2;
        } else if (n - i == 2 && !strncmp(in + i, "/.", 2)) {
            i += 1;
            out[o++] = '/';
            i += 1;
        } else if (n - i >= 4 && !strncmp(in + i, "/../", 4)) {
            i += 3;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0) o--;
        } else if (n - i == 3 && !strncmp(in + i, "/..", 3)) {
            i += 3;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0) o--;
            out[o++] = '/';
        } else if ((n - i == 1 && in[i] == '.') || (n - i == 2 && !strncmp(in + i, "..", 2))) {
            i = n;
        } else {
            if (in[i] == '/') out[o++] = in[i++];
            while (i < n && in[i] != '/')
                out[o++] = in[i++];
        }
    }
    out[o] = 0;
}

char *pw_schema_uri_resolve(const char *base, const char *ref)
{
    uri_parts b, r;
    uri_split(base ? base : "", &b);
    uri_split(ref, &r);
    size_t cap = strlen(base ? base : "") + strlen(ref) + 8;
    char *merged = malloc(cap), *path = malloc(cap), *out = malloc(cap);
    if (!merged || !path || !out) {
        free(merged), free(path), free(out);
        return NULL;
    }
    const uri_parts *sch = &b, *auth = &b, *qry = &b;
    path[0] = 0;
    if (r.scheme) {
        sch = auth = qry = &r;
        remove_dots(r.path, r.path_len, path);
    } else if (r.has_auth) {
        auth = qry = &r;
        remove_dots(r.path, r.path_len, path);
    } else if (r.path_len == 0) {
        memcpy(path, b.path, b.path_len);
        path[b.path_len] = 0;
        if (r.has_query) qry = &r;
    } else {
        qry = &r;
        if (r.path[0] == '/') {
            remove_dots(r.path, r.path_len, path);
        } else {
            size_t m = 0;
            if (b.has_auth && b.path_len == 0) {
                merged[m++] = '/';
            } else {
                const char *slash = NULL;
                for (size_t i = 0; i < b.path_len; i++)
                    if (b.path[i] == '/') slash = b.path + i;
                if (slash) {
                    memcpy(merged, b.path, (size_t)(slash - b.path) + 1);
                    m = (size_t)(slash - b.path) + 1;
                }
            }
            memcpy(merged + m, r.path, r.path_len);
            m += r.path_len;
            /* an opaque base (urn:x:y) keeps no slash: no dot removal needed */
            remove_dots(merged, m, path);
        }
    }
    size_t o = 0;
    if (sch->scheme) {
        memcpy(out + o, sch->scheme, sch->scheme_len);
        o += sch->scheme_len;
        out[o++] = ':';
    }
    if (auth->has_auth) {
        out[o++] = '/', out[o++] = '/';
        memcpy(out + o, auth->auth, auth->auth_len);
        o += auth->auth_len;
    }
    size_t pl = strlen(path);
    memcpy(out + o, path, pl);
    o += pl;
    if (qry->has_query) {
        out[o++] = '?';
        memcpy(out + o, qry->query, qry->query_len);
        o += qry->query_len;
    }
    if (r.has_frag && r.frag_len > 0) {
        out[o++] = '#';
        memcpy(out + o, r.frag, r.frag_len);
        o += r.frag_len;
    }
    out[o] = 0;
    free(merged);
    free(path);
    return out;
}
