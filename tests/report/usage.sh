#!/usr/bin/env bash
# native.report.usage: bad input to `jobwarden report`, each with its exact
# message on stderr, its exit status, and nothing on stdout (no -o file).
# Usage: usage.sh JOBWARDEN WORK_DIR GOOD_RECORD
set -u
jw=$1 work=$2 good=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fails=0
U="(report FILE... [--format text|json|html] [--key KEYFILE] [-o OUT])"

# expect STATUS STDERR ARGS...: runs `jobwarden report ARGS...`.
expect() {
  local want_rc=$1 want_err=$2; shift 2
  "$jw" report "$@" >out.txt 2>err.txt
  local rc=$?
  local err; err=$(cat err.txt)
  if [ "$rc" != "$want_rc" ] || [ "$err" != "$want_err" ] || [ -s out.txt ]; then
    echo "FAIL: report $*" >&2
    echo "  exit $rc (want $want_rc)" >&2
    echo "  stderr: $err" >&2
    echo "  want:   $want_err" >&2
    [ -s out.txt ] && echo "  stdout not empty: $(head -c 200 out.txt)" >&2
    fails=$((fails + 1))
  fi
}
printf 'hello\n' > notjson.jsonl
: > empty.jsonl
printf '{"ecs":{"version":"8.11.0"},"event":{"kind":"event"}}\n' > ecs.jsonl
printf '{"schema_version":"2.0.0","event":"sandbox.notice","seq":' > torn.jsonl
printf 'not a key\n' > bad.key
cp "$good" good.jsonl

expect 125 "jobwarden: report: expected at least one record FILE $U"
expect 125 "jobwarden: report: expected at least one record FILE $U" --format json
expect 1 "jobwarden: report: nonexistent.jsonl: cannot open: No such file or directory" nonexistent.jsonl
expect 1 "jobwarden: report: nonexistent.jsonl: cannot open: No such file or directory" good.jsonl nonexistent.jsonl -o never.html --format html
[ -e never.html ] && { echo "FAIL: -o file written although a file could not be read" >&2; fails=$((fails + 1)); }
expect 1 "jobwarden: report: empty.jsonl: an empty file, not a record" empty.jsonl
expect 1 "jobwarden: report: notjson.jsonl: not a record: none of its 1 line(s) is a jobwarden event (line 1: not JSON: '[' or '{' expected near 'hello' (column 5))" notjson.jsonl
expect 1 "jobwarden: report: ecs.jsonl: not a record: none of its 1 line(s) is a jobwarden event (line 1: a line in the ECS (format=ecs) format: report reads jobwarden's native lines only (format=native, the default; give it the native file of the run))" ecs.jsonl
expect 1 "jobwarden: report: torn.jsonl: not a record: none of its 1 line(s) is a jobwarden event (line 1: not JSON: unexpected token near end of file (the file ends inside this line: a cut write?))" torn.jsonl
expect 125 "jobwarden: report: unknown --format 'xml' (text, json or html)" good.jsonl --format xml
expect 125 "jobwarden: report: --format needs a value: text, json or html $U" good.jsonl --format
expect 125 "jobwarden: report: --format given twice" good.jsonl --format json --format text
expect 125 "jobwarden: report: -o needs a file name OUT $U" good.jsonl -o
expect 125 "jobwarden: report: -o given twice" good.jsonl -o a -o b
expect 125 "jobwarden: report: unknown option '--verbose' $U" good.jsonl --verbose
expect 125 "jobwarden: report: --key needs a KEYFILE $U" good.jsonl --key
expect 125 "jobwarden: report: -o no/such/dir/out.txt: cannot create: No such file or directory" good.jsonl -o no/such/dir/out.txt
# The key file: read by src/seal.c's jw_seal_key_read, whose text names
# the file and what is wrong with it.
expect 125 "jobwarden: report: --key: nonexistent.key: cannot open the key file: No such file or directory" good.jsonl --key nonexistent.key
expect 125 "jobwarden: report: --key: bad.key: not a jobwarden seal key (expected the JSON line that 'jobwarden seal-key new' writes)" good.jsonl --key bad.key
# A good key and an unsealed record: reported (exit 0), the seal section
# says the file carries no seal.
"$jw" seal-key new good.key >/dev/null 2>&1 || { echo "FAIL: seal-key new" >&2; fails=$((fails + 1)); }
"$jw" report good.jsonl --key good.key --format json -o keyed.json 2>err.txt
rc=$?
python3 - <<'PY' || { echo "FAIL: --key on an unsealed record: exit $rc, $(cat err.txt)" >&2; fails=$((fails + 1)); }
import json, sys
s = json.load(open("keyed.json"))["seal"]
sys.exit(0 if s["verdict"] == "damaged" and s["files"][0]["unsealed"] == s["files"][0]["lines"] > 0
         and any(d["kind"] == "unsealed" for st in s["streams"] for d in st["damage"]) else 1)
PY
[ $rc -eq 0 ] || { echo "FAIL: --key on an unsealed record exited $rc" >&2; fails=$((fails + 1)); }

# A record with lines that are not events: reported (exit 0), each line
# named on stderr, and listed in the report itself.
{ cat good.jsonl; echo 'garbage'; cat ecs.jsonl; } > mixed.jsonl
n=$(wc -l < good.jsonl)
"$jw" report mixed.jsonl --format json -o mixed.json 2>err.txt
rc=$?
want="jobwarden: report: mixed.jsonl:$((n + 1)): not JSON: '[' or '{' expected near 'garbage' (column 7)
jobwarden: report: mixed.jsonl:$((n + 2)): a line in the ECS (format=ecs) format: report reads jobwarden's native lines only (format=native, the default; give it the native file of the run)"
if [ $rc != 0 ] || [ "$(cat err.txt)" != "$want" ]; then
  echo "FAIL: mixed record: exit $rc, stderr: $(cat err.txt)" >&2; fails=$((fails + 1))
fi
python3 - "$n" <<'PY' || fails=$((fails + 1))
import json, sys
n = int(sys.argv[1])
d = json.load(open("mixed.json"))
want = [{"file": "mixed.jsonl", "line": n + 1, "reason": "not JSON: '[' or '{' expected near 'garbage' (column 7)"},
        {"file": "mixed.jsonl", "line": n + 2, "reason": "a line in the ECS (format=ecs) format: report reads jobwarden's native lines only (format=native, the default; give it the native file of the run)"}]
if d["problems"] != want or d["files"][0]["not_events"] != 2:
    print("FAIL: problems in the report: %r" % d["problems"], file=sys.stderr)
    sys.exit(1)
PY
# --help names the subcommand and its exit statuses.
"$jw" --help | grep -q '^  jobwarden report FILE... \[--format text|json|html\] \[--key KEYFILE\] \[-o OUT\]$' ||
  { echo "FAIL: --help has no report line" >&2; fails=$((fails + 1)); }

if [ $fails -ne 0 ]; then echo "native.report.usage: $fails failure(s)" >&2; exit 1; fi
echo "native.report.usage: every case as expected"
