#!/usr/bin/env bash
# e2e: fan-out.  One request applies its operations to many targets in waves:
#  (a) 20 databases, the canary's write fails for good: the rollout halts (RolloutHalted),
#      the 19 others are skipped and the simulator's state shows nothing changed;
#  (b) the same 20 with one failure and a failure budget of 2: every wave runs, the totals
#      per wave add up (19 succeeded, 1 failed, TargetsFailed);
#  (c) selectors: every database of the cluster (ARM's list, several pages through
#      nextLink) and every table of a database (.show tables);
#  (d) the worker killed (SIGKILL) mid-rollout and restarted: the new run finishes it, what
#      the first run had done comes out unchanged, and the final totals hold every target once.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=20
e2e_stack
e2e_sim_settings '{"lroDurationMs": 200, "lroRetryAfterSeconds": 0}'
# 20 more databases in the cluster, ro00 .. ro19, and 4 more tables in the default one.
state=$(e2e_sim_state | jq -c --arg db "$DB" --argjson n "$N" '
  (.subscriptions[0].resourceGroups[0].clusters[0].databases) |=
    ((map(select(.name == $db) | .tables += [range(0; 4) as $i | {name: ("Fan" + ($i | tostring)), columns: ["A"]}])) as $d
     | $d + [range(0; $n) as $i | $d[0] | .name = ("ro" + (if $i < 10 then "0" else "" end) + ($i | tostring)) | .tables = []])')
e2e_sim PUT /_sim/state "$state" >/dev/null

names=$(jq -cn --argjson n "$N" '[range(0; $n) as $i | "ro" + (if $i < 10 then "0" else "" end) + ($i | tostring)]')
kusto_targets=$(jq -cn --arg u "$CLUSTER_URI" --argjson names "$names" '[$names[] | {clusterUri: $u, database: .}]')
arm_targets=$(jq -cn --arg s "$SUB" --arg rg "$RG" --arg c "$CLUSTER" --argjson names "$names" \
  '[$names[] | {subscriptionId: $s, resourceGroup: $rg, cluster: $c, database: .}]')
# rollout_request ID TARGETS TEMPLATES WAVES: a request with a rollout block.
rollout_request() {
  jq -cn --arg id "$1" --argjson targets "$2" --argjson ops "$3" --argjson waves "$4" \
    '{schema: "adx-policy-request/v1", id: $id, requestedBy: "e2e@contoso.com",
      reason: "e2e rollout", rollout: {targets: $targets, operations: $ops, waves: $waves}}'
}
dbs_state() {
  e2e_sim_state | jq -c '[.subscriptions[].resourceGroups[].clusters[].databases[] | select(.name | startswith("ro"))] | sort_by(.name)'
}
# results ID: every target result the request's running events reported, in order.
results() { e2e_events "$1" | jq -c 'select(.status == "running") | .rollout.results[]'; }

# --- (a) the canary fails: halted, nothing else written -----------------------------------
caching='[{"kind": "database.caching", "via": "kusto", "hotCachePeriod": "P7D"}]'
waves='{"canary": 1, "steps": ["10%", "50%", "100%"], "failureBudget": 0}'
before=$(dbs_state)
e2e_sim_clear_requests
e2e_sim_faults '{"failNext": [{"count": 1000, "status": 403, "match": ".alter database [\u0027ro00\u0027]"}]}'
e2e_send_json halt "$(rollout_request halt "$kusto_targets" "$caching" "$waves")"
t=$(e2e_wait_terminal halt 120)
e2e_expect "halt: failed RolloutHalted after wave 0" \
  '.status == "failed" and .error.code == "RolloutHalted" and .rollout.targets == 20
   and .rollout.totals == {targets: 20, succeeded: 0, unchanged: 0, planned: 0, failed: 1, skipped: 19}
   and ([.rollout.waves[].targets] == [1, 1, 8, 10])
   and ([.rollout.waves[].skipped] == [0, 1, 8, 10])' "$t"
e2e_expect "halt: one wave event, saying halt" \
  '[.[] | select(.status == "wave")] | length == 1 and .[0].rollout.next == "halt"
   and .[0].rollout.counts.failed == 1' "$(e2e_events halt | jq -s -c .)"
