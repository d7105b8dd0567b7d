#!/usr/bin/env bash
# bench/pacing.sh [BUILD_DIR]: 1,000 ARM writes (database caching PATCHes over 1,000 databases,
# each followed through its long-running operation and final GET) driven directly through the
# Azure client (bench/pacing_bench.c) against azure-sim with its default ARM throttle: writes
# 200 / 10 per s, reads 250 / 25 per s, per principal and subscription.  Prints the elapsed time,
# the ideal one ((N - 200) / 10 for the writes; the reads the operations need bound it too:
# (reads - 250) / 25), the 429s per kind and the failures.  A benchmark, not a test: it always
# prints, and exits 1 only when a write failed or did not finish.
#
# Build first, optimised and without sanitizers (what `make` builds, in build/):
#   make
#   bash bench/pacing.sh build
# Env: PACING_N (writes, default 1000), PACING_DATABASES (default PACING_N),
#      PACING_SIM_READS=0 turns azure-sim's read throttle (and the client's read pacing) off,
#      PACING_BASELINE=1 adds a run with the client's pacing off (retries only, as before),
#      PACING_ATTEMPTS (azure.attempts.max for the runs, default 8).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${1:-$src/build}
bin=$build/bin/pacing-bench
sim=$build/bin/azure-sim
n=${PACING_N:-1000}
dbs=${PACING_DATABASES:-$n}
reads=${PACING_SIM_READS:-1}
attempts=${PACING_ATTEMPTS:-8}

[ -x "$bin" ] || { echo "bench: $bin is missing; build first (see the header of $0)" >&2; exit 1; }
[ -x "$sim" ] || { echo "bench: $sim is missing; build first" >&2; exit 1; }
log=$(mktemp "${TMPDIR:-/tmp}/pacing-bench-XXXXXX.log")
echo "bench: progress and azure-sim's output go to $log"

rc=0
run() { # run PACING(0|1)
    echo "bench: $bin --n $n --databases $dbs --sim-reads $reads --pacing $1 --attempts $attempts"
    "$bin" --n "$n" --databases "$dbs" --sim "$sim" --sim-reads "$reads" --pacing "$1" \
        --attempts "$attempts" 2>>"$log" || rc=1
}
run 1
if [ "${PACING_BASELINE:-0}" = 1 ]; then
    echo
    run 0
fi
exit $rc
