# tests/lib/stack.sh: bash helpers for end-to-end tests that start real programs on loopback.
# shellcheck shell=bash
#
# Use:   set -euo pipefail
#        . "$(dirname "$0")/../lib/stack.sh"      (sourcing installs an EXIT trap)
#
# Environment:
#   PW_TIMEOUT_SCALE  multiplies every timeout given to these helpers (default 1; raise it
#                     on a slow or sanitizer-heavy machine, e.g. PW_TIMEOUT_SCALE=3).
#   PW_KEEP=1         keep the temp dir (logs, outputs) after the test; its path is printed.
#
# Functions (timeouts are whole seconds before scaling; every helper that can fail returns
# non-zero, the pw_fail* ones exit the test with status 1 after printing the logs):
#   pw_tmpdir                 print the per-test temp dir ($PW_TMP, made when this file is
#                             sourced, removed on exit unless PW_KEEP=1).
#   pw_start NAME CMD...      start CMD in the background, stdout -> $PW_TMP/NAME.out,
#                             stderr -> $PW_TMP/NAME.err; wait (PW_START_TIMEOUT, default 60)
#                             for its first stdout line; fail with the log tail if it dies or
#                             times out. Must not run in a subshell ($(...)): it records the pid.
#   pw_spawn NAME CMD...      like pw_start without waiting for output (for producers, one-shot
#                             clients); pair with pw_wait_exit. Stdin is /dev/null unless
#                             PW_STDIN names a file to feed it.
#   pw_first_line NAME        print the first stdout line of NAME (e.g. a bootstrap list or URL).
#   pw_line NAME N            print line N of NAME's stdout (empty if absent).
#   pw_pid NAME               print NAME's pid.
#   pw_alive NAME             succeed if NAME is still running.
#   pw_stop NAME [SIGNAL] [TIMEOUT]
#                             send SIGNAL (default TERM), wait up to TIMEOUT (default 30) for
#                             exit; returns the process's exit status (128+n if killed by a
#                             signal). Escalates to KILL and returns 124 on timeout.
#   pw_wait_exit NAME [TIMEOUT]
#                             wait up to TIMEOUT (default 60) for NAME to exit by itself;
#                             returns its exit status, or 124 (and leaves it running) on timeout.
#   pw_kill_all               KILL everything pw_start started that still runs (the EXIT trap
#                             calls it; call pw_cleanup from your own EXIT trap if you set one).
#   pw_wait_until TIMEOUT CMD...
#                             run CMD every 0.2 s until it succeeds; return 1 on timeout.
#   pw_log MSG...             print a timestamped line on stderr.
#   pw_fail MSG...            print MSG and the tail of every log in the temp dir, exit 1.
#   pw_skip MSG...            print MSG, exit 77 (ctest SKIP_RETURN_CODE 77).
#   pw_require CMD...         pw_skip unless every CMD is on PATH.
#   pw_kcat_consume_n BOOTSTRAP TOPIC N TIMEOUT [KCAT-ARGS...]
#                             print the first N messages of TOPIC (all partitions, from the
#                             beginning, no consumer group) as kcat -J JSON lines (topic,
#                             partition, offset, key, payload, headers); fail (return 1, with
#                             what arrived on stderr) if fewer than N arrive within TIMEOUT.
#   pw_kcat_read_all BOOTSTRAP TOPIC TIMEOUT [KCAT-ARGS...]
#                             print every message of TOPIC (all partitions, from the
#                             beginning to each partition's end as the broker reports it, no
#                             consumer group) as kcat -J JSON lines; fail (return non-zero) if
#                             kcat does not reach the end within TIMEOUT.  For a topic nobody
#                             writes to any more, this is all of it, unlike a collector's file.
#   pw_kafka_ctl CONTROL CMD...
#                             send one command line to kafka-mock's control port (CONTROL is
#                             host:port, line 2 of kafka-mock's stdout, e.g.
#                             "$(pw_line kafka 2)"); print the reply; succeed iff it is "ok...".
#   pw_kcat_produce BOOTSTRAP TOPIC [KCAT-ARGS...] < LINES
#                             produce one message per stdin line (key:value with -K:), wait
#                             for delivery; non-zero if any message failed.

# Guard against double sourcing.
if [ -n "${PW_STACK_SH_LOADED:-}" ]; then
  return 0
fi
PW_STACK_SH_LOADED=1

