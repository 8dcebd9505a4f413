#!/usr/bin/env bash
# Inputs for booting a secure image on real POWER under QEMU: Debian 12's
# ppc64le kernel (../fetch-debian-kernel.sh) and an initramfs built around
# Debian's busybox-static for ppc64el, whose /init (init.sh) prints a marker
# and /proc/cmdline and powers off. Both packages come from Debian's archive
# with apt-get download under a private apt state, cached in
# ${SVMKIT_CACHE:-/var/cache/svmkit}/debian-ppc64el.
#
#   samples/ppc64le/prepare-boot.sh OUTDIR [EXTRA...]
#     writes OUTDIR/vmlinux (a link to the cached kernel) and
#     OUTDIR/initramfs.cpio.gz; EXTRA entries (make-cpio.py syntax, e.g.
#     file:kexec-next=helper:755) are added to the initramfs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: prepare-boot.sh OUTDIR [EXTRA...]}
shift
source "$here/debian-apt.sh"
debian_ppc64el_init

kernel=$("$here/../fetch-debian-kernel.sh")

busybox=$debian_dir/busybox
if [ ! -s "$busybox" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  debian_ppc64el_download "$work" busybox-static
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/x"
  dpkg-deb -W --showformat='${Package} ${Version}\n' "$work"/busybox-static_*.deb \
    > "$debian_dir/busybox.package"
  cp "$work/x/bin/busybox" "$busybox.tmp"
  mv "$busybox.tmp" "$busybox"
fi

mkdir -p "$out"
ln -sf "$kernel" "$out/vmlinux"
python3 "$here/make-cpio.py" "$out/initramfs.cpio" \
  dir:bin dir:sbin dir:usr dir:usr/bin dir:usr/sbin dir:dev dir:proc dir:sys \
  char:dev/console=5,1 \
  file:bin/busybox="$busybox":755 file:init="$here/init.sh":755 "$@"
gzip -n -9 -f "$out/initramfs.cpio"
echo "$out"
