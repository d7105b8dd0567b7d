#!/usr/bin/env bash
# deploy/demo.sh BUILD_DIR: the four documented operations, end to end, on the embedded stack.
#
# Starts kafka-mock, azure-sim and policy-worker (from BUILD_DIR/bin) on loopback, sends one
# request per operation with kcat, prints every reply event in readable form and the
# simulator's state before and after, stops everything.  Exit 0 only if all four succeeded.
#   1. database retention through ARM   (PATCH .../databases/D softDeletePeriod, long-running)
#   2. database hot cache through ARM   (PATCH .../databases/D hotCachePeriod, long-running)
#   3. table caching through Kusto      (.alter table ['T'] policy caching hot = 5d)
#   4. database principal add via ARM   (POST .../databases/D/addPrincipals)
set -euo pipefail

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export PW_BIN_DIR=$BUILD/bin PW_SOURCE_DIR=$ROOT
export E2E_LOG_LEVEL=info E2E_WORKER_ID=demo-worker E2E_GROUP=demo-workers
# shellcheck source=../tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"

for b in kafka-mock azure-sim policy-worker; do
  [ -x "$PW_BIN_DIR/$b" ] || { echo "demo: $PW_BIN_DIR/$b is missing; run make first" >&2; exit 1; }
done
for c in kcat jq curl; do
  command -v "$c" >/dev/null || { echo "demo: $c is not installed (make deps)" >&2; exit 1; }
done

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

echo
bold "== Starting the local stack"
e2e_stack
echo "kafka-mock:    $KAFKA"
echo "azure-sim:     $SIM  (CA $SIM_CA)"
echo "policy-worker: pid $(pw_pid worker), config $PW_TMP/worker.conf, log $PW_TMP/worker.err"

show_state() {
  local db t
  db=$(e2e_sim_db)
  printf '%s' "$db" | jq -r '"  database \(.name): softDeletePeriod=\(.softDeletePeriod)  hotCachePeriod=\(.hotCachePeriod // "unset")",
    "  principals: " + ([.principals[] | "\(.role):\(.name) (\(.type) \(.appId // .fqn))"] | join(", "))'
  t=$(e2e_sim_table StormEvents)
  printf '%s' "$t" | jq -r '"  table StormEvents caching policy: " + ((.policies.caching // "unset") | tostring)'
}

# readable EVENT-JSON: one line per event, one indented line per operation.
readable() {
  jq -r '
    def val: if . == null then "-" else (to_entries | map("\(.key)=\(.value | if type == "object" or type == "array" then tojson else tostring end)") | join(" ")) end;
    "  #\(.sequence) \(.status | ascii_upcase)\(if .error then "  \(.error.code): \(.error.message)" else "" end)",
    (.operations // [] | .[] |
      "      op\(.index) \(.kind) via \(.route): \(.status)"
      + (if .lro then "  lro=\(.lro.status) polls=\(.lro.polls)" else "" end)
      + (if .before != null or .after != null then "  before[\(.before | val)] after[\(.after | val)]" else "" end)
      + (if .attempts then "  attempts=\(.attempts)" else "" end)
      + (if .durationMs then "  \(.durationMs)ms" else "" end)
      + (if .azure.requestId then "  azure-request-id=\(.azure.requestId)" else "" end)
      + (if .error then "  ERROR \(.error.code): \(.error.message)" else "" end))'
}

echo
bold "== Simulator state before"
show_state

arm=$(e2e_arm_target)
declare -a ids titles reqs
ids=(demo-db-retention demo-db-hotcache demo-table-caching demo-db-principal)
titles=("database retention through ARM (softDeletePeriod P10D)"
        "database hot cache through ARM (hotCachePeriod P5D)"
        "table caching through Kusto (StormEvents hot = 5d)"
        "database principal add through ARM (Admin deploy-bot)")
reqs=(
  "$(e2e_request demo-db-retention "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P10D\"}]")"
  "$(e2e_request demo-db-hotcache "[{\"kind\":\"database.caching\",\"target\":$arm,\"hotCachePeriod\":\"P5D\"}]")"
  "$(e2e_request demo-table-caching "[{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target StormEvents),\"hotCachePeriod\":\"P5D\"}]")"
  "$(e2e_request demo-db-principal "[{\"kind\":\"database.principal.add\",\"target\":$arm,\"principal\":{\"role\":\"Admin\",\"name\":\"deploy-bot\",\"type\":\"App\",\"appId\":\"44444444-4444-4444-4444-444444444444\",\"tenantName\":\"contoso.onmicrosoft.com\"}}]")"
)

ok=0
for i in 0 1 2 3; do
  id=${ids[$i]}
  echo
  bold "== $((i + 1)). ${titles[$i]}"
  echo "  kcat -P -b $KAFKA -t $REQ_TOPIC -k $id  <<<  $(printf '%s' "${reqs[$i]}" | jq -c '.operations[0] | {kind, via, target, softDeletePeriod, hotCachePeriod, principal} | with_entries(select(.value != null))')"
  e2e_send_json "$id" "${reqs[$i]}" -H "kafka_correlationId=demo-$((i + 1))"
  if ! pw_wait_until 120 e2e__has_terminal "$id"; then
    echo "  no terminal reply within 120 s"
    continue
  fi
  e2e_events "$id" | readable
  status=$(e2e_events "$id" | jq -r 'select(.status == "succeeded" or .status == "failed" or .status == "rejected") | .status' | tail -n 1)
  [ "$status" = succeeded ] && ok=$((ok + 1))
done

echo
bold "== Simulator state after"
show_state

echo
bold "== Stopping"
rc=0
pw_stop worker TERM 60 || rc=$?
echo "policy-worker exited with status $rc after SIGTERM"
pw_stop sim TERM 30 >/dev/null 2>&1 || true
pw_stop kafka TERM 30 >/dev/null 2>&1 || true

echo
if [ "$ok" = 4 ] && [ "$rc" = 0 ]; then
  bold "demo: all 4 operations succeeded"
  exit 0
fi
bold "demo: $ok of 4 operations succeeded (worker exit $rc); logs: $PW_TMP (kept)"
export PW_KEEP=1 # read by the EXIT trap of tests/lib/stack.sh
exit 1
