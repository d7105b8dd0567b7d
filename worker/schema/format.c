/* format.c: checkers for the "format" keyword and ECMA-262 -> PCRE2 pattern translation. */
#include "schema_int.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Reads exactly n digits at s[*i]; returns the value or -1. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || !is_digit(s[*i])) return -1;
        v = v * 10 + (s[(*i)++] - '0');
    }
    return v;
}

/* -- dates and times (RFC 3339) */

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[m - 1];
}

static int parse_date(const char *s, size_t len, size_t *i)
{
    int y = digits(s, len, i, 4);
    if (y < 0 || *i >= len || s[(*i)++] != '-') return 0;
    int m = digits(s, len, i, 2);
    if (m < 1 || m > 12 || *i >= len || s[(*i)++] != '-') return 0;
    int d = digits(s, len, i, 2);
    return d >= 1 && d <= days_in_month(y, m);
}

static int parse_time(const char *s, size_t len, size_t *i)
{
    int h = digits(s, len, i, 2);
    if (h < 0 || h > 23 || *i >= len || s[(*i)++] != ':') return 0;
    int m = digits(s, len, i, 2);
    if (m < 0 || m > 59 || *i >= len || s[(*i)++] != ':') return 0;
    int sec = digits(s, len, i, 2);
    if (sec < 0 || sec > 60) return 0;
    if (*i < len && s[*i] == '.') {
        (*i)++;
        size_t st = *i;
        while (*i < len && is_digit(s[*i]))
            (*i)++;
        if (*i == st) return 0;
    }
    if (*i >= len) return 0;
    int oh = 0, om = 0, sign = 0;
    if (s[*i] == 'Z' || s[*i] == 'z') {
        (*i)++;
    } else if (s[*i] == '+' || s[*i] == '-') {
        sign = s[*i] == '+' ? 1 : -1;
        (*i)++;
        oh = digits(s, len, i, 2);
        if (oh < 0 || oh > 23 || *i >= len || s[(*i)++] != ':') return 0;
        om = digits(s, len, i, 2);
        if (om < 0 || om > 59) return 0;
    } else {
        return 0;
    }
    if (sec == 60) { /* a leap second exists only at 23:59:60 UTC */
        int utc = h * 60 + m - sign * (oh * 60 + om);
        utc = ((utc % 1440) + 1440) % 1440;
        if (utc != 23 * 60 + 59) return 0;
    }
    return 1;
}

static int f_date(const char *s, size_t len)
{
    size_t i = 0;
    return parse_date(s, len, &i) && i == len;
}

static int f_time(const char *s, size_t len)
{
    size_t i = 0;
    return parse_time(s, len, &i) && i == len;
}

static int f_date_time(const char *s, size_t len)
{
    size_t i = 0;
    if (!parse_date(s, len, &i) || i >= len || (s[i] != 'T' && s[i] != 't')) return 0;
    i++;
    return parse_time(s, len, &i) && i == len;
}

/* ISO 8601 duration as RFC 3339 appendix A: P[nY[nM[nD]]] / P[nM[nD]] / P[nD], then
 * optionally T[nH[nM[nS]]] / T[nM[nS]] / T[nS]; or PnW.  Units, once started, must
 * follow each other without gaps (P1Y2D is not a duration). */
static int f_duration(const char *s, size_t len)
{
    size_t i = 0;
    if (len < 2 || s[i++] != 'P') return 0;
    static const char date_units[] = "YMD", time_units[] = "HMS";
    int any = 0, in_time = 0, next = -1; /* next: required index of the following unit */
    while (i < len) {
        if (s[i] == 'T') {
            if (in_time) return 0;
            in_time = 1;
            next = -1;
            i++;
            if (i >= len) return 0;
            continue;
        }
        size_t st = i;
        while (i < len && is_digit(s[i]))
            i++;
        if (i == st || i >= len) return 0;
        char u = s[i++];
        if (u == 'W') return !any && !in_time && i == len;
        const char *units = in_time ? time_units : date_units;
        const char *p = u ? strchr(units, u) : NULL;
        if (!p || (next >= 0 && (int)(p - units) != next)) return 0;
        next = (int)(p - units) + 1;
        any = 1;
    }
    return any;
}

