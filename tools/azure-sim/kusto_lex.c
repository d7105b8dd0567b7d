/* kusto_lex.c: tokenizer for Kusto management commands, and the time-span/date
 * conversions the engine needs (KQL literals, .NET TimeSpan text, ISO-8601). */
#include "kusto.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Largest span accepted anywhere: ~10 million days, like .NET TimeSpan.MaxValue. */
#define MAX_TICKS (10675199LL * SIM_KUSTO_TICKS_PER_DAY)
#define MAX_FN_TEXT 64 /* inside datetime(...)/time(...) */

/* ---------------------------------------------------------------- time spans */

typedef struct unit_name {
    const char *name;
    int64_t ticks;
} unit_name;

static const unit_name UNITS[] = {
    {"d", SIM_KUSTO_TICKS_PER_DAY},
    {"day", SIM_KUSTO_TICKS_PER_DAY},
    {"days", SIM_KUSTO_TICKS_PER_DAY},
    {"h", 36000000000LL},
    {"hr", 36000000000LL},
    {"hrs", 36000000000LL},
    {"hour", 36000000000LL},
    {"hours", 36000000000LL},
    {"m", 600000000LL},
    {"min", 600000000LL},
    {"mins", 600000000LL},
    {"minute", 600000000LL},
    {"minutes", 600000000LL},
    {"s", 10000000LL},
    {"sec", 10000000LL},
    {"secs", 10000000LL},
    {"second", 10000000LL},
    {"seconds", 10000000LL},
    {"ms", 10000LL},
    {"milli", 10000LL},
    {"millis", 10000LL},
    {"millisec", 10000LL},
    {"millisecond", 10000LL},
    {"milliseconds", 10000LL},
    {"microsec", 10LL},
    {"microsecond", 10LL},
    {"microseconds", 10LL},
    {"tick", 1LL},
    {"ticks", 1LL},
};

/* Parses "<digits>[.<digits>]" at s; sets the whole and the fractional part (as
 * numerator/denominator) and returns the bytes consumed, 0 when there is no number. */
static size_t parse_decimal(const char *s, size_t len, uint64_t *whole, uint64_t *fnum,
                            uint64_t *fden)
{
    size_t i = 0;
    *whole = 0;
    *fnum = 0;
    *fden = 1;
    while (i < len && isdigit((unsigned char)s[i])) {
        if (*whole > (UINT64_MAX - 9) / 10) return 0; /* beyond any valid span */
        *whole = *whole * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i == 0) return 0;
    if (i + 1 < len && s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
        i++;
        while (i < len && isdigit((unsigned char)s[i])) {
            if (*fden < 1000000000000ULL) { /* keep 12 digits; more is below a tick */
                *fnum = *fnum * 10 + (uint64_t)(s[i] - '0');
                *fden *= 10;
            }
            i++;
        }
    }
    return i;
}

static int scale(uint64_t whole, uint64_t fnum, uint64_t fden, int64_t unit, int64_t *ticks)
{
    unsigned __int128 t = (unsigned __int128)whole * (uint64_t)unit;
    t += (unsigned __int128)fnum * (uint64_t)unit / fden;
    if (t > (unsigned __int128)MAX_TICKS) return -1;
    *ticks = (int64_t)t;
    return 0;
}

int sim_kusto_timespan_literal(const char *text, size_t len, int64_t *ticks)
{
    uint64_t whole, fnum, fden;
    size_t n = parse_decimal(text, len, &whole, &fnum, &fden);
    if (n == 0 || n == len) return -1; /* a bare number is not a time span */
    const char *u = text + n;
    size_t ulen = len - n;
    for (size_t i = 0; i < sizeof UNITS / sizeof UNITS[0]; i++) {
        if (strlen(UNITS[i].name) == ulen && strncasecmp(UNITS[i].name, u, ulen) == 0)
            return scale(whole, fnum, fden, UNITS[i].ticks, ticks);
    }
    return -1;
}

/* Reads 1..max decimal digits at s[*i] into *out; -1 when there are none or more. */
static int read_digits(const char *s, size_t *i, size_t max, uint64_t *out)
{
    size_t nd = 0;
    uint64_t v = 0;
    for (; isdigit((unsigned char)s[*i]); (*i)++, nd++) {
        if (nd >= max) return -1;
        v = v * 10 + (uint64_t)(s[*i] - '0');
    }
    if (nd == 0) return -1;
    *out = v;
    return (int)nd;
}

