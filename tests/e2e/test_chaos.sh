#!/usr/bin/env bash
# e2e chaos: a few hundred requests on many databases and tables, two workers in one group,
# while faults hit both Kafka brokers (request errors on Produce, Fetch, OffsetCommit and
# JoinGroup, leader moves, a broker down, added latency), azure-sim (429/503/resets) and the
# workers themselves (SIGKILL and restart, SIGTERM and restart).  Then, from the reply and
# dead-letter topics and the workers' logs (tests/e2e/chaos_check.py):
#   (a) every request has a terminal reply, exactly one per processing;
#   (b) no offset was stored or committed before every earlier message of its partition had
#       its terminal reply acknowledged;
# plus: partitions paused at worker.inflight.max and resumed, SIGTERM exits 0, and after a
# clean shutdown nothing is redelivered.
# Env: CHAOS_REQUESTS (default 300), CHAOS_DATABASES (default 12), CHAOS_SEED.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_require
pw_require python3
n=${CHAOS_REQUESTS:-300}
ndb=${CHAOS_DATABASES:-12}
RANDOM=${CHAOS_SEED:-$$}
pw_tmpdir >/dev/null
pw_start kafka "$PW_BIN_DIR/kafka-mock" --brokers 2 --replication 2 --topic "$REQ_TOPIC:4" \
  --topic "$REPLY_TOPIC:2" --topic "$DLQ_TOPIC:1" --topic "$ALT_REPLY_TOPIC:1"
KAFKA=$(pw_first_line kafka)
KAFKA_CTL=$(pw_line kafka 2)
ctl() { pw_kafka_ctl "$KAFKA_CTL" "$@" >/dev/null || pw_fail "kafka-mock refused: $*"; }
e2e_start_sim

# Many databases, each with four tables; ARM writes not throttled by the simulator's bucket
# (faults come from the fault document instead); short long-running operations.
state=$(e2e_sim_state | jq -c --argjson n "$ndb" '
  .subscriptions[0].resourceGroups[0].clusters[0].databases as $d
  | .subscriptions[0].resourceGroups[0].clusters[0].databases =
      [range($n) as $i | $d[0] + {name: ("chaosdb\($i)"),
        tables: [range(4) as $t | {name: "T\($t)", policies: {}}]}]
  | .settings += {lroDurationMs: 300, lroRetryAfterSeconds: 0, armWriteBucket: 100000,
                  armWriteRefillPerSecond: 100000, armReadBucket: 100000,
                  armReadRefillPerSecond: 100000, kustoMaxConcurrent: 64}')
e2e_sim PUT /_sim/state "$state" >/dev/null || pw_fail "azure-sim refused the chaos state"

common=(worker.inflight.max=6 worker.drain.timeout.ms=20000 worker.reply.retry.backoff.ms=200
  worker.operation.timeout.ms=30000 azure.attempts.max=10)
for w in worker-a worker-a2 worker-b worker-b2 worker-c; do
  e2e_write_config "$PW_TMP/$w.conf" "worker.id=$w" "${common[@]}"
done
e2e_start_collectors
e2e_start_worker worker-a "$PW_TMP/worker-a.conf"
e2e_start_worker worker-b "$PW_TMP/worker-b.conf"

# The requests: one operation each, spread over every database and table and all four
# routes; every 50th is rejected (bad duration) and every 97th has no id (dead letter).
arm_t() { printf '{"subscriptionId":"%s","resourceGroup":"%s","cluster":"%s","database":"chaosdb%s"}' "$SUB" "$RG" "$CLUSTER" "$1"; }
tab_t() { printf '{"clusterUri":"%s","database":"chaosdb%s","table":"T%s"}' "$CLUSTER_URI" "$1" "$2"; }
reqs=$PW_TMP/requests.lines
: >"$reqs"
for i in $(seq 1 "$n"); do
  id=chaos-$i db=$((RANDOM % ndb)) tb=$((RANDOM % 4)) d=$((1 + RANDOM % 300))
  case $((i % 4)) in
    0) op="{\"kind\":\"database.retention\",\"target\":$(arm_t $db),\"softDeletePeriod\":\"P${d}D\"}" ;;
    1) op="{\"kind\":\"database.caching\",\"target\":$(arm_t $db),\"hotCachePeriod\":\"P$((d % 30 + 1))D\"}" ;;
    2) op="{\"kind\":\"table.caching\",\"target\":$(tab_t $db $tb),\"hotCachePeriod\":\"P$((d % 30 + 1))D\"}" ;;
    3) op="{\"kind\":\"table.retention\",\"target\":$(tab_t $db $tb),\"softDeletePeriod\":\"P${d}D\"}" ;;
  esac
  [ $((i % 50)) = 0 ] && op="{\"kind\":\"table.caching\",\"target\":$(tab_t $db $tb),\"hotCachePeriod\":\"P-1D\"}"
  if [ $((i % 97)) = 0 ]; then
    printf '%s\t%s\n' "$id" '{"schema":"adx-policy-request/v1","requestedBy":"chaos@contoso.com","operations":[]}' >>"$reqs"
  else
    printf '%s\t{"schema":"adx-policy-request/v1","id":"%s","requestedBy":"chaos@contoso.com","reason":"chaos","operations":[%s]}\n' \
      "$id" "$id" "$op" >>"$reqs"
  fi
