#!/usr/bin/env bash
# e2e: the broker goes away while a request runs, so its terminal reply cannot be delivered
# in time (message.timeout.ms); the worker produces it again until the broker acknowledges
# it, and only then commits past its offset.  The worker stays up.  Then a fatal producer error
# (sequence out of sync): the producer is replaced and the terminal reply still delivered.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_stack kafka.message.timeout.ms=2000 worker.reply.retry.backoff.ms=500
arm=$(e2e_arm_target)
e2e_sim_settings '{"lroDurationMs":3000,"lroRetryAfterSeconds":1}'

e2e_send_json deliver-1 "$(e2e_request deliver-1 "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P15D\"}]")"
pw_wait_until 60 e2e_seen running deliver-1 || pw_fail "deliver-1 did not start running"
pw_kafka_ctl "$KAFKA_CTL" broker-down 1 >/dev/null || pw_fail "kafka-mock refused broker-down"
pw_log "broker down while deliver-1 runs"
pw_wait_until 60 grep -q '"event":"reply.delivery_retry"' "$PW_TMP/worker.err" ||
  pw_fail "no delivery retry while the broker was down"
# where deliver-1 is (partition, offset), and whether a commit went past it
where=$(jq -r 'select(.requestId == "deliver-1" and .event == "request.received") | .msg' \
  "$PW_TMP/worker.err" | head -1)
part=$(printf '%s' "$where" | sed -E 's/.*\[([0-9]+)\].*/\1/')
off=$(printf '%s' "$where" | sed -E 's/.*@ ([0-9]+).*/\1/')
[ -n "$part" ] && [ -n "$off" ] || pw_fail "deliver-1 was not received: $where"
committed_past() {
  jq -r --arg p "[$part]" 'select(.event == "kafka.committed") | .msg | select(contains($p))' \
    "$PW_TMP/worker.err" | sed -E 's/.*@ ([0-9]+).*/\1/' | awk -v o="$off" '$1 > o {f=1} END {exit !f}'
}
committed_past && pw_fail "deliver-1's offset was committed before its terminal reply was delivered"
pw_kafka_ctl "$KAFKA_CTL" broker-up 1 >/dev/null || pw_fail "kafka-mock refused broker-up"
pw_log "broker up"
t=$(e2e_wait_terminal deliver-1 120)
e2e_expect "deliver-1 succeeded" '.status == "succeeded"' "$t"
pw_wait_until 60 committed_past ||
  pw_fail "deliver-1's offset was not committed after its terminal reply was delivered"
e2e_worker_alive

# The idempotent producer's sequence loses sync with the broker (a fatal error for that
# librdkafka instance): the worker replaces its producer, produces the terminal reply again
# and stays up (it used to give the reply up as undeliverable and exit 1).
e2e_send_json deliver-2 "$(e2e_request deliver-2 "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P16D\"}]")"
pw_wait_until 60 e2e_seen running deliver-2 || pw_fail "deliver-2 did not start running"
pw_kafka_ctl "$KAFKA_CTL" request-errors Produce OUT_OF_ORDER_SEQUENCE_NUMBER 1 >/dev/null ||
  pw_fail "kafka-mock refused request-errors"
t=$(e2e_wait_terminal deliver-2 120)
e2e_expect "deliver-2 succeeded" '.status == "succeeded"' "$t"
grep -q '"event":"kafka.producer_fatal"' "$PW_TMP/worker.err" || pw_fail "the injected error was not fatal to the producer"
grep -q '"event":"kafka.producer_replaced"' "$PW_TMP/worker.err" || pw_fail "the producer was not replaced"
pw_wait_until 30 grep -q '"requestId":"deliver-2","event":"reply.acked"' "$PW_TMP/worker.err" ||
  pw_fail "deliver-2's terminal reply was not acknowledged"
grep -q '"event":"reply.undeliverable"' "$PW_TMP/worker.err" && pw_fail "a terminal reply was given up"
e2e_worker_alive
pw_stop worker TERM 60 || pw_fail "worker exit status $? after SIGTERM"
e2e_check_no_secret
pw_log PASS
