#!/usr/bin/env bash
# e2e: faults.  429/503 for a while then recovery -> succeeded; a token expiring mid-run ->
# refreshed, succeeded; azure-sim down past the operation deadline -> failed with a code.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# Tokens live 2 s from the start, the start-up credential check's token too (so the setting
# comes before the worker); the worker refreshes at expiry (margin 0).
e2e_services
e2e_sim_settings '{"tokenLifetimeSeconds":2}'
e2e_write_config "$PW_TMP/worker.conf" worker.operation.timeout.ms=8000 azure.token.refresh.margin.ms=0
e2e_start_collectors
e2e_start_worker worker "$PW_TMP/worker.conf"
arm=$(e2e_arm_target)

# --- 1. throttling and unavailability, then recovery -----------------------------------
e2e_sim_clear_requests
e2e_sim_faults '{"failNext":[{"count":3,"status":429,"host":"management.azure.com","retryAfter":1},{"count":2,"status":503,"host":"management.azure.com"}]}'
e2e_send_json fault-429 "$(e2e_request fault-429 "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P20D\"}]")"
t=$(e2e_wait_terminal fault-429 120)
e2e_expect "succeeded after 429/503" '.status == "succeeded" and .operations[0].status == "succeeded"' "$t"
e2e_expect "sim softDeletePeriod P20D" '.softDeletePeriod == "P20D"' "$(e2e_sim_db)"
log=$(e2e_sim_requests)
e2e_expect "the sim answered 429 three times and 503 twice" '([.[] | select(.status == 429)] | length) >= 3 and ([.[] | select(.status == 503)] | length) >= 2' "$log"
e2e_sim DELETE /_sim/faults >/dev/null
pw_log "429/503 then recovery: succeeded"

# --- 2. a token that expires mid-run ------------------------------------------------------
# Tokens live 2 s; the long-running operation takes 5 s and is polled every second, so the
# ARM token expires while it runs and must be fetched again.
e2e_sim_settings '{"tokenLifetimeSeconds":2,"lroDurationMs":5000,"lroRetryAfterSeconds":1}'
e2e_sim_clear_requests
e2e_send_json token-expiry "$(e2e_request token-expiry "[{\"kind\":\"database.caching\",\"target\":$arm,\"hotCachePeriod\":\"P7D\"}]")"
t=$(e2e_wait_terminal token-expiry 120)
e2e_expect "succeeded across a token expiry" '.status == "succeeded"' "$t"
log=$(e2e_sim_requests)
e2e_expect "more than one token request" '[.[] | select(.host == "login.microsoftonline.com")] | length >= 2' "$log"
e2e_expect "no ARM call failed for lack of a valid token at the end" '[.[] | select(.host == "management.azure.com")] | last | .status < 400' "$log"
e2e_sim_settings '{"tokenLifetimeSeconds":3600,"lroDurationMs":300,"lroRetryAfterSeconds":1}'
pw_log "token expiry mid-run: refreshed, succeeded"

# --- 3. azure-sim down past the deadline -> failed with a code ---------------------------
pw_stop sim TERM 30 || true
e2e_send_json sim-down "$(e2e_request sim-down "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P21D\"},{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target StormEvents),\"hotCachePeriod\":\"P2D\"}]")"
t=$(e2e_wait_terminal sim-down 120)
e2e_expect "failed with a stable code" '.status == "failed" and (.operations[0].status == "failed") and (.operations[0].error.code | IN("AzureUnavailable", "DeadlineExceeded")) and (.operations[0].error.retryable == true)' "$t"
pw_log "azure-sim down: failed $(printf '%s' "$t" | jq -r '.operations[0].error.code')"

e2e_worker_alive
e2e_check_no_secret
pw_stop worker TERM 60 || pw_fail "worker exit status $? after SIGTERM"
e2e_check_no_secret
pw_log PASS
