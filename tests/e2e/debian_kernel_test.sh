#!/usr/bin/env bash
# A real Linux kernel: Debian 12's ppc64le vmlinux, fetched by
# samples/fetch-debian-kernel.sh. Its loadable image must equal what binutils'
# `objcopy -O binary -S` gives, compressed or not.
source "$(dirname "$0")/lib.sh"
: "${SVMKIT_DEBIAN_KERNEL:?run samples/fetch-debian-kernel.sh and export SVMKIT_DEBIAN_KERNEL}"
K=$SVMKIT_DEBIAN_KERNEL

"$SVMKIT" keygen --algo ecdsa-p384 -o k.pem --public-output k.pub >/dev/null
powerpc64le-linux-gnu-objcopy -O binary -S "$K" vmlinux.bin
"$SVMKIT_SOURCE_DIR/samples/make-sample-initrd.sh" initrd.cpio.gz

for comp in none gzip; do
  expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel "$K" --initrd initrd.cpio.gz \
     --cmdline "console=hvc0 svm=on" --compress $comp --key k.pem -o img-$comp
  expect_exit 0 eu-elflint img-$comp
  expect_exit 0 powerpc64le-linux-gnu-readelf -h img-$comp
  expect_contains "$OUT" "PowerPC64"
  expect_exit 0 "$SVMKIT" verify img-$comp --trusted-key k.pub
  expect_exit 0 "$SVMKIT" extract img-$comp --component kernel -o kernel-$comp.bin
  same_files kernel-$comp.bin vmlinux.bin
  expect_exit 0 "$SVMKIT" inspect img-$comp --json
  expect_contains "$OUT" '"load_address": "0x0"'
done
# The digest of the unpacked kernel is the plain sha256 of objcopy's output.
expect_exit 0 "$SVMKIT" inspect img-gzip --json
expect_contains "$OUT" "\"unpacked_digest\": \"$(sha256sum vmlinux.bin | cut -d' ' -f1)\""

# The kernel ELF's machine decides the target (docs/cli.md, "--arch"); an
# explicit --arch that disagrees is a usage error naming both.
expect_exit 0 "$SVMKIT" build --kernel "$K" --key k.pem -o inferred.img --json
expect_contains "$OUT" '"arch": "ppc64le"'
expect_error 2 "--arch x86_64: the kernel .* is a ppc64le ELF file" \
  "$SVMKIT" build --kernel "$K" --arch x86_64 --key k.pem -o wrong.img
expect_no_file wrong.img
# esm digest infers the target from the kernel ELF too.
expect_exit 0 "$SVMKIT" esm digest --kernel "$K" --json
finish
