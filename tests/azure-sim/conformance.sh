#!/usr/bin/env bash
# tests/azure-sim/conformance.sh: points where azure-sim must behave as the reference
# (../shared/reference/arm/REFERENCE.md, kusto/REFERENCE.md) says Azure does, found in a
# point-by-point audit: ARM LRO times and cross-door visibility, client assertion
# algorithm checks, hostile Kusto input, and a 50-client concurrent burst.
set -euo pipefail
BIN=${1:?usage: conformance.sh path/to/azure-sim}
. "$(dirname "$0")/../lib/stack.sh"
. "$(dirname "$0")/lib.sh"
pw_require curl jq openssl base64
pw_tmpdir >/dev/null

sim_start sim "$BIN"
ATOK=$(sim_token https://management.azure.com/.default)
KTOK=$(sim_token "$SIM_CLUSTER/.default")
V=api-version=2025-02-14
MGMT=$SIM_CLUSTER/v1/rest/mgmt

kusto() { # CSL -> status; body in $PW_TMP/body
  sim_call POST "$MGMT" -H "Authorization: Bearer $KTOK" -H 'Content-Type: application/json' \
    --data-binary "$(jq -nc --arg csl "$1" '{db: "mykustodatabase", csl: $csl}')"
}

# --- ARM REFERENCE §4: an operation ends when it is due ------------------------------------
# endTime is when the operation finished (start + lroDurationMs), not when someone polled.
st=$(sim_call PATCH "https://localhost/_sim/settings" -H 'Content-Type: application/json' \
  -d '{"lroDurationMs":300}')
expect_eq "settings" "$st" 200
st=$(sim_call PATCH "$SIM_DB_URL?$V" -H "Authorization: Bearer $ATOK" -H 'Content-Type: application/json' \
  -d '{"kind":"ReadWrite","properties":{"softDeletePeriod":"P42D"}}')
expect_eq "PATCH" "$st" 202
AO=$(header_value Azure-AsyncOperation)
# --- the change shows through the Kusto door once due, with no ARM request in between
sleep 1.5
st=$(kusto ".show database mykustodatabase policy retention")
expect_eq "kusto show" "$st" 200
expect_body '.Tables[0].Rows[0][2] | fromjson | .SoftDeletePeriod' "42.00:00:00"
pw_log "ok: a finished ARM operation is visible in Kusto without an ARM poll"
st=$(sim_call GET "$AO" -H "Authorization: Bearer $ATOK")
expect_eq "operation status" "$st" 200
expect_body .status Succeeded
expect_body .percentComplete 100
ms() { date -u -d "$1" +%s%3N; }
d=$(( $(ms "$(jq -r .endTime "$PW_TMP/body")") - $(ms "$(jq -r .startTime "$PW_TMP/body")") ))
[ "$d" -ge 250 ] && [ "$d" -le 800 ] || pw_fail "endTime - startTime = $d ms, want about 300"
pw_log "ok: endTime - startTime = $d ms (lroDurationMs 300, polled 1.5 s later)"

# --- access tokens: forged algorithms fail on ARM (401 InvalidAuthenticationToken) and on
# Kusto (401, empty body), though every claim is right -----------------------------------
hdr() { printf '{"alg":"%s","typ":"JWT"}' "$1" | b64url; }
body_of() { echo "$1" | cut -d. -f2; }
openssl rsa -in "$SIM_CERTS/signing-key.pem" -pubout -out "$PW_TMP/sig.pub" 2>/dev/null
for aud in arm kusto; do
  if [ $aud = arm ]; then c=$(body_of "$ATOK"); else c=$(body_of "$KTOK"); fi
  hs=$(printf '%s' "$(hdr HS256).$c" | openssl dgst -sha256 -hmac "$(cat "$PW_TMP/sig.pub")" -binary | b64url)
  for forged in "$(hdr none).$c." "$(hdr HS256).$c.$hs" "$(hdr RS256).$c."; do
    if [ $aud = arm ]; then
      st=$(sim_call GET "$SIM_DB_URL?$V" -H "Authorization: Bearer $forged")
      expect_eq "ARM forged token" "$st" 401
      expect_body .error.code InvalidAuthenticationToken
    else
      st=$(sim_call POST "$MGMT" -H "Authorization: Bearer $forged" -H 'Content-Type: application/json' \
        -d '{"db":"mykustodatabase","csl":".show databases"}')
      expect_eq "Kusto forged token" "$st" 401
      expect_eq "Kusto 401 body" "$(wc -c <"$PW_TMP/body")" 0
    fi
  done
done

# --- invalid UTF-8 from the client (path, form, header, body) still gets the service's
# error body (jansson refuses invalid UTF-8: these answers used to be empty) ----------------
C=https://management.azure.com/subscriptions/$SIM_SUB/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/mykustocluster
arm_bad() { # URL METHOD STATUS CODE
  st=$(sim_call "$2" "$1" -H "Authorization: Bearer $ATOK" -H 'Content-Type: application/json' \
    -d '{"kind":"ReadWrite","properties":{"principalId":"x","role":"Admin","principalType":"App"}}')
  expect_eq "ARM $2 $1" "$st" "$3"
  expect_body .error.code "$4"
}
arm_bad "$C/databases/%FF%FE?$V" GET 404 ResourceNotFound
arm_bad "${C/testrg/rg%FF}/databases/x?$V" GET 404 ResourceGroupNotFound
arm_bad "https://management.azure.com/subscriptions/%C0%AF/resourceGroups/x/providers/Microsoft.Kusto/clusters/c/databases/d?$V" GET 404 SubscriptionNotFound
arm_bad "$C/databases/mykustodatabase?api-version=%FF" GET 400 InvalidApiVersionParameter
arm_bad "$C/databases/%FF?$V" PUT 400 InvalidResourceName
arm_bad "$C/databases/mykustodatabase/principalAssignments/%ED%A0%80?$V" PUT 400 InvalidResourceName
arm_bad "https://management.azure.com/subscriptions/$SIM_SUB/providers/Microsoft.Kusto/locations/%FF/operationResults/%FE?$V" GET 404 ResourceNotFound
st=$(sim_call POST "https://login.microsoftonline.com/%FF/oauth2/v2.0/token" -d grant_type=client_credentials)
expect_eq "AAD tenant %FF" "$st" 400
expect_body '.error_codes[0]' 90002
st=$(sim_call POST "$SIM_TOKEN_URL" -d "grant_type=%FF&client_id=$SIM_APP&client_secret=$SIM_SECRET&scope=x/.default")
expect_eq "AAD grant %FF" "$st" 400
expect_body .error unsupported_grant_type
st=$(sim_call POST "$MGMT" -H "Authorization: Bearer $KTOK" -H $'x-ms-client-request-id: KPC.execute;\xff\xfe' -d 'not json')
expect_eq "Kusto bad JSON, binary client request id" "$st" 400
expect_body .error.code General_BadRequest
# front-made Kusto errors have the engine's @context: 13 members, the cluster as alias
expect_body '.error["@context"] | keys | length' 13
expect_body '.error["@context"].serviceAlias' MYKUSTOCLUSTER
expect_body '.error["@context"].timestamp | test("\\.[0-9]{7}Z$")' true
st=$(kusto ".show table ['Storm$(printf '\xff')Events'] policy caching")
expect_eq "Kusto csl with invalid UTF-8" "$st" 400
# the request log keeps binary bodies, headers and hosts and stays serializable
simcurl -o /dev/null -X DELETE https://localhost/_sim/requests
printf 'ab\xff\x00cd' >"$PW_TMP/bin"
simcurl -o /dev/null -H "Authorization: Bearer $KTOK" --data-binary @"$PW_TMP/bin" "$MGMT"
simcurl -o /dev/null -H $'X-Bad: a\xffb' "$SIM_CLUSTER/v1/rest/auth/metadata"
curl -sS -o /dev/null --cacert "$SIM_CA" -H $'Host: bad\xffhost' "https://127.0.0.1:$SIM_PORT/v1/rest/auth/metadata" || true
st=$(sim_call GET https://localhost/_sim/requests)
expect_eq "request log" "$st" 200
expect_body '.requests | length' 3
expect_body '.requests[0].body == "ab?\u0000cd"' true
expect_body '.requests[1].headers["X-Bad"]' 'a?b'
expect_body '.requests[2].host' 'bad?host'

# --- robustness: 50 parallel clients sending garbage; the server answers every request
# (no 5xx, no hang), stays responsive meanwhile, and a garbage burst leaves it healthy ----
garbage_client() { # N: 12 random requests
  local hosts=(management.azure.com login.microsoftonline.com mykustocluster.westus.kusto.windows.net
    nope.westus.kusto.windows.net) meths=(GET POST PUT PATCH DELETE) i h m p f=$PW_TMP/g.$1
  local paths=("/v1/rest/mgmt" "/subscriptions/$SIM_SUB/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/mykustocluster/databases/mykustodatabase?$V"
    "/$SIM_TENANT/oauth2/v2.0/token" "/subscriptions/$SIM_SUB/providers/Microsoft.Kusto/locations/westus/operationResults/x?$V"
    "/%00%ff/..//x?api-version=%zz" "/subscriptions/$SIM_SUB/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/mykustocluster/databases/mykustodatabase/addPrincipals?$V")
  for i in $(seq 1 12); do
    h=${hosts[RANDOM % 4]} m=${meths[RANDOM % 5]} p=${paths[RANDOM % 6]}
    case $((RANDOM % 4)) in
      0) head -c $((RANDOM * 2)) /dev/urandom >"$f" ;;
      1) printf '{"db":"mykustodatabase","csl":".alter table StormEvents policy %s"}' \
           "$(head -c 300 /dev/urandom | tr -dc 'a-z ()=,[]{}0-9.' )" >"$f" ;;
      2) printf '{"kind":"ReadWrite","properties":{"softDeletePeriod":"P%dD","hotCachePeriod":"%s"}}' \
           $RANDOM "$(head -c 20 /dev/urandom | base64)" >"$f" ;;
      3) printf '{"db":"mykustodatabase","csl":"%s"}' "$(head -c 2000 /dev/urandom | base64 -w0)" >"$f" ;;
    esac
    local tok=$ATOK
    [ $((RANDOM % 2)) = 0 ] && tok=$KTOK
    simcurl -o /dev/null -w '%{http_code}\n' --max-time 30 -X "$m" -H "Authorization: Bearer $tok" \
      -H 'Content-Type: application/json' --data-binary @"$f" "https://$h$p" >>"$PW_TMP/codes.$1" || echo fail >>"$PW_TMP/codes.$1"
  done
}
simcurl -o /dev/null -X DELETE https://localhost/_sim/requests
pids=()
for n in $(seq 1 50); do garbage_client "$n" & pids+=($!); done
t0=$(date +%s%3N)
st=$(sim_call GET https://localhost/_sim/health)
t1=$(date +%s%3N)
expect_eq "health during the burst" "$st" 200
[ $((t1 - t0)) -lt 5000 ] || pw_fail "health took $((t1 - t0)) ms during the burst"
for p in "${pids[@]}"; do wait "$p"; done
cat "$PW_TMP"/codes.* >"$PW_TMP/codes"
expect_eq "answers" "$(wc -l <"$PW_TMP/codes")" 600
grep -qvE '^[234][0-9][0-9]$' "$PW_TMP/codes" && pw_fail "burst answers: $(sort "$PW_TMP/codes" | uniq -c | tr '\n' ' ')"
pw_log "ok: 600 garbage requests from 50 clients, all 2xx-4xx: $(sort "$PW_TMP/codes" | uniq -c | tr '\n' ' ')"
pw_alive sim || pw_fail "azure-sim died under the burst"
st=$(sim_call GET https://localhost/_sim/requests)
expect_eq "request log after the burst" "$st" 200
expect_body '.requests | length' 600

# --- the request log is bounded in bytes, headers included: 1500 requests with 50 KB of
# (repeated, joined) headers each must not keep 75 MB (the ring's budget is 64 MiB) ---------
simcurl -o /dev/null -X DELETE https://localhost/_sim/requests
v=$(head -c 500 /dev/zero | tr '\0' y)
hargs=()
for i in $(seq 1 100); do hargs+=(-H "X-R$((i % 2)): $v"); done
simcurl -o /dev/null "${hargs[@]}" "$SIM_CLUSTER/v1/rest/auth/metadata?i=[1-1500]"
simcurl https://localhost/_sim/requests >"$PW_TMP/log.json"
n=$(jq '.requests | length' "$PW_TMP/log.json")
hb=$(jq '[.requests[].headers | tostring | length] | add' "$PW_TMP/log.json")
[ "$hb" -le 67108864 ] || pw_fail "the log holds $n entries with $hb bytes of headers"
[ "$n" -gt 1000 ] || pw_fail "the log kept only $n entries"
pw_log "ok: request log bounded: $n of 1500 entries kept, $hb bytes of headers"

pw_stop sim TERM 60 || pw_fail "azure-sim exited with $? on SIGTERM"
pw_log "PASS"
