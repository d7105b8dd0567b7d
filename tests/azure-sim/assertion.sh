#!/usr/bin/env bash
# tests/azure-sim/assertion.sh: AAD client-credentials with a certificate: the test makes
# an app certificate with openssl, seeds a --state file with it, signs client assertions
# (RS256 JWTs) with openssl and checks good and bad ones.
set -euo pipefail
BIN=${1:?usage: assertion.sh path/to/azure-sim}
. "$(dirname "$0")/../lib/stack.sh"
. "$(dirname "$0")/lib.sh"
pw_require curl jq openssl base64
pw_tmpdir >/dev/null

# An app certificate and a second, unregistered key.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PW_TMP/app.key" -out "$PW_TMP/app.pem" \
  -days 2 -subj /CN=policy-worker-app 2>/dev/null
openssl genrsa -out "$PW_TMP/other.key" 2048 2>/dev/null
CERT_APP=44444444-4444-4444-4444-444444444444

# Seed: the default state (from a first run) plus an app that has only a certificate.
sim_start seed "$BIN"
simcurl https://localhost/_sim/state >"$PW_TMP/default.json"
pw_stop seed TERM 60 || pw_fail "seed run exited with $?"
jq --arg app "$CERT_APP" --rawfile pem "$PW_TMP/app.pem" \
  '.apps += [{appId: $app, tenantId: "11111111-1111-1111-1111-111111111111",
              displayName: "cert-app", secrets: [], certificates: [$pem],
              armRoles: [{scope: "/subscriptions/22222222-2222-2222-2222-222222222222", role: "Reader"}]}]' \
  "$PW_TMP/default.json" >"$PW_TMP/state.json"

sim_start sim "$BIN" --state "$PW_TMP/state.json"
simcurl https://localhost/_sim/state | jq -e --arg app "$CERT_APP" '.apps | map(.appId) | index($app) != null' >/dev/null ||
  pw_fail "--state file not loaded"
pw_log "ok: --state file loaded"

# assertion KEY AUD ISS SUB EXP-OFFSET: a signed client assertion.
assertion() {
  local key=$1 aud=$2 iss=$3 sub=$4 off=$5 now x5t h c sig
  now=$(date +%s)
  x5t=$(openssl x509 -in "$PW_TMP/app.pem" -outform DER | openssl dgst -sha1 -binary | b64url)
  h=$(printf '{"alg":"RS256","typ":"JWT","x5t":"%s"}' "$x5t" | b64url)
  c=$(jq -cn --arg aud "$aud" --arg iss "$iss" --arg sub "$sub" --argjson now "$now" \
        --argjson off "$off" --arg jti "$RANDOM$RANDOM" \
        '{aud: $aud, iss: $iss, sub: $sub, jti: $jti, nbf: ($now - 10), iat: ($now - 10), exp: ($now + $off)}' | b64url)
  sig=$(printf '%s.%s' "$h" "$c" | openssl dgst -sha256 -sign "$key" -binary | b64url)
  printf '%s.%s.%s' "$h" "$c" "$sig"
}

token_with() { # ASSERTION [scope]
  sim_call POST "$SIM_TOKEN_URL" -d grant_type=client_credentials -d client_id=$CERT_APP \
    --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    --data-urlencode "client_assertion=$1" --data-urlencode "scope=${2:-https://management.azure.com/.default}"
}

good=$(assertion "$PW_TMP/app.key" "$SIM_TOKEN_URL" $CERT_APP $CERT_APP 600)
st=$(token_with "$good")
expect_eq "token with client_assertion" "$st" 200
TOK=$(jq -r .access_token "$PW_TMP/body")
st=$(sim_call GET "$SIM_DB_URL?api-version=2025-02-14" -H "Authorization: Bearer $TOK")
[ "$st" != 401 ] || pw_fail "ARM refused a certificate-issued token"
pw_log "ok: ARM accepts the token ($st)"
# Entra ID refuses an assertion's jti a second time (replay).
st=$(token_with "$good" "$SIM_CLUSTER/.default")
expect_eq "the same assertion again (jti replayed)" "$st" 401
expect_body '.error_codes[0]' 700027
st=$(token_with "$(assertion "$PW_TMP/app.key" "$SIM_TOKEN_URL" $CERT_APP $CERT_APP 600)" "$SIM_CLUSTER/.default")
expect_eq "kusto token with a fresh client_assertion" "$st" 200

