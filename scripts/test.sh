#!/usr/bin/env bash
# Runs every jobwarden test: native unit tests, the same under ASan/UBSan, and
# the Windows build's tests under Wine, through one CTest run that ends with
# CTest's summary line. Builds first (incrementally) through setup.sh.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$here/build"

"$here/scripts/setup.sh" --no-demo || exit $?

export WINEPREFIX="$build/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
stop_wine() { wineserver -k </dev/null >/dev/null 2>&1 || true; }
trap stop_wine EXIT
# A persistent server, all stdio detached (the hang trap in WINE.md).
wineserver -p </dev/null >/dev/null 2>&1 || true
wine wineboot </dev/null >/dev/null 2>&1 || true

# Every line any test renders is also rendered by the reference (jansson)
# and compared byte for byte; a difference aborts that test (src/event.c).
export JW_RENDER_CHECK=1

# Events written by the tests are collected here and validated last.
rm -rf "$build/test-events" && mkdir -p "$build/test-events"
ctest --test-dir "$build/all" --output-on-failure -j"$(nproc)" --timeout 300 "$@"
