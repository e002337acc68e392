#!/usr/bin/env bash
# Installs Elastic's published ECS field definitions, the npm package
# @elastic/ecs at the pinned version, into a cache directory (default
# build/ecs-defs; not committed). tests/ecs/validate_ecs.js checks every ECS
# line the tests write against its EcsFlat. Called by scripts/setup.sh and,
# when the cache is missing, by the tests themselves (tests/ecs/check.sh).
# The version is the one src/format.h names in ecs.version (JW_ECS_VERSION):
# change both together.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=9.3.0
dest=${1:-"$here/build/ecs-defs"}
pkg="$dest/node_modules/@elastic/ecs/package.json"

installed() { [ -f "$pkg" ] && grep -q "\"version\": \"$version\"" "$pkg"; }
installed && exit 0
# Tests that run in parallel may all find the cache missing: one installs,
# the others wait for it.
mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9
installed && exit 0
if ! command -v npm >/dev/null 2>&1; then
  echo "ecs-defs.sh: npm is not installed (Debian: apt-get install nodejs npm; scripts/setup.sh does it)" >&2
  exit 1
fi
mkdir -p "$dest"
# --no-save / --no-package-lock: the cache directory gets node_modules only.
if ! npm install --prefix "$dest" --no-save --no-package-lock --no-audit --no-fund \
     --loglevel=error "@elastic/ecs@$version" >&2; then
  echo "ecs-defs.sh: 'npm install @elastic/ecs@$version' failed (is the npm registry reachable?)" >&2
  exit 1
fi
if ! grep -q "\"version\": \"$version\"" "$pkg" 2>/dev/null; then
  echo "ecs-defs.sh: $pkg is not version $version after the install" >&2
  exit 1
fi
