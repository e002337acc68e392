#!/usr/bin/env bash
# native.cli.commands: the native jobwarden (src/unix/main.c): the portable
# subcommands run, the Windows-only ones say so, every usage error has its
# message and exit status 125. Continuation records and lines delivered
# twice: a sealed record (made by jw-parts) split as a sink with a size
# limit sends it verifies intact and reads the same in report and tail
# --file; a part missing is named by all three; lines delivered twice are
# `duplicate`, exit 0; the record split at two limits (two sinks) and
# interleaved is every line twice, put together apart.
#
# Usage: commands.sh JOBWARDEN WORKDIR DATA_DIR JW_PARTS
set -u
jw=$1 work=$2 data=$3 jwp=$4
root=$(cd "$data/../.." && pwd)
rm -rf "$work" && mkdir -p "$work"
fails=0 checks=0
# expect NAME STATUS STDOUT_GREP STDERR_GREP -- ARGS...
expect() {
  local name=$1 want=$2 out_re=$3 err_re=$4; shift 5
  "$jw" "$@" >"$work/out" 2>"$work/err"; local rc=$?
  checks=$((checks + 1))
  if [ "$rc" -ne "$want" ] ||
     { [ -n "$out_re" ] && ! grep -qE -- "$out_re" "$work/out"; } ||
     { [ -n "$err_re" ] && ! grep -qE -- "$err_re" "$work/err"; }; then
    fails=$((fails + 1))
    echo "FAIL $name: exit $rc (want $want)"; echo "  stdout: $(head -c 400 "$work/out")"
    echo "  stderr: $(head -c 400 "$work/err")"
  fi
}
expect help 0 '^  jobwarden verify FILE\.\.\. --key KEYFILE \[--json\]$' '' -- --help
expect version 0 '^jobwarden [0-9.]+ \(event schema [0-9.]+, native build\)$' '' -- --version
expect none 125 '' '^Usage' --
for c in run probe ps kill; do
  expect "$c" 125 '' "^jobwarden: $c: Windows-only \(it needs a Job Object\); this native build has verify, report, seal-key, check-policy, tail --file and flush\$" -- "$c" x
