#!/usr/bin/env bash
# e2e: pacing against Azure's budgets. azure-sim's ARM write bucket is made small (8, refilled
# 1 per second) and the worker told the same; 24 databases get a caching change each, so the
# last writes wait about 16 s, four times the operations' deadline:
#   - every operation succeeds, running events say "queued: ARM write budget", queued time is
#     reported (queuedMs) and does not count against the operation's deadline (shorter than
#     the wait), and almost no write is answered 429;
#   - a 429 storm (injected) drains the bucket and every operation still succeeds;
#   - a ServiceIsInMaintenance / Conflict burst on ARM and a ServiceBusy burst on Kusto are
#     retried to success.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=24
e2e_stack "azure.arm.writes.burst=8" "azure.arm.writes.per.second=1" \
  "worker.operation.timeout.ms=4000" "worker.queue.timeout.ms=120000" "azure.attempts.max=10"
e2e_sim_settings '{"armWriteBucket": 8, "armWriteRefillPerSecond": 1, "lroDurationMs": 200}'

# N databases beside the default one
state=$(e2e_sim_state | jq -c --argjson n "$N" '
  (.subscriptions[0].resourceGroups[0].clusters[0].databases) as $dbs |
  .subscriptions[0].resourceGroups[0].clusters[0].databases =
    $dbs + [range(0; $n) as $i | ($dbs[0] | .name = ("pacedb" + ($i | tostring)) | .principals = [])]')
e2e_sim PUT /_sim/state "$state" >/dev/null

arm_db() {
  jq -cn --arg s "$SUB" --arg rg "$RG" --arg c "$CLUSTER" --arg d "$1" \
    '{subscriptionId: $s, resourceGroup: $rg, cluster: $c, database: $d}'
}

# 1. N writes against a bucket of 8 refilled 1 per second: about N - 8 s of queueing.
e2e_sim_clear_requests
for i in $(seq 0 $((N - 1))); do
  e2e_send_json "pace-$i" "$(e2e_request "pace-$i" \
    "[{\"kind\":\"database.caching\",\"target\":$(arm_db "pacedb$i"),\"hotCachePeriod\":\"P7D\"}]")"
done
for i in $(seq 0 $((N - 1))); do
  t=$(e2e_wait_terminal "pace-$i" 180)
  e2e_expect "pace-$i succeeded" '.status == "succeeded" and .operations[0].status == "succeeded"' "$t"
done
events=$(jq -c 'select(.key | startswith("pace-")) | .payload | fromjson' "$PW_TMP/replies.out" | jq -s -c .)
e2e_expect "running events say what they wait for" \
  '[.[] | select(.status == "running") | .operations[] | select(.queue.waitingFor == "ARM write budget")] | length > 0' "$events"
e2e_expect "queued time reported, longer than the operation deadline for some" \
  '[.[] | select(.status == "succeeded") | .operations[0].queuedMs // 0] | max > 4000' "$events"
log=$(e2e_sim_requests)
throttled=$(printf '%s' "$log" | jq '[.[] | select(.method == "PATCH" and .status == 429)] | length')
patches=$(printf '%s' "$log" | jq '[.[] | select(.method == "PATCH")] | length')
pw_log "$patches PATCHes, $throttled answered 429"
[ "$throttled" -le 2 ] || pw_fail "$throttled of $patches PATCHes answered 429"

# 2. a 429 storm: the next 6 ARM answers are 429 (Retry-After 1); everything still succeeds.
e2e_sim_faults '{"failNext": [{"count": 6, "status": 429, "host": "management.azure.com", "retryAfter": 1}]}'
for i in 0 1 2 3 4 5 6 7; do
  e2e_send_json "storm-$i" "$(e2e_request "storm-$i" \
    "[{\"kind\":\"database.caching\",\"target\":$(arm_db "pacedb$i"),\"hotCachePeriod\":\"P9D\"}]")"
done
for i in 0 1 2 3 4 5 6 7; do
  t=$(e2e_wait_terminal "storm-$i" 120)
  e2e_expect "storm-$i succeeded" '.status == "succeeded"' "$t"
done

# 3. maintenance and conflict answers (parallel changes to one cluster) are retried.
e2e_sim_faults '{"failNext": [
  {"count": 2, "status": 409, "code": "ServiceIsInMaintenance", "host": "management.azure.com"},
  {"count": 1, "status": 409, "code": "Conflict", "host": "management.azure.com"}]}'
e2e_send_json maint "$(e2e_request maint \
  "[{\"kind\":\"database.retention\",\"target\":$(arm_db pacedb1),\"softDeletePeriod\":\"P20D\"}]")"
t=$(e2e_wait_terminal maint 120)
e2e_expect "maintenance retried to success" '.status == "succeeded" and .operations[0].attempts >= 3' "$t"
e2e_sim_faults "{\"failNext\": [{\"count\": 2, \"status\": 503, \"code\": \"ServiceBusy\", \"host\": \"${CLUSTER_URI#https://}\"}]}"
e2e_send_json busy "$(e2e_request busy \
  "[{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target StormEvents),\"hotCachePeriod\":\"P3D\"}]")"
t=$(e2e_wait_terminal busy 120)
e2e_expect "Kusto busy retried to success" '.status == "succeeded"' "$t"
e2e_sim_faults '{}'

e2e_worker_alive
e2e_check_no_secret
pw_stop worker TERM 60 || pw_fail "worker exit status $? after SIGTERM"
pw_log "PASS"
