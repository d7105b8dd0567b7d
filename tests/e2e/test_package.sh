#!/usr/bin/env bash
# e2e: `make package` builds a .deb (CPack) whose Depends are the Debian run-time packages
# (librdkafka1, libcurl4, libjansson4, libssl3, ...: all installable here, and all in the
# container's run-time stage); installed into a scratch root (dpkg --root when it can run,
# dpkg -x otherwise; never onto this machine), its policy-worker answers --version and
# validates a request with the schemas it carries.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pw_require make cmake cpack dpkg dpkg-deb dpkg-shlibdeps file
[ -x "$PW_BIN_DIR/policy-worker" ] || pw_skip "$PW_BIN_DIR/policy-worker not built"
pw_tmpdir >/dev/null
build=$(cd "$PW_BIN_DIR/.." && pwd)
[ -f "$build/CMakeCache.txt" ] || pw_skip "$build is not a CMake build tree"
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }

rm -f "$build"/package/policy-worker_*.deb
make -s -C "$PW_SOURCE_DIR" package BUILD="$build" SANITIZE="$(cache PW_SANITIZE)" \
  BUILD_TYPE="$(cache CMAKE_BUILD_TYPE)" JOBS=1 >"$PW_TMP/package.log" 2>&1 ||
  pw_fail "make package failed: $(tail -n 30 "$PW_TMP/package.log")"
deb=$(ls "$build"/package/policy-worker_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || pw_fail "no .deb in $build/package"
pw_log "built $(basename "$deb")"

[ "$(dpkg-deb -f "$deb" Package)" = policy-worker ] || pw_fail "package name"
depends=$(dpkg-deb -f "$deb" Depends)
pw_log "Depends: $depends"
for p in librdkafka1 libcurl4 libjansson4 libssl3 libpcre2-8-0; do
  printf '%s' "$depends" | grep -qE "(^|[ ,|])$p( |,|$)" || pw_fail "Depends lacks $p: $depends"
done
# Every dependency is a real Debian package (installed here), and every one but the base
# image's and the sanitizers' is in the container's run-time stage.
runtime=$(sed -n '/^FROM debian:12-slim$/,$p' "$PW_SOURCE_DIR/deploy/container/Dockerfile")
for p in $(printf '%s' "$depends" | tr ',|' '\n\n' | sed 's/(.*//; s/ //g' | sort -u); do
  [ -n "$p" ] || continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    pw_fail "Depends names $p, which is not an installed Debian package here"
  case $p in libc6 | libgcc-s1 | libasan* | libubsan*) continue ;; esac
  printf '%s' "$runtime" | grep -qw -- "$p" ||
    pw_fail "deploy/container/Dockerfile's run-time stage does not install $p (a Depends of the .deb)"
done

# Into a scratch root.
root=$PW_TMP/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
how="dpkg --root"
if ! dpkg --root="$root" --force-depends --force-not-root --force-script-chrootless \
     --log=/dev/null -i "$deb" >"$PW_TMP/dpkg.log" 2>&1; then
  how="dpkg -x"
  pw_log "dpkg --root could not run here ($(tail -n 1 "$PW_TMP/dpkg.log")); dpkg -x instead"
  dpkg -x "$deb" "$root"
fi
[ -x "$root/usr/bin/policy-worker" ] || pw_fail "no /usr/bin/policy-worker in the package"
[ -s "$root/usr/share/policy-worker/schemas/request.v1.json" ] || pw_fail "no schemas in the package"
ver=$("$root/usr/bin/policy-worker" --version) || pw_fail "--version: exit $?"
for want in "policy-worker $(cache CMAKE_PROJECT_VERSION)" librdkafka libcurl Jansson OpenSSL; do
  printf '%s\n' "$ver" | grep -q "^$want" || pw_fail "--version lacks $want: $ver"
done
"$root/usr/bin/policy-worker" validate "$PW_SOURCE_DIR/bench/data/request-4ops.json" \
  >"$PW_TMP/validate.out" || pw_fail "validate from the package: exit $?: $(cat "$PW_TMP/validate.out")"
grep -q ': accepted: ' "$PW_TMP/validate.out" || pw_fail "validate: $(cat "$PW_TMP/validate.out")"
AZURE_TENANT_ID=t AZURE_CLIENT_ID=c AZURE_CLIENT_SECRET=s PW_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9 \
  PW_KAFKA_GROUP_ID=g "$root/usr/bin/policy-worker" --check-config </dev/null >"$PW_TMP/check.out" ||
  pw_fail "--check-config from the package: exit $?"
grep -qF "(schemas: $root/usr/share/policy-worker/schemas)" "$PW_TMP/check.out" ||
  pw_fail "the packaged worker does not use its own schemas: $(cat "$PW_TMP/check.out")"
pw_log "installed with $how: --version, validate and its own schemas"
pw_log PASS
