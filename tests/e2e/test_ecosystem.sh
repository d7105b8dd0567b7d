#!/usr/bin/env bash
# e2e: replies that fit the Kafka ecosystem, and the audit trail.  Every reply event carries
# the CloudEvents Kafka binding's binary-mode headers (ce_specversion, ce_id, ce_source,
# ce_type, ce_time, ce_subject, content-type) and a W3C traceparent of the request's trace
# (a new span each); the trace id, who asked, why, the request's Kafka coordinates and the
# delivery attempt are in every reply body and every log line of the request;
# kafka_replyTopic / kafka_replyPartition (Spring request/reply) are honoured under the
# replyTo allow-list; a dead letter keeps the original key and headers and adds Spring's
# kafka_dlt-* headers.  Headers are read as bytes (tests/support/kafka_bytes.c).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
KB=${KAFKA_BYTES:-$PW_BIN_DIR/kafka-bytes}
[ -x "$KB" ] || { echo "kafka-bytes not built" >&2; exit 77; }
e2e_stack
arm=$(e2e_arm_target)
hexof() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }

TRACE=4bf92f3577b34da6a3ce929d0e0e4736
PARENT=00f067aa0ba902b7
TP="00-$TRACE-$PARENT-01"
TS="congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"

# 1. a traced request; 2. one without trace context (the worker starts a trace)
e2e_send_json ce-traced "$(e2e_request ce-traced \
  "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P10D\"}]")" \
  -H "traceparent=$TP" -H "tracestate=$TS" -H "kafka_correlationId=corr-ce"
e2e_send_json ce-untraced "$(e2e_request ce-untraced \
  "[{\"kind\":\"database.caching\",\"target\":$arm,\"hotCachePeriod\":\"P5D\"}]" '{"reason":"CHG-42 caching"}')" \
  -H "traceparent=00-00000000000000000000000000000000-$PARENT-01"
# 3. a rejected request: the audit trail and headers are on rejections too
e2e_send_json ce-rejected "$(e2e_request ce-rejected \
  "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"ten days\"}]")"
e2e_wait_terminal ce-traced 90 >/dev/null
e2e_wait_terminal ce-untraced 90 >/dev/null
e2e_wait_terminal ce-rejected 60 >/dev/null

n=$(grep -c '^{' "$PW_TMP/replies.out")
"$KB" consume "$KAFKA" "$REPLY_TOPIC" "$n" "$(pw__scale 30)" >"$PW_TMP/replies.bytes" ||
  pw_fail "kafka-bytes read fewer than $n replies"

python3 - "$PW_TMP/replies.bytes" "$PW_TMP/worker.err" "$TRACE" "$PARENT" "$TS" "$REQ_TOPIC" <<'PY' ||
import json, re, sys
replies, log, trace, parent, ts, req_topic = sys.argv[1:]
fail = []
def check(cond, what):
    if not cond:
        fail.append(what)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TP = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
events = {}
ce_ids = set()
for line in open(replies):
    m = json.loads(line)
    key = bytes.fromhex(m["key"]).decode()
    body = json.loads(m["value"])
    h = {}
    for name, hexv in m["headers"]:
        raw = bytes.fromhex(hexv)
        if name.startswith("ce_") or name in ("content-type", "traceparent", "tracestate"):
            try:
                v = raw.decode("utf-8")  # the binding: header values are UTF-8 strings
            except UnicodeDecodeError:
                fail.append(f"{key}: {name} is not UTF-8")
                continue
            check(name not in h, f"{key}: {name} twice")
            h[name] = v
        if name.startswith("ce_"):
            # attribute names: lower-case a-z 0-9, prefixed ce_
            check(re.fullmatch(r"ce_[a-z0-9]{1,20}", name) is not None, f"{key}: bad name {name}")
    events.setdefault(key, []).append((body, h))
    st = body["status"]
    for a in ("ce_specversion", "ce_id", "ce_source", "ce_type"):  # required attributes
        check(h.get(a), f"{key}/{st}: required {a} missing")
    check(h.get("ce_specversion") == "1.0", f"{key}: ce_specversion {h.get('ce_specversion')}")
    check(h.get("ce_id") not in ce_ids, f"{key}: ce_id {h.get('ce_id')} repeated")
    ce_ids.add(h.get("ce_id"))
    check(h.get("ce_source") == "/adx-policy-worker/e2e-worker", f"{key}: ce_source {h.get('ce_source')}")
    check(h.get("ce_type") == "example.adx-policy-worker.adx.policy." + st, f"{key}: ce_type {h.get('ce_type')} for {st}")
    check(RFC3339.match(h.get("ce_time", "")) is not None, f"{key}: ce_time {h.get('ce_time')} not RFC 3339 UTC")
    check(h.get("ce_time") == body["time"], f"{key}: ce_time differs from time")
    check(h.get("ce_subject") == key == body["requestId"], f"{key}: ce_subject {h.get('ce_subject')}")
    check(h.get("content-type") == "application/json", f"{key}: content-type {h.get('content-type')}")
    check(TP.match(h.get("traceparent", "")) is not None, f"{key}: traceparent {h.get('traceparent')}")
    # the audit trail in the body
    check(body.get("requestedBy") == "e2e@contoso.com", f"{key}/{st}: requestedBy {body.get('requestedBy')}")
    src = body.get("source", {})
    check(src.get("topic") == req_topic and isinstance(src.get("partition"), int)
          and isinstance(src.get("offset"), int), f"{key}/{st}: source {src}")
    check(body.get("deliveryAttempt") == 1, f"{key}/{st}: deliveryAttempt {body.get('deliveryAttempt')}")