done
jq -e -R 'split("\t")[1] | fromjson' "$reqs" >/dev/null || pw_fail "generated a request that is not JSON"
# send FROM TO: produce requests FROM..TO (line numbers) in the background.
batch=0
send() {
  batch=$((batch + 1))
  sed -n "$1,$2p" "$reqs" >"$PW_TMP/batch$batch.lines"
  PW_STDIN=$PW_TMP/batch$batch.lines pw_spawn "producer$batch" kcat -q -P -b "$KAFKA" \
    -t "$REQ_TOPIC" -K $'\t' -X message.timeout.ms=120000 -X enable.idempotence=true
}
third=$((n / 3))

# Azure faults for the whole run: throttling, unavailability, resets, some latency.
e2e_sim_faults '{"errorShare":{"429":0.04,"503":0.04},"resetShare":0.02,"latencyMs":20}'

# --- phase 1: Kafka request errors and a leader move ------------------------------------
send 1 "$third"
ctl request-errors Produce NOT_LEADER_FOR_PARTITION 4
ctl request-errors Fetch NOT_LEADER_FOR_PARTITION 3
ctl request-errors OffsetCommit COORDINATOR_NOT_AVAILABLE 3
ctl leader "$REPLY_TOPIC" 0 2
ctl leader "$REQ_TOPIC" 1 2
sleep 2
ctl request-errors Produce REQUEST_TIMED_OUT 3
ctl request-errors Produce _TRANSPORT 2
ctl rtt 2 200
pw_wait_until 60 grep -q '"event":"request.received"' "$PW_TMP/worker-a.err" ||
  pw_fail "worker-a took no request"

# --- phase 2: SIGKILL worker-a mid-run, second batch, restart -----------------------------
sleep 1
pw_stop worker-a KILL 30 || true
pw_log "worker-a killed"
send $((third + 1)) $((2 * third))
ctl rtt 2 0
ctl request-errors JoinGroup COORDINATOR_LOAD_IN_PROGRESS 2
ctl request-errors OffsetCommit REQUEST_TIMED_OUT 2
e2e_start_worker worker-a2 "$PW_TMP/worker-a2.conf"

# --- phase 3: a broker down for a while, leaders moving, SIGTERM worker-b -----------------
send $((2 * third + 1)) "$n"
ctl leader "$REQ_TOPIC" 0 2
ctl broker-down 2
sleep 2
ctl broker-up 2
ctl leader "$REPLY_TOPIC" 1 1
ctl leader "$REQ_TOPIC" 2 2
ctl request-errors Fetch _TRANSPORT 2
rc=0
pw_stop worker-b TERM 60 || rc=$?
[ "$rc" = 0 ] || pw_fail "worker-b exit status $rc after SIGTERM, expected 0"
grep -q '"event":"worker.drained"' "$PW_TMP/worker-b.err" || pw_fail "worker-b did not drain within its deadline"
e2e_start_worker worker-b2 "$PW_TMP/worker-b2.conf"
for b in $(seq 1 "$batch"); do
  pw_wait_exit "producer$b" 120 || pw_fail "kcat could not produce batch $b"