e2e_expect "halt: the canary's result is reported, failed Forbidden" \
  '.index == 0 and .status == "failed" and .operations[0].error.code == "Forbidden"' \
  "$(results halt | jq -s -c 'if length == 1 then .[0] else {} end')"
e2e_sim_faults '{}'
[ "$(dbs_state)" = "$before" ] || pw_fail "the halted rollout changed a database: $(dbs_state | head -c 2000)"
writes=$(e2e_sim_requests | jq '[.[] | select(.path | test("/v1/rest/mgmt")) | .body | fromjson | .csl | select(startswith(".alter"))] | map(select(test("ro00") | not)) | length')
[ "$writes" = 0 ] || pw_fail "the halted rollout sent $writes writes to targets other than the canary"
pw_log "(a) halted at the canary, 19 skipped, nothing written"

# --- (b) one failure within a budget of 2: every wave runs ----------------------------------
waves='{"canary": 1, "steps": ["10%", "50%", "100%"], "failureBudget": 2}'
e2e_sim_faults '{"failNext": [{"count": 1000, "status": 403, "match": ".alter database [\u0027ro05\u0027]"}]}'
e2e_send_json budget "$(rollout_request budget "$kusto_targets" "$(printf '%s' "$caching" | jq -c '.[0].hotCachePeriod = "P8D"')" "$waves")"
t=$(e2e_wait_terminal budget 120)
e2e_sim_faults '{}'
e2e_expect "budget: failed TargetsFailed, 19 succeeded and 1 failed, per wave" \
  '.status == "failed" and .error.code == "TargetsFailed"
   and .rollout.totals == {targets: 20, succeeded: 19, unchanged: 0, planned: 0, failed: 1, skipped: 0}
   and ([.rollout.waves[].failed] == [0, 0, 1, 0]) and ([.rollout.waves[].succeeded] == [1, 1, 7, 10])' "$t"
e2e_expect "budget: four wave events, the last saying end" \
  '[.[] | select(.status == "wave") | .rollout.next] == ["wave", "wave", "wave", "end"]' \
  "$(e2e_events budget | jq -s -c .)"
e2e_expect "budget: each target reported once, ro05 failed" \
  '(map(.index) | sort) == [range(0; 20)] and (map(select(.status == "failed")) | map(.target.database)) == ["ro05"]' \
  "$(results budget | jq -s -c .)"
e2e_expect "budget: the simulator holds P8D on the 19 others, ro05 kept its own" \
  '(map(select(.name != "ro05") | .hotCachePeriod) | length == 19 and all(.[]; . == "P8D"))
   and (map(select(.name == "ro05") | .hotCachePeriod) == ["P31D"])' "$(dbs_state)"
pw_log "(b) within budget: every wave ran, totals add up"

# --- (c) selectors ----------------------------------------------------------------------------
e2e_sim_settings '{"armListPageSize": 6}'
e2e_sim_clear_requests
sel=$(jq -cn --arg s "$SUB" --arg rg "$RG" --arg c "$CLUSTER" \
  '{selector: {databasesOf: {subscriptionId: $s, resourceGroup: $rg, cluster: $c}}}')
e2e_send_json sel-dbs "$(rollout_request sel-dbs "$sel" '[{"kind": "database.retention", "softDeletePeriod": "P90D"}]' \
  '{"canary": 2, "steps": ["50%", "100%"]}')"
t=$(e2e_wait_terminal sel-dbs 120)
e2e_expect "databasesOf: every database of the cluster, succeeded" \
  '.status == "succeeded" and .rollout.totals == {targets: 21, succeeded: 21, unchanged: 0, planned: 0, failed: 0, skipped: 0}' "$t"
e2e_expect "databasesOf: the targets in ARM's order" \
  '(sort_by(.index) | map(.target.database)) == (["mykustodatabase"] + [range(0; 20) as $i | "ro" + (if $i < 10 then "0" else "" end) + ($i | tostring)])' \
  "$(results sel-dbs | jq -s -c .)"
