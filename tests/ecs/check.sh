#!/usr/bin/env bash
# Runs tests/ecs/validate_ecs.js over FILE... after making sure the pinned
# ECS definitions are installed (scripts/ecs-defs.sh; a fresh clone fetches
# them from the npm registry here).
# usage: check.sh DEFS_DIR FILE... [--expect-lines N]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
defs=$1
shift
bash "$here/scripts/ecs-defs.sh" "$defs"
exec node "$here/tests/ecs/validate_ecs.js" "$defs/node_modules/@elastic/ecs" "$@"
