#!/usr/bin/env bash
# native.cli.commands: the native jobwarden (src/unix/main.c): the portable
# subcommands run, the Windows-only ones say so, every usage error has its
# message and exit status 125.
#
# Usage: commands.sh JOBWARDEN WORKDIR DATA_DIR
set -u
jw=$1 work=$2 data=$3
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
  expect "$c" 125 '' "^jobwarden: $c: Windows-only \(it needs a Job Object\); this native build has verify, report, seal-key, check-policy and tail --file\$" -- "$c" x
done
expect tail-name 125 '' '^jobwarden: tail: Windows-only .*\(tail --file FILE reads a record file\)$' -- tail NAME
expect unknown 125 '' "^jobwarden: unknown command 'frobnicate' \(see jobwarden --help\)\$" -- frobnicate
# seal-key
expect seal-key-usage 125 '' "^jobwarden: seal-key: expected 'seal-key new FILE'\$" -- seal-key old "$work/k"
expect seal-key-new 0 "^$work/k: new seal key [0-9a-f]{32} \(owner-only; keep a copy away from the sandboxed program\)\$" '' -- seal-key new "$work/k"
[ "$(stat -c %a "$work/k")" = 600 ] || { fails=$((fails + 1)); echo "FAIL key mode $(stat -c %a "$work/k")"; }
checks=$((checks + 1))
expect seal-key-exists 125 '' "^jobwarden: seal-key: $work/k: cannot create: File exists \(a key file is never overwritten\)\$" -- seal-key new "$work/k"
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
echo "native.cli.commands: $checks checks, $fails failed"
[ $fails -eq 0 ]
