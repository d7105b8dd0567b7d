/* pw/duration.h: time spans in the three spellings the worker meets: ISO-8601 in requests
 * and ARM (P10D, PT12H), KQL timespan literals in commands (10d, 36h), and .NET TimeSpan
 * strings inside Kusto policy JSON ("10.00:00:00").
 *
 * Values are held as .NET ticks (100 ns), the finest unit any of the three can express,
 * so every conversion here is exact. */
#ifndef PW_DURATION_H
#define PW_DURATION_H

#include <stddef.h>
#include <stdint.h>
#include "pw/status.h"

#define PW_TICKS_PER_SECOND INT64_C(10000000)
#define PW_TICKS_PER_DAY (INT64_C(86400) * PW_TICKS_PER_SECOND)

/* Parses a strict ISO-8601 duration: optional leading '-', 'P', then in this order and each
 * at most once nW nD, then optionally 'T' with nH nM nS (seconds may carry up to 7 fraction
 * digits after '.').  Upper-case designators only; at least one component; no component
 * after T means an error.  err (may be NULL) says what is wrong: PW_ERR_SYNTAX (not a
 * duration this parser accepts), PW_ERR_AMBIGUOUS (years or months: their length in days
 * depends on the calendar), PW_ERR_RANGE (a component too large to hold). */
pw_status pw_duration_parse_iso(const char *s, int64_t *ticks, char *err, size_t errlen);

/* Parses a .NET TimeSpan string "[-][d.]hh:mm:ss[.fffffff]".  Returns 0 or -1. */
int pw_duration_parse_dotnet(const char *s, int64_t *ticks);

/* Canonical ISO-8601 for ticks: P10D, PT12H, P1DT12H, PT0.5S, PT0S; '-' prefix when
 * negative.  Returns 0, or -1 when buf is too small. */
int pw_duration_format_iso(int64_t ticks, char *buf, size_t len);

/* An exact KQL timespan literal: one number with the largest unit that divides the value
 * (d, h, m, s, ms, microsecond, tick): P1DT12H -> 36h.  Negative values are refused (-1). */
int pw_duration_format_kql(int64_t ticks, char *buf, size_t len);

/* .NET TimeSpan text "d.hh:mm:ss[.fffffff]" (as Kusto writes policies). */
int pw_duration_format_dotnet(int64_t ticks, char *buf, size_t len);

#endif
