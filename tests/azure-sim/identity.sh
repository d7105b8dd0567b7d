#!/usr/bin/env bash
# tests/azure-sim/identity.sh: workload identity federation (federated credentials per app,
# the test issuer's tokens minted by POST /_sim/federated-token, checked on the token
# endpoint as Entra ID checks them) and the managed-identity endpoints on the plain-HTTP
# loopback listener (IMDS and App Service forms).  Loopback only: nothing else is reached.
set -euo pipefail
BIN=${1:?usage: identity.sh path/to/azure-sim}
. "$(dirname "$0")/../lib/stack.sh"
. "$(dirname "$0")/lib.sh"
pw_require curl jq openssl
ISSUER=https://oidc.azure-sim.test/issuer
SUBJECT=system:serviceaccount:policy:policy-worker
HDR=identity-header-value-1

sim_start sim "$BIN" --identity-listen 127.0.0.1:0
ID_URL=$(pw_line sim 2)
case $ID_URL in http://127.0.0.1:*) ;; *) pw_fail "second stdout line '$ID_URL', not http://127.0.0.1:PORT" ;; esac
pw_log "ok: identity endpoint $ID_URL"

simcurl https://localhost/_sim/state |
  jq --arg app "$SIM_APP" --arg iss "$ISSUER" --arg sub "$SUBJECT" --arg hdr "$HDR" '
    .managedIdentity = {systemAssigned: $app, userAssigned: [$app], identityHeader: $hdr}
    | .apps |= map(if .appId == $app then .federatedCredentials = [{name: "k8s", issuer: $iss,
        subject: $sub, audiences: ["api://AzureADTokenExchange"]}] else . end)' >"$PW_TMP/state.json"
st=$(sim_call PUT https://localhost/_sim/state -H 'Content-Type: application/json' --data-binary @"$PW_TMP/state.json")
expect_eq "PUT state with managedIdentity and federatedCredentials" "$st" 200

mint() { # BODY-JSON: a federated token of the test issuer
  simcurl -X POST -H 'Content-Type: application/json' -d "$1" https://localhost/_sim/federated-token | jq -r .token
}
fed() { # TOKEN: a token request with the federated token as client assertion
  sim_call POST "$SIM_TOKEN_URL" -d grant_type=client_credentials -d "client_id=$SIM_APP" \
    --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    --data-urlencode "client_assertion=$1" --data-urlencode scope=https://management.azure.com/.default
}
st=$(fed "$(mint "{\"subject\":\"$SUBJECT\"}")")
expect_eq "federated token exchanged" "$st" 200
TOK=$(jq -r .access_token "$PW_TMP/body")
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $TOK")
expect_eq "ARM accepts the workload identity's token" "$st" 200
fbad() { # NAME STATUS CODE TOKEN
  st=$(fed "$4")
  expect_eq "$1 status" "$st" "$2"
  expect_body '.error_codes[0]' "$3"
}
fbad "other subject" 400 70021 "$(mint '{"subject":"system:serviceaccount:other:sa"}')"
fbad "other audience" 400 700212 "$(mint "{\"subject\":\"$SUBJECT\",\"audience\":\"api://other\"}")"
fbad "unregistered issuer" 400 700211 "$(mint "{\"subject\":\"$SUBJECT\",\"issuer\":\"https://evil.example/\"}")"
fbad "expired" 401 700024 "$(mint "{\"subject\":\"$SUBJECT\",\"lifetimeSeconds\":-900}")"
good=$(mint "{\"subject\":\"$SUBJECT\"}")
fbad "tampered signature" 401 50013 "${good%.*}.AAAA"

idget() { # PATH-AND-QUERY [CURL-ARGS...]: GET on the identity listener (plain HTTP, loopback)
  local q=$1
  shift
  curl -sS --max-time 30 -o "$PW_TMP/body" -w '%{http_code}' "$@" "$ID_URL$q"
}
R=resource=https://management.azure.com
st=$(idget "/metadata/identity/oauth2/token?api-version=2018-02-01&$R" -H 'Metadata: true')
expect_eq "IMDS system-assigned" "$st" 200
expect_body '.token_type' Bearer
expect_body '.client_id' "$SIM_APP"
[ "$(jq -r '.expires_in | tonumber > 0' "$PW_TMP/body")" = true ] || pw_fail "IMDS expires_in missing"
TOK=$(jq -r .access_token "$PW_TMP/body")
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $TOK")
expect_eq "ARM accepts the IMDS token" "$st" 200
st=$(idget "/metadata/identity/oauth2/token?api-version=2018-02-01&$R&client_id=$SIM_APP" -H 'Metadata: true')
expect_eq "IMDS user-assigned" "$st" 200
st=$(idget "/metadata/identity/oauth2/token?api-version=2018-02-01&$R")
expect_eq "IMDS without Metadata: true" "$st" 400
st=$(idget "/metadata/identity/oauth2/token?api-version=2018-02-01&$R&client_id=99999999-9999-9999-9999-999999999999" -H 'Metadata: true')
expect_eq "IMDS unknown user-assigned identity" "$st" 400
expect_body .error_description "Identity not found"
st=$(idget "/msi/token?api-version=2019-08-01&$R" -H "X-IDENTITY-HEADER: $HDR")
expect_eq "App Service form" "$st" 200
[ "$(jq -r 'has("expires_in")' "$PW_TMP/body")" = false ] || pw_fail "2019-08-01 answers carry no expires_in"
expect_body '.expires_on | tonumber > 0' true
st=$(idget "/msi/token?api-version=2019-08-01&$R" -H "X-IDENTITY-HEADER: wrong")
expect_eq "App Service form, wrong header" "$st" 401
simcurl https://localhost/_sim/requests | jq -e --arg h "$HDR" '[.requests[] | tostring | select(contains($h))] | length == 0' >/dev/null ||
  pw_fail "the identity header leaked into the request log"
pw_log "ok: X-IDENTITY-HEADER masked in the log"
pw_stop sim TERM 60 || pw_fail "azure-sim exited with $? on SIGTERM"
pw_log "PASS"
