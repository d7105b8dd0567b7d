#!/usr/bin/env bash
# e2e: `make install DESTDIR=... PREFIX=/usr` (what deploy/container/Dockerfile runs) lays out
# the programs, schemas, example configuration and --help texts; the installed worker finds
# its schemas under its own prefix (moved elsewhere, it follows; without them it fails and
# never falls back to the source tree) and runs a request end to end on the local stack.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_require
pw_require make cmake
pw_tmpdir >/dev/null
build=$(cd "$PW_BIN_DIR/.." && pwd)
[ -f "$build/CMakeCache.txt" ] || pw_skip "$build is not a CMake build tree"
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
san=$(cache PW_SANITIZE)
type=$(cache CMAKE_BUILD_TYPE)

# The Makefile's own target, on this tree with its own settings (nothing is rebuilt).
root=$PW_TMP/root
make -s -C "$PW_SOURCE_DIR" install BUILD="$build" SANITIZE="${san:-OFF}" BUILD_TYPE="${type:-Release}" \
  JOBS=1 DESTDIR="$root" PREFIX=/usr >"$PW_TMP/install.log" 2>&1 ||
  pw_fail "make install failed: $(tail -n 20 "$PW_TMP/install.log")"

usr=$root/usr
share=$usr/share/policy-worker
for f in bin/policy-worker bin/policyctl libexec/policy-worker/kafka-mock \
         libexec/policy-worker/azure-sim libexec/policy-worker/jsonschema-suite; do
  [ -x "$usr/$f" ] || pw_fail "not installed: /usr/$f"
done
for f in schemas/request.v1.json schemas/reply.v1.json worker.example.conf; do
  [ -s "$share/$f" ] || pw_fail "not installed: /usr/share/policy-worker/$f"
done
n_src=$(find "$PW_SOURCE_DIR/schemas" -name '*.json' | wc -l)
n_inst=$(find "$share/schemas" -name '*.json' | wc -l)
[ "$n_src" = "$n_inst" ] || pw_fail "$n_inst schemas installed, $n_src in schemas/"
cmp -s "$PW_SOURCE_DIR/deploy/worker.example.conf" "$share/worker.example.conf" ||
  pw_fail "the installed example configuration differs from deploy/worker.example.conf"
for p in bin/policy-worker bin/policyctl libexec/policy-worker/kafka-mock \
         libexec/policy-worker/azure-sim libexec/policy-worker/jsonschema-suite; do
  name=${p##*/}
  [ -s "$share/help/$name.txt" ] || pw_fail "no help text for $name"
  "$usr/$p" --help | cmp -s - "$share/help/$name.txt" ||
    pw_fail "$share/help/$name.txt is not what $name --help prints"
done
pw_log "layout: programs, $n_inst schemas, example configuration, 5 help texts"

# Schemas from the prefix, never from the source tree.
export AZURE_TENANT_ID=$TENANT AZURE_CLIENT_ID=$CLIENT AZURE_CLIENT_SECRET=$SECRET
export PW_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9 PW_KAFKA_GROUP_ID=install-check
out=$("$usr/bin/policy-worker" --check-config </dev/null) || pw_fail "installed --check-config: exit $?"
case $out in *"(schemas: $share/schemas)"*) ;; *) pw_fail "installed worker: $out (expected schemas under $share)" ;; esac
"$usr/bin/policyctl" validate "$PW_SOURCE_DIR/bench/data/request-4ops.json" >/dev/null ||
  pw_fail "installed policyctl validate failed"
"$usr/bin/policy-worker" validate "$PW_SOURCE_DIR/bench/data/request-4ops.json" >/dev/null ||
  pw_fail "installed policy-worker validate failed"
mv "$root/usr" "$root/opt"
out=$("$root/opt/bin/policy-worker" --check-config </dev/null) || pw_fail "moved tree: exit $?"
case $out in *"(schemas: $root/opt/share/policy-worker/schemas)"*) ;; *) pw_fail "moved tree: $out" ;; esac
mv "$root/opt/share/policy-worker/schemas" "$root/opt/share/policy-worker/schemas.away"
rc=0
"$root/opt/bin/policy-worker" --check-config >"$PW_TMP/noschemas.out" 2>"$PW_TMP/noschemas.log" </dev/null || rc=$?
[ "$rc" = 2 ] && grep -qF "$root/opt/share/policy-worker/schemas" "$PW_TMP/noschemas.log" ||
  pw_fail "without installed schemas: exit $rc, $(cat "$PW_TMP/noschemas.log")"
grep -qF "$PW_SOURCE_DIR/schemas" "$PW_TMP/noschemas.log" && pw_fail "fell back to the source tree"
mv "$root/opt/share/policy-worker/schemas.away" "$root/opt/share/policy-worker/schemas"
mv "$root/opt" "$root/usr"
unset AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET PW_KAFKA_BOOTSTRAP_SERVERS PW_KAFKA_GROUP_ID
pw_log "schemas: found under the prefix, follow a move, no source-tree fallback"

# A request end to end through the installed programs (the generated configuration names no
# worker.schemas.dir).
bin=$PW_TMP/bin
mkdir -p "$bin"
ln -s "$usr/bin/policy-worker" "$bin/policy-worker"
ln -s "$usr/libexec/policy-worker/kafka-mock" "$bin/kafka-mock"
ln -s "$usr/libexec/policy-worker/azure-sim" "$bin/azure-sim"
PW_BIN_DIR=$bin
e2e_stack
arm=$(e2e_arm_target)
e2e_send_json inst-retention "$(e2e_request inst-retention \
  "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P12D\"}]")"
t=$(e2e_wait_terminal inst-retention 90)
e2e_expect "installed worker: retention succeeded" '.status == "succeeded"' "$t"
e2e_expect "sim softDeletePeriod" '.softDeletePeriod == "P12D"' "$(e2e_sim_db)"
pw_stop worker TERM 60 || pw_fail "installed worker: exit $? after SIGTERM"
e2e_check_no_secret
pw_log PASS
