#!/usr/bin/env python3
"""Writes synthetic jobwarden records (event schema 2.0.0 lines shaped like
the ones jobwarden.exe writes: the same context members, the same process
objects) for the report tests that need what a real run under Wine cannot
make on demand: 5,000 processes, several runs, forged or broken lines.

  make_record.py large OUT N          one complete run of N processes: a
                                      root, 50 children, the rest their
                                      children; crashes, hashes arriving in
                                      process_update, a gap, notices
  make_record.py scenarios DIR HOSTILE_DIR
                                      DIR/multi-a.jsonl + multi-b.jsonl
                                      (three runs, two interleaved in one
                                      file), DIR/rot.jsonl[.1,.2] (a
                                      rotated run with sandbox.log_continued),
                                      DIR/incomplete.jsonl (no job_end, a
                                      deleted line), DIR/sink-a.jsonl and
                                      sink-b.jsonl (two sinks of one run,
                                      sink-b lost seq 5-7), DIR/hostile.jsonl (the
                                      hostile corpus as command lines and
                                      images, markup, sealed lines, an ECS
                                      line, a torn line, a schema 1 line)
                                      and DIR/hostile.strings.json (the
                                      strings the page must show as text)
"""

import json
import os
import random
import sys

CTX = {
    "host": {"name": "BUILD-07", "id": "4c4c4544-0042-3510-8052-b7c04f4e3732",
             "os": {"name": "Windows", "version": "10.0", "build": "19045"}},
    "agent": {"name": "jobwarden", "version": "0.2.0", "build": "63c24c205dc2"},
    "user": {"id": "S-1-5-21-3623811015-3361044348-30300820-1013", "name": "ci",
             "domain": "BUILD-07"},
}
RULE_IDS = {"job": "JW-0001", "root_process": "JW-0002", "child_process": "JW-0003",
            "abnormal_exit": "JW-1201", "active_processes": "JW-1001",
            "telemetry_gap": "JW-2102", "unknown_job_message": "JW-2002",
            "job_escape": "JW-1301", "monitor_tampering": "JW-1302"}

# Extra strings aimed at an HTML page (the corpus in tests/data/hostile is
# aimed at JSON and terminals).
MARKUP = [
    "</script><script>window.__jwPwned=1</script>",
    "<img src=x onerror=\"window.__jwPwned=2\">",
    "<svg onload=window.__jwPwned=3><b>bold</b>",
    "--><!-- ]]> &amp; &lt;x&gt; \u2028line\u2029para",
    "\"><iframe src=\"javascript:window.__jwPwned=4\"></iframe>",
]


def ts(us):
    """Microseconds since 2026-11-23T09:00:00Z as an event time."""
    s, u = divmod(int(us), 1000000)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return "2026-11-23T%02d:%02d:%02d.%06dZ" % (9 + h, m, sec, u)


class Run:
    def __init__(self, run_id, name, tier="hardened", t0=0):
        self.run_id, self.name, self.tier = run_id, name, tier
        self.seq = 0
        self.t = t0
        self.lines = []

    def ev(self, event, rule, t, severity="info", action="observed", source="port", extra=None,
           message=""):
        self.seq += 1
        e = {"schema_version": "2.0.0", "event": event, "seq": self.seq, "@timestamp": ts(t),
             "emitted": ts(t)}
        e.update(CTX)
        e["run_id"] = self.run_id
        e["job"] = {"name": self.name, "tier": self.tier}
        e.update({"rule": rule, "rule_id": RULE_IDS.get(rule, "JW-2002"), "action": action})
        if action in ("blocked", "terminated", "killed_job"):
            e["enforcer"] = "monitor"
        e.update({"severity": severity, "source": source,
                  "tags": ["jobwarden.lifecycle"], "message": message or event})
        if extra:
            e.update(extra)
        self.lines.append(e)
        return e

    def job_start(self, t, command):
        self.ev("sandbox.job_start", "job", t, source="jobwarden",
                extra={"policy": {"tier": self.tier},
                       "job_config": {"command": command, "kill_on_close_applied": True}},
                message="job created with tier %s" % self.tier)

    def job_end(self, t, n):
        self.ev("sandbox.job_end", "job", t, extra={"summary": {"processes": n}},
                message="job ended")


def proc(pid, ctime, exe, cmd, parent, is_root, start_t):
    return {"pid": pid, "entity_id": "%d-%016X" % (pid, ctime), "executable": exe,
            "command_line": cmd, "parent": parent, "is_root": is_root,
            "user": {"sid": CTX["user"]["id"], "name": "BUILD-07\\ci"}, "integrity": "high",
            "ancestry": [], "start": ts(start_t)}


