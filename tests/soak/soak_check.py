#!/usr/bin/env python3
"""tests/soak/soak_check.py: the soak run's helpers and its report (tests/soak/soak.sh).

usage:
  soak_check.py gen STATE_IN STATE_OUT LINES_OUT REQUESTS TARGETS SEED
      the simulator state with the soak's databases and tables (from STATE_IN, the default
      state) and the requests, one "key<TAB>json" line each, key = the request's target
  soak_check.py pace LINES SECONDS
      print LINES' lines spread evenly over SECONDS (feed a kcat producer)
  soak_check.py poll BASE_URL CA_FILE OUT
      append the simulator's request log (/_sim/requests?since=SEQ) to OUT every second,
      one JSON line per entry ({"gap": [from, to]} where the ring dropped entries unread);
      SIGTERM: one last poll, then exit 0
  soak_check.py missing LINES REPLIES
      print how many request ids of LINES have no terminal reply yet
  soak_check.py report DIR
      read DIR (requests.out, replies.out, dlq.out, simlog.jsonl, final-state.json,
      meta.json, the worker logs meta.json names), print the figures, write DIR/soak.json;
      exit 1 when a check fails

Definitions (report):
- a target is a database (database.retention / database.caching through ARM) or a table
  (table.caching / table.retention through Kusto); request k of a target sets P{k}D.
- successful write: a 2xx answer in the simulator's log to an ARM PATCH of the database
  carrying softDeletePeriod/hotCachePeriod, or to a Kusto .alter... policy command.  Per
  target, in log order s_1, s_2, ...: s_i is out of order when s_i < M = max(s_1..s_{i-1})
  and M is not written again after i (a redelivery replays forward and catches up; a stale
  writer does not).
- wrong final value: the simulator's final value differs from the value of the target's
  highest-k request with a succeeded terminal reply (the initial value when none has).
- failed by a covered fault: ids whose last terminal reply is failed with a retryable error
  (every fault of the soak lasts less than worker.operation.timeout.ms).
- duplicate-terminal share: (terminal replies - ids with a terminal) / ids.
The delivery invariants of tests/e2e/chaos_check.py are checked on the same run and
reported as well.
"""
import json
import os
import random
import re
import signal
import ssl
import sys
import time
import urllib.request
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import chaos_check  # noqa: E402  (shared readers and delivery invariants)

INITIAL_DAYS = 3650  # every soak target starts here; requests set 1, 2, 3, ... days
TABLES_PER_DB = 10
DUP_SHARE_MAX = 5.0  # percent
# Error codes that name a transient fault (the reply's error.retryable says so too).
COVERED_CODES = {"Throttled", "AzureUnavailable", "DeadlineExceeded", "AuthenticationFailed",
                 "OutcomeUnknown"}
ROUTES = ("database.retention", "database.caching", "table.caching", "table.retention")


# ---- targets -------------------------------------------------------------------------

def target_of(t):
    """Target number t: (kind, database, table or None, Kafka key)."""
    kind = ROUTES[t % 4]
    j = t // 4
    if kind == "database.retention":
        return kind, f"soakr{j}", None, f"soakr{j}"
    if kind == "database.caching":
        return kind, f"soakc{j}", None, f"soakc{j}"
    db = f"soakt{j // TABLES_PER_DB}"
    table = ("C" if kind == "table.caching" else "R") + str(j % TABLES_PER_DB)
    return kind, db, table, f"{db}/{table}"


def days(v):
    """Whole days of an ISO-8601 duration (P5D, P1W, P1DT0H) or a .NET timespan
    (5.00:00:00), or None."""
    if not isinstance(v, str):
        return None
    m = re.fullmatch(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:0+H)?(?:0+M)?(?:0+S)?)?", v)
    if m and (m.group(1) or m.group(2)):
        return int(m.group(1) or 0) * 7 + int(m.group(2) or 0)
    m = re.fullmatch(r"(\d+)\.00:00:00(?:\.0+)?", v)
    if m:
        return int(m.group(1))
    return None


