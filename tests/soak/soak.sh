#!/usr/bin/env bash
# tests/soak/soak.sh: a long fault-injection run of the whole stack on loopback, by hand
# (not part of `make test`).  SOAK_REQUESTS one-operation requests over SOAK_TARGETS
# databases and tables (all four routes), keyed by target, request k of a target setting
# P{k}D; SOAK_WORKERS workers in one group, SOAK_KILLS SIGKILLs of a random worker (each
# restarted), Kafka broker faults (request errors, leader moves, latency, a broker down),
# azure-sim answering 20% of ARM and Kusto calls with 429/500/503 for the whole run, and a
# token outage (login.microsoftonline.com 503) shorter than the operation deadline while
# tokens live 30 s.  Then tests/soak/soak_check.py reports, from the topics, the workers'
# logs and the simulator's request log and final state: requests without a terminal reply,
# out-of-order writes, wrong final values, requests failed by a fault their deadline covered
# (each must be 0) and the duplicate-terminal share (at most 5%); exit 1 otherwise.
#
# Env: SOAK_REQUESTS (5000), SOAK_TARGETS (200), SOAK_KILLS (10), SOAK_WORKERS (3),
#      SOAK_SECONDS (how long requests are produced; default 6 s per 100 requests, at least
#      30), SOAK_SETTLE (300: wait for the last terminal replies), SOAK_SEED,
#      SOAK_SMOKE=1 (a short check of the script: 200 requests, 40 targets, 2 kills),
#      PW_BIN_DIR (the binaries under test, default <repo>/build/bin, the Release tree of `make`), PW_TIMEOUT_SCALE.
# The temp dir is kept (PW_KEEP=0 removes it); the figures are in its soak.json.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
PW_KEEP=${PW_KEEP:-1}
SOAK_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../e2e/lib.sh
. "$SOAK_HERE/../e2e/lib.sh"
e2e_require
pw_require python3

if [ "${SOAK_SMOKE:-0}" = 1 ]; then
  : "${SOAK_REQUESTS:=200}" "${SOAK_TARGETS:=40}" "${SOAK_KILLS:=2}"
fi
n=${SOAK_REQUESTS:-5000}
ntargets=${SOAK_TARGETS:-200}
kills=${SOAK_KILLS:-10}
nworkers=${SOAK_WORKERS:-3}
secs=${SOAK_SECONDS:-$((n * 6 / 100 > 30 ? n * 6 / 100 : 30))}
settle=${SOAK_SETTLE:-300}
seed=${SOAK_SEED:-$$}
RANDOM=$seed
outage=15 # seconds of token outage; worker.operation.timeout.ms is 30 s
[ "$nworkers" -ge 2 ] || pw_fail "SOAK_WORKERS must be at least 2"
check() { python3 "$SOAK_HERE/soak_check.py" "$@"; }
pw_tmpdir >/dev/null
pw_log "soak: $n requests, $ntargets targets, $nworkers workers, $kills kills, ${secs}s of" \
  "production, seed $seed, binaries $PW_BIN_DIR, dir $PW_TMP"

# A bound on the whole run: it stops by itself (the EXIT trap kills what it started).
limit=$(pw__scale $((secs + settle + 600)))
pw_spawn watchdog python3 -c 'import os, signal, sys, time
time.sleep(int(sys.argv[1]))
print("soak: time limit %ss reached" % sys.argv[1], file=sys.stderr)
os.kill(int(sys.argv[2]), signal.SIGTERM)' "$limit" "$$"

pw_start kafka "$PW_BIN_DIR/kafka-mock" --brokers 2 --replication 2 --topic "$REQ_TOPIC:6" \
  --topic "$REPLY_TOPIC:2" --topic "$DLQ_TOPIC:1" --topic "$ALT_REPLY_TOPIC:1"
KAFKA=$(pw_first_line kafka)
KAFKA_CTL=$(pw_line kafka 2)
broker_faults=0
ctl() {
  if pw_kafka_ctl "$KAFKA_CTL" "$@" >/dev/null; then
    broker_faults=$((broker_faults + 1))
  else
    pw_log "kafka-mock refused: $*"
  fi
}
e2e_start_sim

# The soak's databases and tables (tokens live 30 s, ARM buckets out of the way: faults
# come from the fault document) and the requests.
e2e_sim_state >"$PW_TMP/default-state.json"
check gen "$PW_TMP/default-state.json" "$PW_TMP/soak-state.json" "$PW_TMP/requests.lines" \
  "$n" "$ntargets" "$seed"
e2e_sim PUT /_sim/state "@$PW_TMP/soak-state.json" >/dev/null ||
  pw_fail "azure-sim refused the soak state"
e2e_sim GET /_sim/settings | jq -e '.tokenLifetimeSeconds == 30' >/dev/null ||
  pw_fail "azure-sim did not take tokenLifetimeSeconds=30"
