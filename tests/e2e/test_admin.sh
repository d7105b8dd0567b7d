#!/usr/bin/env bash
# e2e: the admin endpoint (worker.admin.listen).  With a wrong client secret the worker is
# alive (/healthz 200) but not ready (/readyz 503 naming the credential error, the secret
# nowhere) and takes no request; once the simulator knows that secret, the start-up check
# succeeds on its next try, /readyz turns 200 and the waiting request is answered.  Then a
# known run (succeeded, rejected, dead-lettered requests) and /metrics, read with a real
# Prometheus parser (python3-prometheus-client): its counters match the replies.  Only GET.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_require
# a Python that has the Prometheus parser (Debian's python3-prometheus-client)
py=
for c in /usr/bin/python3 python3; do
  if "$c" -c 'import prometheus_client.parser' 2>/dev/null; then py=$c; break; fi
done
[ -n "$py" ] || pw_skip "no python3 with prometheus_client (Debian package python3-prometheus-client)"
pw_tmpdir >/dev/null
e2e_start_kafka
e2e_start_sim
wrong=not-the-right-secret-$$
e2e_write_config "$PW_TMP/worker.conf" "azure.client.secret=$wrong" "kafka.statistics.interval.ms=1000"
e2e_start_collectors
e2e_start_worker worker "$PW_TMP/worker.conf"
base=$(e2e_admin_url worker)
# get PATH [METHOD]: prints "STATUS BODY"
get() { curl -s -o "$PW_TMP/body" -w '%{http_code}' -X "${2:-GET}" "$base$1"; echo " $(cat "$PW_TMP/body")"; }

r=$(get /healthz)
[ "${r%% *}" = 200 ] || pw_fail "/healthz: $r"
not_ready() { r=$(get /readyz); [ "${r%% *}" = 503 ] && printf '%s' "$r" | grep -q 'credential: AuthenticationFailed'; }
pw_wait_until 30 not_ready || pw_fail "/readyz with a wrong secret: $r"
printf '%s' "$r" | grep -q -- "$wrong" && pw_fail "/readyz shows the secret: $r"
e2e_expect "readyz reasons" '.ready == false and (.reasons | length >= 1)' "${r#* }"
grep -q '"level":"error","worker":"e2e-worker","event":"credential.failed"' "$PW_TMP/worker.err" ||
  pw_fail "no credential.failed error in the log"

arm=$(e2e_arm_target)
e2e_send_json waiting "$(e2e_request waiting "[{\"kind\":\"database.caching\",\"target\":$arm,\"hotCachePeriod\":\"P7D\"}]")"
sleep 3
grep -q '"requestId":"waiting","event":"request.received"' "$PW_TMP/worker.err" &&
  pw_fail "a request was taken before the credential was checked"

# The simulator learns the secret: the next check succeeds, the request is answered.
state=$(e2e_sim_state | jq -c --arg s "$wrong" '.apps[0].secrets += [$s]')
e2e_sim PUT /_sim/state "$state" >/dev/null
ready() { r=$(get /readyz); [ "${r%% *}" = 200 ]; }
pw_wait_until 90 ready || pw_fail "/readyz after the secret was fixed: $r"
t=$(e2e_wait_terminal waiting 60)
e2e_expect "the waiting request succeeded" '.status == "succeeded"' "$t"

# A known run: 3 succeeded (ARM and Kusto), 1 rejected, 1 dead letter.
e2e_send_json ok-1 "$(e2e_request ok-1 "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P30D\"}]")"
e2e_send_json ok-2 "$(e2e_request ok-2 "[{\"kind\":\"table.caching\",\"target\":$(e2e_kusto_table_target StormEvents),\"hotCachePeriod\":\"P3D\"}]")"
e2e_send_json bad-1 "$(e2e_request bad-1 "[{\"kind\":\"database.caching\",\"target\":$arm,\"hotCachePeriod\":\"10 days\"}]")"
e2e_send_json nokey '{"no": "id"}'
for id in ok-1 ok-2 bad-1; do e2e_wait_terminal "$id" 60 >/dev/null; done
pw_wait_until 60 test "$(e2e_dlq_count)" -ge 1 || pw_fail "no dead letter"
lag_seen() { get /metrics >/dev/null; grep -q "^pw_consumer_lag{topic=\"$REQ_TOPIC\",partition=\"[0-9]*\"} 0" "$PW_TMP/body"; }
pw_wait_until 30 lag_seen || pw_fail "no consumer lag gauge at 0 for $REQ_TOPIC"
r=$(get /metrics)
[ "${r%% *}" = 200 ] || pw_fail "/metrics: ${r:0:200}"
cp "$PW_TMP/body" "$PW_TMP/metrics.txt"
replies=$(jq -c 'select(.payload != null) | .payload | fromjson | select(.status == "succeeded" or .status == "failed" or .status == "rejected") | [.status, (.error.code // "")]' "$PW_TMP/replies.out" | sort | uniq -c | awk '{print $2 " " $1}')
"$py" - "$PW_TMP/metrics.txt" "$REQ_TOPIC" <<PY || pw_fail "metrics do not match the run (see above)"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
def val(name, **labels):
    f = fams[name]
    return sum(s.value for s in f.samples
               if s.name.endswith(("_total", "_count")) or s.name == name
               if all(s.labels.get(k) == v for k, v in labels.items()))
expected = {}
for line in """$replies""".strip().splitlines():
    pair, n = line.rsplit(" ", 1)
    status, code = json.loads(pair)
    expected[(status, code)] = int(n)
ok = True
def check(what, got, want):
    global ok
    print("%-60s %s (want %s)" % (what, got, want))
    ok &= got == want
for (status, code), n in sorted(expected.items()):
    check("pw_requests_total{status=%s,code=%s}" % (status, code),
          val("pw_requests", status=status, code=code), n)
check("pw_request_duration_seconds_count{status=succeeded}",
      sum(s.value for s in fams["pw_request_duration_seconds"].samples
          if s.name.endswith("_count") and s.labels.get("status") == "succeeded"),
      expected.get(("succeeded", ""), 0))
check("pw_dead_letters_total", val("pw_dead_letters"), 1)
check("pw_operations_total{succeeded}", val("pw_operations", status="succeeded") +
      val("pw_operations", status="unchanged"), expected.get(("succeeded", ""), 0))
check("token answers failed > 0", val("pw_token_requests", result="failed") > 0, True)
check("token answers ok > 0", val("pw_token_requests", result="ok") > 0, True)
check("aad 4xx > 0", val("pw_azure_http_requests", host="aad", **{"class": "4xx"}) > 0, True)
check("arm 2xx > 0", val("pw_azure_http_requests", host="arm", **{"class": "2xx"}) > 0, True)
check("kusto 2xx > 0", val("pw_azure_http_requests", host="kusto", **{"class": "2xx"}) > 0, True)
check("lro polls > 0", val("pw_azure_lro_polls") > 0, True)
check("requests in flight", val("pw_requests_in_flight"), 0)
sys.exit(0 if ok else 1)
PY
r=$(get /metrics POST)
[ "${r%% *}" = 405 ] || pw_fail "POST /metrics: $r"
r=$(get /nowhere)
[ "${r%% *}" = 404 ] || pw_fail "GET /nowhere: $r"
grep -q -- "$wrong" "$PW_TMP/metrics.txt" && pw_fail "the secret is in /metrics"
e2e_check_no_secret
grep -q -- "$wrong" "$PW_TMP/worker.err" && pw_fail "the (wrong) secret is in the log"
pw_stop worker TERM 60 || pw_fail "worker exit status $? after SIGTERM"
pw_log PASS
