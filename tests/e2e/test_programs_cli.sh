#!/usr/bin/env bash
# e2e: every program answers --help (exit 0, usage on stdout) and --version (exit 0: its name
# and the project version, then librdkafka, libcurl, Jansson and OpenSSL with the versions it
# runs with, which must be those of the installed Debian libraries' major versions).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pw_tmpdir >/dev/null
build=$(cd "$PW_BIN_DIR/.." && pwd)
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null)
[ -n "$version" ] || version=$(sed -n 's/^project(adx_policy_worker VERSION \([0-9.]*\).*/\1/p' "$PW_SOURCE_DIR/CMakeLists.txt")
rdkafka=$(pkg-config --modversion rdkafka 2>/dev/null || true)
n=0
for p in policy-worker policyctl kafka-mock azure-sim jsonschema-suite; do
  [ -x "$PW_BIN_DIR/$p" ] || pw_fail "$PW_BIN_DIR/$p not built"
  rc=0
  "$PW_BIN_DIR/$p" --help >"$PW_TMP/$p.help" 2>"$PW_TMP/$p.help.err" </dev/null || rc=$?
  [ "$rc" = 0 ] || pw_fail "$p --help: exit $rc"
  grep -q "^usage: $p" "$PW_TMP/$p.help" || pw_fail "$p --help: no usage line on stdout"
  rc=0
  "$PW_BIN_DIR/$p" --version >"$PW_TMP/$p.version" 2>"$PW_TMP/$p.version.err" </dev/null || rc=$?
  [ "$rc" = 0 ] || pw_fail "$p --version: exit $rc"
  [ "$(head -n 1 "$PW_TMP/$p.version")" = "$p $version" ] ||
    pw_fail "$p --version: first line $(head -n 1 "$PW_TMP/$p.version"), expected $p $version"
  for lib in librdkafka libcurl Jansson OpenSSL; do
    grep -qE "^$lib [0-9]+\.[0-9]+" "$PW_TMP/$p.version" || pw_fail "$p --version: no $lib version"
  done
  if [ -n "$rdkafka" ]; then
    grep -q "^librdkafka ${rdkafka%%.*}\." "$PW_TMP/$p.version" ||
      pw_fail "$p --version: librdkafka is not the installed $rdkafka"
  fi
  n=$((n + 1))
done
# the subcommands' own help
"$PW_BIN_DIR/policy-worker" validate --help | grep -q '^usage: policy-worker validate' ||
  pw_fail "policy-worker validate --help"
"$PW_BIN_DIR/policyctl" validate --help | grep -q '^usage: policyctl validate' ||
  pw_fail "policyctl validate --help"
pw_log "$n programs: --help and --version"
pw_log PASS
