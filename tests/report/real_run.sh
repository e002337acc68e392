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
#     is kept as WORK_DIR/report.png.
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
  --export "file:Z:$work/rot.jsonl,rotate=4K,keep=200" --export "file:Z:$work/whole.jsonl" \
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
echo "wine.report.real: $nfiles rotated files, $(python3 -c "import json;print(len(json.load(open('rot.json'))['runs'][0]['processes']))") processes reported and checked"
