#!/bin/sh
# run-fuzz.sh BUILD_DIR SECONDS: builds fuzz/schema_fuzz with clang (libFuzzer + ASan + UBSan)
# into BUILD_DIR/fuzz and runs it for SECONDS over a copy of fuzz/corpus.
# Exit 77 (skipped) when clang or its libFuzzer runtime is not installed.
set -eu
build=$1 secs=${2:-25}
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
out=$build/fuzz
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "SKIP: $CC not found (deploy/install-deps.sh installs clang and libclang-rt-14-dev)"
    exit 77
fi
mkdir -p "$out/corpus-run"
probe=$out/probe.c
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n); int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' > "$probe"
if ! "$CC" -fsanitize=fuzzer "$probe" -o "$out/probe" 2>/dev/null; then
    echo "SKIP: $CC cannot link -fsanitize=fuzzer (install libclang-rt-14-dev)"
    exit 77
fi
# shellcheck disable=SC2046
"$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fno-omit-frame-pointer -D_GNU_SOURCE -I"$src/include" \
    "$here/schema_fuzz.c" "$src"/worker/schema/schema.c "$src"/worker/schema/uri.c \
    "$src"/worker/schema/format.c \
    $(pkg-config --cflags --libs jansson libpcre2-8) -lpthread -lm -o "$out/schema_fuzz"
echo "fuzz: running $out/schema_fuzz for ${secs}s"
cd "$out"
exec ./schema_fuzz -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 corpus-run "$here/corpus"
