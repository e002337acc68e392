#!/usr/bin/env bash
# wine.real.tls: the SChannel TLS transport (exporters/syslog/tls_win.c),
# driven by tests/win/test_tls.c under Wine, against a real rsyslogd with
# its gnutls driver on 127.0.0.1.
#
# Usage: run_tls_test.sh WINEPREFIX TEST_EXE WORK_DIR [JOBWARDEN_EXE HELPER_EXE EVENTS_DIR NATIVE_JOBWARDEN]
#
# With the last four, a second part runs the sink itself, jobwarden.exe
# with --export syslog+tls://..., against a fresh rsyslogd on the same
# ports: a sealed run arrives whole and verifies; a wrong CA without a
# spool refuses the run (125); a certificate for another name with a spool
# is a sink_unreachable notice naming both names, the lines stay spooled;
# insecure delivers and tags every event of the run.
#
# Everything lives in WORK_DIR, made anew: the certificates (openssl, made
# here, never committed), rsyslogd's config, pid file, work directory and
# output. rsyslogd runs in the foreground (-n) as a child of this script,
# on three random free ports, and is always stopped on exit (trap). The
# system's rsyslog is never touched. Five ports: see rsyslog-tls.conf; a
# sixth is closer.py's, a server that ends with close_notify.
#
# The Windows test asks for what only this side can do by creating
# WORK_DIR/request-NAME; this script does it and answers with
# WORK_DIR/done-NAME:
#   stop  SIGSTOP rsyslogd (a collector that accepts and never reads)
#   cont  SIGCONT it
#   kill  SIGTERM it and wait until it has exited
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
prefix=$1 test_exe=$2 work=$3
jobwarden=${4:-} helper=${5:-} events=${6:-} native=${7:-}

fail() { echo "wine.real.tls: $*" >&2; exit 1; }
rsyslogd=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
[ -x "$rsyslogd" ] || fail "rsyslogd not installed (Debian package rsyslog; scripts/setup.sh installs it)"
ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 ||
  fail "rsyslog's TLS driver is not installed (Debian package rsyslog-gnutls; scripts/setup.sh installs it)"
command -v openssl >/dev/null 2>&1 || fail "openssl not installed (scripts/setup.sh installs it)"

rm -rf "$work" && mkdir -p "$work/spool" "$work/ca" || fail "cannot create $work"
cd "$work" || fail "cannot enter $work"

# --- certificates -----------------------------------------------------------
# One server key; the CA, an unrelated CA, and three server certificates
# issued by the CA: for localhost + 127.0.0.1, for collector.example only,
# and one for localhost that expired in 2020 (openssl ca sets the dates).
ssl() { openssl "$@" >>openssl.log 2>&1 || { cat openssl.log >&2; fail "openssl $1 failed"; }; }
ssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=jobwarden test CA" \
  -keyout ca.key -out ca.pem
ssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=jobwarden other CA" \
  -keyout other-ca.key -out other-ca.pem
ssl x509 -in ca.pem -outform DER -out ca.der
ssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" -keyout server.key -out server.csr
cat > ca.cnf <<'EOF'
[ca]
default_ca = test_ca
[test_ca]
database = ca/index.txt
new_certs_dir = ca
serial = ca/serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
[good]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[other]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:collector.example
EOF
: > ca/index.txt && echo 1000 > ca/serial
issue() { # OUT EXTENSIONS CN [openssl ca date options...]
  local out=$1 ext=$2 cn=$3; shift 3
  ssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in server.csr -out "$out" \
    -extensions "$ext" -subj "/CN=$cn" -notext "$@"
}
issue server.pem good localhost -days 30
issue other.pem other collector.example -days 30
issue expired.pem good localhost -startdate 20200101000000Z -enddate 20200102000000Z
# Files that are not CA files.
printf 'this is not a certificate\n' > not-a-cert.pem
printf -- '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' > garbage.pem
cp server.key key-only.pem
cat other-ca.pem ca.pem > two-cas.pem
cat ca.pem garbage.pem > second-bad.pem
head -n 3 ca.pem > truncated.pem

# --- rsyslogd ---------------------------------------------------------------
read -r good_port expired_port other_port tls13_port tls11_port closer_port < <(python3 - <<'PY'
import socket
ss = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(6)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
PY
)
[ -n "$closer_port" ] || fail "no free ports"
out="$work/rsyslog-out.txt"
sed -e "s#@WORK@#$work/spool#" -e "s#@OUT@#$out#" -e "s#@CA@#$work/ca.pem#" \
    -e "s#@KEY@#$work/server.key#" -e "s#@GOOD_CERT@#$work/server.pem#" \
    -e "s#@EXPIRED_CERT@#$work/expired.pem#" -e "s#@OTHER_CERT@#$work/other.pem#" \
    -e "s#@GOOD_PORT@#$good_port#" -e "s#@EXPIRED_PORT@#$expired_port#" \
    -e "s#@OTHER_PORT@#$other_port#" -e "s#@TLS13_PORT@#$tls13_port#" \
    -e "s#@TLS11_PORT@#$tls11_port#" "$here/rsyslog-tls.conf" > rsyslog.conf
