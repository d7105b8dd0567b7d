#!/usr/bin/env bash
# e2e: a worker that stalls past its session timeout loses its partitions to another member;
# when it resumes it must not apply the older requests it had queued.  Worker A takes ten
# requests for one database (slow long-running operations), is stopped (SIGSTOP) after the
# first ones, worker B joins, takes the partition over after A's session timed out, and
# finishes every request, the last one setting P40D.  A is resumed (SIGCONT): it must start
# no operation of the partition it lost, and the database must end at P40D.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_services
e2e_write_config "$PW_TMP/worker-a.conf" worker.id=worker-a
e2e_write_config "$PW_TMP/worker-b.conf" worker.id=worker-b
e2e_start_collectors
e2e_start_worker worker-a "$PW_TMP/worker-a.conf"
e2e_sim_settings '{"lroDurationMs":1500,"lroRetryAfterSeconds":1}'
arm=$(e2e_arm_target)
for i in $(seq 31 40); do
  # One key: one partition, so the ten requests queue on one lane in this order.
  e2e_send_json takeover "$(e2e_request "tk-$i" "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P${i}D\"}]")"
done
started() { grep -c '"event":"op.started"' "$PW_TMP/$1.err" || true; }
pw_wait_until 60 bash -c "[ \$(grep -c '\"event\":\"op.started\"' '$PW_TMP/worker-a.err') -ge 2 ]" ||
  pw_fail "worker-a started fewer than 2 operations"
kill -STOP "$(pw_pid worker-a)"
assigned() { grep -c '"event":"kafka.assigned"' "$PW_TMP/$1.err" || true; }
a_assigned=$(assigned worker-a)
pw_log "worker-a stopped after $(started worker-a) operations started"
e2e_start_worker worker-b "$PW_TMP/worker-b.conf"
t=$(e2e_wait_terminal tk-40 240)
e2e_expect "tk-40 succeeded" '.status == "succeeded"' "$t"
e2e_expect "worker-b finished tk-40" '.workerId == "worker-b"' "$t"
e2e_expect "P40D after worker-b" '.softDeletePeriod == "P40D"' "$(e2e_sim_db)"
a_started=$(started worker-a)
kill -CONT "$(pw_pid worker-a)"
pw_log "worker-a resumed ($a_started operations started before)"
# A learns it lost the partition (librdkafka's session timeout check, or a failed commit),
# then rejoins the group: once it has a new assignment it has done what it will do with the
# requests it held.
pw_wait_until 90 bash -c "[ \$(grep -c '\"event\":\"kafka.assigned\"' '$PW_TMP/worker-a.err') -gt $a_assigned ]" ||
  pw_fail "worker-a did not rejoin the group after it was resumed"
# Every request still has a terminal reply (from one worker or the other).
for i in $(seq 31 40); do
  e2e_wait_terminal "tk-$i" 120 >/dev/null
done
# Operations A started after it was resumed and before its new assignment (a partition it
# gets back afterwards starts again from what B committed, which is legitimate work).
late=$(awk -v skip="$a_started" -v had="$a_assigned" '/"event":"op.started"/ { n++; if (n > skip && !reassigned) late++ }
  /"event":"kafka.assigned"/ { a++; if (a > had) reassigned = 1 } END { print late + 0 }' "$PW_TMP/worker-a.err")
[ "$late" = 0 ] || pw_fail "worker-a started $late operations of a partition it had lost"
db=$(e2e_sim_db)
e2e_expect "the last request's value stays" '.softDeletePeriod == "P40D"' "$db"
e2e_worker_alive worker-a
e2e_worker_alive worker-b
pw_stop worker-a TERM 60 || pw_fail "worker-a exit status $? after SIGTERM"
pw_stop worker-b TERM 60 || pw_fail "worker-b exit status $? after SIGTERM"
pw_log PASS
