#!/usr/bin/env bash
# native.format.all_outputs: converts every native event file the other
# tests wrote (DIR/*.jsonl, their rotated parts *.jsonl.N, and the unit
# rotation test's unit-rotation*.jsonl.txt[.N]: the files the schema tests
# validate, written by the tests of the fixtures this test requires; other
# *.txt files are scratch files of tests still running) to ECS and to OCSF
# with jw-format, checks that
# each conversion has exactly the input's number of lines, and validates
# every converted line: ECS against @elastic/ecs (tests/ecs/check.sh), OCSF
# against the transcribed classes (tests/ocsf/validate_ocsf.py).
# usage: all_outputs.sh JW_FORMAT ECS_DEFS_DIR OUT_DIR DIR...
# A DIR that does not exist (a tree not built) is skipped and said; no
# event file at all is a failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
jwf=$1 defs=$2 out=$3
shift 3
rm -rf "$out" && mkdir -p "$out"
files=0 lines=0 fail=0
for dir in "$@"; do
  if [ ! -d "$dir" ]; then
    echo "all_outputs: $dir does not exist (that tree was not built or run): skipped"
    continue
  fi
  tree=$(basename "$(dirname "$dir")")
  shopt -s nullglob
  for f in "$dir"/*.jsonl "$dir"/*.jsonl.[0-9]* "$dir"/unit-rotation*.jsonl.txt*; do
    n=$(grep -c '' "$f")
    [ "$n" -gt 0 ] || continue
    files=$((files + 1))
    lines=$((lines + n))
    for fmt in ecs ocsf; do
      dst="$out/$tree-$(basename "$f").$fmt.jsonl"
      if ! "$jwf" "$fmt" "$f" "$dst"; then
        echo "all_outputs: jw-format $fmt failed on $f"
        fail=1
        continue
      fi
      m=$(grep -c '' "$dst")
      if [ "$m" -ne "$n" ]; then
        echo "all_outputs: $f has $n lines, its $fmt conversion $m"
        fail=1
      fi
    done
  done
done
echo "all_outputs: $files native file(s), $lines line(s) converted"
if [ "$files" -eq 0 ]; then
  echo "all_outputs: no native event file found: nothing was checked"
  exit 1
fi
bash "$here/tests/ecs/check.sh" "$defs" "$out"/*.ecs.jsonl --expect-lines "$lines" || fail=1
/usr/bin/python3 "$here/tests/ocsf/validate_ocsf.py" "$here/tests/ocsf" "$out"/*.ocsf.jsonl \
  --expect-lines "$lines" --version 1.9.0 || fail=1
exit $fail
