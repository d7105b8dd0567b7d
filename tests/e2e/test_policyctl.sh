#!/usr/bin/env bash
# e2e: policyctl against the local stack, without a terminal: submit (plain lines, --json, the
# exit codes 0 succeeded / 1 failed / 2 rejected or usage / 3 timed out, --no-follow, Kafka
# settings from -F, -b and -X), plan (the exact calls and before -> desired, nothing
# changed), status (the last event of a request) and watch (--from-beginning, --filter,
# --max-events, --json).  The terminal view is test_policyctl_tty.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_require
[ -x "$PW_BIN_DIR/policyctl" ] || pw_skip "$PW_BIN_DIR/policyctl not built"
e2e_stack
ctl=$PW_BIN_DIR/policyctl ex=$PW_SOURCE_DIR/examples T=$(($(pw__scale 60)))

# req NAME EXAMPLE [JQ-EDIT]: examples/EXAMPLE.json with id NAME (and the edit) in $PW_TMP/NAME.json
req() { jq --arg id "$1" ".id = \$id | ${3:-.}" "$ex/$2.json" >"$PW_TMP/$1.json"; }
# run NAME ARGS...: policyctl ARGS with stdout in $PW_TMP/NAME.out; sets RC
run() {
  local name=$1
  shift
  RC=0
  "$ctl" "$@" >"$PW_TMP/$name.out" 2>"$PW_TMP/$name.err" </dev/null || RC=$?
  pw_log "policyctl $1 ($name): exit $RC"
}
out() { cat "$PW_TMP/$1.out" "$PW_TMP/$1.err"; }

# 1. plan: a dry run shown as a plan; the simulator keeps its values
req pc-plan database.retention
run plan plan -F "$PW_TMP/worker.conf" "$PW_TMP/pc-plan.json" --timeout "$T"
[ "$RC" = 0 ] || pw_fail "plan: exit $RC: $(out plan)"
grep -qF "  ~ database.retention alter $CLUSTER/$DB via arm" "$PW_TMP/plan.out" || pw_fail "plan: no operation line: $(out plan)"
grep -qF "apply  PATCH $DB_PATH?api-version=$API" "$PW_TMP/plan.out" || pw_fail "plan: no ARM call: $(out plan)"
grep -qF "read   GET $DB_PATH?api-version=$API" "$PW_TMP/plan.out" || pw_fail "plan: no read: $(out plan)"
grep -qF "softDeletePeriod=P365D -> softDeletePeriod=P10D" "$PW_TMP/plan.out" || pw_fail "plan: no before -> desired: $(out plan)"
grep -qF "Plan: 1 to change, 0 unchanged." "$PW_TMP/plan.out" || pw_fail "plan: no summary: $(out plan)"
[ "$(e2e_sim_db | jq -r .softDeletePeriod)" = P365D ] || pw_fail "plan changed the database"

# 2. submit, not a terminal: no follow unless asked; --follow prints plain lines
req pc-nofollow table.caching
run nofollow submit -b "$KAFKA" "$PW_TMP/pc-nofollow.json"
[ "$RC" = 0 ] || pw_fail "--no-follow: exit $RC: $(out nofollow)"
grep -qF "submitted pc-nofollow to $REQ_TOPIC" "$PW_TMP/nofollow.out" || pw_fail "no-follow: $(out nofollow)"
e2e_wait_terminal pc-nofollow >/dev/null
req pc-nofollow-json table.caching
run nofollowj submit -b "$KAFKA" --no-follow --json "$PW_TMP/pc-nofollow-json.json"
[ "$RC" = 0 ] && jq -e --arg t "$REQ_TOPIC" '. == {submitted: "pc-nofollow-json", topic: $t}' "$PW_TMP/nofollowj.out" >/dev/null ||
  pw_fail "--no-follow --json: exit $RC: $(out nofollowj)"
