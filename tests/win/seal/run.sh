#!/usr/bin/env bash
# wine.real.seal: the Windows test (tests/win/test_seal.c) makes sealed
# records with the real jobwarden.exe, damages copies of them and checks
# jobwarden.exe's verdicts; then every file of its manifest is verified
# again here with the native jobwarden (the analyst's Linux machine), which
# must give the same verdict at the same line.
#
# Usage: run.sh WINEPREFIX TEST_EXE DATA EVENTS JOBWARDEN_EXE NATIVE_JOBWARDEN [--case NAME]
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
prefix=$1 test_exe=$2 data=$3 events=$4 jw=$5 native=$6
"$root/scripts/wine-exec.sh" "$prefix" "$test_exe" "$data" "$events" "$jw" "${@:7}" || exit 1
if [ ! -x "$native" ]; then
  echo "wine.real.seal: the native jobwarden ($native) is not built: run scripts/setup.sh" >&2
  exit 1
fi
manifest="$events/wine-seal-manifest.txt"
rm -f "$events"/wine-seal-verify-*.json.txt
[ -s "$manifest" ] || { echo "wine.real.seal: no manifest $manifest" >&2; exit 1; }
# Z:\path -> /path (the Wine prefix maps Z: to /).
unix() { printf '%s' "$1" | sed -e 's|^[Zz]:||' -e 's|\\|/|g'; }
fail=0 n=0
while IFS=$'\t' read -r file key kind where; do
  f=$(unix "$file") k=$(unix "$key")
  out=$("$native" verify "$f" --key "$k" 2>&1); rc=$?
  n=$((n + 1))
  "$native" verify "$f" --key "$k" --json >"$events/wine-seal-verify-$n.json.txt" 2>/dev/null
  if [ "$kind" = intact ]; then
    if [ $rc -ne 0 ] || ! grep -q '^verify: intact$' <<<"$out"; then
      echo "native verify $f: expected intact (exit 0), got exit $rc:"; echo "$out"; fail=1
    fi
    continue
  fi
  case "$where" in
    before*|after*) rel="${where%% *} "; line="${where#* }" ;;
    *) rel="" line="$where" ;;
  esac
  if [ "$where" = after ]; then want="  $kind: after $f:"; else want="  $kind: $rel$f:$line"; fi
  if [ $rc -ne 1 ] || ! grep -qF -- "$want" <<<"$(sed -n '/^verify: DAMAGED/,$p' <<<"$out")"; then
    echo "native verify $f: expected exit 1 and '$want', got exit $rc:"; echo "$out"; fail=1
  fi
done < "$manifest"
# Every --json document (intact, and each kind of damage) fits its schema.
python3 - "$root/docs/jobwarden-verify.schema.json" "$events"/wine-seal-verify-*.json.txt <<'PY' || fail=1
import json, sys
import jsonschema
v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1], encoding="utf-8")))
bad = 0
for path in sys.argv[2:]:
    for e in v.iter_errors(json.load(open(path, encoding="utf-8"))):
        bad += 1
        print(f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
print(f"wine.real.seal: {len(sys.argv) - 2} verify --json document(s) checked against the schema")
sys.exit(1 if bad else 0)
PY
echo "wine.real.seal: native jobwarden verify agreed on $n file(s)$([ $fail -ne 0 ] && echo ' except the ones above')"
exit $fail
