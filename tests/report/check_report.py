#!/usr/bin/env python3
"""Checks `jobwarden report` output against the record it was made from,
read here independently (python3 + the json module, not jobwarden's code).

Usage: check_report.py SCHEMA REPORT.json [--text REPORT.txt] [--expect-runs N]
                       [--expect-complete yes|no] FILE...

For every run of the native event lines in FILE...: every process (by
entity_id) appears once with its pid, image, command line, hash, start,
end and exit code exactly as recorded, and under its recorded parent;
every event appears with its rule, severity and message, violations,
notices and gaps with their whole content; the gaps and the summary's
counts are what the record holds; complete is whether job_end is there.
With --text, the text rendering names every process and every violation,
notice and gap, and holds no control character, C1 control or
bidirectional override. Exit 0, or 1 with every failed check listed."""

import argparse
import hashlib
import json
import sys

import jsonschema

CONTEXT = ["schema_version", "event", "seq", "@timestamp", "emitted", "host", "agent", "user",
           "run_id", "job", "rule", "rule_id", "action", "severity", "source", "message"]
SEVERITIES = ["critical", "high", "medium", "low", "info"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def read_runs(files):
    """run_id -> {seq: event} (the first line of a seq wins), from the
    lines that are native jobwarden events."""
    runs = {}
    # Continuation records (docs/events.md): version 2 parts belong to the
    # line of their (run_id, seq, digest, limit) -- two sinks' lines of one
    # seq, or one line at two limits, are put together apart; version 1
    # parts to the line of their (run_id, seq). key -> {n: data}
    parts = {}
    for path in files:
        with open(path, "rb") as f:
            for raw in f.read().split(b"\n"):
                # A part record (after a collector's header, if any): its
                # line is read once all its parts are here.
                at = raw.find(b'{"')
                if at > 0 and not raw.startswith(b"{"):
                    raw = raw[at:]  # a collector's header before the message
                    at = 0
                if at >= 0 and raw[at:].startswith(b'{"jobwarden_part":'):
                    try:
                        p = json.loads(raw[at:].decode("utf-8"))["jobwarden_part"]
                        key = (p["run_id"], p["seq"])
                        if p["v"] == 2:
                            key += (p["digest"], p["limit"])
                        got = parts.setdefault(key, {})
                        got.setdefault(p["n"], p["data"])
                        if len(got) != p["of"]:
                            continue
                        raw = "".join(got[n] for n in range(1, p["of"] + 1)).encode("utf-8")
                        del parts[key]
                        if len(raw) != p["bytes"]:
                            continue
                        # BLAKE2b-128 of the line, the reader's check
                        if p["v"] == 2 and hashlib.blake2b(
                                raw, digest_size=16).hexdigest() != p["digest"]:
                            continue
                    except Exception:
                        continue
                try:
                    ev = json.loads(raw.decode("utf-8"))
                except Exception:
                    continue
                if not isinstance(ev, dict) or "ecs" in ev or "class_uid" in ev:
                    continue
                if not str(ev.get("schema_version", "")).startswith("2."):
                    continue
                if ev.get("event") == "sandbox.log_continued":
                    continue
                if not isinstance(ev.get("seq"), int) or not isinstance(ev.get("run_id"), str):
                    continue
                if "@timestamp" not in ev:
                    continue
                ev.pop("seal", None)
                run = runs.setdefault(ev["run_id"], {})
                had = run.get(ev["seq"])
                # Two sinks: one's gap record shares the seq of an event
                # the other has; the event wins.
                if had is None or (had[0]["event"] == "sandbox.telemetry_gap"
                                   and ev["event"] != "sandbox.telemetry_gap"):
                    run[ev["seq"]] = (ev, path)
    return runs


def pkey(proc):
    return proc["entity_id"] if proc.get("entity_id") else "pid:%d" % proc["pid"]


def category(event):
    return {"sandbox.violation": "violation", "sandbox.notice": "notice",
            "sandbox.telemetry_gap": "gap"}.get(event)


def check_run(rr, evs):
    rid = rr["run_id"]
    seqs = sorted(evs)
    lines = [evs[s][0] for s in seqs]
    check(rr["complete"] == any(e["event"] == "sandbox.job_end" for e in lines),
          "%s: complete is %s" % (rid, rr["complete"]))
    check(rr["seq"]["events"] == len(lines), "%s: seq.events" % rid)
    check(rr["seq"]["first"] == seqs[0] and rr["seq"]["last"] == seqs[-1], "%s: seq range" % rid)

    # Processes: one entry per entity id, each fact as recorded.
    facts = {}
    for e in lines:
        p = e.get("process")
        if isinstance(p, dict) and isinstance(p.get("pid"), int):
            f = facts.setdefault(pkey(p), {"events": [], "start": None, "exit": None, "merged": {}})
            f["events"].append(e["seq"])
            if e["event"] == "sandbox.process_start" and f["start"] is None:
                f["start"] = e
            if e["event"] == "sandbox.process_exit":
                f["exit"] = e
            if e["event"].startswith("sandbox.process_") or f["start"] is None:
                for k, v in p.items():
                    if v is None and k in f["merged"]:
                        continue
                    f["merged"][k] = v
    procs = rr["processes"]
    keys = [pkey({"entity_id": p["entity_id"], "pid": p["pid"]}) for p in procs]
    check(sorted(keys) == sorted(facts), "%s: processes %d in the report, %d in the record"
          % (rid, len(keys), len(facts)))
    check(len(set(keys)) == len(keys), "%s: a process appears twice" % rid)
    by_key = dict(zip(keys, procs))
    for i, p in enumerate(procs):
        check(p["index"] == i, "%s: process %d index" % (rid, i))
    for k, f in facts.items():
        p = by_key.get(k)
        if p is None:
            continue
        m = f["merged"]
        for field in ["pid", "executable", "command_line", "start", "end", "lifetime_ms",
                      "exit_code", "exit_code_hex", "exit_class", "integrity"]:
            check(p[field] == m.get(field), "%s: process %s %s: report %r, record %r"
                  % (rid, k, field, p[field], m.get(field)))
        if isinstance(m.get("status"), str):
            check(p["status"] == m["status"], "%s: process %s status" % (rid, k))
        check(p["sha256"] == (m.get("hash") or {}).get("sha256"), "%s: process %s sha256" % (rid, k))
        check(p["seen_exit"] == (f["exit"] is not None), "%s: process %s seen_exit" % (rid, k))
        check(p["seen_start"] == (f["start"] is not None), "%s: process %s seen_start" % (rid, k))
        check(p["events"] == f["events"], "%s: process %s events" % (rid, k))
        if f["exit"] is not None:
            check(p["exit_seq"] == f["exit"]["seq"], "%s: process %s exit_seq" % (rid, k))
        parent = (m.get("parent") or {}).get("entity_id")
        if parent in by_key and parent != k:
            pi = p["parent_index"]
            # A forged cycle makes one process of it a root: only then None.
            if pi is not None:
                check(procs[pi]["entity_id"] == parent, "%s: process %s parent" % (rid, k))
                check(p["depth"] == procs[pi]["depth"] + 1, "%s: process %s depth" % (rid, k))
                check(i_of(procs, p) in procs[pi]["children"], "%s: process %s child" % (rid, k))
        else:
            check(p["parent_index"] is None and p["depth"] == 0,
                  "%s: process %s has no parent in the run" % (rid, k))

    # Events: every one, in (@timestamp, seq) order, with its facts.
    rev = rr["events"]
    check([e["seq"] for e in rev] == [e["seq"] for e in sorted(lines, key=lambda e: (e["@timestamp"], e["seq"]))],
          "%s: events are not every event in (@timestamp, seq) order" % rid)
    for e in rev:
        src, path = evs.get(e["seq"], (None, None))
        if not check(src is not None, "%s: event seq %d not in the record" % (rid, e["seq"])):
            continue
        for a, b in [("event", "event"), ("rule", "rule"), ("severity", "severity"),
                     ("action", "action"), ("message", "message"), ("time", "@timestamp")]:
            check(e[a] == src.get(b), "%s: event %d %s" % (rid, e["seq"], a))
        check(e["file"] == path, "%s: event %d file" % (rid, e["seq"]))
        p = src.get("process")
        if isinstance(p, dict) and isinstance(p.get("pid"), int):
            check(e["process"] is not None and keys[e["process"]] == pkey(p),
                  "%s: event %d process" % (rid, e["seq"]))
        else:
            check(e["process"] is None, "%s: event %d has no process" % (rid, e["seq"]))
        if not src["event"].startswith("sandbox.process_"):
            want = {k: v for k, v in src.items() if k not in CONTEXT}
            check(e.get("detail") == want, "%s: event %d detail" % (rid, e["seq"]))

    # Gaps and the summary.
    gaps = [e for e in lines if e["event"] == "sandbox.telemetry_gap"]
    check([g["seq"] for g in rr["gaps"]] == [g["seq"] for g in gaps], "%s: gaps" % rid)
    for g, src in zip(rr["gaps"], gaps):
        for k in ["reason", "from_seq", "to_seq", "count", "sink"]:
            check(g[k] == src["gap"].get(k), "%s: gap %d %s" % (rid, g["seq"], k))
    sm = rr["summary"]
    cats = [category(e["event"]) for e in lines]
    check(sm["violations"] == cats.count("violation"), "%s: summary.violations" % rid)
    check(sm["notices"] == cats.count("notice"), "%s: summary.notices" % rid)
    check(sm["gap_records"] == cats.count("gap"), "%s: summary.gap_records" % rid)
    check(sm["events"] == len(lines) and sm["processes"] == len(facts), "%s: summary sizes" % rid)
    for s in SEVERITIES:
        check(sm["by_severity"][s] == sum(1 for e in lines if e.get("severity") == s),
              "%s: by_severity %s" % (rid, s))
    by_rule = {}
    for e, c in zip(lines, cats):
        if c:
            by_rule[e["rule"]] = by_rule.get(e["rule"], 0) + 1
    check(sm["by_rule"] == by_rule, "%s: by_rule %r != %r" % (rid, sm["by_rule"], by_rule))
    check(sm["coalesced_repeats"] == sum((e.get("coalesced") or {}).get("count", 0) for e in lines
                                         if e["event"] == "sandbox.violation"), "%s: coalesced_repeats" % rid)
    check(sm["escapes"] == sum(1 for e in lines if e.get("rule") == "job_escape"), "%s: escapes" % rid)
    check(sm["tampering"] == sum(1 for e in lines if e.get("rule") == "monitor_tampering"),
          "%s: tampering" % rid)
    check(sm["abnormal_exits"] == sum(1 for f in facts.values() if f["merged"].get("exit_class") == "abnormal"),
          "%s: abnormal_exits" % rid)
    # Missing seqs: neither a line nor inside a gap record's range.
    covered = set(seqs)
    for g in gaps:
        if isinstance(g["gap"].get("from_seq"), int):
            covered.update(range(g["gap"]["from_seq"], g["gap"]["to_seq"] + 1))
    missing = [s for s in range(1, seqs[-1]) if s not in covered]
    got = []
    for m in rr["seq"]["missing"]:
        got.extend(range(m["from"], m["to"] + 1))
    check(got == missing, "%s: seq.missing %r, expected %r" % (rid, got[:10], missing[:10]))


def i_of(procs, p):
    return p["index"]


BAD = [chr(c) for c in range(0x20) if c != 0x0A] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)] \
    + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]


