#!/usr/bin/env bash
# CTest's CMAKE_CROSSCOMPILING_EMULATOR for the Windows build.
# Usage: wine-exec.sh PREFIX PROGRAM.exe [ARG...]
# Runs PROGRAM under Wine in jobwarden's dedicated prefix. A persistent
# wineserver is started first with all stdio detached, so CTest (which reads
# the test's output until EOF) never waits for the server to exit.
set -u
prefix=$1; shift
export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$prefix/.jobwarden-ready" ]; then
  "$(dirname "${BASH_SOURCE[0]}")/wine-prefix.sh" "$prefix" || exit 125
fi
wineserver -p </dev/null >/dev/null 2>&1
# Wine's own services (services.exe, rpcss, ...) start with the first program
# and would inherit this test's output pipe, keeping CTest waiting for EOF:
# start them here, detached, when they are not running yet.
if ! pgrep -f 'C:\\windows\\system32\\services.exe' >/dev/null 2>&1; then
  wine wineboot </dev/null >/dev/null 2>&1
fi
exec wine "$@"