def gen(state_in, state_out, lines_out, n, ntargets, seed):
    with open(state_in, encoding="utf-8") as f:
        state = json.load(f)
    sub = state["subscriptions"][0]
    rg = sub["resourceGroups"][0]
    cluster = rg["clusters"][0]
    template = dict(cluster["databases"][0])
    template.pop("policies", None)
    iso = f"P{INITIAL_DAYS}D"
    dbs, tables = {}, defaultdict(list)
    targets = [target_of(t) for t in range(ntargets)]
    for kind, db, table, _ in targets:
        dbs.setdefault(db, None)
        if table:
            tables[db].append(table)
    cluster["databases"] = []
    for db in dbs:
        d = dict(template, name=db, softDeletePeriod=iso, hotCachePeriod=iso)
        d["tables"] = [{"name": t, "policies": {}} for t in tables.get(db, [])]
        cluster["databases"].append(d)
    state["settings"] = dict(state.get("settings", {}), lroDurationMs=300,
                             lroRetryAfterSeconds=0, armWriteBucket=100000,
                             armWriteRefillPerSecond=100000, armReadBucket=100000,
                             armReadRefillPerSecond=100000, kustoMaxConcurrent=64,
                             tokenLifetimeSeconds=30)
    with open(state_out, "w", encoding="utf-8") as f:
        json.dump(state, f)

    rnd = random.Random(seed)
    count = [0] * ntargets
    with open(lines_out, "w", encoding="utf-8") as f:
        for i in range(1, n + 1):
            t = rnd.randrange(ntargets)
            count[t] += 1
            kind, db, table, key = targets[t]
            if table:
                target = {"clusterUri": cluster["uri"], "database": db, "table": table}
            else:
                target = {"subscriptionId": sub["id"], "resourceGroup": rg["name"],
                          "cluster": cluster["name"], "database": db}
            field = "softDeletePeriod" if kind.endswith("retention") else "hotCachePeriod"
            op = {"kind": kind, "target": target, field: f"P{count[t]}D"}
            req = {"schema": "adx-policy-request/v1", "id": f"soak-{i}",
                   "requestedBy": "soak@contoso.com", "reason": f"soak {key} #{count[t]}",
                   "operations": [op]}
            f.write(key + "\t" + json.dumps(req, separators=(",", ":")) + "\n")


def request_target(req):
    """(key, k) of a soak request (decoded JSON), or None."""
    try:
        op = req["operations"][0]
        tg = op["target"]
        key = f"{tg['database']}/{tg['table']}" if op["kind"].startswith("table.") \
            else tg["database"]
        k = days(op.get("softDeletePeriod", op.get("hotCachePeriod")))
        return (key, k) if k is not None else None
    except (KeyError, IndexError, TypeError):
        return None


# ---- pacing, polling, progress --------------------------------------------------------

def pace(lines_path, seconds):
    with open(lines_path, encoding="utf-8") as f:
        rows = f.readlines()
    start = time.monotonic()
    step = seconds / max(1, len(rows))
    for i, row in enumerate(rows):
        delay = start + i * step - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sys.stdout.write(row)
        sys.stdout.flush()


# Log fields kept (bodies only where a write may be: they are what the checks parse).
KEEP = ("seq", "time", "method", "host", "path", "status", "reset", "durationMs")
KEEP_HEADERS = ("x-ms-client-request-id", "x-ms-correlation-request-id", "user-agent")


