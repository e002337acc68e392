#!/usr/bin/env bash
# wine.real.syslog: jobwarden.exe (under Wine) sends its events to a real
# rsyslogd over TCP (RFC 6587 octet counting) and UDP, next to a file sink;
# every line of the file must arrive in rsyslog's output, byte for byte and
# in order, on both transports.
#
# Usage: run_rsyslog_test.sh JOBWARDEN_EXE HELPER_EXE WINEPREFIX EVENTS_DIR WORK_DIR
#   HELPER_EXE is a Windows test executable with `--helper tree` (helpers.h).
# rsyslogd runs in the foreground (-n) as a child of this script, on
# 127.0.0.1 with random free ports, its own config, pid file and work
# directory under WORK_DIR; it is always killed on exit (trap). The system's
# rsyslog is never touched.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
jobwarden=$1 helper=$2 prefix=$3 events=$4 work=$5 native=${6:-}

fail() { echo "wine.real.syslog: $*" >&2; exit 1; }
command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ] || fail "rsyslogd not installed (Debian package rsyslog; scripts/setup.sh installs it)"
rsyslogd=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)

rm -rf "$work" && mkdir -p "$work/spool" || fail "cannot create $work"
log="$events/real-syslog.jsonl"
out_tcp="$work/rsyslog-tcp.txt"
out_udp="$work/rsyslog-udp.txt"
rm -f "$log"

