#!/usr/bin/env bash
# bench/bulk.sh [BUILD_DIR]: bulk rollouts through the whole worker (kafka-mock, policy-worker,
# azure-sim at its default throttles), each side by side with its baseline in one run:
#   arm       1,000 database.caching writes over 1,000 databases (ARM, long-running), against
#             azure-sim's default ARM buckets (200 writes refilled 10/s): elapsed beside the
#             ideal ((N - 200) / 10 s), 429s, failures; baseline: client pacing off
#             (azure.arm.writes.burst=0, azure.arm.reads.burst=0).
#   coalesce  1,000 table.caching changes over 4 databases x 250 tables (two values), Kusto
#             commands of 50 ms (kustoCommandLatencyMs) at the default 8 per cluster: Kusto
#             write commands sent and elapsed; baseline: worker.coalesce.max=1.
# Env: BENCH_MODES (default "arm coalesce"), BENCH_N (default 1000), BENCH_BASE_BIN (a bin/
# directory of another build, e.g. main's: its default run is one more row of the same table,
# "before" beside "after"), BENCH_BASELINES=0 (skip the pacing-off / coalesce.max=1 rows),
# BENCH_KEEP=DIR (keep each run's requests, replies, simulator log and worker log there).
# Not part of make test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd) # `make`: Release, no sanitizers
export PW_BIN_DIR=$build/bin PW_SOURCE_DIR=$src E2E_LOG_LEVEL=info
# shellcheck source=../tests/e2e/lib.sh
. "$src/tests/e2e/lib.sh"
e2e_require
n=${BENCH_N:-1000}
pw_tmpdir >/dev/null

# state MODE: the simulator's state for a mode (its default throttles kept).
state() {
  e2e_sim_state | jq -c --arg mode "$1" --argjson n "$n" '
    .subscriptions[0].resourceGroups[0].clusters[0].databases as $d
    | .subscriptions[0].resourceGroups[0].clusters[0].databases =
        (if $mode == "arm" then [range($n) as $i | $d[0] + {name: "bulkdb\($i)"}]
         else [range(4) as $i | $d[0] + {name: "bulkdb\($i)",
                tables: [range(250) as $t | {name: "T\($t)", columns: ["A"]}]}] end)
    | .settings += {lroDurationMs: 200, lroRetryAfterSeconds: 1, kustoCommandLatencyMs: 50}'
}

gen() { # PREFIX MODE
  awk -v p="$1" -v mode="$2" -v n="$n" -v sid="$SUB" -v rg="$RG" -v cl="$CLUSTER" -v uri="$CLUSTER_URI" 'BEGIN {
    for (i = 0; i < n; i++) {
      if (mode == "arm") {
        op = sprintf("{\"kind\":\"database.caching\",\"target\":{\"subscriptionId\":\"%s\",\"resourceGroup\":\"%s\",\"cluster\":\"%s\",\"database\":\"bulkdb%d\"},\"hotCachePeriod\":\"P7D\"}", sid, rg, cl, i)
      } else {
        op = sprintf("{\"kind\":\"table.caching\",\"target\":{\"clusterUri\":\"%s\",\"database\":\"bulkdb%d\",\"table\":\"T%d\"},\"hotCachePeriod\":\"P%dD\"}", uri, i % 4, int(i / 4) % 250, 3 + (i % 2))
      }
      id = p "-" i
      printf "%s\t{\"schema\":\"adx-policy-request/v1\",\"id\":\"%s\",\"requestedBy\":\"bench@contoso.com\",\"operations\":[%s]}\n", id, id, op
    }
  }'
}

