#!/usr/bin/env bash
# tests/azure-sim/sim_api.sh: the /_sim/ inspection and fault API: state, settings, the
# request log (masking, ring, clearing), forced failures then recovery, error shares,
# latency, connection resets, slow token issuance, lost writes (ignoreWrites), operations
# kept past a few hundred, and certificate reuse on restart.
set -euo pipefail
BIN=${1:?usage: sim_api.sh path/to/azure-sim}
. "$(dirname "$0")/../lib/stack.sh"
. "$(dirname "$0")/lib.sh"
pw_require curl jq openssl

sim_start sim "$BIN"
ADMIN=https://management.azure.com/_sim
K=$(echo $SIM_CLUSTER | sed 's,https://,,')

# --- state ----------------------------------------------------------------------------------
st=$(sim_call GET "$ADMIN/state")
expect_eq "GET state" "$st" 200
expect_body '.tenants[0].id' "$SIM_TENANT"
expect_body '.subscriptions[0].id' "$SIM_SUB"
expect_body '.subscriptions[0].resourceGroups[0].name' testrg
expect_body '.subscriptions[0].resourceGroups[0].clusters[0].uri' "$SIM_CLUSTER"
expect_body '.subscriptions[0].resourceGroups[0].clusters[0].databases[0].softDeletePeriod' P365D
expect_body '.subscriptions[0].resourceGroups[0].clusters[0].databases[0].hotCachePeriod' P31D
expect_body '[.subscriptions[0].resourceGroups[0].clusters[0].databases[0].tables[].name] | join(",")' StormEvents,Logs
expect_body '.subscriptions[0].resourceGroups[0].clusters[0].databases[0].principals[0].fqn' "aadapp=$SIM_APP;$SIM_TENANT"
expect_body '.apps[0].secrets[0]' "$SIM_SECRET"
expect_body '.settings.lroDurationMs' 1500
cp "$PW_TMP/body" "$PW_TMP/state0.json"
# PUT replaces: a second cluster in another region; missing settings get defaults
jq '.subscriptions[0].resourceGroups[0].clusters += [{name: "second", location: "northeurope",
     uri: "https://second.northeurope.kusto.windows.net", databases: [{name: "db2", tables: []}]}]
    | del(.settings)' "$PW_TMP/state0.json" >"$PW_TMP/state1.json"