def check_text(text, report):
    for ch in BAD:
        check(ch not in text, "text: holds U+%04X" % ord(ch))
    lines = text.split("\n")
    for rr in report["runs"]:
        check(rr["run_id"] in text, "text: run %s not named" % rr["run_id"])
        for p in rr["processes"]:
            check(any(l.startswith("  %-9d " % p["pid"]) for l in lines),
                  "text: process %d has no line" % p["pid"])
        for e in rr["events"]:
            if e["category"] in ("violation", "notice", "gap"):
                check(any(l.startswith("! ") and (" %d " % e["seq"]) in l and e["rule"] in l for l in lines),
                      "text: %s seq %d has no timeline line" % (e["category"], e["seq"]))
        for g in rr["gaps"]:
            check(any(l.startswith("  seq %d  " % g["seq"]) for l in lines), "text: gap %d" % g["seq"])
        check(("complete (ends with sandbox.job_end)" if rr["complete"] else "INCOMPLETE") in text,
              "text: run %s completeness" % rr["run_id"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("schema")
    ap.add_argument("report")
    ap.add_argument("--text")
    ap.add_argument("--expect-runs", type=int)
    ap.add_argument("--expect-complete", choices=["yes", "no"])
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    schema = json.load(open(a.schema))
    report = json.load(open(a.report, encoding="utf-8"))
    for err in jsonschema.Draft202012Validator(schema).iter_errors(report):
        failures.append("schema: %s: %s" % (err.json_path, err.message[:200]))
    runs = read_runs(a.files)
    check(sorted(r["run_id"] for r in report["runs"]) == sorted(runs),
          "runs: report %d, record %d" % (len(report["runs"]), len(runs)))
    if a.expect_runs is not None:
        check(len(runs) == a.expect_runs, "expected %d runs, the record has %d" % (a.expect_runs, len(runs)))
    for rr in report["runs"]:
        if rr["run_id"] in runs:
            check_run(rr, runs[rr["run_id"]])
            if a.expect_complete:
                check(rr["complete"] == (a.expect_complete == "yes"), "complete: %s" % rr["complete"])
    check([f["file"] for f in report["files"]] == a.files, "files: not the files given, in order")
    if a.text:
        check_text(open(a.text, encoding="utf-8").read(), report)
    if failures:
        for f in failures[:60]:
            print("check_report: " + f, file=sys.stderr)
        print("check_report: %d check(s) failed (%s)" % (len(failures), a.report), file=sys.stderr)
        return 1
    n = sum(len(r["processes"]) for r in report["runs"])
    e = sum(len(r["events"]) for r in report["runs"])
    print("check_report: %s: %d run(s), %d process(es), %d event(s) as recorded"
          % (a.report, len(report["runs"]), n, e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