done
expect tail-name 125 '' '^jobwarden: tail: Windows-only .*\(tail --file FILE reads a record file\)$' -- tail NAME
expect unknown 125 '' "^jobwarden: unknown command 'frobnicate' \(see jobwarden --help\)\$" -- frobnicate
# seal-key
expect seal-key-usage 125 '' "^jobwarden: seal-key: expected 'seal-key new FILE'\$" -- seal-key old "$work/k"
expect seal-key-new 0 "^$work/k: new seal key [0-9a-f]{32} \(owner-only; keep a copy away from the sandboxed program\)\$" '' -- seal-key new "$work/k"
[ "$(stat -c %a "$work/k")" = 600 ] || { fails=$((fails + 1)); echo "FAIL key mode $(stat -c %a "$work/k")"; }
checks=$((checks + 1))
expect seal-key-exists 125 '' "^jobwarden: seal-key: $work/k: cannot create: File exists \(a key file is never overwritten\)\$" -- seal-key new "$work/k"
# flush: usage and spools that are not (a real one: wine.real.spool)
expect flush-nodir 125 '' '^jobwarden: flush: expected the spool directory \(usage: jobwarden flush DIR \[--timeout DURATION\]\)$' -- flush
expect flush-missing 125 '' "^jobwarden: flush: cannot list '$work/nospool': No such file or directory\$" -- flush "$work/nospool"
mkdir -p "$work/notspool/sub"
expect flush-notspool 125 '' "^jobwarden: flush: $work/notspool: not a spool \(no run directory with a 'sink' file in it\)\$" -- flush "$work/notspool"
expect flush-timeout 125 '' '^jobwarden: flush: --timeout: expected a duration like "30s" \(at most 24h\), got "soon"$' -- flush "$work/notspool" --timeout soon
expect flush-opt 125 '' "^jobwarden: flush: unknown option '--now'" -- flush "$work/notspool" --now
mkdir -p "$work/spool/run1" "$work/spool/run2"
printf 'pipe-connect:collector\n' > "$work/spool/run1/sink"
expect flush-windows-sink 125 '' "^jobwarden: flush: $work/spool/run1: --export: unknown exporter 'pipe-connect'" -- flush "$work/spool/run1"
printf 'syslog+tcp://127.0.0.1:9,spool=x\n' > "$work/spool/run2/sink"
expect flush-empty 0 '^flush: 0 line\(s\) delivered, 0 still waiting$' '' -- flush "$work/spool/run2"
[ ! -e "$work/spool/run2" ] || { fails=$((fails + 1)); echo "FAIL flush-empty left $work/spool/run2"; }
checks=$((checks + 1))
# verify: usage
expect verify-nokey 125 '' '^jobwarden: verify: expected FILE\.\.\. and --key KEYFILE' -- verify x.jsonl
expect verify-nofile 125 '' '^jobwarden: verify: expected FILE\.\.\. and --key KEYFILE' -- verify --key "$work/k"
expect verify-opt 125 '' "^jobwarden: verify: unknown option '--fast'" -- verify x --key "$work/k" --fast
expect verify-badkey 125 '' "^jobwarden: verify: $data/policy/.*: not a jobwarden seal key" -- verify x --key "$(ls "$data"/policy/*.json | head -1)"
expect verify-missing 125 '' "^jobwarden: verify: $work/none.jsonl: cannot open: No such file or directory\$" -- verify "$work/none.jsonl" --key "$work/k"
# verify: an unsealed record and an empty file
printf '{"schema_version":"2.0.0","event":"sandbox.job_start","seq":1}\n' > "$work/plain.jsonl"
: > "$work/empty.jsonl"
expect verify-unsealed 1 '^  unsealed: .*plain\.jsonl: no line of the file is sealed$' '' -- verify "$work/plain.jsonl" --key "$work/k"
expect verify-empty 1 '^  unsealed: .*empty\.jsonl: the file is empty$' '' -- verify "$work/empty.jsonl" --key "$work/k"
expect verify-json 1 '"verdict": "damaged"' '' -- verify "$work/plain.jsonl" --key "$work/k" --json
# tail --file: a record with and without its end
printf '%s\n' '{"schema_version":"2.0.0","event":"sandbox.job_start","seq":1,"severity":"info","rule":"job","message":"go"}' > "$work/cut.jsonl"
cp "$work/cut.jsonl" "$work/whole.jsonl"
printf '%s\n' '{"schema_version":"2.0.0","event":"sandbox.job_end","seq":2,"severity":"info","rule":"job","message":"done"}' >> "$work/whole.jsonl"
expect tail-whole 0 '^- +info +job +pid=- +- +go$' '' -- tail --file "$work/whole.jsonl"
expect tail-cut 1 '' "^jobwarden: tail: $work/cut.jsonl: the record ends before sandbox.job_end\$" -- tail --file "$work/cut.jsonl"
expect tail-raw 0 '^\{"schema_version":"2.0.0","event":"sandbox.job_end"' '' -- tail --file "$work/whole.jsonl" --raw
expect tail-nofile 125 '' '^jobwarden: tail: --file needs a FILE$' -- tail --file
# check-policy
expect check-policy-usage 125 '' '^jobwarden: check-policy: expected exactly one FILE$' -- check-policy
printf '{"seal":{"new_key":"k.key"}}' > "$work/p.json"
expect check-policy-seal 0 '"new_key": "k.key"' '' -- check-policy "$work/p.json"
# Continuation records: a sealed record of 8 events (lines of 600 to 700
# bytes), every line split at 400 bytes.
check() { # NAME STATUS
  checks=$((checks + 1))
  if [ "$2" -ne 0 ]; then fails=$((fails + 1)); echo "FAIL $1"; fi
}
"$jwp" record "$work/parts.key" "$work/rec.jsonl" 8
"$jwp" split 400 "$work/rec.jsonl" "$work/split.jsonl"
part_re='^\{"jobwarden_part":\{"v":2,"run_id":"[0-9a-f]{32}","seq":[1-8],"digest":"[0-9a-f]{32}","limit":400,"n":[0-9]+,"of":[0-9]+,"bytes":[0-9]+,"data":".*"\}\}$'
[ "$(wc -l <"$work/rec.jsonl")" -eq 8 ] && [ "$(wc -l <"$work/split.jsonl")" -gt 16 ] &&
  ! grep -qvE "$part_re" "$work/split.jsonl" && [ "$(LC_ALL=C awk 'length > 400' "$work/split.jsonl" | wc -l)" -eq 0 ]
