#!/usr/bin/env bash
# wine.real.spool: jobwarden.exe (under Wine) with a syslog+tcp sink whose
# collector (tests/syslog/collector.py) misbehaves; nothing may be lost.
#
# Usage: run_spool_test.sh JOBWARDEN_EXE HELPER_EXE WINEPREFIX EVENTS_DIR WORK_DIR NATIVE_JOBWARDEN
#
#  1. stall: the collector accepts but never reads. The run ends anyway
#     (drain=1s): job_end is the last line of the file sink and says the
#     TCP sink lost nothing and has lines pending in its spool; stderr says
#     where they wait. Then the stalled collector is stopped (it hands over
#     what its connections held), a working one is started, and the native
#     `jobwarden flush` delivers the rest: the two collectors together hold
#     every line of the run, byte for byte, and the sealed stream verifies.
#  2. restart: the collector is down for a whole run (drain=0s); the next
#     run to the same spool, with the collector up, sends the first run's
#     lines first, then its own; both runs' streams verify intact.
# Every step waits for what happened (a port file, a line in a file, a
# process's exit), never for a guessed time.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
jobwarden=$1 helper=$2 prefix=$3 events=$4 work=$5 native=$6

fail() { echo "wine.real.spool: $*" >&2; exit 1; }
[ -x "$native" ] || fail "the native jobwarden ($native) is not built"
rm -rf "$work" && mkdir -p "$work" || fail "cannot create $work"
wait_for() { python3 "$here/wait_for.py" "$@"; }

collector_pid=
stop_collector() {
  if [ -n "$collector_pid" ]; then
    kill -TERM "$collector_pid" 2>/dev/null
    wait "$collector_pid" 2>/dev/null
    collector_pid=
  fi
}
trap stop_collector EXIT
trap 'exit 1' INT TERM
# start_collector MODE OUT [PORT]: sets collector_pid and port.
start_collector() {
  rm -f "$work/port"
  python3 "$here/collector.py" "$1" "$work/port" "$2" ${3:-} </dev/null >>"$work/collector.log" 2>&1 &
  collector_pid=$!
  port=$(wait_for file "$work/port" 10) || fail "the collector ($1) did not start"
}
run_jw() { # LOG KEY SPEC STDERR args...
  local log=$1 key=$2 spec=$3 err=$4
  shift 4
  rm -f "$log" "$key"
  timeout 120 "$root/scripts/wine-exec.sh" "$prefix" "$jobwarden" run \
    --seal-key "Z:$key" --export "$spec" --export "file:Z:$log" \
    -- "Z:$helper" "$@" </dev/null >"$err" 2>&1
}

# ---- 1. stall ---------------------------------------------------------------
start_collector stall "$work/stalled.txt"
log1="$events/real-spool-stall.jsonl"
spool1="$work/spool-stall"
spec1="syslog+tcp://127.0.0.1:$port,spool=Z:$spool1,drain=1s,retry_max=500ms"
run_jw "$log1" "$events/real-spool-stall.key" "$spec1" "$work/jw-stall.err" --helper flood 300
rc=$?
[ $rc -eq 0 ] || { cat "$work/jw-stall.err" >&2; fail "run 1 exited with $rc"; }
grep -q "they stay in the spool" "$work/jw-stall.err" ||
  { cat "$work/jw-stall.err" >&2; fail "stderr does not say where the undelivered lines wait"; }