for k in ("ce-traced", "ce-untraced", "ce-rejected"):
    check(k in events, f"no replies of {k}")
if fail:
    print("\n".join(fail)); sys.exit(1)

reasons = {"ce-traced": "e2e test", "ce-untraced": "CHG-42 caching", "ce-rejected": "e2e test"}
logs = [json.loads(l) for l in open(log) if l.startswith("{")]
for k, evs in events.items():
    tps = [TP.match(h["traceparent"]) for _, h in evs]
    tids = {t.group(1) for t in tps}
    spans = [t.group(2) for t in tps]
    check(len(tids) == 1, f"{k}: trace ids {tids}")
    tid = tids.pop()
    check(len(set(spans)) == len(spans), f"{k}: a span id repeated: {spans}")
    if k == "ce-traced":
        check(tid == trace, f"{k}: trace id {tid}, sent {trace}")
        check(parent not in spans, f"{k}: the request's span id reused")
        check(all(t.group(3) == "01" for t in tps), f"{k}: flags not carried")
        check(all(h.get("tracestate") == ts for _, h in evs), f"{k}: tracestate not carried")
    else:
        check(tid != trace and tid != "0" * 32, f"{k}: no new trace: {tid}")
        check(all("tracestate" not in h for _, h in evs), f"{k}: a tracestate out of nowhere")
    srcs = {json.dumps(b["source"], sort_keys=True) for b, _ in evs}
    check(len(srcs) == 1, f"{k}: sources {srcs}")
    src = json.loads(srcs.pop())
    check(all(b.get("reason") == reasons[k] for b, _ in evs), f"{k}: reason")
    # every log line of the request: trace id, audit fields, coordinates
    mine = [l for l in logs if l.get("requestId") == k]
    check(len(mine) >= 2, f"{k}: {len(mine)} log lines")
    for l in mine:
        want = {"traceId": tid, "requestedBy": "e2e@contoso.com", "reason": reasons[k],
                "topic": src["topic"], "partition": src["partition"], "offset": src["offset"],
                "deliveryAttempt": 1}
        for key, v in want.items():
            check(l.get(key) == v, f"{k}: log line {l.get('event')}: {key}={l.get(key)!r}, want {v!r}")
    if k != "ce-rejected":
        check(any(l["event"].startswith("azure.") for l in mine), f"{k}: no azure.* line with its id")
    if k == "ce-traced":
        # structured fields, not prose: method, host, path, HTTP status, Azure request id
        ok = [l for l in mine if l["event"] == "azure.call.ok" and l.get("method") == "PATCH"]
        check(len(ok) == 1 and ok[0].get("host") == "management.azure.com"
              and ok[0].get("path", "").startswith("/subscriptions/") and "?" not in ok[0].get("path", "")
              and ok[0].get("status") == 200 and len(ok[0].get("azureRequestId", "")) > 0,
              f"{k}: azure.call.ok keys: {ok}")
        done = [l for l in mine if l["event"] == "azure.http.done"]
        check(done and all(isinstance(l.get("status"), int) and l.get("host") and l.get("path")
                           and "azureRequestId" in l for l in done), f"{k}: azure.http.done keys")
        sent = [l for l in mine if l["event"] == "azure.http.send"]
        check(sent and all(l.get("method") in ("GET", "PATCH") and l.get("host") and isinstance(l.get("attempt"), int)
                           for l in sent), f"{k}: azure.http.send keys")
    rec = [l for l in mine if l["event"] in ("request.received", "request.rejected")]
    check(len(rec) == 1, f"{k}: received/rejected lines {len(rec)}")
