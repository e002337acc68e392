#!/usr/bin/env bash
# deb-src.sh [APT_DIR]: prints the deb-src entries (deb822 format) that the
# machine's apt configuration lacks, derived from its own `deb` entries, so
# that `apt-get source` uses the same mirror (a local mirror, a proxy, a
# snapshot) as `apt-get install`. Prints nothing when every URI/suite of a
# `deb` entry already has a `deb-src` entry.
#
# APT_DIR (default /etc/apt) is read, never written: APT_DIR/sources.list and
# APT_DIR/sources.list.d/*.list (one-line format: `deb [opts] URI SUITE
# [COMPONENT...]`) and APT_DIR/sources.list.d/*.sources (deb822 stanzas:
# Types, URIs, Suites, Components, Signed-By, Trusted, Enabled), in apt's
# order. Comments, disabled stanzas (`Enabled: no`) and other file names
# (`*.disabled`, `*.save`) are ignored, as apt ignores them.
#
# Each missing (URI, suite) pair becomes one stanza with the components of
# the `deb` entry it came from, its Signed-By (a key file or an inline key)
# and Trusted setting. URIs are compared without a trailing slash.
#
# Exit status: 0 (the entries, possibly none, on stdout); 1 when APT_DIR has
# no `deb` entry at all (message on stderr); 2 usage.
set -euo pipefail

if [ $# -gt 1 ]; then
  echo "usage: deb-src.sh [APT_DIR]" >&2
  exit 2
fi
apt_dir=${1:-/etc/apt}
if [ ! -d "$apt_dir" ]; then
  echo "deb-src.sh: $apt_dir: not a directory" >&2
  exit 2
fi

files=()
[ -f "$apt_dir/sources.list" ] && files+=("$apt_dir/sources.list")
shopt -s nullglob
for f in "$apt_dir"/sources.list.d/*.list "$apt_dir"/sources.list.d/*.sources; do
  files+=("$f")
done
shopt -u nullglob
if [ ${#files[@]} -eq 0 ]; then
  echo "deb-src.sh: no apt sources in $apt_dir (sources.list, sources.list.d/*.list, *.sources)" >&2
  exit 1
fi

# POSIX awk (Debian's default mawk): no gawk extensions.
awk -v apt_dir="$apt_dir" '
function norm(u) { sub(/\/+$/, "", u); return u }
function lower(s) { return tolower(s) }
# Records one entry: types (space separated), URIs, suites, components,
# signed-by, trusted.
function record(types, uris, suites, comps, signed, trusted,    nt, t, nu, u, ns, s, i, j, k, key) {
  nt = split(types, t, /[ \t]+/)
  nu = split(uris, u, /[ \t]+/)
  ns = split(suites, s, /[ \t]+/)
  for (i = 1; i <= nt; i++) {
    if (t[i] != "deb" && t[i] != "deb-src")
      continue
    for (j = 1; j <= nu; j++) {
      if (u[j] == "")
        continue
      for (k = 1; k <= ns; k++) {
        if (s[k] == "")
          continue
        key = norm(u[j]) SUBSEP s[k]
        if (t[i] == "deb-src") {
          have[key] = 1
        } else if (!(key in seen)) {
          seen[key] = 1
          n++
          e_key[n] = key; e_uri[n] = u[j]; e_suite[n] = s[k]
          e_comps[n] = comps; e_signed[n] = signed; e_trusted[n] = trusted
        }
      }
    }
  }
}
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
# deb822: ends the current stanza.
function flush(    en) {
  en = lower(trim(f["enabled"]))
  if (in_stanza && en != "no" && en != "false")
    record(trim(f["types"]), trim(f["uris"]), trim(f["suites"]), trim(f["components"]),
           f["signed-by"], lower(trim(f["trusted"])) == "yes" ? "yes" : "")
  split("", f)
  in_stanza = 0
  last = ""
}
FNR == 1 {
  if (deb822) flush()
  deb822 = FILENAME ~ /\.sources$/
}
deb822 {
  line = $0
  sub(/\r$/, "", line)
  if (line ~ /^#/) next
  if (line ~ /^[ \t]*$/) { flush(); next }
  if (line ~ /^[ \t]/ && last != "") {  # a continuation line
    f[last] = f[last] "\n" line
    next
  }
  p = index(line, ":")
  if (p == 0) next
  last = lower(trim(substr(line, 1, p - 1)))
  f[last] = substr(line, p + 1)
  in_stanza = 1
  next
}
{
  line = $0
  sub(/\r$/, "", line)
  sub(/#.*/, "", line)
  nf = split(line, w, /[ \t]+/)
  i = 1
  if (w[1] == "") i = 2
  type = w[i++]
  if (type != "deb" && type != "deb-src") next
  signed = ""; trusted = ""
  if (w[i] ~ /^\[/) {  # options, up to the token that ends with ]
    opts = ""
    for (; i <= nf; i++) {
      opts = opts " " w[i]
      if (w[i] ~ /\]$/) { i++; break }
    }
    gsub(/[\[\]]/, " ", opts)
    no = split(opts, o, /[ \t]+/)
    for (j = 1; j <= no; j++) {
      if (o[j] ~ /^signed-by=/) signed = " " substr(o[j], 11)
      if (o[j] == "trusted=yes") trusted = "yes"
    }
  }
  uri = w[i++]; suite = w[i++]
  comps = ""
  for (; i <= nf; i++) if (w[i] != "") comps = comps (comps == "" ? "" : " ") w[i]
  if (uri == "" || suite == "") next
  record(type, uri, suite, comps, signed, trusted)
}
END {
  if (deb822) flush()
  if (n == 0) {
    print "deb-src.sh: no deb entry in the apt sources of " apt_dir " (every line or stanza is a comment, disabled or deb-src)" > "/dev/stderr"
    exit 1
  }
  first = 1
  for (i = 1; i <= n; i++) {
    if (e_key[i] in have) continue
    if (!first) printf "\n"
    first = 0
    printf "Types: deb-src\nURIs: %s\nSuites: %s\n", e_uri[i], e_suite[i]
    if (e_comps[i] != "") printf "Components: %s\n", e_comps[i]
    if (trim(e_signed[i]) != "") printf "Signed-By:%s\n", e_signed[i]
    if (e_trusted[i] == "yes") printf "Trusted: yes\n"
  }
}
' "${files[@]}"