def poll(base, ca, out_path):
    ctx = ssl.create_default_context(cafile=ca)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    since = 0
    with open(out_path, "a", encoding="utf-8") as out:
        while True:
            last_round = bool(stop)
            try:
                with urllib.request.urlopen(f"{base}/_sim/requests?since={since}",
                                            context=ctx, timeout=30) as r:
                    doc = json.load(r)
            except (OSError, ValueError) as e:
                print(f"soak poll: {e}", file=sys.stderr)
                doc = None
            if doc is not None:
                entries = doc.get("requests", [])
                expect = since + 1
                for e in entries:
                    if e["seq"] > expect:
                        out.write(json.dumps({"gap": [expect, e["seq"] - 1]}) + "\n")
                    expect = e["seq"] + 1
                    row = {k: e.get(k) for k in KEEP}
                    if e.get("method") in ("PATCH", "PUT", "POST"):
                        row["body"] = e.get("body")
                    hdrs = {k.lower(): v for k, v in (e.get("headers") or {}).items()}
                    row["headers"] = {k: hdrs[k] for k in KEEP_HEADERS if k in hdrs}
                    out.write(json.dumps(row, separators=(",", ":")) + "\n")
                # The answer is a snapshot: every entry up to lastSeq still in the ring.
                last = doc.get("lastSeq", since)
                if last >= expect:
                    out.write(json.dumps({"gap": [expect, last]}) + "\n")
                since = max(since, last)
                out.flush()
            if last_round:
                return 0
            for _ in range(10):
                if stop:
                    break
                time.sleep(0.1)


def missing(lines_path, replies_path):
    ids = set()
    with open(lines_path, encoding="utf-8") as f:
        for row in f:
            ids.add(json.loads(row.split("\t", 1)[1])["id"])
    done = set()
    if os.path.exists(replies_path):
        for ev in chaos_check.terminals(chaos_check.read_replies(replies_path)):
            done.add(ev.get("requestId"))
    print(len(ids - done))


# ---- the report -----------------------------------------------------------------------

def sim_writes(simlog_path):
    """Successful writes per target, in log order: {key: [(k, entry)]}; plus the log's
    counts (entries, lost entries, injected answers)."""
    writes = defaultdict(list)
    stats = defaultdict(int)
    # one table, or several in one coalesced command: .alter tables (['T1'], ['T2']) policy ...
    alter = re.compile(
        r"\.alter(?:-merge)?\s+(?:table\s+(\['[^']+'\])|tables\s+\(([^)]*)\))\s+policy\s+"
        r"(caching|retention)\s+(?:hot|softdelete)\s*=\s*(\d+)d\b")
    for e in chaos_check.lines(simlog_path):
        if "gap" in e:
            stats["lost"] += e["gap"][1] - e["gap"][0] + 1
            continue
        stats["entries"] += 1
        host, st = e.get("host") or "", e.get("status") or 0
        if host == "login.microsoftonline.com":
            if st >= 500:
                stats["token_5xx"] += 1
            continue
        if st in (429, 500, 503):
            stats[f"injected_{st}"] += 1
        if e.get("reset"):
            stats["resets"] += 1
        if not 200 <= st < 300:
            continue
        body = e.get("body") or ""
        if host == "management.azure.com" and e.get("method") == "PATCH":
            m = re.search(r"/databases/([^/?]+)", e.get("path") or "")
            try:
                props = json.loads(body).get("properties", {})
            except (ValueError, AttributeError):
                continue
            for field in ("softDeletePeriod", "hotCachePeriod"):
                k = days(props.get(field))
                if m and k is not None:
                    writes[m.group(1)].append((k, e))
        elif host.endswith(".kusto.windows.net") and e.get("method") == "POST":
            try:
                doc = json.loads(body)
            except ValueError:
                continue
            m = alter.search(doc.get("csl") or "")
            if m:
                for t in re.findall(r"\['([^']+)'\]", m.group(1) or m.group(2)):
                    writes[f"{doc.get('db')}/{t}"].append((int(m.group(4)), e))
    return writes, stats


def out_of_order(seq):
    """Indexes i of out-of-order writes in [(k, entry)] (module doc)."""
    bad = []
    best = None
    for i, (k, _) in enumerate(seq):
        if best is not None and k < best and all(k2 != best for k2, _ in seq[i + 1:]):
            bad.append((i, best))
        best = k if best is None else max(best, k)
    return bad


