#!/usr/bin/env bash
# Builds the same set of images with two svmkit binaries and compares them
# byte for byte: the check that a change meant to keep behaviour (a
# refactoring) leaves every image svmkit writes identical.
#
#   tests/golden/compare-builds.sh OLD_SVMKIT NEW_SVMKIT [KERNEL_ELF]
#
# Typical use: build main in one tree and the change in another, then pass
# both build/wrapper/svmkit binaries. KERNEL_ELF defaults to the sample kernel
# beside OLD_SVMKIT (both builds get the same file). Inputs are fixed: an
# Ed25519 key from a fixed seed (Ed25519 signatures are deterministic), fixed
# pseudo-random kernels and initrds, SOURCE_DATE_EPOCH. Prints one line per
# image ("same" or "DIFFERS") and exits 1 if any differs. The embedded stubs
# are each binary's own: a change to stub/ or guest/ code shows here too.
set -euo pipefail
old=$(realpath "$1") new=$(realpath "$2")
kernel=$(realpath "${3:-$(dirname "$old")/../samples/kernel/sample-kernel.elf}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export SOURCE_DATE_EPOCH=1700000000

# fixed_bytes N SEED: N pseudo-random bytes, the same on every machine.
fixed_bytes() {
  head -c "$1" /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$2")" -iv 00000000000000000000000000000000
}
# An Ed25519 private key from a fixed 32-byte seed (PKCS#8 DER: a fixed prefix
# and the seed).
{ printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20'; fixed_bytes 32 1; } >k.der
openssl pkey -inform DER -in k.der -out k.key
fixed_bytes 300000 2 >initrd.bin
fixed_bytes 70000 3 >raw.bin

# Each build: NAME, then build's arguments after --key/-o.
builds=(
  "x86_64-none|--kernel $kernel --initrd initrd.bin --cmdline console=hvc0"
  "x86_64-gzip|--kernel $kernel --initrd initrd.bin --cmdline console=hvc0 --compress gzip --security-version 3"
  "x86_64-raw|--kernel raw.bin --kernel-load-addr 0x200000 --swiotlb-size 8M"
  "ppc64le-raw|--arch ppc64le --kernel raw.bin --kernel-load-addr 0 --initrd initrd.bin --compress gzip"
  "x86_64-sha512|--kernel $kernel --hash sha512 --cmdline a=b"
)
differs=0
# same NAME: old-NAME and new-NAME are the same bytes.
same() {
  if cmp -s "old-$1" "new-$1"; then
    echo "same     $1 ($(sha256sum <"new-$1" | cut -c1-16))"
  else
    echo "DIFFERS  $1"
    differs=1
  fi
}
for entry in "${builds[@]}"; do
  name=${entry%%|*}
  read -r -a args <<<"${entry#*|}"
  for v in old new; do
    "${!v}" build "${args[@]}" --key k.key -o "$v-$name.img" >/dev/null
  done
  same "$name.img"
done
# The unsigned flow, and the to-be-signed bytes an external signer gets.
for v in old new; do
  "${!v}" build --kernel raw.bin --kernel-load-addr 0x200000 --unsigned -o "$v-unsigned.img" \
    >/dev/null
  "${!v}" tbs "$v-unsigned.img" -o "$v-unsigned.tbs" 2>/dev/null
done
same unsigned.img
same unsigned.tbs
exit "$differs"
