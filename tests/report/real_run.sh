#!/usr/bin/env bash
# wine.report.real: a real run under Wine, then its report.
#
# jobwarden.exe runs the helper mode report-mix (tests/win/helpers.h): one
# child per hostile string (tests/data/hostile and markup, as the child's
# command line), a child exiting with 0xC0000409, one crashing
# (0xC0000005), a child with a grandchild; with --active-processes 1 (not
# enforced by Wine: a violation per child). The record goes to a rotated
# file (rotate=4K) and to a whole file. Then:
#   - both records validate against the event schema;
#   - the native jobwarden reports the rotated files, given newest first,
#     in text, json and html; check_report.py compares every process and
#     event with the record, check_real.py what the run did (each hostile
#     child with its exit code, the crashes with their NTSTATUS names and
#     violations, the tree), and that the rotated files report the same
#     run as the whole file;
#   - jobwarden.exe's own json report (under Wine) equals the native one;
#   - the html opens in headless chromium (check_html.py); its screenshot
#     is kept as WORK_DIR/report.png;
#   - the run is sealed (--seal-key): with --key the report's seal section
#     is `jobwarden verify --json`'s document (intact), and a copy with one
#     line modified is reported damaged at that file and line, in json,
#     text and html (in chromium too).
# Usage: real_run.sh JOBWARDEN_EXE HELPER_EXE WINEPREFIX NATIVE_JOBWARDEN WORK_DIR
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
exe=$1 helper=$2 prefix=$3 jw=$4 work=$5
fail() { echo "wine.report.real: $*" >&2; exit 1; }

rm -rf "$work" && mkdir -p "$work" || fail "cannot create $work"
python3 "$here/hostile_input.py" "$root/tests/data/hostile" "$work/hostile.bin" "$work/strings.json" ||
  fail "hostile_input.py failed"
timeout 240 "$root/scripts/wine-exec.sh" "$prefix" "$exe" run --tier none --active-processes 1 \
  --seal-key "Z:$work/run.key" --export "file:Z:$work/rot.jsonl,rotate=4K,keep=200" --export "file:Z:$work/whole.jsonl" \
  -- "Z:$helper" --helper report-mix "Z:$work/hostile.bin" </dev/null >"$work/run.log" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$work/run.log" >&2; fail "jobwarden run exited with $rc"; }


cd "$work" || exit 1
files=$(ls rot.jsonl* | sort -V)   # newest first: rot.jsonl, rot.jsonl.1, rot.jsonl.2 ...
nfiles=$(echo "$files" | wc -l)
[ "$nfiles" -ge 3 ] || fail "the record was not rotated into 3 files or more ($nfiles)"
# shellcheck disable=SC2086
python3 "$root/tests/validate_events.py" "$root/docs/jobwarden-event.schema.json" whole.jsonl $files ||
  fail "the record does not validate"
# shellcheck disable=SC2086
"$jw" report $files --format json -o rot.json || fail "report --format json exited with $?"
# shellcheck disable=SC2086
"$jw" report $files -o rot.txt || fail "report (text) exited with $?"
# shellcheck disable=SC2086
"$jw" report $files --format html -o rot.html || fail "report --format html exited with $?"
"$jw" report whole.jsonl --format json -o whole.json || fail "report of whole.jsonl exited with $?"
"$jw" report whole.jsonl -o whole.txt || fail "report (text) of whole.jsonl exited with $?"
schema="$root/docs/jobwarden-report.schema.json"
# shellcheck disable=SC2086
python3 "$here/check_report.py" "$schema" rot.json --text rot.txt --expect-runs 1 --expect-complete yes $files ||
  fail "the report of the rotated files differs from the record"
python3 "$here/check_report.py" "$schema" whole.json --text whole.txt --expect-runs 1 --expect-complete yes whole.jsonl ||
  fail "the report of whole.jsonl differs from the record"
python3 "$here/check_real.py" rot.json whole.json strings.json rot.txt || fail "the report misses what the run did"

