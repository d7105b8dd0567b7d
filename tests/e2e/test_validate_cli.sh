#!/usr/bin/env bash
# e2e: `policy-worker validate` runs request files through the worker's own decoder: a good
# request is accepted (exit 0); each bad one is rejected with the code the worker would reply
# with (exit 1); a missing file or a bad option is exit 2.  No Kafka or Azure needed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pw_require jq
[ -x "$PW_BIN_DIR/policy-worker" ] || pw_skip "$PW_BIN_DIR/policy-worker not built"
pw_tmpdir >/dev/null
pw=$PW_BIN_DIR/policy-worker
good=$PW_SOURCE_DIR/bench/data/request-4ops.json

out=$("$pw" validate "$good") || pw_fail "a valid request: exit $?"
[ "$out" = "$good: accepted: chg-2026-000123" ] || pw_fail "a valid request: $out"

# expect_code NAME CODE JQ-EDIT: the good request changed by JQ-EDIT is rejected with CODE.
expect_code() {
  local name=$1 code=$2 edit=$3 rc=0
  jq "$edit" "$good" >"$PW_TMP/$name.json"
  "$pw" validate --json "$PW_TMP/$name.json" >"$PW_TMP/$name.out" || rc=$?
  [ "$rc" = 1 ] || pw_fail "$name: exit $rc, expected 1"
  local got
  got=$(jq -r '.error.code' "$PW_TMP/$name.out")
  [ "$got" = "$code" ] || pw_fail "$name: code $got, expected $code"
  [ "$(jq -r '.status' "$PW_TMP/$name.out")" = rejected ] || pw_fail "$name: not a rejected event"
  pw_log "$name: $code"
}
expect_code bad-duration InvalidDuration '.operations[0].softDeletePeriod = "P10X"'
expect_code injected-table InvalidName \
  '.operations[2].target.table = "StormEvents'"'"'] ; .drop table X"'
expect_code foreign-host ClusterHostNotAllowed \
  '.operations[2].target.clusterUri = "https://evil.example.com"'
expect_code dotdot-rg InvalidName '.operations[0].target.resourceGroup = "a/../b"'
expect_code unknown-kind UnknownOperationKind '.operations[1].kind = "database.nonsense"'

# Several files: one rejected makes the exit 1, and each file gets its own line.
rc=0
"$pw" validate "$good" "$PW_TMP/bad-duration.json" >"$PW_TMP/two.out" || rc=$?
[ "$rc" = 1 ] || pw_fail "two files: exit $rc, expected 1"
[ "$(grep -c ': accepted: \|: rejected: ' "$PW_TMP/two.out")" = 2 ] || pw_fail "two files: $(cat "$PW_TMP/two.out")"

rc=0; "$pw" validate "$PW_TMP/does-not-exist.json" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || pw_fail "missing file: exit $rc, expected 2"
rc=0; "$pw" validate --bogus "$good" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || pw_fail "bad option: exit $rc, expected 2"
pw_log "validate: ok"

# policy-worker kinds: the catalogue, as text and as JSON; the privileged kinds refused by
# validate without configuration (OperationNotAllowed).
"$pw" kinds --json >"$PW_TMP/kinds.json" || pw_fail "kinds --json failed"
jq -e 'length >= 50 and any(.[]; .kind == "table.merge" and .actions == ["alter", "merge", "delete"] and .privileged == false)
  and all(.[] | select(.scope == "cluster"); .privileged)' "$PW_TMP/kinds.json" >/dev/null ||
  pw_fail "kinds --json: $(head -c 400 "$PW_TMP/kinds.json")"
[ "$("$pw" kinds | grep -c '^table\.')" -ge 10 ] || pw_fail "kinds: $("$pw" kinds | head -5)"
rc=0; "$pw" kinds --bogus 2>/dev/null || rc=$?
[ "$rc" = 2 ] || pw_fail "kinds --bogus: exit $rc, expected 2"
expect_code privileged OperationNotAllowed \
  '.operations[2] = {"kind": "table.restricted_view_access", "target": .operations[2].target, "enabled": true}'
pw_log "kinds: ok"