check "split: 8 lines into part records of at most 400 bytes" $?
run=$(sed -n 's/.*"run_id":"\([0-9a-f]\{32\}\)".*/\1/p' "$work/rec.jsonl" | head -1)
expect verify-split 0 "^$work/split\\.jsonl: run $run stream 0: intact, 8 lines, index 0 to 7, closed by sandbox\\.job_end\$" '' -- verify "$work/split.jsonl" --key "$work/parts.key"
grep -qx 'verify: intact' "$work/out"; check "verify-split: verify: intact" $?
expect tail-split 0 '' '' -- tail --file "$work/split.jsonl"
cp "$work/out" "$work/tail-split.txt"
"$jw" tail --file "$work/rec.jsonl" >"$work/tail-rec.txt"
cmp -s "$work/tail-split.txt" "$work/tail-rec.txt" && [ "$(wc -l <"$work/tail-rec.txt")" -eq 8 ]
check "tail --file: the split record prints the same 8 events as the record" $?
"$jw" tail --file "$work/split.jsonl" --raw | cmp -s - "$work/rec.jsonl"
check "tail --file --raw: the split record's lines put together are the record, byte for byte" $?
expect report-split 0 '^  Seq:      1-8, 8 event\(s\), missing: none$' '' -- report "$work/split.jsonl"
"$jw" report "$work/split.jsonl" --format json >"$work/report-split.json" &&
  "$jw" report "$work/rec.jsonl" --format json >"$work/report-rec.json" &&
  python3 - "$work/report-split.json" "$work/report-rec.json" <<'PY'
import json, sys
def strip(path):
    d = json.load(open(path, encoding="utf-8"))
    d.pop("files")
    for r in d["runs"]:
        r.pop("files")
        for e in r["events"]:
            e.pop("file"), e.pop("line")
    return d
