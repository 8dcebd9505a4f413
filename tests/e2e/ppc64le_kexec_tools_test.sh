#!/usr/bin/env bash
# Real POWER, Debian's own kexec-tools (2.0.25, unmodified; kexec_load, as
# Debian's kernels have no CONFIG_KEXEC_FILE) loads signed secure images from
# a running Debian guest, the way a user runs it: no placement options.
# kexec-tools moves PT_LOAD[0] alone to the lowest free RAM and enters its
# first byte (r3 = its device tree, r4 = that address, r5 = 0); a version 2
# image is one PT_LOAD, so the whole image moves together and the stub runs
# there (docs/ppc64le.md). Two QEMU runs, each a firmware-style first boot
# whose /init runs kexec (samples/ppc64le/init.sh, /next.sh):
#   1. `kexec -l A; kexec -e`, A = gzip kernel: the stub runs where kexec put
#      it, on a stack the device tree shows free, and boots the kernel to
#      /init with exactly the signed command line. A's /init then kexecs T,
#      the twin of B (below) whose stored kernel changed after signing: the
#      stub stops the VM with its reason, T's kernel never runs.
#   2. `kexec -l B --initrd F --append ARGS; kexec -e`, B = stored kernel:
#      the loader's initrd and arguments are ignored (said on the console),
#      the kernel gets the signed ones. B's /init then kexecs S, whose signed
#      command line has svm=on: the stub calls UV_ESM for the image where
#      kexec-tools put it; QEMU has no ultravisor, so it fails and the stub
#      stops the VM.
source "$(dirname "$0")/lib.sh"
SAMPLES=$SVMKIT_SOURCE_DIR/samples/ppc64le
LIMIT=${SVMKIT_PPC64LE_BOOT_LIMIT:-90} # seconds for one QEMU run (both boots)
MARKER="svmkit ppc64le initramfs: hello from /init"

"$SAMPLES/prepare-boot.sh" in >/dev/null
KX=$("$SAMPLES/fetch-kexec-tools.sh")
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
powerpc64le-linux-gnu-objcopy -O binary -S in/vmlinux vmlinux.bin
KSIZE=$(stat -c %s vmlinux.bin)
rm vmlinux.bin
# Debian's kexec in an initramfs: /sbin/kexec, its loader and libc.
KEXEC=(dir:lib dir:lib/powerpc64le-linux-gnu dir:lib64 file:sbin/kexec="$KX/kexec":755
  file:lib64/ld64.so.2="$KX/ld64.so.2":755
  file:lib/powerpc64le-linux-gnu/libc.so.6="$KX/libc.so.6":755)

image() { # image OUT COMPRESS INITRD CMDLINE
  expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd "$3" --cmdline "$4" \
    --compress "$2" --key k.key -o "$1"
}
initramfs() { # initramfs DIR NEXT.SH [EXTRA...]: DIR/initramfs.cpio.gz running NEXT.SH
  local dir=$1 next=$2
  shift 2
  "$SAMPLES/prepare-boot.sh" "$dir" "${KEXEC[@]}" file:next.sh="$next" "$@" >/dev/null
}
run() { # run NAME FIRST_INITRD: a first image booting FIRST_INITRD; NAME.log, STATUS
  image "$1-first.img" gzip "$2" "console=hvc0 svmkit.test=kexec-tools-first"
  local start=$SECONDS
  set +e
  SVMKIT_QEMU_TIMEOUT=$LIMIT "$SAMPLES/boot-qemu.sh" "$1-first.img" "$1.log"
  STATUS=$?
  set -e
  ELAPSED=$((SECONDS - start))
  echo "ppc64le kexec-tools ($1): QEMU run in ${ELAPSED}s"
  LOG=$(cat "$1.log")
  CHECKS=$((CHECKS + 1))
  [ "$STATUS" -eq 0 ] || fail "$1: QEMU ended with status $STATUS after ${ELAPSED}s (124: not within ${LIMIT}s)"
  expect_contains "$LOG" "svmkit stub: firmware-style entry at 0x4400000"
  expect_contains "$LOG" "svmkit ppc64le initramfs: /proc/cmdline=\[console=hvc0 svmkit.test=kexec-tools-first\]"
}
# The command line the kernel reported, for the boot whose marker is the Nth.
cmdline_of() { sed -n 's/^svmkit ppc64le initramfs: \/proc\/cmdline=\[\(.*\)\]\r\{0,1\}$/\1/p' "$1" | sed -n "$2p"; }

