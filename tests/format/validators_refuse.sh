#!/usr/bin/env bash
# native.format.validators_refuse: the ECS and OCSF validators are not
# tests that cannot fail. Each is given lines with known faults
# (tests/data/format/bad.*.jsonl: unknown fields, wrong types, values
# outside the allowed ones, an event.type ECS does not expect with the
# category, a missing required OCSF attribute, a wrong type_uid, ...) and
# must exit 1 naming exactly the problems in bad.*.expected.
# usage: validators_refuse.sh ECS_DEFS_DIR
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
data="$here/tests/data/format"
fail=0
check() { # name, expected file, command...
  local name=$1 expected=$2
  shift 2
  local got rc
  got=$(cd "$data" && "$@")
  rc=$?
  if [ $rc -ne 1 ]; then
    echo "$name: exit status $rc, expected 1"
    fail=1
  fi
  if ! diff <(printf '%s\n' "$got" | grep -v "^validate_") "$expected"; then
    echo "$name: the problems reported differ from $expected (above)"
    fail=1
  fi
}
bash "$here/scripts/ecs-defs.sh" "$1" || exit 1
defs=$(cd "$1" && pwd)
check ecs "$data/bad.ecs.expected" node "$here/tests/ecs/validate_ecs.js" \
  "$defs/node_modules/@elastic/ecs" bad.ecs.jsonl
check ocsf "$data/bad.ocsf.expected" /usr/bin/python3 "$here/tests/ocsf/validate_ocsf.py" \
  "$here/tests/ocsf" bad.ocsf.jsonl --version 1.9.0
[ $fail -eq 0 ] && echo "validators_refuse: both validators refused every planted fault"
exit $fail
