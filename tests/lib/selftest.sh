#!/usr/bin/env bash
# Self-test of tests/lib/stack.sh: start/stop/exit statuses, first-line capture, polling,
# failure paths (a program that dies early, a timeout) and temp-dir cleanup.
set -euo pipefail
# shellcheck source=tests/lib/stack.sh
. "$(dirname "$0")/stack.sh"

dir=$(pw_tmpdir)
if [ ! -d "$dir" ] || [ "$dir" != "$PW_TMP" ]; then pw_fail "pw_tmpdir"; fi

pw_start a sh -c 'echo first-a; echo second-a; exec sleep 300'
[ "$(pw_first_line a)" = first-a ] || pw_fail "pw_first_line: '$(pw_first_line a)'"
[ "$(pw_line a 2)" = second-a ] || pw_fail "pw_line 2"
pw_alive a || pw_fail "pw_alive a"
rc=0
pw_stop a || rc=$?
[ "$rc" -eq 143 ] || pw_fail "pw_stop a: $rc, want 143 (SIGTERM)"
! pw_alive a || pw_fail "a still alive"

pw_start b sh -c 'trap "exit 7" TERM; echo up; while :; do sleep 0.1; done'
rc=0
pw_stop b || rc=$?
[ "$rc" -eq 7 ] || pw_fail "pw_stop b: $rc, want 7"

# A program ignoring SIGTERM is killed after the timeout (124).
pw_start c sh -c 'trap "" TERM; echo up; while :; do sleep 0.1; done'
rc=0
pw_stop c TERM 1 || rc=$?
[ "$rc" -eq 124 ] || pw_fail "pw_stop c: $rc, want 124"

# pw_spawn + pw_wait_exit with stdin from a file.
printf 'x\ny\n' >"$PW_TMP/in"
PW_STDIN=$PW_TMP/in pw_spawn d sh -c 'wc -l; exit 3'
rc=0
pw_wait_exit d 30 || rc=$?
[ "$rc" -eq 3 ] || pw_fail "pw_wait_exit d: $rc, want 3"
[ "$(tr -d ' ' <"$PW_TMP/d.out")" = 2 ] || pw_fail "pw_spawn stdin"

# pw_wait_until polls until true, and times out.
touch_later() { [ -e "$PW_TMP/flag" ]; }
(sleep 0.5 && touch "$PW_TMP/flag") &
pw_wait_until 30 touch_later || pw_fail "pw_wait_until missed the flag"
! pw_wait_until 1 false || pw_fail "pw_wait_until false succeeded"

# Failure paths run in child shells: early death and no first line both fail with logs.
out=$(bash -c '. "$1"; pw_start e sh -c "echo boom >&2; exit 5"' _ "$(dirname "$0")/stack.sh" 2>&1) &&
  pw_fail "pw_start of a dying program succeeded"
[[ $out == *"exited before printing"* && $out == *boom* ]] || pw_fail "early death report: $out"
out=$(PW_START_TIMEOUT=1 bash -c '. "$1"; pw_start f sleep 301.5' _ "$(dirname "$0")/stack.sh" 2>&1) &&
  pw_fail "pw_start without output succeeded"
[[ $out == *"no first line"* ]] || pw_fail "timeout report: $out"
# ... and their processes are gone.
leftover=$(pgrep -f "^sleep 301.5$" || true)
[ -z "$leftover" ] || pw_fail "processes left behind: $leftover"

# PW_KEEP=1 keeps the directory; otherwise it is removed on exit.
kept=$(PW_KEEP=1 bash -c '. "$1"; pw_tmpdir' _ "$(dirname "$0")/stack.sh" 2>/dev/null)
[ -d "$kept" ] || pw_fail "PW_KEEP=1 did not keep $kept"
rm -rf -- "$kept"
gone=$(PW_KEEP=0 bash -c '. "$1"; pw_tmpdir' _ "$(dirname "$0")/stack.sh")
[ ! -e "$gone" ] || pw_fail "temp dir $gone not removed"
echo "PASS stack.sh selftest"
