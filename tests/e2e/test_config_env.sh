#!/usr/bin/env bash
# e2e: configuration for containers.  --check-config reports every problem in one run, each
# with FILE:LINE or the PW_* variable, including what start-up would fail on (the schema
# directory, the CA file's content, a reply topic equal to the request topic); every key can
# come from PW_* variables, which win over the file; with them the file is optional, and a
# worker configured by its environment alone runs a request end to end.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_require
pw_tmpdir >/dev/null
pw=$PW_BIN_DIR/policy-worker

# 1. every problem, with its line
printf 'not a certificate\n' >"$PW_TMP/garbage-ca.pem"
cat >"$PW_TMP/bad.conf" <<CONF
kafka.bootstrap.servers=127.0.0.1:9
kafka.group.id=g
worker.inflight.max=lots
worker.nonsense=1
kafka.acks=sometimes
azure.ca.file=$PW_TMP/garbage-ca.pem
worker.reply.topic=adx.policy.requests
worker.schemas.dir=$PW_TMP/no-schemas
azure.tenant.id=$TENANT
azure.client.id=$CLIENT
CONF
rc=0
PW_WORKER_LOG_LEVEL=chatty "$pw" --check-config "$PW_TMP/bad.conf" >"$PW_TMP/bad.out" \
  2>"$PW_TMP/bad.log" </dev/null || rc=$?
[ "$rc" = 2 ] || pw_fail "--check-config of a bad file: exit $rc"
f=$PW_TMP/bad.conf
for want in "$f:3: worker.inflight.max: not a number" "$f:4: worker.nonsense: unknown" \
            "$f:5: kafka.acks: " "$f:6: azure.ca.file: $PW_TMP/garbage-ca.pem holds no PEM certificate" \
            "$f:7: worker.reply.topic: \"adx.policy.requests\" is also worker.request.topic" \
            "$f:8: worker.schemas.dir" "environment PW_WORKER_LOG_LEVEL: worker.log.level" \
            "azure.credential=auto: no credential is configured" "configuration problems in $f"; do
  grep -qF -- "$want" "$PW_TMP/bad.log" || pw_fail "--check-config did not report: $want; got: $(cat "$PW_TMP/bad.log")"
done
n=$(grep -c '^policy-worker: error: ' "$PW_TMP/bad.log")
[ "$n" -ge 8 ] || pw_fail "only $n problems reported: $(cat "$PW_TMP/bad.log")"
grep -q "^policy-worker: $n configuration problems" "$PW_TMP/bad.log" || pw_fail "wrong problem count"
pw_log "--check-config: $n problems, each with its line or variable"
# the same file stops a worker at start, every problem logged
rc=0
"$pw" --config "$PW_TMP/bad.conf" >/dev/null 2>"$PW_TMP/worker-bad.err" </dev/null || rc=$?
[ "$rc" = 2 ] || pw_fail "a worker with a bad file: exit $rc"
[ "$(grep -c '"event":"config.invalid"' "$PW_TMP/worker-bad.err")" -ge 6 ] ||
  pw_fail "the worker did not log every problem: $(cat "$PW_TMP/worker-bad.err")"
# the reply topic equal to the request topic, alone, stops start-up
KAFKA=127.0.0.1:9 SIM_PORT=9 SIM_CA=/dev/null e2e_write_config "$PW_TMP/loop.conf" "worker.reply.topic=$REQ_TOPIC"
sed -i '/^azure.ca.file=/d' "$PW_TMP/loop.conf"
rc=0
"$pw" --config "$PW_TMP/loop.conf" >/dev/null 2>"$PW_TMP/worker-loop.err" </dev/null || rc=$?
[ "$rc" = 2 ] && grep -q 'worker.reply.topic' "$PW_TMP/worker-loop.err" ||
  pw_fail "reply topic = request topic: exit $rc"

