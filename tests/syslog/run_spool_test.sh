#!/usr/bin/env bash
# wine.real.spool: jobwarden.exe (under Wine) with a syslog+tcp sink whose
# collector (tests/syslog/collector.py) misbehaves; nothing may be lost.
#
# Usage: run_spool_test.sh JOBWARDEN_EXE HELPER_EXE WINEPREFIX EVENTS_DIR WORK_DIR NATIVE_JOBWARDEN
#
#  1. stall: the collector accepts but never reads. The run ends anyway
#     (drain=1s): job_end is the last line of the file sink and says the
#     TCP sink lost nothing (and, when the kernel's buffers filled, that
#     the collector is down with lines pending, which stderr says where).
#     Then the stalled collector is stopped (it hands over what its
#     connections held), and the native `jobwarden flush` delivers what is
#     left to a working one on the same port: together they hold every
#     line of the run, byte for byte, and the sealed stream verifies (the
#     repeats are duplicates).
#  2. restart: runs A and B while the collector is down leave their lines
#     in the spool; run C with the collector up sends A's, then B's, then
#     its own; run D's leftovers go out with jobwarden.exe's own flush. The
#     collector's file is A+B+C+D byte for byte; each stream verifies.
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
python3 - "$log1" "$spec1" "$work/pending" <<'PY' || fail "run 1's record"
import json, sys
log, spec = sys.argv[1], sys.argv[2]
ev = [json.loads(l) for l in open(log, encoding="utf-8")]
assert ev[-1]["event"] == "sandbox.job_end", "job_end is not the last line"
rules = [e["rule"] for e in ev]
assert "sink_failed" not in rules, "a line was lost"
sinks = {s["exporter"]: s for s in ev[-1]["summary"]["sinks"]}
t = sinks[spec]
assert t["lost"] == 0 and t["written"] == len(ev) - 1, t
# A collector that never reads stalls the sender only once the kernel's
# buffers are full (a few MB; under Wine more, measured): lines may or may
# not be pending at the end; when they are, the sink says it is down.
assert t["spool"]["pending"] == 0 or (t["spool"]["collector_down"] is True
                                     and rules.count("sink_unreachable") >= 1), t
open(sys.argv[3], "w").write(str(t["spool"]["pending"]))
print(f"stall: {len(ev)} lines, {t['spool']['pending']} pending in the spool at job_end, none lost")
PY
if [ "$(cat "$work/pending")" != 0 ]; then
  grep -q "they stay in the spool" "$work/jw-stall.err" ||
    { cat "$work/jw-stall.err" >&2; fail "stderr does not say where the undelivered lines wait"; }
fi
stop_collector
# The spool's sink file names the stalled collector's port: flush delivers
# to the SPEC it finds there, so the working collector takes that port.
old_port=$port
: > "$work/flushed.txt"
if [ -n "$(ls -A "$spool1")" ]; then
  start_collector recv "$work/flushed.txt" "$old_port"
  "$native" flush "$spool1" --timeout 30s >"$work/flush.out" 2>&1
  rc=$?
  [ $rc -eq 0 ] || { cat "$work/flush.out" >&2; fail "flush exited with $rc"; }
  grep -q ", 0 still waiting$" "$work/flush.out" || { cat "$work/flush.out" >&2; fail "flush left lines"; }
  stop_collector
fi
[ -z "$(ls -A "$spool1")" ] || fail "flush left $spool1 non-empty: $(ls -R "$spool1")"
cat "$work/stalled.txt" "$work/flushed.txt" > "$work/stall-all.txt"
# The lines as a reader sees them: continuation records put together.
"$native" tail --file "$work/stall-all.txt" --raw > "$work/stall-whole.txt" ||
  fail "the collectors' lines do not end with job_end"
python3 - "$log1" "$work/stall-whole.txt" <<'PY' || fail "the collectors do not hold run 1"
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
# Runs A and B while the collector is down (drain=0s): each leaves its run
# directory. Run C, the collector up, sends A's lines, then B's, then its
# own. Run D, the collector down again, leaves its lines; jobwarden.exe
# flush delivers them.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
spool2="$work/spool-restart"
for k in a b; do
  run_jw "$events/real-spool-$k.jsonl" "$events/real-spool-$k.key" \
    "syslog+tcp://127.0.0.1:$port,spool=Z:$spool2,drain=0s" "$work/jw-$k.err" \
    --helper tree "Z:$work/pids-$k" 100
  rc=$?
  [ $rc -eq 0 ] || { cat "$work/jw-$k.err" >&2; fail "run $k exited with $rc"; }
  grep -q "they stay in the spool" "$work/jw-$k.err" || { cat "$work/jw-$k.err" >&2; fail "run $k: stderr"; }
done
[ "$(ls "$spool2" | wc -l)" -eq 2 ] || fail "runs A and B did not leave two spool directories"
start_collector recv "$work/restart.txt" "$port"
run_jw "$events/real-spool-c.jsonl" "$events/real-spool-c.key" "syslog+tcp://127.0.0.1:$port,spool=Z:$spool2" \
  "$work/jw-c.err" --helper tree "Z:$work/pids-c" 100
