#!/usr/bin/env bash
# <tree>.report.scenarios: records a real run under Wine does not make on
# demand (tests/report/make_record.py scenarios), reported in text and
# json and compared with the record by check_report.py; then what each
# scenario is about:
#   multi       three runs in two files (two interleaved in one): three
#               runs, and the report says so;
#   rotated     PATH, PATH.2, PATH.1 given in that order: one complete run,
#               its files in seq order, sandbox.log_continued read;
#   incomplete  no job_end (jobwarden killed), one line deleted: not
#               complete, the hole named (seq 5), said in text;
#   hostile     the hostile corpus and markup as command lines and images,
#               sealed lines, an ECS line, a schema 1 line, a torn line:
#               the three named (file:line, why), no seal in any event;
#               with a third argument "html", each html page in chromium
#               (check_html.py);
#   sinks       two sinks of one run, one of which lost seq 5-7 (its gap
#               record has seq 7): alone, the gap explains the hole; with
#               the other sink's file, every event is there and the gap
#               record gives way to the event of the same seq;
#   syslog      sink-a's lines as a syslog collector stored them (RFC 5424
#               headers and rsyslog's traditional ones, alternating): the
#               same report as sink-a.jsonl's, file names aside.
# Usage: scenarios.sh JOBWARDEN WORK_DIR [html]
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
jw=$1 work=$2 html=${3:-}
schema="$root/docs/jobwarden-report.schema.json"
fail() { echo "report.scenarios: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
python3 "$here/make_record.py" scenarios . "$root/tests/data/hostile" || fail "make_record.py failed"

# report NAME FILES...: NAME.json, NAME.txt, (NAME.html), checked.
report() {
  local name=$1; shift
  "$jw" report "$@" --format json -o "$name.json" 2>"$name.err" || fail "$name: json exited with $?"
  "$jw" report "$@" -o "$name.txt" 2>/dev/null || fail "$name: text exited with $?"
  python3 "$here/check_report.py" "$schema" "$name.json" --text "$name.txt" "$@" || fail "$name: report differs from the record"
  if [ -n "$html" ]; then
    "$jw" report "$@" --format html -o "$name.html" 2>/dev/null || fail "$name: html exited with $?"
  fi
}
report multi multi-a.jsonl multi-b.jsonl
report rotated rot.jsonl rot.jsonl.2 rot.jsonl.1
report incomplete incomplete.jsonl
report hostile hostile.jsonl
report sinkb sink-b.jsonl
report sinks sink-b.jsonl sink-a.jsonl
report sinka sink-a.jsonl
awk '{ if (NR % 2) printf "<134>1 2026-12-03T08:00:00.000000Z vm jobwarden 4242 - - %s\n", $0;
       else printf "Dec  3 08:00:00 vm jobwarden[4242]: %s\n", $0 }' sink-a.jsonl >syslog.log
"$jw" report syslog.log --format json -o syslog.json 2>syslog.err || fail "syslog: json exited with $?"
"$jw" report syslog.log -o syslog.txt 2>/dev/null || fail "syslog: text exited with $?"

python3 - <<'PY' || fail "scenario checks failed"
import json, sys
bad = []
def check(c, what):
    if not c: bad.append(what)
m = json.load(open("multi.json"))
check([r["run_id"][0] for r in m["runs"]] == ["a", "b", "c"], "multi: runs %r" % [r["run_id"] for r in m["runs"]])
check("3 runs in these files (distinct run_id): each is reported on its own" in m["notes"], "multi: note")
check("3 run(s) in 2 file(s)" in open("multi.txt").read() and "(2 of 3)" in open("multi.txt").read(), "multi: text")
r = json.load(open("rotated.json"))["runs"]
check(len(r) == 1 and r[0]["complete"] and r[0]["rotated"], "rotated: one complete rotated run")
check(r[0]["files"] == ["rot.jsonl.2", "rot.jsonl.1", "rot.jsonl"], "rotated: files %r" % r[0]["files"])
f = {x["file"]: x for x in json.load(open("rotated.json"))["files"]}
check(f["rot.jsonl"]["continues"] == {"continues_at_seq": 21, "previous_file": "C:\\logs\\rot.jsonl.1"}, "rotated: continues")
check(f["rot.jsonl.2"]["continues"] is None, "rotated: the oldest continues nothing")
check("rotated: rot.jsonl.2 rot.jsonl.1 rot.jsonl (in seq order)" in open("rotated.txt").read(), "rotated: text")
i = json.load(open("incomplete.json"))["runs"][0]
check(not i["complete"] and i["seq"]["missing"] == [{"from": 5, "to": 5}], "incomplete: %r %r" % (i["complete"], i["seq"]["missing"]))
t = open("incomplete.txt").read()
check("INCOMPLETE: no sandbox.job_end" in t and "MISSING seq 5-5: no line and no gap record" in t, "incomplete: text")
h = json.load(open("hostile.json"))
check([(p["line"], p["reason"]) for p in h["problems"]] == [
    (4, "a line in the ECS (format=ecs) format: report reads jobwarden's native lines only (format=native, the default; give it the native file of the run)"),
    (6, "schema_version \"1.2.0\": report reads events of schema 2.x"),
    (8, "not JSON: unexpected token near end of file (column 57)")], "hostile: problems %r" % h["problems"])