done
e2e_sim DELETE /_sim/faults >/dev/null

# --- every id has its terminal reply ---------------------------------------------------------
missing() {
  jq -r 'select(.payload | fromjson | .status | IN("succeeded", "failed", "rejected")) | .key' \
    "$PW_TMP/replies.out" 2>/dev/null | sort -u >"$PW_TMP/done.ids"
  cut -f1 "$reqs" | awk 'NR % 97 != 0' | sort -u | comm -23 - "$PW_TMP/done.ids" >"$PW_TMP/missing.ids"
  [ ! -s "$PW_TMP/missing.ids" ]
}
pw_wait_until 120 missing ||
  pw_fail "$(wc -l <"$PW_TMP/missing.ids") requests without a terminal reply, e.g. $(head -3 "$PW_TMP/missing.ids" | tr '\n' ' ')"
pw_log "every request has its terminal reply; $(jq -r '.payload | fromjson | .status' "$PW_TMP/replies.out" | sort | uniq -c | tr -s ' \n' ' ')"
e2e_worker_alive worker-a2
e2e_worker_alive worker-b2
for w in worker-a worker-a2 worker-b worker-b2; do
  if grep -q '"event":"worker.backpressure"' "$PW_TMP/$w.err"; then paused=1; fi
done
[ "${paused:-0}" = 1 ] || pw_fail "no worker paused its partitions at worker.inflight.max"
grep -q '"event":"kafka.resumed"' "$PW_TMP"/worker-*.err || pw_fail "no partition was resumed after a pause"

# --- clean shutdown of both; a new worker finds nothing left to redo -------------------------
for w in worker-a2 worker-b2; do
  rc=0
  pw_stop "$w" TERM 60 || rc=$?
  [ "$rc" = 0 ] || pw_fail "$w exit status $rc after SIGTERM, expected 0"
done
e2e_start_worker worker-c "$PW_TMP/worker-c.conf"
e2e_send_json chaos-sentinel "$(e2e_request chaos-sentinel "[{\"kind\":\"table.caching\",\"target\":$(tab_t 0 0),\"hotCachePeriod\":\"P1D\"}]" '{"dryRun":true}')"
e2e_wait_terminal chaos-sentinel 60 >/dev/null
redone=$(grep -c '"event":"request.received"\|"event":"request.deadletter"\|"event":"request.rejected"' "$PW_TMP/worker-c.err" || true)
[ "$redone" = 1 ] || pw_fail "after a clean shutdown worker-c took $((redone - 1)) messages again"
rc=0
pw_stop worker-c TERM 60 || rc=$?
[ "$rc" = 0 ] || pw_fail "worker-c exit status $rc after SIGTERM, expected 0"

# --- the invariants from the topics and the logs ---------------------------------------------
# Every worker has stopped, so the topics are final: read each one afresh to its end (the
# collectors may still be behind on a partition).
for t in "$REQ_TOPIC:requests" "$REPLY_TOPIC:replies-all" "$DLQ_TOPIC:dlq-all"; do
  pw_kcat_read_all "$KAFKA" "${t%%:*}" 60 >"$PW_TMP/${t##*:}.out" ||
    pw_fail "could not read ${t%%:*} back"
done
python3 "$(dirname "$0")/chaos_check.py" "$PW_TMP/requests.out" "$PW_TMP/replies-all.out" \
  "$PW_TMP/dlq-all.out" "$PW_TMP/worker-a.err" "+$PW_TMP/worker-a2.err" "+$PW_TMP/worker-b.err" \
  "+$PW_TMP/worker-b2.err" "+$PW_TMP/worker-c.err" || pw_fail "delivery invariants violated"
if grep -h '"level":"error"' "$PW_TMP"/worker-*.err | grep -v '"event":"kafka.log"' | grep -q .; then
  pw_fail "error lines in the worker logs: $(grep -h '"level":"error"' "$PW_TMP"/worker-*.err | head -5)"
fi
grep -l 'AddressSanitizer\|runtime error:' "$PW_TMP"/worker-*.err && pw_fail "sanitizer report in a worker log"
e2e_check_no_secret
pw_log PASS
