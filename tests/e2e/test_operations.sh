#!/usr/bin/env bash
# e2e: the four documented operations (one request each, kcat in and out), plus the Kusto
# routes of database retention/caching and table retention; replies, state and request log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_stack

before_db=$(e2e_sim_db)
pw_log "database before: $before_db"
e2e_sim_clear_requests || true

arm=$(e2e_arm_target)

# 1. database retention through ARM (long-running PATCH), with a correlation header.
e2e_send_json op-retention-arm "$(e2e_request op-retention-arm \
  "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P10D\"}]")" \
  -H kafka_correlationId=corr-123
t=$(e2e_wait_terminal op-retention-arm 90)
e2e_expect "retention succeeded" '.status == "succeeded"' "$t"
e2e_expect "retention before/after" '.operations[0].route == "arm" and .operations[0].status == "succeeded" and (.operations[0].before|tostring|test("P365D")) and (.operations[0].after|tostring|test("P10D"))' "$t"
events=$(e2e_events op-retention-arm | jq -s -c .)
e2e_expect "accepted, running, succeeded in order with sequences" \
  '(.[0].status == "accepted") and (.[0].operations[0].plan != null) and (map(.status) | index("running") != null) and (.[-1].status == "succeeded") and ([.[].sequence] == ([range(1; length + 1)]))' "$events"
e2e_expect "every event keyed and stamped" 'all(.[]; .requestId == "op-retention-arm" and .workerId == "e2e-worker" and .schema == "adx-policy-reply/v1")' "$events"
# the correlation header is echoed on every reply of this request
hdrs=$(jq -c 'select(.key == "op-retention-arm") | .headers' "$PW_TMP/replies.out" | jq -s -c .)
e2e_expect "kafka_correlationId echoed" 'length > 0 and all(.[]; . != null and (index("kafka_correlationId") != null) and (index("corr-123") != null))' "$hdrs"
e2e_expect "sim softDeletePeriod" '.softDeletePeriod == "P10D"' "$(e2e_sim_db)"

# 2. database hot cache through ARM.
e2e_send_json op-cache-arm "$(e2e_request op-cache-arm \
  "[{\"kind\":\"database.caching\",\"target\":$arm,\"hotCachePeriod\":\"P5D\"}]")"
t=$(e2e_wait_terminal op-cache-arm 90)
e2e_expect "hot cache succeeded" '.status == "succeeded" and (.operations[0].before|tostring|test("P31D")) and (.operations[0].after|tostring|test("P5D"))' "$t"
e2e_expect "sim hotCachePeriod" '.hotCachePeriod == "P5D"' "$(e2e_sim_db)"

# 3. table caching through Kusto.
e2e_send_json op-table-cache "$(e2e_request op-table-cache \
  "[{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target StormEvents),\"hotCachePeriod\":\"P5D\"}]")"
t=$(e2e_wait_terminal op-table-cache 90)
e2e_expect "table caching succeeded via kusto" '.status == "succeeded" and .operations[0].route == "kusto"' "$t"
e2e_expect "sim StormEvents caching" '.policies.caching | tostring | test("5\\.00:00:00|5d|P5D")' "$(e2e_sim_table StormEvents)"

# 4. database principal add through ARM.
e2e_send_json op-principal "$(e2e_request op-principal \
  "[{\"kind\":\"database.principal.add\",\"target\":$arm,\"principal\":{\"role\":\"Admin\",\"name\":\"deploy-bot\",\"type\":\"App\",\"appId\":\"44444444-4444-4444-4444-444444444444\"}}]")"
t=$(e2e_wait_terminal op-principal 90)
e2e_expect "principal add succeeded" '.status == "succeeded" and .operations[0].route == "arm"' "$t"
e2e_expect "sim principal present" '[.principals[] | select(.appId == "44444444-4444-4444-4444-444444444444" and .role == "Admin")] | length == 1' "$(e2e_sim_db)"

# 5-7. the Kusto routes: database retention, database caching, table retention.
kdb=$(e2e_kusto_db_target)
e2e_send_json op-kusto-db "$(e2e_request op-kusto-db \
  "[{\"kind\":\"database.retention\",\"via\":\"kusto\",\"target\":$kdb,\"softDeletePeriod\":\"P12D\"},
    {\"kind\":\"database.caching\",\"via\":\"kusto\",\"target\":$kdb,\"hotCachePeriod\":\"PT12H\"},
    {\"kind\":\"table.retention\",\"target\":$(e2e_kusto_table_target Logs),\"softDeletePeriod\":\"P30D\"}]")"
t=$(e2e_wait_terminal op-kusto-db 90)
e2e_expect "kusto routes succeeded" '.status == "succeeded" and all(.operations[]; .route == "kusto" and .status == "succeeded")' "$t"
e2e_expect "sim db via kusto" '.softDeletePeriod == "P12D" and .hotCachePeriod == "PT12H"' "$(e2e_sim_db)"

# The request log: exact URLs, api-version, bodies, KQL text.
log=$(e2e_sim_requests)
printf '%s\n' "$log" >"$PW_TMP/sim-requests.json"
patches=$(printf '%s' "$log" | jq -c --arg p "$DB_PATH" '[.[] | select(.method == "PATCH" and (.path | ascii_downcase | startswith($p | ascii_downcase)))]')
e2e_expect "two ARM PATCHes on the database path" 'length == 2' "$patches"
e2e_expect "api-version 2025-02-14 on each PATCH" 'all(.[]; (.path | test("[?&]api-version=2025-02-14")))' "$patches"
e2e_expect "PATCH bodies" '([.[] | .body | (if type == "string" then fromjson else . end)] | (any(.properties.softDeletePeriod == "P10D") and any(.properties.hotCachePeriod == "P5D")))' "$patches"
adds=$(printf '%s' "$log" | jq -c --arg p "$DB_PATH/addPrincipals" '[.[] | select(.method == "POST" and (.path | ascii_downcase | startswith($p | ascii_downcase)))]')
e2e_expect "one addPrincipals POST with the principal" 'length == 1 and (.[0].body | (if type == "string" then fromjson else . end) | .value[0].appId == "44444444-4444-4444-4444-444444444444" and .value[0].role == "Admin")' "$adds"
kql=$(printf '%s' "$log" | jq -c '[.[] | select(.path | test("/v1/rest/mgmt")) | .body | fromjson | .csl]')
printf '%s\n' "$kql" >"$PW_TMP/kql.json"
e2e_expect "table caching KQL" 'index(".alter table [\u0027StormEvents\u0027] policy caching hot = 5d") != null' "$kql"
e2e_expect "database retention KQL" 'index(".alter-merge database [\u0027mykustodatabase\u0027] policy retention softdelete = 12d") != null' "$kql"
e2e_expect "database caching KQL" 'index(".alter database [\u0027mykustodatabase\u0027] policy caching hot = 12h") != null' "$kql"
e2e_expect "table retention KQL" 'any(.[]; startswith(".alter-merge table [\u0027Logs\u0027] policy retention softdelete = 30d"))' "$kql"

e2e_worker_alive
e2e_check_no_secret
pw_stop worker TERM 60 || pw_fail "worker exit status $? after SIGTERM"
e2e_check_no_secret
pw_log "PASS"