rsyslog_pid=
# Stops rsyslogd and returns once it has exited (bash's wait on its own
# child: no guessed duration; the CTest timeout bounds a rsyslogd that
# ignores SIGTERM).
cleanup() {
  if [ -n "$rsyslog_pid" ]; then
    kill "$rsyslog_pid" 2>/dev/null
    wait "$rsyslog_pid" 2>/dev/null
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Two free ports on 127.0.0.1 (TCP and UDP).
read -r tcp_port udp_port < <(python3 - <<'PY'
import socket
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.bind(("127.0.0.1", 0))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
print(t.getsockname()[1], u.getsockname()[1])
PY
)
[ -n "$udp_port" ] || fail "no free ports"

# start_rsyslog OUT_TCP OUT_UDP: rsyslogd on the two ports, ready when its
# TCP input accepts a connection; sets rsyslog_pid.
start_rsyslog() {
  local o_tcp=$1 o_udp=$2
  sed -e "s#@WORK@#$work/spool#" -e "s#@TCP_PORT@#$tcp_port#" -e "s#@UDP_PORT@#$udp_port#" \
      -e "s#@OUT_TCP@#$o_tcp#" -e "s#@OUT_UDP@#$o_udp#" "$here/rsyslog.conf" > "$work/rsyslog.conf"
  "$rsyslogd" -N1 -f "$work/rsyslog.conf" >"$work/rsyslogd-check.log" 2>&1 ||
    { cat "$work/rsyslogd-check.log" >&2; fail "rsyslogd rejected the configuration"; }
  rm -f "$work/rsyslogd.pid"
  "$rsyslogd" -n -f "$work/rsyslog.conf" -i "$work/rsyslogd.pid" </dev/null >>"$work/rsyslogd.log" 2>&1 &
  rsyslog_pid=$!
  python3 "$here/wait_for.py" listen "$tcp_port" 10 ||
    { cat "$work/rsyslogd.log" >&2; fail "rsyslogd did not listen on 127.0.0.1:$tcp_port"; }
}

stop_rsyslog() {
  cleanup
  rsyslog_pid=
}

start_rsyslog "$out_tcp" "$out_udp"

# The run: a child that starts a grandchild gives a handful of events
# (job start, process start, child_process violation, exits, job end).
# Sealed (docs/forensics.md): each sink its own chain, verified below in
# the collector's files.
rm -f "$events/real-syslog.key"
timeout 60 "$root/scripts/wine-exec.sh" "$prefix" "$jobwarden" run \
  --seal-key "Z:$events/real-syslog.key" \
  --export "syslog+tcp://127.0.0.1:$tcp_port,spool=Z:$work/spool-1" \
  --export "syslog+udp://127.0.0.1:$udp_port" \
  --export "file:Z:$log" \
  -- "Z:$helper" --helper tree "Z:$work/pids" 100 </dev/null >"$work/jobwarden.log" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$work/jobwarden.log" >&2; fail "jobwarden run exited with $rc"; }

# rsyslog writes asynchronously: wait until both outputs have every line.
python3 - "$log" "$out_tcp" "$out_udp" <<'PY'
import json, re, sys, time
log, outs = sys.argv[1], sys.argv[2:]
# Each sink seals its own stream: the lines compare without their seal
# member (the last one; its chain is checked by jobwarden verify below).
SEAL = re.compile(rb',"seal":\{[^{}]*\}\}$')
unseal = lambda line: SEAL.sub(b"}", line)
want = open(log, "rb").read()
assert want.endswith(b"\n"), "event log has a torn last line"
lines = [unseal(l) for l in want.split(b"\n")[:-1]]
assert len(lines) >= 5, f"only {len(lines)} events in {log}"
assert all(SEAL.search(l) for l in want.split(b"\n")[:-1]), f"{log}: a line without its seal"
for out in outs:
    got = b""
    end = time.time() + 10
    while time.time() < end:
        try:
            got = open(out, "rb").read()
        except FileNotFoundError:
            got = b""
        if got.count(b"\n") >= len(lines):
            break
        time.sleep(0.1)
    got_lines = got.split(b"\n")[:-1] if got.endswith(b"\n") else got.split(b"\n")
    assert all(SEAL.search(l) for l in got_lines), f"{out}: a line without its seal"
    got_lines = [unseal(l) for l in got_lines]
    if got_lines != lines:
        print(f"{out}: {len(got_lines)} lines, expected {len(lines)} identical to {log}", file=sys.stderr)
        for i, (a, b) in enumerate(zip(lines, got_lines)):
            if a != b:
                print(f"first difference at line {i + 1}:\n  file:    {a!r}\n  rsyslog: {b!r}", file=sys.stderr)
                break
        sys.exit(1)
    for a, b in zip(lines, got_lines):
        assert json.loads(a) == json.loads(b)
    print(f"{out}: {len(lines)} events identical and in order")

# rsyslog parsed the RFC 5424 header of every TCP message into the fields
# jobwarden meant: PRI, HOSTNAME, APP-NAME, PROCID, MSGID, SD, TIMESTAMP.
import re
sev = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
# The header file is a second action of the same ruleset: wait for it too.
end = time.time() + 10
while True:
    try:
        hdr = open(outs[0] + ".header", encoding="utf-8").read().splitlines()
    except FileNotFoundError:
        hdr = []
    if len(hdr) >= len(lines) or time.time() >= end:
        break
    time.sleep(0.1)
assert len(hdr) == len(lines), f"{len(hdr)} parsed headers for {len(lines)} events"
pids = set()
for a, h in zip(lines, hdr):
    e = json.loads(a)
    pri, host, app, procid, msgid, sd, ts = h.split("|")
    want = (str(128 + sev[e["severity"]]), e["host"]["name"], "jobwarden", msgid, sd, ts)
    # No structured data by default (jobwarden has no enterprise number of
    # its own): rsyslog shows the NILVALUE.
    got = (pri, host, app, e["event"], "-", e["@timestamp"])
    assert want == got, f"parsed header {h!r} does not match event {a!r}"
    assert re.fullmatch(r"[0-9]+", procid), procid
    pids.add(procid)
assert len(pids) == 1, pids
print(f"{len(hdr)} RFC 5424 headers parsed by rsyslog as sent")
PY
[ $? -eq 0 ] || fail "the collector's messages differ from the run's file"

# The collector's files are sealed streams of their own (stream 0: TCP,
# 1: UDP), complete and intact with the run's key, as is the file (2);
# the TCP one also as rsyslog keeps it with each message's header.
if [ -n "$native" ]; then
  [ -x "$native" ] || fail "the native jobwarden ($native) is not built"
  for f in "$out_tcp:0" "$out_tcp.full:0" "$out_udp:1" "$log:2"; do
    path=${f%:*} stream=${f##*:}
    v=$("$native" verify "$path" --key "$events/real-syslog.key" 2>&1) ||
      { echo "$v" >&2; fail "verify $path: not intact"; }
    grep -q " stream $stream: intact, .*, closed by sandbox.job_end$" <<<"$v" ||
      { echo "$v" >&2; fail "verify $path: not stream $stream, intact and closed"; }
  done
  echo "the TCP and UDP collectors' files (TCP also with its RFC 5424 headers) and the file sink verify intact (streams 0, 1, 2)"
fi

# Phase 2: the collector is stopped and restarted in the middle of a run.
# Every event of the file sink must reach rsyslog over TCP after the
# restart: the TCP sink's spool holds what it could not deliver, and sends
# it in order once the collector is back; nothing is lost, no gap record.
# (UDP has no way to notice a dead collector; it is not checked.)
#
# Every step waits for what happened, never for a guessed time: the helper
# in the job runs its children in three phases and waits between them for
# a marker this script creates (helpers.h, series-sync):
#   1. children run while rsyslog is up; once rsyslog has written the exit
#      of the phase's last child, rsyslog is stopped (and has exited), then
#      go-1 lets the helper go on;
#   2. children run while rsyslog is down; once the file sink has the
#      phase's last exit and the sink_unreachable notice of the TCP sink (so
#      the sink has really failed to deliver during the outage), rsyslog is
#      started again (and accepts connections), then go-2;
#   3. children run against the restarted collector; the run ends.
stop_rsyslog
out_restart="$work/rsyslog-restart.txt"
log2="$events/real-syslog-restart.jsonl"
sync="$work/sync"
rm -rf "$log2" "$out_restart" "$sync" && mkdir -p "$sync" || fail "cannot create $sync"
wait_for() { python3 "$here/wait_for.py" "$@"; }
start_rsyslog "$out_restart" "$work/rsyslog-restart-udp.txt"
timeout 60 "$root/scripts/wine-exec.sh" "$prefix" "$jobwarden" run \
  --export "syslog+tcp://127.0.0.1:$tcp_port,spool=Z:$work/spool-restart,retry_max=200ms" \
  --export "file:Z:$log2" \
  -- "Z:$helper" --helper series-sync "Z:$sync" 8 3 </dev/null >"$work/jobwarden-restart.log" 2>&1 &
jw_pid=$!
restart_failed() { kill "$jw_pid" 2>/dev/null; cat "$work/jobwarden-restart.log" >&2; fail "restart phase: $*"; }
pid1=$(wait_for file "$sync/done-1" 60) || restart_failed "the helper did not finish phase 1"
wait_for event "$out_restart" event=sandbox.process_exit "process.pid=$pid1" >/dev/null ||
  restart_failed "rsyslog did not receive phase 1"
stop_rsyslog
: > "$sync/go-1"
pid2=$(wait_for file "$sync/done-2" 60) || restart_failed "the helper did not finish phase 2"
wait_for event "$log2" event=sandbox.process_exit "process.pid=$pid2" >/dev/null ||
  restart_failed "the file sink did not get phase 2"
wait_for event "$log2" event=sandbox.notice rule=sink_unreachable \
  "delivery.exporter=syslog+tcp://127.0.0.1:$tcp_port,spool=Z:$work/spool-restart,retry_max=200ms" >/dev/null ||
  restart_failed "the TCP sink never failed to deliver while rsyslog was down"
start_rsyslog "$out_restart" "$work/rsyslog-restart-udp.txt"
: > "$sync/go-2"
wait "$jw_pid"
rc=$?
[ $rc -eq 0 ] || { cat "$work/jobwarden-restart.log" >&2; fail "jobwarden run (restart phase) exited with $rc"; }
python3 - "$log2" "$out_restart" "$native" <<'PY'
import json, subprocess, sys, time
log, out, native = sys.argv[1], sys.argv[2], sys.argv[3]
events = [json.loads(l) for l in open(log, encoding="utf-8")]
seqs = [e["seq"] for e in events]
assert seqs == list(range(1, len(seqs) + 1)), "file sink has a gap"
rules = [e["rule"] for e in events]
assert rules.count("sink_unreachable") == 1 and rules.count("sink_recovered") == 1, rules
assert "sink_failed" not in rules, "a line was lost"
assert events[-1]["event"] == "sandbox.job_end", "job_end is not the last line"
tcp = [s for s in events[-1]["summary"]["sinks"] if s["exporter"].startswith("syslog+tcp")]
assert len(tcp) == 1 and tcp[0]["lost"] == 0 and tcp[0]["written"] == len(seqs) - 1, tcp
got, dup = [], 0
end = time.time() + 15
while time.time() < end:
    got, gaps = [], 0
    # As a reader sees them: job_end's continuation records put together.
    lines = subprocess.run([native, "tail", "--file", out, "--raw"],
                           capture_output=True).stdout.split(b"\n")[:-1]
    for line in lines:
        e = json.loads(line)
        gaps += e["event"] == "sandbox.telemetry_gap"
        got.append(e["seq"])
    if set(seqs) <= set(got):
        break
    time.sleep(0.2)
missing = sorted(set(seqs) - set(got))
assert not missing, f"seq {missing} never reached the collector"
assert gaps == 0, f"{gaps} gap record(s): something was lost"
# In order: after dropping repeats (at-least-once around the break), the
# collector's sequence is the file's.
seen, order = set(), []
for q in got:
    if q not in seen:
        seen.add(q)
        order.append(q)
assert order == seqs, "the collector got the run's lines out of order"
print(f"restart: all {len(seqs)} events delivered in order ({len(got) - len(seqs)} repeated "
      f"around the break), none lost, no gap record")
PY
[ $? -eq 0 ] || fail "the restart phase lost or reordered events"

# Phase 3: a run of 1000 processes over UDP. Its job_end lists every
# process (about 300 KB): over max_message (8K by default) it goes as
# continuation records, one datagram each, never cut. The collector's file,
# read by the native jobwarden (which puts the records back together), is
# the run's record line for line, and its sealed stream verifies.
if [ -n "$native" ]; then
  stop_rsyslog
  out_big="$work/rsyslog-big-udp.txt"
  log3="$events/real-syslog-big.jsonl"
  rm -f "$out_big" "$log3" "$events/real-syslog-big.key"
  start_rsyslog "$work/rsyslog-big-tcp.txt" "$out_big"
  timeout 240 "$root/scripts/wine-exec.sh" "$prefix" "$jobwarden" run \
    --seal-key "Z:$events/real-syslog-big.key" \
    --export "syslog+udp://127.0.0.1:$udp_port" --export "file:Z:$log3" \
    -- "Z:$helper" --helper flood 1000 </dev/null >"$work/jobwarden-big.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] || { cat "$work/jobwarden-big.log" >&2; fail "the 1000-process run exited with $rc"; }
  python3 - "$log3" "$out_big" "$native" <<'PY' || fail "the big run over UDP"
import hashlib, json, re, subprocess, sys, time
log, out, native = sys.argv[1:]
SEAL = re.compile(rb',"seal":\{[^{}]*\}\}$')
want = open(log, "rb").read().split(b"\n")[:-1]
end_seq = json.loads(want[-1])["seq"]
assert json.loads(want[-1])["event"] == "sandbox.job_end"
assert len(want[-1]) > 200000, f"job_end is only {len(want[-1])} bytes"
# rsyslog writes asynchronously: until the last continuation record is in.
deadline = time.time() + 60
while True:
    raw = open(out, "rb").read() if __import__("os").path.exists(out) else b""
    parts = [l for l in raw.split(b"\n")[:-1] if l.startswith(b'{"jobwarden_part":')]
    done = [p for p in parts if json.loads(p)["jobwarden_part"]["seq"] == end_seq]
    if done and len(done) == json.loads(done[0])["jobwarden_part"]["of"] or time.time() > deadline:
        break
    time.sleep(0.2)
assert done, "no continuation record of job_end arrived"
of = json.loads(done[0])["jobwarden_part"]["of"]
assert len(done) == of and of >= 30, f"{len(done)} of {of} records"
assert all(len(p) <= 8192 for p in parts), "a continuation record over max_message"
# Version 2 (docs/events.md): every part names the line's digest and the
# limit it was cut at (max_message less this sink's header), is within
# it, and the parts in order are the line of that digest.
recs = sorted((json.loads(p)["jobwarden_part"] for p in done), key=lambda r: r["n"])
assert {(r["v"], r["digest"], r["limit"]) for r in recs} == {(2, recs[0]["digest"], recs[0]["limit"])}, \
    "the parts of job_end disagree on version, digest or limit"
assert recs[0]["limit"] < 8192 and all(len(p) <= recs[0]["limit"] for p in done), \
    "a continuation record over the limit it names"
line = "".join(r["data"] for r in recs).encode("utf-8")
assert len(line) == recs[0]["bytes"], "the parts of job_end do not hold its bytes"
assert hashlib.blake2b(line, digest_size=16).hexdigest() == recs[0]["digest"], \
    "the parts of job_end are not the line of their digest"
got = subprocess.run([native, "tail", "--file", out, "--raw"], capture_output=True).stdout
got = got.split(b"\n")[:-1]
strip = lambda l: SEAL.sub(b"}", l)
assert [strip(l) for l in got] == [strip(l) for l in want], \
    f"{len(got)} events read back from the collector, {len(want)} in the file"
print(f"big run over UDP: {len(want)} events, job_end of {len(want[-1])} bytes in {of} "
      f"continuation records, read back whole")
PY
  v=$("$native" verify "$out_big" --key "$events/real-syslog-big.key" 2>&1) ||
    { echo "$v" >&2; fail "verify of the big run's UDP stream"; }
  grep -q " stream 0: intact, .*, closed by sandbox.job_end$" <<<"$v" ||
    { echo "$v" >&2; fail "the big run's UDP stream is not intact"; }
fi
