#!/usr/bin/env bash
# native.report.large: one run of 5,000 processes (make_record.py large:
# 11,755 lines, 13 MB) reported in text, json and html; the json checked
# against the record, the html opened in chromium (one bar per process).
# No clock limit (a loaded machine is no failure): the cost must grow
# linearly, so each format's CPU time (user + sys) for N processes is
# compared with its CPU time for N/10 in the same run: at most 30x (10x is
# linear, a quadratic step would make it ~100x). Prints the times and the
# sizes (docs/performance.md quotes scripts/bench.sh, which runs this).
# Usage: large.sh JOBWARDEN WORK_DIR [N]
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
jw=$1 work=$2 n=${3:-5000}
fail() { echo "native.report.large: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
small=$(( n / 10 ))
python3 "$here/make_record.py" large big.jsonl "$n" || fail "make_record.py failed"
python3 "$here/make_record.py" large small.jsonl "$small" || fail "make_record.py failed"
TIMEFORMAT='%R %U %S'
# report IN FORMAT OUT: runs it, prints its times; its CPU ms in $cpu.
report() {
  { time "$jw" report "$1" --format "$2" -o "$3" 2>"$3.err"; } 2>"$3.time" ||
    fail "--format $2 exited with an error: $(cat "$3.err")"
  read -r real user sys < "$3.time"
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", (u + s) * 1000 }')
  echo "report --format $2: $(stat -c %s "$1") bytes in, $(stat -c %s "$3") bytes out," \
       "${real} s wall, ${user} s user, ${sys} s sys"
}
for f in text json html; do
  report small.jsonl $f small.$f
  cpu_small=$cpu
  report big.jsonl $f big.$f
  ratio=$(awk -v b="$cpu" -v s="$cpu_small" 'BEGIN { printf "%.1f", b / (s > 10 ? s : 10) }')
  echo "  --format $f: $n processes cost ${ratio}x the CPU of $small"
  awk -v r="$ratio" 'BEGIN { exit !(r <= 30) }' ||
    fail "--format $f: $n processes cost ${ratio}x the CPU time of $small (at most 30x: not linear)"
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