echo '/sbin/kexec -l /next.img && /sbin/kexec -e' >plain.sh
# ---- B (booted in run 2) and its twin whose kernel changed after signing (run 1) --
CMD_B="console=hvc0 svmkit.test=kexec-tools-b"
cat >options.sh <<'SH'
/sbin/kexec -d -l /next.img --initrd /loader-initrd.img --append "console=hvc0 loader.append=ignored" &&
  /sbin/kexec -e
SH
# The loader's initrd has no /init: a kernel that used it would panic.
printf 'not an initramfs\n' >loader-initrd.img
# B's /init then runs `kexec -l S; kexec -e`, S asking for secure mode.
image s.img gzip in/initramfs.cpio.gz "console=hvc0 svm=on svmkit.test=kexec-tools-s"
initramfs b-in plain.sh file:next.img=s.img
image b.img none b-in/initramfs.cpio.gz "$CMD_B"
expect_exit 0 "$SVMKIT" verify b.img --trusted-key k.pub
tamper_kernel b.img tampered.img
expect_exit 1 "$SVMKIT" verify tampered.img --trusted-key k.pub

# ---- run 1: plain `kexec -l A; kexec -e`, then A kexecs B's tampered twin -----
CMD_A="console=hvc0 svmkit.test=kexec-tools-a"
initramfs a-in plain.sh file:next.img=tampered.img
image a.img gzip a-in/initramfs.cpio.gz "$CMD_A"
initramfs first1-in plain.sh file:next.img=a.img
run plain first1-in/initramfs.cpio.gz
# A, where kexec-tools put it: not its link address (kexec-tools moved it to
# the lowest free RAM), and the stub ran there.
kbase=$(sed -n 's/^svmkit stub: kexec-style entry at \(0x[0-9a-f]*\) .*/\1/p' plain.log | head -1)
CHECKS=$((CHECKS + 1))
[ -n "$kbase" ] && [ "$kbase" != 0x4000000 ] ||
  fail "A's stub ran at '$kbase': kexec-tools did not move it, or it did not run"
expect_contains "$LOG" "svmkit stub: stack 0x[0-9a-f]+\.\.0x[0-9a-f]+: free in the device tree"
expect_contains "$LOG" "svmkit stub: svm=on is not on the signed command line: booting without secure mode; nothing verified this image"
expect_contains "$LOG" "svmkit stub: kernel $KSIZE bytes at 0x0 \(inflated\), digest ok"
CHECKS=$((CHECKS + 1))
got=$(cmdline_of plain.log 2)
[ "$got" = "$CMD_A" ] || fail "A's /proc/cmdline is '$got', not the signed '$CMD_A'"
# Then T: stopped by the stub, with its reason; no third kernel.
expect_contains "$LOG" "svmkit stub: error: (the kernel's gzip stream does not unpack to its recorded size|the unpacked kernel's digest)"
CHECKS=$((CHECKS + 1))
n=$(grep -c "$MARKER" plain.log || true)
[ "$n" -eq 2 ] || fail "expected the first boot's and A's /init only, saw $n"
CHECKS=$((CHECKS + 1))
if sed -n '/svmkit stub: error: /,$p' plain.log | grep -qE "Linux version|entering the kernel"; then
  fail "the tampered kernel was entered"
fi

