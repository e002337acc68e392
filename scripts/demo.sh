#!/usr/bin/env bash
# Runs jobwarden's demo: the bundled misbehaving agent (starts a child,
# tries to break away from the job, crashes) under `jobwarden run --tier
# lockdown` with its record sealed, then shows the events it produced and
# verifies the record with the native jobwarden (docs/forensics.md).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$here/build"
export WINEPREFIX="$build/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
out="$build/demo"
mkdir -p "$out"
rm -f "$out/events.jsonl" "$out/run.key"

# Persistent server, every stdio stream detached (see scripts/wine-exec.sh).
wineserver -p </dev/null >/dev/null 2>&1 || true

echo "== demo: jobwarden run --tier lockdown --seal-key run.key -- jw-demo-agent.exe"
cd "$out"
wine "$build/win/jobwarden.exe" run --tier lockdown --seal-key run.key --export "file:events.jsonl" \
  -- "$build/win/jw-demo-agent.exe" 2> >(grep -v '^wine: Unhandled page fault' >&2)
status=$?
wineserver -k </dev/null >/dev/null 2>&1 || true
echo "== jobwarden exited with $status (the low byte of the agent's exit code 0xC0000005)"
echo "== events ($out/events.jsonl):"
/usr/bin/python3 - "$out/events.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    p = e.get("process") or {}
    print("%3d %-24s %-9s %-26s %-12s %-8s %s" % (
        e["seq"], e["event"], e["severity"], e["rule"], e["action"],
        p.get("pid", ""), e["message"]))
PY
echo "== raw JSON Lines: $out/events.jsonl"
echo "== jobwarden verify events.jsonl --key run.key (the native build):"
"$build/native/jobwarden" verify "$out/events.jsonl" --key "$out/run.key"