# plan of a value already in place: unchanged, the Kusto read shown, no apply
req pc-plan2 table.caching
run plan2 plan -b "$KAFKA" "$PW_TMP/pc-plan2.json" --timeout "$T"
[ "$RC" = 0 ] || pw_fail "plan unchanged: exit $RC: $(out plan2)"
grep -qF "  = table.caching alter $CLUSTER/$DB/StormEvents via kusto  (unchanged)" "$PW_TMP/plan2.out" || pw_fail "plan unchanged: $(out plan2)"
grep -qF "read   $CLUSTER_URI/$DB: .show table ['StormEvents'] policy caching" "$PW_TMP/plan2.out" || pw_fail "plan: no Kusto read: $(out plan2)"
! grep -q 'apply' "$PW_TMP/plan2.out" || pw_fail "plan unchanged shows an apply: $(out plan2)"
grep -qF "Plan: 0 to change, 1 unchanged." "$PW_TMP/plan2.out" || pw_fail "plan unchanged summary: $(out plan2)"
# submit from stdin
req pc-stdin table.caching '.operations[0].hotCachePeriod = "P4D"'
rc=0; "$ctl" submit -b "$KAFKA" --follow --timeout "$T" - <"$PW_TMP/pc-stdin.json" >"$PW_TMP/stdin.out" 2>&1 || rc=$?
[ "$rc" = 0 ] && grep -qF "pc-stdin succeeded: 1 changed" "$PW_TMP/stdin.out" || pw_fail "submit -: exit $rc: $(cat "$PW_TMP/stdin.out")"
req pc-ok database.retention
run ok submit -X "bootstrap.servers=$KAFKA" "$PW_TMP/pc-ok.json" --follow --timeout "$T"
[ "$RC" = 0 ] || pw_fail "succeeded: exit $RC: $(out ok)"
! grep -q $'\033' "$PW_TMP/ok.out" || pw_fail "escape sequences without a terminal"
grep -qE "^  \[0\] database.retention $CLUSTER/$DB via arm  running  attempts=[0-9]+  lro " "$PW_TMP/ok.out" ||
  pw_fail "no running line with the LRO: $(out ok)"
grep -qE "^  \[0\] database.retention $CLUSTER/$DB via arm  succeeded  attempts=[0-9]+ .* softDeletePeriod=P365D -> softDeletePeriod=P10D$" "$PW_TMP/ok.out" ||
  pw_fail "no final operation line: $(out ok)"
[ "$(tail -n 1 "$PW_TMP/ok.out")" = "pc-ok succeeded: 1 changed, 0 unchanged" ] || pw_fail "last line: $(tail -n 1 "$PW_TMP/ok.out")"

# 3. --json: the raw events of the request, in order, the terminal one last
req pc-json table.retention '.operations[0].softDeletePeriod = "P20D"'
run json submit -F "$PW_TMP/worker.conf" "$PW_TMP/pc-json.json" --json --follow --timeout "$T"
[ "$RC" = 0 ] || pw_fail "--json: exit $RC: $(out json)"
jq -e -s 'length >= 3 and all(.[]; .schema == "adx-policy-reply/v1" and .requestId == "pc-json")
  and .[0].status == "accepted" and .[-1].status == "succeeded"
  and ([.[].sequence] == [range(1; length + 1)])' "$PW_TMP/json.out" >/dev/null || pw_fail "--json: $(out json)"
e2e_wait_terminal pc-json >/dev/null
e2e_events pc-json | jq -c . >"$PW_TMP/json.kcat"
jq -c . "$PW_TMP/json.out" | diff - "$PW_TMP/json.kcat" >&2 || pw_fail "--json events differ from the topic's"

