#!/usr/bin/env bash
# e2e: README.md "Run it yourself": its fenced sh block, extracted and run exactly as written
# (bash -e, from the source tree, PW_BIN_DIR naming this build's bin/, TMPDIR the test's
# directory): the stack started by hand with examples/local.conf, policyctl validate, plan,
# submit --follow and status, and the simulator's state read back with the change applied.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_require
[ -x "$PW_BIN_DIR/policyctl" ] || pw_skip "$PW_BIN_DIR/policyctl not built"
pw_tmpdir >/dev/null
awk '/^## Run it yourself/ {sec = 1; next} sec && /^## / {exit}
     sec && /^```sh$/ {code = 1; next} code && /^```$/ {exit} code {print}' \
  "$PW_SOURCE_DIR/README.md" >"$PW_TMP/block.sh"
[ "$(wc -l <"$PW_TMP/block.sh")" -ge 8 ] || pw_fail "no sh block under \"## Run it yourself\" in README.md"
grep -q 'policyctl submit .*examples/.* --follow' "$PW_TMP/block.sh" || pw_fail "the block does not submit an example with --follow"
grep -q 'examples/local.conf' "$PW_TMP/block.sh" || pw_fail "the block does not use examples/local.conf"

# Its own session (setsid): whatever it leaves running on failure is killed with the group.
# (a background subshell is no group leader, so setsid makes its own pid the session id)
rc=0
(cd "$PW_SOURCE_DIR" && TMPDIR=$PW_TMP PW_BIN_DIR=$PW_BIN_DIR \
   exec setsid timeout -k 5 "$(pw__scale 180)" bash -euo pipefail "$PW_TMP/block.sh") \
  >"$PW_TMP/block.out" 2>"$PW_TMP/block.err" &
sid=$!
wait "$sid" || rc=$?
pkill -KILL -s "$sid" 2>/dev/null || true
[ "$rc" = 0 ] || pw_fail "the README block failed (exit $rc): $(tail -n 30 "$PW_TMP/block.out" "$PW_TMP/block.err")"
out=$PW_TMP/block.out
grep -qF 'examples/database.retention.json: accepted: example-database.retention' "$out" || pw_fail "validate: $(cat "$out")"
grep -qF 'softDeletePeriod=P365D -> softDeletePeriod=P10D' "$out" || pw_fail "plan/submit: $(cat "$out")"
grep -qF 'Plan: 1 to change, 0 unchanged.' "$out" || pw_fail "plan: $(cat "$out")"
grep -qF 'example-database.retention succeeded: 1 changed, 0 unchanged' "$out" || pw_fail "submit: $(cat "$out")"
grep -qE '^example-database.retention #[0-9]+ succeeded' "$out" || pw_fail "status: $(cat "$out")"
grep -qF '{"name":"mykustodatabase","softDeletePeriod":"P10D"}' "$out" || pw_fail "the simulator's state: $(cat "$out")"
pw_log PASS