/* -- network names and addresses */

/* RFC 3492 Punycode decoding of an A-label's tail into code points. */
static int punycode_decode(const char *in, size_t n, uint32_t *out, size_t cap, size_t *outlen)
{
    enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700 };
    size_t b = 0, o = 0;
    for (size_t j = 0; j < n; j++)
        if (in[j] == '-') b = j;
    for (size_t j = 0; j < b; j++) {
        if ((unsigned char)in[j] >= 0x80 || o >= cap) return 0;
        out[o++] = (unsigned char)in[j];
    }
    uint32_t cp = 128, bias = 72;
    uint64_t i = 0;
    for (size_t in_pos = b > 0 ? b + 1 : 0; in_pos < n;) {
        uint64_t oldi = i, w = 1;
        for (uint32_t k = BASE;; k += BASE) {
            if (in_pos >= n) return 0;
            char ch = in[in_pos++];
            uint32_t digit;
            if (ch >= '0' && ch <= '9')
                digit = (uint32_t)(ch - '0' + 26);
            else if (ch >= 'a' && ch <= 'z')
                digit = (uint32_t)(ch - 'a');
            else if (ch >= 'A' && ch <= 'Z')
                digit = (uint32_t)(ch - 'A');
            else
                return 0;
            i += digit * w;
            if (i > 0x10FFFFull * 64) return 0;
            uint32_t t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
            if (digit < t) break;
            w *= BASE - t;
        }
        uint64_t delta = i - oldi;
        delta = oldi == 0 ? delta / DAMP : delta / 2;
        delta += delta / (o + 1);
        uint32_t k = 0;
        while (delta > ((BASE - TMIN) * TMAX) / 2) {
            delta /= BASE - TMIN;
            k += BASE;
        }
        bias = (uint32_t)(k + (BASE - TMIN + 1) * delta / (delta + SKEW));
        cp += (uint32_t)(i / (o + 1));
        i %= o + 1;
        if (cp > 0x10FFFF || o >= cap) return 0;
        memmove(out + i + 1, out + i, (o - i) * sizeof *out);
        out[i++] = cp;
        o++;
    }
    *outlen = o;
    return 1;
}

/* Unicode property tests through PCRE2, compiled once. */
enum { UP_MARK, UP_GREEK, UP_HEBREW, UP_KANA_HAN, UP_COUNT };
static pcre2_code *uprops[UP_COUNT];
static pthread_once_t uprops_once = PTHREAD_ONCE_INIT;

static void uprops_init(void)
{
    static const char *const src[UP_COUNT] = {"^\\p{M}$", "^\\p{Greek}$", "^\\p{Hebrew}$",
                                              "^[\\p{Hiragana}\\p{Katakana}\\p{Han}]$"};
    for (int i = 0; i < UP_COUNT; i++) {
        int ec;
        PCRE2_SIZE off;
        uprops[i] =
            pcre2_compile((PCRE2_SPTR)src[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    }
}

static int cp_has(int prop, uint32_t cp)
{
    pthread_once(&uprops_once, uprops_init);
    if (!uprops[prop]) return 0;
    unsigned char b[4];
    size_t n;
    if (cp < 0x80)
        b[0] = (unsigned char)cp, n = 1;
    else if (cp < 0x800)
        b[0] = (unsigned char)(0xC0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        b[0] = (unsigned char)(0xE0 | cp >> 12), b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)),
        b[2] = (unsigned char)(0x80 | (cp & 0x3F)), n = 3;
    else
        b[0] = (unsigned char)(0xF0 | cp >> 18), b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F)),
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)),
        b[3] = (unsigned char)(0x80 | (cp & 0x3F)), n = 4;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return 0;
    int rc = pcre2_match(uprops[prop], b, n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static int is_virama(uint32_t c)
{
    static const uint32_t v[] = {
        0x094D,  0x09CD,  0x0A4D,  0x0ACD,  0x0B4D,  0x0BCD,  0x0C4D,  0x0CCD,  0x0D3B,  0x0D3C,
        0x0D4D,  0x0DCA,  0x0E3A,  0x0EBA,  0x0F84,  0x1039,  0x103A,  0x1714,  0x1734,  0x17D2,
        0x1A60,  0x1B44,  0x1BAA,  0x1BAB,  0x1BF2,  0x1BF3,  0x2D7F,  0xA806,  0xA8C4,  0xA953,
        0xA9C0,  0xAAF6,  0xABED,  0x10A3F, 0x11046, 0x1107F, 0x110B9, 0x11133, 0x11134, 0x111C0,
        0x11235, 0x112EA, 0x1134D, 0x11442, 0x114C2, 0x115BF, 0x1163F, 0x116B6, 0x1172B, 0x11839,
        0x119E0, 0x11A34, 0x11A47, 0x11A99, 0x11C3F, 0x11D44, 0x11D45, 0x11D97};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] == c) return 1;
    return 0;
}