# jobwarden.exe's report: the same document (relative paths, so that the
# file names in it are the same).
# shellcheck disable=SC2086
timeout 120 "$root/scripts/wine-exec.sh" "$prefix" "$exe" report $files --format json -o rot-exe.json \
  </dev/null >exe.log 2>&1 || { cat exe.log >&2; fail "jobwarden.exe report exited with an error"; }
cmp -s rot.json rot-exe.json || fail "jobwarden.exe's json report differs from the native one"

python3 "$here/check_html.py" rot.html rot.json report.png || fail "the html report failed in chromium"

# --key: the seal verdict per stream is the verifier's own document, in the
# report; a line modified in a copy is named there (kind, file, line).
# shellcheck disable=SC2086
"$jw" verify $files --key run.key --json >verify.json || fail "verify of the intact record exited with $?"
# shellcheck disable=SC2086
"$jw" report $files --key run.key --format json -o sealed.json || fail "report --key exited with $?"
# shellcheck disable=SC2086
"$jw" report $files --key run.key -o sealed.txt || fail "report --key (text) exited with $?"
mkdir -p damaged && for f in $files; do cp "$f" damaged/; done
# The second line of the oldest file but two: an event whose message is
# changed, the JSON still valid.
victim=$(echo "$files" | tail -3 | head -1)
python3 - "damaged/$victim" <<'PY' || fail "cannot damage the copy"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
ev = json.loads(lines[1])
ev["message"] = ev["message"] + " (edited)"
lines[1] = json.dumps(ev, ensure_ascii=False, separators=(",", ":"))
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(lines))
PY
dfiles=$(for f in $files; do echo "damaged/$f"; done)
# shellcheck disable=SC2086
"$jw" report $dfiles --key run.key --format json -o damaged.json || fail "report --key of the damaged copy exited with $?"
# shellcheck disable=SC2086
"$jw" report $dfiles --key run.key -o damaged.txt || fail "report --key (text) of the damaged copy exited with $?"
# shellcheck disable=SC2086
"$jw" report $dfiles --key run.key --format html -o damaged.html || fail "report --key --format html exited with $?"
python3 - "damaged/$victim" <<'PY' || fail "the seal verdicts in the report are not the verifier's"
import json, sys
victim = sys.argv[1]
bad = []
def check(c, what):
    if not c: bad.append(what)
verify = json.load(open("verify.json"))
sealed = json.load(open("sealed.json"))
plain = json.load(open("rot.json"))
check(sealed["seal"] == verify and verify["verdict"] == "intact", "intact: the seal section is not verify's document")
check({k: v for k, v in sealed.items() if k != "seal"} == {k: v for k, v in plain.items() if k != "seal"},
      "intact: --key changed the rest of the report")
text = open("sealed.txt").read()
check("\nSeal verdict: intact\n" in text, "intact: text verdict")
for s in verify["streams"]:
    check("  run %s stream %s: intact, %d line(s)" % (s["run_id"], s["stream"], s["lines"]) in text, "intact: stream %s" % s["stream"])
d = json.load(open("damaged.json"))["seal"]
check(d["verdict"] == "damaged", "damaged: verdict %r" % d["verdict"])
dmg = [x for s in d["streams"] for x in s.get("damage", [])]
check(any(x["kind"] == "modified" and x["file"] == victim and x["line"] == 2 for x in dmg),
      "damaged: no 'modified' at %s:2 in %r" % (victim, dmg[:3]))
dt = open("damaged.txt").read()
check("\nSeal verdict: damaged\n" in dt and ("    DAMAGE modified at %s:2 " % victim) in dt, "damaged: text")
if bad:
    print("\n".join("wine.report.real: " + b for b in bad), file=sys.stderr)
    sys.exit(1)
PY
python3 "$here/check_html.py" damaged.html damaged.json damaged.png || fail "the html report with the seal verdict failed in chromium"
echo "wine.report.real: $nfiles rotated files, $(python3 -c "import json;print(len(json.load(open('rot.json'))['runs'][0]['processes']))") processes reported and checked"
