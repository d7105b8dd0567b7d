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
pw_stop worker TERM 60 || pw_fail "worker exit status $? after SIGTERM"
pw_log PASS
