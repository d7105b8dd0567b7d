#!/usr/bin/env bash
# e2e: what was done above a held-back commit point is not done again.  One slow request
# (a 30 s ARM long-running operation) holds its partition's commit point while five fast
# ones behind it finish; the worker is killed (SIGKILL) and a new one takes the partition.
# The commit's metadata says which offsets above the commit point were done: the new worker
# redoes only the slow request, the fast ones get no second reply, and the table ends with
# the last value.  (Before, all six were replayed from the commit point.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_stack worker.operation.timeout.ms=120000
arm=$(e2e_arm_target)
e2e_sim_settings '{"lroDurationMs":30000,"lroRetryAfterSeconds":1}'
send() { e2e_send_json "$1" "$2" -p 0; } # all on partition 0, in this order

send slow "$(e2e_request slow "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P44D\"}]")"
pw_wait_until 60 e2e_seen running slow || pw_fail "the slow request did not start"
for i in 1 2 3 4 5; do
  send "fast-$i" "$(e2e_request "fast-$i" "[{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target StormEvents),\"hotCachePeriod\":\"P${i}D\"}]")"
done
for i in 1 2 3 4 5; do
  t=$(e2e_wait_terminal "fast-$i" 90)
  e2e_expect "fast-$i succeeded" '.status == "succeeded"' "$t"
done
e2e__has_terminal slow && pw_fail "the slow request ended before the kill; the test proves nothing"
# The commit (offset of slow, with the five done above it) goes out within 100 ms of the
# last acknowledgement; wait until the worker logged it.
pw_wait_until 30 grep -q '"event":"kafka.committed","msg":"adx.policy.requests \[0\] @ 0"' \
  "$PW_TMP/worker.err" || pw_fail "no commit of partition 0 at the slow request's offset"
sleep 1
pw_stop worker KILL 30 || true
pw_log "worker killed with the slow request in flight"
e2e_sim_settings '{"lroDurationMs":200,"lroRetryAfterSeconds":0}'

e2e_start_worker worker2 "$PW_TMP/worker.conf"
t=$(e2e_wait_terminal slow 120)
e2e_expect "slow succeeded after the restart" '.status == "succeeded"' "$t"
e2e_expect "slow finished by worker2" '.workerId != null' "$t"
grep -q '"requestId":"slow","event":"request.received"' "$PW_TMP/worker2.err" ||
  pw_fail "worker2 did not redo the slow request"
# A later request on the same partition, to be sure worker2 went past the fast ones.
send after "$(e2e_request after "[{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target StormEvents),\"hotCachePeriod\":\"P5D\"}]")"
e2e_wait_terminal after 90 >/dev/null
for i in 1 2 3 4 5; do
  n=$(e2e_events "fast-$i" | jq -s 'map(select(.status == "succeeded" or .status == "failed")) | length')
  [ "$n" = 1 ] || pw_fail "fast-$i has $n terminal replies, expected 1 (done again after the restart)"
  grep -q "\"requestId\":\"fast-$i\",\"event\":\"request.received\"" "$PW_TMP/worker2.err" &&
    pw_fail "worker2 processed fast-$i again"
done
grep -q '"event":"kafka.skip_set".*5 offsets above it done already' "$PW_TMP/worker2.err" ||
  pw_fail "worker2 did not read the five done offsets from the commit"
state=$(e2e_sim_state)
e2e_expect "StormEvents keeps the last value" \
  '[.subscriptions[].resourceGroups[].clusters[].databases[].tables[] | select(.name == "StormEvents") | .policies.caching] | .[0] | tostring | test("5")' "$state"
e2e_check_no_secret
pw_stop worker2 TERM 60 || pw_fail "worker2 exit status $? after SIGTERM"
pw_log PASS
