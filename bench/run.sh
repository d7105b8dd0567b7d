#!/usr/bin/env bash
# bench/run.sh BUILD_DIR: schemas/request.v1.json on a four-operation request, pw_schema (C)
# side by side with Debian's python3-jsonschema (Draft202012Validator): validations per
# second (wall clock) and instructions per validation (callgrind, repeatable).
# Env: BENCH_SECONDS (default 3), BENCH_CALLGRIND=0 skips instruction counts,
#      BENCH_SCHEMAS / BENCH_INSTANCE override the inputs.
set -euo pipefail
build=${1:?usage: bench/run.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
schemas=${BENCH_SCHEMAS:-$src/schemas}
inst=${BENCH_INSTANCE:-$here/data/request-4ops.json}
secs=${BENCH_SECONDS:-3}
bin=$build/bin/schema-bench
py=/usr/bin/python3 # Debian's python with python3-jsonschema, not a pyenv one on PATH

[ -x "$bin" ] || { echo "bench: $bin is missing; build first (make bench)" >&2; exit 1; }
[ -f "$schemas/request.v1.json" ] || { echo "bench: no $schemas/request.v1.json" >&2; exit 1; }

rate() { sed -n 's/.*per_second \([0-9]*\).*/\1/p'; }

# instructions per validation: difference of two runs, so start-up and compile cancel out
ipv() { # ipv N1 N2 CMD...
    local n1=$1 n2=$2 a b
    shift 2
    a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" --iterations "$n1" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" --iterations "$n2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    if [ -n "$a" ] && [ -n "$b" ]; then echo $(((b - a) / (n2 - n1))); else echo "n/a"; fi
}

echo "bench: schema $schemas/request.v1.json, instance $inst, ${secs}s per throughput run"
c_rate=$("$bin" --schemas "$schemas" --instance "$inst" --seconds "$secs" | rate)
py_rate="n/a" py_ver="not installed"
if "$py" -c 'import jsonschema' 2>/dev/null; then
    py_ver=$("$py" -c 'import importlib.metadata as m; print(m.version("jsonschema"))')
    py_rate=$("$py" "$here/python_bench.py" --schemas "$schemas" --instance "$inst" \
        --seconds "$secs" | rate)
fi
c_ipv="n/a" py_ipv="n/a"
if [ "${BENCH_CALLGRIND:-1}" != 0 ] && command -v valgrind >/dev/null; then
    echo "bench: counting instructions with callgrind (python takes about a minute)"
    c_ipv=$(ipv 1000 3000 "$bin" --schemas "$schemas" --instance "$inst")
    if [ "$py_rate" != "n/a" ]; then
        py_ipv=$(ipv 5 25 "$py" "$here/python_bench.py" --schemas "$schemas" --instance "$inst")
    fi
fi

echo
printf '%-44s %16s %24s\n' "validator" "validations/s" "instructions/validation"
printf '%-44s %16s %24s\n' "pw_schema (C, $(basename "$build"))" "$c_rate" "$c_ipv"
printf '%-44s %16s %24s\n' "python3-jsonschema $py_ver Draft202012Validator" "$py_rate" "$py_ipv"
if [ "$py_rate" != "n/a" ] && [ "$py_rate" -gt 0 ]; then
    echo
    echo "throughput ratio: $((c_rate / py_rate))x (target: at least 50x)"
    if [ "$c_ipv" != "n/a" ] && [ "$py_ipv" != "n/a" ] && [ "$c_ipv" -gt 0 ]; then
        echo "instruction ratio: $((py_ipv / c_ipv))x"
    fi
fi