"$rsyslogd" -N1 -f rsyslog.conf >rsyslogd-check.log 2>&1 ||
  { cat rsyslogd-check.log >&2; fail "rsyslogd rejected the configuration"; }

rsyslog_pid= test_pid= closer_pid=
cleanup() {
  [ -n "$test_pid" ] && kill "$test_pid" 2>/dev/null
  if [ -n "$closer_pid" ]; then
    kill "$closer_pid" 2>/dev/null
    wait "$closer_pid" 2>/dev/null
  fi
  if [ -n "$rsyslog_pid" ]; then
    kill -CONT "$rsyslog_pid" 2>/dev/null
    kill "$rsyslog_pid" 2>/dev/null
    wait "$rsyslog_pid" 2>/dev/null
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$rsyslogd" -n -f rsyslog.conf -i "$work/rsyslogd.pid" </dev/null >>rsyslogd.log 2>&1 &
rsyslog_pid=$!
for p in $good_port $expired_port $other_port $tls13_port $tls11_port; do
  python3 "$root/tests/syslog/wait_for.py" listen "$p" 10 ||
    { cat rsyslogd.log >&2; fail "rsyslogd did not listen on 127.0.0.1:$p"; }
done
# A server that ends with close_notify and keeps the TCP connection open.
python3 "$here/closer.py" "$closer_port" server.pem server.key </dev/null >closer.log 2>&1 &
closer_pid=$!
python3 "$root/tests/syslog/wait_for.py" listen "$closer_port" 10 ||
  { cat closer.log >&2; fail "closer.py did not listen on 127.0.0.1:$closer_port"; }

# --- the Windows test ---------------------------------------------------------
timeout 240 "$root/scripts/wine-exec.sh" "$prefix" "$test_exe" "$work" "$good_port" \
  "$expired_port" "$other_port" "$tls13_port" "$tls11_port" "$closer_port" </dev/null >test.log 2>&1 &
test_pid=$!
# Serves the test's requests until it exits. The pause is only how often
# the files are looked at; every step waits for what happened (the test
# bounds its own waits, `timeout` bounds the test).
while kill -0 "$test_pid" 2>/dev/null; do
  for req in stop cont kill; do
    [ -f "request-$req" ] && [ ! -f "done-$req" ] || continue
    case $req in
      stop) kill -STOP "$rsyslog_pid" ;;
      cont) kill -CONT "$rsyslog_pid" ;;
      kill) kill "$rsyslog_pid"; wait "$rsyslog_pid"; rsyslog_pid= ;;
    esac
    : > "done-$req"
  done
  sleep 0.05
done
wait "$test_pid"
rc=$?
test_pid=
cat test.log
if [ $rc -ne 0 ]; then
  echo "--- rsyslogd.log" >&2
  tail -n 40 rsyslogd.log >&2
  fail "the Windows test failed (exit $rc)"
fi
echo "wine.real.tls: the transport passed"
[ -n "$jobwarden" ] || exit 0

# --- the syslog+tls sink: jobwarden.exe end to end ----------------------------
if [ -n "$rsyslog_pid" ]; then
  kill -CONT "$rsyslog_pid" 2>/dev/null
  kill "$rsyslog_pid" 2>/dev/null
  wait "$rsyslog_pid" 2>/dev/null
  rsyslog_pid=
fi
out2="$work/rsyslog-sink.txt"
sed -e "s#@OUT@#$out2#" -e "s#$out#$out2#" rsyslog.conf > rsyslog-sink.conf
"$rsyslogd" -n -f rsyslog-sink.conf -i "$work/rsyslogd-sink.pid" </dev/null >>rsyslogd.log 2>&1 &
rsyslog_pid=$!
for p in $good_port $other_port; do
  python3 "$root/tests/syslog/wait_for.py" listen "$p" 10 ||
    { cat rsyslogd.log >&2; fail "rsyslogd did not listen again on 127.0.0.1:$p"; }
done
jw() { # NAME args...: runs jobwarden.exe; exit status in $rc, stderr in NAME.err
  local name=$1
  shift
  timeout 120 "$root/scripts/wine-exec.sh" "$prefix" "$jobwarden" "$@" </dev/null \
    >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
}
# (a) a sealed run through TLS, the CA given: every line arrives.
log_a="$events/real-tls-sink.jsonl"
rm -f "$log_a" "$events/real-tls-sink.key"
spec_a="syslog+tls://localhost:$good_port,ca=Z:$work/ca.pem,spool=Z:$work/spool-a"
jw sink-a run --seal-key "Z:$events/real-tls-sink.key" --export "$spec_a" --export "file:Z:$log_a" \
  -- "Z:$helper" --helper tree "Z:$work/pids-a" 100
