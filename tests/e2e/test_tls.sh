#!/usr/bin/env bash
# e2e: an untrusted CA makes every Azure call fail with a clear TLS error (and nothing else).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pw_require openssl
pw_tmpdir >/dev/null
# A CA azure-sim's certificate does not chain to.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PW_TMP/other-ca.key" -out "$PW_TMP/other-ca.pem" \
  -days 1 -subj "/CN=Not The Simulator CA" >/dev/null 2>&1 || pw_fail "openssl could not make a CA"
e2e_stack "azure.ca.file=$PW_TMP/other-ca.pem" worker.operation.timeout.ms=10000
arm=$(e2e_arm_target)
# With the start-up credential check (the default) the worker knows before any request: not
# ready, the TLS failure named, and nothing taken.
base=$(e2e_admin_url worker)
tls_not_ready() {
  curl -s -o "$PW_TMP/readyz" -w '%{http_code}' "$base/readyz" | grep -q 503 &&
    grep -q 'credential: TlsError' "$PW_TMP/readyz"
}
pw_wait_until 30 tls_not_ready || pw_fail "/readyz does not name the TLS failure: $(cat "$PW_TMP/readyz")"
grep -q '"event":"credential.failed".*TlsError' "$PW_TMP/worker.err" ||
  pw_fail "no credential.failed naming TlsError in the log"
e2e_send_json tls-early "$(e2e_request tls-early "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P11D\"}]")"
sleep 3
grep -q '"requestId":"tls-early","event":"request.received"' "$PW_TMP/worker.err" &&
  pw_fail "a request was taken while no token could be obtained"
pw_stop worker TERM 60 || pw_fail "worker exit status $? after SIGTERM (not ready)"
# Without the check, every call fails on its own with a clear TlsError (tls-early too).
e2e_write_config "$PW_TMP/nocheck.conf" "azure.ca.file=$PW_TMP/other-ca.pem" \
  worker.operation.timeout.ms=10000 worker.credential.check=off
e2e_start_worker worker2 "$PW_TMP/nocheck.conf"
t=$(e2e_wait_terminal tls-early 90)
e2e_expect "tls-early failed with TlsError" '.status == "failed" and .operations[0].error.code == "TlsError"' "$t"
e2e_sim_clear_requests
e2e_send_json tls-arm "$(e2e_request tls-arm "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P10D\"}]")"
t=$(e2e_wait_terminal tls-arm 90)
e2e_expect "failed with TlsError" '.status == "failed" and .operations[0].error.code == "TlsError" and (.operations[0].error.message | test("(?i)certificate|tls|ssl|verify"))' "$t"
e2e_send_json tls-kusto "$(e2e_request tls-kusto "[{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target StormEvents),\"hotCachePeriod\":\"P5D\"}]")"
t=$(e2e_wait_terminal tls-kusto 90)
e2e_expect "kusto route failed with TlsError" '.status == "failed" and .operations[0].error.code == "TlsError"' "$t"
# The handshake failed: no request (not even the token request) was served.
e2e_expect "nothing served" 'length == 0' "$(e2e_sim_requests)"
e2e_expect "state unchanged" '.softDeletePeriod == "P365D"' "$(e2e_sim_db)"
grep -qi 'tls\|certificate' "$PW_TMP/worker.err" || pw_fail "the worker log does not name the TLS problem"
e2e_check_no_secret
pw_stop worker2 TERM 60 || pw_fail "worker2 exit status $? after SIGTERM"
pw_log PASS
