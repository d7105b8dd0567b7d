#!/usr/bin/env bash
# kafka-mock's control port: faults take effect, bad input gets "error ..." and never stops it;
# bad flags exit 2; SIGTERM shuts it down cleanly with status 0.
set -euo pipefail
# shellcheck source=../lib/stack.sh
. "$(dirname "$0")/../lib/stack.sh"

KM=${1:?usage: control.sh PATH/TO/kafka-mock}
[ -x "$KM" ] || pw_fail "kafka-mock not found at $KM"
pw_require kcat
pw_tmpdir >/dev/null

# Bad command lines are refused before anything starts.
for args in "--brokers 0" "--brokers x" "--topic bad/name" "--topic t:0" "--nope" "--brokers"; do
  rc=0
  # shellcheck disable=SC2086 # word splitting of $args is the point
  "$KM" $args >"$PW_TMP/badargs.out" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || pw_fail "kafka-mock $args: exit $rc, want 2"
done

pw_start kafka "$KM" --brokers 2 --topic ctl:2
BOOT=$(pw_first_line kafka)
CTL=$(pw_line kafka 2)
[[ $BOOT =~ ^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$ ]] || pw_fail "bootstrap line: '$BOOT'"
[[ $CTL =~ ^127\.0\.0\.1:[0-9]+$ ]] || pw_fail "control line: '$CTL'"

expect_ok() {
  local r
  r=$(pw_kafka_ctl "$CTL" "$@") || pw_fail "'$*' answered '$r', want ok"
}
expect_error() {
  local r
  if r=$(pw_kafka_ctl "$CTL" "$@"); then
    pw_fail "'$*' answered '$r', want error"
  fi
  [[ $r == error\ * ]] || pw_fail "'$*' answered '$r', want 'error <why>'"
}

expect_ok ping
r=$(pw_kafka_ctl "$CTL" bootstraps) || pw_fail "bootstraps: $r"
[ "$r" = "ok $BOOT" ] || pw_fail "bootstraps answered '$r'"
expect_ok topic-create made 3
expect_error topic-create made 3
expect_ok leader made 0 2
expect_ok rtt all 50
expect_ok rtt 1 0
expect_ok broker-down 2
expect_ok broker-up 2
expect_ok request-errors Produce NOT_LEADER_FOR_PARTITION 2
expect_ok clear-request-errors Produce
expect_ok broker-request-errors 1 Fetch _TRANSPORT 1 10
expect_ok clear-request-errors Fetch
expect_ok coordinator group g1 1

expect_error nonsense
expect_error ''
expect_error ping extra
expect_error broker-down
expect_error broker-down 3
expect_error broker-down -5
expect_error rtt 1 -1
expect_error rtt 1 999999999999999999999
expect_error request-errors Produce NO_SUCH_ERROR 1
expect_error request-errors NoSuchApi NOT_LEADER_FOR_PARTITION 1
expect_error request-errors Produce NOT_LEADER_FOR_PARTITION 0
expect_error topic-create 'bad/name' 1
expect_error topic-create x 0
expect_error leader made zero 1
expect_error a b c d e f g h i j k

# Over-long lines, binary bytes and a client that vanishes mid-line: answered or dropped.
exec {fd}<>"/dev/tcp/${CTL%:*}/${CTL##*:}"
head -c 100000 /dev/zero | tr '\0' 'A' >&"$fd"
printf '\nping\n' >&"$fd"
IFS= read -r -t 30 r1 <&"$fd" || true
IFS= read -r -t 30 r2 <&"$fd" || true
[ "$r1" = "error line too long" ] || pw_fail "over-long line answered '$r1'"
[ "$r2" = "ok" ] || pw_fail "ping after over-long line answered '$r2'"
printf '\x00\x01\xfe\xff garbage\r\n' >&"$fd"
IFS= read -r -t 30 r1 <&"$fd" || true
[[ $r1 == error\ * ]] || pw_fail "binary garbage answered '$r1'"
printf 'broker-do' >&"$fd"
exec {fd}>&-
# More connections than it serves at once: the extra ones are told so, the others still work.
fds=()
for _ in $(seq 20); do
  exec {f}<>"/dev/tcp/${CTL%:*}/${CTL##*:}"
  fds+=("$f")
done
for f in "${fds[@]}"; do exec {f}>&-; done
# Random bytes on a few connections.
for _ in 1 2 3; do
  exec {fd}<>"/dev/tcp/${CTL%:*}/${CTL##*:}"
  { head -c 200000 /dev/urandom >&"$fd"; } 2>/dev/null || true
  exec {fd}>&-
done
pw_wait_until 30 pw_kafka_ctl "$CTL" ping >/dev/null || pw_fail "control port dead after garbage"
pw_alive kafka || pw_fail "kafka-mock died"

# Injected Produce errors are retriable: the producer retries through them, nothing lost.
expect_ok request-errors Produce NOT_LEADER_FOR_PARTITION 3
seq 1 20 | sed 's/^/ctl-/' >"$PW_TMP/sent"
pw_kcat_produce "$BOOT" ctl -X enable.idempotence=true <"$PW_TMP/sent" ||
  pw_fail "produce through injected errors failed"
pw_kcat_consume_n "$BOOT" ctl 20 120 >"$PW_TMP/got.json" || pw_fail "consume after errors"
jq -r .payload "$PW_TMP/got.json" | sort >"$PW_TMP/got"
sort "$PW_TMP/sent" | diff - "$PW_TMP/got" || pw_fail "messages differ after injected errors"

# Clean shutdown with clients still connected: SIGTERM -> exit 0, bootstrap and control ports
# closed.
pw_spawn reader kcat -q -C -b "$BOOT" -t ctl -o beginning -u
exec {idle}<>"/dev/tcp/${CTL%:*}/${CTL##*:}"
pw_wait_until 60 grep -q ctl-20 "$PW_TMP/reader.out" || pw_fail "reader got nothing"
rc=0
pw_stop kafka TERM 60 || rc=$?
[ "$rc" -eq 0 ] || pw_fail "kafka-mock exited $rc on SIGTERM, want 0"
if (exec 3<>"/dev/tcp/${CTL%:*}/${CTL##*:}") 2>/dev/null; then
  pw_fail "control port still open after exit"
fi
exec {idle}>&-
if (exec 3<>"/dev/tcp/${BOOT%%:*}/$(echo "$BOOT" | cut -d, -f1 | cut -d: -f2)") 2>/dev/null; then
  pw_fail "broker port still open after exit"
fi

# SIGINT too.
pw_start kafka2 "$KM" --brokers 1
rc=0
pw_stop kafka2 INT 60 || rc=$?
[ "$rc" -eq 0 ] || pw_fail "kafka-mock exited $rc on SIGINT, want 0"
echo "PASS control"
