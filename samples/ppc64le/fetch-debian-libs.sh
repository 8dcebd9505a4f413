#!/usr/bin/env bash
# Fetches Debian 12's static zlib and libfdt for ppc64el (packages zlib1g-dev
# and libfdt-dev, the same versions the host build links) and caches their
# headers and archives; prints the directory, which holds include/ and lib/.
# The ppc64le boot stub links inflate and libfdt from them (stub/CMakeLists.txt
# runs this script at configure time when the cache is empty).
#
#   samples/ppc64le/fetch-debian-libs.sh     # prints e.g. /var/cache/svmkit/debian-ppc64el/libs
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/debian-apt.sh"
debian_ppc64el_init
out=$debian_dir/libs
if [ -s "$out/lib/libz.a" ] && [ -s "$out/lib/libfdt.a" ] && [ -s "$out/include/libfdt.h" ]; then
  echo "$out"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debian_ppc64el_download "$work" zlib1g-dev libfdt-dev
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$work/x"
done
mkdir -p "$work/libs/lib" "$work/libs/include"
cp "$work"/x/usr/lib/powerpc64le-linux-gnu/libz.a "$work"/x/usr/lib/powerpc64le-linux-gnu/libfdt.a \
   "$work/libs/lib/"
cp "$work"/x/usr/include/zlib.h "$work"/x/usr/include/zconf.h "$work"/x/usr/include/libfdt.h \
   "$work"/x/usr/include/libfdt_env.h "$work"/x/usr/include/fdt.h "$work/libs/include/"
for deb in "$work"/*.deb; do
  dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"
done > "$work/libs/packages"
rm -rf "$out"
mv "$work/libs" "$out"
echo "$out"
