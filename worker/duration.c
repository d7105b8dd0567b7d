/* duration.c: exact conversions between ISO-8601, KQL timespan and .NET TimeSpan spellings. */
#include "pw/duration.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TICKS_PER_MINUTE (INT64_C(60) * PW_TICKS_PER_SECOND)
#define TICKS_PER_HOUR (INT64_C(60) * TICKS_PER_MINUTE)
#define TICKS_PER_WEEK (INT64_C(7) * PW_TICKS_PER_DAY)

/* acc += n * unit, refusing overflow. */
static int add_scaled(int64_t *acc, int64_t n, int64_t unit)
{
    if (n > INT64_MAX / unit) return -1;
    int64_t v = n * unit;
    if (*acc > INT64_MAX - v) return -1;
    *acc += v;
    return 0;
}

pw_status pw_duration_parse_iso(const char *s, int64_t *ticks, char *err, size_t errlen)
{
    static const char date_units[] = "WD";
    static const char time_units[] = "HMS";
    const char *p = s;
    int negative = 0, in_time = 0, components = 0, time_components = 0;
    int last_rank = -1; /* enforces order W < D < H < M < S, each once */
    int64_t total = 0;

    if (!s) {
        pw_err_set(err, errlen, "no duration");
        return PW_ERR_SYNTAX;
    }
    if (*p == '-') {
        negative = 1;
        p++;
    }
    if (*p != 'P') {
        pw_err_set(err, errlen, "an ISO-8601 duration starts with 'P' (e.g. P10D, PT12H)");
        return PW_ERR_SYNTAX;
    }
    p++;
    while (*p) {
        if (*p == 'T') {
            if (in_time) {
                pw_err_set(err, errlen, "'T' appears twice");
                return PW_ERR_SYNTAX;
            }
            in_time = 1;
            p++;
            continue;
        }
        if (*p < '0' || *p > '9') {
            pw_err_set(err, errlen, "expected a number before each designator");
            return PW_ERR_SYNTAX;
        }
        int64_t n = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (++digits > 15) {
                pw_err_set(err, errlen, "a component has too many digits");
                return PW_ERR_RANGE;
            }
            n = n * 10 + (*p - '0');
            p++;
        }
        int64_t frac = 0; /* in ticks, seconds only */
        if (*p == '.' || *p == ',') {
            p++;
            int fd = 0;
            int64_t scale = PW_TICKS_PER_SECOND;
            while (*p >= '0' && *p <= '9') {
                if (++fd > 7) {
                    pw_err_set(err, errlen, "more than 7 fraction digits (finer than 100 ns)");
                    return PW_ERR_SYNTAX;
                }
                scale /= 10;
                frac += (*p - '0') * scale;
                p++;
            }
            if (fd == 0 || *p != 'S' || !in_time) {
                pw_err_set(err, errlen, "a fraction is allowed only on seconds (PT1.5S)");
                return PW_ERR_SYNTAX;
            }
        }
        char unit = *p;
        if (unit == '\0') {
            pw_err_set(err, errlen, "a number without a designator at the end");
            return PW_ERR_SYNTAX;
        }
        if (!in_time && (unit == 'Y' || unit == 'M')) {
            pw_err_set(err, errlen,
                       "years and months are not accepted: their length in days is ambiguous; "
                       "use days or weeks (P365D, P4W)");
            return PW_ERR_AMBIGUOUS;
        }
        const char *units = in_time ? time_units : date_units;
        const char *u = unit ? strchr(units, unit) : NULL;
        if (!u) {
            char msg[96];
            /* a byte of a multi-byte character or a control character is not echoed */
            if (unit > ' ' && unit < 0x7f)
                snprintf(msg, sizeof msg, "unknown designator '%c'%s", unit,
                         in_time ? " after T (H, M, S)" : " (W, D, or T then H, M, S)");
            else
                snprintf(msg, sizeof msg, "unknown designator (byte 0x%02X)%s",
                         (unsigned)(unsigned char)unit,
                         in_time ? " after T (H, M, S)" : " (W, D, or T then H, M, S)");
            pw_err_set(err, errlen, "%s", msg);
            return PW_ERR_SYNTAX;
        }
        int rank = (int)(u - units) + (in_time ? 2 : 0);
        if (rank <= last_rank) {
            pw_err_set(err, errlen, "designators out of order or repeated (order: W D T H M S)");
            return PW_ERR_SYNTAX;
        }
        last_rank = rank;
        static const int64_t unit_ticks[] = {TICKS_PER_WEEK, PW_TICKS_PER_DAY, TICKS_PER_HOUR,
                                             TICKS_PER_MINUTE, PW_TICKS_PER_SECOND};
        if (add_scaled(&total, n, unit_ticks[rank]) != 0 || total > INT64_MAX - frac) {
            pw_err_set(err, errlen, "duration too large");
            return PW_ERR_RANGE;
        }
        total += frac;
        components++;
        if (in_time) time_components++;
        p++;
    }
    if (components == 0) {
        pw_err_set(err, errlen, "no component (P alone is not a duration)");
        return PW_ERR_SYNTAX;
    }
    if (in_time && time_components == 0) {
        pw_err_set(err, errlen, "'T' must be followed by hours, minutes or seconds");
        return PW_ERR_SYNTAX;
    }
    *ticks = negative ? -total : total;
    return PW_OK;
}

