#!/usr/bin/env bash
# The first stage of `svmkit boot --kexec IMAGE` for ppc64le images: a
# normal Debian guest whose /init kexecs the image with Debian's own
# kexec-tools (kexec_load; no placement options). Debian 12's ppc64le kernel
# and an initramfs with busybox-static and kexec-tools 2.0.25
# (prepare-boot.sh, fetch-kexec-tools.sh; both cached).
#
#   samples/ppc64le/prepare-first-stage.sh OUTDIR
#     writes OUTDIR/vmlinux and OUTDIR/initramfs.cpio.gz; then
#   svmkit boot --kexec IMAGE --first-stage-kernel OUTDIR/vmlinux \
#     --first-stage-initrd OUTDIR/initramfs.cpio.gz --trusted-key KEY.pub
#
# svmkit appends the image to the initramfs as /svmkit-kexec.img.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: prepare-first-stage.sh OUTDIR}
kx=$("$here/fetch-kexec-tools.sh")
mkdir -p "$out"
printf '%s\n' '/sbin/kexec -l /svmkit-kexec.img && /sbin/kexec -e' >"$out/first-stage.sh"
"$here/prepare-boot.sh" "$out" dir:lib dir:lib/powerpc64le-linux-gnu dir:lib64 \
  file:sbin/kexec="$kx/kexec":755 file:lib64/ld64.so.2="$kx/ld64.so.2":755 \
  file:lib/powerpc64le-linux-gnu/libc.so.6="$kx/libc.so.6":755 \
  file:next.sh="$out/first-stage.sh" >/dev/null
echo "$out"
