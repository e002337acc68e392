#!/usr/bin/env bash
# wine.real.identity: the expected hashes and sizes are computed natively
# here, with coreutils, from the very files the run hashes, and passed to
# the Windows test as arguments.
#
# Usage: run.sh WINEPREFIX TEST_EXE DATA EVENTS JOBWARDEN_EXE TESTID_EXE [--case NAME]
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
prefix=$1 test_exe=$2 data=$3 events=$4 jw=$5 testid=$6
sum() { sha256sum "$1" | cut -d' ' -f1; }
exec "$root/scripts/wine-exec.sh" "$prefix" "$test_exe" "$data" "$events" "$jw" \
  "$(sum "$test_exe")" "$(stat -c %s "$test_exe")" "$testid" "$(sum "$testid")" "${@:7}"
