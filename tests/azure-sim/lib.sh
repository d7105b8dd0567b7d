# tests/azure-sim/lib.sh: helpers shared by azure-sim's end-to-end tests (sourced after
# tests/lib/stack.sh).  Needs curl, jq, openssl.
#
#   sim_start NAME BIN [ARGS...]   start azure-sim on a free port with a temp cert dir;
#                                  sets SIM_PORT, SIM_CA; ARGS go to azure-sim.
#   simcurl ARGS...                curl through --connect-to/--cacert to the simulator.
#   sim_token SCOPE [SECRET] [APP] [TENANT]   print an access token (secret flow).
#   sim_call METHOD URL [ARGS...]  simcurl with body/headers to $PW_TMP; prints the status.
#   expect_eq WHAT GOT WANT        fail unless GOT = WANT.

SIM_TENANT=11111111-1111-1111-1111-111111111111
SIM_SUB=22222222-2222-2222-2222-222222222222
SIM_APP=33333333-3333-3333-3333-333333333333
SIM_SECRET=local-demo-secret
SIM_CLUSTER=https://mykustocluster.westus.kusto.windows.net
SIM_DB_URL=https://management.azure.com/subscriptions/$SIM_SUB/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/mykustocluster/databases/mykustodatabase
SIM_TOKEN_URL=https://login.microsoftonline.com/$SIM_TENANT/oauth2/v2.0/token

sim_start() {
  local name=$1 bin=$2
  shift 2
  pw_tmpdir >/dev/null
  SIM_CERTS=$PW_TMP/certs-$name
  pw_start "$name" "$bin" --listen 127.0.0.1:0 --cert-dir "$SIM_CERTS" "$@"
  local url
  url=$(pw_first_line "$name")
  case $url in
    https://127.0.0.1:*) ;;
    *) pw_fail "$name printed '$url', not https://127.0.0.1:PORT" ;;
  esac
  SIM_PORT=${url##*:}
  SIM_CA=$SIM_CERTS/ca.pem
  [ -s "$SIM_CA" ] || pw_fail "$SIM_CA missing"
}

simcurl() {
  curl -sS --max-time "$(pw__scale 60)" --connect-to "::127.0.0.1:$SIM_PORT" --cacert "$SIM_CA" "$@"
}

# sim_call METHOD URL [CURL-ARGS...]: body to $PW_TMP/body, status printed.
sim_call() {
  local m=$1 u=$2
  shift 2
  simcurl -X "$m" -o "$PW_TMP/body" -D "$PW_TMP/headers" -w '%{http_code}' "$@" "$u"
}

sim_token() {
  local scope=$1 secret=${2:-$SIM_SECRET} app=${3:-$SIM_APP} tenant=${4:-$SIM_TENANT}
  simcurl -d grant_type=client_credentials -d "client_id=$app" \
    --data-urlencode "client_secret=$secret" --data-urlencode "scope=$scope" \
    "https://login.microsoftonline.com/$tenant/oauth2/v2.0/token" | jq -r .access_token
}

expect_eq() {
  [ "$2" = "$3" ] || pw_fail "$1: got '$2', want '$3'"
  pw_log "ok: $1 = $3"
}

# expect_body JQ-EXPR WANT: jq -r JQ-EXPR on the last body.
expect_body() {
  expect_eq "$1" "$(jq -r "$1" "$PW_TMP/body" 2>/dev/null)" "$2"
}

b64url() {
  base64 -w0 | tr '+/' '-_' | tr -d '='
}

# header_value NAME: the value of response header NAME of the last sim_call.
header_value() {
  tr -d '\r' <"$PW_TMP/headers" | awk -v h="$(echo "$1" | tr A-Z a-z)" 'BEGIN{FS=": "} tolower($1)==h {print substr($0, length($1)+3)}' | tail -1
}