int sim_kusto_timespan_parse_net(const char *s, int64_t *ticks)
{
    int neg = 0, nd;
    uint64_t a = 0, hh = 0, mm = 0, ss = 0, frac = 0, days = 0;
    size_t i = 0;
    if (!s) return -1;
    if (s[i] == '-') {
        neg = 1;
        i++;
    }
    if ((nd = read_digits(s, &i, 9, &a)) < 0) return -1;
    if (s[i] == '\0') { /* "10" = ten days */
        days = a;
        goto done;
    }
    if (s[i] == '.') {
        days = a;
        i++;
        if (read_digits(s, &i, 2, &hh) < 0) return -1;
    } else {
        if (nd > 2) return -1;
        hh = a;
    }
    if (s[i] != ':') return -1;
    i++;
    if (read_digits(s, &i, 2, &mm) < 0) return -1;
    if (s[i] == ':') {
        i++;
        if (read_digits(s, &i, 2, &ss) < 0) return -1;
        if (s[i] == '.') {
            i++;
            if ((nd = read_digits(s, &i, 7, &frac)) < 0) return -1;
            for (; nd < 7; nd++)
                frac *= 10;
        }
    }
    if (s[i] != '\0' || hh > 23 || mm > 59 || ss > 59) return -1;
done:
    if (days > 10675198ULL) return -1;
    *ticks = (int64_t)(days * (uint64_t)SIM_KUSTO_TICKS_PER_DAY + hh * 36000000000ULL +
                       mm * 600000000ULL + ss * 10000000ULL + frac);
    if (neg) *ticks = -*ticks;
    return 0;
}

int sim_kusto_timespan_fn(const char *text, int64_t *ticks)
{
    char buf[MAX_FN_TEXT + 1];
    size_t n = 0;
    if (!text || strlen(text) > MAX_FN_TEXT) return -1;
    if (sim_kusto_timespan_parse_net(text, ticks) == 0) return 0;
    /* "15 seconds": drop the blanks between number and unit */
    for (const char *p = text; *p; p++)
        if (*p != ' ' && *p != '\t') buf[n++] = *p;
    buf[n] = '\0';
    return sim_kusto_timespan_literal(buf, n, ticks);
}

/* A span split for printing: sign, whole days and the time of day. */
typedef struct span_parts {
    const char *sign;          /* "" or "-" */
    uint64_t days, rest;       /* rest: ticks past the whole days */
    unsigned hh, mm, ss, frac; /* frac: ticks past the whole seconds */
} span_parts;

static span_parts split_span(int64_t ticks)
{
    span_parts p;
    /* |INT64_MIN| does not fit int64_t: negate in unsigned arithmetic */
    uint64_t t = ticks < 0 ? (uint64_t)(-(ticks + 1)) + 1 : (uint64_t)ticks;
    p.sign = ticks < 0 ? "-" : "";
    p.days = t / (uint64_t)SIM_KUSTO_TICKS_PER_DAY;
    p.rest = t % (uint64_t)SIM_KUSTO_TICKS_PER_DAY;
    p.hh = (unsigned)(p.rest / 36000000000ULL);
    p.mm = (unsigned)(p.rest / 600000000ULL % 60);
    p.ss = (unsigned)(p.rest / 10000000ULL % 60);
    p.frac = (unsigned)(p.rest % 10000000ULL);
    return p;
}

void sim_kusto_timespan_format_net(int64_t ticks, char *out, size_t outlen)
{
    span_parts p = split_span(ticks);
    char d[32] = "", f[16] = "";
    if (p.days) snprintf(d, sizeof d, "%llu.", (unsigned long long)p.days);
    if (p.frac) snprintf(f, sizeof f, ".%07u", p.frac);
    snprintf(out, outlen, "%s%s%02u:%02u:%02u%s", p.sign, d, p.hh, p.mm, p.ss, f);
}

