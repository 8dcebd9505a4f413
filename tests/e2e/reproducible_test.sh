#!/usr/bin/env bash
# Same inputs + SOURCE_DATE_EPOCH => byte-identical images, whatever the
# directory, file names or umask; Ed25519 signatures are deterministic too.
source "$(dirname "$0")/lib.sh"

make_x86_kernel kernel.elf
head -c 200000 /dev/urandom > initrd.bin
"$SVMKIT" keygen --algo ed25519 -o k.pem --public-output k.pub >/dev/null
mkdir -p a/deep/dir b
cp kernel.elf a/deep/dir/vmlinux; cp initrd.bin a/deep/dir/rd; cp k.pem a/deep/dir/key.pem
cp kernel.elf b/k; cp initrd.bin b/i; cp k.pem b/key

export SOURCE_DATE_EPOCH=1700000000
(cd a/deep/dir && umask 022 && "$SVMKIT" build --kernel vmlinux --initrd rd --cmdline "root=/dev/vda" \
   --compress gzip --key key.pem -o ../../../one.img >/dev/null)
(cd b && umask 077 && "$SVMKIT" build --kernel "$PWD/k" --initrd "$PWD/i" --cmdline "root=/dev/vda" \
   --compress gzip --key key -o "$WORK/two.img" >/dev/null)
same_files one.img two.img

# Unsigned images and their to-be-signed bytes are reproducible too (any key type).
(cd a/deep/dir && "$SVMKIT" build --kernel vmlinux --initrd rd --cmdline "root=/dev/vda" --unsigned \
   -o ../../../u1.img >/dev/null)
(cd b && "$SVMKIT" build --kernel k --initrd i --cmdline "root=/dev/vda" --unsigned -o ../u2.img >/dev/null)
same_files u1.img u2.img
"$SVMKIT" tbs u1.img -o t1.bin 2>/dev/null
"$SVMKIT" tbs u2.img -o t2.bin 2>/dev/null
same_files t1.bin t2.bin

expect_exit 0 "$SVMKIT" inspect one.img --json
expect_contains "$OUT" '"creation_time": 1700000000'
# No path of the build anywhere in the file.
CHECKS=$((CHECKS + 1))
if grep -a -q -e "$WORK" -e "deep/dir" one.img; then fail "host-dependent bytes in the image"; fi

# A different epoch changes the manifest (and only through creation-time).
SOURCE_DATE_EPOCH=1700000001 "$SVMKIT" build --kernel kernel.elf --initrd initrd.bin --cmdline "root=/dev/vda" \
   --compress gzip --key k.pem -o three.img >/dev/null
CHECKS=$((CHECKS + 1))
cmp -s one.img three.img && fail "creation time did not reach the image"

expect_error 2 "SOURCE_DATE_EPOCH" env SOURCE_DATE_EPOCH=yesterday "$SVMKIT" build --kernel kernel.elf --key k.pem -o four.img
expect_no_file four.img
finish
