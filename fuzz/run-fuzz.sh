#!/bin/sh
# run-fuzz.sh BUILD_DIR SECONDS [TARGET]: builds fuzz/TARGET_fuzz with clang (libFuzzer + ASan
# + UBSan) into BUILD_DIR/fuzz and runs it for SECONDS over a copy of its seed corpus.
# TARGET: schema (default; seeds fuzz/corpus) or request (seeds fuzz/corpus-request).
# Exit 77 (skipped) when clang or its libFuzzer runtime is not installed.
set -eu
build=$1 secs=${2:-25} target=${3:-schema}
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
out=$build/fuzz
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "SKIP: $CC not found (deploy/install-deps.sh installs clang and libclang-rt-14-dev)"
    exit 77
fi
# every source of the schema module, whatever its files are called
schema_src=$(echo "$src"/worker/schema/*.c)
case $target in
schema)
    seeds=$here/corpus run=corpus-run max_len=4096 dict=
    # shellcheck disable=SC2086
    set -- "$here/schema_fuzz.c" $schema_src
    ;;
request)
    seeds=$here/corpus-request run=corpus-request-run max_len=8192
    dict=-dict=$here/request.dict
    # shellcheck disable=SC2086
    set -- -DFUZZ_SCHEMAS_DIR="\"$src/schemas\"" -DFUZZ_OPS_DIR="\"$src/tests/data/ops\"" \
        "$here/request_fuzz.c" $schema_src \
        "$src/worker/request.c" "$src/worker/ops.c" "$src/worker/value.c" "$src/worker/names.c" \
        "$src/worker/duration.c" "$src/worker/status.c" "$src/worker/reply.c" "$src/worker/plan.c" \
        "$src/worker/paths.c" \
        "$src/worker/azure/kql.c"
    ;;
*)
    echo "run-fuzz.sh: unknown target '$target' (schema, request)" >&2
    exit 2
    ;;
esac
mkdir -p "$out/$run"
# One probe per target: ctest -j runs both targets at once, and a shared probe.c could be
# read by one compiler while the other run rewrites it (a spurious SKIP).
probe=$out/probe-$target.c
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n); int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' > "$probe"
if ! "$CC" -fsanitize=fuzzer "$probe" -o "$out/probe-$target" 2>/dev/null; then
    echo "SKIP: $CC cannot link -fsanitize=fuzzer (install libclang-rt-14-dev)"
    exit 77
fi
# shellcheck disable=SC2046
"$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fno-omit-frame-pointer -D_GNU_SOURCE -I"$src/include" "$@" \
    $(pkg-config --cflags --libs jansson libpcre2-8) -lpthread -lm -o "$out/${target}_fuzz"
echo "fuzz: running $out/${target}_fuzz for ${secs}s"
cd "$out"
# libFuzzer exits 77 on a crash by default, which ctest would count as skipped: a finding
# must fail the test.
# shellcheck disable=SC2086
exec "./${target}_fuzz" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
    -error_exitcode=1 -timeout_exitcode=1 \
    -max_len="$max_len" -print_final_stats=1 $dict "$run" "$seeds"