# run NAME MODE [CONFIG-LINES...]: prints "elapsed_s succeeded failed writes throttled reads"
run() {
  local name=$1 mode=$2
  shift 2
  e2e_start_sim "sim-$name" >&2
  e2e_sim PUT /_sim/state "$(state "$mode")" >/dev/null
  pw_start "kafka-$name" "$PW_BIN_DIR/kafka-mock" --brokers 1 --topic "$REQ_TOPIC:8" \
    --topic "$REPLY_TOPIC:4" --topic "$DLQ_TOPIC:1" --topic "$ALT_REPLY_TOPIC:1" >&2
  KAFKA=$(pw_first_line "kafka-$name")
  E2E_GROUP=bulk-$name e2e_write_config "$PW_TMP/$name.conf" "worker.id=$name" \
    worker.operation.timeout.ms=600000 "$@"
  e2e_start_worker "$name" "$PW_TMP/$name.conf" >&2
  gen "$name" "$mode" >"$PW_TMP/$name.lines"
  local t0=$SECONDS
  pw_kcat_produce "$KAFKA" "$REQ_TOPIC" -K $'\t' <"$PW_TMP/$name.lines" >&2
  local done_n=0 deadline=$((SECONDS + 1800))
  while [ "$done_n" -lt "$n" ] && [ $SECONDS -lt $deadline ]; do
    sleep 2
    timeout 60 kcat -q -C -b "$KAFKA" -t "$REPLY_TOPIC" -o beginning -e -J >"$PW_TMP/$name.replies" 2>/dev/null || true
    done_n=$(jq -r 'select(.payload | fromjson | .status | IN("succeeded", "failed", "rejected")) | .key' \
      "$PW_TMP/$name.replies" | sort -u | wc -l)
  done
  # elapsed: the first request's timestamp to the last terminal reply's (both set by librdkafka
  # on this host), not the polling above
  timeout 60 kcat -q -C -b "$KAFKA" -t "$REQ_TOPIC" -o beginning -e -J >"$PW_TMP/$name.requests" 2>/dev/null || true
  local elapsed
  elapsed=$(jq -n -r --slurpfile rq "$PW_TMP/$name.requests" --slurpfile rp "$PW_TMP/$name.replies" '
    ([$rp[] | select(.payload | fromjson | .status | IN("succeeded", "failed", "rejected")) | .ts] | max)
      - ([$rq[] | .ts] | min) | . / 1000 | . * 10 | floor | . / 10')
  [ -n "$elapsed" ] || elapsed=$((SECONDS - t0))
  local ok failed writes throttled reads=-
  ok=$(jq -r 'select(.payload | fromjson | .status == "succeeded") | .key' "$PW_TMP/$name.replies" | sort -u | wc -l)
  failed=$(jq -r 'select(.payload | fromjson | .status | IN("failed", "rejected")) | .key' "$PW_TMP/$name.replies" | sort -u | wc -l)
  e2e_sim GET /_sim/requests >"$PW_TMP/$name.log"
  jq -r 'select(.payload | fromjson | .status | IN("failed", "rejected")) | .payload' \
    "$PW_TMP/$name.replies" | head -1 | cut -c1-600 >&2
  if [ "$mode" = arm ]; then
    writes=$(jq '[.requests[] | select(.method == "PATCH")] | length' "$PW_TMP/$name.log")
    throttled=$(jq '[.requests[] | select(.host == "management.azure.com" and .status == 429)] | length' "$PW_TMP/$name.log")
    reads=$(jq '[.requests[] | select(.host == "management.azure.com" and .method == "GET")] | length' "$PW_TMP/$name.log")
  else
    writes=$(jq '[.requests[] | select(.path | test("/v1/rest/mgmt")) | .body | fromjson | .csl | select(startswith(".alter"))] | length' "$PW_TMP/$name.log")
    throttled=$(jq '[.requests[] | select((.path | test("/v1/rest/mgmt")) and .status == 429)] | length' "$PW_TMP/$name.log")
  fi
  [ -z "${BENCH_KEEP:-}" ] || cp "$PW_TMP/$name".* "$BENCH_KEEP/" 2>/dev/null || true
  pw_stop "$name" TERM 60 >/dev/null || true
  pw_stop "kafka-$name" TERM 30 >/dev/null || true
  pw_stop "sim-$name" TERM 30 >/dev/null || true
  echo "$elapsed $ok $failed $writes $throttled $reads"
}

row() { # LABEL RESULT
  local e ok f w t r
  read -r e ok f w t r <<<"$2"
  printf '%-46s %8ss %10s %8s %14s %10s %10s\n' "$1" "$e" "$ok" "$f" "$w" "$t" "$r"
}

for mode in ${BENCH_MODES:-arm coalesce}; do
  echo
  if [ "$mode" = arm ]; then
    echo "bench arm: $n database.caching writes over $n databases; azure-sim's ARM buckets at their"
    echo "defaults (writes 200 + 10/s); ideal $(((n - 200) / 10)) s"
    paced=$(run arm-paced arm)
    [ -z "${BENCH_BASE_BIN:-}" ] || base=$(PW_BIN_DIR=$(cd "$BENCH_BASE_BIN" && pwd) run arm-base arm)
    [ "${BENCH_BASELINES:-1}" = 0 ] ||
      unpaced=$(run arm-unpaced arm azure.arm.writes.burst=0 azure.arm.reads.burst=0 azure.attempts.max=8)
    printf '%-46s %9s %10s %8s %14s %10s %10s\n' run elapsed succeeded failed "ARM PATCHes" "ARM 429s" "ARM GETs"
    row "policy-worker, pacing on (default)" "$paced"
    [ -z "${BENCH_BASE_BIN:-}" ] || row "  the same, $BENCH_BASE_BIN" "$base"
    [ "${BENCH_BASELINES:-1}" = 0 ] || row "policy-worker, client pacing off" "$unpaced"
  else
    echo "bench coalesce: $n table.caching changes over 4 databases x 250 tables (two values);"
    echo "Kusto commands of 50 ms, 8 at once per cluster"
    coal=$(run coal-on coalesce)
    [ -z "${BENCH_BASE_BIN:-}" ] || base=$(PW_BIN_DIR=$(cd "$BENCH_BASE_BIN" && pwd) run coal-base coalesce)
    [ "${BENCH_BASELINES:-1}" = 0 ] || single=$(run coal-off coalesce worker.coalesce.max=1)
    printf '%-46s %9s %10s %8s %14s %10s\n' run elapsed succeeded failed "Kusto writes" "Kusto 429s"
    row "policy-worker, coalescing on (default 64)" "$coal"
    [ -z "${BENCH_BASE_BIN:-}" ] || row "  the same, $BENCH_BASE_BIN" "$base"
    [ "${BENCH_BASELINES:-1}" = 0 ] || row "policy-worker, worker.coalesce.max=1" "$single"
  fi
done