int sim_kusto_iso_parse(const char *s, int64_t *ticks)
{
    int in_time = 0, parts = 0, neg = 0;
    int64_t total = 0;
    size_t i = 0, len;
    if (!s) return -1;
    len = strlen(s);
    if (len > 64) return -1;
    if (s[i] == '-') {
        neg = 1;
        i++;
    }
    if (s[i] != 'P' && s[i] != 'p') return -1;
    i++;
    while (i < len) {
        if ((s[i] == 'T' || s[i] == 't') && !in_time) {
            in_time = 1;
            i++;
            if (i == len) return -1;
            continue;
        }
        uint64_t whole, fnum, fden;
        size_t n = parse_decimal(s + i, len - i, &whole, &fnum, &fden);
        if (n == 0 || i + n >= len) return -1;
        i += n;
        int64_t unit;
        switch (toupper((unsigned char)s[i])) {
        case 'Y':
            if (in_time) return -1;
            unit = 365 * SIM_KUSTO_TICKS_PER_DAY;
            break;
        case 'W':
            if (in_time) return -1;
            unit = 7 * SIM_KUSTO_TICKS_PER_DAY;
            break;
        case 'D':
            if (in_time) return -1;
            unit = SIM_KUSTO_TICKS_PER_DAY;
            break;
        case 'H':
            if (!in_time) return -1;
            unit = 36000000000LL;
            break;
        case 'M':
            unit = in_time ? 600000000LL : 30 * SIM_KUSTO_TICKS_PER_DAY;
            break;
        case 'S':
            if (!in_time) return -1;
            unit = SIM_KUSTO_TICKS_PER_SECOND;
            break;
        default:
            return -1;
        }
        i++;
        int64_t part;
        if (scale(whole, fnum, fden, unit, &part) != 0) return -1;
        total += part;
        if (total > MAX_TICKS) return -1;
        parts++;
    }
    if (parts == 0) return -1;
    *ticks = neg ? -total : total;
    return 0;
}

void sim_kusto_iso_format(int64_t ticks, char *out, size_t outlen)
{
    span_parts p = split_span(ticks);
    char buf[96];
    size_t n = 0;
    if (ticks == 0) {
        snprintf(out, outlen, "PT0S");
        return;
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%sP", p.sign);
    if (p.days) n += (size_t)snprintf(buf + n, sizeof buf - n, "%lluD", (unsigned long long)p.days);
    if (p.rest) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "T");
        if (p.hh) n += (size_t)snprintf(buf + n, sizeof buf - n, "%uH", p.hh);
        if (p.mm) n += (size_t)snprintf(buf + n, sizeof buf - n, "%uM", p.mm);
        if (p.frac) {
            char f[16];
            int fl = snprintf(f, sizeof f, "%07u", p.frac);
            while (fl > 0 && f[fl - 1] == '0')
                f[--fl] = '\0';
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%u.%sS", p.ss, f);
        } else if (p.ss) {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%uS", p.ss);
        }
    }
    snprintf(out, outlen, "%s", buf);
}

static int read_fixed(const char *s, size_t *i, int digits, unsigned *v)
{
    *v = 0;
    for (int k = 0; k < digits; k++) {
        if (!isdigit((unsigned char)s[*i])) return -1;
        *v = *v * 10 + (unsigned)(s[(*i)++] - '0');
    }
    return 0;
}

int sim_kusto_datetime_parse(const char *s, char *out, size_t outlen)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, mo, d, hh = 0, mi = 0, ss = 0, frac = 0;
    size_t i = 0;
    if (!s || strlen(s) > MAX_FN_TEXT) return -1;
    if (read_fixed(s, &i, 4, &y) || s[i++] != '-' || read_fixed(s, &i, 2, &mo) || s[i++] != '-' ||
        read_fixed(s, &i, 2, &d))
        return -1;
    if (s[i] == 'T' || s[i] == 't' || s[i] == ' ') {
        i++;
        if (read_fixed(s, &i, 2, &hh) || s[i++] != ':' || read_fixed(s, &i, 2, &mi)) return -1;
        if (s[i] == ':') {
            i++;
            if (read_fixed(s, &i, 2, &ss)) return -1;
            if (s[i] == '.') {
                int nd = 0;
                i++;
                for (; isdigit((unsigned char)s[i]); i++, nd++) {
                    if (nd < 7) frac = frac * 10 + (unsigned)(s[i] - '0');
                }
                if (nd == 0) return -1;
                for (; nd < 7; nd++)
                    frac *= 10;
            }
        }
    }
    if (s[i] == 'Z' || s[i] == 'z') i++;
    if (s[i] != '\0') return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || hh > 23 || mi > 59 || ss > 59) return -1;
    unsigned md = mdays[mo - 1];
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) md = 29;
    if (d > md) return -1;
    snprintf(out, outlen, "%04u-%02u-%02uT%02u:%02u:%02u.%07uZ", y, mo, d, hh, mi, ss, frac);
    return 0;
}