st=$(sim_call PUT "$ADMIN/state" --data-binary @"$PW_TMP/state1.json")
expect_eq "PUT state" "$st" 200
expect_body '.settings.kustoMaxConcurrent' 8
st=$(sim_call GET https://second.northeurope.kusto.windows.net/v1/rest/auth/metadata)
expect_eq "new cluster served (TLS name covered)" "$st" 200
T2=$(sim_token https://second.northeurope.kusto.windows.net/.default)
[ -n "$T2" ] && [ "$T2" != null ] || pw_fail "no token for the new cluster's audience"
st=$(sim_call PUT "$ADMIN/state" -d '{"tenants": 5}')
expect_eq "PUT bad state" "$st" 400
expect_body .error.code InvalidState
st=$(sim_call PUT "$ADMIN/state" -d '{"tenants": [')
expect_eq "PUT state bad JSON" "$st" 400
expect_body .error.code InvalidJson
st=$(sim_call PUT "$ADMIN/state" --data-binary @"$PW_TMP/state0.json")
expect_eq "PUT state back" "$st" 200

# --- settings ---------------------------------------------------------------------------------
st=$(sim_call PATCH "$ADMIN/settings" -d '{"lroDurationMs": 10, "armWriteBucket": 5}')
expect_eq "PATCH settings" "$st" 200
expect_body .lroDurationMs 10
expect_body .armWriteBucket 5
expect_body .tokenLifetimeSeconds 3600
st=$(sim_call PUT "$ADMIN/settings" -d '{"lroRetryAfterSeconds": 2}')
expect_eq "PUT settings merges" "$st" 200
expect_body .lroDurationMs 10
expect_body .lroRetryAfterSeconds 2
st=$(sim_call PATCH "$ADMIN/settings" -d '{"armReadBucket": 250, "armReadRefillPerSecond": 25}')
expect_eq "ARM read bucket settings" "$st" 200
expect_body .armReadRefillPerSecond 25
st=$(sim_call PATCH "$ADMIN/settings" -d '{"nope": 1}')
expect_eq "unknown setting" "$st" 400
st=$(sim_call PATCH "$ADMIN/settings" -d '{"lroDurationMs": "fast"}')
expect_eq "setting of wrong type" "$st" 400
st=$(sim_call GET "$ADMIN/state")
expect_body .settings.lroDurationMs 10

# --- request log --------------------------------------------------------------------------------
st=$(sim_call DELETE "$ADMIN/requests")
expect_eq "DELETE requests" "$st" 204
ARM=$(sim_token https://management.azure.com/.default)
sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM" -H 'X-Trace: t1' >/dev/null
sim_call POST "https://$K/v1/rest/mgmt" -d '{"csl":".show databases"}' >/dev/null
st=$(sim_call GET "$ADMIN/requests")
expect_eq "GET requests" "$st" 200
expect_body '.requests | length' 3
expect_body '[.requests[].host] | join(",")' "login.microsoftonline.com,management.azure.com,$K"
expect_body '.requests[0].body | test("client_secret=\\*\\*\\*")' true
expect_body '.requests[0].body | test("local-demo-secret")' false
expect_body '.requests[1].headers.Authorization' 'Bearer ***'
expect_body '.requests[1].headers["X-Trace"]' t1
expect_body '.requests[1].path' "/subscriptions/$SIM_SUB/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/mykustocluster/databases/mykustodatabase?api-version=2025-02-14"
expect_body '.requests[1].method' GET
expect_body '.requests[2].status' 401
expect_body '.requests[2].body' '{"csl":".show databases"}'
expect_body '.requests | map(has("time") and has("seq") and has("durationMs")) | all' true
seq=$(jq -r '.requests[1].seq' "$PW_TMP/body")
sim_call GET "$ADMIN/requests?since=$seq" >/dev/null
expect_body '.requests | length' 1
sim_call GET "$ADMIN/requests?host=management.azure.com" >/dev/null
expect_body '.requests | length' 1

# --- faults: forced failures then recovery -------------------------------------------------------
st=$(sim_call PUT "$ADMIN/faults" -d '{"failNext":[{"count":2,"status":503,"host":"management.azure.com"}]}')
expect_eq "PUT faults" "$st" 200
for i in 1 2; do
  st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM")
  expect_eq "forced failure $i" "$st" 503
  expect_body .error.code ServiceUnavailable
  expect_eq "Retry-After" "$(header_value Retry-After)" 1
done
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM")
[ "$st" != 503 ] || pw_fail "no recovery after two forced failures"
pw_log "ok: recovered ($st)"
sim_call GET "$ADMIN/faults" >/dev/null
expect_body '.failNext[0].count' 0
# host-scoped: another host is untouched; shapes follow the host
sim_call PUT "$ADMIN/faults" -d '{"failNext":[{"count":1,"status":429,"host":"'$K'"},{"count":1,"status":500,"host":"login.microsoftonline.com"}]}' >/dev/null
st=$(sim_call GET "https://$K/v1/rest/auth/metadata")
expect_eq "kusto forced 429" "$st" 429
expect_body '.error."@permanent"' false
st=$(sim_call POST "$SIM_TOKEN_URL" -d grant_type=client_credentials)
expect_eq "AAD forced 500" "$st" 500
expect_body .error temporarily_unavailable
st=$(sim_call GET "https://$K/v1/rest/auth/metadata")
expect_eq "kusto after forced 429" "$st" 200
# a share of 1.0 for 500 fails everything, 0 for nothing
sim_call PUT "$ADMIN/faults" -d '{"errorShare":{"500":1.0},"hosts":["management.azure.com"]}' >/dev/null
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM")
expect_eq "errorShare 500" "$st" 500
expect_body .error.code InternalServerError
st=$(sim_call GET "https://$K/v1/rest/auth/metadata")
expect_eq "errorShare scoped to hosts" "$st" 200
st=$(sim_call PUT "$ADMIN/faults" -d '{"errorShare":{"500":0.7,"503":0.7}}')
expect_eq "shares over 1" "$st" 400
st=$(sim_call PUT "$ADMIN/faults" -d '{"bogus":1}')
expect_eq "unknown fault" "$st" 400
st=$(sim_call PUT "$ADMIN/faults" -d '{"failNext":[{"count":1,"status":200}]}')
expect_eq "failNext status out of range" "$st" 400
# echoing errors repeat the request's body or Authorization header (as some proxies do)
sim_call PUT "$ADMIN/faults" -d '{"failNext":[{"count":1,"status":400,"host":"login.microsoftonline.com","echo":"body"},{"count":1,"status":400,"host":"management.azure.com","echo":"authorization"}]}' >/dev/null
st=$(sim_call POST "$SIM_TOKEN_URL" -d grant_type=client_credentials -d client_secret=echo-me)
expect_eq "AAD echo" "$st" 400
jq -e '.error_description | contains("client_secret=echo-me")' "$PW_TMP/body" >/dev/null ||
  pw_fail "AAD error does not echo the form body"
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM")
expect_eq "ARM echo" "$st" 400
jq -e --arg a "Bearer $ARM" '.error.message | contains($a)' "$PW_TMP/body" >/dev/null ||
  pw_fail "ARM error does not echo the Authorization header"
st=$(sim_call PUT "$ADMIN/faults" -d '{"failNext":[{"count":1,"status":400,"echo":"cookies"}]}')
expect_eq "failNext echo unknown" "$st" 400
# tokenAppend: issued tokens carry the text (a hostile token endpoint)
sim_call PUT "$ADMIN/faults" -d '{"tokenAppend":"\r\nX-Evil: 1"}' >/dev/null
st=$(sim_call POST "$SIM_TOKEN_URL" -d grant_type=client_credentials -d client_id=$SIM_APP \
  -d client_secret=$SIM_SECRET --data-urlencode scope=https://management.azure.com/.default)
expect_eq "token with tokenAppend" "$st" 200
jq -e '.access_token | endswith("\r\nX-Evil: 1")' "$PW_TMP/body" >/dev/null ||
  pw_fail "tokenAppend not applied"
st=$(sim_call DELETE "$ADMIN/faults")
expect_eq "DELETE faults" "$st" 200
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM")
[ "$st" != 500 ] || pw_fail "faults not cleared"

# --- latency, slow tokens (lower bounds only) ------------------------------------------------------
sim_call PUT "$ADMIN/faults" -d '{"latencyMs":400}' >/dev/null
t=$(simcurl -o /dev/null -w '%{time_total}' "https://$K/v1/rest/auth/metadata")
awk -v t="$t" 'BEGIN { exit !(t >= 0.4) }' || pw_fail "latency not added: $t s"
pw_log "ok: latency added ($t s)"
sim_call PUT "$ADMIN/faults" -d '{"tokenDelayMs":400}' >/dev/null
t=$(simcurl -o /dev/null -w '%{time_total}' -d grant_type=client_credentials -d client_id=$SIM_APP \
  -d client_secret=$SIM_SECRET --data-urlencode scope=https://management.azure.com/.default "$SIM_TOKEN_URL")
awk -v t="$t" 'BEGIN { exit !(t >= 0.4) }' || pw_fail "token delay not added: $t s"
pw_log "ok: slow token issuance ($t s)"
sim_call GET "$ADMIN/requests" >/dev/null
jq -e '.requests[-1].durationMs >= 400' "$PW_TMP/body" >/dev/null || pw_fail "durationMs does not show the delay"

# --- connection resets ------------------------------------------------------------------------------
sim_call PUT "$ADMIN/faults" -d '{"resetNext":1}' >/dev/null
if simcurl -o /dev/null "https://$K/v1/rest/auth/metadata" 2>"$PW_TMP/reset.err"; then
  pw_fail "resetNext: a response arrived"
fi
pw_log "ok: connection dropped ($(head -c 80 "$PW_TMP/reset.err"))"
st=$(sim_call GET "https://$K/v1/rest/auth/metadata")
expect_eq "after the reset" "$st" 200
sim_call PUT "$ADMIN/faults" -d '{"resetShare":1.0,"hosts":["'$K'"]}' >/dev/null
simcurl -o /dev/null "https://$K/v1/rest/auth/metadata" 2>/dev/null && pw_fail "resetShare 1.0 answered"
sim_call DELETE "$ADMIN/faults" >/dev/null
sim_call GET "$ADMIN/requests" >/dev/null
jq -e '[.requests[] | select(.reset)] | length == 2' "$PW_TMP/body" >/dev/null || pw_fail "resets not logged"
st=$(sim_call GET "$ADMIN/nothing")
expect_eq "unknown /_sim path" "$st" 404

# --- the ring stays bounded and the server stays up under a burst -------------------------------------
pids=()
for i in $(seq 1 40); do
  simcurl -o /dev/null "https://$K/v1/rest/auth/metadata" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || pw_fail "a request of the burst failed"; done
pw_alive sim || pw_fail "azure-sim died under a burst"
sim_call GET "$ADMIN/health" >/dev/null
expect_body .status ok

# --- faults: lost writes (ignoreWrites), for verification tests -------------------------------------------
KT=$(sim_token "$SIM_CLUSTER/.default")
# kmgmt DB CSL: POST /v1/rest/mgmt; the answer in $PW_TMP/body, status printed
kmgmt() {
  jq -n --arg db "$1" --arg csl "$2" '{db: $db, csl: $csl}' >"$PW_TMP/kreq.json"
  sim_call POST "https://$K/v1/rest/mgmt" -H "Authorization: Bearer $KT" \
    -H 'Content-Type: application/json' --data-binary @"$PW_TMP/kreq.json"
}
# arm_done URL: polls an Azure-AsyncOperation URL until the operation ends; prints its status
arm_done() {
  local i s
  for i in $(seq 1 100); do
    sim_call GET "$1" -H "Authorization: Bearer $ARM" >/dev/null
    s=$(jq -r .status "$PW_TMP/body")
    [ "$s" = Running ] || { echo "$s"; return; }
    sleep 0.1
  done
  echo timeout
}
sim_call PATCH "$ADMIN/settings" -d '{"lroDurationMs": 10, "armWriteBucket": 0}' >/dev/null
sim_call DELETE "$ADMIN/requests" >/dev/null
st=$(sim_call PUT "$ADMIN/faults" -d '{"ignoreWrites":2,"ignoreWritesHost":"'$K'"}')
expect_eq "PUT faults ignoreWrites" "$st" 200
st=$(kmgmt mykustodatabase ".show database ['mykustodatabase'] policy retention")
expect_eq "a read is no write" "$st" 200
st=$(kmgmt mykustodatabase ".alter-merge database ['mykustodatabase'] policy retention softdelete = 10d")
expect_eq "lost Kusto write answers success" "$st" 200
expect_body '.Tables[0].Rows[0][2] | fromjson | .SoftDeletePeriod' 365.00:00:00
st=$(kmgmt mykustodatabase ".alter table ['Nope'] policy caching hot = 5d")
expect_eq "a refused write is not counted" "$st" 400
# the host filter: ARM writes apply meanwhile
st=$(sim_call PATCH "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM" \
  -H 'Content-Type: application/json' -d '{"kind":"ReadWrite","properties":{"softDeletePeriod":"P9D"}}')
expect_eq "ARM PATCH while Kusto writes are lost" "$st" 202
expect_eq "ARM PATCH applied" "$(arm_done "$(header_value Azure-AsyncOperation)")" Succeeded
st=$(kmgmt mykustodatabase ".alter table ['StormEvents'] policy caching hot = 5d")
expect_eq "second lost Kusto write" "$st" 200
expect_body '.Tables[0].Rows[0][2]' null
st=$(kmgmt mykustodatabase ".show table ['StormEvents'] policy caching")
expect_body '.Tables[0].Rows[0][2]' null
st=$(kmgmt mykustodatabase ".show database ['mykustodatabase'] policy retention")
expect_body '.Tables[0].Rows[0][2] | fromjson | .SoftDeletePeriod' 9.00:00:00
sim_call GET "$ADMIN/faults" >/dev/null
expect_body .ignoreWrites 0
sim_call GET "$ADMIN/requests" >/dev/null
expect_body '[.requests[] | select(.writeLost)] | length' 2
st=$(kmgmt mykustodatabase ".alter table ['StormEvents'] policy caching hot = 5d")
expect_body '.Tables[0].Rows[0][2] | fromjson | .DataHotSpan.Value' 5.00:00:00
# ARM: the LRO succeeds and the body shows the database as it stays
sim_call PUT "$ADMIN/faults" -d '{"ignoreWrites":1}' >/dev/null
st=$(sim_call PATCH "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM" \
  -H 'Content-Type: application/json' -d '{"kind":"ReadWrite","properties":{"softDeletePeriod":"P20D"}}')
expect_eq "lost ARM PATCH answers 202" "$st" 202
expect_body .properties.softDeletePeriod P9D
expect_eq "lost ARM PATCH's operation" "$(arm_done "$(header_value Azure-AsyncOperation)")" Succeeded
sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM" >/dev/null
expect_body .properties.softDeletePeriod P9D
st=$(sim_call PUT "$ADMIN/faults" -d '{"ignoreWrites":-1}')
expect_eq "ignoreWrites out of range" "$st" 400
st=$(sim_call PUT "$ADMIN/faults" -d '{"ignoreWritesHost":5}')
expect_eq "ignoreWritesHost not a string" "$st" 400
sim_call DELETE "$ADMIN/faults" >/dev/null

# --- long-running operations stay answerable well past a few hundred ----------------------------------
st=$(sim_call PATCH "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM" \
  -H 'Content-Type: application/json' -d '{"kind":"ReadWrite"}')
expect_eq "first of many PATCHes" "$st" 202
first_op=$(header_value Azure-AsyncOperation)
{
  for i in $(seq 1 400); do
    printf 'url = "%s?api-version=2025-02-14"\noutput = /dev/null\n' "$SIM_DB_URL"
  done
} >"$PW_TMP/many.cfg"
simcurl -X PATCH -H "Authorization: Bearer $ARM" -H 'Content-Type: application/json' \
  -d '{"kind":"ReadWrite"}' -K "$PW_TMP/many.cfg" || pw_fail "400 PATCHes failed"
st=$(sim_call GET "$first_op" -H "Authorization: Bearer $ARM")
expect_eq "the operation 400 operations back" "$st" 200
expect_body .status Succeeded

# --- restart: the CA is kept, the server certificate still verifies ------------------------------------
sum=$(openssl x509 -in "$SIM_CA" -noout -fingerprint -sha256)
pw_stop sim TERM 60 || pw_fail "azure-sim exited with $? on SIGTERM"
pw_start sim2 "$BIN" --listen 127.0.0.1:0 --cert-dir "$SIM_CERTS"
url=$(pw_first_line sim2)
SIM_PORT=${url##*:}
expect_eq "CA reused" "$(openssl x509 -in "$SIM_CA" -noout -fingerprint -sha256)" "$sum"
st=$(sim_call GET "https://$K/v1/rest/auth/metadata")
expect_eq "restart serves with the kept CA" "$st" 200
pw_stop sim2 TERM 60 || pw_fail "azure-sim exited with $? on SIGTERM"
pw_log "PASS"
