#!/usr/bin/env bash
# e2e: the worker killed with SIGKILL mid-run and restarted: every request still gets a
# terminal reply.  Then SIGTERM with requests in flight: they finish (drain), the worker
# exits 0, and a new worker does not process them again (their offsets were committed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_stack worker.inflight.max=2
arm=$(e2e_arm_target)
# Long-running operations take 3 s each, so the kill lands mid-run.
e2e_sim_settings '{"lroDurationMs":3000,"lroRetryAfterSeconds":0}'

ids=()
for i in 1 2 3 4 5 6; do
  id=kill-$i
  ids+=("$id")
  e2e_send_json "$id" "$(e2e_request "$id" "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P$((40 + i))D\"}]")"
done
# Wait until something is running, then kill.
pw_wait_until 60 e2e_seen running || pw_fail "nothing started running"
# back-pressure: at most worker.inflight.max requests were taken at once.  The first request
# runs as soon as it is taken; the pause comes with the second one, which may still be on its
# way to the worker, so wait for it.
pw_wait_until 30 grep -q '"event":"worker.backpressure"' "$PW_TMP/worker.err" ||
  pw_fail "no back-pressure with inflight.max=2 and 6 requests"
pw_stop worker KILL 30 || true
pw_log "worker killed mid-run"
e2e_start_worker worker2 "$PW_TMP/worker.conf"
for id in "${ids[@]}"; do
  t=$(e2e_wait_terminal "$id" 180)
  e2e_expect "$id terminal" '.status == "succeeded"' "$t"
done
pw_log "after SIGKILL and restart: every request has its terminal reply"

# --- SIGTERM drain ------------------------------------------------------------------------
for i in 1 2; do
  e2e_send_json "drain-$i" "$(e2e_request "drain-$i" "[{\"kind\":\"database.caching\",\"target\":$arm,\"hotCachePeriod\":\"P$((10 + i))D\"}]")"
done
pw_wait_until 60 e2e_seen accepted drain-2 ||
  pw_fail "drain-2 was not accepted"
rc=0
pw_stop worker2 TERM 60 || rc=$?
[ "$rc" = 0 ] || pw_fail "worker2 exit status $rc after SIGTERM, expected 0"
# worker2 has exited, so nothing new can be produced: the wait is only for the reply
# collector to catch up (its fetches are slow on a loaded machine), not a time limit on the
# drain; that the drain completed is the worker.drained check below.
for i in 1 2; do
  t=$(e2e_wait_terminal "drain-$i" 30)
  e2e_expect "drain-$i finished during the drain" '.status == "succeeded"' "$t"
done
grep -q '"event":"worker.drained"' "$PW_TMP/worker2.err" || pw_fail "worker2 did not report a complete drain"
# A new worker in the group does not redo them: the offsets were committed before it left.
# (e2e_events reads the collector's file line by line and stops quietly at a line still being
# written; a bare jq on it fails there, and set -e ends the test.)
before=$(e2e_events drain-1 | wc -l)
e2e_start_worker worker3 "$PW_TMP/worker.conf"
e2e_send_json after-drain "$(e2e_request after-drain "[{\"kind\":\"database.caching\",\"target\":$arm,\"hotCachePeriod\":\"P3D\"}]" '{"dryRun":true}')"
e2e_wait_terminal after-drain 90 >/dev/null
after=$(e2e_events drain-1 | wc -l)
[ "$before" = "$after" ] || pw_fail "drain-1 was processed again after a clean shutdown ($before -> $after events)"
grep -q '"requestId":"drain-[12]","event":"request.received"' "$PW_TMP/worker3.err" &&
  pw_fail "worker3 took a drained request again after a clean shutdown"
e2e_check_no_secret
pw_stop worker3 TERM 60 || pw_fail "worker3 exit status $? after SIGTERM"
pw_log PASS
