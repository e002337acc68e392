#!/usr/bin/env bash
# Runs jobwarden's benchmarks under Wine (builds first). Figures and how to
# read them: docs/performance.md. Usage: bash scripts/bench.sh [RUNS]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$here/scripts/setup.sh" --no-demo >/dev/null
export WINEPREFIX="$here/build/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
trap 'wineserver -k </dev/null >/dev/null 2>&1 || true' EXIT
wineserver -p </dev/null >/dev/null 2>&1 || true
wine wineboot </dev/null >/dev/null 2>&1 || true
echo "== spawn overhead (median of ${1:-50}, interleaved)"
wine "$here/build/win/tests/win/bench_spawn.exe" "${1:-50}"
echo "== event throughput (100000 events; pipeline vs the same bytes written raw, per line and batched; file and pipe sinks)"
mkdir -p "$here/build/bench"
"$here/build/native/tests/bench_emit" "$here/build/bench" 100000
wine "$here/build/win/tests/bench_emit.exe" "$here/build/bench" 100000
echo "== spool: syslog+tcp through the spool vs spool=none; the sender alone vs raw send() (native 50000, Wine 10000)"
"$here/build/native/tests/bench_spool" "$here/build/bench" 50000
wine "$here/build/win/tests/bench_spool.exe" "$here/build/bench" 10000
echo "== latency: completion packet -> line read from the event file and a pipe reader (10000 one at a time beside a minimal relay, 10000 more with nobody spinning, then a burst of 5000; Wine)"
wine "$here/build/win/tests/win/bench_latency.exe" "$here/build/bench" 10000 5000
echo "== latency of lone messages: the same, each packet 10 ms after the one before (1000 one at a time, a burst of 500)"
wine "$here/build/win/tests/win/bench_latency.exe" "$here/build/bench" 1000 500 --gap-us=10000
echo "== idle: 10 s of a sleeping program, tiers none and hardened (wake-ups and CPU from /proc)"
bash "$here/tests/win/bench_idle.sh" "$here/build/win/jobwarden.exe" \
  "$here/build/win/tests/win/win_monitor.exe" "$here/build/bench" 10 none hardened
echo "== scaling: 1 000 / 10 000 / 100 000 processes through the monitor (at most 1 000 live)"
wine "$here/build/win/tests/win/bench_scale.exe" "$here/build/bench" 1000 10000 100000
echo "== setup: the monitor thread's time per admission of a real process, with the setup worker vs without (50 children at once, 6 rounds, alternating)"
wine "$here/build/win/tests/win/bench_setup.exe" "$here/build/bench" 50 6
echo "== report: one run of 5000 processes, native (text, json, html; the html in chromium)"
bash "$here/tests/report/large.sh" "$here/build/native/jobwarden" "$here/build/bench/report" 5000
