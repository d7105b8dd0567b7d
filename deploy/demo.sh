#!/usr/bin/env bash
# deploy/demo.sh BUILD_DIR: the four documented operations, end to end, on the embedded stack.
#
# Starts kafka-mock, azure-sim and policy-worker (from BUILD_DIR/bin) on loopback, submits one
# request file of examples/ per operation with `policyctl submit --follow` (which prints each
# operation's progress live and the result), shows the simulator's state before and after,
# stops everything.  Exit 0 only if all four succeeded.
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

for b in kafka-mock azure-sim policy-worker policyctl; do
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

echo
bold "== Simulator state before"
show_state

# One request file per operation, from examples/ (one file per kind); policyctl produces each
# and follows it on the reply topic until its terminal event (exit 0: succeeded).
declare -a files titles
files=(database.retention database.caching table.caching database.principal.add)
titles=("database retention through ARM (softDeletePeriod P10D)"
        "database hot cache through ARM (hotCachePeriod P5D)"
        "table caching through Kusto (StormEvents hot = 5d)"
        "database principal add through ARM (Admin deploy-bot)")

ok=0
for i in 0 1 2 3; do
  f=examples/${files[$i]}.json
  echo
  bold "== $((i + 1)). ${titles[$i]}"
  echo "  \$ policyctl submit -F worker.conf $f --follow"
  rc=0
  (cd "$ROOT" && "$PW_BIN_DIR/policyctl" submit -F "$PW_TMP/worker.conf" "$f" --follow --timeout 120) || rc=$?
  [ "$rc" = 0 ] && ok=$((ok + 1))
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
  bold "demo: 4 of 4 operations succeeded"
  exit 0
fi
bold "demo: $ok of 4 operations succeeded (worker exit $rc); logs: $PW_TMP (kept)"
export PW_KEEP=1 # read by the EXIT trap of tests/lib/stack.sh
exit 1