def exit_fields(p, code, end_t, start_t):
    x = dict(p)
    x.update({"exit_code": code, "exit_code_hex": "0x%08X" % code,
              "status": {0xC0000005: "STATUS_ACCESS_VIOLATION",
                         0xC0000409: "STATUS_STACK_BUFFER_OVERRUN"}.get(code),
              "exit_class": "success" if code == 0 else
              ("abnormal" if (code & 0xE0000000) == 0xC0000000 else "failure"),
              "end": ts(end_t), "lifetime_ms": int((end_t - start_t) // 1000)})
    return x


def write(path, lines, seal=False):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for e in lines:
            if isinstance(e, str):
                f.write(e + "\n")
                continue
            e = dict(e)
            if seal:
                e["seal"] = {"run": e["run_id"], "s": "0", "i": e["seq"] - 1, "mac": "00" * 32}
            f.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")


def add_processes(run, n, t0, cmdlines=None, images=None):
    """n processes: a root, then children of the root (up to 50), then the
    rest children of those; starts and exits interleaved in time order."""
    rnd = random.Random(n)
    procs = []
    events = []  # (time, kind, index)
    base_pid = 1000
    for i in range(n):
        parent = None if i == 0 else (0 if i <= 50 else 1 + (i % 50))
        pstart = t0 + 1000 if i == 0 else procs[parent]["t_start"] + 1000 + rnd.randrange(1, 50000)
        life = 5000000 if i == 0 else rnd.randrange(1000, 200000)
        pid = base_pid + 4 * i
        cmd = cmdlines[i] if cmdlines and i < len(cmdlines) else "\"C:\\agent\\tool.exe\" --task %d" % i
        exe = images[i] if images and i < len(images) else ("C:\\agent\\agent.exe" if i == 0 else
                                                          "C:\\agent\\tool%d.exe" % (i % 7))
        par = {"pid": 900, "entity_id": "900-01DC5C1A00000000"} if i == 0 else \
            {"pid": procs[parent]["pid"], "entity_id": procs[parent]["obj"]["entity_id"]}
        obj = proc(pid, 0x01DC5C1A2B000000 + i, exe, cmd, par, i == 0, pstart)
        procs.append({"pid": pid, "obj": obj, "t_start": pstart, "parent": parent,
                      "t_end": None, "life": life})
    # Children end before their parents.
    for i in reversed(range(n)):
        p = procs[i]
        end = p["t_start"] + p["life"]
        kids = [q["t_end"] for q in procs if q["parent"] == i] if i < 51 else []
        if kids:
            end = max(end, max(kids) + 1000)
        p["t_end"] = end
    for i, p in enumerate(procs):
        events.append((p["t_start"], 0, i))
        if i % 3 == 1:
            events.append((p["t_start"] + 500, 1, i))  # the hash, later
        events.append((p["t_end"], 2, i))
    events.sort()
    for t, kind, i in events:
        p = procs[i]
        rule = "root_process" if i == 0 else "child_process"
        if kind == 0:
            run.ev("sandbox.process_start", rule, t, source="jobwarden" if i == 0 else "port",
                   extra={"process": p["obj"]}, message="process %d started" % p["pid"])
        elif kind == 1:
            upd = dict(p["obj"])
            upd["hash"] = {"sha256": "%064x" % (0xABC000 + i)}
            upd["image_size"] = 4096 + i
            run.ev("sandbox.process_update", rule, t, extra={"process": upd},
                   message="identity of process %d" % p["pid"])
        else:
            code = 0xC0000005 if i % 97 == 5 else (0xC0000409 if i % 211 == 7 else i % 3)
            x = exit_fields(p["obj"], code, t, p["t_start"])
            if x["exit_class"] == "abnormal":
                run.ev("sandbox.violation", "abnormal_exit", t, severity="high",
                       extra={"process": x}, message="process %d exited abnormally" % p["pid"])
            run.ev("sandbox.process_exit", rule, t, extra={"process": x},
                   message="process %d exited" % p["pid"])
            if i % 500 == 250:
                run.ev("sandbox.notice", "unknown_job_message", t + 1, severity="medium",
                       extra={"error": {"value": i}}, message="unknown job message")
    return procs


def large(out, n):
    run = Run("5f0c9a7e1b2d4c3a8e6f70a1b2c3d4e5", "agent-large")
    run.job_start(0, ["C:\\agent\\agent.exe", "--many"])
    procs = add_processes(run, n, 0)
    end = max(p["t_end"] for p in procs) + 1000
    # A sink's loss, explained by its gap record.
    run.ev("sandbox.telemetry_gap", "telemetry_gap", end, severity="high", action="lost",
           source="jobwarden",
           extra={"gap": {"from_seq": run.seq + 1, "to_seq": run.seq + 3, "count": 3,
                          "sink": "file:events.jsonl", "reason": "queue_full"}},
           message="3 event(s) did not reach this sink")
    run.seq += 2  # the gap's seq is its to_seq
    run.lines[-1]["seq"] = run.seq
    run.job_end(end + 10, n)
    write(out, run.lines)


def hostile_strings(corpus):
    out = []
    for case in open(os.path.join(corpus, "INDEX")).read().split("\n"):
        case = case.strip()
        if not case or case.startswith("#"):
            continue
        exp = open(os.path.join(corpus, case, "expected"), encoding="utf-8").read().rstrip("\n")
        try:
            out.append(json.loads(exp))
        except ValueError:
            pass
    return [s for s in out if 0 < len(s) < 40000]


def scenarios(d, corpus):
    os.makedirs(d, exist_ok=True)
    # Three runs: a and b interleaved in one file, c in another.
    a = Run("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "run-a", t0=0)
    b = Run("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "run-b", t0=0)
    c = Run("cccccccccccccccccccccccccccccccc", "run-c", t0=0)
    for r, t in ((a, 0), (b, 300), (c, 600)):
        r.job_start(t, ["C:\\agent\\%s.exe" % r.name])
        add_processes(r, 4, t)
        r.job_end(t + 9000000, 4)
    mixed = []
    for x, y in zip(a.lines, b.lines):
        mixed += [x, y]
    write(os.path.join(d, "multi-a.jsonl"), mixed)
    write(os.path.join(d, "multi-b.jsonl"), c.lines)

    # A rotated run: .2 oldest, then .1, then the live file.
    r = Run("dddddddddddddddddddddddddddddddd", "run-rot")
    r.job_start(0, ["C:\\agent\\rot.exe"])
    add_processes(r, 12, 0)
    r.job_end(9000000, 12)
    parts = [r.lines[:10], r.lines[10:20], r.lines[20:]]
    names = ["rot.jsonl.2", "rot.jsonl.1", "rot.jsonl"]
    for k, (name, part) in enumerate(zip(names, parts)):
        lines = list(part)
        if k > 0:
            lines.insert(0, {"schema_version": "2.0.0", "event": "sandbox.log_continued",
                             "run_id": r.run_id, "continues_at_seq": part[0]["seq"],
                             "previous_file": "C:\\logs\\rot.jsonl.1"})
            lines[0] = json.dumps(lines[0], separators=(",", ":"))
        write(os.path.join(d, name), lines)

    # Incomplete: jobwarden killed (no job_end), and one line deleted.
    r = Run("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "run-killed")
    r.job_start(0, ["C:\\agent\\killed.exe"])
    add_processes(r, 6, 0)
    lines = r.lines[:-3]
    del lines[4]
    write(os.path.join(d, "incomplete.jsonl"), lines)

    # Two sinks of one run: sink-a got every event, sink-b lost seq 5-7
    # (its gap record has seq 7, the seq of an event sink-a has).
    r = Run("1111111111111111111111111111111a", "run-sinks")
    r.job_start(0, ["C:\\agent\\sinks.exe"])
    add_processes(r, 5, 0)
    r.job_end(9000000, 5)
    write(os.path.join(d, "sink-a.jsonl"), r.lines)
    gap = dict(r.lines[6])
    gap.update({"event": "sandbox.telemetry_gap", "rule": "telemetry_gap", "rule_id": "JW-2102",
                "action": "lost", "severity": "high", "source": "jobwarden",
                "message": "3 event(s), seq 5 to 7, did not reach this sink (queue_full)",
                "gap": {"from_seq": 5, "to_seq": 7, "count": 3, "sink": "file:sink-b.jsonl",
                        "reason": "queue_full"}})
    gap.pop("process", None)
    write(os.path.join(d, "sink-b.jsonl"), r.lines[:4] + [gap] + r.lines[7:])

    # Hostile strings as command lines and images, sealed lines, and lines
    # that are not events.
    strings = hostile_strings(corpus) + MARKUP
    r = Run("ffffffffffffffffffffffffffffffff", "run-hostile")
    r.job_start(0, ["C:\\agent\\agent.exe", MARKUP[0]])
    n = len(strings) + 1
    cmds = ["\"C:\\agent\\agent.exe\""] + ["\"C:\\agent\\x.exe\" " + s for s in strings]
    images = ["C:\\agent\\agent.exe"] + ["C:\\agent\\" + s for s in strings]
    add_processes(r, n, 0, cmds, images)
    r.ev("sandbox.violation", "job_escape", 8000000, severity="critical", action="reported",
         source="jobwarden", extra={"process": proc(7777, 0x01DC5C1A2C000000, MARKUP[1], MARKUP[2],
                                                    {"pid": 1000}, False, 7000000)},
         message="escape: " + MARKUP[1])
    r.job_end(9000000, n)
    lines = list(r.lines)
    lines.insert(3, "{\"ecs\":{\"version\":\"8.11.0\"},\"event\":{\"kind\":\"event\"}}")
    lines.insert(5, "{\"schema_version\":\"1.2.0\",\"event\":\"sandbox.violation\"}")
    lines.insert(7, "{\"schema_version\":\"2.0.0\",\"event\":\"sandbox.notice\",\"seq\":")
    write(os.path.join(d, "hostile.jsonl"), lines, seal=True)
    with open(os.path.join(d, "hostile.strings.json"), "w", encoding="utf-8") as f:
        json.dump({"command_lines": cmds, "images": images}, f, ensure_ascii=True)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "large":
        large(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "scenarios":
        scenarios(sys.argv[2], sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