sys.exit(0 if strip(sys.argv[1]) == strip(sys.argv[2]) else 1)
PY
check "report --format json: the split record's report is the record's (files and lines aside)" $?
# A part missing: part 1 of the event of seq 2 (its line gone). Its other
# parts start at the same line number then; verify places the missing
# index before seq 3's first part.
l2=$(grep -nE '"seq":2,"digest":"[0-9a-f]{32}","limit":400,"n":1,' "$work/split.jsonl" | cut -d: -f1)
of2=$(sed -n "${l2}s/.*\"of\":\([0-9]*\).*/\1/p" "$work/split.jsonl")
d2=$(sed -n "${l2}s/.*\"digest\":\"\([0-9a-f]*\)\".*/\1/p" "$work/split.jsonl")
name2="run $run seq 2 \\(digest ${d2:0:12}, limit 400\\)" # the line's name in messages
sed "${l2}d" "$work/split.jsonl" >"$work/miss.jsonl"
l3=$(grep -nE '"seq":3,"digest":"[0-9a-f]{32}","limit":400,"n":1,' "$work/miss.jsonl" | cut -d: -f1)
expect verify-missing-part 1 "^$work/miss\\.jsonl:$l2: incomplete: $name2: $((of2 - 1)) of $of2 continuation records \\(part 1 missing\\); the event is not in the record\$" '' -- verify "$work/miss.jsonl" --key "$work/parts.key"
grep -qxE "  deleted: before $work/miss\\.jsonl:$l3 \\(seq 3, a line of [0-9]+ continuation records\\): index 1 is missing" "$work/out"
check "verify-missing-part: index 1 deleted, before seq 3's first part" $?
expect report-missing-part 0 '' "^jobwarden: report: $work/miss\\.jsonl:$l2: an incomplete event: $name2: $((of2 - 1)) of $of2 continuation records \\(part 1 missing\\); the event is not in the report\$" -- report "$work/miss.jsonl"
grep -qx 'Note: 1 event(s) sent as continuation records are incomplete: parts are missing (problems), the events are not in the report' "$work/out"
check "report-missing-part: the note" $?
expect tail-missing-part 1 '' "^jobwarden: tail: $work/miss\\.jsonl:$l2: an incomplete event: $name2: $((of2 - 1)) of $of2 continuation records \\(part 1 missing\\)\$" -- tail --file "$work/miss.jsonl"
[ "$(wc -l <"$work/out")" -eq 7 ]; check "tail-missing-part: the 7 other events" $?
# Every part of seq 2 under another digest: the line comes together at its
# last part but is not the line of its digest, and is dropped. report,
# tail and verify all name it where its first part is ($l2), not its last.
bad=00000000000000000000000000000000
sed "s/\"seq\":2,\"digest\":\"$d2\"/\"seq\":2,\"digest\":\"$bad\"/" "$work/split.jsonl" >"$work/baddigest.jsonl"
dropped="the $of2 parts of run $run seq 2 \\(digest ${bad:0:12}, limit 400\\) put together are not the line of their \"digest\" \\($bad\\): the line is dropped"
[ "$(grep -c "\"digest\":\"$bad\"" "$work/baddigest.jsonl")" -eq "$of2" ] && [ "$of2" -ge 2 ]
check "baddigest: all $of2 parts of seq 2 carry another digest" $?
expect report-dropped-line 0 '' "^jobwarden: report: $work/baddigest\\.jsonl:$l2: $dropped\$" -- report "$work/baddigest.jsonl"
expect tail-dropped-line 1 '' "^jobwarden: tail: $work/baddigest\\.jsonl:$l2: $dropped\$" -- tail --file "$work/baddigest.jsonl"
expect verify-dropped-line 1 "^  modified: $work/baddigest\\.jsonl:$l2 " '' -- verify "$work/baddigest.jsonl" --key "$work/parts.key"
# Two sinks of the run sending to one collector, with headers of other
# lengths: the record split at 400 and at 520, the two streams of parts
# interleaved part by part. Each line is put together twice, apart (no
# conflict between the splits): 8 duplicates, intact.
"$jwp" split 520 "$work/rec.jsonl" "$work/split520.jsonl"
awk 'NR == FNR { a[++n] = $0; next } { b[++m] = $0 }
     END { for (i = 1; i <= n || i <= m; i++) { if (i <= n) print a[i]; if (i <= m) print b[i] } }' \
  "$work/split.jsonl" "$work/split520.jsonl" >"$work/two.jsonl"