check(h["files"][0]["sealed"] == 63 and h["files"][0]["not_events"] == 3, "hostile: sealed/not_events")
check("\"seal\"" not in json.dumps(h["runs"]), "hostile: a seal member reached the report")
check(h["runs"][0]["summary"]["escapes"] == 1, "hostile: escapes")
b = json.load(open("sinkb.json"))["runs"][0]
check(b["seq"]["missing"] == [] and [g["from_seq"] for g in b["gaps"]] == [5] and b["summary"]["lost_events"] == 3,
      "sink-b alone: the gap explains seq 5-7: %r %r" % (b["seq"]["missing"], b["gaps"]))
both = json.load(open("sinks.json"))
s2 = both["runs"][0]
check(both["problems"] == [] and s2["gaps"] == [] and s2["seq"]["missing"] == [], "two sinks: problems or gaps")
check([e["seq"] for e in s2["events"] if e["event"] == "sandbox.telemetry_gap"] == [], "two sinks: the gap record was kept over the event")
check(s2["seq"]["events"] == s2["seq"]["last"] and s2["seq"]["duplicates"] == len(open("sink-b.jsonl").read().splitlines()),
      "two sinks: %r" % s2["seq"])
check(s2["files"] == ["sink-b.jsonl", "sink-a.jsonl"] or s2["files"] == ["sink-a.jsonl", "sink-b.jsonl"], "two sinks: files %r" % s2["files"])
def unnamed(doc, name):
    return json.loads(json.dumps(doc).replace(name, "FILE"))
sy, sa = json.load(open("syslog.json")), json.load(open("sinka.json"))
check(sy["problems"] == [] and sy["files"][0]["not_events"] == 0, "syslog: problems %r" % sy["problems"][:3])
check(len(sy["runs"]) == 1 and sy["runs"][0]["seq"]["events"] == len(open("sink-a.jsonl").read().splitlines()),
      "syslog: runs/events")
check(unnamed(sy, "syslog.log") == unnamed(sa, "sink-a.jsonl"), "syslog: the report differs from sink-a.jsonl's")
check(open("syslog.txt").read().replace("syslog.log", "FILE") == open("sinka.txt").read().replace("sink-a.jsonl", "FILE"),
      "syslog: the text report differs from sink-a.jsonl's")
for name in ("multi", "rotated", "incomplete", "hostile", "sinkb", "sinks", "sinka", "syslog"):
    for line in open(name + ".err"):
        check(line.startswith("jobwarden: report: hostile.jsonl:") if name == "hostile" else False,
              "%s: stderr %r" % (name, line[:100]))
if bad:
    print("\n".join("report.scenarios: " + b for b in bad), file=sys.stderr)
    sys.exit(1)
PY
if [ -n "$html" ]; then
  python3 "$here/check_html.py" hostile.html hostile.json hostile.png --strings hostile.strings.json || fail "hostile.html"
  python3 "$here/check_html.py" multi.html multi.json multi.png || fail "multi.html"
  python3 "$here/check_html.py" incomplete.html incomplete.json incomplete.png || fail "incomplete.html"
fi
echo "report.scenarios: multi, rotated, incomplete, hostile, sinks, syslog as expected${html:+ (html in chromium too)}"
