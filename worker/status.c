/* status.c: the text of each pw_status, and the one helper that fills an error buffer. */
#include "pw/status.h"

#include <stdarg.h>
#include <stdio.h>

const char *pw_status_str(pw_status st)
{
    switch (st) {
    case PW_OK:
        return "ok";
    case PW_ERR_NOMEM:
        return "out of memory";
    case PW_ERR_ARG:
        return "invalid argument";
    case PW_ERR_SYNTAX:
        return "syntax error";
    case PW_ERR_INVALID:
        return "invalid value";
    case PW_ERR_AMBIGUOUS:
        return "ambiguous value";
    case PW_ERR_RANGE:
        return "out of range";
    case PW_ERR_NOT_ALLOWED:
        return "not allowed";
    case PW_ERR_ORDER:
        return "out of order";
    case PW_ERR_UNKNOWN:
        return "unknown";
    case PW_ERR_TRANSPORT:
        return "transport error";
    case PW_ERR_TLS:
        return "TLS error";
    case PW_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown status";
}

void pw_err_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
