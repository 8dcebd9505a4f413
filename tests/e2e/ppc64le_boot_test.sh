#!/usr/bin/env bash
# Real POWER: a secure image of Debian 12's ppc64le kernel (gzip-compressed)
# and a busybox initramfs boots on QEMU's pseries machine (TCG, SLOF) through
# the ppc64le stub's firmware-style path: the stub's console lines, the
# kernel's banner, the marker from /init, /proc/cmdline equal to the signed
# command line, a clean power-off, all within a time limit. A tampered kernel
# stops at the stub. With svm=on the stub leaves Open Firmware as prom_init
# does and calls UV_ESM, which fails without an ultravisor (plain QEMU): the
# VM stops, no kernel runs. Inputs come from Debian's archive
# (samples/ppc64le/prepare-boot.sh, cached).
source "$(dirname "$0")/lib.sh"
SAMPLES=$SVMKIT_SOURCE_DIR/samples/ppc64le
LIMIT=${SVMKIT_PPC64LE_BOOT_LIMIT:-100} # seconds for one boot, SLOF to power-off
CMDLINE="console=hvc0 svmkit.swiotlb=8M swiotlb=65536,4 svmkit.test=ppc64le-boot"
SVM_CMDLINE="console=hvc0 svm=on svmkit.test=ppc64le-boot-svm"
MARKER="svmkit ppc64le initramfs: hello from /init"

"$SAMPLES/prepare-boot.sh" in >/dev/null
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
powerpc64le-linux-gnu-objcopy -O binary -S in/vmlinux vmlinux.bin
KSIZE=$(stat -c %s vmlinux.bin)

# ---- the image: a pseries ELF that verify and inspect read unchanged ---------
expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd in/initramfs.cpio.gz \
  --cmdline "$CMDLINE" --compress gzip --key k.key -o secure.img
expect_contains "$OUT" "ppc64le image, 5 components"
expect_exit 0 powerpc64le-linux-gnu-readelf -hSW secure.img
expect_contains "$OUT" "Machine: +PowerPC64"
expect_contains "$OUT" "little endian"
expect_contains "$OUT" "Flags: +0x2, abiv2"
expect_contains "$OUT" "Entry point address: +0x4000000"
for section in .text .rodata .kernel:esm_blob .kernel:vmlinux.strip .kernel:initrd .kernel:cmdline; do
  expect_contains "$OUT" " $section +PROGBITS"
done
expect_exit 0 "$SVMKIT" verify secure.img --trusted-key k.pub
expect_exit 0 "$SVMKIT" inspect secure.img --json
expect_contains "$OUT" '"arch": "ppc64le"'
expect_contains "$OUT" "\"unpacked_size\": $KSIZE"

# ---- the boot ------------------------------------------------------------------
boot() { # boot IMAGE LOG [STOP_REGEX]: sets STATUS and ELAPSED
  local start=$SECONDS
  set +e
  SVMKIT_QEMU_TIMEOUT=$LIMIT "$SAMPLES/boot-qemu.sh" "$@"
  STATUS=$?
  set -e
  ELAPSED=$((SECONDS - start))
}

boot secure.img console.log
LOG=$(cat console.log)
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 0 ] || fail "QEMU ended with status $STATUS after ${ELAPSED}s (124: no end within ${LIMIT}s)"
CHECKS=$((CHECKS + 1))
[ "$ELAPSED" -lt "$LIMIT" ] || fail "the boot took ${ELAPSED}s, the limit is ${LIMIT}s"
# The stub, entered by SLOF at the address QEMU loaded the image to.
expect_contains "$LOG" "svmkit stub: firmware-style entry at 0x4400000 \(Open Firmware client interface at 0x[0-9a-f]+\)"
expect_contains "$LOG" "svmkit stub: /chosen: bootargs, linux,esm-blob-start/end 0x[0-9a-f]+\.\.0x[0-9a-f]+"
expect_contains "$LOG" "svmkit stub: initrd $(stat -c %s in/initramfs.cpio.gz) bytes at 0x[0-9a-f]+"
expect_contains "$LOG" "svmkit stub: kernel $KSIZE bytes at 0x0 \(inflated\), digest ok"
expect_contains "$LOG" "svmkit stub: entering the kernel at 0x0 like a zImage \(r3 = initrd 0x[0-9a-f]+, r4 = 0x[0-9a-f]+, r5 = Open Firmware\)"
# The kernel, its /init, the command line and a clean power-off.
expect_contains "$LOG" "Linux version 6\.1\.[0-9]+.*powerpc64le"
expect_contains "$LOG" "$MARKER"
CHECKS=$((CHECKS + 1))
got=$(sed -n 's/^svmkit ppc64le initramfs: \/proc\/cmdline=\[\(.*\)\]\r\{0,1\}$/\1/p' console.log)
[ "$got" = "$CMDLINE" ] || fail "/proc/cmdline is '$got', the signed command line '$CMDLINE'"
expect_contains "$LOG" "reboot: Power down"
CHECKS=$((CHECKS + 1))
if grep -qE "OS terminated|Kernel panic|svmkit stub: error" console.log; then
  fail "the boot did not end cleanly: $(grep -E 'OS terminated|Kernel panic|svmkit stub: error' console.log)"
