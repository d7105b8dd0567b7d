#!/usr/bin/env bash
# e2e: `policyctl validate` is the worker's own decoder (the code of `policy-worker validate`):
# the same verdicts and lines as policy-worker for the same files, files the schema alone
# would pass but the worker rejects ("10 days", P1Y, a foreign clusterUri), every schema error
# of a file reported, options anywhere, "-" for stdin, --json with one result per file, and
# every request file of examples/ accepted (one per kind of `policy-worker kinds`).  No Kafka.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pw_require jq
for b in policy-worker policyctl; do
  [ -x "$PW_BIN_DIR/$b" ] || pw_skip "$PW_BIN_DIR/$b not built"
done
pw_tmpdir >/dev/null
ctl=$PW_BIN_DIR/policyctl pw=$PW_BIN_DIR/policy-worker ex=$PW_SOURCE_DIR/examples
good=$ex/table.caching.json

# edit NAME JQ-EDIT: the good request changed by JQ-EDIT, in $PW_TMP/NAME.json
edit() { jq "$2" "$good" >"$PW_TMP/$1.json"; }
# code FILE: the rejection code policyctl validate --json gives FILE (exit 1 expected)
code() {
  local rc=0 out
  out=$("$ctl" validate --json "$1") || rc=$?
  [ "$rc" = 1 ] || pw_fail "$1: exit $rc, expected 1: $out"
  printf '%s' "$out" | jq -r '.error.code'
}

# 1. what the worker rejects and a schema-only check passes
edit days '.operations[0].hotCachePeriod = "10 days"'
edit years '.operations[0].hotCachePeriod = "P1Y"'
edit host '.operations[0].target.clusterUri = "https://kusto.evil.example.com"'
[ "$(code "$PW_TMP/days.json")" = InvalidDuration ] || pw_fail "\"10 days\" not InvalidDuration"
[ "$(code "$PW_TMP/years.json")" = InvalidDuration ] || pw_fail "P1Y: $(code "$PW_TMP/years.json")"
[ "$(code "$PW_TMP/host.json")" = ClusterHostNotAllowed ] || pw_fail "foreign clusterUri accepted"
pw_log "worker-only checks: ok"

# 2. every schema error of a file, not only the first: three problems, three lines
edit three 'del(.requestedBy) | .colour = "red" | .operations[0].target.database = 42'
rc=0; "$ctl" validate "$PW_TMP/three.json" >"$PW_TMP/three.out" || rc=$?
[ "$rc" = 1 ] || pw_fail "three problems: exit $rc"
for w in 'requestedBy" is missing' 'property "colour" is not allowed' \
  'three.json:   /operations/0/target/database: 42 is of type integer'; do
  grep -qF -- "$w" "$PW_TMP/three.out" || pw_fail "three problems: $w not reported: $(cat "$PW_TMP/three.out")"
done
n=$("$ctl" validate --json "$PW_TMP/three.json" | jq '.error.errors | length') || true
[ "$n" -ge 3 ] || pw_fail "--json lists $n schema errors, expected >= 3"
pw_log "every schema error: ok"

# 3. one code path: policyctl prints what policy-worker validate prints, file for file
files=("$good" "$PW_TMP/days.json" "$PW_TMP/three.json" "$PW_TMP/host.json")
rc1=0; "$ctl" validate "${files[@]}" >"$PW_TMP/ctl.out" 2>&1 || rc1=$?
rc2=0; "$pw" validate "${files[@]}" >"$PW_TMP/pw.out" 2>&1 || rc2=$?
[ "$rc1" = 1 ] && [ "$rc2" = 1 ] || pw_fail "exits $rc1 / $rc2, expected 1 / 1"
diff "$PW_TMP/pw.out" "$PW_TMP/ctl.out" >&2 || pw_fail "policyctl and policy-worker validate differ"
pw_log "same output as policy-worker validate: ok"

# 4. options anywhere, "-" for stdin, --json: a result for every file, accepted ones too
rc=0
"$ctl" validate "$good" --json - "$PW_TMP/days.json" <"$PW_TMP/years.json" >"$PW_TMP/mixed.out" || rc=$?
[ "$rc" = 1 ] || pw_fail "mixed: exit $rc"
jq -e -s --arg g "$good" --arg d "$PW_TMP/days.json" 'length == 3
  and .[0] == {file: $g, valid: true, status: "accepted", requestId: "example-table.caching"}
  and .[1].file == "-" and .[1].valid == false and .[1].error.code == "InvalidDuration"
  and .[2].file == $d and .[2].status == "rejected"' "$PW_TMP/mixed.out" >/dev/null ||
  pw_fail "--json results: $(cat "$PW_TMP/mixed.out")"
out=$("$ctl" validate - <"$good") || pw_fail "stdin: exit $?"
[ "$out" = "-: accepted: example-table.caching" ] || pw_fail "stdin: $out"
out=$("$ctl" validate -- "$good") || pw_fail "--: exit $?"
pw_log "options anywhere, stdin, --json: ok"

# 5. exits: missing file and bad option 2
rc=0; "$ctl" validate "$PW_TMP/nope.json" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || pw_fail "missing file: exit $rc"
rc=0; "$ctl" validate "$good" --bogus 2>/dev/null || rc=$?
[ "$rc" = 2 ] || pw_fail "bad option: exit $rc"
rc=0; "$ctl" validate 2>/dev/null || rc=$?
[ "$rc" = 2 ] || pw_fail "no file: exit $rc"

# 6. examples/: one request file per kind, each accepted (privileged kinds with a configuration
# that allows them, as a deployment must), and no request file for a kind that does not exist
"$pw" kinds --json >"$PW_TMP/kinds.json"
allowed=$(jq -r '[.[] | select(.privileged) | .kind] | join(",")' "$PW_TMP/kinds.json")
printf 'worker.kinds.privileged.allowed=%s\n' "$allowed" >"$PW_TMP/priv.conf"
for k in $(jq -r '.[].kind' "$PW_TMP/kinds.json"); do
  [ -f "$ex/$k.json" ] || pw_fail "examples/$k.json is missing"
  jq -e --arg k "$k" '.operations[0].kind == $k' "$ex/$k.json" >/dev/null || pw_fail "examples/$k.json is not a $k"
done
[ "$(ls "$ex"/*.json | wc -l)" = "$(jq length "$PW_TMP/kinds.json")" ] || pw_fail "examples/ has files for no kind"
"$ctl" validate --config "$PW_TMP/priv.conf" --json "$ex"/*.json >"$PW_TMP/examples.out" ||
  pw_fail "examples rejected: $(jq -c 'select(.valid == false) | {file, error}' "$PW_TMP/examples.out")"
[ "$(jq -s length "$PW_TMP/examples.out")" = "$(jq length "$PW_TMP/kinds.json")" ] || pw_fail "not one result per example"
# and the examples/local.conf configuration loads (its addresses come from the environment)
PW_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 "$pw" --check-config "$ex/local.conf" >/dev/null 2>&1 ||
  PW_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 "$ctl" validate --config "$ex/local.conf" "$good" >/dev/null ||
  pw_fail "examples/local.conf does not load"
pw_log "examples: $(jq length "$PW_TMP/kinds.json") kinds, all accepted"
pw_log PASS