# ---- run 2: `kexec -l B --initrd F --append ARGS`, B = T's untampered twin ------
initramfs first2-in options.sh file:next.img=b.img file:loader-initrd.img=loader-initrd.img
run options first2-in/initramfs.cpio.gz
expect_contains "$LOG" "svmkit stub: ignoring the loader's command line \[console=hvc0 loader.append=ignored ?\]: the kernel gets the signed one"
expect_contains "$LOG" "svmkit stub: ignoring the loader's initrd 0x[0-9a-f]+\.\.0x[0-9a-f]+: the kernel gets the signed one"
expect_contains "$LOG" "svmkit stub: kernel $KSIZE bytes at 0x0 \(copied\), digest ok"
# kexec -d lists its segments: the image (segment 0, moved), the purgatory,
# the loader's initrd, the device tree. The stub ran at segment 0, and its
# stack lies outside every segment, although the tree's reserve map lists
# only the tree and the initrd: it took the stack from free memory.
segments=$(sed -n '1,/svmkit stub: kexec-style entry/p' options.log |
  sed -n 's/^segment\[\([0-9]*\)\]\.\(mem\|memsz\) *[:=] *\(0x[0-9a-f]*\).*/\1 \2 \3/p')
seg0=$(awk '$1 == 0 && $2 == "mem" { print $3; exit }' <<<"$segments")
kbase=$(sed -n 's/^svmkit stub: kexec-style entry at \(0x[0-9a-f]*\) .*/\1/p' options.log | head -1)
CHECKS=$((CHECKS + 1))
[ -n "$seg0" ] && [ "$((seg0))" -eq "$((kbase))" ] ||
  fail "the stub ran at '$kbase', kexec-tools put segment 0 at '$seg0'"
read -r s0 s1 < <(sed -n 's/^svmkit stub: stack \(0x[0-9a-f]*\)\.\.\(0x[0-9a-f]*\): .*/\1 \2/p' options.log | head -1)
nseg=0
while read -r mem size; do
  nseg=$((nseg + 1))
  CHECKS=$((CHECKS + 1))
  if [ $((s0)) -lt $((mem + size)) ] && [ $((mem)) -lt $((s1)) ]; then
    fail "the stub's stack $s0..$s1 overlaps kexec-tools' segment at $mem ($size bytes)"
  fi
done < <(awk '$2 == "mem" { m[$1] = $3 } $2 == "memsz" { z[$1] = $3 }
  END { for (i in m) print m[i], z[i] }' <<<"$segments")
CHECKS=$((CHECKS + 1))
[ "$nseg" -ge 4 ] || fail "kexec -d listed $nseg segments (image, purgatory, initrd, tree expected)"
CHECKS=$((CHECKS + 1))
got=$(cmdline_of options.log 2)
[ "$got" = "$CMD_B" ] || fail "B's /proc/cmdline is '$got', not the signed '$CMD_B'"
CHECKS=$((CHECKS + 1))
if sed -n '1,/svmkit stub: entering secure mode/p' options.log | grep -qE "Kernel panic|svmkit stub: error"; then
  fail "B's boot did not go cleanly: $(grep -E 'Kernel panic|svmkit stub: error' options.log)"
fi
# S (svm=on), where kexec-tools put it: the stub asks the ultravisor to
# verify the image there. QEMU has none: UV_ESM fails and the stub stops the
# VM rather than boot insecure.
kbase=$(sed -n 's/^svmkit stub: kexec-style entry at \(0x[0-9a-f]*\) .*/\1/p' options.log | sed -n 2p)
CHECKS=$((CHECKS + 1))
[ -n "$kbase" ] || fail "S's stub did not run"
expect_contains "$LOG" "svmkit stub: entering secure mode: UV_ESM kbase $kbase fdt 0x[0-9a-f]+"
expect_contains "$LOG" "svmkit stub: error: UV_ESM failed: -2 \(U_FUNCTION\); the image was not accepted, stopping"
expect_contains "$LOG" "OS terminated: svmkit stub: stopped the VM after an error"
CHECKS=$((CHECKS + 1))
n=$(grep -c "$MARKER" options.log || true)
[ "$n" -eq 2 ] || fail "expected the first boot's and B's /init only, saw $n"
finish
