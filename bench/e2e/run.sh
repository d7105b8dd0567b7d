#!/usr/bin/env bash
# bench/e2e/run.sh [BUILD_DIR]: end-to-end throughput and latency of policy-worker through
# kafka-mock and azure-sim, side by side with the naive approach it replaces (one change at a
# time: bench/e2e/naive.sh, a sequential curl script).  See bench/e2e/README.md.
#
# Env: BENCH_WORKLOAD: mix (default, below), issue (issue 10's workload: 2,000 requests over
#      200 targets, 50 ms added to every call) or sustained (200 requests/s of Kusto changes
#      produced at that rate for BENCH_SECONDS, 50 ms added to every call: p99 produce ->
#      terminal); README.md says what each sends.
#      BENCH_N (requests, default 500; issue: 2000), BENCH_DATABASES (default 50; 4 tables each),
#      BENCH_INFLIGHT (the worker's worker.inflight.max, default 1000),
#      BENCH_NAIVE=0 skips the one-at-a-time run, BENCH_NAIVE_N (default BENCH_N; issue: 300),
#      BENCH_LRO_MS (the simulator's long-running operation duration, default 200),
#      BENCH_RATE and BENCH_SECONDS (sustained: 200 and 30), BENCH_LATENCY_MS (issue and
#      sustained: 50), BENCH_BASE_BIN (the bin/ of another build, e.g. main's: its worker is run
#      on the same workload as one more row, before beside after), BENCH_PERF=FILE (perf record
#      -g of each worker run into FILE.<run>).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build-bench}" && pwd)
export PW_BIN_DIR=$build/bin PW_SOURCE_DIR=$src E2E_LOG_LEVEL=info
# shellcheck source=../../tests/e2e/lib.sh
. "$src/tests/e2e/lib.sh"
e2e_require
workload=${BENCH_WORKLOAD:-mix} rate=${BENCH_RATE:-200} secs=${BENCH_SECONDS:-30}
case $workload in
  mix) n=${BENCH_N:-500} naive_n=${BENCH_NAIVE_N:-${BENCH_N:-500}} latency=0 ;;
  issue) n=${BENCH_N:-2000} naive_n=${BENCH_NAIVE_N:-300} latency=${BENCH_LATENCY_MS:-50} ;;
  sustained)
    rate=${BENCH_RATE:-200} secs=${BENCH_SECONDS:-30}
    n=$((rate * secs)) naive_n=0 latency=${BENCH_LATENCY_MS:-50} ;;
  *) pw_fail "BENCH_WORKLOAD: mix, issue or sustained" ;;
esac
[ "$workload" != sustained ] || BENCH_NAIVE=0
ndb=${BENCH_DATABASES:-50}
[ "$workload" != issue ] || ndb=100 # 100 databases and one table of each: 200 targets
lro=${BENCH_LRO_MS:-200}

