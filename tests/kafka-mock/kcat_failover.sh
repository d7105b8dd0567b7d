#!/usr/bin/env bash
# kafka-mock with kcat: produce, consume in a consumer group, take the partition leader down and
# back up while producing and consuming, resume the group from its commits; nothing is lost.
set -euo pipefail
. "$(dirname "$0")/../lib/stack.sh"

KM=${1:?usage: kcat_failover.sh PATH/TO/kafka-mock}
[ -x "$KM" ] || pw_fail "kafka-mock not found at $KM"
pw_require kcat jq
pw_tmpdir >/dev/null

TOPIC=events
GROUP=grp-$$
RUN=run-$$-$RANDOM

pw_start kafka "$KM" --brokers 3 --topic "$TOPIC:3"
BOOT=$(pw_first_line kafka)
CTL=$(pw_line kafka 2)

# gen FROM TO: "key:payload" lines (kcat -K:), payloads unique to this run.
gen() {
  local i
  for ((i = $1; i <= $2; i++)); do
    printf 'k%d:%s-msg-%d\n' "$i" "$RUN" "$i"
  done
}
# consumed NAME: number of messages a kcat -J consumer has printed so far.
consumed() {
  grep -c '^{' "$PW_TMP/$1.out" || true
}
at_least() {
  [ "$(consumed "$1")" -ge "$2" ]
}
# expected FROM TO / actual FILE...: "key payload run-header" lines, sorted, for comparing.
expected() {
  gen "$1" "$2" | sed "s/:/ /; s/\$/ $RUN/" | sort
}
actual() {
  cat "$@" | grep '^{' | jq -r '[.key, .payload, (.headers // [] | .[1] // "-")] | join(" ")' | sort
}
produce() {
  pw_kcat_produce "$BOOT" "$TOPIC" -K: -H "run=$RUN" -X enable.idempotence=true \
    -X topic.metadata.refresh.interval.ms=1000
}
# A short session timeout: the mock makes the next join wait up to the leaver's session timeout.
consumer_cmd=(kcat -q -u -b "$BOOT" -G "$GROUP" -J -X auto.offset.reset=earliest
              -X topic.metadata.refresh.interval.ms=1000 -X auto.commit.interval.ms=500
              -X session.timeout.ms=6000 -X heartbeat.interval.ms=500
              "$TOPIC")

# 1. Produce 100, consume them in a group.
gen 1 100 | produce || pw_fail "producing the first 100 failed"
pw_start consumer1 "${consumer_cmd[@]}"
pw_wait_until 180 at_least consumer1 100 || pw_fail "group consumer got $(consumed consumer1)/100"
pw_log "group consumer has the first 100"

# 2. Take partition 0's leader down, produce 100 more, bring it back.
LEADER=$(kcat -L -J -b "$BOOT" -t "$TOPIC" |
  jq -r '.topics[0].partitions[] | select(.partition == 0) | .leader')
[[ $LEADER =~ ^[1-3]$ ]] || pw_fail "no leader for $TOPIC/0: '$LEADER'"
pw_kafka_ctl "$CTL" broker-down "$LEADER" >/dev/null || pw_fail "broker-down $LEADER"
pw_log "broker $LEADER (leader of $TOPIC/0) is down"
gen 101 200 >"$PW_TMP/batch2"
PW_STDIN=$PW_TMP/batch2 pw_spawn producer2 \
  kcat -q -P -b "$BOOT" -t "$TOPIC" -K: -H "run=$RUN" -X enable.idempotence=true \
  -X topic.metadata.refresh.interval.ms=1000 -X message.timeout.ms=600000
# Messages for partitions led by the live brokers may flow meanwhile; not required.
if pw_wait_until 20 at_least consumer1 101; then
  pw_log "consuming continued while broker $LEADER was down ($(consumed consumer1))"
else
  pw_log "no progress while broker $LEADER was down (it may be the group coordinator too)"
fi
pw_alive producer2 && pw_log "producer waits for partition 0 while its leader is down"
pw_kafka_ctl "$CTL" broker-up "$LEADER" >/dev/null || pw_fail "broker-up $LEADER"
pw_log "broker $LEADER is up again"
rc=0
pw_wait_exit producer2 300 || rc=$?
[ "$rc" -eq 0 ] || pw_fail "producer of batch 2 exited $rc"
pw_wait_until 300 at_least consumer1 200 || pw_fail "group consumer got $(consumed consumer1)/200"
pw_stop consumer1 TERM 60 || pw_fail "consumer1 did not stop cleanly"

expected 1 200 >"$PW_TMP/want12"
actual "$PW_TMP/consumer1.out" | sort -u >"$PW_TMP/got12"
diff "$PW_TMP/want12" "$PW_TMP/got12" >"$PW_TMP/diff12.log" ||
  pw_fail "messages 1..200 differ (want vs got in diff12.log)"
dups=$(($(consumed consumer1) - 200))
pw_log "all 200 consumed, content matches ($dups redelivered)"

# 3. A new member of the same group resumes from the committed offsets: it gets batch 3,
#    and batch 1-2 at most again (at-least-once), never less.
gen 201 250 | produce || pw_fail "producing batch 3 failed"
pw_start consumer2 "${consumer_cmd[@]}"
want3() {
  actual "$PW_TMP/consumer2.out" | grep -c -- "-msg-2[0-5][0-9] " | awk '{ exit !($1 >= 50) }'
}
pw_wait_until 300 want3 || pw_fail "second group member did not get batch 3"
pw_stop consumer2 TERM 60 || pw_fail "consumer2 did not stop cleanly"
expected 201 250 >"$PW_TMP/want3"
actual "$PW_TMP/consumer2.out" | sort -u | grep -E -- "-msg-(2[0-4][0-9]|250) " |
  grep -v -- "-msg-200 " >"$PW_TMP/got3" || true
diff "$PW_TMP/want3" "$PW_TMP/got3" >"$PW_TMP/diff3.log" || pw_fail "batch 3 differs (diff3.log)"
again=$(($(consumed consumer2) - 50))
pw_log "second member got batch 3 ($again earlier messages redelivered)"

# 4. Everything in the topic, read from the beginning without a group: exactly 250, no dups.
pw_kcat_consume_n "$BOOT" "$TOPIC" 250 180 >"$PW_TMP/all.json" || pw_fail "reading back 250"
expected 1 250 >"$PW_TMP/want_all"
actual "$PW_TMP/all.json" >"$PW_TMP/got_all"
diff "$PW_TMP/want_all" "$PW_TMP/got_all" >"$PW_TMP/diff_all.log" ||
  pw_fail "topic content differs (diff_all.log)"

rc=0
pw_stop kafka TERM 60 || rc=$?
[ "$rc" -eq 0 ] || pw_fail "kafka-mock exited $rc on SIGTERM"
echo "PASS kcat_failover"
