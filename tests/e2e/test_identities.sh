#!/usr/bin/env bash
# tests/e2e/test_identities.sh: the demo's four operations (database retention and hot cache
# through ARM, table caching through Kusto, database principal add through ARM) with each
# credential type against azure-sim: client secret; client certificate (RS256 assertion,
# x5c sent); workload identity (federated token file, rotated between two runs of one
# worker: the second run only works if the file is read again); managed identity through
# IMDS (system-assigned) and through IDENTITY_ENDPOINT/IDENTITY_HEADER (user-assigned).
# Apart from the secret run the app has no secret in the simulator, so nothing but the
# credential under test can get a token.  Every address is loopback: the identity
# endpoints are azure-sim's plain-HTTP listener on 127.0.0.1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_require
pw_require openssl
pw_tmpdir >/dev/null

e2e_start_kafka
mkdir -p "$PW_TMP/certs"
pw_start sim "$PW_BIN_DIR/azure-sim" --listen 127.0.0.1:0 --cert-dir "$PW_TMP/certs" \
  --identity-listen 127.0.0.1:0
SIM=$(pw_first_line sim)
SIM_PORT=${SIM##*:}
SIM_CA=$PW_TMP/certs/ca.pem
ID_URL=$(pw_line sim 2)
case $ID_URL in http://127.0.0.1:*) ;; *) pw_fail "identity listener: '$ID_URL'" ;; esac
e2e_start_collectors
e2e_sim_settings '{"lroDurationMs": 100, "lroRetryAfterSeconds": 0}'

# The app's certificate (key + certificate + a second certificate as its "chain").
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PW_TMP/app.key" -out "$PW_TMP/app.crt" \
  -days 2 -subj /CN=policy-worker 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PW_TMP/ca.key" -out "$PW_TMP/chain.crt" \
  -days 2 -subj /CN=some-issuer 2>/dev/null
cat "$PW_TMP/app.key" "$PW_TMP/app.crt" "$PW_TMP/chain.crt" >"$PW_TMP/app.pem"
ISSUER=https://oidc.azure-sim.test/issuer
SA_OLD=system:serviceaccount:policy:worker-old
SA_NEW=system:serviceaccount:policy:worker-new
IDH=identity-header-e2e-$RANDOM$RANDOM

# sim_identity SECRETS-JSON SUBJECT: the app's secrets, its certificate, one federated
# credential (issuer, SUBJECT) and the host's managed identities (system- and user-assigned
# = the app).
sim_identity() {
  e2e_sim_state | jq --arg app "$CLIENT" --argjson secrets "$1" --rawfile pem "$PW_TMP/app.crt" \
    --arg iss "$ISSUER" --arg sub "$2" --arg hdr "$IDH" '
    .managedIdentity = {systemAssigned: $app, userAssigned: [$app], identityHeader: $hdr}
    | .apps |= map(if .appId == $app then .secrets = $secrets | .certificates = [$pem]
        | .federatedCredentials = [{name: "k8s", issuer: $iss, subject: $sub,
                                    audiences: ["api://AzureADTokenExchange"]}] else . end)' \
    >"$PW_TMP/state.json"
  e2e_sim PUT /_sim/state "@$PW_TMP/state.json" >/dev/null
}
mint() { e2e_sim POST /_sim/federated-token "{\"subject\":\"$1\"}" | jq -r .token; }

ARM_T=$(e2e_arm_target)
N=0
# run4 LABEL: the four operations, values new to this run (each one a real write); all
# four must succeed, each operation succeeded (not unchanged).
run4() {
  local label=$1 d=$((10 + N)) id i ev
  N=$((N + 1))
  local ids=("$label-retention" "$label-hotcache" "$label-table" "$label-principal")
  e2e_send_json "${ids[0]}" "$(e2e_request "${ids[0]}" "[{\"kind\":\"database.retention\",\"target\":$ARM_T,\"softDeletePeriod\":\"P${d}D\"}]")"
  e2e_send_json "${ids[1]}" "$(e2e_request "${ids[1]}" "[{\"kind\":\"database.caching\",\"target\":$ARM_T,\"hotCachePeriod\":\"P$((d - 5))D\"}]")"
  e2e_send_json "${ids[2]}" "$(e2e_request "${ids[2]}" "[{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target StormEvents),\"hotCachePeriod\":\"P$((d - 4))D\"}]")"
  e2e_send_json "${ids[3]}" "$(e2e_request "${ids[3]}" "[{\"kind\":\"database.principal.add\",\"target\":$ARM_T,\"principal\":{\"role\":\"Admin\",\"name\":\"bot-$label\",\"type\":\"App\",\"appId\":\"44444444-4444-4444-4444-4444444444$((10 + N))\",\"tenantName\":\"contoso.onmicrosoft.com\"}}]")"
  for i in 0 1 2 3; do
    id=${ids[$i]}
    ev=$(e2e_wait_terminal "$id" 60)
    e2e_expect "$label: $id succeeded" '.status == "succeeded" and (.operations | all(.status == "succeeded"))' "$ev"
  done
  pw_log "ok: $label: the four operations succeeded"
}

# token_requests HOST-SELECTOR: the simulator's requests to login.microsoftonline.com (aad) or
# to the identity listener (identity) since the log was last cleared, as a JSON array.
aad_requests() { e2e_sim_requests | jq -c '[.[] | select(.host == "login.microsoftonline.com")]'; }
identity_requests() { e2e_sim_requests | jq -c '[.[] | select(.host == "127.0.0.1")]'; }

# worker NAME [EXTRA-LINES...]: a worker with its own config.
worker() {
  local name=$1
  shift
  e2e_write_config "$PW_TMP/$name.conf" "$@"
  e2e_start_worker "$name" "$PW_TMP/$name.conf"
}
stop() { pw_stop "$1" TERM 60 || pw_fail "$1 exited with $? on SIGTERM"; }

# 1. client secret (the existing keys, azure.credential=auto picks it)
sim_identity "[\"$SECRET\"]" "$SA_OLD"
e2e_sim_clear_requests
worker worker-secret
run4 secret
e2e_expect "secret: client_secret sent" 'length > 0 and all(.body | test("client_secret=\\*\\*\\*"))' "$(aad_requests)"
grep -q '"event":"aad.credential".*credential secret' "$PW_TMP/worker-secret.err" || pw_fail "secret: no aad.credential log line"
stop worker-secret

# From here on the app has no secret: only the credential under test can work.
sim_identity '[]' "$SA_OLD"

# 2. client certificate, with the chain in x5c
e2e_sim_clear_requests
E2E_NO_SECRET=1 worker worker-cert azure.credential=certificate \
  "azure.client.certificate.path=$PW_TMP/app.pem" azure.client.send.certificate.chain=true
run4 certificate
reqs=$(aad_requests)
e2e_expect "certificate: assertions, no secret" 'length > 0 and all(.body | test("client_assertion=\\*\\*\\*") and (test("client_secret") | not))' "$reqs"
e2e_expect "certificate: token answers 200" 'all(.status == 200)' "$reqs"
stop worker-cert

# 3. workload identity, auto-selected from AZURE_FEDERATED_TOKEN_FILE; the file is rotated
# between two runs of the same worker and the old subject withdrawn: the second run needs
# the new file's token (tokens live 3 s, so the second run fetches new ones).
mint "$SA_OLD" >"$PW_TMP/federated-token"
e2e_sim_settings '{"tokenLifetimeSeconds": 3}'
e2e_sim_clear_requests
AZURE_FEDERATED_TOKEN_FILE=$PW_TMP/federated-token E2E_NO_SECRET=1 worker worker-workload
run4 workload-1
sim_identity '[]' "$SA_NEW"
mint "$SA_NEW" >"$PW_TMP/federated-token.new"
mv "$PW_TMP/federated-token.new" "$PW_TMP/federated-token" # as the kubelet swaps it
sleep 3.5 # every cached access token (3 s) has expired; the next need fetches anew
run4 workload-2
reqs=$(aad_requests)
e2e_expect "workload: assertions, no secret" 'length > 1 and all(.body | test("client_assertion=\\*\\*\\*") and (test("client_secret") | not))' "$reqs"
e2e_expect "workload: every token answer 200 (the rotated file was read)" 'all(.status == 200)' "$reqs"
grep -q '"event":"aad.credential".*credential workload' "$PW_TMP/worker-workload.err" || pw_fail "workload: not auto-selected"
stop worker-workload
e2e_sim_settings '{"tokenLifetimeSeconds": 3600}'

# 4. managed identity, IMDS form, system-assigned (no client id), auto-selected because
# azure.imds.endpoint is set (pointed at azure-sim on loopback)
e2e_sim_clear_requests
E2E_NO_SECRET=1 E2E_NO_CLIENT_ID=1 worker worker-imds \
  "azure.imds.endpoint=$ID_URL/metadata/identity/oauth2/token"
run4 imds
e2e_expect "imds: no Entra ID request" 'length == 0' "$(aad_requests)"
reqs=$(identity_requests)
e2e_expect "imds: IMDS GETs with Metadata: true, no client_id" 'length > 0 and all(.path | startswith("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=")) and all(.headers.Metadata == "true") and all(.path | test("client_id") | not) and all(.status == 200)' "$reqs"
stop worker-imds

# 5. managed identity, App Service / Container Apps form (IDENTITY_ENDPOINT + IDENTITY_HEADER),
# user-assigned (azure.client.id)
e2e_sim_clear_requests
IDENTITY_ENDPOINT=$ID_URL/msi/token IDENTITY_HEADER=$IDH E2E_NO_SECRET=1 worker worker-appsvc
run4 appsvc
e2e_expect "appsvc: no Entra ID request" 'length == 0' "$(aad_requests)"
reqs=$(identity_requests)
e2e_expect "appsvc: 2019-08-01 GETs with the header, client_id" "length > 0 and all(.path | startswith(\"/msi/token?api-version=2019-08-01&resource=\")) and all(.headers[\"X-IDENTITY-HEADER\"] == \"***\") and all(.path | test(\"client_id=$CLIENT\")) and all(.status == 200)" "$reqs"
stop worker-appsvc

# Nothing secret in the worker's logs or replies: the client secret, JWTs (the federated
# tokens and assertions are JWTs), the identity header.
e2e_check_no_secret
for f in "$PW_TMP"/worker*.err "$PW_TMP"/replies.out; do
  ! grep -qF -- "$IDH" "$f" || pw_fail "the identity header appears in $f"
done
pw_log "PASS"