pw_tmpdir >/dev/null
e2e_start_sim
# Many databases of four tables (issue: 100 databases of one table; sustained: 4 clusters of
# 10 databases of 5 tables); the simulator's ARM and Kusto throttles opened wide so that the
# figures measure the worker, not the simulator's rate limits.
state=$(e2e_sim_state | jq -c --arg w "$workload" --argjson n "$ndb" --argjson lro "$lro" '
  .subscriptions[0].resourceGroups[0].clusters[0] as $c
  | ($c.databases[0] + {tables: []}) as $d
  | .subscriptions[0].resourceGroups[0].clusters =
      (if $w == "sustained" then
         [range(4) as $k | $c + {name: "benchc\($k)", uri: "https://benchc\($k).westus.kusto.windows.net",
            databases: [range(10) as $i | $d + {name: "benchdb\($i)",
              tables: [range(5) as $t | {name: "T\($t)", policies: {}}]}]}]
       else
         [$c + {databases: [range($n) as $i | $d + {name: ("benchdb\($i)"),
            tables: [range(if $w == "issue" then 1 else 4 end) as $t | {name: "T\($t)", policies: {}}]}]}]
       end)
  | .settings += {lroDurationMs: $lro, lroRetryAfterSeconds: 0, armWriteBucket: 1000000,
                  armWriteRefillPerSecond: 1000000, armReadBucket: 1000000,
                  armReadRefillPerSecond: 1000000, kustoMaxConcurrent: 1000}')
printf '%s' "$state" >"$PW_TMP/state.json"
reset_sim() { # the same starting values for every run; latency on every call
  e2e_sim PUT /_sim/state "@$PW_TMP/state.json" >/dev/null || pw_fail "azure-sim refused the bench state"
  e2e_sim PUT /_sim/faults "{\"latencyMs\": $latency}" >/dev/null || pw_fail "azure-sim refused the faults"
}

# gen PREFIX COUNT: COUNT requests, one operation each.
# mix: cycling through database retention and caching (ARM, long-running) and table caching
# and retention (Kusto) over every database and table.
# issue: request i on target i % 200: even targets are the databases benchdb0-99 (ARM:
# caching, then retention, alternately), odd ones the table T0 of each (Kusto: caching, then
# retention); each request sets a value its target does not have yet.
# sustained: table caching and retention alternately over 4 clusters x 10 databases x 5 tables.
gen() {
  awk -v p="$1" -v n="$2" -v w="$workload" -v ndb="$ndb" -v sid="$SUB" -v rg="$RG" -v cl="$CLUSTER" -v uri="$CLUSTER_URI" 'BEGIN {
    for (i = 1; i <= n; i++) {
      if (w == "issue") {
        tg = i % 200; round = int(i / 200); d = 1 + round
        db = "benchdb" int(tg / 2)
        arm = sprintf("{\"subscriptionId\":\"%s\",\"resourceGroup\":\"%s\",\"cluster\":\"%s\",\"database\":\"%s\"}", sid, rg, cl, db)
        tab = sprintf("{\"clusterUri\":\"%s\",\"database\":\"%s\",\"table\":\"T0\"}", uri, db)
        if (tg % 2 == 0 && round % 2 == 0) op = sprintf("{\"kind\":\"database.caching\",\"target\":%s,\"hotCachePeriod\":\"P%dD\"}", arm, d)
        if (tg % 2 == 0 && round % 2 == 1) op = sprintf("{\"kind\":\"database.retention\",\"target\":%s,\"softDeletePeriod\":\"P%dD\"}", arm, d)
        if (tg % 2 == 1 && round % 2 == 0) op = sprintf("{\"kind\":\"table.caching\",\"target\":%s,\"hotCachePeriod\":\"P%dD\"}", tab, d)
        if (tg % 2 == 1 && round % 2 == 1) op = sprintf("{\"kind\":\"table.retention\",\"target\":%s,\"softDeletePeriod\":\"P%dD\"}", tab, d)
      } else if (w == "sustained") {
        tg = i % 200; d = 1 + int(i / 200) % 300
        tab = sprintf("{\"clusterUri\":\"https://benchc%d.westus.kusto.windows.net\",\"database\":\"benchdb%d\",\"table\":\"T%d\"}", tg % 4, int(tg / 4) % 10, int(tg / 40))
        if (i % 2 == 0) op = sprintf("{\"kind\":\"table.caching\",\"target\":%s,\"hotCachePeriod\":\"P%dD\"}", tab, d)
        else op = sprintf("{\"kind\":\"table.retention\",\"target\":%s,\"softDeletePeriod\":\"P%dD\"}", tab, d)
      } else {
        db = "benchdb" (i % ndb); t = "T" (int(i / ndb) % 4); d = 1 + i % 300
        arm = sprintf("{\"subscriptionId\":\"%s\",\"resourceGroup\":\"%s\",\"cluster\":\"%s\",\"database\":\"%s\"}", sid, rg, cl, db)
        tab = sprintf("{\"clusterUri\":\"%s\",\"database\":\"%s\",\"table\":\"%s\"}", uri, db, t)
        k = i % 4
        if (k == 0) op = sprintf("{\"kind\":\"database.retention\",\"target\":%s,\"softDeletePeriod\":\"P%dD\"}", arm, d)
        if (k == 1) op = sprintf("{\"kind\":\"table.caching\",\"target\":%s,\"hotCachePeriod\":\"P%dD\"}", tab, d % 30 + 1)
        if (k == 2) op = sprintf("{\"kind\":\"database.caching\",\"target\":%s,\"hotCachePeriod\":\"P%dD\"}", arm, d % 30 + 1)
        if (k == 3) op = sprintf("{\"kind\":\"table.retention\",\"target\":%s,\"softDeletePeriod\":\"P%dD\"}", tab, d)
      }
      id = p "-" i
      printf "%s\t{\"schema\":\"adx-policy-request/v1\",\"id\":\"%s\",\"requestedBy\":\"bench@contoso.com\",\"reason\":\"bench\",\"operations\":[%s]}\n", id, id, op
    }
  }'
}

