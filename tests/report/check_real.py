#!/usr/bin/env python3
"""wine.report.real's own checks: the report of the run the helper mode
report-mix made (tests/win/helpers.h) shows what that run did, whatever
else Wine added to it (check_report.py has already compared every process
and event with the record).

Usage: check_real.py ROTATED.json WHOLE.json STRINGS.json REPORT.txt

ROTATED.json: the report of the rotated files (given newest first);
WHOLE.json: of the same run's unrotated file; STRINGS.json: the strings
the children got (hostile_input.py)."""

import json
import sys

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def main():
    rot, whole, strings, text = sys.argv[1:5]
    rot = json.load(open(rot, encoding="utf-8"))
    whole = json.load(open(whole, encoding="utf-8"))
    strings = json.load(open(strings))["strings"]
    text = open(text, encoding="utf-8").read()
    if not check(len(rot["runs"]) == 1, "runs: %d" % len(rot["runs"])):
        return report()
    run = rot["runs"][0]
    procs = run["processes"]
    check(run["complete"], "the run is not complete")
    check(run["rotated"] and len(run["files"]) > 1, "not rotated: %r" % run["files"])
    firsts = [next(f["first_seq"] for f in rot["files"] if f["file"] == name) for name in run["files"]]
    check(firsts == sorted(firsts), "the run's files are not in seq order")
    check(rot["files"][0]["file"] != run["files"][0], "the files were given in seq order: the test means another order")

    root = [p for p in procs if p["is_root"]]
    check(len(root) == 1 and root[0]["index"] == 0 and root[0]["depth"] == 0, "the root is not first")

    def by_cmd(suffix):
        return [p for p in procs if isinstance(p["command_line"], str) and p["command_line"].endswith(suffix)]

    def unread(code):
        # A child gone before jobwarden read its command line: the record
        # names the field unavailable with its reason (never a false
        # value), and so must the report.
        return [p for p in procs if p["command_line"] is None and p["exit_code"] == code
                and p["parent_index"] == 0
                and isinstance(((p["fields"].get("unavailable") or {}).get("command_line")), str)]

    for i, s in enumerate(strings):
        found = by_cmd("--helper exit %d " % i + s)
        if not found and len(unread(i)) == 1:
            print("check_real: child %d: its command line was not read (%s)"
                  % (i, unread(i)[0]["fields"]["unavailable"]["command_line"]))
            found = unread(i)
        if check(len(found) == 1, "child %d (%r): %d process(es) with its command line" % (i, s[:40], len(found))):
            p = found[0]
            check(p["exit_code"] == i and p["exit_class"] == ("success" if i == 0 else "failure"),
                  "child %d: exit %r" % (i, p["exit_code"]))
            check(p["parent_index"] == 0, "child %d: parent %r" % (i, p["parent_index"]))
    for suffix, code, status in (("--helper exit 0xC0000409", 0xC0000409, "STATUS_STACK_BUFFER_OVERRUN"),
                                 ("--helper crash", 0xC0000005, "STATUS_ACCESS_VIOLATION")):
        found = by_cmd(suffix)
        if not found and len(unread(code)) == 1:
            print("check_real: %s: its command line was not read (%s)"
                  % (suffix, unread(code)[0]["fields"]["unavailable"]["command_line"]))
            found = unread(code)
        if check(len(found) == 1, "%s: %d process(es)" % (suffix, len(found))):
            p = found[0]
            check(p["exit_code"] == code and p["status"] == status and p["exit_class"] == "abnormal",
                  "%s: exit %r %r" % (suffix, p["exit_code"], p["status"]))
            # Its abnormal_exit: its own line, or counted in a coalesced
            # summary whose last repeat it is (the same image crashed
            # within the window: docs/events.md, "Coalesced repeats").
            v = [e for e in run["events"] if e["rule"] == "abnormal_exit" and e["process"] == p["index"]]
            c = [e for e in run["events"] if e["rule"] == "abnormal_exit" and e["process"] is None
                 and (e["detail"].get("coalesced") or {}).get("last_pid") == p["pid"]]
            check(len(v) + len(c) == 1 and (v or c)[0]["category"] == "violation",
                  "%s: abnormal_exit violations %d, coalesced %d" % (suffix, len(v), len(c)))
            check(p["violations"] == len(v), "%s: the process counts %d violation(s)" % (suffix, p["violations"]))
            want = "%s %s (abnormal)" % (p["exit_code_hex"], status)
            check(want in text, "text: %r missing" % want)
    tree = [p for p in procs if isinstance(p["command_line"], str) and "--helper tree " in p["command_line"]]
    if check(len(tree) == 1, "tree child: %d" % len(tree)):
        kids = [procs[c] for c in tree[0]["children"]]
        check(any("--helper sleep 10" in (k["command_line"] or "") and k["depth"] == 2 for k in kids),
              "the tree child's grandchild is not under it")
    check(run["summary"]["by_rule"].get("abnormal_exit", 0) >= 2, "by_rule abnormal_exit")
    check(run["summary"]["abnormal_exits"] >= 2, "summary abnormal_exits")

    # The rotated files and the whole file are the same run.
    def strip(r):
        r = json.loads(json.dumps(r))
        for e in r["events"]:
            e.pop("file"), e.pop("line")
        for k in ("files", "rotated", "notes"):
            r.pop(k)
        return r
    check(len(whole["runs"]) == 1 and strip(whole["runs"][0]) == strip(run),
          "the rotated files' report differs from the whole file's")
    return report()


def report():
    if failures:
        for f in failures:
            print("check_real: " + f, file=sys.stderr)
        return 1
    print("check_real: every child, crash, exit and violation of the run is in the report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
