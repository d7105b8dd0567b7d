#!/usr/bin/env bash
# bench/e2e/run.sh [BUILD_DIR]: end-to-end throughput and latency of policy-worker through
# kafka-mock and azure-sim, side by side with the naive approach it replaces (one change at a
# time: bench/e2e/naive.sh, a sequential curl script).  See bench/e2e/README.md.
#
# Env: BENCH_N (requests, default 500), BENCH_DATABASES (default 50; 4 tables each),
#      BENCH_INFLIGHT (the worker's worker.inflight.max, default 1000),
#      BENCH_NAIVE=0 skips the one-at-a-time run, BENCH_NAIVE_N (default BENCH_N),
#      BENCH_LRO_MS (the simulator's long-running operation duration, default 200).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build-bench}" && pwd)
export PW_BIN_DIR=$build/bin PW_SOURCE_DIR=$src E2E_LOG_LEVEL=info
# shellcheck source=../../tests/e2e/lib.sh
. "$src/tests/e2e/lib.sh"
e2e_require
n=${BENCH_N:-500}
ndb=${BENCH_DATABASES:-50}
lro=${BENCH_LRO_MS:-200}

pw_tmpdir >/dev/null
e2e_start_sim
# Many databases of four tables; the simulator's ARM and Kusto throttles opened wide so that
# the figures measure the worker, not the simulator's rate limits.
state=$(e2e_sim_state | jq -c --argjson n "$ndb" --argjson lro "$lro" '
  .subscriptions[0].resourceGroups[0].clusters[0].databases as $d
  | .subscriptions[0].resourceGroups[0].clusters[0].databases =
      [range($n) as $i | $d[0] + {name: ("benchdb\($i)"),
        tables: [range(4) as $t | {name: "T\($t)", policies: {}}]}]
  | .settings += {lroDurationMs: $lro, lroRetryAfterSeconds: 0, armWriteBucket: 1000000,
                  armWriteRefillPerSecond: 1000000, armReadBucket: 1000000,
                  armReadRefillPerSecond: 1000000, kustoMaxConcurrent: 1000}')
e2e_sim PUT /_sim/state "$state" >/dev/null || pw_fail "azure-sim refused the bench state"

# gen PREFIX COUNT: COUNT requests, one operation each, cycling through database retention
# and caching (ARM, long-running) and table caching and retention (Kusto) over every
# database and table.
gen() {
  awk -v p="$1" -v n="$2" -v ndb="$ndb" -v sid="$SUB" -v rg="$RG" -v cl="$CLUSTER" -v uri="$CLUSTER_URI" 'BEGIN {
    for (i = 1; i <= n; i++) {
      db = "benchdb" (i % ndb); t = "T" (int(i / ndb) % 4); d = 1 + i % 300
      arm = sprintf("{\"subscriptionId\":\"%s\",\"resourceGroup\":\"%s\",\"cluster\":\"%s\",\"database\":\"%s\"}", sid, rg, cl, db)
      tab = sprintf("{\"clusterUri\":\"%s\",\"database\":\"%s\",\"table\":\"%s\"}", uri, db, t)
      k = i % 4
      if (k == 0) op = sprintf("{\"kind\":\"database.retention\",\"target\":%s,\"softDeletePeriod\":\"P%dD\"}", arm, d)
      if (k == 1) op = sprintf("{\"kind\":\"table.caching\",\"target\":%s,\"hotCachePeriod\":\"P%dD\"}", tab, d % 30 + 1)
      if (k == 2) op = sprintf("{\"kind\":\"database.caching\",\"target\":%s,\"hotCachePeriod\":\"P%dD\"}", arm, d % 30 + 1)
      if (k == 3) op = sprintf("{\"kind\":\"table.retention\",\"target\":%s,\"softDeletePeriod\":\"P%dD\"}", tab, d)
      id = p "-" i
      printf "%s\t{\"schema\":\"adx-policy-request/v1\",\"id\":\"%s\",\"requestedBy\":\"bench@contoso.com\",\"reason\":\"bench\",\"operations\":[%s]}\n", id, id, op
    }
  }'
}

# run NAME INFLIGHT COUNT: one worker, COUNT requests produced at once; prints
# "rate p50 p99 succeeded" from the request and reply timestamps (both set on this host).
run() {
  local name=$1 inflight=$2 count=$3 group=bench-$1
  shift 3
  # A fresh broker per run: each run sees only its own requests.
  pw_start "kafka-$name" "$PW_BIN_DIR/kafka-mock" --brokers 1 --topic "$REQ_TOPIC:8" \
    --topic "$REPLY_TOPIC:4" --topic "$DLQ_TOPIC:1" --topic "$ALT_REPLY_TOPIC:1" >&2
  KAFKA=$(pw_first_line "kafka-$name")
  E2E_GROUP=$group e2e_write_config "$PW_TMP/$name.conf" "worker.id=$name" \
    "worker.inflight.max=$inflight" worker.operation.timeout.ms=600000 "$@"
  e2e_start_worker "$name" "$PW_TMP/$name.conf"
  gen "$name" "$count" >"$PW_TMP/$name.lines"
  pw_kcat_produce "$KAFKA" "$REQ_TOPIC" -K $'\t' <"$PW_TMP/$name.lines" ||
    pw_fail "could not produce the $name requests"
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

printf 'bench: %s requests (1/4 each: database.retention and database.caching through ARM,\n' "$n"
printf '       table.caching and table.retention through Kusto) on %s databases x 4 tables;\n' "$ndb"
printf '       azure-sim lroDurationMs=%s lroRetryAfterSeconds=0, throttles off; build %s\n' "$lro" "$build"
run worker "${BENCH_INFLIGHT:-1000}" "$n" >"$PW_TMP/worker.result"
read -r w_rate w_p50 w_p99 w_ok w_n <"$PW_TMP/worker.result"
if [ "${BENCH_NAIVE:-1}" != 0 ]; then
  pw_log "naive: ${BENCH_NAIVE_N:-$n} changes one at a time with curl"
  bash "$here/naive.sh" "$SIM_PORT" "$SIM_CA" "${BENCH_NAIVE_N:-$n}" "$ndb" >"$PW_TMP/naive.result" ||
    pw_fail "the naive script failed"
  read -r s_rate s_p50 s_p99 s_ok s_n <"$PW_TMP/naive.result"
fi
echo
printf '%-34s %9s %12s %12s %12s\n' approach requests 'req/s' 'p50 ms' 'p99 ms'
printf '%-34s %9s %12.1f %12d %12d   (%s succeeded)\n' "policy-worker (inflight.max=${BENCH_INFLIGHT:-1000})" \
  "$w_n" "$w_rate" "$w_p50" "$w_p99" "$w_ok"
if [ "${BENCH_NAIVE:-1}" != 0 ]; then
  printf '%-34s %9s %12.1f %12d %12d   (%s succeeded)\n' "one at a time (curl script)" \
    "$s_n" "$s_rate" "$s_p50" "$s_p99" "$s_ok"
  awk -v a="$w_rate" -v b="$s_rate" 'BEGIN { if (b > 0) printf "speed-up: %.1fx requests/second\n", a / b }'
fi
