#!/bin/sh
# The test kit's selection in a native unit executable (harness.h,
# jw_test_run_cases). usage: kit_case.sh EXE DATA_DIR OUT_DIR CASE
#   `--case list` names CASE; a full run reports the listed cases, in order;
#   `--case CASE` runs CASE alone: its line is the only case line and its
#   checks are all the summary counts; `--case nosuch` exits 2 naming it.
exe=$1 data=$2 out=$3 one=$4
fail() {
  echo "kit_case: $*" >&2
  exit 1
}

list=$("$exe" --case list) || fail "--case list exited $?"
printf '%s\n' "$list" | grep -qx "$one" || fail "--case list does not name $one: $list"

all=$("$exe" "$data" "$out" 2>&1 >/dev/null) || fail "the full run exited $?: $all"
ran=$(printf '%s\n' "$all" | sed -n 's/^case \([^:]*\): .*/\1/p')
[ "$ran" = "$list" ] || fail "the full run's cases ($ran) are not the list ($list)"

err=$("$exe" "$data" "$out" --case "$one" 2>&1 >/dev/null) || fail "--case $one exited $?: $err"
lines=$(printf '%s\n' "$err" | grep '^case ')
[ "$(printf '%s\n' "$lines" | wc -l)" -eq 1 ] || fail "--case $one ran more than it: $lines"
n_case=$(printf '%s\n' "$lines" | sed -n "s/^case $one: \([0-9]*\) checks, 0 failed, .*/\1/p")
n_all=$(printf '%s\n' "$err" | sed -n 's/^[a-z_]*: \([0-9]*\) checks, 0 failed$/\1/p')
[ -n "$n_case" ] && [ "$n_case" -gt 0 ] || fail "no passing line for $one: $err"
[ "$n_case" = "$n_all" ] || fail "$one ran $n_case checks, the summary counts $n_all"

err=$("$exe" "$data" "$out" --case nosuch 2>&1 >/dev/null)
rc=$?
[ $rc -eq 2 ] || fail "--case nosuch exited $rc, expected 2"
printf '%s\n' "$err" | grep -q "no case named 'nosuch'" || fail "--case nosuch said: $err"
printf '%s\n' "$err" | grep -q '^case ' && fail "--case nosuch ran a case: $err"
echo "kit_case: $one alone ($n_case checks), list and nosuch as expected"
