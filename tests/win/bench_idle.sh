#!/usr/bin/env bash
# Idle benchmark (not a test): what jobwarden costs while the program in
# its job does nothing. `jobwarden.exe run` starts a helper that sleeps;
# once the root's process_start is in the event file, every thread of
# jobwarden's Wine process is read from /proc (voluntary context switches
# = wake-ups after blocking; schedstat = CPU time in ns), again WINDOW
# seconds later, and the differences are printed. The sleeping root's own
# Wine process is read over the same window as the baseline: what a Wine
# process that only sleeps costs. Both sides include Wine's own threads.
# Run per tier: `none` (no escape scan) and `hardened` (escape scan every
# 200 ms: its cost per scan is the difference divided by the scans).
#
# Usage: bench_idle.sh JOBWARDEN_EXE HELPER_EXE OUTDIR [WINDOW_S] [TIER...]
set -euo pipefail
jw=$1 helper=$2 out=$3 window=${4:-10}
shift 4 || shift $#
tiers=("$@")
[ ${#tiers[@]} -gt 0 ] || tiers=(none hardened)
mkdir -p "$out"
declare -A cpu

# Sums over every thread of a process: "<switches> <cpu_ns>".
sample() {
  local pid=$1 sw=0 ns=0 t v
  for t in /proc/"$pid"/task/*; do
    v=$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status" 2>/dev/null || echo 0)
    sw=$((sw + ${v:-0}))
    v=$(awk '{print $1}' "$t/schedstat" 2>/dev/null || echo 0)
    ns=$((ns + ${v:-0}))
  done
  echo "$sw $ns"
}

# The Unix pid of the Wine process whose command line starts with the
# Windows executable $1 (its first word) and contains $2.
unix_pid() {
  local exe=$1 marker=$2 p first
  for p in $(pgrep -f "$exe" || true); do
    first=$(tr '\0' '\n' </proc/"$p"/cmdline 2>/dev/null | head -1)
    case "$first" in *"$exe") ;; *) continue ;; esac
    if tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null | grep -q -- "$marker"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

for tier in "${tiers[@]}"; do
  events="$out/idle-$tier.jsonl"
  rm -f "$events"
  sleep_ms=$(((window + 6) * 1000))
  wine "$jw" run --tier "$tier" --name "bench-idle-$tier" --export "file:$events" -- \
    "$helper" --helper sleep "$sleep_ms" </dev/null >/dev/null 2>"$out/idle-$tier.err" &
  runner=$!
  # Synchronise on the record: the root runs once its process_start is written.
  for _ in $(seq 1 600); do
    grep -q '"event":"sandbox.process_start"' "$events" 2>/dev/null && break
    sleep 0.05
  done
  jpid=$(unix_pid "$(basename "$jw")" "bench-idle-$tier") || {
    echo "bench_idle: jobwarden's Wine process not found" >&2
    exit 1
  }
  cpid=$(unix_pid "$(basename "$helper")" "--helper sleep $sleep_ms") || {
    echo "bench_idle: the root's Wine process not found" >&2
    exit 1
  }
  sleep 1 # the root's identity and start-up settle
  read -r j_sw0 j_ns0 < <(sample "$jpid")
  read -r c_sw0 c_ns0 < <(sample "$cpid")
  sleep "$window"
  read -r j_sw1 j_ns1 < <(sample "$jpid")
  read -r c_sw1 c_ns1 < <(sample "$cpid")
  wait "$runner" || true
  cpu[$tier]=$((j_ns1 - j_ns0))
  awk -v t="$tier" -v w="$window" -v jsw=$((j_sw1 - j_sw0)) -v jns=$((j_ns1 - j_ns0)) \
    -v csw=$((c_sw1 - c_sw0)) -v cns=$((c_ns1 - c_ns0)) 'BEGIN {
      printf "tier %s, %d s idle: jobwarden %d wake-ups (%.1f/s), %.3f ms CPU; ", t, w, jsw, jsw / w, jns / 1e6
      printf "the sleeping root (baseline) %d wake-ups, %.3f ms CPU\n", csw, cns / 1e6
    }'
done
# The escape scan (hardened: every 200 ms while members run) against no
# scan (none), same window: its cost per scan.
if [ -n "${cpu[none]:-}" ] && [ -n "${cpu[hardened]:-}" ]; then
  awk -v a="${cpu[none]}" -v b="${cpu[hardened]}" -v w="$window" 'BEGIN {
    printf "escape scan: %d scans in %d s (every 200 ms), %.3f ms CPU more than tier none: %.1f us per scan\n", w * 5, w, (b - a) / 1e6, (b - a) / 1e3 / (w * 5)
  }'
fi