def final_values(state):
    """{key: days} of every soak target in the simulator's final state."""
    out = {}
    for sub in state.get("subscriptions", []):
        for rg in sub.get("resourceGroups", []):
            for cl in rg.get("clusters", []):
                for db in cl.get("databases", []):
                    name = db.get("name", "")
                    if name.startswith("soakr"):
                        out[name] = days(db.get("softDeletePeriod"))
                    elif name.startswith("soakc"):
                        out[name] = days(db.get("hotCachePeriod"))
                    for t in db.get("tables", []):
                        pol = t.get("policies") or {}
                        if t["name"].startswith("C"):
                            v = (pol.get("caching") or {}).get("DataHotSpan")
                            if isinstance(v, dict):  # {"Value": "d.hh:mm:ss"}, as Kusto shows it
                                v = v.get("Value")
                        else:
                            v = (pol.get("retention") or {}).get("SoftDeletePeriod")
                        out[f"{name}/{t['name']}"] = days(v) if v else INITIAL_DAYS
    return out


def calls_by_client_id(logs):
    """{client request id: "worker run/requestId"} from the workers' azure.call.start lines
    (they name the id each Azure call carries as x-ms-client-request-id)."""
    out = {}
    for path in logs:
        path = path.lstrip("+")
        w = os.path.basename(path)[: -len(".err")]
        for ln in chaos_check.lines(path):
            if ln.get("event") == "azure.call.start":
                m = re.search(r"client request id (\S+)\)", ln.get("msg", ""))
                if m:
                    out[m.group(1)] = f"{w}/{ln.get('requestId')}"
    return out