# The per-test temp dir exists from the moment this file is sourced, so that $(pw_tmpdir) in a
# subshell and the EXIT trap agree on it.
PW_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pwtest.XXXXXX")
declare -A PW__PIDS=()
PW__ORDER=()

pw_log() {
  printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

# pw__scale SECONDS: the timeout scaled by PW_TIMEOUT_SCALE (integer result, at least 1).
pw__scale() {
  local s=${PW_TIMEOUT_SCALE:-1}
  awk -v t="$1" -v s="$s" 'BEGIN { v = int(t * s + 0.5); if (v < 1) v = 1; print v }'
}

# pw__now: seconds since the epoch with microseconds (bash 5 EPOCHREALTIME).
pw__now() {
  printf '%s\n' "${EPOCHREALTIME/,/.}"
}

# pw__before DEADLINE: succeed while now < DEADLINE.
pw__before() {
  awk -v n="$(pw__now)" -v d="$1" 'BEGIN { exit !(n < d) }'
}

pw__deadline() {
  awk -v n="$(pw__now)" -v t="$(pw__scale "$1")" 'BEGIN { printf "%.6f\n", n + t }'
}

pw_tmpdir() {
  mkdir -p -- "$PW_TMP"
  printf '%s\n' "$PW_TMP"
}

pw_skip() {
  echo "SKIP: $*" >&2
  exit 77
}

pw_require() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || pw_skip "$c not found on PATH"
  done
}

