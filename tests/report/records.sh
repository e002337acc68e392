#!/usr/bin/env bash
# wine.report.records: every record the tests wrote (the Windows tests'
# runs under Wine, the unit tests' streams) reported by the native
# jobwarden in json and text, and compared with the record by
# check_report.py: every process with its exit, every violation, notice
# and gap, the summary, complete or not. Rotated sets (NAME, NAME.1, ...)
# are reported together, given newest first. A file with no native event
# (an empty stream of a run that failed early) must be refused with exit 1
# and the reason. A sealed run with its key beside it (the test kit's
# <name>.seal.key) is reported with --key too: the seal section must be
# `jobwarden verify --json`'s document, the rest of the report unchanged.
# Usage: records.sh JOBWARDEN WORK_DIR MIN_REPORTS EVENTS_DIR...
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
jw=$1 work=$2 min=$3; shift 3
schema="$root/docs/jobwarden-report.schema.json"
rm -rf "$work" && mkdir -p "$work" || exit 1
reports=0 refused=0 fails=0 k=0 keyed=0
for dir in "$@"; do
  [ -d "$dir" ] || continue
  # Groups: a file name without a trailing .N (rotation).
  groups=$(cd "$dir" && ls | grep -E '\.jsonl(\.txt)?(\.[0-9]+)?$' | sed -E 's/\.[0-9]+$//' | sort -u)
  for g in $groups; do
    files=$(cd "$dir" && ls | grep -E "^$(printf '%s' "$g" | sed 's/[.]/\\./g')(\.[0-9]+)?$" | sort -V)
    paths=()
    for f in $files; do paths+=("$dir/$f"); done
    k=$((k + 1))
    out="$work/$k"
    "$jw" report "${paths[@]}" --format json -o "$out.json" 2>"$out.err"
    rc=$?
    if [ $rc -eq 1 ]; then
      # Refused: only right when no file of the group holds a native event.
      if python3 - "${paths[@]}" <<'PY'
import json, sys
for p in sys.argv[1:]:
    for raw in open(p, "rb").read().split(b"\n"):
        at = raw.find(b'{"')
        if at > 0 and not raw.startswith(b"{"):
            raw = raw[at:]  # a collector's header before the message
        try:
            e = json.loads(raw)
        except Exception:
            continue
        if isinstance(e, dict) and str(e.get("schema_version", "")).startswith("2.") and "seq" in e and "ecs" not in e:
            sys.exit(1)
PY
      then
        grep -qE "^jobwarden: report: .*(an empty file, not a record|not a record: none of its)" "$out.err" ||
          { echo "FAIL: $g: refused without the reason: $(cat "$out.err")" >&2; fails=$((fails + 1)); }
        refused=$((refused + 1))
      else
        echo "FAIL: $g: refused although it holds events: $(cat "$out.err")" >&2; fails=$((fails + 1))
      fi
      continue
    fi
    if [ $rc -ne 0 ]; then echo "FAIL: $g: exit $rc: $(cat "$out.err")" >&2; fails=$((fails + 1)); continue; fi
    "$jw" report "${paths[@]}" -o "$out.txt" 2>/dev/null || { echo "FAIL: $g: text exit $?" >&2; fails=$((fails + 1)); }
    if python3 "$here/check_report.py" "$schema" "$out.json" --text "$out.txt" "${paths[@]}" >"$out.check" 2>&1; then
      reports=$((reports + 1))
    else
      echo "FAIL: $g:" >&2; cat "$out.check" >&2; fails=$((fails + 1))
    fi
    # A sealed run of the test kit has its key beside it (<name>.seal.key):
    # with --key, the report's seal section is verify's own document and
    # the rest of the report does not change.
    key="$dir/${g%.jsonl}.seal.key"
    if [ -f "$key" ]; then
      "$jw" verify "${paths[@]}" --key "$key" --json >"$out.verify.json" 2>/dev/null
      "$jw" report "${paths[@]}" --key "$key" --format json -o "$out.keyed.json" 2>"$out.keyed.err" ||
        { echo "FAIL: $g: report --key exited $?: $(cat "$out.keyed.err")" >&2; fails=$((fails + 1)); continue; }
      if python3 - "$out.json" "$out.keyed.json" "$out.verify.json" <<'PY'
import json, sys
plain, keyed, verify = (json.load(open(p)) for p in sys.argv[1:4])
same = {k: v for k, v in keyed.items() if k != "seal"} == {k: v for k, v in plain.items() if k != "seal"}
sys.exit(0 if same and keyed["seal"] == verify and plain["seal"] is None else 1)
PY
      then
        keyed=$((keyed + 1))
      else
        echo "FAIL: $g: report --key's seal section is not verify's document" >&2; fails=$((fails + 1))
      fi
    fi
  done
done
echo "wine.report.records: $reports record(s) reported and checked ($keyed sealed ones with --key too)," \
     "$refused refused (no event), $fails failure(s)"
[ $fails -eq 0 ] || exit 1
[ $reports -ge "$min" ] || { echo "wine.report.records: fewer than $min records checked" >&2; exit 1; }
