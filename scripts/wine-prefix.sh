#!/usr/bin/env bash
# Creates (once) a dedicated Wine prefix for jobwarden's tests, with the crash
# debugger disabled so that a crashing test child costs ~50 ms and adds no
# winedbg process to the job. Usage: wine-prefix.sh PREFIX
set -euo pipefail
prefix=${1:?usage: wine-prefix.sh PREFIX}
export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if [ -f "$prefix/.jobwarden-ready" ]; then
  exit 0
fi
echo "== creating Wine prefix $prefix"
mkdir -p "$prefix"
# Every stdio stream is detached: a wineserver that inherits a pipe keeps any
# reader of that pipe waiting until it exits. The server here is the ordinary
# one, which exits a few seconds after its last client and then saves the
# registry (`wineserver -w` waits for that).
wine wineboot -i </dev/null >/dev/null 2>&1
wine reg add 'HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug' \
  /v Debugger /t REG_SZ /d '' /f </dev/null >/dev/null 2>&1
wine reg add 'HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug' \
  /v Auto /t REG_SZ /d 0 /f </dev/null >/dev/null 2>&1
wineserver -w </dev/null >/dev/null 2>&1 || true
touch "$prefix/.jobwarden-ready"