def report(d):
    p = lambda name: os.path.join(d, name)  # noqa: E731
    with open(p("meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    msgs, topic, values = chaos_check.read_requests(p("requests.out"))
    events = chaos_check.read_replies(p("replies.out"))
    terms = chaos_check.terminals(events)
    dlq = chaos_check.read_dlq(p("dlq.out"))
    logs = [("+" if r["drained"] else "") + p(r["name"] + ".err") for r in meta["runs"]]
    delivery_bad, checked = chaos_check.check_delivery(msgs, topic, terms, dlq, logs)

    # Requests: id -> (target, k), from the request topic itself.
    req_of = {}
    for key, rid in msgs.items():
        tk = request_target(values[key]) if rid and values[key] else None
        if rid and tk:
            req_of[rid] = tk
    ids = {rid for rid in msgs.values() if rid}
    by_id = defaultdict(list)
    for ev in terms:
        by_id[ev["requestId"]].append(ev)
    no_terminal = sorted(ids - set(by_id), key=lambda s: int(s.split("-")[-1]))
    statuses = defaultdict(int)
    for ev in terms:
        statuses[ev["status"]] += 1

    covered, other_failed = [], []
    for rid, evs in by_id.items():
        last = evs[-1]
        if last["status"] != "failed":
            continue
        err = last.get("error") or {}
        if err.get("retryable") or err.get("code") in COVERED_CODES:
            covered.append((rid, err.get("code")))
        else:
            other_failed.append((rid, err.get("code")))
    fail_codes = defaultdict(int)
    for _, code in covered + other_failed:
        fail_codes[code] += 1

    writes, logstats = sim_writes(p("simlog.jsonl"))
    ooo = []
    for key, seq in writes.items():
        for i, best in out_of_order(seq):
            ooo.append((key, seq[i][0], best, seq[i][1]))
    ooo.sort(key=lambda x: x[3]["seq"])

    with open(p("final-state.json"), encoding="utf-8") as f:
        final = final_values(json.load(f))
    want = {}
    for rid, (key, k) in req_of.items():
        if any(ev["status"] == "succeeded" for ev in by_id.get(rid, [])):
            want[key] = max(want.get(key, 0), k)
    wrong = []
    for key in sorted(final):
        expect = want.get(key, INITIAL_DAYS)
        if final[key] != expect:
            wrong.append((key, final[key], expect))

    with_terminal = len(set(by_id) & ids)
    dup = len(terms) - len(set(by_id))
    share = 100.0 * dup / len(ids) if ids else 0.0
    injected = sum(logstats[f"injected_{s}"] for s in (429, 500, 503))
    fig = {
        "requests without a terminal reply": len(no_terminal),
        "out-of-order writes": len(ooo),
        "wrong final values": len(wrong),
        "requests failed by a fault their deadline covered": len(covered),
        "duplicate-terminal share": round(share, 2),
        "requests": meta["requests"], "request messages": len(msgs), "ids": len(ids),
        "targets": len(final), "ids with a terminal": with_terminal,
        "terminal replies": len(terms), "duplicate terminals": dup,
        "terminal statuses": dict(statuses), "failed (last terminal) by code": dict(fail_codes),
        "failed (last terminal) not retryable": len(other_failed),
        "kills": meta["kills"], "worker runs": len(meta["runs"]),
        "429/5xx injected": injected,
        "injected by status": {s: logstats[f"injected_{s}"] for s in (429, 500, 503)},
        "token endpoint 5xx": logstats["token_5xx"], "successful writes":
            sum(len(s) for s in writes.values()),
        "sim log entries": logstats["entries"], "sim log entries lost": logstats["lost"],
        "delivery invariant violations (chaos_check)": len(delivery_bad),
        "stores/commits checked": checked,
        "produce seconds": meta["seconds"], "elapsed seconds": meta["elapsed"],
        "worker binaries": meta.get("bin_dir"),
    }
    for label in ("requests without a terminal reply", "out-of-order writes",
                  "wrong final values", "requests failed by a fault their deadline covered"):
        print(f"{label}: {fig[label]}")
    print(f"duplicate-terminal share: {share:.2f}%")
    for label in ("requests", "ids", "ids with a terminal", "terminal replies",
                  "duplicate terminals", "targets", "kills", "worker runs", "429/5xx injected",
                  "token endpoint 5xx", "successful writes", "sim log entries",
                  "sim log entries lost", "failed (last terminal) not retryable",
                  "delivery invariant violations (chaos_check)", "produce seconds",
                  "elapsed seconds"):
        print(f"{label}: {fig[label]}")
    print(f"terminal statuses: {json.dumps(fig['terminal statuses'], sort_keys=True)}")
    if fail_codes:
        print(f"failed (last terminal) by code: {json.dumps(fig['failed (last terminal) by code'])}")

    details = []
    for rid in no_terminal:
        details.append(f"no terminal: {rid} {req_of.get(rid)}")
    callers = calls_by_client_id(logs) if ooo else {}
    for key, k, best, e in ooo:
        crid = (e.get("headers") or {}).get("x-ms-client-request-id")
        details.append(f"out of order: {key} wrote {k} after {best} (never rewritten): log seq "
                       f"{e['seq']} {e['time']} {e['method']} {e['host']}, sent by "
                       f"{callers.get(crid, '?')} (client request id {crid})")
    for key, got, expect in wrong:
        details.append(f"wrong final: {key} is {got}, highest succeeded request sets {expect}")
    for rid, code in covered + other_failed:
        details.append(f"failed: {rid} {req_of.get(rid)} {code}")
    details += delivery_bad
    with open(p("soak-details.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(details) + ("\n" if details else ""))
    for line in details[:20]:
        print("  " + line)
    if len(details) > 20:
        print(f"  ... {len(details) - 20} more in {p('soak-details.txt')}")
    fig["details"] = details[:200]
    with open(p("soak.json"), "w", encoding="utf-8") as f:
        json.dump(fig, f, indent=1, sort_keys=True)
    print(f"figures: {p('soak.json')}")
    failed = any(fig[label] for label in ("requests without a terminal reply",
                                          "out-of-order writes", "wrong final values",
                                          "requests failed by a fault their deadline covered"))
    return 1 if failed or share > DUP_SHARE_MAX or logstats["lost"] else 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "gen" and len(argv) == 8:
        gen(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]), argv[7])
        return 0
    if cmd == "pace" and len(argv) == 4:
        pace(argv[2], float(argv[3]))
        return 0
    if cmd == "poll" and len(argv) == 5:
        return poll(argv[2], argv[3], argv[4])
    if cmd == "missing" and len(argv) == 4:
        missing(argv[2], argv[3])
        return 0
    if cmd == "report" and len(argv) == 3:
        return report(argv[2])
    print(__doc__.split("Definitions")[0], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