/* IDNA2008 checks on a decoded U-label (RFC 5891 section 5.4, RFC 5892 contextual
 * rules) as far as they can be decided without the full derived-property table. */
static int ulabel_ok(const uint32_t *u, size_t n)
{
    if (!n || cp_has(UP_MARK, u[0])) return 0;
    if (n >= 4 && u[2] == '-' && u[3] == '-') return 0;
    int arabic = 0, ext_arabic = 0, kana_han = 0, katakana_dot = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = u[i];
        if (c == 0x0640 || c == 0x07FA || c == 0x302E || c == 0x302F ||
            (c >= 0x3031 && c <= 0x3035) || c == 0x303B)
            return 0; /* DISALLOWED exceptions and tone marks */
        if (c == 0x00B7 && !(i > 0 && u[i - 1] == 'l' && i + 1 < n && u[i + 1] == 'l')) return 0;
        if (c == 0x0375 && !(i + 1 < n && cp_has(UP_GREEK, u[i + 1]))) return 0;
        if ((c == 0x05F3 || c == 0x05F4) && !(i > 0 && cp_has(UP_HEBREW, u[i - 1]))) return 0;
        if (c == 0x200D && !(i > 0 && is_virama(u[i - 1]))) return 0;
        if (c >= 0x0660 && c <= 0x0669) arabic = 1;
        if (c >= 0x06F0 && c <= 0x06F9) ext_arabic = 1;
        if (c == 0x30FB)
            katakana_dot = 1;
        else if (cp_has(UP_KANA_HAN, c))
            kana_han = 1;
    }
    if (arabic && ext_arabic) return 0;
    if (katakana_dot && !kana_han) return 0;
    return 1;
}

static int f_hostname(const char *s, size_t len)
{
    if (len == 0 || len > 253) return 0;
    size_t st = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-') return 0;
            continue;
        }
        size_t ll = i - st;
        if (ll == 0 || ll > 63 || s[st] == '-' || s[i - 1] == '-') return 0;
        int alabel = ll >= 4 && (s[st] == 'x' || s[st] == 'X') &&
                     (s[st + 1] == 'n' || s[st + 1] == 'N') && s[st + 2] == '-' && s[st + 3] == '-';
        if (alabel) {
            uint32_t u[64];
            size_t un;
            if (!punycode_decode(s + st + 4, ll - 4, u, 64, &un) || !ulabel_ok(u, un)) return 0;
        } else if (ll >= 4 && s[st + 2] == '-' && s[st + 3] == '-') {
            return 0; /* "--" in positions 3-4 is reserved for A-labels */
        }
        st = i + 1;
    }
    return 1;
}

static int f_ipv4(const char *s, size_t len)
{
    int parts = 0;
    size_t i = 0;
    while (parts < 4) {
        size_t st = i;
        int v = 0;
        while (i < len && is_digit(s[i]) && i - st < 3)
            v = v * 10 + (s[i++] - '0');
        if (i == st || v > 255 || (i - st > 1 && s[st] == '0')) return 0;
        parts++;
        if (parts < 4) {
            if (i >= len || s[i] != '.') return 0;
            i++;
        }
    }
    return i == len;
}

