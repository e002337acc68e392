#!/usr/bin/env bash
# native.scripts.deb_src: scripts/deb-src.sh (the deb-src entries setup.sh
# adds) on sample apt configurations in tests/data/apt/<case>/ (a stand-in
# for /etc/apt: sources.list, sources.list.d/). Each case's output must equal
# its `expected` file byte for byte. The real /etc/apt is never read or
# written: every run names its directory.
# Usage: test_deb_src.sh REPO_ROOT WORK_DIR
set -u
root=$1 work=$2
script="$root/scripts/deb-src.sh"
data="$root/tests/data/apt"
failures=0 checks=0
check() { # description, command status (0 = pass)
  checks=$((checks + 1))
  if [ "$2" -ne 0 ]; then
    echo "FAIL: $1" >&2
    failures=$((failures + 1))
  fi
}
rm -rf "$work" && mkdir -p "$work" || exit 2

# 1. Each case with an `expected` file: exit 0 and exactly that output.
for dir in "$data"/*/; do
  c=$(basename "$dir")
  [ -f "$dir/expected" ] || continue
  bash "$script" "$dir" >"$work/$c.out" 2>"$work/$c.err"
  check "$c: exit status $? (want 0)" $?
  cmp -s "$work/$c.out" "$dir/expected"
  check "$c: output differs from expected:
$(diff "$dir/expected" "$work/$c.out")" $?
  [ ! -s "$work/$c.err" ]
  check "$c: stderr not empty: $(cat "$work/$c.err")" $?
done

# 2. Idempotent: with its own output added as setup.sh adds it, a second
# run finds nothing missing.
for c in bookworm-deb822 local-mirror mixed; do
  cp -r "$data/$c" "$work/$c.apt"
  bash "$script" "$work/$c.apt" >"$work/$c.apt/sources.list.d/jobwarden-deb-src.sources"
  out=$(bash "$script" "$work/$c.apt")
  check "$c: exit status of the second run $? (want 0)" $?
  [ -z "$out" ]
  check "$c: the second run added again: $out" $?
done

# 3. No deb entry at all: exit 1 and say where.
bash "$script" "$data/no-deb" >"$work/no-deb.out" 2>"$work/no-deb.err"
[ $? -eq 1 ]
check "no-deb: exit status (want 1)" $?
[ ! -s "$work/no-deb.out" ]
check "no-deb: printed something" $?
[ "$(cat "$work/no-deb.err")" = "deb-src.sh: no deb entry in the apt sources of $data/no-deb (every line or stanza is a comment, disabled or deb-src)" ]
check "no-deb: message: $(cat "$work/no-deb.err")" $?

# 4. Usage errors: exit 2 with a message.
bash "$script" a b >/dev/null 2>"$work/usage.err"
[ $? -eq 2 ] && [ "$(cat "$work/usage.err")" = "usage: deb-src.sh [APT_DIR]" ]
check "usage: two arguments" $?
bash "$script" "$work/none" >/dev/null 2>"$work/usage.err"
[ $? -eq 2 ] && [ "$(cat "$work/usage.err")" = "deb-src.sh: $work/none: not a directory" ]
check "usage: missing directory: $(cat "$work/usage.err")" $?
mkdir -p "$work/empty"
bash "$script" "$work/empty" >/dev/null 2>"$work/usage.err"
[ $? -eq 1 ] && [ "$(cat "$work/usage.err")" = "deb-src.sh: no apt sources in $work/empty (sources.list, sources.list.d/*.list, *.sources)" ]
check "no sources files: $(cat "$work/usage.err")" $?

echo "deb_src: $checks checks, $failures failed"
[ $failures -eq 0 ]