pw_fail() {
  local f
  echo "FAIL: $*" >&2
  if [ -n "$PW_TMP" ] && [ -d "$PW_TMP" ]; then
    for f in "$PW_TMP"/*.out "$PW_TMP"/*.err "$PW_TMP"/*.log; do
      [ -s "$f" ] || continue
      echo "----- tail of $f -----" >&2
      tail -n 40 "$f" >&2
    done
  fi
  exit 1
}

pw_pid() {
  [ -n "${PW__PIDS[$1]:-}" ] || return 1
  printf '%s\n' "${PW__PIDS[$1]}"
}

# pw__pid_alive PID: running and not a zombie.
pw__pid_alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(sed -e 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

pw_alive() {
  local pid
  pid=$(pw_pid "$1") || return 1
  pw__pid_alive "$pid"
}

pw_first_line() {
  pw_line "$1" 1
}

pw_line() {
  [ -n "$PW_TMP" ] || return 1
  sed -n "${2}p" "$PW_TMP/$1.out" 2>/dev/null
}

# pw__launch NAME CMD...: background CMD with its output in the temp dir; records the pid.
pw__launch() {
  local name=$1 pid
  shift
  [ $# -gt 0 ] || pw_fail "pw_start/pw_spawn $name: no command"
  case $name in
    *[!A-Za-z0-9_.-]*|'') pw_fail "pw_start/pw_spawn: bad name '$name'" ;;
  esac
  if [ -n "${PW__PIDS[$name]:-}" ]; then
    pw_fail "pw_start/pw_spawn: '$name' already started"
  fi
  pw_tmpdir >/dev/null
  "$@" >"$PW_TMP/$name.out" 2>"$PW_TMP/$name.err" <"${PW_STDIN:-/dev/null}" &
  pid=$!
  PW__PIDS[$name]=$pid
  PW__ORDER+=("$name")
  echo "$pid" >"$PW_TMP/$name.pid"
}

pw_spawn() {
  pw__launch "$@"
}

pw_start() {
  local name=$1 deadline pid
  pw__launch "$@"
  shift
  pid=${PW__PIDS[$name]}
  deadline=$(pw__deadline "${PW_START_TIMEOUT:-60}")
  while :; do
    # A complete first line (ends with a newline) has arrived.
    if [ "$(head -c 65536 "$PW_TMP/$name.out" | wc -l)" -ge 1 ]; then
      pw_log "started $name (pid $pid): $(pw_first_line "$name")"
      return 0
    fi
    if ! pw__pid_alive "$pid"; then
      pw_fail "pw_start $name: exited before printing its first line: $*"
    fi
    pw__before "$deadline" || pw_fail "pw_start $name: no first line within ${PW_START_TIMEOUT:-60}s (scaled): $*"
    sleep 0.1
  done
}

pw_stop() {
  local name=$1 sig=${2:-TERM} t=${3:-30} pid rc=0
  pid=$(pw_pid "$name") || { pw_log "pw_stop: unknown '$name'"; return 1; }
  kill -s "$sig" "$pid" 2>/dev/null || true
  pw_wait_exit "$name" "$t" || rc=$?
  if [ -n "${PW__PIDS[$name]:-}" ]; then # pw_wait_exit timed out (it forgets exited ones)
    pw_log "pw_stop $name: still running after SIG$sig + ${t}s (scaled), sending KILL"
    kill -s KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset 'PW__PIDS[$name]'
  fi
  return "$rc"
}

pw_wait_exit() {
  local name=$1 t=${2:-60} pid deadline rc
  pid=$(pw_pid "$name") || { pw_log "pw_wait_exit: unknown '$name'"; return 1; }
  deadline=$(pw__deadline "$t")
  while pw__pid_alive "$pid"; do
    pw__before "$deadline" || return 124
    sleep 0.1
  done
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  unset 'PW__PIDS[$name]'
  return "$rc"
}

pw_kill_all() {
  local name pid
  for name in "${PW__ORDER[@]}"; do
    pid=${PW__PIDS[$name]:-}
    [ -n "$pid" ] || continue
    if pw__pid_alive "$pid"; then
      kill -s KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    unset 'PW__PIDS[$name]'
  done
}

pw_wait_until() {
  local t=$1 deadline
  shift
  deadline=$(pw__deadline "$t")
  while :; do
    if "$@"; then
      return 0
    fi
    pw__before "$deadline" || return 1
    sleep 0.2
  done
}

pw_cleanup() {
  local rc=$?
  pw_kill_all
  if [ -n "$PW_TMP" ] && [ -d "$PW_TMP" ]; then
    if [ "${PW_KEEP:-0}" = 1 ]; then
      echo "kept test dir: $PW_TMP" >&2
    else
      rm -rf -- "$PW_TMP"
    fi
  fi
  return "$rc"
}

pw_kcat_consume_n() {
  local boot=$1 topic=$2 n=$3 t=$4 out got rc
  shift 4
  pw_tmpdir >/dev/null
  out=$(mktemp "$PW_TMP/consume.XXXXXX")
  rc=0
  # -c N makes kcat exit after N messages; timeout bounds the wait for them.
  timeout "$(pw__scale "$t")" kcat -q -C -b "$boot" -t "$topic" -o beginning -c "$n" -J \
    -X topic.metadata.refresh.interval.ms=1000 "$@" >"$out" 2>"$out.err" </dev/null || rc=$?
  got=$(grep -c '^{' "$out" || true)
  if [ "$got" -lt "$n" ]; then
    pw_log "pw_kcat_consume_n $topic: got $got of $n messages within ${t}s (scaled) (kcat rc $rc)"
    tail -n 20 "$out.err" >&2
    rm -f -- "$out" "$out.err"
    return 1
  fi
  head -n "$n" "$out"
  rm -f -- "$out" "$out.err"
}

pw_kcat_read_all() {
  local boot=$1 topic=$2 t=$3 rc=0
  shift 3
  # -e makes kcat exit once every partition reached its end.
  timeout "$(pw__scale "$t")" kcat -q -C -b "$boot" -t "$topic" -o beginning -e -J \
    -X topic.metadata.refresh.interval.ms=1000 "$@" </dev/null || rc=$?
  [ "$rc" = 0 ] || pw_log "pw_kcat_read_all $topic: kcat did not reach the end within ${t}s (scaled) (rc $rc)"
  return "$rc"
}

pw_kafka_ctl() {
  local addr=$1 reply="" fd
  shift
  # A fresh connection per command keeps callers free of fd bookkeeping.
  { exec {fd}<>"/dev/tcp/${addr%:*}/${addr##*:}"; } 2>/dev/null || return 1
  printf '%s\n' "$*" >&"$fd"
  IFS= read -r -t "$(pw__scale 30)" reply <&"$fd" || true
  exec {fd}>&-
  printf '%s\n' "$reply"
  case $reply in
    ok|ok\ *) return 0 ;;
    *) return 1 ;;
  esac
}

pw_kcat_produce() {
  local boot=$1 topic=$2
  shift 2
  kcat -q -P -b "$boot" -t "$topic" -X message.timeout.ms="$(($(pw__scale 60) * 1000))" "$@"
}

trap pw_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