static int f_ipv6(const char *s, size_t len)
{
    int groups = 0, dbl = 0;
    size_t i = 0;
    if (len < 2) return 0;
    if (s[0] == ':') {
        if (s[1] != ':') return 0;
        dbl = 1;
        i = 2;
        if (i == len) return 1;
    }
    while (i < len) {
        size_t st = i;
        while (i < len && is_hex(s[i]) && i - st < 5)
            i++;
        if (i < len && s[i] == '.') { /* trailing dotted IPv4 counts as two groups */
            if (!f_ipv4(s + st, len - st)) return 0;
            groups += 2;
            i = len;
            break;
        }
        if (i == st || i - st > 4) return 0;
        groups++;
        if (i == len) break;
        if (s[i] != ':') return 0;
        i++;
        if (i < len && s[i] == ':') {
            if (dbl) return 0;
            dbl = 1;
            i++;
            if (i == len) break;
        } else if (i == len) {
            return 0;
        }
    }
    return dbl ? groups < 8 : groups == 8;
}

static int f_email(const char *s, size_t len)
{
    const char *at = NULL;
    if (len && s[0] == '"') { /* quoted local part */
        size_t i = 1;
        while (i < len && s[i] != '"') {
            if (s[i] == '\\') i++;
            i++;
        }
        if (i + 1 >= len || s[i + 1] != '@') return 0;
        at = s + i + 1;
    } else {
        at = memchr(s, '@', len);
        if (!at || at == s) return 0;
        for (const char *p = s; p < at; p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch == '.') {
                if (p == s || p + 1 == at || p[1] == '.') return 0;
            } else if (!is_alpha((char)ch) && !is_digit((char)ch) &&
                       !strchr("!#$%&'*+-/=?^_`{|}~", ch)) {
                return 0;
            }
        }
    }
    const char *d = at + 1;
    size_t dl = len - (size_t)(d - s);
    if (dl >= 2 && d[0] == '[' && d[dl - 1] == ']') {
        if (dl > 7 && !strncmp(d + 1, "IPv6:", 5)) return f_ipv6(d + 6, dl - 7);
        return f_ipv4(d + 1, dl - 2);
    }
    return f_hostname(d, dl);
}

static int f_uuid(const char *s, size_t len)
{
    if (len != 36) return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!is_hex(s[i])) {
            return 0;
        }
    }
    return 1;
}

/* -- URIs and IRIs (RFC 3986 / 3987) */

static int uri_unreserved(unsigned char c, int iri)
{
    return is_alpha((char)c) || is_digit((char)c) || strchr("-._~", c) != NULL ||
           (iri && c >= 0x80);
}

static int uri_sub_delim(unsigned char c)
{
    return c && strchr("!$&'()*+,;=", c) != NULL;
}

/* Checks that s[a..b) consists of allowed chars; extra lists more allowed ASCII. */
static int uri_chars(const char *s, size_t a, size_t b, const char *extra, int iri)
{
    for (size_t i = a; i < b; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= b || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return 0;
            i += 2;
        } else if (!uri_unreserved(c, iri) && !uri_sub_delim(c) && !(c && strchr(extra, c))) {
            return 0;
        }
    }
    return 1;
}

static int uri_authority(const char *s, size_t a, size_t b, int iri)
{
    size_t at = a;
    for (size_t i = a; i < b; i++)
        if (s[i] == '@') at = i + 1;
    if (at > a && !uri_chars(s, a, at - 1, ":", iri)) return 0;
    size_t h = at;
    if (h < b && s[h] == '[') {
        const char *close = memchr(s + h, ']', b - h);
        if (!close) return 0;
        size_t ce = (size_t)(close - s);
        if (!(h + 1 < ce && (s[h + 1] == 'v' || s[h + 1] == 'V')) && !f_ipv6(s + h + 1, ce - h - 1))
            return 0;
        h = ce + 1;
        if (h < b && s[h] != ':') return 0;
    } else {
        while (h < b && s[h] != ':')
            h++;
        if (!uri_chars(s, at, h, "", iri)) return 0;
    }
    if (h < b) { /* port */
        for (size_t i = h + 1; i < b; i++)
            if (!is_digit(s[i])) return 0;
    }
    return 1;
}