/* ---------------------------------------------------------------- tokenizer */

typedef struct lexer {
    const char *s;
    size_t len, i;
    sim_kusto_tokens *out;
    size_t cap;
    char *err;
    size_t errlen;
    size_t errpos;
} lexer;

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static int sbuf_put(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static int sbuf_utf8(sbuf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return sbuf_put(b, u, n);
}

static int lex_fail(lexer *lx, size_t pos, const char *msg)
{
    lx->errpos = pos;
    snprintf(lx->err, lx->errlen, "%s", msg);
    return -1;
}

static int push(lexer *lx, sim_kusto_tok_type type, char *text, size_t len, size_t pos)
{
    sim_kusto_tokens *t = lx->out;
    if (t->n >= SIM_KUSTO_MAX_TOKENS) {
        free(text);
        return lex_fail(lx, pos, "too many tokens");
    }
    if (t->n == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 32;
        sim_kusto_token *v = realloc(t->v, cap * sizeof *v);
        if (!v) {
            free(text);
            return lex_fail(lx, pos, "out of memory");
        }
        t->v = v;
        lx->cap = cap;
    }
    t->v[t->n].type = type;
    t->v[t->n].text = text;
    t->v[t->n].len = len;
    t->v[t->n].pos = pos;
    t->n++;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads n..max hex digits at lx->i into *cp. */
static int read_hex(lexer *lx, int min, int max, uint32_t *cp)
{
    int k = 0;
    *cp = 0;
    while (k < max && lx->i < lx->len && hexval(lx->s[lx->i]) >= 0) {
        *cp = *cp * 16 + (uint32_t)hexval(lx->s[lx->i]);
        lx->i++;
        k++;
    }
    return k >= min ? 0 : -1;
}

/* One escape sequence after a backslash in a regular '..' / ".." literal. */
static int lex_escape(lexer *lx, sbuf *b)
{
    size_t at = lx->i - 1;
    if (lx->i >= lx->len) return lex_fail(lx, at, "unterminated string literal");
    char c = lx->s[lx->i++];
    char one;
    uint32_t cp;
    switch (c) {
    case '\'':
    case '"':
    case '\\':
        one = c;
        break;
    case 'n':
        one = '\n';
        break;
    case 'r':
        one = '\r';
        break;
    case 't':
        one = '\t';
        break;
    case 'a':
        one = '\a';
        break;
    case 'b':
        one = '\b';
        break;
    case 'f':
        one = '\f';
        break;
    case 'v':
        one = '\v';
        break;
    case 'x':
        if (read_hex(lx, 1, 2, &cp)) return lex_fail(lx, at, "bad \\x escape");
        return sbuf_utf8(b, cp);
    case 'u':
        if (read_hex(lx, 4, 4, &cp)) return lex_fail(lx, at, "bad \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair must follow */
            uint32_t lo;
            if (lx->i + 1 < lx->len && lx->s[lx->i] == '\\' && lx->s[lx->i + 1] == 'u') {
                lx->i += 2;
                if (read_hex(lx, 4, 4, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return lex_fail(lx, at, "bad surrogate pair");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
                return lex_fail(lx, at, "lone surrogate in \\u escape");
            }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return lex_fail(lx, at, "lone surrogate in \\u escape");
        }
        return sbuf_utf8(b, cp);
    case 'U':
        if (read_hex(lx, 8, 8, &cp) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return lex_fail(lx, at, "bad \\U escape");
        return sbuf_utf8(b, cp);
    default:
        if (c >= '0' && c <= '7') {
            cp = (uint32_t)(c - '0');
            for (int k = 0; k < 2 && lx->i < lx->len && lx->s[lx->i] >= '0' && lx->s[lx->i] <= '7';
                 k++)
                cp = cp * 8 + (uint32_t)(lx->s[lx->i++] - '0');
            return sbuf_utf8(b, cp);
        }
        return lex_fail(lx, at, "unknown escape sequence in string literal");
    }
    return sbuf_put(b, &one, 1);
}

/* True when a string literal starts at position i. */
static int string_starts(const lexer *lx, size_t i)
{
    const char *s = lx->s;
    size_t len = lx->len;
    if (i < len && (s[i] == 'h' || s[i] == 'H')) i++;
    if (i >= len) return 0;
    if (s[i] == '\'' || s[i] == '"') return 1;
    if (s[i] == '@' && i + 1 < len && (s[i + 1] == '\'' || s[i + 1] == '"')) return 1;
    if (i + 2 < len && ((s[i] == '`' && s[i + 1] == '`' && s[i + 2] == '`') ||
                        (s[i] == '~' && s[i + 1] == '~' && s[i + 2] == '~')))
        return 1;
    return 0;
}

/* One literal (string_starts() was true) appended to b. */
static int lex_one_string(lexer *lx, sbuf *b)
{
    const char *s = lx->s;
    size_t start = lx->i;
    if (s[lx->i] == 'h' || s[lx->i] == 'H') lx->i++;
    if (s[lx->i] == '`' || s[lx->i] == '~') { /* ```multi-line```: no escapes */
        char d = s[lx->i];
        lx->i += 3;
        size_t from = lx->i;
        while (lx->i + 2 < lx->len && !(s[lx->i] == d && s[lx->i + 1] == d && s[lx->i + 2] == d))
            lx->i++;
        if (lx->i + 2 >= lx->len) return lex_fail(lx, start, "unterminated multi-line string");
        if (sbuf_put(b, s + from, lx->i - from)) return lex_fail(lx, start, "out of memory");
        lx->i += 3;
        return 0;
    }
    int verbatim = 0;
    if (s[lx->i] == '@') {
        verbatim = 1;
        lx->i++;
    }
    char q = s[lx->i++];
    if (b->p == NULL && sbuf_put(b, "", 0)) return lex_fail(lx, start, "out of memory");
    for (;;) {
        if (lx->i >= lx->len) return lex_fail(lx, start, "unterminated string literal");
        char c = s[lx->i++];
        if (c == '\r' || c == '\n') return lex_fail(lx, start, "newline in string literal");
        if (c == q) {
            if (verbatim && lx->i < lx->len && s[lx->i] == q) { /* doubled quote */
                lx->i++;
                if (sbuf_put(b, &q, 1)) return lex_fail(lx, start, "out of memory");
                continue;
            }
            return 0;
        }
        if (c == '\\' && !verbatim) {
            if (lex_escape(lx, b)) return -1;
            continue;
        }
        if (sbuf_put(b, &c, 1)) return lex_fail(lx, start, "out of memory");
    }
}

static void skip_blank(lexer *lx)
{
    while (lx->i < lx->len) {
        char c = lx->s[lx->i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            lx->i++;
        } else if (c == '/' && lx->i + 1 < lx->len && lx->s[lx->i + 1] == '/') {
            while (lx->i < lx->len && lx->s[lx->i] != '\n')
                lx->i++;
        } else {
            break;
        }
    }
}

/* Adjacent literals joined into one token. */
static int lex_strings(lexer *lx, sbuf *b)
{
    for (;;) {
        if (lex_one_string(lx, b)) return -1;
        size_t save = lx->i;
        skip_blank(lx);
        if (!string_starts(lx, lx->i)) {
            lx->i = save;
            return 0;
        }
    }
}

static int is_ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static int is_ident_char(const lexer *lx, size_t i)
{
    char c = lx->s[i];
    if (isalnum((unsigned char)c) || c == '_') return 1;
    /* materialized-view, alter-merge, skip-results */
    return c == '-' && i + 1 < lx->len && isalpha((unsigned char)lx->s[i + 1]);
}

static char *dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int sim_kusto_lex(const char *csl, size_t len, sim_kusto_tokens *out, size_t *errpos, char *err,
                  size_t errlen)
{
    lexer lx = {csl, len, 0, out, 0, err, errlen, 0};
    out->v = NULL;
    out->n = 0;
    if (len > SIM_KUSTO_MAX_CSL) {
        lex_fail(&lx, 0, "command text too long");
        goto fail;
    }
    for (;;) {
        skip_blank(&lx);
        size_t pos = lx.i;
        if (lx.i >= len) {
            if (push(&lx, SK_TOK_EOF, dup_range("", 0), 0, pos)) goto fail;
            return 0;
        }
        char c = csl[lx.i];
        if (string_starts(&lx, lx.i)) {
            sbuf b = {0};
            if (lex_strings(&lx, &b)) {
                free(b.p);
                goto fail;
            }
            if (!b.p && sbuf_put(&b, "", 0)) goto fail;
            if (push(&lx, SK_TOK_STRING, b.p, b.n, pos)) goto fail;
            continue;
        }
        if (c == '[') { /* ['name'] or ["name"]; otherwise a plain bracket */
            size_t save = ++lx.i;
            skip_blank(&lx);
            if (string_starts(&lx, lx.i)) {
                sbuf b = {0};
                if (lex_strings(&lx, &b)) {
                    free(b.p);
                    goto fail;
                }
                skip_blank(&lx);
                if (lx.i >= len || csl[lx.i] != ']') {
                    free(b.p);
                    lex_fail(&lx, pos, "expected ']' after a bracketed name");
                    goto fail;
                }
                lx.i++;
                if (!b.p && sbuf_put(&b, "", 0)) goto fail;
                if (push(&lx, SK_TOK_QNAME, b.p, b.n, pos)) goto fail;
                continue;
            }
            lx.i = save;
            if (push(&lx, SK_TOK_PUNCT, dup_range("[", 1), 1, pos)) goto fail;
            continue;
        }
        if (is_ident_start(c)) {
            while (lx.i < len && is_ident_char(&lx, lx.i))
                lx.i++;
            size_t n = lx.i - pos;
            int dt = n == 8 && strncasecmp(csl + pos, "datetime", 8) == 0;
            int ts = (n == 4 && strncasecmp(csl + pos, "time", 4) == 0) ||
                     (n == 8 && strncasecmp(csl + pos, "timespan", 8) == 0);
            if (dt || ts) {
                size_t j = lx.i;
                while (j < len && (csl[j] == ' ' || csl[j] == '\t'))
                    j++;
                if (j < len && csl[j] == '(') {
                    size_t from = j + 1, to = from;
                    while (to < len && csl[to] != ')' && to - from <= MAX_FN_TEXT)
                        to++;
                    if (to >= len || csl[to] != ')') {
                        lex_fail(&lx, pos, "bad datetime()/timespan() literal");
                        goto fail;
                    }
                    lx.i = to + 1;
                    while (from < to && isspace((unsigned char)csl[from]))
                        from++;
                    while (to > from && isspace((unsigned char)csl[to - 1]))
                        to--;
                    if (push(&lx, dt ? SK_TOK_DATETIME : SK_TOK_TIMESPAN,
                             dup_range(csl + from, to - from), to - from, pos))
                        goto fail;
                    continue;
                }
            }
            if (push(&lx, SK_TOK_IDENT, dup_range(csl + pos, n), n, pos)) goto fail;
            continue;
        }
        if (isdigit((unsigned char)c)) {
            while (lx.i < len && isdigit((unsigned char)csl[lx.i]))
                lx.i++;
            if (lx.i + 1 < len && csl[lx.i] == '.' && isdigit((unsigned char)csl[lx.i + 1])) {
                lx.i++;
                while (lx.i < len && isdigit((unsigned char)csl[lx.i]))
                    lx.i++;
            }
            while (lx.i < len && isalpha((unsigned char)csl[lx.i]))
                lx.i++;
            size_t n = lx.i - pos;
            if (n > 64) {
                lex_fail(&lx, pos, "number too long");
                goto fail;
            }
            if (push(&lx, SK_TOK_NUMBER, dup_range(csl + pos, n), n, pos)) goto fail;
            continue;
        }
        if (c == '<' && lx.i + 1 < len && csl[lx.i + 1] == '|') {
            /* "<| body": the rest is a KQL function body, not command tokens */
            size_t from = lx.i + 2;
            if (push(&lx, SK_TOK_BODY, dup_range(csl + from, len - from), len - from, pos))
                goto fail;
            lx.i = len;
            continue;
        }
        if (c == '.' && lx.i + 1 < len && csl[lx.i + 1] == '.') {
            lx.i += 2;
            if (push(&lx, SK_TOK_PUNCT, dup_range("..", 2), 2, pos)) goto fail;
            continue;
        }
        lx.i++; /* any other byte is a one-character token; the parser rejects strays */
        if (push(&lx, SK_TOK_PUNCT, dup_range(&c, 1), 1, pos)) goto fail;
    }
fail:
    *errpos = lx.errpos;
    sim_kusto_tokens_free(out);
    return -1;
}

void sim_kusto_tokens_free(sim_kusto_tokens *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].text);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}