/* Reads exactly n digits (n > 0) or, when n == 0, one or more digits (at most 15). */
static int read_digits(const char **pp, int n, int64_t *out)
{
    const char *p = *pp;
    int64_t v = 0;
    int count = 0;
    while (*p >= '0' && *p <= '9' && (n == 0 || count < n)) {
        if (++count > 15) return -1;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (count == 0 || (n && count != n)) return -1;
    *pp = p;
    *out = v;
    return 0;
}

int pw_duration_parse_dotnet(const char *s, int64_t *ticks)
{
    if (!s) return -1;
    const char *p = s;
    int negative = 0;
    int64_t days = 0, h, m, sec, frac = 0;
    if (*p == '-') {
        negative = 1;
        p++;
    }
    /* "d." prefix is present when a '.' comes before the first ':'. */
    const char *colon = strchr(p, ':');
    const char *dot = strchr(p, '.');
    if (dot && colon && dot < colon) {
        if (read_digits(&p, 0, &days) != 0 || *p != '.') return -1;
        p++;
    }
    if (read_digits(&p, 2, &h) != 0 || *p++ != ':' || read_digits(&p, 2, &m) != 0 || *p++ != ':' ||
        read_digits(&p, 2, &sec) != 0)
        return -1;
    if (h > 23 || m > 59 || sec > 59) return -1;
    if (*p == '.') {
        p++;
        int fd = 0;
        int64_t scale = PW_TICKS_PER_SECOND;
        while (*p >= '0' && *p <= '9') {
            if (++fd > 7) return -1;
            scale /= 10;
            frac += (*p - '0') * scale;
            p++;
        }
        if (fd == 0) return -1;
    }
    if (*p) return -1;
    /* Kusto writes TimeSpan.MaxValue (10675199.02:48:05.4775807, INT64_MAX ticks) for
     * "unlimited": every addition is checked, one tick more is refused. */
    int64_t total = 0, rest = h * TICKS_PER_HOUR + m * TICKS_PER_MINUTE +
                              sec * PW_TICKS_PER_SECOND + frac; /* < one day: no overflow */
    if (add_scaled(&total, days, PW_TICKS_PER_DAY) != 0 || add_scaled(&total, rest, 1) != 0)
        return -1;
    *ticks = negative ? -total : total;
    return 0;
}

/* Appends formatted text at *off; -1 when buf is too small. */
static int append(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len - *off) return -1;
    *off += (size_t)n;
    return 0;
}

