#!/usr/bin/env bash
# Debian 12's kexec-tools for ppc64el (the `kexec` a user runs in a pseries
# guest) and the two files of libc6 it needs (ld64.so.2, libc.so.6), fetched
# with apt-get download under the private apt state of debian-apt.sh and
# cached in ${SVMKIT_CACHE:-/var/cache/svmkit}/debian-ppc64el/kexec-tools.
# Test-only: the kexec-tools boot test puts them into an initramfs.
#
#   samples/ppc64le/fetch-kexec-tools.sh      # prints the directory:
#     DIR/kexec, DIR/ld64.so.2, DIR/libc.so.6, DIR/packages (names, versions)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/debian-apt.sh"
debian_ppc64el_init
out=$debian_dir/kexec-tools
if [ -s "$out/packages" ]; then
  echo "$out"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debian_ppc64el_download "$work" kexec-tools libc6
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$work/x"
  dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >>"$work/packages"
done
mkdir -p "$out.tmp"
cp "$work/x/sbin/kexec" "$work/x/lib/powerpc64le-linux-gnu/ld64.so.2" \
  "$work/x/lib/powerpc64le-linux-gnu/libc.so.6" "$work/packages" "$out.tmp/"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
