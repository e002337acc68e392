#!/usr/bin/env bash
# jobwarden setup: installs what the project needs on Debian bookworm,
# cross-builds jansson from Debian's source package, builds the native and
# Windows trees, prepares the Wine prefix and (unless --no-demo) runs the
# bundled demo. Every step is skipped when its result is already there, so a
# second run only rebuilds what changed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$here/build"
demo=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) demo=0 ;;
    *) echo "setup.sh: unknown option '$arg' (known: --no-demo)" >&2; exit 2 ;;
  esac
done

log() { printf '== %s\n' "$*"; }

# --- 1. Debian packages ------------------------------------------------------
# rsyslog-gnutls: rsyslog's TLS driver (wine.real.tls). libgnutls30: Wine's
# SChannel is GnuTLS underneath, and it is only a Recommends of libwine,
# which --no-install-recommends leaves out.
packages=(cmake ninja-build gcc libc6-dev pkg-config libjansson-dev libsodium-dev
          mingw-w64 wine wine64 libgnutls30 python3 python3-jsonschema dpkg-dev xz-utils
          rsyslog rsyslog-gnutls nodejs openssl osslsigncode autoconf automake libtool chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# npm: Debian's package, unless the nodejs installed already brings its own
# npm (a nodejs built elsewhere conflicts with Debian's npm package).
if ! command -v npm >/dev/null 2>&1 &&
   ! dpkg-query -W -f='${Status}' npm 2>/dev/null | grep -q 'install ok installed'; then
  missing+=(npm)
fi
# `apt-get source jansson` (step 2) needs deb-src entries. They are derived
# from the machine's own `deb` entries (scripts/deb-src.sh: the same URIs and
# suites, so a local mirror or proxy keeps working); a URI/suite that has a
# deb-src entry already gets none. Only done while jansson still has to be
# built: a machine that has it never has its apt configuration touched.
src_list=/etc/apt/sources.list.d/jobwarden-deb-src.sources
jansson_win="$build/deps/jansson-win"
sodium_win="$build/deps/sodium-win"
need_update=0
if [ ! -f "$jansson_win/lib/libjansson.a" ] || [ ! -f "$sodium_win/lib/libsodium.a" ]; then
  if ! deb_src=$("$here/scripts/deb-src.sh" /etc/apt); then
    echo "setup.sh: cannot derive a deb-src entry from the apt sources (see above)" >&2
    exit 1
  fi
  if [ -n "$deb_src" ]; then
    log "adding deb-src entries for the configured apt sources ($src_list)"
    if [ -s "$src_list" ]; then
      printf '\n%s\n' "$deb_src" >> "$src_list"
    else
      printf '%s\n' "$deb_src" > "$src_list"
    fi
    need_update=1
  fi
fi
if [ ${#missing[@]} -gt 0 ] || [ $need_update -eq 1 ]; then
  log "apt-get update"
  apt-get update -q >/dev/null
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Unpacks Debian's source package PKG into DIR (made anew) and prints the
# path of its source tree.
debian_source() { # PKG DIR
  rm -rf "$2" && mkdir -p "$2"
  (cd "$2" && apt-get source -q "$1" >/dev/null 2>&1) || {
    echo "setup.sh: 'apt-get source $1' failed (are the deb-src entries of the apt sources readable and their mirror reachable?)" >&2
    return 1
  }
  find "$2" -maxdepth 1 -type d -name "$1-*" | head -n 1
}

# --- 2. jansson for Windows, from Debian's source package ------------------
if [ ! -f "$jansson_win/lib/libjansson.a" ]; then
  log "cross-building jansson (Debian source package) for x86_64-w64-mingw32"
  jsrc=$(debian_source jansson "$build/deps/src") || exit 1
  cmake -S "$jsrc" -B "$build/deps/jansson-build" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$here/cmake/mingw-w64-x86_64.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$jansson_win" \
    -DJANSSON_BUILD_SHARED_LIBS=OFF -DJANSSON_EXAMPLES=OFF \
    -DJANSSON_BUILD_DOCS=OFF -DJANSSON_WITHOUT_TESTS=ON -DJANSSON_INSTALL=ON >/dev/null
  cmake --build "$build/deps/jansson-build" --target install >/dev/null
fi

# --- 2b. libsodium for Windows, from Debian's source package --------------
# The seal chain's BLAKE2b and the CSPRNG (src/seal.c). Debian builds it
# with `dh --with autoreconf`; the same here, then a static mingw build of
# the minimal API (crypto_generichash, randombytes, sodium_memzero).
if [ ! -f "$sodium_win/lib/libsodium.a" ]; then
  log "cross-building libsodium (Debian source package) for x86_64-w64-mingw32"
  ssrc=$(debian_source libsodium "$build/deps/src-sodium") || exit 1
  if ! (cd "$ssrc" && autoreconf -fi && mkdir -p build-win && cd build-win &&
        ../configure --host=x86_64-w64-mingw32 --prefix="$sodium_win" --disable-shared \
          --enable-static --enable-minimal --disable-pie &&
        make -j"$(nproc)" && make install) >"$build/deps/sodium-build.log" 2>&1; then
    tail -n 30 "$build/deps/sodium-build.log" >&2
    echo "setup.sh: the libsodium cross-build failed (log: $build/deps/sodium-build.log)" >&2
    exit 1
  fi
fi

# --- 3. the three build trees ----------------------------------------------
# The project's own trees treat warnings as errors (JW_WERROR; off by
# default for anyone else's build). A tree is configured again when the
# arguments it was configured with change (a new dependency's prefix).
configure() { # dir, extra cmake args...
  local dir=$1; shift
  local args="-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJW_WERROR=ON $*"
  if [ ! -f "$dir/build.ninja" ] || [ "$(cat "$dir/.jw-configure-args" 2>/dev/null)" != "$args" ]; then
    cmake -S "$here" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJW_WERROR=ON "$@" >/dev/null
    printf '%s' "$args" > "$dir/.jw-configure-args"
  fi
}
configure "$build/native"
configure "$build/asan" -DJW_SANITIZE=ON
configure "$build/win" -DCMAKE_TOOLCHAIN_FILE="$here/cmake/mingw-w64-x86_64.cmake" \
  -DJW_JANSSON_ROOT="$jansson_win" -DJW_SODIUM_ROOT="$sodium_win" -DJW_WINEPREFIX="$build/wineprefix"
for t in native asan win; do
  log "building $t"
  if ! cmake --build "$build/$t" >"$build/$t.build.log" 2>&1; then
    cat "$build/$t.build.log" >&2
    echo "setup.sh: the $t build failed (log: $build/$t.build.log)" >&2
    exit 1
  fi
done

# One CTest entry point for all three trees, so a single run ends with a
# single summary line.
mkdir -p "$build/all"
cat > "$build/all/CTestTestfile.cmake" <<CT
# Generated by scripts/setup.sh: every test of every build tree.
subdirs("$build/native" "$build/asan" "$build/win")
CT

# --- 4. ECS field definitions for the format tests --------------------------
# @elastic/ecs at the pinned version, from the npm registry, into
# build/ecs-defs (tests/ecs/check.sh fetches it too when it is missing, so a
# machine without the registry now can still build; its ECS tests say why).
if ! "$here/scripts/ecs-defs.sh" "$build/ecs-defs"; then
  echo "setup.sh: warning: the ECS definitions could not be installed; the format tests will try again" >&2
fi

# --- 5. the Wine prefix -----------------------------------------------------
"$here/scripts/wine-prefix.sh" "$build/wineprefix"

# --- 6. the demo ------------------------------------------------------------
if [ $demo -eq 1 ]; then
  "$here/scripts/demo.sh"
fi
