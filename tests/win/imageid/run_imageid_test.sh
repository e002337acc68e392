#!/usr/bin/env bash
# wine.real.imageid: the expected hashes are computed natively here, with
# coreutils' sha256sum, from the very files the Windows test hashes, and
# passed to it as arguments: the test never compares CNG with itself.
#
# Usage: run_imageid_test.sh WINEPREFIX TEST_EXE HELPER_EXE EVENTS_DIR WORK_DIR [--case NAME]
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
prefix=$1 test_exe=$2 helper_exe=$3 events=$4 work=$5

rm -rf "$work" && mkdir -p "$work" || { echo "cannot create $work" >&2; exit 1; }
# The flood's files are copies of this one.
printf 'jobwarden identity flood\n' > "$work/seed.txt"
# A typical program's size for the timing: the test exe with 6 MiB of
# overlay data (still a PE image, still unsigned).
{ cat "$test_exe"; head -c 6291456 /dev/zero; } > "$work/big.exe"
# Signed copies of the helper (a test root, an expired and a self-signed
# signer, a tampered file), made now; their hashes in signed/SHA256SUMS.
mkdir -p "$work/signed" && bash "$here/make_signed.sh" "$helper_exe" "$work/signed" || exit 1
sum() { sha256sum "$1" | cut -d' ' -f1; }
exec "$root/scripts/wine-exec.sh" "$prefix" "$test_exe" "$events" "$work" \
  "$helper_exe" "$(sum "$test_exe")" "$(stat -c %s "$test_exe")" \
  "$(sum "$helper_exe")" "$(stat -c %s "$helper_exe")" "$(sum "$work/seed.txt")" \
  "$(sum "$work/big.exe")" "$(stat -c %s "$work/big.exe")" "${@:6}"