if fail:
    print("\n".join(fail[:40])); sys.exit(1)
PY
  pw_fail "CloudEvents / trace context / audit checks failed (above)"

# kafka_correlationId stays echoed as bytes
e2e_expect "correlation id echoed" 'length > 0 and all(.[]; any(.[]; . == ["kafka_correlationId", "'"$(hexof corr-ce)"'"]))' \
  "$(jq -c 'select(.key == "'"$(hexof ce-traced)"'") | .headers' "$PW_TMP/replies.bytes" | jq -s -c .)"

# 4. kafka_replyTopic: an allowed topic is honoured; a refused one is ReplyToNotAllowed on the
# default topic; the body's replyTo wins over the header.
e2e_send_json ce-hdr-topic "$(e2e_request ce-hdr-topic \
  "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P11D\"}]")" \
  -H "kafka_replyTopic=$ALT_REPLY_TOPIC"
e2e_send_json ce-hdr-denied "$(e2e_request ce-hdr-denied \
  "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P12D\"}]")" \
  -H "kafka_replyTopic=someone.elses.topic"
e2e_send_json ce-body-wins "$(e2e_request ce-body-wins \
  "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P13D\"}]" "{\"replyTo\":\"$REPLY_TOPIC\"}")" \
  -H "kafka_replyTopic=$ALT_REPLY_TOPIC"
t=$(e2e_wait_terminal ce-hdr-topic 90 "$PW_TMP/altreplies.out")
e2e_expect "kafka_replyTopic honoured" '.status == "succeeded"' "$t"
[ -z "$(e2e_events ce-hdr-topic)" ] || pw_fail "ce-hdr-topic replies on the default topic too"
t=$(e2e_wait_terminal ce-hdr-denied 60)
e2e_expect "kafka_replyTopic under the allow-list" \
  '.status == "rejected" and .error.code == "ReplyToNotAllowed" and (.error.message | test("kafka_replyTopic"))' "$t"
t=$(e2e_wait_terminal ce-body-wins 90)
e2e_expect "the body's replyTo wins" '.status == "succeeded"' "$t"
[ -z "$(e2e_events ce-body-wins "$PW_TMP/altreplies.out")" ] || pw_fail "ce-body-wins went to the header's topic"
e2e_expect "nothing applied for the refused header" '.softDeletePeriod == "P13D"' "$(e2e_sim_db)"