pw_spawn simlog python3 "$SOAK_HERE/soak_check.py" poll "$SIM" "$SIM_CA" "$PW_TMP/simlog.jsonl"

# Workers: slot s runs w<s>-0, then w<s>-1 after its first kill, ...
common=(worker.operation.timeout.ms=30000 worker.drain.timeout.ms=20000
  worker.reply.retry.backoff.ms=200 azure.attempts.max=60)
runs=()
declare -A slot_run=()
declare -A current=()
start_run() { # start_run SLOT: a new run in SLOT (not waiting: the timeline goes on)
  local s=$1 r=${slot_run[$1]:-0} name
  name=w$s-$r
  slot_run[$s]=$((r + 1))
  e2e_write_config "$PW_TMP/$name.conf" "worker.id=$name" "${common[@]}"
  pw_spawn "$name" "$PW_BIN_DIR/policy-worker" --config "$PW_TMP/$name.conf"
  runs+=("$name")
  current[$s]=$name
  pw_log "started $name (pid $(pw_pid "$name"))"
}
e2e_start_collectors
for s in $(seq 1 "$nworkers"); do start_run "$s"; done
for s in $(seq 1 "$nworkers"); do
  pw_wait_until 60 grep -q '"event":"kafka.assigned"' "$PW_TMP/${current[$s]}.err" ||
    pw_log "${current[$s]}: no partition assignment within 60s (scaled)"
done

# Azure faults for the whole run: 20% of ARM and Kusto answers are 429/500/503.
e2e_sim_faults "$(jq -cn --arg k "${CLUSTER_URI#https://}" \
  '{errorShare: {"429": 0.07, "500": 0.06, "503": 0.07}, hosts: ["management.azure.com", $k]}')"

# The timeline, in milliseconds from the start of production: "MS ACTION [ARGS]" lines.
ms=$((secs * 1000))
{
  for i in $(seq 0 $((kills - 1))); do echo "$((ms * (2 * i + 1) / (2 * kills))) kill"; done
  echo "$((ms * 10 / 100)) ctl request-errors Produce NOT_LEADER_FOR_PARTITION 4"
  echo "$((ms * 10 / 100)) ctl request-errors Fetch NOT_LEADER_FOR_PARTITION 3"
  echo "$((ms * 10 / 100)) ctl request-errors OffsetCommit COORDINATOR_NOT_AVAILABLE 3"
  echo "$((ms * 12 / 100)) ctl leader $REPLY_TOPIC 0 2"
  echo "$((ms * 12 / 100)) ctl leader $REQ_TOPIC 1 2"
  echo "$((ms * 20 / 100)) ctl request-errors Produce REQUEST_TIMED_OUT 3"
  echo "$((ms * 20 / 100)) ctl request-errors Produce _TRANSPORT 2"
  echo "$((ms * 22 / 100)) ctl rtt 2 200"
  echo "$((ms * 32 / 100)) ctl rtt 2 0"
  echo "$((ms * 32 / 100)) ctl request-errors JoinGroup COORDINATOR_LOAD_IN_PROGRESS 2"
  echo "$((ms * 32 / 100)) ctl request-errors OffsetCommit REQUEST_TIMED_OUT 2"
  echo "$((ms * 40 / 100)) token-down"
  echo "$((ms * 40 / 100 + outage * 1000)) token-up"
  echo "$((ms * 60 / 100)) ctl leader $REQ_TOPIC 0 2"
  echo "$((ms * 60 / 100)) ctl broker-down 2"
  echo "$((ms * 60 / 100 + 2000)) ctl broker-up 2"
  echo "$((ms * 70 / 100)) ctl leader $REPLY_TOPIC 1 1"
  echo "$((ms * 70 / 100)) ctl leader $REQ_TOPIC 2 2"
  echo "$((ms * 70 / 100)) ctl request-errors Fetch _TRANSPORT 2"
  echo "$((ms * 80 / 100)) ctl request-errors Heartbeat COORDINATOR_NOT_AVAILABLE 2"
} | sort -n -s -k1,1 >"$PW_TMP/timeline"

# Partitions 3-5 of the request topic stay on broker 1 (the producer always has a broker
# up; it runs with -E, kcat otherwise gives up when every broker it knows is down).
for p in 3 4 5; do ctl leader "$REQ_TOPIC" "$p" 1; done