# 4. the exit codes: rejected 2, failed 1, timed out 3, usage 2
req pc-rej table.caching '.operations[0].hotCachePeriod = "10 days"'
run rej submit -b "$KAFKA" --follow "$PW_TMP/pc-rej.json" --timeout "$T"
[ "$RC" = 2 ] || pw_fail "rejected: exit $RC: $(out rej)"
grep -qF "pc-rej rejected: InvalidDuration" "$PW_TMP/rej.out" || pw_fail "rejected: $(out rej)"
e2e_sim_faults '{"ignoreWrites": 1}'
req pc-fail table.caching '.operations[0].hotCachePeriod = "P9D"'
run fail submit -b "$KAFKA" --follow "$PW_TMP/pc-fail.json" --timeout "$T"
e2e_sim DELETE /_sim/faults >/dev/null
[ "$RC" = 1 ] || pw_fail "failed: exit $RC: $(out fail)"
grep -qF "pc-fail failed: VerificationFailed" "$PW_TMP/fail.out" || pw_fail "failed: $(out fail)"
req pc-late table.caching
run late submit -b "$KAFKA" --follow -t "$ALT_REPLY_TOPIC" --timeout 3 "$PW_TMP/pc-late.json"
[ "$RC" = 3 ] || pw_fail "timed out: exit $RC: $(out late)"
grep -qF "no terminal reply within 3 s" "$PW_TMP/late.err" || pw_fail "timed out: $(out late)"
run usage submit --bogus "$PW_TMP/pc-late.json"
[ "$RC" = 2 ] || pw_fail "usage: exit $RC"
run nokafka submit "$PW_TMP/pc-late.json"
[ "$RC" = 2 ] || pw_fail "no brokers: exit $RC"
grep -qF "no Kafka brokers" "$PW_TMP/nokafka.err" || pw_fail "no brokers: $(out nokafka)"

# 4b. a rollout: its events as lines (targets per wave, the wave's end, the totals)
jq -n --arg u "$CLUSTER_URI" --arg d "$DB" '{schema: "adx-policy-request/v1", id: "pc-roll",
  requestedBy: "e2e@contoso.com", rollout: {targets: [{clusterUri: $u, database: $d, table: "StormEvents"},
  {clusterUri: $u, database: $d, table: "Logs"}], operations: [{kind: "table.caching", hotCachePeriod: "P6D"}],
  waves: {canary: 1, steps: ["100%"]}}}' >"$PW_TMP/pc-roll.json"
run roll submit -b "$KAFKA" --follow "$PW_TMP/pc-roll.json" --timeout "$T"
[ "$RC" = 0 ] || pw_fail "rollout: exit $RC: $(out roll)"
for l in 'accepted  rollout of 2 targets x 1 templates in 2 waves' "wave 0: $CLUSTER/$DB/StormEvents=succeeded" \
  'wave done: 1 targets, 1 succeeded; next: wave' 'succeeded  2 targets, 2 succeeded'; do
  grep -qF -- "${l/wave done/wave 0 done}" "$PW_TMP/roll.out" || pw_fail "rollout: no line with: $l: $(out roll)"
done

# 4c. status of a request still running (a 5 s LRO): exit 4
e2e_sim_settings '{"lroDurationMs": 5000}'
req pc-slow database.retention '.operations[0].softDeletePeriod = "P40D"'
run slow submit -b "$KAFKA" --no-follow "$PW_TMP/pc-slow.json"
pw_wait_until 30 e2e_seen running pc-slow || pw_fail "pc-slow never ran"
run stslow status -b "$KAFKA" pc-slow
[ "$RC" = 4 ] || pw_fail "status in progress: exit $RC: $(out stslow)"
grep -qE '^pc-slow #[0-9]+ (accepted|running)' "$PW_TMP/stslow.out" || pw_fail "status in progress: $(out stslow)"
e2e_wait_terminal pc-slow >/dev/null
e2e_sim_settings '{"lroDurationMs": 1500}'

