#!/usr/bin/env bash
# native.report.large: one run of 5,000 processes (make_record.py large:
# 11,755 lines, 13 MB) reported in text, json and html, each in under 2 s
# of wall-clock time (the test runs alone: RUN_SERIAL); the json checked
# against the record, the html opened in chromium (one bar per process).
# Prints the times and the sizes (docs/performance.md quotes
# scripts/bench.sh, which runs this script).
# Usage: large.sh JOBWARDEN WORK_DIR [N]
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
jw=$1 work=$2 n=${3:-5000}
fail() { echo "native.report.large: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
python3 "$here/make_record.py" large big.jsonl "$n" || fail "make_record.py failed"
TIMEFORMAT='%R %U %S'
for f in text json html; do
  { time "$jw" report big.jsonl --format $f -o big.$f 2>big.$f.err; } 2>big.$f.time ||
    fail "--format $f exited with an error: $(cat big.$f.err)"
  read -r real user sys < big.$f.time
  ms=$(awk -v r="$real" 'BEGIN { printf "%d", r * 1000 }')
  echo "report --format $f: $n processes, $(stat -c %s big.jsonl) bytes in, $(stat -c %s big.$f) bytes out," \
       "${real} s wall, ${user} s user, ${sys} s sys"
  [ "$ms" -lt 2000 ] || fail "--format $f took ${ms} ms (limit 2000)"
done
python3 "$here/check_report.py" "$root/docs/jobwarden-report.schema.json" big.json --text big.text \
  --expect-runs 1 --expect-complete yes big.jsonl || fail "the report differs from the record"
python3 -c "import json,sys; r=json.load(open('big.json'))['runs'][0]; sys.exit(0 if len(r['processes'])==$n else 1)" ||
  fail "not $n processes"
if [ "${NO_HTML_CHECK:-}" = "" ]; then
  start=$(date +%s%N)
  python3 "$here/check_html.py" big.html big.json big.png || fail "the html failed in chromium"
  echo "html in chromium (load, checks, clicks): $(( ($(date +%s%N) - start) / 1000000 )) ms"
fi
