#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs, only those that are missing.
#   deploy/install-deps.sh           what the build and every test need (make test, make demo)
#   deploy/install-deps.sh --build   only what `make` / `make install` need (the container's
#                                    build stage, deploy/container/Dockerfile)
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config
  librdkafka-dev libcurl4-openssl-dev libjansson-dev libssl-dev
  libmicrohttpd-dev libcmocka-dev libpcre2-dev
)
# Tests: clang for the fuzz targets; kcat, curl, jq for the end-to-end tests; tmux for the
# terminal test of policyctl submit --follow; python3-yaml
# for the deploy/ manifests' test; python3-prometheus-client to parse /metrics; systemd for `systemd-analyze verify`; dpkg-dev
# (dpkg-shlibdeps) and file for `make package` (CPack's .deb and its Depends).
test_pkgs=(
  clang libclang-rt-14-dev
  kcat curl jq openssl ca-certificates procps iproute2 python3 python3-jsonschema valgrind
  python3-yaml systemd dpkg-dev file python3-prometheus-client tmux
)
case ${1:-} in
  --build) pkgs=("${build_pkgs[@]}") ;;
  "") pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: deploy/install-deps.sh [--build]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
