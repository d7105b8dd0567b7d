#!/usr/bin/env bash
# e2e: SIGTERM keeps to the drain deadline even when Kafka is slow.  A request runs longer
# than worker.drain.timeout.ms and the broker answers every request 20 s late, so neither
# the terminal reply, nor the final commit, nor leaving the group can finish: the worker
# still exits 0 within the deadline plus its 3 s close budget and its 5 s teardown budget (it
# used to wait out a 10 s flush and a commit and close without limit).  Nothing was committed for the request, so a
# new worker takes it again and replies.  Last, the teardown watchdog: with
# worker.teardown.timeout.ms=0 the process exits 0 right after it stopped, not freeing the rest.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_stack worker.drain.timeout.ms=2000
arm=$(e2e_arm_target)
# One request done first, so there is a stored offset for the final commit to wait on.
e2e_send_json quick-1 "$(e2e_request quick-1 "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P15D\"}]" '{"dryRun":true}')"
e2e_wait_terminal quick-1 60 >/dev/null
e2e_sim_settings '{"lroDurationMs":60000,"lroRetryAfterSeconds":1}'
e2e_send_json slow-1 "$(e2e_request slow-1 "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P16D\"}]")"
pw_wait_until 60 e2e_seen running slow-1 || pw_fail "slow-1 did not start running"
pw_kafka_ctl "$KAFKA_CTL" rtt 1 20000 >/dev/null || pw_fail "kafka-mock refused rtt"
start=$(pw__now)
rc=0
pw_stop worker TERM 60 || rc=$?
took=$(awk -v a="$start" -v b="$(pw__now)" 'BEGIN { printf "%.1f", b - a }')
pw_log "worker exited with status $rc after ${took}s"
[ "$rc" = 0 ] || pw_fail "exit status $rc after SIGTERM, expected 0"
# 2 s drain + 3 s close + up to 5 s releasing the clients (worker.teardown.timeout.ms, the
# watchdog) + 2 s slack.  Releasing them is not instant here: destroying the abandoned
# consumer waits for librdkafka's broker threads while the broker answers 20 s late (about
# 2 s on an idle machine, more under load).
limit=$(pw__scale 12)
awk -v t="$took" -v l="$limit" 'BEGIN { exit !(t <= l) }' ||
  pw_fail "SIGTERM took ${took}s with a 2 s drain deadline (limit ${limit}s)"
grep -q '"event":"worker.drain_timeout"' "$PW_TMP/worker.err" || pw_fail "no drain timeout logged"

# The broker recovers; the request was not committed, so the next worker takes it again.
pw_kafka_ctl "$KAFKA_CTL" rtt 1 0 >/dev/null || pw_fail "kafka-mock refused rtt 0"
e2e_sim_settings '{"lroDurationMs":300,"lroRetryAfterSeconds":0}'
e2e_start_worker worker2 "$PW_TMP/worker.conf"
t=$(e2e_wait_terminal slow-1 120)
e2e_expect "slow-1 succeeded after the restart" '.status == "succeeded"' "$t"
rc=0
pw_stop worker2 TERM 60 || rc=$?
[ "$rc" = 0 ] || pw_fail "worker2 exit status $rc after SIGTERM, expected 0"
# An ordinary shutdown (the broker answering in time) releases the clients well within 5 s.
# (The first worker's may use its watchdog: its broker answered 20 s late.)
grep -q '"event":"worker.teardown_timeout"' "$PW_TMP/worker2.err" &&
  pw_fail "worker2's teardown overran worker.teardown.timeout.ms (5 s)"

# With no time at all to release the clients, the teardown watchdog ends the process, with
# the status the shutdown earned.
e2e_write_config "$PW_TMP/worker3.conf" worker.teardown.timeout.ms=0
e2e_start_worker worker3 "$PW_TMP/worker3.conf"
rc=0
pw_stop worker3 TERM 60 || rc=$?
[ "$rc" = 0 ] || pw_fail "worker3 exit status $rc after SIGTERM, expected 0"
grep -q '"event":"worker.stopped"' "$PW_TMP/worker3.err" || pw_fail "worker3 did not stop cleanly"
grep -q '"event":"worker.teardown_timeout"' "$PW_TMP/worker3.err" ||
  pw_fail "worker3: no teardown_timeout with worker.teardown.timeout.ms=0"
e2e_check_no_secret
pw_log PASS
