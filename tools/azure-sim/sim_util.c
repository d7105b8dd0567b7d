/* sim_util.c: small helpers of the azure-sim front: response headers, clocks, settings,
 * GUIDs, base64url and form-body parsing. */
#include "sim_core.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void sim_response_header(sim_response *resp, const char *name, const char *fmt, ...)
{
    /* Replace a header of the same name so handlers can override the front's defaults
     * (and a later decision, e.g. Retry-After, wins over an earlier one). */
    size_t i;
    for (i = 0; i < resp->header_count; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0) break;
    if (i >= SIM_MAX_HEADERS) return;
    snprintf(resp->headers[i].name, sizeof(resp->headers[i].name), "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(resp->headers[i].value, sizeof(resp->headers[i].value), fmt, ap);
    va_end(ap);
    if (i == resp->header_count) resp->header_count++;
}

uint64_t sim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sim_iso_ago(char *out, size_t outlen, uint64_t ago_ms)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    ms = ago_ms < ms ? ms - ago_ms : 0;
    time_t sec = (time_t)(ms / 1000u);
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, outlen - n, ".%03uZ", (unsigned)(ms % 1000u));
}

void sim_now_iso(char *out, size_t outlen)
{
    sim_iso_ago(out, outlen, 0);
}

void sim_aad_timestamp(char *out, size_t outlen)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%d %H:%M:%SZ", &tm);
}

long long sim_wall_s(void)
{
    return (long long)time(NULL);
}

long sim_setting(const sim_state *st, const char *name, long def)
{
    json_t *v = json_object_get(json_object_get(st->root, "settings"), name);
    if (json_is_integer(v)) return (long)json_integer_value(v);
    if (json_is_real(v)) return (long)json_real_value(v);
    return def;
}

void sim_guid(char *out, size_t outlen)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)rand();
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, outlen, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *sim_b64url_encode(const unsigned char *in, size_t len)
{
    char *out = malloc(len / 3 * 4 + 5);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
        out[o++] = B64URL[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-' || c == '+') return 62;
    if (c == '_' || c == '/') return 63;
    return -1;
}

unsigned char *sim_b64url_decode(const char *in, size_t inlen, size_t maxlen, size_t *outlen)
{
    while (inlen > 0 && in[inlen - 1] == '=')
        inlen--;
    if (inlen % 4 == 1 || inlen / 4 * 3 + 3 > maxlen) return NULL;
    unsigned char *out = malloc(inlen / 4 * 3 + 4);
    if (!out) return NULL;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < inlen; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    /* Canonical encodings only: the unused low bits of the last character must be zero,
     * so a token differs from another exactly when its text does. */
    if (bits > 0 && (acc & ((1u << bits) - 1u)) != 0) {
        free(out);
        return NULL;
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes a form-encoded run of n bytes ('+' = space, %XX) into a new string. */
static char *form_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
                   hexval((unsigned char)s[i + 2]) >= 0) {
            out[o++] =
                (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

char *sim_form_get(const char *body, const char *key)
{
    size_t klen = strlen(key);
    const char *p = body;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t namelen = eq ? (size_t)(eq - p) : n;
        char *name = form_decode(p, namelen);
        int match = name && strlen(name) == klen && memcmp(name, key, klen) == 0;
        free(name);
        if (match) return eq ? form_decode(eq + 1, n - namelen - 1) : strdup("");
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

bool sim_uri_eq(const char *a, const char *b)
{
    if (!a || !b) return false;
    size_t la = strlen(a), lb = strlen(b);
    if (la > 0 && a[la - 1] == '/') la--;
    if (lb > 0 && b[lb - 1] == '/') lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}