rc=$?
[ $rc -eq 0 ] || { cat "$work/jw-c.err" >&2; fail "run C exited with $rc"; }
grep -q "line(s) an earlier run could not deliver are sent first" "$work/jw-c.err" ||
  { cat "$work/jw-c.err" >&2; fail "run C did not take the earlier runs' lines"; }
stop_collector  # after run C: its drain delivered everything (or said what is left)
[ -z "$(ls -A "$spool2")" ] || fail "the spool is not empty after run C: $(ls -R "$spool2")"
# Run D with the collector down, then the Windows build's flush.
run_jw "$events/real-spool-d.jsonl" "$events/real-spool-d.key" \
  "syslog+tcp://127.0.0.1:$port,spool=Z:$spool2,drain=0s" "$work/jw-d.err" --helper tree "Z:$work/pids-d" 100
rc=$?
[ $rc -eq 0 ] || { cat "$work/jw-d.err" >&2; fail "run D exited with $rc"; }
start_collector recv "$work/restart.txt" "$port"
timeout 120 "$root/scripts/wine-exec.sh" "$prefix" "$jobwarden" flush "Z:$spool2" --timeout 30s \
  </dev/null >"$work/flush-d.out" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$work/flush-d.out" >&2; fail "jobwarden.exe flush exited with $rc"; }
grep -q "^flush: [1-9][0-9]* line(s) delivered, 0 still waiting" "$work/flush-d.out" ||
  { cat "$work/flush-d.out" >&2; fail "jobwarden.exe flush: $(cat "$work/flush-d.out")"; }
stop_collector
[ -z "$(ls -A "$spool2")" ] || fail "the spool is not empty after the flush: $(ls -R "$spool2")"
python3 - "$work/restart.txt" "$events"/real-spool-{a,b,c,d}.jsonl <<'PY' || fail "the collector's order"
import re, sys
# Each sink seals its own stream: compared without the seal member.
SEAL = re.compile(rb',"seal":\{[^{}]*\}\}$')
strip = lambda l: SEAL.sub(b"}", l)
got = [strip(l) for l in open(sys.argv[1], "rb").read().split(b"\n")[:-1]]
runs = [open(p, "rb").read().split(b"\n")[:-1] for p in sys.argv[2:]]
want = [strip(l) for r in runs for l in r]
assert got == want, (f"collector has {len(got)} lines, expected runs A, B, C, D "
                     f"({', '.join(str(len(r)) for r in runs)}) in that order, byte for byte")
print(f"restart: runs A and B (spooled while the collector was down) arrived first, then C; "
      f"D by flush; {len(got)} lines, byte for byte")
PY
# Each run's lines in the collector's file verify as that run's stream 0.
python3 - "$work/restart.txt" "$work" "$events" <<'PY'
import json, sys
got = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
for k in "abcd":
    run = json.loads(open(f"{sys.argv[3]}/real-spool-{k}.jsonl", "rb").readline())["run_id"]
    open(f"{sys.argv[2]}/restart-{k}.txt", "wb").write(
        b"".join(l + b"\n" for l in got if json.loads(l)["run_id"] == run))
PY
for k in a b c d; do
  v=$("$native" verify "$work/restart-$k.txt" --key "$events/real-spool-$k.key" 2>&1)
  grep -q "stream 0: intact, .*, closed by sandbox.job_end$" <<<"$v" ||
    { echo "$v" >&2; fail "run $k's stream in the collector is not intact"; }
done
# ---- 3. the program attacks the spool --------------------------------------
# The collector is down; the program in the job finds its run's spool
# segment and tries every way to rewrite it (write, truncate, create,
# delete, move, delete disposition): each refused by the share mode (32);
# a plain read works. The lines then reach the collector (flush) and the
# stream verifies intact.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
spool3="$work/spool-attack"
mkdir -p "$spool3"
rm -f "$work/attack.txt" "$work/attack.snap"
run_jw "$events/real-spool-attack.jsonl" "$events/real-spool-attack.key" \
  "syslog+tcp://127.0.0.1:$port,spool=Z:$spool3,drain=0s" "$work/jw-attack.err" \
  --helper attack-spool "Z:$spool3" "Z:$work/attack.txt" "Z:$work/attack.snap"
rc=$?
[ $rc -eq 0 ] || { cat "$work/jw-attack.err" >&2; fail "the attacking run exited with $rc"; }
[ "$(cat "$work/attack.txt")" = "write=32 trunc=32 create=32 delete=32 move=32 disposition=32 read=0" ] ||
  fail "the program got at its spool: $(cat "$work/attack.txt")"
start_collector recv "$work/attack-out.txt" "$port"
"$native" flush "$spool3" --timeout 30s >"$work/flush-attack.out" 2>&1 ||
  { cat "$work/flush-attack.out" >&2; fail "flush after the attack"; }
stop_collector
v=$("$native" verify "$work/attack-out.txt" --key "$events/real-spool-attack.key" 2>&1)
grep -q "stream 0: intact, .*, closed by sandbox.job_end$" <<<"$v" ||
  { echo "$v" >&2; fail "the attacked spool's stream is not intact"; }
echo "attack: every rewrite of the spool refused (32); the stream verifies intact"
echo "wine.real.spool: passed"
