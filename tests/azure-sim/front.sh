#!/usr/bin/env bash
# tests/azure-sim/front.sh: azure-sim's front end to end: TLS for every host kind, AAD
# client-secret tokens and errors, ARM/Kusto token checks, the Kusto HTTP endpoint, bad
# input, and a clean shutdown (ASan/LSan report through the exit status).
set -euo pipefail
BIN=${1:?usage: front.sh path/to/azure-sim}
. "$(dirname "$0")/../lib/stack.sh"
. "$(dirname "$0")/lib.sh"
pw_require curl jq openssl

sim_start sim "$BIN"

# --- TLS with the real host names for all three host kinds ---------------------------
st=$(sim_call GET "https://$(echo $SIM_CLUSTER | sed 's,https://,,')/v1/rest/auth/metadata")
expect_eq "kusto metadata status" "$st" 200
expect_body .AzureAD.KustoServiceResourceId https://kusto.kusto.windows.net
expect_body .AzureAD.LoginEndpoint https://login.microsoftonline.com
st=$(sim_call GET https://management.azure.com/subscriptions)
expect_eq "ARM without token" "$st" 401
expect_body .error.code AuthenticationFailed
case $(header_value WWW-Authenticate) in
  Bearer*authorization_uri=*) pw_log "ok: WWW-Authenticate" ;;
  *) pw_fail "WWW-Authenticate missing: $(cat "$PW_TMP/headers")" ;;
esac
st=$(sim_call GET "https://login.microsoftonline.com/$SIM_TENANT/oauth2/v2.0/token")
expect_eq "AAD GET token" "$st" 400
expect_body '.error_codes[0]' 900561
# localhost and 127.0.0.1 are in the certificate too
curl -sS --cacert "$SIM_CA" "https://localhost:$SIM_PORT/_sim/health" | jq -e '.status == "ok"' >/dev/null ||
  pw_fail "https://localhost/_sim/health"
curl -sS --cacert "$SIM_CA" "https://127.0.0.1:$SIM_PORT/_sim/health" | jq -e '.status == "ok"' >/dev/null ||
  pw_fail "https://127.0.0.1/_sim/health"
pw_log "ok: certificate covers localhost and 127.0.0.1"

