#!/usr/bin/env bash
# Fetches Debian 12's ppc64le Linux kernel (an ELF vmlinux) from Debian's
# archive with a private apt state, caches it, and prints the vmlinux path.
#
#   samples/fetch-debian-kernel.sh            # prints e.g. /var/cache/svmkit/debian-ppc64el/vmlinux
#   SVMKIT_CACHE=DIR samples/fetch-debian-kernel.sh
set -euo pipefail

cache=${SVMKIT_CACHE:-/var/cache/svmkit}
dir=$cache/debian-ppc64el
out=$dir/vmlinux
if [ -s "$out" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$dir/lists/partial" "$dir/archives/partial"
apt_opts=(
  -o APT::Architecture=ppc64el -o APT::Architectures=ppc64el
  -o Dir::State::Lists="$dir/lists" -o Dir::State::Status=/dev/null
  -o Dir::Cache="$dir" -o Dir::Cache::archives="$dir/archives"
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root
)
# A mirror in mid-sync can fail one index (seen with bookworm-security); the
# main bookworm index is enough, so only the lookup below decides.
apt-get "${apt_opts[@]}" update -qq >&2 || echo "fetch-debian-kernel: apt-get update reported errors; continuing" >&2
meta=linux-image-powerpc64le
pkg=$(apt-cache "${apt_opts[@]}" depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-powerpc64le\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
  echo "fetch-debian-kernel: cannot resolve $meta in Debian's ppc64el index" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${apt_opts[@]}" download "$pkg" >&2)
dpkg-deb -x "$work"/*.deb "$work/x"
vmlinux=$(ls "$work"/x/boot/vmlinux-* | head -1)
[ -s "$vmlinux" ] || { echo "fetch-debian-kernel: no vmlinux in $pkg" >&2; exit 1; }
cp "$vmlinux" "$out.tmp"
echo "$pkg" > "$dir/package"
mv "$out.tmp" "$out"
echo "$out"
