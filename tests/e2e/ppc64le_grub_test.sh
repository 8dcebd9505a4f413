#!/usr/bin/env bash
# Real POWER, Debian's own GRUB (grub-ieee1275-bin 2.06, unmodified) boots
# signed secure images from a disk laid out as grub-install lays one out for a
# pseries guest (make-grub-disk.sh: PReP partition with the core image, ext2
# with /boot/grub/grub.cfg), started by SLOF from that disk. GRUB keeps its
# core image (at 0x200000) and its heap claimed when it jumps, so the
# firmware-style stub cannot claim the kernel's load range: it unpacks the
# kernel above it, and the kernel moves itself down after prom_init. GRUB's
# `linux` arguments and `initrd` are ignored, said on the console. Four QEMU
# runs: the gzip image, the stored image, the gzip image's twin whose
# compressed kernel changed after signing, which the stub stops, and an image
# with svm=on, whose stub calls UV_ESM (no ultravisor here: it fails, the VM
# stops).
source "$(dirname "$0")/lib.sh"
SAMPLES=$SVMKIT_SOURCE_DIR/samples/ppc64le
LIMIT=${SVMKIT_PPC64LE_BOOT_LIMIT:-90} # seconds for one QEMU run
MARKER="svmkit ppc64le initramfs: hello from /init"
CMDLINE="console=hvc0 svmkit.test=grub"

"$SAMPLES/prepare-boot.sh" in >/dev/null
"$SVMKIT" keygen --algo ecdsa-p256 -o k.key --public-output k.pub >/dev/null
powerpc64le-linux-gnu-objcopy -O binary -S in/vmlinux vmlinux.bin
KSIZE=$(stat -c %s vmlinux.bin)
rm vmlinux.bin
# GRUB's initrd: not an initramfs (a kernel that used it would find no /init).
printf 'not an initramfs\n' >loader-initrd.img

expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd in/initramfs.cpio.gz \
  --cmdline "$CMDLINE" --compress gzip --key k.key -o gzip.img
expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd in/initramfs.cpio.gz \
  --cmdline "$CMDLINE" --compress none --key k.key -o stored.img
tamper_kernel gzip.img tampered.img
expect_exit 0 "$SVMKIT" verify gzip.img --trusted-key k.pub
expect_exit 1 "$SVMKIT" verify tampered.img --trusted-key k.pub

# grub_boot NAME IMAGE [STOP_REGEX]: a disk whose grub.cfg boots IMAGE with
# arguments and an initrd of GRUB's own; NAME.log, STATUS, LOG.
grub_boot() {
  local name=$1 img=$2
  shift 2
  cat >"$name.cfg" <<CFG
set timeout=0
menuentry 'svmkit $name' {
  linux /boot/$name.img console=hvc0 grub.args=ignored
  initrd /boot/loader-initrd.img
}
CFG
  "$SAMPLES/make-grub-disk.sh" "$name.disk" "$name.cfg" "$name.img=$img" \
    loader-initrd.img=loader-initrd.img
  local start=$SECONDS
  set +e
  SVMKIT_QEMU_TIMEOUT=$LIMIT "$SAMPLES/boot-qemu.sh" "disk:$name.disk" "$name.log" "$@"
  STATUS=$?
  set -e
  echo "ppc64le GRUB ($name): QEMU run in $((SECONDS - start))s"
  rm -f "$name.disk"
  LOG=$(cat "$name.log")
  CHECKS=$((CHECKS + 1))
  [ "$STATUS" -eq 0 ] || fail "$name: QEMU ended with status $STATUS (124: not within ${LIMIT}s)"
  expect_contains "$LOG" "Welcome to GRUB"
  expect_contains "$LOG" "svmkit stub: firmware-style entry at 0x[0-9a-f]+ \(Open Firmware client interface at 0x[0-9a-f]+\)"
  expect_contains "$LOG" "svmkit stub: ignoring the loader's initrd at 0x[0-9a-f]+ \([0-9]+ bytes\): the kernel gets the signed one"
  expect_contains "$LOG" "svmkit stub: ignoring the loader's command line \[BOOT_IMAGE=/boot/$name.img console=hvc0 grub.args=ignored\]: the kernel gets the signed one"
}
booted() { # booted NAME HOW: the kernel ran /init with the signed command line
  expect_contains "$LOG" "svmkit stub: Open Firmware cannot claim the kernel's load range 0x0\.\.0x[0-9a-f]+ \(a boot loader holds part of it\): unpacking at 0x[0-9a-f]+"
  expect_contains "$LOG" "svmkit stub: kernel $KSIZE bytes at 0x[0-9a-f]+ \($2\), digest ok"
  expect_contains "$LOG" "$MARKER"
  CHECKS=$((CHECKS + 1))
  local got
  got=$(sed -n 's/^svmkit ppc64le initramfs: \/proc\/cmdline=\[\(.*\)\]\r\{0,1\}$/\1/p' "$1.log")
  [ "$got" = "$CMDLINE" ] || fail "$1: /proc/cmdline is '$got', not the signed '$CMDLINE'"
  expect_contains "$LOG" "reboot: Power down"
  CHECKS=$((CHECKS + 1))
  if grep -qE "Kernel panic|svmkit stub: error" "$1.log"; then
    fail "$1: the boot did not end cleanly: $(grep -E 'Kernel panic|svmkit stub: error' "$1.log")"
  fi
}

grub_boot gzip gzip.img
booted gzip inflated
grub_boot stored stored.img
booted stored copied
grub_boot tampered tampered.img "svmkit stub: error: .*(\(zlib -?[0-9]+\)|is not the signed [0-9a-f]{64})|Linux version"
expect_contains "$LOG" "svmkit stub: error: (the kernel's gzip stream does not unpack to its recorded size|the unpacked kernel's digest)"
CHECKS=$((CHECKS + 1))
if grep -qE "Linux version|$MARKER" tampered.log; then fail "the tampered kernel ran"; fi

# svm=on: GRUB's entry is firmware-style too. The stub leaves Open Firmware
# (and GRUB with it) as prom_init does and calls UV_ESM at the address GRUB
# loaded the image to; without an ultravisor that fails, and the VM stops.
expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd in/initramfs.cpio.gz \
  --cmdline "console=hvc0 svm=on svmkit.test=grub-svm" --compress none --key k.key -o svm.img
grub_boot svm svm.img
expect_contains "$LOG" "svmkit stub: svm=on: leaving Open Firmware for UV_ESM, as Linux's prom_init does"
expect_contains "$LOG" "svmkit stub: quiescing Open Firmware; continuing kexec-style \(r3 = fdt 0x[0-9a-f]+, r4 = 0x4000000\)"
expect_contains "$LOG" "svmkit stub: entering secure mode: UV_ESM kbase 0x4000000 fdt 0x[0-9a-f]+"
expect_contains "$LOG" "svmkit stub: error: UV_ESM failed: -2 \(U_FUNCTION\); the image was not accepted, stopping"
expect_contains "$LOG" "OS terminated: svmkit stub: stopped the VM after an error"
CHECKS=$((CHECKS + 1))
if grep -qE "Linux version|$MARKER" svm.log; then fail "svm=on under GRUB: a kernel ran after the failed UV_ESM"; fi
finish