bad() { # name code assertion
  st=$(token_with "$3")
  expect_eq "$1 status" "$st" 401
  expect_body .error invalid_client
  expect_body '.error_codes[0]' "$2"
}
bad "unregistered key" 700027 "$(assertion "$PW_TMP/other.key" "$SIM_TOKEN_URL" $CERT_APP $CERT_APP 600)"
bad "wrong audience" 700027 "$(assertion "$PW_TMP/app.key" https://login.microsoftonline.com/x/oauth2/v2.0/token $CERT_APP $CERT_APP 600)"
bad "wrong issuer" 700027 "$(assertion "$PW_TMP/app.key" "$SIM_TOKEN_URL" $SIM_APP $CERT_APP 600)"
bad "wrong subject" 700027 "$(assertion "$PW_TMP/app.key" "$SIM_TOKEN_URL" $CERT_APP $SIM_APP 600)"
bad "expired" 700024 "$(assertion "$PW_TMP/app.key" "$SIM_TOKEN_URL" $CERT_APP $CERT_APP -900)"
bad "garbage" 700027 "not.a.jwt"
bad "tampered" 700027 "${good%.*}.$(printf 'xyz' | b64url)"
# Algorithm confusion and claim checks: the header's alg must be RS256 and the signature
# must verify with the registered certificate; alg "none" (no signature) and HS256 keyed
# with the certificate's public material must fail, as must a missing exp or a future nbf.
now=$(date +%s)
claims() { # EXTRA-JQ: base64url claims for CERT_APP at the token endpoint, with jq edits
  jq -cn --arg aud "$SIM_TOKEN_URL" --arg app $CERT_APP --argjson now "$now" \
    "{aud: \$aud, iss: \$app, sub: \$app, jti: \"j$RANDOM\", nbf: (\$now - 10), exp: (\$now + 600)} | $1" | b64url
}
X5T256=$(openssl x509 -in "$PW_TMP/app.pem" -outform DER | openssl dgst -sha256 -binary | b64url)
# hdr ALG [THUMBPRINT-MEMBER]: the header names the registered certificate by x5t#S256
hdr() { printf '{"alg":"%s","typ":"JWT","%s":"%s"}' "$1" "${2:-x5t#S256}" "${3:-$X5T256}" | b64url; }
rs_sign() { printf '%s' "$1" | openssl dgst -sha256 -sign "$PW_TMP/app.key" -binary | b64url; }
c=$(claims .)
bad "alg none, no signature" 700027 "$(hdr none).$c."
bad "alg none with an RS256 signature" 700027 "$(hdr none).$c.$(rs_sign "$(hdr none).$c")"
hs=$(printf '%s' "$(hdr HS256).$c" | openssl dgst -sha256 -hmac "$(cat "$PW_TMP/app.pem")" -binary | b64url)
bad "HS256 keyed with the certificate" 700027 "$(hdr HS256).$c.$hs"
openssl x509 -in "$PW_TMP/app.pem" -pubkey -noout >"$PW_TMP/app.pub"
hs=$(printf '%s' "$(hdr HS256).$c" | openssl dgst -sha256 -hmac "$(cat "$PW_TMP/app.pub")" -binary | b64url)
bad "HS256 keyed with the public key" 700027 "$(hdr HS256).$c.$hs"
bad "RS256 header, empty signature" 700027 "$(hdr RS256).$c."
c=$(claims 'del(.exp)')
bad "no exp" 700027 "$(hdr RS256).$c.$(rs_sign "$(hdr RS256).$c")"
c=$(claims '.nbf = $now + 3600 | .exp = $now + 7200')
bad "nbf an hour ahead" 700024 "$(hdr RS256).$c.$(rs_sign "$(hdr RS256).$c")"
c=$(claims '.aud = "https://management.azure.com"')
bad "aud = a resource, not the token endpoint" 700027 "$(hdr RS256).$c.$(rs_sign "$(hdr RS256).$c")"
c=$(claims 'del(.jti)')
bad "no jti" 700027 "$(hdr RS256).$c.$(rs_sign "$(hdr RS256).$c")"
c=$(claims .)
h=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)
bad "no thumbprint in the header" 700027 "$h.$c.$(rs_sign "$h.$c")"
h=$(hdr RS256 'x5t#S256' "$(printf 'another certificate' | openssl dgst -sha256 -binary | b64url)")
bad "thumbprint of an unregistered certificate" 700027 "$h.$c.$(rs_sign "$h.$c")"
c=$(claims .)
st=$(token_with "$(hdr RS256).$c.$(rs_sign "$(hdr RS256).$c")")
expect_eq "hand-built RS256 assertion with x5t#S256 (control)" "$st" 200
c=$(claims .)
h=$(hdr RS256 x5t "$(openssl x509 -in "$PW_TMP/app.pem" -outform DER | openssl dgst -sha1 -binary | b64url)")
st=$(token_with "$h.$c.$(rs_sign "$h.$c")")
expect_eq "hand-built RS256 assertion with the SHA-1 x5t (control)" "$st" 200
# the secret flow is not open to a certificate-only app
st=$(sim_call POST "$SIM_TOKEN_URL" -d grant_type=client_credentials -d client_id=$CERT_APP \
  -d client_secret=local-demo-secret --data-urlencode scope=https://management.azure.com/.default)
expect_eq "secret for a cert-only app" "$st" 401
expect_body '.error_codes[0]' 7000215
# the request log masks the assertion
simcurl "https://localhost/_sim/requests?host=login.microsoftonline.com" |
  jq -e '[.requests[].body | select(test("client_assertion=[^*&]"))] | length == 0' >/dev/null ||
  pw_fail "an assertion leaked into the request log"
pw_log "ok: assertions masked in the log"

pw_stop sim TERM 60 || pw_fail "azure-sim exited with $? on SIGTERM"
pw_log "PASS"