# 5. status: the last event of a request; unknown ids exit 3
run st status -b "$KAFKA" pc-ok
[ "$RC" = 0 ] || pw_fail "status: exit $RC: $(out st)"
head -n 1 "$PW_TMP/st.out" | grep -qE '^pc-ok #[0-9]+ succeeded' || pw_fail "status: $(out st)"
grep -qF "softDeletePeriod=P365D -> softDeletePeriod=P10D" "$PW_TMP/st.out" || pw_fail "status ops: $(out st)"
run stj status -b "$KAFKA" pc-fail --json
[ "$RC" = 1 ] && [ "$(jq -r .status "$PW_TMP/stj.out")" = failed ] || pw_fail "status --json: exit $RC $(out stj)"
run stn status -b "$KAFKA" no-such-request --timeout 10
[ "$RC" = 3 ] || pw_fail "status of nothing: exit $RC: $(out stn)"

# 6. watch: every event readably, filtered, bounded
run w1 watch -b "$KAFKA" --from-beginning --filter id=pc-ok --max-events 2 --timeout "$T"
[ "$RC" = 0 ] || pw_fail "watch: exit $RC"
[ "$(wc -l <"$PW_TMP/w1.out")" = 2 ] || pw_fail "watch --max-events 2: $(out w1)"
sed -n 1p "$PW_TMP/w1.out" | grep -qE '^20[0-9-]+T[0-9:.]+Z pc-ok #1 accepted \| \[0\] database.retention' || pw_fail "watch line: $(out w1)"
run w2 watch -b "$KAFKA" --from-beginning --filter 'status=succeeded' --filter 'id=pc-*' --timeout 8
[ "$(cut -d' ' -f2 "$PW_TMP/w2.out" | sort | tr '\n' ' ')" = "pc-json pc-late pc-nofollow pc-nofollow-json pc-ok pc-plan pc-plan2 pc-roll pc-slow pc-stdin " ] || pw_fail "watch --filter: $(out w2)"
run w3 watch -b "$KAFKA" --from-beginning --filter 'kind=table.*' --filter 'status=failed' --json --timeout 8
jq -e -s 'length == 1 and .[0].requestId == "pc-fail"' "$PW_TMP/w3.out" >/dev/null || pw_fail "watch --json: $(out w3)"
# from now on: only what comes after it is positioned (its stderr line says so)
pw_spawn wlive "$ctl" watch -b "$KAFKA" --filter id=pc-live --max-events 3 --timeout "$T"
pw_wait_until 30 grep -q 'watching adx.policy.replies from now on' "$PW_TMP/wlive.err" || pw_fail "watch: not started"
# and a request with replyTo is followed on that topic
req pc-live table.caching ".operations[0].hotCachePeriod = \"P3D\" | .replyTo = \"$ALT_REPLY_TOPIC\""
run live submit -b "$KAFKA" --follow --timeout "$T" "$PW_TMP/pc-live.json"
[ "$RC" = 0 ] || pw_fail "replyTo followed: exit $RC: $(out live)"
grep -qF "following on $ALT_REPLY_TOPIC" "$PW_TMP/live.out" || pw_fail "replyTo: $(out live)"
req pc-live2 table.caching '.operations[0].hotCachePeriod = "P2D"'
jq '.id = "pc-live"' "$PW_TMP/pc-live2.json" >"$PW_TMP/pc-live3.json"
run live3 submit -b "$KAFKA" --follow --timeout "$T" "$PW_TMP/pc-live3.json"
pw_wait_exit wlive 30 >/dev/null 2>&1 || true
[ "$(wc -l <"$PW_TMP/wlive.out")" = 3 ] && [ "$(grep -c ' pc-live #' "$PW_TMP/wlive.out")" = 3 ] ||
  pw_fail "watch from now on: $(cat "$PW_TMP/wlive.out")"
run w4 watch -b "$KAFKA" --filter colour=red
[ "$RC" = 2 ] || pw_fail "watch bad filter: exit $RC"
pw_log PASS
