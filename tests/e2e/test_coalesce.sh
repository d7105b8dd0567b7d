#!/usr/bin/env bash
# e2e: coalescing. 30 requests set the same caching policy on 30 tables of one database, and
# 10 more set another value: the writes go as `.alter tables (…)` commands (far fewer commands
# than tables), each operation still reported on its own with its after value, and the
# simulator holds every table's policy. A table whose own write fails alone (it vanished
# between its read and the write) does not fail the others of its command.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=30
e2e_stack "azure.kusto.concurrent.max=2"
e2e_sim_settings '{"kustoCommandLatencyMs": 100}'
state=$(e2e_sim_state | jq -c --arg db "$DB" --argjson n "$N" '
  (.subscriptions[0].resourceGroups[0].clusters[0].databases[] | select(.name == $db) | .tables) |=
    (. + [range(0; $n + 10) as $i | {name: ("Coal" + ($i | tostring)), columns: ["A"]}])')
e2e_sim PUT /_sim/state "$state" >/dev/null
e2e_sim_clear_requests

for i in $(seq 0 $((N + 9))); do
  period=P4D
  [ "$i" -ge "$N" ] && period=P6D
  e2e_send_json "coal-$i" "$(e2e_request "coal-$i" \
    "[{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target "Coal$i"),\"hotCachePeriod\":\"$period\"}]")"
done
for i in $(seq 0 $((N + 9))); do
  t=$(e2e_wait_terminal "coal-$i" 120)
  want=P4D
  [ "$i" -ge "$N" ] && want=P6D
  e2e_expect "coal-$i succeeded on its own" \
    ".status == \"succeeded\" and .operations[0].status == \"succeeded\" and .operations[0].after.hotCachePeriod == \"$want\"" "$t"
done
kql=$(e2e_sim_requests | jq -c '[.[] | select(.path | test("/v1/rest/mgmt")) | .body | fromjson | .csl | select(startswith(".alter"))]')
printf '%s\n' "$kql" >"$PW_TMP/coalesce-kql.json"
writes=$(printf '%s' "$kql" | jq length)
multi=$(printf '%s' "$kql" | jq '[.[] | select(startswith(".alter tables ("))] | length')
pw_log "$((N + 10)) table writes went as $writes commands ($multi coalesced)"
[ "$multi" -ge 1 ] || pw_fail "no coalesced command: $kql"
[ "$writes" -lt $((N + 10)) ] || pw_fail "$writes commands for $((N + 10)) writes"
e2e_expect "no command mixes the two values" \
  'all(.[]; (test("hot = 4d") and test("hot = 6d")) | not)' "$kql"
e2e_expect "the simulator holds every table's caching" \
  "[.subscriptions[].resourceGroups[].clusters[].databases[].tables[] | select(.name | startswith(\"Coal\")) | .policies.caching] | length == $((N + 10)) and all(.[]; . != null)" \
  "$(e2e_sim_state)"

# A coalesced command that fails is sent again table by table: every operation still succeeds.
e2e_sim_clear_requests
e2e_sim_faults '{"failNext": [{"count": 1, "status": 400, "code": "BadRequest_SyntaxError", "match": ".alter tables ("}]}'
for i in $(seq 0 $((N - 1))); do
  e2e_send_json "again-$i" "$(e2e_request "again-$i" \
    "[{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target "Coal$i"),\"hotCachePeriod\":\"P2D\"}]")"
done
for i in $(seq 0 $((N - 1))); do
  t=$(e2e_wait_terminal "again-$i" 120)
  e2e_expect "again-$i succeeded after the failed coalesced command" \
    '.status == "succeeded" and .operations[0].after.hotCachePeriod == "P2D"' "$t"
done
e2e_sim_faults '{}'
log=$(e2e_sim_requests)
failed_multi=$(printf '%s' "$log" | jq '[.[] | select((.path | test("/v1/rest/mgmt")) and .status == 400 and (.body | fromjson | .csl | startswith(".alter tables (")))] | length')
pw_log "failed coalesced commands: $failed_multi"
[ "$failed_multi" -eq 1 ] || pw_fail "expected one failed coalesced command, saw $failed_multi"

e2e_worker_alive
e2e_check_no_secret
pw_stop worker TERM 60 || pw_fail "worker exit status $? after SIGTERM"
pw_log "PASS"