now_ms() { local t=${EPOCHREALTIME/,/.}; echo $((${t%.*} * 1000 + 10#${t#*.} / 1000)); }
t0=$(now_ms)
PW_STDIN=/dev/null pw_spawn producer bash -c "python3 '$SOAK_HERE/soak_check.py' pace \
  '$PW_TMP/requests.lines' '$secs' | kcat -q -E -P -b '$KAFKA' -t '$REQ_TOPIC' -K \$'\t' \
  -X message.timeout.ms=600000 -X enable.idempotence=true"

killed=0
token_down_at=
while read -r -u 3 at action args; do
  wait_ms=$((t0 + at - $(now_ms)))
  [ "$wait_ms" -le 0 ] || sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"
  case $action in
    kill)
      s=$((RANDOM % nworkers + 1))
      pw_stop "${current[$s]}" KILL 30 || true
      killed=$((killed + 1))
      pw_log "kill $killed/$kills: ${current[$s]}"
      sleep 1
      start_run "$s"
      ;;
    ctl)
      # shellcheck disable=SC2086 # args are words
      ctl $args
      ;;
    token-down)
      token_down_at=$(now_ms)
      e2e_sim PATCH /_sim/faults \
        '{"failNext":[{"count":1000000,"status":503,"host":"login.microsoftonline.com"}]}' \
        >/dev/null || pw_fail "azure-sim refused the token outage"
      pw_log "token endpoint down"
      ;;
    token-up)
      # at least $outage s after it actually went down, whatever delayed the timeline
      wait_ms=$((token_down_at + outage * 1000 - $(now_ms)))
      [ "$wait_ms" -le 0 ] || sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"
      e2e_sim PATCH /_sim/faults '{"failNext":[]}' >/dev/null ||
        pw_fail "azure-sim refused to end the token outage"
      pw_log "token endpoint up after $(($(now_ms) - token_down_at)) ms"
      ;;
  esac
done 3<"$PW_TMP/timeline"

rc=0
pw_wait_exit producer "$((secs + 300))" || rc=$?
if [ "$rc" != 0 ]; then
  # The run is void: which requests reached the topic, and in which order, is unknown.
  pw_log "soak: FAIL: the producer exited with status $rc: $(grep -v Traceback "$PW_TMP/producer.err" | head -3)"
  pw_log "logs in $PW_TMP"
  exit 1
fi
pw_log "all $n requests produced after $((($(now_ms) - t0) / 1000))s"
left() { [ "$(check missing "$PW_TMP/requests.lines" "$PW_TMP/replies.out")" = 0 ]; }
# Poll gently: the machine is shared and the reply file is large.
settled=0
deadline=$(($(now_ms) + $(pw__scale "$settle") * 1000))
while [ "$(now_ms)" -lt "$deadline" ]; do
  if left; then settled=1; break; fi
  sleep 3
done
elapsed=$((($(now_ms) - t0) / 1000))
[ "$settled" = 1 ] || pw_log "requests still without a terminal reply after ${settle}s (scaled)"
pw_log "terminal replies settled=$settled after ${elapsed}s"
e2e_sim DELETE /_sim/faults >/dev/null

# Stop the workers cleanly; a run that exits 0 after worker.drained drained completely.
declare -A drained=()
for s in $(seq 1 "$nworkers"); do
  name=${current[$s]}
  rc=0
  pw_stop "$name" TERM 60 || rc=$?
  if [ "$rc" = 0 ] && grep -q '"event":"worker.drained"' "$PW_TMP/$name.err"; then
    drained[$name]=1
  else
    pw_log "$name: exit status $rc after SIGTERM"
  fi
done
pw_stop simlog TERM 60 || pw_log "the request-log poller did not stop cleanly"
e2e_sim_state >"$PW_TMP/final-state.json"
pw_kcat_consume_n "$KAFKA" "$REQ_TOPIC" "$n" 120 >"$PW_TMP/requests.out" ||
  pw_fail "could not read the request topic back"
sleep 1 # the collectors have seen everything the workers flushed

runs_json=$(for r in "${runs[@]}"; do
  jq -cn --arg n "$r" --argjson d "${drained[$r]:-0}" '{name: $n, drained: ($d == 1)}'
done | jq -cs .)
jq -n --argjson n "$n" --argjson t "$ntargets" --argjson k "$killed" --argjson s "$secs" \
  --argjson e "$elapsed" --argjson runs "$runs_json" --argjson bf "$broker_faults" \
  --arg seed "$seed" --arg bin "$PW_BIN_DIR" \
  '{requests: $n, targets: $t, kills: $k, seconds: $s, elapsed: $e, runs: $runs,
    broker_faults: $bf, seed: $seed, bin_dir: $bin}' >"$PW_TMP/meta.json"
rc=0
check report "$PW_TMP" || rc=$?
echo "kafka-mock commands applied: $broker_faults"
if grep -l 'AddressSanitizer\|runtime error:' "$PW_TMP"/w*-*.err; then
  pw_log "sanitizer report in a worker log"
  rc=1
fi
pw_log "soak: $([ "$rc" = 0 ] && echo PASS || echo FAIL); logs and figures in $PW_TMP"
exit "$rc"
