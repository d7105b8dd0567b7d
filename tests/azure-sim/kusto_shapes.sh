#!/usr/bin/env bash
# tests/azure-sim/kusto_shapes.sh: the Kusto endpoint over HTTPS answers in the shapes of
# the reference fixtures (../shared/reference/kusto/fixtures): auth metadata, v1 frames,
# OneApi errors; injected command separators are refused.  Skips without the reference.
set -euo pipefail
BIN=${1:?usage: kusto_shapes.sh path/to/azure-sim}
. "$(dirname "$0")/../lib/stack.sh"
. "$(dirname "$0")/lib.sh"
pw_require curl jq openssl
REF=${PW_REFERENCE_DIR:-$(dirname "$0")/../../../shared/reference}
FIX=$REF/kusto/fixtures
[ -d "$FIX" ] || pw_skip "reference fixtures not found at $FIX (set PW_REFERENCE_DIR)"

sim_start sim "$BIN"
K=$(echo $SIM_CLUSTER | sed 's,https://,,')
MGMT=https://$K/v1/rest/mgmt
TOK=$(sim_token "$SIM_CLUSTER/.default")

# keys OBJ-JQ FILE: sorted key list of an object, one line.
keys() { jq -c "$1 | keys" "$2"; }

# metadata: same keys as the fixture (sections and AzureAD fields)
sim_call GET "https://$K/v1/rest/auth/metadata" >/dev/null
expect_eq "metadata sections" "$(keys . "$PW_TMP/body")" "$(keys . "$FIX/python_auth_metadata_response.json")"
expect_eq "metadata AzureAD" "$(keys .AzureAD "$PW_TMP/body")" "$(keys .AzureAD "$FIX/python_auth_metadata_response.json")"
expect_eq "metadata dSTS" "$(keys .dSTS "$PW_TMP/body")" "$(keys .dSTS "$FIX/python_auth_metadata_response.json")"

mgmt() { # DB CSL
  sim_call POST "$MGMT" -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json; charset=utf-8' \
    -H 'x-ms-client-request-id: KPC.execute;shape-test' \
    -d "$(jq -cn --arg db "$1" --arg csl "$2" '{db: $db, csl: $csl, properties: "{\"Options\":{}}"}')"
}

# a v1 frame: Tables[0] named Table_0; column objects with the fixture's keys; rows as wide as columns
st=$(mgmt mykustodatabase '.show database mykustodatabase policy retention')
expect_eq "show retention" "$st" 200
expect_body '.Tables | length' 1
expect_body '.Tables[0].TableName' "$(jq -r '.Tables[0].TableName' "$FIX/go_v1_success.json")"
expect_eq "table keys" "$(keys '.Tables[0]' "$PW_TMP/body")" "$(keys '.Tables[0]' "$FIX/go_v1_success.json")"
expect_eq "column keys" "$(jq -c '[.Tables[0].Columns[] | keys] | unique' "$PW_TMP/body")" \
  "$(jq -c '[.Tables[0].Columns[] | keys] | unique' "$FIX/go_v1_success.json")"
expect_body '(.Tables[0].Columns | length) as $n | [.Tables[0].Rows[] | length] | unique == [$n]' true
expect_body '[.Tables[0].Columns[].ColumnName] | join(",")' PolicyName,EntityName,Policy,ChildEntities,EntityType

# OneApi errors: the fixture's fields, @permanent true for entity-not-found and syntax errors
error_shape() { # name status code
  expect_eq "$1 status" "$st" "$2"
  expect_body .error.code "$3"
  expect_eq "$1 error keys" "$(jq -c '.error | keys - ["@text","@database","@ClientRequestLogger","innererror"]' "$PW_TMP/body")" \
    "$(keys .error "$FIX/python_error_400_wrong_endpoint_permanent_true.json")"
  expect_body '.error."@permanent"' true
  expect_body '.error."@context".clientRequestId' 'KPC.execute;shape-test'
  expect_eq "$1 activity id" "$(jq -r '.error."@context".activityId' "$PW_TMP/body")" "$(header_value x-ms-activity-id)"
}
st=$(mgmt mykustodatabase '.show table NoSuchTable policy caching')
error_shape "unknown table" 400 BadRequest_EntityNotFound
st=$(mgmt mykustodatabase '.this is not a command')
error_shape "syntax error" 400 BadRequest_SyntaxError
# injected separators after a table name never run a second command
for csl in '.show table StormEvents policy caching; .drop table Logs' \
           '.show table StormEvents | take 1 policy caching' \
           '.alter table StormEvents; .drop table Logs policy caching hot = 1d'; do
  st=$(mgmt mykustodatabase "$csl")
  expect_eq "injection refused: $csl" "$st" 400
done
simcurl https://localhost/_sim/state | jq -e '.subscriptions[0].resourceGroups[0].clusters[0].databases[0].tables | map(.name) | index("Logs") != null' >/dev/null ||
  pw_fail "table Logs vanished"

pw_stop sim TERM 60 || pw_fail "azure-sim exited with $? on SIGTERM"
pw_log "PASS"