[ $rc -eq 0 ] || { cat "$work/sink-a.err" >&2; fail "(a) jobwarden exited with $rc"; }
run_a=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["run_id"])' "$log_a")
python3 - "$log_a" "$out2" "$run_a" "$work/sink-a.tls.txt" <<'PY' || fail "(a) the collector does not hold the run"
import json, re, sys, time
log, out, run, keep = sys.argv[1:]
SEAL = re.compile(rb',"seal":\{[^{}]*\}\}$')
want = [SEAL.sub(b"}", l) for l in open(log, "rb").read().split(b"\n")[:-1]]
end = time.time() + 15
while True:
    got = []
    for raw in open(out, "rb").read().split(b"\n")[:-1]:
        i = raw.find(b'{"')
        if i >= 0 and json.loads(raw[i:]).get("run_id") == run:
            got.append(raw[i:])
    if len(got) >= len(want) or time.time() > end:
        break
    time.sleep(0.1)
open(keep, "wb").write(b"".join(l + b"\n" for l in got))
assert [SEAL.sub(b"}", l) for l in got] == want, f"{len(got)} lines over TLS, {len(want)} in the file"
print(f"(a) syslog+tls: all {len(want)} lines arrived through TLS, in order")
PY
if [ -n "$native" ]; then
  v=$("$native" verify "$work/sink-a.tls.txt" --key "$events/real-tls-sink.key" 2>&1)
  grep -q " stream 0: intact, .*, closed by sandbox.job_end$" <<<"$v" ||
    { echo "$v" >&2; fail "(a) the TLS stream does not verify"; }
fi
# (b) a CA that did not issue the collector's certificate, no spool: the
# run is refused before it starts, naming why.
jw sink-b run --export "syslog+tls://localhost:$good_port,ca=Z:$work/other-ca.pem,spool=none" \
  -- "Z:$helper" --helper exit 0
[ $rc -eq 125 ] || { cat "$work/sink-b.err" >&2; fail "(b) exit $rc, expected 125"; }
grep -q "is not issued by the CA in" "$work/sink-b.err" ||
  { cat "$work/sink-b.err" >&2; fail "(b) the refusal does not name the CA"; }
# (c) a certificate for another name, with a spool: the run goes on, the
# outage names both names, the lines wait in the spool.
log_c="$events/real-tls-wrongname.jsonl"
rm -f "$log_c"
spec_c="syslog+tls://127.0.0.1:$other_port,ca=Z:$work/ca.pem,spool=Z:$work/spool-c,drain=0s"
jw sink-c run --export "$spec_c" --export "file:Z:$log_c" -- "Z:$helper" --helper exit 0
[ $rc -eq 0 ] || { cat "$work/sink-c.err" >&2; fail "(c) exit $rc"; }
python3 - "$log_c" "$spec_c" <<'PY' || { cat "$work/sink-c.err" >&2; fail "(c)"; }
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
u = [e for e in ev if e["rule"] == "sink_unreachable"]
assert len(u) == 1, [e["rule"] for e in ev]
assert "the server's certificate is for collector.example, not 127.0.0.1" in u[0]["message"], u[0]["message"]
t = [s for s in ev[-1]["summary"]["sinks"] if s["exporter"] == sys.argv[2]][0]
assert t["lost"] == 0 and t["spool"]["delivered"] == 0 and t["spool"]["pending"] == len(ev) - 1, t
print("(c) wrong name: sink_unreachable names both names; nothing sent, nothing lost")
PY
grep -q "they stay in the spool" "$work/sink-c.err" || { cat "$work/sink-c.err" >&2; fail "(c) stderr"; }
# (d) insecure: delivered, and every event of the run says so.
log_d="$events/real-tls-insecure.jsonl"
rm -f "$log_d"
jw sink-d run --export "syslog+tls://127.0.0.1:$other_port,insecure,spool=Z:$work/spool-d" \
  --export "file:Z:$log_d" -- "Z:$helper" --helper exit 0
[ $rc -eq 0 ] || { cat "$work/sink-d.err" >&2; fail "(d) exit $rc"; }
grep -q "does not check its collector's certificate (insecure: for tests only)" "$work/sink-d.err" ||
  { cat "$work/sink-d.err" >&2; fail "(d) no warning"; }
python3 - "$log_d" <<'PY' || fail "(d)"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert ev and all("jobwarden.insecure_transport" in e["tags"] for e in ev), "an event without the tag"
t = [s for s in ev[-1]["summary"]["sinks"] if s["exporter"].startswith("syslog+tls")][0]
assert t["lost"] == 0 and t["spool"]["pending"] <= 1, t
print(f"(d) insecure: all {len(ev)} events tagged jobwarden.insecure_transport")
PY
echo "wine.real.tls: passed"