# 5. kafka_replyPartition (4-byte big-endian): where the id lands by default, then the other
# partition asked for (the reply topic has 2).
printf '%s' "$(e2e_request ce-part "[{\"kind\":\"database.retention\",\"target\":$arm,\"softDeletePeriod\":\"P14D\"}]")" >"$PW_TMP/ce-part.json"
"$KB" produce "$KAFKA" "$REQ_TOPIC" "$(hexof ce-part)" "$PW_TMP/ce-part.json"
e2e_wait_terminal ce-part 90 >/dev/null
home=$(jq -r 'select(.key == "ce-part") | .partition' "$PW_TMP/replies.out" | sort -u)
[ "$home" = 0 ] || [ "$home" = 1 ] || pw_fail "ce-part replies on partitions '$home'"
other=$((1 - home))
before=$(jq -c 'select(.key == "ce-part")' "$PW_TMP/replies.out" | wc -l)
"$KB" produce "$KAFKA" "$REQ_TOPIC" "$(hexof ce-part)" "$PW_TMP/ce-part.json" \
  "kafka_replyPartition=0000000$other" "kafka_replyTopic=$(hexof "$REPLY_TOPIC")"
pw_wait_until 90 bash -c "[ \$(jq -c 'select(.key == \"ce-part\" and .partition == $other)' '$PW_TMP/replies.out' | jq -s 'map(.payload | fromjson | select(.status == \"succeeded\")) | length') -ge 1 ]" ||
  pw_fail "no reply of the second ce-part on partition $other: $(jq -c 'select(.key == "ce-part") | [.partition, .offset]' "$PW_TMP/replies.out")"
e2e_expect "every reply of the second ce-part on partition $other" "all(.[]; .partition == $other)" \
  "$(jq -c 'select(.key == "ce-part")' "$PW_TMP/replies.out" | tail -n +$((before + 1)) | jq -s -c .)"
# the second request of the same id is told apart by its coordinates
e2e_expect "two requests ce-part, two offsets, first deliveries" 'map(.source.offset) | unique | length == 2' \
  "$(e2e_events ce-part | jq -s -c 'map(select(.status == "succeeded")) | map(select(.deliveryAttempt == 1))')"

# 6. dead letter: original key (binary) and headers kept, Spring's kafka_dlt-* added
printf 'this is not json' >"$PW_TMP/notjson"
"$KB" produce "$KAFKA" "$REQ_TOPIC" deadbeef00ff "$PW_TMP/notjson" \
  "x-custom=0001ff02" "kafka_correlationId=$(hexof corr-dl)" "traceparent=$(hexof "$TP")"
pw_wait_until 60 bash -c "[ \$(grep -c '^{' '$PW_TMP/dlq.out' || true) -ge 1 ]" || pw_fail "no dead letter"
"$KB" consume "$KAFKA" "$DLQ_TOPIC" 1 "$(pw__scale 30)" >"$PW_TMP/dlq.bytes" || pw_fail "kafka-bytes read no dead letter"
python3 - "$PW_TMP/dlq.bytes" "$REQ_TOPIC" "$(hexof "$TP")" "$(hexof corr-dl)" <<'PY' ||
import json, struct, sys
m = json.loads(open(sys.argv[1]).readline())
req_topic, tp_hex, corr_hex = sys.argv[2:]
fail = []
def check(c, w):
    if not c: fail.append(w)
check(m["key"] == "deadbeef00ff", f"key {m['key']}")
check(m["value"] == "this is not json", f"payload {m['value']!r}")
hs = m["headers"]
check(hs[:3] == [["x-custom", "0001ff02"], ["kafka_correlationId", corr_hex], ["traceparent", tp_hex]],
      f"original headers not first and byte-exact: {hs[:3]}")
h = {n: bytes.fromhex(v) for n, v in hs}
check(h.get("kafka_dlt-original-topic") == req_topic.encode(), "kafka_dlt-original-topic")
p = h.get("kafka_dlt-original-partition", b"")
o = h.get("kafka_dlt-original-offset", b"")
t = h.get("kafka_dlt-original-timestamp", b"")
check(len(p) == 4 and str(struct.unpack(">i", p)[0]).encode() == h.get("pw-source-partition"), f"partition {p}")
check(len(o) == 8 and str(struct.unpack(">q", o)[0]).encode() == h.get("pw-source-offset"), f"offset {o}")
check(len(t) == 8 and struct.unpack(">q", t)[0] > 1_600_000_000_000, f"timestamp {t}")
check(h.get("kafka_dlt-original-timestamp-type") == b"CreateTime", "timestamp type")
check(h.get("kafka_dlt-exception-message", b"").startswith(b"InvalidJson: "), f"exception message {h.get('kafka_dlt-exception-message')}")
check(h.get("pw-error-code") == b"InvalidJson", "pw-error-code kept")
check(all(n != "kafka_dlt-exception-fqcn" for n, _ in hs), "a Java class name")
if fail:
    print("\n".join(fail)); print(m); sys.exit(1)
PY
  pw_fail "dead-letter header checks failed (above)"
# the dead letter's log line carries the coordinates and the request's trace id as keys
jq -e -s --arg t "$TRACE" 'map(select(.event == "request.deadletter" and .code == "InvalidJson" and .traceId == $t and (.partition | type) == "number" and (.offset | type) == "number")) | length == 1' \
  "$PW_TMP/worker.err" >/dev/null || pw_fail "request.deadletter line without its keys"
pw_log "ok: CloudEvents headers, trace context, Spring reply/dead-letter headers, audit trail"