static int uri_check(const char *s, size_t len, int need_scheme, int iri)
{
    size_t i = 0;
    /* scheme */
    size_t colon = 0;
    int has_scheme = 0;
    if (len && is_alpha(s[0])) {
        size_t k = 1;
        while (k < len && (is_alpha(s[k]) || is_digit(s[k]) || strchr("+-.", s[k])))
            k++;
        if (k < len && s[k] == ':') {
            has_scheme = 1;
            colon = k;
        }
    }
    if (need_scheme && !has_scheme) return 0;
    if (has_scheme) i = colon + 1;
    size_t end = len;
    const char *hash = memchr(s + i, '#', len - i);
    if (hash) {
        end = (size_t)(hash - s);
        if (!uri_chars(s, end + 1, len, ":@/?", iri)) return 0;
    }
    const char *q = memchr(s + i, '?', end - i);
    size_t pend = q ? (size_t)(q - s) : end;
    if (q && !uri_chars(s, pend + 1, end, ":@/?", iri)) return 0;
    if (pend - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t a = i + 2, b = a;
        while (b < pend && s[b] != '/')
            b++;
        if (!uri_authority(s, a, b, iri)) return 0;
        i = b;
    } else if (!has_scheme) {
        /* path-noscheme: no ':' in the first segment */
        for (size_t k = i; k < pend && s[k] != '/'; k++)
            if (s[k] == ':') return 0;
    }
    return uri_chars(s, i, pend, ":@/", iri);
}

static int f_uri(const char *s, size_t len)
{
    return uri_check(s, len, 1, 0);
}

static int f_uri_reference(const char *s, size_t len)
{
    return uri_check(s, len, 0, 0);
}

static int f_iri(const char *s, size_t len)
{
    return uri_check(s, len, 1, 1);
}

static int f_iri_reference(const char *s, size_t len)
{
    return uri_check(s, len, 0, 1);
}

/* -- URI templates (RFC 6570, level 4 syntax) */

static int f_uri_template(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return 0;
            i += 3;
            continue;
        }
        if (c != '{') { /* literal: any printable except a few delimiters, or non-ASCII */
            if (c <= 0x20 || c == 0x7F || strchr("\"<>\\^`|}", c)) return 0;
            i++;
            continue;
        }
        i++;
        if (i < len && strchr("+#./;?&", s[i]) && s[i]) i++;
        for (;;) { /* varspec */
            size_t st = i;
            int prev_dot = 1;
            while (i < len) {
                if (s[i] == '%') {
                    if (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return 0;
                    i += 3;
                    prev_dot = 0;
                } else if (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_') {
                    i++;
                    prev_dot = 0;
                } else if (s[i] == '.' && !prev_dot) {
                    i++;
                    prev_dot = 1;
                } else {
                    break;
                }
            }
            if (i == st || prev_dot) return 0;
            if (i < len && s[i] == ':') {
                size_t d = ++i;
                while (i < len && is_digit(s[i]))
                    i++;
                if (i == d || i - d > 4 || s[d] == '0') return 0;
            } else if (i < len && s[i] == '*') {
                i++;
            }
            if (i < len && s[i] == ',') {
                i++;
                continue;
            }
            break;
        }
        if (i >= len || s[i] != '}') return 0;
        i++;
    }
    return 1;
}

/* -- JSON pointers */

static int f_json_pointer(const char *s, size_t len)
{
    if (len && s[0] != '/') return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '~' && (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1'))) return 0;
    return 1;
}

static int f_relative_json_pointer(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_digit(s[i]))
        i++;
    if (i == 0 || (i > 1 && s[0] == '0')) return 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) { /* index manipulation */
        size_t st = ++i;
        while (i < len && is_digit(s[i]))
            i++;
        if (i == st || (i - st > 1 && s[st] == '0')) return 0;
    }
    if (i < len && s[i] == '#') return i + 1 == len;
    return f_json_pointer(s + i, len - i);
}