python3 - "$log1" "$spec1" <<'PY' || fail "run 1's record"
import json, sys
log, spec = sys.argv[1], sys.argv[2]
ev = [json.loads(l) for l in open(log, encoding="utf-8")]
assert ev[-1]["event"] == "sandbox.job_end", "job_end is not the last line"
rules = [e["rule"] for e in ev]
assert "sink_failed" not in rules, "a line was lost"
assert rules.count("sink_unreachable") >= 1, "the stall was never noticed"
sinks = {s["exporter"]: s for s in ev[-1]["summary"]["sinks"]}
t = sinks[spec]
assert t["lost"] == 0 and t["written"] == len(ev) - 1, t
assert t["spool"]["pending"] > 0 and t["spool"]["collector_down"] is True, t
print(f"stall: {len(ev)} lines, {t['spool']['pending']} pending in the spool at job_end, none lost")
PY
stop_collector
# The spool's sink file names the stalled collector's port: flush delivers
# to the SPEC it finds there, so the working collector takes that port.
old_port=$(sed -n 's/^syslog+tcp:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$spool1"/*/sink)
[ -n "$old_port" ] || fail "no sink file in $spool1"
start_collector recv "$work/flushed.txt" "$old_port"
"$native" flush "$spool1" --timeout 30s >"$work/flush.out" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$work/flush.out" >&2; fail "flush exited with $rc"; }
grep -q "still waiting" "$work/flush.out" && ! grep -q ", 0 still waiting" "$work/flush.out" &&
  { cat "$work/flush.out" >&2; fail "flush left lines"; }
stop_collector
[ -z "$(ls -A "$spool1")" ] || fail "flush left $spool1 non-empty: $(ls -R "$spool1")"
cat "$work/stalled.txt" "$work/flushed.txt" > "$work/stall-all.txt"
python3 - "$log1" "$work/stall-all.txt" <<'PY' || fail "the collectors do not hold run 1"
import sys
want = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
got = open(sys.argv[2], "rb").read().split(b"\n")[:-1]
import re, json
SEAL = re.compile(rb',"seal":\{[^{}]*\}\}$')
strip = lambda l: SEAL.sub(b"}", l)
wantset = {json.loads(l)["seq"]: strip(l) for l in want}
have = {}
for l in got:
    q = json.loads(l)["seq"]
    assert strip(l) == wantset[q], f"seq {q} differs from the file"
    have[q] = True
missing = sorted(set(wantset) - set(have))
assert not missing, f"{len(missing)} line(s) reached no collector: {missing[:10]}"
print(f"stall + flush: all {len(want)} lines reached a collector ({len(got) - len(want)} repeated)")
PY
# The TCP stream (stream 0) verifies: repeats are duplicates, not damage.
v=$("$native" verify "$work/stall-all.txt" --key "$events/real-spool-stall.key" 2>&1) ||
  { echo "$v" >&2; fail "verify of the collectors' lines"; }
grep -q "stream 0: intact" <<<"$v" || { echo "$v" >&2; fail "stream 0 is not intact"; }

# ---- 2. restart -------------------------------------------------------------
# A port with nobody on it for run A.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
spool2="$work/spool-restart"
logA="$events/real-spool-a.jsonl" logB="$events/real-spool-b.jsonl"
specA="syslog+tcp://127.0.0.1:$port,spool=Z:$spool2,drain=0s"
run_jw "$logA" "$events/real-spool-a.key" "$specA" "$work/jw-a.err" --helper tree "Z:$work/pids-a" 100
rc=$?
[ $rc -eq 0 ] || { cat "$work/jw-a.err" >&2; fail "run A exited with $rc"; }
[ "$(ls "$spool2" | wc -l)" -eq 1 ] || fail "run A left no spool directory"
start_collector recv "$work/restart.txt" "$port"
specB="syslog+tcp://127.0.0.1:$port,spool=Z:$spool2"
run_jw "$logB" "$events/real-spool-b.key" "$specB" "$work/jw-b.err" --helper tree "Z:$work/pids-b" 100
rc=$?
[ $rc -eq 0 ] || { cat "$work/jw-b.err" >&2; fail "run B exited with $rc"; }
grep -q "an earlier run could not deliver are sent first" "$work/jw-b.err" ||
  { cat "$work/jw-b.err" >&2; fail "run B did not take run A's lines"; }
nB=$(wc -l < "$logB")
nA=$(wc -l < "$logA")
wait_for event "$work/restart.txt" event=sandbox.job_end "run_id=$(python3 -c "import json,sys;print(json.loads(open(sys.argv[1]).readline())['run_id'])" "$logB")" >/dev/null ||
  fail "run B's job_end never reached the collector"
stop_collector
[ -z "$(ls -A "$spool2")" ] || fail "the spool is not empty after run B: $(ls -R "$spool2")"
python3 - "$logA" "$logB" "$work/restart.txt" <<'PY' || fail "the collector's order"
import sys
a = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
b = open(sys.argv[2], "rb").read().split(b"\n")[:-1]
got = open(sys.argv[3], "rb").read().split(b"\n")[:-1]
assert got == a + b, f"collector has {len(got)} lines, expected run A's {len(a)} then run B's {len(b)}, byte for byte"
print(f"restart: run A's {len(a)} lines (spooled while the collector was down) arrived first, then run B's {len(b)}")
PY
# Each run's lines in the collector's file verify as that run's stream 0.
python3 - "$work/restart.txt" "$logA" "$work/restart-a.txt" "$logB" "$work/restart-b.txt" <<'PY'
import json, sys
got = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
for log, out in ((sys.argv[2], sys.argv[3]), (sys.argv[4], sys.argv[5])):
    run = json.loads(open(log, "rb").readline())["run_id"]
    open(out, "wb").write(b"".join(l + b"\n" for l in got if json.loads(l)["run_id"] == run))
PY
for k in a b; do
  v=$("$native" verify "$work/restart-$k.txt" --key "$events/real-spool-$k.key" 2>&1)
  grep -q "stream 0: intact, .*, closed by sandbox.job_end$" <<<"$v" ||
    { echo "$v" >&2; fail "run $k's stream in the collector is not intact"; }
done
echo "wine.real.spool: passed"
