#!/usr/bin/env bash
# Signed images for wine.real.imageid, made at test time (no key is ever
# committed): a test root CA, a code-signing certificate it issued (valid
# now), one it issued that expired in 2020, a self-signed one no root
# trusts; jwtestid.exe signed with each (osslsigncode), and a copy of the
# valid one with one byte changed after signing.
#
# Usage: make_signed.sh HELPER_EXE DIR   (DIR exists; writes into it)
#   DIR/root.der                 the root, for the test to trust (DER)
#   DIR/signed-valid.exe, signed-expired.exe, signed-selfsigned.exe,
#   DIR/signed-withroot.exe (the root in the signature), signed-tampered.exe
#   DIR/SHA256SUMS               sha256sum of each .exe (coreutils)
set -euo pipefail
helper=$(readlink -f "$1") dir=$2
for tool in openssl osslsigncode; do
  command -v "$tool" >/dev/null 2>&1 || { echo "make_signed.sh: $tool is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done
cd "$dir"
mkdir -p ca/new && : > ca/index.txt && echo 1000 > ca/serial
cat > ca.cnf <<'CNF'
[ca]
default_ca = test_ca
[test_ca]
dir = ./ca
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
organizationName = optional
[code_signing]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = codeSigning
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
q() { "$@" >/dev/null 2>&1 || { echo "make_signed.sh: failed: $*" >&2; exit 1; }; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 30 \
  -subj "/CN=jobwarden test root (wine.real.imageid)" -config ca.cnf -extensions root
q openssl x509 -in root.pem -outform DER -out root.der
leaf() { # name, subject CN, start, end
  q openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2/O=jobwarden tests"
  q openssl ca -batch -config ca.cnf -cert root.pem -keyfile root.key -in "$1.csr" -out "$1.pem" \
    -extensions code_signing -startdate "$3" -enddate "$4"
}
leaf valid "jobwarden test signer" "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" "$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)"
leaf expired "jobwarden expired signer" 20200101000000Z 20200201000000Z
q openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -out self.pem -days 30 \
  -subj "/CN=jobwarden self-signed signer" -addext "extendedKeyUsage=codeSigning"
sign() { # cert name, out
  q osslsigncode sign -certs "$1.pem" -key "$1.key" -n "jobwarden test" -in "$helper" -out "$2"
}
sign valid signed-valid.exe
sign expired signed-expired.exe
sign self signed-selfsigned.exe
# The valid one again with the root inside the signature too: a complete
# chain, to a root Windows (and Wine) does not trust.
cat valid.pem root.pem > valid-chain.pem
cp valid.key valid-chain.key
sign valid-chain signed-withroot.exe
# One byte of the code changed after signing: the digest no longer matches.
cp signed-valid.exe signed-tampered.exe
printf 'X' | dd of=signed-tampered.exe bs=1 seek=2000 conv=notrunc status=none
sha256sum signed-*.exe > SHA256SUMS