int pw_duration_format_iso(int64_t ticks, char *buf, size_t len)
{
    size_t off = 0;
    if (!buf || len == 0 || ticks == INT64_MIN) return -1;
    buf[0] = '\0';
    if (append(buf, len, &off, "%sP", ticks < 0 ? "-" : "") != 0) return -1;
    if (ticks < 0) ticks = -ticks;
    int64_t days = ticks / PW_TICKS_PER_DAY, rest = ticks % PW_TICKS_PER_DAY;
    int64_t hours = rest / TICKS_PER_HOUR;
    rest %= TICKS_PER_HOUR;
    int64_t minutes = rest / TICKS_PER_MINUTE;
    rest %= TICKS_PER_MINUTE;
    int64_t secs = rest / PW_TICKS_PER_SECOND, frac = rest % PW_TICKS_PER_SECOND;

    if (days && append(buf, len, &off, "%" PRId64 "D", days) != 0) return -1;
    if (!(hours || minutes || secs || frac || days == 0)) return 0;
    if (append(buf, len, &off, "T") != 0) return -1;
    if (hours && append(buf, len, &off, "%" PRId64 "H", hours) != 0) return -1;
    if (minutes && append(buf, len, &off, "%" PRId64 "M", minutes) != 0) return -1;
    if (!(secs || frac || (!hours && !minutes))) return 0;
    if (append(buf, len, &off, "%" PRId64, secs) != 0) return -1;
    if (frac) {
        char f[9];
        snprintf(f, sizeof f, "%07" PRId64, frac);
        size_t n = strlen(f); /* frac > 0: seven digits, at least one not a zero */
        while (n > 1 && f[n - 1] == '0')
            f[--n] = '\0';
        if (append(buf, len, &off, ".%s", f) != 0) return -1;
    }
    return append(buf, len, &off, "S");
}

int pw_duration_format_kql(int64_t ticks, char *buf, size_t len)
{
    static const struct {
        int64_t ticks;
        const char *unit;
    } units[] = {{PW_TICKS_PER_DAY, "d"},    {TICKS_PER_HOUR, "h"},  {TICKS_PER_MINUTE, "m"},
                 {PW_TICKS_PER_SECOND, "s"}, {INT64_C(10000), "ms"}, {INT64_C(10), "microsecond"},
                 {INT64_C(1), "tick"}};
    if (!buf || len == 0 || ticks < 0) return -1;
    if (ticks == 0) {
        int n = snprintf(buf, len, "0d");
        return n > 0 && (size_t)n < len ? 0 : -1;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ticks % units[i].ticks == 0) {
            int n = snprintf(buf, len, "%" PRId64 "%s", ticks / units[i].ticks, units[i].unit);
            return n > 0 && (size_t)n < len ? 0 : -1;
        }
    }
    return -1; /* unreachable: tick divides everything */
}

int pw_duration_format_dotnet(int64_t ticks, char *buf, size_t len)
{
    const char *sign = "";
    if (!buf || len == 0 || ticks == INT64_MIN) return -1;
    if (ticks < 0) {
        sign = "-";
        ticks = -ticks;
    }
    int64_t days = ticks / PW_TICKS_PER_DAY, rest = ticks % PW_TICKS_PER_DAY;
    int64_t h = rest / TICKS_PER_HOUR, m = rest % TICKS_PER_HOUR / TICKS_PER_MINUTE;
    int64_t s = rest % TICKS_PER_MINUTE / PW_TICKS_PER_SECOND, frac = rest % PW_TICKS_PER_SECOND;
    int n;
    if (frac)
        n = snprintf(buf, len, "%s%" PRId64 ".%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%07" PRId64,
                     sign, days, h, m, s, frac);
    else
        n = snprintf(buf, len, "%s%" PRId64 ".%02" PRId64 ":%02" PRId64 ":%02" PRId64, sign, days,
                     h, m, s);
    return n > 0 && (size_t)n < len ? 0 : -1;
}