# paced RATE: copies stdin to stdout at RATE lines per second (in 20 ms steps).
paced() {
  python3 -c '
import sys, time
rate = float(sys.argv[1]); lines = sys.stdin.readlines(); t0 = time.monotonic(); i = 0
while i < len(lines):
    due = int((time.monotonic() - t0) * rate) + 1
    while i < min(due, len(lines)):
        sys.stdout.write(lines[i]); i += 1
    sys.stdout.flush(); time.sleep(0.02)
' "$1"
}

# run NAME INFLIGHT COUNT [CONFIG-LINES...]: one worker, COUNT requests produced at once (or
# at BENCH_RATE for sustained); prints "rate p50 p99 succeeded count" from the request and
# reply timestamps (both set on this host).
run() {
  local name=$1 inflight=$2 count=$3 group=bench-$1
  shift 3
  reset_sim
  # A fresh broker per run: each run sees only its own requests.
  pw_start "kafka-$name" "$PW_BIN_DIR/kafka-mock" --brokers 1 --topic "$REQ_TOPIC:8" \
    --topic "$REPLY_TOPIC:4" --topic "$DLQ_TOPIC:1" --topic "$ALT_REPLY_TOPIC:1" >&2
  KAFKA=$(pw_first_line "kafka-$name")
  E2E_GROUP=$group e2e_write_config "$PW_TMP/$name.conf" "worker.id=$name" \
    "worker.inflight.max=$inflight" worker.operation.timeout.ms=600000 "$@"
  e2e_start_worker "$name" "$PW_TMP/$name.conf"
  local perf_pid=
  if [ -n "${BENCH_PERF:-}" ]; then # profile the worker: perf record -g into $BENCH_PERF.<name>
    perf record -q -F 999 --call-graph dwarf,16384 -p "$(pw_pid "$name")" -o "$BENCH_PERF.$name" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  gen "$name" "$count" >"$PW_TMP/$name.lines"
  if [ "$workload" = sustained ]; then
    paced "$rate" <"$PW_TMP/$name.lines" | pw_kcat_produce "$KAFKA" "$REQ_TOPIC" -K $'\t' -X linger.ms=5 ||
      pw_fail "could not produce the $name requests"
  else
    pw_kcat_produce "$KAFKA" "$REQ_TOPIC" -K $'\t' <"$PW_TMP/$name.lines" ||
      pw_fail "could not produce the $name requests"
  fi
  pw_log "$name: $count requests produced; waiting for their terminal replies"
  local done_n=0 deadline=$((SECONDS + 3600))
  while [ "$done_n" -lt "$count" ]; do
    [ $SECONDS -lt $deadline ] || pw_fail "$name: only $done_n of $count terminal replies"
    sleep 1
    timeout 60 kcat -q -C -b "$KAFKA" -t "$REPLY_TOPIC" -o beginning -e -J >"$PW_TMP/replies.json" 2>/dev/null || true
    done_n=$(jq -r --arg p "$name-" 'select(.key | startswith($p)) | .payload | fromjson |
      select(.status | IN("succeeded", "failed", "rejected")) | .requestId' "$PW_TMP/replies.json" | sort -u | wc -l)
  done
  timeout 60 kcat -q -C -b "$KAFKA" -t "$REQ_TOPIC" -o beginning -e -J >"$PW_TMP/requests.json" 2>/dev/null || true
  cp "$PW_TMP/replies.json" "$PW_TMP/$name.replies.json"
  # the worker's CPU time (user + system, clock ticks) and its log lines, per request
  local ticks lines
  ticks=$(awk '{print $14 + $15}' "/proc/$(pw_pid "$name")/stat" 2>/dev/null || echo 0)
  lines=$(wc -l <"$PW_TMP/$name.err")
  pw_log "$name: CPU $(awk -v t="$ticks" -v n="$count" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t * 1000 / hz / n }') ms a request, $(awk -v l="$lines" -v n="$count" 'BEGIN { printf "%.1f", l / n }') log lines a request"
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null || true; fi
  pw_stop "$name" TERM 60 >/dev/null || true
  pw_stop "kafka-$name" TERM 30 >/dev/null || true
  jq -n -r --arg p "$name-" --slurpfile rq "$PW_TMP/requests.json" --slurpfile rp "$PW_TMP/replies.json" '
    ([$rq[] | select(.key | startswith($p)) | {key: .key, value: .ts}] | from_entries) as $sent
    | [$rp[] | select(.key | startswith($p)) | {key, ts, ev: (.payload | fromjson)}
       | select(.ev.status | IN("succeeded", "failed", "rejected"))]
    | group_by(.key) | map(min_by(.ts)) as $term
    | ($term | map(.ts - $sent[.key]) | sort) as $lat
    | ($sent | [.[]] | min) as $t0 | ($term | map(.ts) | max) as $t1
    | def pct(q): $lat[((($lat | length) - 1) * q | floor)];
      [($term | length) * 1000 / ([($t1 - $t0), 1] | max), pct(0.5), pct(0.99),
       ($term | map(select(.ev.status == "succeeded")) | length), ($term | length)]
    | @tsv'
}

# The worker's own budgets follow the simulator's (opened wide) in the mix and issue
# workloads: ARM buckets and the Kusto limit off.  sustained runs the defaults.
conf=()
[ "$workload" = sustained ] ||
  conf=(azure.arm.writes.burst=0 azure.arm.reads.burst=0 azure.kusto.concurrent.max=0)
# shellcheck disable=SC2206 # BENCH_CONF: more config lines for both runs, split at spaces
conf+=(${BENCH_CONF:-})
case $workload in
  mix)
    printf 'bench: %s requests (1/4 each: database.retention and database.caching through ARM,\n' "$n"
    printf '       table.caching and table.retention through Kusto) on %s databases x 4 tables;\n' "$ndb"
    printf '       azure-sim lroDurationMs=%s lroRetryAfterSeconds=0, throttles off; build %s\n' "$lro" "$build" ;;
  issue)
    printf 'bench issue: %s requests over 200 targets (100 databases through ARM: caching and\n' "$n"
    printf '       retention; 100 tables through Kusto: caching and retention), 10 a target;\n'
    printf '       azure-sim +%s ms on every call, lroDurationMs=%s, throttles off; build %s\n' "$latency" "$lro" "$build" ;;
  sustained)
    printf 'bench sustained: %s requests/s for %s s (%s requests) of table caching/retention over\n' "$rate" "$secs" "$n"
    printf '       4 clusters x 10 databases x 5 tables; azure-sim +%s ms on every call; worker\n' "$latency"
    printf '       defaults (kusto.concurrent.max 8 a cluster); build %s\n' "$build" ;;
