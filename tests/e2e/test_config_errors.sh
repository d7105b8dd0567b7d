#!/usr/bin/env bash
# e2e: a bad configuration stops policy-worker at start (exit 2) with a message naming the key;
# the secret is never printed; AZURE_* environment variables fill unset values; limits that
# disagree with librdkafka's are warned about (--check-config still exits 0).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pw_require jq
[ -x "$PW_BIN_DIR/policy-worker" ] || pw_skip "$PW_BIN_DIR/policy-worker not built"
pw_tmpdir >/dev/null
# shellcheck disable=SC2034  # read by e2e_write_config
KAFKA=127.0.0.1:9 SIM_PORT=9 SIM_CA=/dev/null
base() {
  e2e_write_config "$1"
  sed -i '/^azure.ca.file=/d' "$1"
}

# expect_bad NAME KEY LINE...: the config with LINEs appended fails naming KEY.
expect_bad() {
  local name=$1 key=$2 rc=0
  shift 2
  base "$PW_TMP/$name.conf"
  local l
  for l in "$@"; do printf '%s\n' "$l" >>"$PW_TMP/$name.conf"; done
  "$PW_BIN_DIR/policy-worker" --config "$PW_TMP/$name.conf" >"$PW_TMP/$name.out" \
    2>"$PW_TMP/worker-$name.err" </dev/null || rc=$?
  [ "$rc" = 2 ] || pw_fail "$name: exit $rc, expected 2"
  grep -qF -- "$key" "$PW_TMP/worker-$name.err" || pw_fail "$name: the message does not name $key"
  pw_log "$name: exit 2, names $key"
}

expect_bad unknown-worker-key worker.nonsense 'worker.nonsense=1'
expect_bad unknown-azure-key azure.tenant 'azure.tenant=x'
expect_bad bad-number worker.inflight.max 'worker.inflight.max=lots'
expect_bad zero-number worker.inflight.max 'worker.inflight.max=0'
expect_bad bad-kafka-key kafka.no.such.thing 'kafka.no.such.thing=1'
expect_bad bad-kafka-value kafka.acks 'kafka.acks=sometimes'
expect_bad bad-ca azure.ca.file 'azure.ca.file=/nonexistent/ca.pem'
expect_bad http-arm azure.arm.endpoint 'azure.arm.endpoint=http://management.azure.com'
expect_bad bad-level worker.log.level 'worker.log.level=chatty'

# missing required values
e2e_write_config "$PW_TMP/nosecret.conf"
sed -i '/^azure.client.secret=/d; /^azure.ca.file=/d' "$PW_TMP/nosecret.conf"
rc=0
env -u AZURE_CLIENT_SECRET "$PW_BIN_DIR/policy-worker" --config "$PW_TMP/nosecret.conf" \
  2>"$PW_TMP/worker-nosecret.err" </dev/null || rc=$?
[ "$rc" = 2 ] && grep -q azure.client.secret "$PW_TMP/worker-nosecret.err" ||
  pw_fail "missing secret: exit $rc"
sed -i '/^kafka.group.id=/d' "$PW_TMP/nosecret.conf"
rc=0
AZURE_CLIENT_SECRET=$SECRET "$PW_BIN_DIR/policy-worker" --check-config "$PW_TMP/nosecret.conf" \
  >"$PW_TMP/worker-nogroup.out" 2>"$PW_TMP/worker-nogroup.err" </dev/null || rc=$?
[ "$rc" = 2 ] && grep -q kafka.group.id "$PW_TMP/worker-nogroup.err" || pw_fail "missing group: exit $rc"

# the secret from the environment completes a configuration
printf 'kafka.group.id=g\n' >>"$PW_TMP/nosecret.conf"
AZURE_CLIENT_SECRET=$SECRET "$PW_BIN_DIR/policy-worker" --check-config "$PW_TMP/nosecret.conf" \
  >"$PW_TMP/worker-envok.out" 2>"$PW_TMP/worker-envok.err" </dev/null ||
  pw_fail "AZURE_CLIENT_SECRET did not fill azure.client.secret"

# limits of the worker and of librdkafka that disagree: warnings naming the keys, not errors
grep -q warning "$PW_TMP/worker-envok.err" && pw_fail "warnings for agreeing limits: $(cat "$PW_TMP/worker-envok.err")"
base "$PW_TMP/limits.conf"
printf '%s\n' worker.message.max.bytes=1048576 kafka.receive.message.max.bytes=600000 >>"$PW_TMP/limits.conf"
"$PW_BIN_DIR/policy-worker" --check-config "$PW_TMP/limits.conf" >"$PW_TMP/limits.out" \
  2>"$PW_TMP/worker-limits.err" </dev/null || pw_fail "disagreeing limits: exit $?, expected 0"
grep -q 'warning: worker.message.max.bytes (1048576) .*kafka.message.max.bytes 1000000' "$PW_TMP/worker-limits.err" ||
  pw_fail "no warning for message.max.bytes below worker.message.max.bytes: $(cat "$PW_TMP/worker-limits.err")"
grep -q 'warning: kafka.receive.message.max.bytes (600000) ' "$PW_TMP/worker-limits.err" ||
  pw_fail "no warning for receive.message.max.bytes: $(cat "$PW_TMP/worker-limits.err")"
pw_log "disagreeing limits: warned, exit 0"
# --check-config loads the CA file: one with no certificate is refused, naming the file
# (--check-config exits either way, so a regression fails here rather than starting a worker)
printf 'not a certificate\n' >"$PW_TMP/garbage-ca.pem"
base "$PW_TMP/garbage-check.conf"
printf 'azure.ca.file=%s\n' "$PW_TMP/garbage-ca.pem" >>"$PW_TMP/garbage-check.conf"
rc=0
"$PW_BIN_DIR/policy-worker" --check-config "$PW_TMP/garbage-check.conf" >"$PW_TMP/garbage-check.out" \
  2>"$PW_TMP/worker-garbage-check.err" </dev/null || rc=$?
[ "$rc" = 2 ] && grep -q "azure.ca.file: $PW_TMP/garbage-ca.pem holds no PEM certificate" \
  "$PW_TMP/worker-garbage-check.err" || pw_fail "--check-config accepted a garbage CA file: exit $rc"

# usage errors
rc=0
"$PW_BIN_DIR/policy-worker" >/dev/null 2>&1 </dev/null || rc=$?
[ "$rc" = 2 ] || pw_fail "no arguments: exit $rc"
rc=0
"$PW_BIN_DIR/policy-worker" --config /nonexistent.conf 2>"$PW_TMP/worker-nofile.err" </dev/null || rc=$?
[ "$rc" = 2 ] && grep -q /nonexistent.conf "$PW_TMP/worker-nofile.err" || pw_fail "missing file: exit $rc"

e2e_check_no_secret
pw_log PASS
