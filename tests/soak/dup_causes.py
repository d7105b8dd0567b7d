#!/usr/bin/env python3
"""tests/soak/dup_causes.py DIR: why each duplicate terminal reply of a soak run happened.

For every request id answered more than once, takes each pair of consecutive terminal
replies (first by run W1 at t1, next by run W2 at t2) and says what stood between them,
from the runs' logs (debug level: kafka.committed, kafka.commit_failed, kafka.revoked):
  - a commit covering the request's offset that landed (then the next owner should have
    skipped it: a bug to look at), or
  - W1's commits refused meanwhile ("Group rebalance in progress": librdkafka's mock
    coordinator refuses commits while a rebalance is joining, where Kafka accepts them from
    a member of the current generation), W1 revoked, W1 killed.
Prints counts per cause, most frequent first.  By hand, after tests/soak/soak.sh."""
import collections
import datetime
import glob
import json
import os
import re
import sys


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main(d):
    where = {}
    for line in open(os.path.join(d, "requests.out")):
        r = json.loads(line)
        where.setdefault(json.loads(r["payload"])["id"], (r["partition"], r["offset"]))
    terms = collections.defaultdict(list)
    for line in open(os.path.join(d, "replies.out")):
        try:
            p = json.loads(json.loads(line)["payload"])
        except (ValueError, KeyError, TypeError):
            continue
        if p.get("status") in ("succeeded", "failed", "rejected"):
            terms[p["requestId"]].append((ts(p["time"]), p["workerId"]))
    commits, fails, revokes, last, clean = (collections.defaultdict(list),
                                            collections.defaultdict(list),
                                            collections.defaultdict(list), {}, {})
    for f in glob.glob(os.path.join(d, "w*-*.err")):
        run = os.path.basename(f)[:-4]
        text = open(f).read()
        clean[run] = '"worker.stopped"' in text
        for line in text.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            t = ts(e["ts"])
            last[run] = t
            ev = e.get("event")
            if ev == "kafka.committed":
                m = re.match(r".*\[(\d+)\] @ (\d+)", e["msg"])
                if m:
                    commits[run].append((t, int(m.group(1)), int(m.group(2))))
            elif ev == "kafka.commit_failed":
                fails[run].append((t, e["msg"]))
            elif ev == "kafka.revoked":
                revokes[run].append(t)
    causes = collections.Counter()
    for rid, seen in terms.items():
        seen.sort()
        part, off = where.get(rid, (None, None))
        for (t1, w1), (t2, w2) in zip(seen, seen[1:]):
            landed = [c for c in commits[w1] if c[1] == part and c[2] > off and t1 <= c[0] < t2]
            if landed:
                causes["a commit past it landed before the repeat"] += 1
                continue
            why = []
            refused = [m for t, m in fails[w1] if t1 <= t <= t2]
            if refused:
                why.append("commit refused: " + refused[0].split(": ")[-1])
            if [r for r in revokes[w1] if t1 - 20 <= r <= t1]:
                why.append("answered during a revoke's drain")
            elif [r for r in revokes[w1] if t1 <= r <= t2]:
                why.append("revoked after")
            if last.get(w1, 0) < t2 and not clean.get(w1):
                why.append("its run killed")
            why.append("same run" if w1 == w2 else "another run")
            causes[" / ".join(why)] += 1
    total = sum(causes.values())
    print("%d repeated terminal replies" % total)
    for cause, n in causes.most_common():
        print("%6d  %s" % (n, cause))


if __name__ == "__main__":
    main(sys.argv[1])
