#!/usr/bin/env python3
"""tests/e2e/chaos_check.py: checks the delivery invariants of a chaos run.

usage: chaos_check.py REQUESTS REPLIES DLQ WORKER_LOG...

REQUESTS, REPLIES, DLQ: kcat -J lines of the request, reply and dead-letter topics.
WORKER_LOG: a worker's stderr (JSON log lines, debug level), named <worker.id>.err; a
file given as +<path> is a run that ended with a complete drain (every request it took got
its terminal reply), the others may have been killed or timed out.

(a) every request with an id has at least one terminal reply; a worker run never sends more
    terminal replies for an id than it took that id's message (exactly one per processing,
    none twice), and a run that drained sent exactly one per message it took and did not
    drop (a request of a revoked partition that had not started, or stopped between two
    operations, is dropped unanswered: its next owner answers it); every message without a
    usable id is on the dead-letter topic.  Byte-identical copies of one reply record count
    once (a resent batch, see read_replies).
(b) whenever a worker stored or committed offset N of a request partition, every message of
    that partition below N had its terminal reply (or dead letter) acknowledged: earlier in
    the same worker's log, or by another run.
Prints a summary; exits 1 with the violations.

The readers and check_delivery() are shared with tests/soak/soak_check.py (import this
module); keep them free of printing and exiting.
"""
import json
import os
import sys
import re
from collections import defaultdict

TERMINAL = {"succeeded", "failed", "rejected"}


def lines(path):
    """The JSON objects of a file of JSON lines; other lines are skipped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    pass


def read_requests(path):
    """Request messages (kcat -J): ({(partition, offset): id or None}, topic, {key: value})
    where id is None for a message not tied to a usable id, and the last dict maps
    (partition, offset) to the decoded request (None when it is not a JSON object)."""
    msgs, values = {}, {}
    topic = None
    for m in lines(path):
        topic = m["topic"]
        rid, v = None, None
        try:
            v = json.loads(m["payload"] or "")
            if not isinstance(v, dict):
                v = None
            elif isinstance(v.get("id"), str):
                rid = v["id"]
        except (ValueError, TypeError):
            pass
        msgs[(m["partition"], m["offset"])] = rid
        values[(m["partition"], m["offset"])] = v
    return msgs, topic, values


def read_replies(path, counts=None):
    """Reply events (kcat -J) in topic order (a request's events share a partition).

    A record whose payload is byte for byte one already read is the same event appended
    twice, not a second event: the worker builds every event anew (its own sequence number
    and time).  Such copies come from librdkafka resending its in-flight window after an
    injected Produce error: a real broker rejects the batches behind a failed one and drops
    resent ones, but librdkafka's mock cluster checks the idempotent producer's sequences
    only for transactional producers.  They are skipped (counted in counts["resent"])."""
    out = []
    seen = set()
    for m in lines(path):
        try:
            ev = json.loads(m["payload"])
        except (ValueError, TypeError):
            continue
        if not isinstance(ev, dict):
            continue
        if m["payload"] in seen:
            if counts is not None:
                counts["resent"] = counts.get("resent", 0) + 1
            continue
        seen.add(m["payload"])
        out.append(ev)
    return out


def terminals(events):
    """The terminal events among reply events, in order."""
    return [ev for ev in events if ev.get("status") in TERMINAL]


def read_dlq(path):
    """(partition, offset) of every source message on the dead-letter topic."""
    dlq = set()
    for m in lines(path):
        h = {}
        for i in range(0, len(m.get("headers") or []), 2):
            h[m["headers"][i]] = m["headers"][i + 1]
        if "pw-source-partition" in h:
            dlq.add((int(h["pw-source-partition"]), int(h["pw-source-offset"])))
    return dlq


def check_delivery(msgs, topic, terms, dlq, logs):
    """Invariants (a) and (b) of the module doc.  msgs, topic: read_requests(); terms:
    terminal reply events; dlq: read_dlq(); logs: worker log paths, "+path" for a run that
    drained.  Returns (violations, number of stores/commits checked)."""
    bad = []
    term = defaultdict(int)
    term_by_worker = defaultdict(int)
    for ev in terms:
        term[ev["requestId"]] += 1
        term_by_worker[(ev["requestId"], ev.get("workerId"))] += 1

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
        dropped = defaultdict(int)
        for ln in lines(path):
            e = ln.get("event")
            if e in ("request.received", "request.rejected") and ln.get("requestId"):
                taken[ln["requestId"]] += 1
            if e == "request.dropped" and ln.get("requestId"):
                dropped[ln["requestId"]] += 1
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
            if w in drained and sent != n - dropped[rid]:
                bad.append(f"(a) {w} drained but sent {sent} terminal replies for {rid}, took it "
                           f"{n}, dropped it {dropped[rid]}")

    # (b) stores and commits only behind acknowledged messages.  Per partition, the offsets
    # in order and a cursor on the first one not yet acknowledged (by this run so far, or by
    # another run): acknowledgements only accumulate, so the cursor only moves forward.
    offsets = defaultdict(list)
    for (p, o) in msgs:
        offsets[p].append(o)
    for p in offsets:
        offsets[p].sort()
    checked = 0
    for w, evs in events.items():
        others = set()
        for o, s in acked_by.items():
            if o != w:
                others |= s
        mine = set()
        cursor = defaultdict(int)
        for e, p, off in evs:
            if e == "reply.acked":
                mine.add((p, off))
                continue
            checked += 1
            offs = offsets.get(p, [])
            i = cursor[p]
            while i < len(offs) and ((p, offs[i]) in mine or (p, offs[i]) in others):
                i += 1
            cursor[p] = i
            if i < len(offs) and offs[i] < off:
                mo = offs[i]
                bad.append(f"(b) {w} {e} partition {p} @ {off} before message {mo} "
                           f"({msgs[(p, mo)]}) was acknowledged")
    return bad, checked


def main():
    req_path, rep_path, dlq_path = sys.argv[1:4]
    msgs, topic, _ = read_requests(req_path)
    counts = {}
    terms = terminals(read_replies(rep_path, counts))
    dlq = read_dlq(dlq_path)
    bad, checked = check_delivery(msgs, topic, terms, dlq, sys.argv[4:])
    ids = {rid for rid in msgs.values() if rid}
    print(f"chaos_check: {len(msgs)} request messages, {len(ids)} ids, "
          f"{len(terms)} terminal replies ({counts.get('resent', 0)} resent copies), "
          f"{len(dlq)} dead letters, "
          f"{checked} stores/commits checked, {len(bad)} violations")
    for b in bad[:50]:
        print("  " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