# the listing's four pages come first (the operations' reads of the same list, shared, after)
pages=$(e2e_sim_requests | jq -c '[.[] | select(.method == "GET" and (.path | test("/databases\\?")))]
  | .[0:4] | map(.path | (capture("skiptoken=(?<s>[0-9]+)").s // "0"))')
[ "$pages" = '["0","6","12","18"]' ] ||
  pw_fail "databasesOf read pages $pages of 6 databases, expected 0, 6, 12, 18 (nextLink followed)"
alone=$(e2e_sim_requests | jq '[.[] | select(.method == "GET" and (.path | test("/databases/[^/?]+\\?")))] | length')
[ "$alone" -lt 42 ] || pw_fail "databasesOf: $alone database GETs alone: the reads of a wave were not shared"
e2e_expect "databasesOf: the simulator holds P90D everywhere" \
  '[.subscriptions[].resourceGroups[].clusters[].databases[].softDeletePeriod] | length == 21 and all(.[]; . == "P90D")' "$(e2e_sim_state)"
sel=$(jq -cn --arg u "$CLUSTER_URI" --arg d "$DB" '{selector: {tablesOf: {clusterUri: $u, database: $d}}}')
e2e_send_json sel-tables "$(rollout_request sel-tables "$sel" '[{"kind": "table.caching", "hotCachePeriod": "P3D"}]' '{}')"
t=$(e2e_wait_terminal sel-tables 120)
e2e_expect "tablesOf: every table of the database, succeeded" \
  '.status == "succeeded" and .rollout.totals == {targets: 6, succeeded: 6, unchanged: 0, planned: 0, failed: 0, skipped: 0}' "$t"
e2e_expect "tablesOf: the targets in .show tables order" \
  '(sort_by(.index) | map(.target.table)) == ["StormEvents", "Logs", "Fan0", "Fan1", "Fan2", "Fan3"]' \
  "$(results sel-tables | jq -s -c .)"
e2e_expect "tablesOf: the simulator holds every table's caching" \
  '[.subscriptions[].resourceGroups[].clusters[].databases[] | select(.name == "mykustodatabase") | .tables[].policies.caching] | length == 6 and all(.[]; . != null)' \
  "$(e2e_sim_state)"
pw_log "(c) databasesOf (4 pages) and tablesOf expanded and applied"

# --- (d) SIGKILL mid-rollout, restart: finished, every target once -----------------------------
e2e_sim_settings '{"lroDurationMs": 1500}'
waves='{"canary": 1, "steps": ["25%", "50%", "100%"]}'
e2e_send_json resume "$(rollout_request resume "$arm_targets" '[{"kind": "database.retention", "softDeletePeriod": "P20D"}]' "$waves")"
first_wave_over() { e2e_events resume | jq -e -s 'map(select(.status == "wave")) | length >= 1' >/dev/null; }
pw_wait_until 120 first_wave_over || pw_fail "resume: no wave ended"
done_before=$(results resume | jq -s -c 'map(.index)')
e2e__has_terminal resume && pw_fail "resume ended before the kill: make its LROs slower"
pw_stop worker KILL 30 || true
pw_log "worker killed mid-rollout; targets done before: $done_before"
e2e_start_worker worker2 "$PW_TMP/worker.conf"
t=$(e2e_wait_terminal resume 180)
e2e_expect "resume: succeeded, every target once in the totals" \
  '.status == "succeeded" and .rollout.totals.targets == 20
   and .rollout.totals.succeeded + .rollout.totals.unchanged == 20 and .rollout.totals.unchanged >= 1' "$t"
evs=$(e2e_events resume | jq -s -c .)
e2e_expect "resume: one terminal event" '[.[] | select(.status == "succeeded" or .status == "failed")] | length == 1' "$evs"
rerun=$(printf '%s' "$evs" | jq -c '(map(.status) | rindex("accepted")) as $a | .[$a:] | map(select(.status == "running") | .rollout.results[])')
e2e_expect "resume: the second run reports each target exactly once" '(map(.index) | sort) == [range(0; 20)]' "$rerun"
e2e_expect "resume: what the first run finished comes out unchanged (nothing written twice)" \
  "all(.[] | select(.index as \$i | $done_before | index(\$i)); .status == \"unchanged\")" "$rerun"
e2e_expect "resume: the simulator holds P20D on every target" \
  '[.[].softDeletePeriod] | length == 20 and all(.[]; . == "P20D")' "$(dbs_state)"
pw_log "(d) killed mid-rollout, resumed: every target once, the first run's targets unchanged"

e2e_worker_alive worker2
e2e_check_no_secret
pw_stop worker2 TERM 60 || pw_fail "worker2 exit status $? after SIGTERM"
pw_log PASS