/* Rejects syntax PCRE2 accepts but ECMA-262 does not: unknown letter escapes
 * (\\a, \\A, \\Z, ...), Python groups (?P...), comments (?#...) and inline flags. */
static int ecma_syntax_ok(const char *s, size_t len)
{
    int in_class = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\\') {
            if (++i >= len) return 0;
            char e = s[i];
            if (is_alpha(e) && !strchr("dDwWsSbBfnrtvcxukpP", e)) return 0;
            continue;
        }
        if (in_class) {
            if (c == ']') in_class = 0;
            continue;
        }
        if (c == '[')
            in_class = 1;
        else if (c == '(' && i + 1 < len && s[i + 1] == '?') {
            char k = i + 2 < len ? s[i + 2] : 0;
            if (k != ':' && k != '=' && k != '!' && k != '<') return 0;
        }
    }
    return 1;
}

static int f_regex(const char *s, size_t len)
{
    if (!ecma_syntax_ok(s, len)) return 0;
    char *buf = malloc(len + 1);
    if (!buf) return 0;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *tr = pw_schema_regex_translate(buf);
    free(buf);
    if (!tr) return 0;
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)tr, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    free(tr);
    pcre2_code_free(re);
    /* ES2018 allows variable-width lookbehind; this PCRE2 cannot compile it, but the
     * string is still a regular expression */
    return re != NULL || ec == PCRE2_ERROR_LOOKBEHIND_NOT_FIXED_LENGTH;
}

static const struct {
    const char *name;
    pw_schema_format_fn fn;
    const char *what;
} formats[] = {
    {"date-time", f_date_time, "an RFC 3339 date-time"},
    {"date", f_date, "an RFC 3339 full-date"},
    {"time", f_time, "an RFC 3339 full-time"},
    {"duration", f_duration, "an ISO-8601 duration"},
    {"email", f_email, "an email address"},
    {"hostname", f_hostname, "a hostname"},
    {"ipv4", f_ipv4, "an IPv4 address"},
    {"ipv6", f_ipv6, "an IPv6 address"},
    {"uri", f_uri, "an absolute URI"},
    {"uri-reference", f_uri_reference, "a URI reference"},
    {"iri", f_iri, "an absolute IRI"},
    {"iri-reference", f_iri_reference, "an IRI reference"},
    {"uuid", f_uuid, "a UUID"},
    {"uri-template", f_uri_template, "a URI template"},
    {"json-pointer", f_json_pointer, "a JSON pointer"},
    {"relative-json-pointer", f_relative_json_pointer, "a relative JSON pointer"},
    {"regex", f_regex, "a regular expression"},
};

pw_schema_format_fn pw_schema_format_lookup(const char *name, const char **what)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (!strcmp(formats[i].name, name)) {
            *what = formats[i].what;
            return formats[i].fn;
        }
    return NULL;
}

/* -- ECMA-262 patterns */

/* ECMA-262 \s: WhiteSpace and LineTerminator, wider than PCRE2's ASCII \s. */
#define ECMA_SPACE                                                                                 \
    "\\t\\n\\x{0b}\\f\\r "                                                                         \
    "\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}\\x{feff}"

