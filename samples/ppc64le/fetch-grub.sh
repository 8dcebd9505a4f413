#!/usr/bin/env bash
# Debian 12's GRUB for pseries (grub-ieee1275-bin:ppc64el: the
# powerpc-ieee1275 modules grub-install uses on a POWER guest), fetched with
# apt-get download under the private apt state of debian-apt.sh and cached
# in ${SVMKIT_CACHE:-/var/cache/svmkit}/debian-ppc64el/grub. Test-only: the
# GRUB boot test makes a core image from them with the host's grub-mkimage
# (grub-common), as grub-install does.
#
#   samples/ppc64le/fetch-grub.sh      # prints the directory:
#     DIR/powerpc-ieee1275/*.mod ..., DIR/package (name, version)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/debian-apt.sh"
debian_ppc64el_init
out=$debian_dir/grub
if [ -s "$out/package" ]; then
  echo "$out"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debian_ppc64el_download "$work" grub-ieee1275-bin
deb=$(ls "$work"/grub-ieee1275-bin_*.deb)
dpkg-deb -x "$deb" "$work/x"
mkdir -p "$out.tmp"
cp -r "$work/x/usr/lib/grub/powerpc-ieee1275" "$out.tmp/"
dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >"$out.tmp/package"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
