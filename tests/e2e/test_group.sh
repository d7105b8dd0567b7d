#!/usr/bin/env bash
# e2e: two workers in one consumer group share the partitions.  One gets SIGTERM while its
# requests are still running and its drain deadline is short: it exits 0 without committing
# them, the other worker takes its partitions over, and every request still gets a terminal
# reply.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_services
e2e_write_config "$PW_TMP/worker-a.conf" worker.id=worker-a worker.drain.timeout.ms=1000
e2e_write_config "$PW_TMP/worker-b.conf" worker.id=worker-b worker.drain.timeout.ms=1000
e2e_start_collectors
e2e_start_worker worker-a "$PW_TMP/worker-a.conf"
e2e_start_worker worker-b "$PW_TMP/worker-b.conf"
# Both own a partition once the group settled.
pw_wait_until 60 bash -c "[ \$(grep -c '\"event\":\"kafka.assigned\"' '$PW_TMP/worker-b.err') -ge 1 ]" ||
  pw_fail "worker-b got no partition"
# Long-running operations: 3 s each (longer than the 1 s drain deadline).
e2e_sim_settings '{"lroDurationMs":3000,"lroRetryAfterSeconds":1}'
arm=$(e2e_arm_target)
ids=()
for i in $(seq 1 8); do
  ids+=("grp-$i")
  e2e_send_json "grp-$i" "$(e2e_request "grp-$i" "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P$((60 + i))D\"}]")"
done
received() { grep -c '"event":"request.received"' "$PW_TMP/$1.err" || true; }
pw_wait_until 60 bash -c "[ \$(grep -c '\"event\":\"request.received\"' '$PW_TMP/worker-a.err') -ge 1 ]" ||
  pw_fail "worker-a took no request (a: $(received worker-a), b: $(received worker-b))"
pw_log "worker-a took $(received worker-a) requests, worker-b $(received worker-b)"
rc=0
pw_stop worker-a TERM 60 || rc=$?
[ "$rc" = 0 ] || pw_fail "worker-a exit status $rc after SIGTERM, expected 0"
grep -q '"event":"worker.drain_timeout"\|"event":"worker.drained"' "$PW_TMP/worker-a.err" ||
  pw_fail "worker-a did not drain"
for id in "${ids[@]}"; do
  t=$(e2e_wait_terminal "$id" 240)
  e2e_expect "$id succeeded" '.status == "succeeded"' "$t"
done
pw_log "every request has its terminal reply after worker-a left the group"
e2e_worker_alive worker-b
e2e_check_no_secret
pw_stop worker-b TERM 60 || pw_fail "worker-b exit status $? after SIGTERM"
pw_log PASS
