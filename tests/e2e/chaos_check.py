#!/usr/bin/env python3
"""tests/e2e/chaos_check.py: checks the delivery invariants of a chaos run.

usage: chaos_check.py REQUESTS REPLIES DLQ WORKER_LOG...

REQUESTS, REPLIES, DLQ: kcat -J lines of the request, reply and dead-letter topics.
WORKER_LOG: a worker's stderr (JSON log lines, debug level), named <worker.id>.err; a
file given as +<path> is a run that ended with a complete drain (every request it took got
its terminal reply), the others may have been killed or timed out.

(a) every request with an id has at least one terminal reply; a worker run never sends more
    terminal replies for an id than it took that id's message (exactly one per processing,
    none twice), and a run that drained sent exactly one per message it took; every message
    without a usable id is on the dead-letter topic.  Byte-identical copies of one reply
    record count once (a resent batch, see below).
(b) whenever a worker stored or committed offset N of a request partition, every message of
    that partition below N had its terminal reply (or dead letter) acknowledged: earlier in
    the same worker's log, or by another run.
Prints a summary; exits 1 with the violations.
"""
import json
import os
import sys
import re
from collections import defaultdict

TERMINAL = {"succeeded", "failed", "rejected"}


def lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    pass


def main():
    req_path, rep_path, dlq_path = sys.argv[1:4]
    logs = sys.argv[4:]
    bad = []

    # Request messages: (partition, offset) -> id (None when not tied to an id).
    msgs = {}
    topic = None
    for m in lines(req_path):
        topic = m["topic"]
        rid = None
        try:
            v = json.loads(m["payload"] or "")
            if isinstance(v, dict) and isinstance(v.get("id"), str):
                rid = v["id"]
        except (ValueError, TypeError):
            pass
        msgs[(m["partition"], m["offset"])] = rid

    # Terminal replies per id and per (id, workerId).  A record whose payload is byte for byte
    # one already counted is the same event appended twice, not a second terminal reply: the
    # worker builds every event anew (its own sequence number and time).  The copy comes from
    # librdkafka resending its in-flight window after an injected Produce error: a real broker
    # rejects the batches behind a failed one (out of order) and drops resent ones (duplicate
    # sequence), but librdkafka's mock cluster checks the idempotent producer's sequences only
    # for transactional producers, so it appends them once in the window and again on resend.
    term = defaultdict(int)
    term_by_worker = defaultdict(int)
    seen_payloads = set()
    resent = 0
    for m in lines(rep_path):
        try:
            ev = json.loads(m["payload"])
        except (ValueError, TypeError):
            continue
        if ev.get("status") in TERMINAL:
            if m["payload"] in seen_payloads:
                resent += 1
                continue
            seen_payloads.add(m["payload"])
            term[ev["requestId"]] += 1
            term_by_worker[(ev["requestId"], ev.get("workerId"))] += 1
    dlq = set()
    for m in lines(dlq_path):
        h = {}
        for i in range(0, len(m.get("headers") or []), 2):
            h[m["headers"][i]] = m["headers"][i + 1]
        if "pw-source-partition" in h:
            dlq.add((int(h["pw-source-partition"]), int(h["pw-source-offset"])))

    # (a) at least one terminal overall.
    ids = {rid for rid in msgs.values() if rid}
    for rid in sorted(ids):
        if term[rid] < 1:
            bad.append(f"(a) {rid}: no terminal reply")
    for key, rid in msgs.items():
        if rid is None and key not in dlq:
            bad.append(f"(a) message {key} has no id and is not on the dead-letter topic")

    # Worker logs: receipts, acknowledgements, stores and commits, in log order.
    acked_by = {}  # worker -> set of (partition, offset)
    events = {}
    drained = set()
    for arg in logs:
        path = arg[1:] if arg.startswith("+") else arg
        w = os.path.basename(path)[: -len(".err")]
        if arg.startswith("+"):
            drained.add(w)
        evs = []
        taken = defaultdict(int)
        for ln in lines(path):
            e = ln.get("event")
            if e in ("request.received", "request.rejected") and ln.get("requestId"):
                taken[ln["requestId"]] += 1
            if e in ("reply.acked", "kafka.stored", "kafka.committed"):
                mm = re.match(r"(\S+) \[(\d+)\] @ (-?\d+)", ln.get("msg", ""))
                if mm and mm.group(1) == topic:
                    evs.append((e, int(mm.group(2)), int(mm.group(3))))
        events[w] = evs
        acked_by[w] = {(p, o) for e, p, o in evs if e == "reply.acked"}
        for rid, n in taken.items():
            sent = term_by_worker[(rid, w)]
            if sent > n:
                bad.append(f"(a) {w} sent {sent} terminal replies for {rid}, took it {n} times")
            if w in drained and sent != n:
                bad.append(f"(a) {w} drained but sent {sent} terminal replies for {rid}, took it {n}")

    # (b) stores and commits only behind acknowledged messages.
    checked = 0
    for w, evs in events.items():
        others = set()
        for o, s in acked_by.items():
            if o != w:
                others |= s
        mine = set()
        for e, p, off in evs:
            if e == "reply.acked":
                mine.add((p, off))
                continue
            checked += 1
            for (mp, mo) in msgs:
                if mp == p and mo < off and (mp, mo) not in mine and (mp, mo) not in others:
                    bad.append(f"(b) {w} {e} partition {p} @ {off} before message {mo} "
                               f"({msgs[(mp, mo)]}) was acknowledged")
                    break
    print(f"chaos_check: {len(msgs)} request messages, {len(ids)} ids, "
          f"{sum(term.values())} terminal replies ({resent} resent copies), "
          f"{len(dlq)} dead letters, "
          f"{checked} stores/commits checked, {len(bad)} violations")
    for b in bad[:50]:
        print("  " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
