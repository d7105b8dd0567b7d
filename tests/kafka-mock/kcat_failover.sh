#!/usr/bin/env bash
# kafka-mock with kcat: produce, consume in a consumer group, take the partition leader down and
# back up while producing and consuming, resume the group from its commits; nothing is lost.
set -euo pipefail
# shellcheck source=../lib/stack.sh
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

# Pin the layout so the test knows what an outage stalls: partition P is led by broker P+1,
# the group's coordinator is broker 2.
for p in 0 1 2; do
  pw_kafka_ctl "$CTL" leader "$TOPIC" "$p" $((p + 1)) >/dev/null || pw_fail "leader $TOPIC $p"
done
pw_kafka_ctl "$CTL" coordinator group "$GROUP" 2 >/dev/null || pw_fail "coordinator"
leader_of() {
  kcat -L -J -b "$BOOT" -t "$TOPIC" | jq -r --argjson p "$1" \
    '.topics[0].partitions[] | select(.partition == $p) | .leader'
}
if [ "$(leader_of 0)" != 1 ] || [ "$(leader_of 2)" != 3 ]; then pw_fail "leaders not as set"; fi

# 1. Produce 100, consume them in a group.
gen 1 100 | produce || pw_fail "producing the first 100 failed"
pw_start consumer1 "${consumer_cmd[@]}"
pw_wait_until 180 at_least consumer1 100 || pw_fail "group consumer got $(consumed consumer1)/100"
pw_log "group consumer has the first 100"

# 2. Take broker 1 (partition 0's leader) down and produce 100 more, a third to each partition.
#    Partitions 1 and 2 keep flowing to the group; partition 0's messages wait in the producer
#    (its leader is down and leadership does not move) and arrive once broker 1 is back.
pw_kafka_ctl "$CTL" broker-down 1 >/dev/null || pw_fail "broker-down 1"
pw_log "broker 1 (leader of $TOPIC/0) is down"
gen 101 133 >"$PW_TMP/batch2.p0"
gen 134 166 >"$PW_TMP/batch2.p1"
gen 167 200 >"$PW_TMP/batch2.p2"
for p in 0 1 2; do
  PW_STDIN=$PW_TMP/batch2.p$p pw_spawn "producer2_$p" \
    kcat -q -P -b "$BOOT" -t "$TOPIC" -p "$p" -K: -H "run=$RUN" -X enable.idempotence=true \
    -X topic.metadata.refresh.interval.ms=1000 -X message.timeout.ms=600000
done
for p in 1 2; do
  rc=0
  pw_wait_exit "producer2_$p" 300 || rc=$?
  [ "$rc" -eq 0 ] || pw_fail "producer to partition $p exited $rc while broker 1 was down"
done
pw_wait_until 300 at_least consumer1 167 ||
  pw_fail "with broker 1 down the group got $(consumed consumer1)/167"
pw_alive producer2_0 || pw_fail "producer to partition 0 finished while its leader was down"
if grep -q -E -- '-msg-(10[1-9]|1[12][0-9]|13[0-3])"' "$PW_TMP/consumer1.out"; then
  pw_fail "partition 0 messages consumed while its leader was down"
fi
pw_log "while broker 1 is down: partitions 1-2 flow ($(consumed consumer1)), partition 0 waits"
pw_kafka_ctl "$CTL" broker-up 1 >/dev/null || pw_fail "broker-up 1"
pw_log "broker 1 is up again"
rc=0
pw_wait_exit producer2_0 300 || rc=$?
[ "$rc" -eq 0 ] || pw_fail "producer to partition 0 exited $rc"
pw_wait_until 300 at_least consumer1 200 || pw_fail "group consumer got $(consumed consumer1)/200"
pw_stop consumer1 TERM 60 || pw_fail "consumer1 did not stop cleanly"

expected 1 200 >"$PW_TMP/want12"
actual "$PW_TMP/consumer1.out" | sort -u >"$PW_TMP/got12"
diff "$PW_TMP/want12" "$PW_TMP/got12" >"$PW_TMP/diff12.log" ||
  pw_fail "messages 1..200 differ (want vs got in diff12.log)"
dups=$(($(consumed consumer1) - 200))
pw_log "all 200 consumed, content matches ($dups redelivered)"

# 3. Fail over: take a broker down and move its partitions' leadership to a live broker; producing
#    completes while it is still down (the mock keeps one log per partition, so nothing moves).
DOWN=3
pw_kafka_ctl "$CTL" broker-down "$DOWN" >/dev/null || pw_fail "broker-down $DOWN"
for p in 0 1 2; do
  pw_kafka_ctl "$CTL" leader "$TOPIC" "$p" $(((DOWN % 3) + 1)) >/dev/null ||
    pw_fail "leader $TOPIC $p"
done
pw_log "broker $DOWN is down, every partition now led by broker $(((DOWN % 3) + 1))"
gen 201 250 | produce || pw_fail "producing batch 3 with broker $DOWN down failed"
pw_log "batch 3 delivered while broker $DOWN is down"
pw_kafka_ctl "$CTL" broker-up "$DOWN" >/dev/null || pw_fail "broker-up $DOWN"

# 4. A new member of the same group resumes from the committed offsets: it gets batches 3 and 4,
#    and batches 1-2 at most again (at-least-once), never less.
gen 251 300 | produce || pw_fail "producing batch 4 failed"
expected 201 300 >"$PW_TMP/want34"
# new_in_consumer2: messages of consumer2 not in batches 1-2, unique, sorted.
new_in_consumer2() {
  actual "$PW_TMP/consumer2.out" | sort -u | comm -23 - "$PW_TMP/want12"
}
has_batches_34() {
  [ "$(new_in_consumer2 | wc -l)" -ge 100 ]
}
pw_start consumer2 "${consumer_cmd[@]}"
pw_wait_until 300 has_batches_34 ||
  pw_fail "second group member got $(new_in_consumer2 | wc -l)/100 of batches 3-4"
pw_stop consumer2 TERM 60 || pw_fail "consumer2 did not stop cleanly"
new_in_consumer2 >"$PW_TMP/got34"
diff "$PW_TMP/want34" "$PW_TMP/got34" >"$PW_TMP/diff34.log" ||
  pw_fail "batches 3-4 differ (diff34.log)"
pw_log "second member got batches 3-4 ($(($(consumed consumer2) - 100)) earlier ones redelivered)"

# 5. Everything in the topic, read from the beginning without a group: exactly 300, no dups.
pw_kcat_consume_n "$BOOT" "$TOPIC" 300 180 >"$PW_TMP/all.json" || pw_fail "reading back 300"
expected 1 300 >"$PW_TMP/want_all"
actual "$PW_TMP/all.json" >"$PW_TMP/got_all"
diff "$PW_TMP/want_all" "$PW_TMP/got_all" >"$PW_TMP/diff_all.log" ||
  pw_fail "topic content differs (diff_all.log)"
pw_kcat_read_all "$BOOT" "$TOPIC" 120 >"$PW_TMP/whole.json" || pw_fail "reading $TOPIC to its end"
if [ "$(grep -c '^{' "$PW_TMP/whole.json")" -ne 300 ]; then
  pw_fail "topic holds more than the 300 messages produced (duplicates)"
fi

rc=0
pw_stop kafka TERM 60 || rc=$?
[ "$rc" -eq 0 ] || pw_fail "kafka-mock exited $rc on SIGTERM"
echo "PASS kcat_failover"