/* ECMA-262 long property names that PCRE2 only knows by their short form. */
static const char *const prop_alias[][2] = {
    {"Letter", "L"},
    {"Cased_Letter", "L&"},
    {"Uppercase_Letter", "Lu"},
    {"Lowercase_Letter", "Ll"},
    {"Titlecase_Letter", "Lt"},
    {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"},
    {"Mark", "M"},
    {"Nonspacing_Mark", "Mn"},
    {"Spacing_Mark", "Mc"},
    {"Enclosing_Mark", "Me"},
    {"Number", "N"},
    {"Decimal_Number", "Nd"},
    {"digit", "Nd"},
    {"Letter_Number", "Nl"},
    {"Other_Number", "No"},
    {"Punctuation", "P"},
    {"punct", "P"},
    {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"},
    {"Open_Punctuation", "Ps"},
    {"Close_Punctuation", "Pe"},
    {"Initial_Punctuation", "Pi"},
    {"Final_Punctuation", "Pf"},
    {"Other_Punctuation", "Po"},
    {"Symbol", "S"},
    {"Math_Symbol", "Sm"},
    {"Currency_Symbol", "Sc"},
    {"Modifier_Symbol", "Sk"},
    {"Other_Symbol", "So"},
    {"Separator", "Z"},
    {"Space_Separator", "Zs"},
    {"Line_Separator", "Zl"},
    {"Paragraph_Separator", "Zp"},
    {"Other", "C"},
    {"Control", "Cc"},
    {"cntrl", "Cc"},
    {"Format", "Cf"},
    {"Surrogate", "Cs"},
    {"Private_Use", "Co"},
    {"Unassigned", "Cn"},
};

/* Rewrites the name inside \p{...} at p (pointing at '{'); returns bytes consumed
 * from p or 0 when left as is. */
static size_t translate_prop(const char *p, char *out, size_t *o)
{
    const char *close = strchr(p, '}');
    if (!close) return 0;
    const char *name = p + 1;
    size_t nl = (size_t)(close - name);
    /* General_Category=X, gc=X, Script=X, sc=X, Script_Extensions=X, scx=X */
    const char *eq = memchr(name, '=', nl);
    if (eq) {
        nl -= (size_t)(eq + 1 - name);
        name = eq + 1;
    }
    const char *rep = NULL;
    for (size_t i = 0; i < sizeof prop_alias / sizeof prop_alias[0]; i++)
        if (strlen(prop_alias[i][0]) == nl && !strncmp(prop_alias[i][0], name, nl))
            rep = prop_alias[i][1];
    out[(*o)++] = '{';
    if (rep) {
        memcpy(out + *o, rep, strlen(rep));
        *o += strlen(rep);
    } else {
        memcpy(out + *o, name, nl);
        *o += nl;
    }
    out[(*o)++] = '}';
    return (size_t)(close - p) + 1;
}

char *pw_schema_regex_translate(const char *p)
{
    size_t n = strlen(p);
    /* every input byte expands at most to one ECMA_SPACE class */
    size_t cap = n * (sizeof ECMA_SPACE + 8) + 16;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t o = 0;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\\' && i + 1 < n) {
            char e = p[i + 1];
            const char *rep = NULL;
            switch (e) {
            case 'd':
                rep = in_class ? "0-9" : "[0-9]";
                break;
            case 'D':
                rep = in_class ? NULL : "[^0-9]";
                break;
            case 'w':
                rep = in_class ? "A-Za-z0-9_" : "[A-Za-z0-9_]";
                break;
            case 'W':
                rep = in_class ? NULL : "[^A-Za-z0-9_]";
                break;
            case 's':
                rep = in_class ? ECMA_SPACE : "[" ECMA_SPACE "]";
                break;
            case 'S':
                rep = in_class ? NULL : "[^" ECMA_SPACE "]";
                break;
            default:
                break;
            }
            if (rep) {
                size_t rl = strlen(rep);
                memcpy(out + o, rep, rl);
                o += rl;
            } else if ((e == 'p' || e == 'P') && i + 2 < n && p[i + 2] == '{') {
                out[o++] = ch;
                out[o++] = e;
                size_t used = translate_prop(p + i + 2, out, &o);
                i += used + 1; /* the loop's i++ steps past the last byte used */
                continue;
            } else {
                out[o++] = ch;
                out[o++] = e;
            }
            i++;
            continue;
        }
        if (ch == '[' && !in_class) {
            in_class = 1;
            out[o++] = ch;
            if (i + 1 < n && p[i + 1] == '^') out[o++] = p[++i];
            if (i + 1 < n && p[i + 1] == ']') { /* ECMA: [] matches nothing, [^] anything */
                i++;
                o -= (out[o - 1] == '^') ? 2 : 1;
                const char *rep = (p[i - 1] == '^') ? "[\\s\\S]" : "(?!)";
                memcpy(out + o, rep, strlen(rep));
                o += strlen(rep);
                in_class = 0;
            }
            continue;
        }
        if (ch == ']' && in_class) in_class = 0;
        out[o++] = ch;
    }
    out[o] = 0;
    return out;
}