# --- AAD: tokens with a secret ------------------------------------------------------------
st=$(sim_call POST "$SIM_TOKEN_URL" -d grant_type=client_credentials -d client_id=$SIM_APP \
  -d client_secret=$SIM_SECRET --data-urlencode scope=https://management.azure.com/.default)
expect_eq "token status" "$st" 200
expect_body .token_type Bearer
expect_body .expires_in 3600
expect_body '.ext_expires_in' 3600
ARM=$(jq -r .access_token "$PW_TMP/body")
claims=$(echo "$ARM" | cut -d. -f2 | tr '_-' '/+' | awk '{ l=length($0)%4; if (l==2) $0=$0"=="; else if (l==3) $0=$0"="; print }' | base64 -d)
expect_eq "aud" "$(echo "$claims" | jq -r .aud)" https://management.azure.com
expect_eq "iss" "$(echo "$claims" | jq -r .iss)" "https://sts.windows.net/$SIM_TENANT/"
expect_eq "tid" "$(echo "$claims" | jq -r .tid)" "$SIM_TENANT"
expect_eq "appid" "$(echo "$claims" | jq -r .appid)" "$SIM_APP"
expect_eq "exp-iat" "$(echo "$claims" | jq -r '.exp - .iat')" 3600
echo "$claims" | jq -e '.oid and .nbf' >/dev/null || pw_fail "oid/nbf missing: $claims"
# the tenant's domain works as the tenant, the v1 endpoint with resource= too
st=$(sim_call POST "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token" \
  -d grant_type=client_credentials -d client_id=$SIM_APP -d client_secret=$SIM_SECRET \
  --data-urlencode resource=https://management.core.windows.net/)
expect_eq "v1 token status" "$st" 200
expect_body .resource https://management.core.windows.net

# discovery: openid-configuration, instance discovery, and the JWKS holding the signing key
st=$(sim_call GET "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration")
expect_eq "openid-configuration" "$st" 200
expect_body .token_endpoint "$SIM_TOKEN_URL"
st=$(sim_call GET "https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/$SIM_TENANT/oauth2/v2.0/authorize")
expect_eq "instance discovery" "$st" 200
expect_body .tenant_discovery_endpoint "https://login.microsoftonline.com/$SIM_TENANT/v2.0/.well-known/openid-configuration"
st=$(sim_call GET "https://login.microsoftonline.com/$SIM_TENANT/discovery/v2.0/keys")
expect_eq "jwks" "$st" 200
kid=$(echo "$ARM" | cut -d. -f1 | tr '_-' '/+' | awk '{ l=length($0)%4; if (l==2) $0=$0"=="; else if (l==3) $0=$0"="; print }' | base64 -d | jq -r .kid)
expect_body '.keys[0].kid' "$kid"
n=$(jq -r '.keys[0].n' "$PW_TMP/body" | tr '_-' '/+' | awk '{ l=length($0)%4; if (l==2) $0=$0"=="; else if (l==3) $0=$0"="; print }' | base64 -d | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
expect_eq "jwks modulus" "Modulus=$n" "$(openssl rsa -in "$SIM_CERTS/signing-key.pem" -noout -modulus)"

KUSTO=$(sim_token "$SIM_CLUSTER/.default")
KUSTO_GENERIC=$(sim_token https://kusto.kusto.windows.net/.default)
KUSTO_API=$(sim_token https://api.kusto.windows.net/.default)
# tamper: flip one character in the middle of the signature
tamper() {
  local sig=${1##*.} c
  c=${sig:100:1}
  [ "$c" = A ] && c=B || c=A
  printf '%s.%s%s%s' "${1%.*}" "${sig:0:100}" "$c" "${sig:101}"
}

# --- AAD errors ----------------------------------------------------------------------------
aad_error() { # name status error code curl-args...
  local name=$1 want=$2 err=$3 code=$4 url
  shift 4
  url=${AAD_URL:-$SIM_TOKEN_URL}
  st=$(sim_call POST "$url" "$@")
  expect_eq "$name status" "$st" "$want"
  expect_body .error "$err"
  expect_body '.error_codes[0]' "$code"
  expect_body '.error_description | startswith("AADSTS'"$code"':")' true
  expect_body '(.timestamp|type) + (.trace_id|type) + (.correlation_id|type)' stringstringstring
}
aad_error "wrong secret" 401 invalid_client 7000215 -d grant_type=client_credentials \
  -d client_id=$SIM_APP -d client_secret=nope --data-urlencode scope=https://management.azure.com/.default
aad_error "unknown app" 400 unauthorized_client 700016 -d grant_type=client_credentials \
  -d client_id=99999999-3333-3333-3333-333333333333 -d client_secret=x \
  --data-urlencode scope=https://management.azure.com/.default
AAD_URL=https://login.microsoftonline.com/00000000-dead-beef-0000-000000000000/oauth2/v2.0/token \
  aad_error "unknown tenant" 400 invalid_request 90002 -d grant_type=client_credentials \
  -d client_id=$SIM_APP -d client_secret=$SIM_SECRET --data-urlencode scope=https://management.azure.com/.default
aad_error "unsupported grant" 400 unsupported_grant_type 70003 -d grant_type=password \
  -d client_id=$SIM_APP
aad_error "bad scope" 400 invalid_scope 70011 -d grant_type=client_credentials \
  -d client_id=$SIM_APP -d client_secret=$SIM_SECRET --data-urlencode scope=https://management.azure.com
aad_error "unknown resource" 400 invalid_resource 500011 -d grant_type=client_credentials \
  -d client_id=$SIM_APP -d client_secret=$SIM_SECRET --data-urlencode scope=https://nope.example.com/.default
aad_error "no credential" 401 invalid_client 7000218 -d grant_type=client_credentials \
  -d client_id=$SIM_APP --data-urlencode scope=https://management.azure.com/.default
aad_error "no client_id" 400 invalid_request 900144 -d grant_type=client_credentials

# --- ARM reaches its handler with a management token; 401 shapes -----------------------------
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM" \
  -H "x-ms-correlation-request-id: corr-1")
[ "$st" != 401 ] || pw_fail "ARM refused a valid token: $(cat "$PW_TMP/body")"
pw_log "ok: ARM handler reached ($st)"
expect_eq "x-ms-correlation-request-id echo" "$(header_value x-ms-correlation-request-id)" corr-1
[ -n "$(header_value x-ms-request-id)" ] || pw_fail "x-ms-request-id missing"
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $KUSTO")
expect_eq "ARM with kusto token" "$st" 401
expect_body .error.code InvalidAuthenticationTokenAudience
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $(tamper "$ARM")")
expect_eq "ARM with tampered token" "$st" 401
expect_body .error.code InvalidAuthenticationToken
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Basic Zm9vOmJhcg==")
expect_eq "ARM with basic auth" "$st" 401
expect_body .error.code InvalidAuthenticationToken
EXPIRED=$(simcurl -X POST -d '{"appId":"'$SIM_APP'","aud":"https://management.azure.com","lifetimeSeconds":-120}' \
  https://management.azure.com/_sim/token | jq -r .access_token)
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $EXPIRED")
expect_eq "ARM with expired token" "$st" 401
expect_body .error.code ExpiredAuthenticationToken

# a token that expires at run time: shorten the lifetime, wait for it to lapse
st=$(sim_call PATCH https://management.azure.com/_sim/settings -d '{"tokenLifetimeSeconds":1}')
expect_eq "settings patch" "$st" 200
expect_body .tokenLifetimeSeconds 1
expect_body .kustoMaxConcurrent 8
SHORT=$(sim_token https://management.azure.com/.default)
arm_expired() {
  [ "$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $SHORT")" = 401 ] &&
    [ "$(jq -r .error.code "$PW_TMP/body")" = ExpiredAuthenticationToken ]
}
pw_wait_until 30 arm_expired || pw_fail "a 1 s token never expired"
pw_log "ok: short-lived token expired"
sim_call PATCH https://management.azure.com/_sim/settings -d '{"tokenLifetimeSeconds":3600}' >/dev/null

# --- Kusto endpoint -------------------------------------------------------------------------
K=$(echo $SIM_CLUSTER | sed 's,https://,,')
MGMT=https://$K/v1/rest/mgmt
body='{"db":"mykustodatabase","csl":".show database mykustodatabase policy retention"}'
for t in "$KUSTO" "$KUSTO_GENERIC" "$KUSTO_API"; do
  st=$(sim_call POST "$MGMT" -H "Authorization: Bearer $t" -H 'x-ms-client-request-id: KPC.execute;t1' \
    -H 'Content-Type: application/json; charset=utf-8' -d "$body")
  [ "$st" != 401 ] || pw_fail "Kusto refused a valid token"
  expect_eq "client request id echo" "$(header_value x-ms-client-request-id)" 'KPC.execute;t1'
  [ -n "$(header_value x-ms-activity-id)" ] || pw_fail "x-ms-activity-id missing"
done
pw_log "ok: Kusto handler reached with cluster, kusto and api audiences"
# properties as an object and as a JSON string are both accepted
for p in '{"Options":{"servertimeout":"00:10:00"}}' '"{\"Options\":{}}"'; do
  st=$(sim_call POST "$MGMT" -H "Authorization: Bearer $KUSTO" \
    -d '{"db":"mykustodatabase","csl":".show database mykustodatabase policy retention","properties":'"$p"'}')
  case $st in 400|401|413) jq -e '.error.code != "General_BadRequest"' "$PW_TMP/body" >/dev/null ||
    pw_fail "properties $p rejected: $(cat "$PW_TMP/body")" ;; esac
done
pw_log "ok: properties as object and string"
st=$(sim_call POST "$MGMT" -H "Authorization: Bearer $KUSTO" \
  -d '{"db":"mykustodatabase","csl":".show database mykustodatabase policy retention","properties":"{\"ClientRequestId\":\"KGC.execute;p1\"}"}')
expect_eq "ClientRequestId from properties" "$(header_value x-ms-client-request-id)" 'KGC.execute;p1'
kusto_401() {
  st=$(sim_call POST "$MGMT" "$@" -d "$body")
  expect_eq "kusto 401 ($*)" "$st" 401
  expect_eq "kusto 401 body empty" "$(wc -c <"$PW_TMP/body")" 0
}
kusto_401
kusto_401 -H "Authorization: Bearer $ARM"
kusto_401 -H "Authorization: Bearer $(tamper "$KUSTO")"
KEXPIRED=$(simcurl -X POST -d '{"appId":"'$SIM_APP'","aud":"'$SIM_CLUSTER'","lifetimeSeconds":-120}' \
  https://$K/_sim/token | jq -r .access_token)
kusto_401 -H "Authorization: Bearer $KEXPIRED"

kusto_bad() { # name status code data
  st=$(sim_call POST "$MGMT" -H "Authorization: Bearer $KUSTO" --data-binary "$4")
  expect_eq "$1 status" "$st" "$2"
  expect_body .error.code "$3"
  expect_body '.error."@permanent"' true
  expect_body '.error."@context".activityId | length > 0' true
}
kusto_bad "bad JSON" 400 General_BadRequest '{"db": "x", "csl": '
kusto_bad "not an object" 400 General_BadRequest '[1,2]'
kusto_bad "missing csl" 400 General_BadRequest '{"db":"mykustodatabase"}'
kusto_bad "csl not a string" 400 General_BadRequest '{"db":"mykustodatabase","csl":42}'
kusto_bad "db not a string" 400 General_BadRequest '{"db":7,"csl":".show databases"}'
kusto_bad "properties wrong type" 400 General_BadRequest '{"db":"x","csl":".show databases","properties":5}'
kusto_bad "properties bad string" 400 General_BadRequest '{"db":"x","csl":".show databases","properties":"{oops"}'
head -c 1100000 /dev/zero | tr '\0' ' ' >"$PW_TMP/big.json"
st=$(sim_call POST "$MGMT" -H "Authorization: Bearer $KUSTO" --data-binary @"$PW_TMP/big.json")
expect_eq "oversized Kusto body" "$st" 413
expect_body .error.code PayloadTooLarge
st=$(sim_call POST "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $ARM" \
  -H 'Transfer-Encoding: chunked' --data-binary @"$PW_TMP/big.json")
expect_eq "oversized chunked ARM body" "$st" 413
expect_body .error.code RequestEntityTooLarge
st=$(sim_call GET "https://$K/v1/rest/nothing")
expect_eq "unknown Kusto path" "$st" 404
expect_body .error.code NotFound
st=$(sim_call GET "$MGMT")
expect_eq "GET mgmt" "$st" 405
st=$(sim_call POST "https://nocluster.westus.kusto.windows.net/v1/rest/mgmt" -d "$body")
expect_eq "unknown cluster host" "$st" 404
expect_body .error.code NotFound
st=$(sim_call GET "https://www.example.com/" -k)
expect_eq "unknown host" "$st" 404
expect_body .error.code NotFound
st=$(curl -sS -o "$PW_TMP/body" -w '%{http_code}' --cacert "$SIM_CA" -H 'Host:' "https://127.0.0.1:$SIM_PORT/x")
expect_eq "no Host header" "$st" 404
# a huge header block is refused by the server, which stays up
big=$(head -c 70000 /dev/zero | tr '\0' a)
st=$(simcurl -o /dev/null -w '%{http_code}' -H "X-Big: $big" https://management.azure.com/x || true)
case $st in 4*|000) pw_log "ok: oversized headers refused ($st)" ;; *) pw_fail "oversized headers: $st" ;; esac
pw_alive sim || pw_fail "azure-sim died"

# --- Kusto concurrency throttle --------------------------------------------------------------
# the first command waits (latency 10 min) until the test lowers the latency again
sim_call PATCH "https://$K/_sim/settings" -d '{"kustoMaxConcurrent":1,"kustoCommandLatencyMs":600000}' >/dev/null
simcurl -o "$PW_TMP/slow.body" -w '%{http_code}' -H "Authorization: Bearer $KUSTO" -d "$body" "$MGMT" >"$PW_TMP/slow.status" &
slow=$!
inflight() { [ "$(simcurl https://localhost/_sim/health | jq -r ".kustoInFlight[\"$K\"] // 0")" = 1 ]; }
pw_wait_until 30 inflight || pw_fail "first command never in flight"
st=$(sim_call POST "$MGMT" -H "Authorization: Bearer $KUSTO" -d "$body")
expect_eq "throttled command" "$st" 429
expect_body '.error."@type" | endswith("ControlCommandThrottledException")' true
expect_body '.error."@permanent"' false
sim_call PATCH "https://$K/_sim/settings" -d '{"kustoCommandLatencyMs":0}' >/dev/null
wait $slow
[ "$(cat "$PW_TMP/slow.status")" != 429 ] || pw_fail "the first command was throttled"
sim_call PATCH "https://$K/_sim/settings" -d '{"kustoMaxConcurrent":8,"kustoCommandLatencyMs":0}' >/dev/null
pw_log "ok: Kusto concurrency throttle"

# --- shutdown: clean exit (sanitizers report leaks through the status) -----------------------
pw_stop sim TERM 60 || pw_fail "azure-sim exited with $? on SIGTERM"
pw_log "PASS"
