#!/usr/bin/env bash
# e2e: deliveryAttempt counts the receipts of one message by one worker process.  Worker a
# runs a slow request on each request partition; worker b joins (with a credential that
# fails, so it consumes nothing) and leaves again: the rebalances take a's partitions away
# before the requests' commits (a's revoke deadline is short) and give them back, so a
# receives the messages again.  Each receipt is numbered 1, 2, ... (the request.received
# lines' deliveryAttempt, at one offset), and the events of the run that ends carry its
# number.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_services
e2e_write_config "$PW_TMP/worker-a.conf" worker.id=worker-a worker.drain.timeout.ms=1000 \
  worker.operation.timeout.ms=120000
E2E_NO_SECRET=1 e2e_write_config "$PW_TMP/worker-b.conf" worker.id=worker-b \
  azure.client.secret=wrong-secret worker.credential.check=on
e2e_start_collectors
e2e_start_worker worker-a "$PW_TMP/worker-a.conf"
pw_wait_until 60 bash -c "[ \$(grep -c '\"event\":\"kafka.assigned\"' '$PW_TMP/worker-a.err') -ge 1 ]" ||
  pw_fail "worker-a got no partition"
e2e_sim_settings '{"lroDurationMs":8000,"lroRetryAfterSeconds":1}'
arm=$(e2e_arm_target)
for p in 0 1; do
  e2e_send_json "slow-$p" "$(e2e_request "slow-$p" "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P$((70 + p))D\"}]")" -p "$p"
done
pw_wait_until 60 bash -c "[ \$(grep -c '\"event\":\"request.received\"' '$PW_TMP/worker-a.err') -ge 2 ]" ||
  pw_fail "worker-a did not take both requests"
pw_spawn worker-b "$PW_BIN_DIR/policy-worker" --config "$PW_TMP/worker-b.conf"
pw_wait_until 60 grep -q '"event":"kafka.assigned"' "$PW_TMP/worker-b.err" ||
  pw_fail "worker-b got no partition"
pw_wait_until 60 grep -q '"event":"worker.revoke_timeout"\|"event":"worker.revoke_drained"' "$PW_TMP/worker-a.err" ||
  pw_fail "worker-a released nothing"
sleep 2
pw_stop worker-b TERM 60 || true
for p in 0 1; do
  e2e_wait_terminal "slow-$p" 240 >/dev/null
done
# rebalances (eager: every partition is revoked and given again) redeliver what was not
# committed to worker-a: each receipt is numbered
twice=$(jq -s -c '[.[] | select(.event == "request.received" and (.requestId | startswith("slow-")))] | group_by(.requestId) | map({id: .[0].requestId, attempts: map(.deliveryAttempt), offsets: map(.offset) | unique})' "$PW_TMP/worker-a.err")
pw_log "worker-a receipts: $twice"
e2e_expect "receipts numbered 1..n per message, one offset each, some message twice" \
  'all(.[]; .attempts == [range(1; (.attempts | length) + 1)] and (.offsets | length) == 1) and any(.[]; (.attempts | length) >= 2)' "$twice"
# the last receipt of each message is the one that ran to the end: its terminal event carries
# its number; no event carries a number that was not a receipt
for id in slow-0 slow-1; do
  n=$(printf '%s' "$twice" | jq --arg id "$id" 'map(select(.id == $id))[0].attempts | max')
  # (an earlier receipt may have ended too, before its commit: a terminal event of its own)
  pw_wait_until 240 bash -c "jq -c --arg id '$id' 'select(.key == \$id) | .payload | fromjson' '$PW_TMP/replies.out' 2>/dev/null | jq -e -s 'any(.[]; .deliveryAttempt == $n and .status == \"succeeded\")' >/dev/null" ||
    pw_fail "$id: no succeeded event of receipt $n: $(e2e_events "$id" | jq -c '[.status, .deliveryAttempt]' | tr '\n' ' ')"
  evs=$(e2e_events "$id" | jq -s -c .)
  e2e_expect "$id: every event's deliveryAttempt a receipt's, one source" \
    "all(.[]; .deliveryAttempt >= 1 and .deliveryAttempt <= $n) and (map(.source) | unique | length) == 1" "$evs"
done