expect verify-two-limits 0 "^$work/two\\.jsonl: run $run stream 0: intact, 16 lines, index 0 to 7, closed by sandbox\\.job_end\$" '' -- verify "$work/two.jsonl" --key "$work/parts.key"
grep -qx 'verify: 8 duplicate line(s): delivered more than once, not damage' "$work/out"
check "verify-two-limits: every line twice, 8 duplicates" $?
"$jw" tail --file "$work/two.jsonl" --raw | LC_ALL=C sort | cmp -s - <(cat "$work/rec.jsonl" "$work/rec.jsonl" | LC_ALL=C sort)
check "tail --file --raw: the two splits put together are each line twice, byte for byte" $?
# Lines delivered twice (a resend after a reconnect): lines 3 to 5 again
# at the end, byte for byte.
{ cat "$work/rec.jsonl"; sed -n 3,5p "$work/rec.jsonl"; } >"$work/dup.jsonl"
expect verify-duplicates 0 "^$work/dup\\.jsonl: run $run stream 0: intact, 11 lines, index 0 to 7, closed by sandbox\\.job_end\$" '' -- verify "$work/dup.jsonl" --key "$work/parts.key"
{
  for i in 9 10 11; do
    echo "  duplicate: $work/dup.jsonl:$i (index $((i - 7))): the same line as $work/dup.jsonl:$((i - 6)), delivered again (not damage)"
  done
  echo "verify: 3 duplicate line(s): delivered more than once, not damage"
  echo "verify: intact"
} >"$work/dup-want.txt"
tail -n 5 "$work/out" | cmp -s - "$work/dup-want.txt"; check "verify-duplicates: the three duplicates, intact" $?
expect report-duplicates 0 "^  Note: 3 line\\(s\\) repeat the seq of an event already read \\(a sink's resend after a reconnect, a replayed spool, or the same events in several files\\): each event is counted once \\(seq\\.duplicates\\)\$" '' -- report "$work/dup.jsonl"
grep -qx '  Seq:      1-8, 8 event(s), 3 line(s) repeated a seq (read once), missing: none' "$work/out"
check "report-duplicates: 8 events, 3 repeats" $?
# A line delivered again but changed (not byte for byte) stays damage.
{ cat "$work/rec.jsonl"; sed -n 3p "$work/rec.jsonl" | sed 's/event 2:/event 9:/'; } >"$work/forged.jsonl"
expect verify-not-a-duplicate 1 "^  inserted: $work/forged\\.jsonl:9 \\(seq 3\\): a second line for index 2 that the key did not seal\$" '' -- verify "$work/forged.jsonl" --key "$work/parts.key"
# Every --json document fits docs/jobwarden-verify.schema.json and says
# the same.
for f in split miss dup forged; do
  "$jw" verify "$work/$f.jsonl" --key "$work/parts.key" --json >"$work/$f.verify.json"
done
D2="$d2" python3 - "$root/docs/jobwarden-verify.schema.json" "$work"/split.verify.json "$work"/miss.verify.json \
  "$work"/dup.verify.json "$work"/forged.verify.json <<'PY'
import json, os, sys
import jsonschema
v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1], encoding="utf-8")))
docs = [json.load(open(p, encoding="utf-8")) for p in sys.argv[2:]]
bad = [f"{p}: {e.message}" for p, d in zip(sys.argv[2:], docs) for e in v.iter_errors(d)]
split, miss, dup, forged = docs
want = [split["verdict"] == "intact" and split["incomplete"] == [] and split["duplicates"] == 0,
        miss["verdict"] == "damaged" and len(miss["incomplete"]) == 1 and miss["incomplete"][0]["seq"] == 2
        and miss["incomplete"][0]["first_missing"] == 1
        and miss["incomplete"][0]["digest"] == os.environ["D2"] and miss["incomplete"][0]["limit"] == 400,
        dup["verdict"] == "intact" and dup["duplicates"] == 3
        and [(d["line"], d["first"]["line"]) for d in dup["streams"][0]["duplicates"]] == [(9, 3), (10, 4), (11, 5)],
        forged["verdict"] == "damaged" and forged["duplicates"] == 0]
for line in bad + ([] if all(want) else ["unexpected verdicts: %r" % want]):
    print(line)
sys.exit(0 if not bad and all(want) else 1)
PY
check "verify --json: the four documents fit the schema and say the same" $?
echo "native.cli.commands: $checks checks, $fails failed"
[ $fails -eq 0 ]