# 2. the environment: the file optional, PW_* winning over it
env_only() {
  env PW_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9 PW_KAFKA_GROUP_ID=env-group \
    PW_AZURE_TENANT_ID=$TENANT PW_AZURE_CLIENT_ID=$CLIENT PW_AZURE_CLIENT_SECRET=$SECRET "$@"
}
env_only "$pw" --check-config >"$PW_TMP/envonly.out" 2>"$PW_TMP/envonly.log" </dev/null ||
  pw_fail "environment-only --check-config: exit $?: $(cat "$PW_TMP/envonly.log")"
grep -q '^configuration ok: (environment)' "$PW_TMP/envonly.out" || pw_fail "$(cat "$PW_TMP/envonly.out")"
rc=0
env_only env PW_WORKER_REQUEST_TOPIC=adx.policy.replies "$pw" --check-config \
  >/dev/null 2>"$PW_TMP/envloop.log" </dev/null || rc=$?
[ "$rc" = 2 ] && grep -q 'worker.reply.topic' "$PW_TMP/envloop.log" ||
  pw_fail "PW_WORKER_REQUEST_TOPIC equal to the reply topic: exit $rc"
rc=0
env_only env PW_WORKER_NO_SUCH_KEY=1 "$pw" --check-config >/dev/null 2>"$PW_TMP/envbad.log" </dev/null || rc=$?
[ "$rc" = 2 ] && grep -q 'environment PW_WORKER_NO_SUCH_KEY: worker.no.such.key: unknown' "$PW_TMP/envbad.log" ||
  pw_fail "an unknown PW_WORKER_ variable: exit $rc: $(cat "$PW_TMP/envbad.log")"
printf 'worker.inflight.max=lots\n' >"$PW_TMP/over.conf"
env_only env PW_WORKER_INFLIGHT_MAX=5 "$pw" --check-config "$PW_TMP/over.conf" >/dev/null 2>"$PW_TMP/over.log" </dev/null &&
  pw_fail "the file's bad line was not reported under a PW_* override"
grep -qF "$PW_TMP/over.conf:1: worker.inflight.max" "$PW_TMP/over.log" || pw_fail "$(cat "$PW_TMP/over.log")"
pw_log "environment: file optional, unknown variables refused, every problem with its source"

# 3. a worker configured by its environment alone: one request end to end
e2e_start_kafka
e2e_start_sim
e2e_start_collectors
pw_spawn worker env PW_KAFKA_BOOTSTRAP_SERVERS="$KAFKA" PW_KAFKA_GROUP_ID=env-workers \
  PW_KAFKA_AUTO_OFFSET_RESET=earliest PW_KAFKA_TOPIC_METADATA_REFRESH_INTERVAL_MS=1000 \
  PW_KAFKA_SESSION_TIMEOUT_MS=6000 PW_KAFKA_HEARTBEAT_INTERVAL_MS=500 \
  PW_WORKER_ID=env-worker PW_WORKER_LOG_LEVEL=debug PW_WORKER_DRAIN_TIMEOUT_MS=15000 \
  PW_AZURE_TENANT_ID="$TENANT" PW_AZURE_CLIENT_ID="$CLIENT" PW_AZURE_CLIENT_SECRET="$SECRET" \
  PW_AZURE_CONNECT_TO="::127.0.0.1:$SIM_PORT" PW_AZURE_CA_FILE="$SIM_CA" \
  PW_AZURE_LRO_POLL_INTERVAL_MS=200 "$pw"
pw_wait_until 60 e2e__assigned worker || pw_fail "the environment-configured worker got no partitions"
arm=$(e2e_arm_target)
e2e_send_json env-retention "$(e2e_request env-retention \
  "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P11D\"}]")"
t=$(e2e_wait_terminal env-retention 90)
e2e_expect "environment-configured worker: succeeded by env-worker" \
  '.status == "succeeded" and .workerId == "env-worker"' "$t"
pw_stop worker TERM 60 || pw_fail "environment-configured worker: exit $? after SIGTERM"
e2e_check_no_secret
pw_log PASS