esac
run worker "${BENCH_INFLIGHT:-1000}" "$n" ${conf[@]+"${conf[@]}"} >"$PW_TMP/worker.result"
read -r w_rate w_p50 w_p99 w_ok w_n <"$PW_TMP/worker.result"
if [ -n "${BENCH_BASE_BIN:-}" ]; then
  PW_BIN_DIR=$(cd "$BENCH_BASE_BIN" && pwd) run base "${BENCH_INFLIGHT:-1000}" "$n" \
    ${conf[@]+"${conf[@]}"} >"$PW_TMP/base.result"
  read -r b_rate b_p50 b_p99 b_ok b_n <"$PW_TMP/base.result"
fi
if [ "${BENCH_NAIVE:-1}" != 0 ]; then
  pw_log "naive: $naive_n changes one at a time with curl"
  reset_sim
  bash "$here/naive.sh" "$SIM_PORT" "$SIM_CA" "$naive_n" "$ndb" "$workload" >"$PW_TMP/naive.result" ||
    pw_fail "the naive script failed"
  read -r s_rate s_p50 s_p99 s_ok s_n <"$PW_TMP/naive.result"
fi
echo
printf '%-34s %9s %12s %12s %12s\n' approach requests 'req/s' 'p50 ms' 'p99 ms'
printf '%-34s %9s %12.1f %12d %12d   (%s succeeded)\n' "policy-worker (inflight.max=${BENCH_INFLIGHT:-1000})" \
  "$w_n" "$w_rate" "$w_p50" "$w_p99" "$w_ok"
[ -z "${BENCH_BASE_BIN:-}" ] ||
  printf '%-34s %9s %12.1f %12d %12d   (%s succeeded)\n' "  the same, $BENCH_BASE_BIN" \
    "$b_n" "$b_rate" "$b_p50" "$b_p99" "$b_ok"
if [ "${BENCH_NAIVE:-1}" != 0 ]; then
  printf '%-34s %9s %12.1f %12d %12d   (%s succeeded)\n' "one at a time (curl script)" \
    "$s_n" "$s_rate" "$s_p50" "$s_p99" "$s_ok"
  awk -v a="$w_rate" -v b="$s_rate" 'BEGIN { if (b > 0) printf "speed-up: %.1fx requests/second\n", a / b }'
  [ -z "${BENCH_BASE_BIN:-}" ] ||
    awk -v a="$b_rate" -v b="$s_rate" 'BEGIN { if (b > 0) printf "speed-up of the other build: %.1fx\n", a / b }'
fi
