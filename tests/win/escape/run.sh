#!/usr/bin/env bash
# wine.real.escape: the escaped process's executable identity is checked
# against the hash and size computed natively here, with coreutils, from
# the very file it runs (the test executable itself, or a copy of it), and
# passed to the Windows test as arguments: CNG is never compared with
# itself.
#
# Usage: run.sh WINEPREFIX TEST_EXE DATA EVENTS JOBWARDEN_EXE [--case NAME]
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
prefix=$1 test_exe=$2 data=$3 events=$4 jw=$5
exec "$root/scripts/wine-exec.sh" "$prefix" "$test_exe" "$data" "$events" "$jw" \
  "$(sha256sum "$test_exe" | cut -d' ' -f1)" "$(stat -c %s "$test_exe")" "${@:6}"