fi
# QEMU's -kernel passes no initrd and no arguments: nothing to ignore.
CHECKS=$((CHECKS + 1))
if grep -q "svmkit stub: ignoring the loader's" console.log; then
  fail "the stub reports loader input SLOF never gave: $(grep "ignoring the loader's" console.log)"
fi
echo "ppc64le boot: SLOF to power-off in ${ELAPSED}s"

# ---- a tampered kernel stops at the stub ---------------------------------------
# One byte of the compressed kernel, after signing: verify refuses the image;
# booted anyway, the stub finds the damage and returns to Open Firmware.
python3 - secure.img tampered.img <<'PY'
import sys
from elf_sections import section
data = bytearray(open(sys.argv[1], "rb").read())
s = section(data, ".kernel:vmlinux.strip")
data[s.offset + s.size // 2] ^= 0xFF
open(sys.argv[2], "wb").write(data)
PY
expect_exit 1 "$SVMKIT" verify tampered.img --trusted-key k.pub
boot tampered.img tampered.log "svmkit stub: error|Linux version"
LOG=$(cat tampered.log)
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 0 ] || fail "the tampered image neither stopped nor booted within ${LIMIT}s ($STATUS)"
expect_contains "$LOG" "svmkit stub: error: (the kernel's gzip stream does not unpack to its recorded size|the unpacked kernel's digest)"
CHECKS=$((CHECKS + 1))
if grep -qE "Linux version|$MARKER" tampered.log; then fail "the tampered kernel ran"; fi

# ---- svm=on without an ultravisor: UV_ESM fails, the VM stops --------------------
# The firmware-style stub no longer hands the kernel to prom_init (which, in a
# kernel without CONFIG_PPC_SVM, would run it insecure): it instantiates
# RTAS, flattens SLOF's tree, quiesces the firmware and calls UV_ESM, as the
# kexec-style entry does. QEMU has no ultravisor: U_FUNCTION, RTAS os-term.
expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd in/initramfs.cpio.gz \
  --cmdline "$SVM_CMDLINE" --compress none --key k.key -o svm.img
boot svm.img svm.log
LOG=$(cat svm.log)
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 0 ] || fail "svm=on: QEMU ended with status $STATUS (124: not within ${LIMIT}s)"
expect_contains "$LOG" "svmkit stub: svm=on: leaving Open Firmware for UV_ESM, as Linux's prom_init does"
expect_contains "$LOG" "svmkit stub: RTAS instantiated at 0x[0-9a-f]+ \(entry 0x[0-9a-f]+, [0-9]+ bytes\)"
expect_contains "$LOG" "svmkit stub: device tree flattened at 0x[0-9a-f]+: [0-9]+ nodes, [0-9]+ properties, [0-9]+ bytes; boot CPU 0; reserve map 1 entries"
expect_contains "$LOG" "svmkit stub: quiescing Open Firmware; continuing kexec-style \(r3 = fdt 0x[0-9a-f]+, r4 = 0x4400000\)"
# After the firmware is gone the console is the hypervisor's terminal, found
# in the flattened tree, and RTAS the instance recorded in its /rtas.
expect_contains "$LOG" "svmkit stub: entering secure mode: UV_ESM kbase 0x4400000 fdt 0x[0-9a-f]+"
expect_contains "$LOG" "svmkit stub: error: UV_ESM failed: -2 \(U_FUNCTION\); the image was not accepted, stopping"
expect_contains "$LOG" "OS terminated: svmkit stub: stopped the VM after an error"
CHECKS=$((CHECKS + 1))
if grep -qE "Linux version|$MARKER|entering the kernel" svm.log; then
  fail "svm=on: a kernel ran after the failed UV_ESM"
fi
finish
