#!/usr/bin/env bash
# Real POWER, kexec-style: a guest booted normally (the Debian ppc64le kernel
# through a secure image's firmware-style path on QEMU pseries) kexecs a
# second secure image, whose stub is then entered with r3 = the device tree,
# r4 = the image base, r5 = 0 (samples/ppc64le/kexec-load.c; the kernel has
# CONFIG_KEXEC).
#   - without svm=on on the second image's command line, the stub boots the
#     kernel insecure from a device tree of its own and says so: the second
#     kernel runs /init with exactly the signed command line and powers off;
#   - with svm=on, the stub calls UV_ESM with `sc 2`. QEMU has no ultravisor:
#     the call fails (U_FUNCTION), and the stub stops the VM through RTAS
#     ibm,os-term instead of booting on insecure.
source "$(dirname "$0")/lib.sh"
SAMPLES=$SVMKIT_SOURCE_DIR/samples/ppc64le
LIMIT=${SVMKIT_PPC64LE_BOOT_LIMIT:-110} # seconds for both boots of one scenario
MARKER="svmkit ppc64le initramfs: hello from /init"

"$SAMPLES/prepare-boot.sh" in >/dev/null
"$SVMKIT" keygen --algo ecdsa-p256 -o k.key --public-output k.pub >/dev/null
powerpc64le-linux-gnu-gcc -static -O2 -Wall -Wextra -Werror -o kexec-load \
  "$SAMPLES/kexec-load.c"

# scenario NAME CMDLINE: the image to kexec (with CMDLINE), a first image whose
# initramfs kexecs it, and one boot; the console in NAME.log, QEMU's status in
# STATUS.
scenario() {
  local name=$1 cmdline=$2
  expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd in/initramfs.cpio.gz \
    --cmdline "$cmdline" --compress gzip --key k.key -o $name-next.img
  "$SAMPLES/prepare-boot.sh" $name-in file:bin/kexec-load=kexec-load:755 \
    file:next.img=$name-next.img >/dev/null
  expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd $name-in/initramfs.cpio.gz \
    --cmdline "console=hvc0 svmkit.test=kexec-loader" --compress gzip --key k.key -o $name-first.img
  local start=$SECONDS
  set +e
  SVMKIT_QEMU_TIMEOUT=$LIMIT "$SAMPLES/boot-qemu.sh" $name-first.img $name.log
  STATUS=$?
  set -e
  echo "ppc64le kexec ($name): both boots in $((SECONDS - start))s"
  LOG=$(cat $name.log)
  # The first boot, up to the kexec.
  expect_contains "$LOG" "svmkit stub: firmware-style entry at 0x4400000"
  expect_contains "$LOG" "svmkit ppc64le initramfs: /proc/cmdline=\[console=hvc0 svmkit.test=kexec-loader\]"
  expect_contains "$LOG" "kexec-load: /next.img loaded at 0x4000000 \(device tree at 0x3e00000\)"
  expect_contains "$LOG" "svmkit stub: kexec-style entry at 0x4000000 \(r3 = fdt 0x3e00000\)"
}

# ---- without svm=on: an insecure boot, said so -------------------------------
CMDLINE="console=hvc0 svmkit.test=kexec-target svmkit.swiotlb=4M"
scenario insecure "$CMDLINE"
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 0 ] || fail "QEMU ended with status $STATUS (124: not within ${LIMIT}s)"
expect_contains "$LOG" "svmkit stub: svm=on is not on the signed command line: booting without secure mode; nothing verified this image"
expect_contains "$LOG" "svmkit stub: kernel [0-9]+ bytes at 0x0 \(inflated\), digest ok"
expect_contains "$LOG" "svmkit stub: initrd $(stat -c %s in/initramfs.cpio.gz) bytes (in place )?at 0x[0-9a-f]+"
expect_contains "$LOG" "svmkit stub: entering the kernel at 0x0 \(r3 = fdt 0x[0-9a-f]+\)"
CHECKS=$((CHECKS + 1))
[ "$(grep -c 'Linux version 6\.1' insecure.log)" -ge 3 ] || fail "no second kernel banner"
CHECKS=$((CHECKS + 1))
got=$(sed -n 's/^svmkit ppc64le initramfs: \/proc\/cmdline=\[\(.*\)\]\r\{0,1\}$/\1/p' insecure.log | tail -1)
[ "$got" = "$CMDLINE" ] || fail "the kexec'd kernel's /proc/cmdline is '$got', not '$CMDLINE'"
expect_contains "$(tail -5 insecure.log)" "reboot: Power down"
CHECKS=$((CHECKS + 1))
if grep -qE "UV_ESM|OS terminated|Kernel panic|svmkit stub: error" insecure.log; then
  fail "the insecure kexec boot did not end cleanly"
fi

# ---- with svm=on and no ultravisor: UV_ESM fails, the VM stops --------------------
scenario secure "console=hvc0 svm=on svmkit.test=kexec-target"
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 0 ] || fail "QEMU ended with status $STATUS (124: not within ${LIMIT}s)"
expect_contains "$LOG" "svmkit stub: entering secure mode: UV_ESM kbase 0x4000000 fdt 0x[0-9a-f]+"
expect_contains "$LOG" "svmkit stub: error: UV_ESM failed: -2 \(U_FUNCTION\); the image was not accepted, stopping"
expect_contains "$LOG" "OS terminated: svmkit stub: stopped the VM after an error"
CHECKS=$((CHECKS + 1))
n=$(grep -c "$MARKER" secure.log || true)
[ "$n" -eq 1 ] || fail "a kernel ran after the refused UV_ESM ($n /init markers)"
CHECKS=$((CHECKS + 1))
if grep -qE "svmkit stub: (kernel|entering the kernel at 0x0 \(r3)" <(sed -n '/kexec-style entry/,$p' secure.log); then
  fail "the stub went on after UV_ESM failed"
fi
finish
