#!/usr/bin/env bash
# e2e: the operation catalogue end to end. The "alter" case of every kind's data file
# (tests/data/ops/: every value type at every scope, both routes) goes through kafka-mock,
# the worker and azure-sim in one request; the replies, the simulator's request log (the
# exact command or ARM call of each data file) and its state are checked. Then:
#   - the same operations again: every one unchanged, and no write in the log;
#   - principals removed, then removed again: the second time unchanged, nothing sent;
#   - a write the simulator ignores (fault ignoreWrites): VerificationFailed, both values;
#   - a privileged kind the configuration does not allow: OperationNotAllowed, no Azure call.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DATA="$PW_SOURCE_DIR/tests/data/ops"
[ -d "$DATA" ] || pw_skip "no $DATA"

# every privileged kind is allowed but cluster.callout (refused below)
allowed=$("$PW_BIN_DIR/policy-worker" kinds --json |
  jq -r '[.[] | select(.privileged and .kind != "cluster.callout") | .kind] | join(",")')
e2e_stack "worker.kinds.privileged.allowed=$allowed" "worker.operations.max=100"

# The first accepted alter case of each kind but the removals and the refused one.
cases=$(jq -c -s '[.[] | select(.kind | test("principal\\.remove$|^cluster\\.callout$") | not) |
  [.cases[] | select(.apply and ((.operation.action // "alter") == "alter"))][0] |
  select(. != null)]' "$DATA"/*.json)
ops=$(printf '%s' "$cases" | jq -c '[.[].operation]')
n=$(printf '%s' "$ops" | jq length)
pw_log "$n operations, one per kind"
[ "$n" -ge 40 ] || pw_fail "only $n data cases"

# writes in a request log: anything but a read
writes_filter='[.[] | select(
  ((.path | test("/v1/rest/mgmt")) and (.body | fromjson | .csl | test("^\\.show") | not)) or
  ((.path | test("/v1/rest/mgmt") | not) and (.path | test("^/(_sim|[^/]*/oauth2)") | not) and
   (.host | test("login") | not) and
   (.method == "PUT" or .method == "PATCH" or .method == "DELETE" or
    (.method == "POST" and (.path | test("listPrincipals") | not)))))]'

# 0. cluster-scope policies need AllDatabasesAdmin: granted the way an operator would, by an
# ARM principal assignment (the worker's identity is Contributor on the subscription).
grant=$(jq -c -n --arg s "$SUB" --arg rg "$RG" --arg c "$CLUSTER" --arg app "$CLIENT" --arg t "$TENANT" \
  '{kind: "cluster.principalAssignment", target: {subscriptionId: $s, resourceGroup: $rg, cluster: $c,
    principalAssignment: "policy-worker-admin"},
    assignment: {principalId: $app, principalType: "App", role: "AllDatabasesAdmin", tenantId: $t}}')
e2e_send_json cat-grant "$(e2e_request cat-grant "[$grant]")"
t=$(e2e_wait_terminal cat-grant 90)
e2e_expect "AllDatabasesAdmin granted" '.status == "succeeded" and .operations[0].after.assignment.role == "AllDatabasesAdmin"' "$t"

# 1. every kind once.
e2e_sim_clear_requests
e2e_send_json cat-all "$(e2e_request cat-all "$ops")"
t=$(e2e_wait_terminal cat-all 240)
printf '%s\n' "$t" >"$PW_TMP/cat-all.json"
e2e_expect "every operation applied" \
  '.status == "succeeded" and all(.operations[]; .status == "succeeded" or .status == "unchanged")' "$t"
e2e_expect "most operations wrote" '[.operations[] | select(.status == "succeeded")] | length >= 30' "$t"
log=$(e2e_sim_requests)
printf '%s\n' "$log" >"$PW_TMP/cat-all-requests.json"
kql=$(printf '%s' "$log" | jq -c '[.[] | select(.path | test("/v1/rest/mgmt")) | .body | fromjson | .csl]')
# each written operation sent exactly its data file's command or ARM call
expected=$(jq -c -n --argjson c "$cases" --argjson t "$t" \
  '[range(0; $c | length) as $i | select($t.operations[$i].status == "succeeded") | $c[$i].apply]')
missing=$(jq -c -n --argjson e "$expected" --argjson k "$kql" --argjson l "$log" '
  [$e[] | . as $w | select(
    if $w.kusto then ($k | index($w.kusto)) == null
    else [$l[] | select(.method == $w.method and
        (.path | split("?")[0] | ascii_downcase) == ($w.path | ascii_downcase))] | length == 0 end)]')
e2e_expect "every write as its data file says" 'length == 0' "$missing"
# the simulator's state changed: a few spot checks
state=$(e2e_sim_state)
printf '%s\n' "$state" >"$PW_TMP/cat-all-state.json"
e2e_expect "sim state: table merge policy" \
  '[.subscriptions[].resourceGroups[].clusters[].databases[].tables[] | select(.name == "StormEvents") | .policies.merge] | .[0] != null' "$state"
e2e_expect "sim state: workload group Reporting" \
  '[.subscriptions[].resourceGroups[].clusters[] | .workloadGroups[]? | select(.name == "Reporting")] | length == 1' "$state"

pw_log "every kind applied"
# 2. the same again: nothing to write.
e2e_sim_clear_requests
e2e_send_json cat-again "$(e2e_request cat-again "$ops")"
t=$(e2e_wait_terminal cat-again 240)
printf '%s\n' "$t" >"$PW_TMP/cat-again.json"
e2e_expect "every operation unchanged" \
  '.status == "succeeded" and all(.operations[]; .status == "unchanged" and .after == .before)' "$t"
writes=$(e2e_sim_requests | jq -c "$writes_filter")
e2e_expect "no write for the repeated request" 'length == 0' "$writes"

pw_log "the repeat wrote nothing"
# 3. principals removed (those step 1 added), then removed again: the second is unchanged.
rm_ops=$(jq -c -s '[.[] | select(.kind | test("principal\\.remove$")) |
  [.cases[] | select(.apply)][0].operation]' "$DATA"/*.json)
add_ops=$(jq -c -s '[.[] | select(.kind | test("principal\\.add$")) |
  [.cases[] | select(.apply)][0].operation | .kind |= sub("add$"; "remove")]' "$DATA"/*.json)
e2e_send_json cat-rm "$(e2e_request cat-rm "$add_ops")"
t=$(e2e_wait_terminal cat-rm 120)
e2e_expect "principals removed" '.status == "succeeded" and all(.operations[]; .status == "succeeded" and .after.principal == null)' "$t"
e2e_sim_clear_requests
e2e_send_json cat-rm-again "$(e2e_request cat-rm-again "$add_ops")"
t=$(e2e_wait_terminal cat-rm-again 120)
e2e_expect "removed again: unchanged" '.status == "succeeded" and all(.operations[]; .status == "unchanged")' "$t"
e2e_expect "nothing sent to remove" 'length == 0' "$(e2e_sim_requests | jq -c "$writes_filter")"
e2e_send_json cat-rm-data "$(e2e_request cat-rm-data "$rm_ops")"
t=$(e2e_wait_terminal cat-rm-data 120)
e2e_expect "the data files' removals succeed or find nothing" \
  '.status == "succeeded" and all(.operations[]; .status == "succeeded" or .status == "unchanged")' "$t"

pw_log "removals done"
# 4. a write the simulator answers but ignores: VerificationFailed with both values.
e2e_sim_faults '{"ignoreWrites": 1}'
merge_op=$(jq -c -n --argjson t "$(e2e_kusto_table_target Logs)" \
  '{kind: "table.merge", target: $t, policy: {MaxRangeInHours: 48}}')
e2e_send_json cat-verify "$(e2e_request cat-verify "[$merge_op]")"
t=$(e2e_wait_terminal cat-verify 90)
e2e_sim_faults '{}'
e2e_expect "ignored write: VerificationFailed" \
  '.status == "failed" and .operations[0].status == "failed" and .operations[0].error.code == "VerificationFailed" and .operations[0].error.desired.policy.MaxRangeInHours == 48 and (.operations[0].error.actual.policy.MaxRangeInHours // null) != 48' "$t"

pw_log "VerificationFailed seen"
# 5. a privileged kind not allowed: rejected, nothing sent.
e2e_sim_clear_requests
callout=$(jq -c '[.cases[] | select(.apply)][0].operation' "$DATA/cluster.callout.json")
e2e_send_json cat-priv "$(e2e_request cat-priv "[$callout]")"
t=$(e2e_wait_terminal cat-priv 60)
e2e_expect "privileged kind refused" '.status == "rejected" and .error.code == "OperationNotAllowed"' "$t"
e2e_expect "no Azure call for it" 'length == 0' \
  "$(e2e_sim_requests | jq -c '[.[] | select(.host | test("login") | not)]')"

e2e_worker_alive
e2e_check_no_secret
pw_stop worker TERM 60 || pw_fail "worker exit status $? after SIGTERM"
pw_log "PASS"
