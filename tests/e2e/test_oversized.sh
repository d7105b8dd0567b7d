#!/usr/bin/env bash
# e2e: a message the worker accepts (up to worker.message.max.bytes, 1 MiB) but larger than
# librdkafka's producer limit (message.max.bytes, 1,000,000) cannot be dead-lettered whole.
# Its dead letter is cut to fit, headers included, and says so; the partition's offsets go
# on being committed past it (it used to stay unacknowledged and hold every later offset of
# its partition back for good).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_stack worker.message.max.bytes=1048576
arm=$(e2e_arm_target)

# Not JSON and no id, so a dead letter; between the producer's limit and the worker's.
big=$PW_TMP/big
size=1040000
head -c "$size" /dev/zero | tr '\0' 'x' >"$big"
# kcat's own producer limit is librdkafka's default too: raise it so the message exists.
e2e_send big-1 "$big" -p 0 -X message.max.bytes=2000000 -H kafka_correlationId=corr-big
pw_log "sent a $size-byte message to partition 0"

# A normal request behind it on the same partition.
e2e_send_json after-big "$(e2e_request after-big "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P9D\"}]" '{"dryRun":true}')" -p 0
t=$(e2e_wait_terminal after-big 90)
e2e_expect "after-big succeeded" '.status == "succeeded"' "$t"

# The dead letter arrives, cut, with its headers.
pw_wait_until 60 bash -c "[ \$(grep -c '^{' '$PW_TMP/dlq.out' 2>/dev/null || echo 0) -ge 1 ]" ||
  pw_fail "no dead letter for the $size-byte message"
m=$(jq -c 'select(.headers != null) | (.headers | [range(0; length; 2) as $i | {key: .[$i], value: .[$i + 1]}] | from_entries) as $h | select($h["kafka_correlationId"] == "corr-big") | {h: $h, len: (.payload | length), x: (.payload | test("^x+$"))}' "$PW_TMP/dlq.out" | head -n 1)
[ -n "$m" ] || pw_fail "the dead letter is not the big message's: $(head -c 600 "$PW_TMP/dlq.out")"
printf '%s' "$m" | jq -e --arg size "$size" \
  '.h["pw-error-code"] == "InvalidJson" and .h["pw-payload-truncated"] == "true" and
   .h["pw-payload-bytes"] == $size and .h["pw-source-partition"] == "0" and
   .len > 900000 and .len < 1000000 and .x' >/dev/null ||
  pw_fail "dead letter of the big message: $m"
pw_log "dead letter: $(printf '%s' "$m" | jq -c '{len, truncated: .h["pw-payload-truncated"]}')"

# The later request's offset is committed: the big message no longer holds partition 0 back.
off=$(grep '"event":"request.received"' "$PW_TMP/worker.err" | grep '"requestId":"after-big"' |
  sed -n 's/.*adx\.policy\.requests \[0\] @ \([0-9]*\).*/\1/p' | head -n 1)
[ -n "$off" ] || pw_fail "no request.received line for after-big on partition 0"
next=$((off + 1))
pw_wait_until 60 grep -q "\"event\":\"kafka.committed\",\"msg\":\"adx.policy.requests \\[0\\] @ $next\"" \
  "$PW_TMP/worker.err" ||
  pw_fail "partition 0 was not committed past after-big (offset $off): $(grep -E '"event":"(kafka.committed|reply.undeliverable|deadletter\.[a-z_]+)"' "$PW_TMP/worker.err" | tail -n 5)"
pw_log "partition 0 committed at $next"
grep -q '"event":"reply.undeliverable"' "$PW_TMP/worker.err" && pw_fail "a dead letter was given up"

e2e_worker_alive
e2e_check_no_secret
pw_stop worker TERM 60 || pw_fail "worker exit status $? after SIGTERM"
pw_log PASS
