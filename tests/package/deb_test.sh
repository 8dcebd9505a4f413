#!/usr/bin/env bash
# The Debian package, as a distribution and a new user get it:
#  1. a source tarball of the tree (no .git, no build output) builds with
#     `dpkg-buildpackage -us -uc -b` (dh, Unix Makefiles, Release on top of
#     dpkg-buildflags' hardening flags; nocheck, warnings as errors);
#  2. lintian reports no error, and every warning it keeps is listed with its
#     reason in debian/lintian-kept-warnings;
#  3. the .deb installs with apt into a fresh minimal Debian 12 root
#     (debootstrap --variant=minbase, cached under $SVMKIT_CACHE) with no build
#     tree in sight, and there `svmkit --version`, keygen, build (host and
#     ppc64le), verify, inspect --json and a simulated boot of the installed
#     sample kernel with a disk work, a missing helper is named, `man svmkit`
#     and `man svmkit-esm-make` show their pages, and bash-completion loads
#     the completion and completes esm commands and build's options.
#
#   SVMKIT_DEBIAN_KERNEL=vmlinux tests/package/deb_test.sh [WORK_DIR]
#
# Needs root (debootstrap, chroot, mounts), the packages scripts/install-deps.sh
# installs, Debian's archive (apt's own configuration names the mirror;
# SVMKIT_DEBIAN_MIRROR overrides) and a ppc64le vmlinux
# (samples/fetch-debian-kernel.sh). Prints 'N passed, N failed'.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "deb_test: must run as root (debootstrap, chroot, mounts)" >&2
  exit 1
fi
cache=${SVMKIT_CACHE:-/var/cache/svmkit}
: "${SVMKIT_DEBIAN_KERNEL:?SVMKIT_DEBIAN_KERNEL must name a ppc64le vmlinux (samples/fetch-debian-kernel.sh)}"
work=${1:-}
if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/svmkit-deb.XXXXXX)
  keep_work=false
else
  rm -rf "$work" && mkdir -p "$work"
  work=$(cd "$work" && pwd)
  keep_work=true
fi
rootfs=$work/root
cleanup() {
  # Lazily: a process of the root that still holds a mount must not keep it.
  for m in dev/pts dev proc var/cache/apt/archives; do
    mountpoint -q "$rootfs/$m" 2>/dev/null && umount -l "$rootfs/$m"
  done
  $keep_work || rm -rf "$work"
}
trap cleanup EXIT
phase() { echo "deb_test: $1 (at ${SECONDS}s)"; }
passed=0
failed=0
check() { # check WHAT CMD...: CMD must succeed
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what" >&2; fi
}
contains() { grep -qE -- "$2" <<<"$1"; }

# ---- 1. the package from a source tarball ---------------------------------------
version=$(cd "$src" && dpkg-parsechangelog -S Version)
cmake_version=$(sed -n 's/^project(svmkit VERSION \([0-9.]*\) .*/\1/p' "$src/CMakeLists.txt")
check "debian/changelog's version $version is CMakeLists.txt's $cmake_version" \
  test "$version" = "$cmake_version"
phase "source tarball svmkit_$version.tar.xz (no .git, no build output)"
tar -C "$src" --exclude=./.git --exclude='./build*' --exclude='./obj-*' --exclude=./.cache \
  --exclude=./samples/cache --exclude=./debian/.debhelper --exclude=./debian/svmkit \
  --exclude=./debian/files --exclude='./debian/*.substvars' \
  --exclude=./debian/debhelper-build-stamp --transform "s,^[.],svmkit-$version," \
  -cJf "$work/svmkit_$version.tar.xz" .
tar -C "$work" -xJf "$work/svmkit_$version.tar.xz"
check "the tarball has no .git" test ! -e "$work/svmkit-$version/.git"

phase "dpkg-buildpackage -us -uc -b"
start=$SECONDS
if ! (cd "$work/svmkit-$version" &&
      DEB_BUILD_PROFILES=nocheck DEB_BUILD_OPTIONS="nocheck svmkit-werror parallel=2" \
        dpkg-buildpackage -us -uc -b) \
      >"$work/build.log" 2>&1; then
  tail -60 "$work/build.log" >&2
  echo "deb_test: dpkg-buildpackage failed (log: $work/build.log)" >&2
  exit 1
fi
phase "package built in $((SECONDS - start)) s"
deb=$work/svmkit_${version}_amd64.deb
check "dpkg-buildpackage made $deb" test -s "$deb"
grep -q "Unix Makefiles\|/usr/bin/make" "$work/build.log" ||
  { failed=$((failed + 1)); echo "FAIL: the package was not built with Makefiles" >&2; }
contents=$(dpkg-deb -c "$deb")
for f in usr/bin/svmkit usr/libexec/svmkit/svmkit-hypervisor usr/libexec/svmkit/svmkit-vcpu \
         usr/libexec/svmkit/svmkit-vhost-blk \
         usr/libexec/svmkit/svmkit-boot-loader.elf usr/libexec/svmkit/sample-kernel.elf \
         usr/share/doc/svmkit/copyright usr/share/doc/svmkit/platform.md \
         usr/share/man/man1/svmkit.1 usr/share/man/man1/svmkit-build.1 \
         usr/share/man/man1/svmkit-esm-make.1 usr/share/bash-completion/completions/svmkit; do
  check "the package holds /$f" contains "$contents" " [.]/$f(\.gz)?$"
done
# Debian's hardening reached the host programs (bind now, PIE, fortify).
check "svmkit is linked with -z now" contains "$(readelf -d "$work/svmkit-$version/debian/svmkit/usr/bin/svmkit")" "BIND_NOW|FLAGS_1.*NOW"

# ---- 2. lintian --------------------------------------------------------------------
phase "lintian"
lintian --fail-on none --tag-display-limit 0 "$work"/svmkit_"${version}"_amd64.changes \
  >"$work/lintian.log" 2>&1 || true
cat "$work/lintian.log"
errors=$(grep -c '^E: ' "$work/lintian.log" || true)
check "lintian reports no errors ($errors)" test "$errors" -eq 0
check "lintian finds the man pages (no no-manual-page)" \
  test "$(grep -c 'no-manual-page' "$work/lintian.log" || true)" -eq 0
kept=$(sed -e 's/#.*//' -e '/^ *$/d' "$src/debian/lintian-kept-warnings" | awk '{print $1}')
for tag in $(sed -n 's/^W: [^:]*: \([^ ]*\).*/\1/p' "$work/lintian.log" | sort -u); do
  check "lintian warning $tag is listed in debian/lintian-kept-warnings" grep -qx -- "$tag" <<<"$kept"
done

# ---- 3. a fresh minimal Debian 12 root -------------------------------------------------
mirror=${SVMKIT_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  # The first Debian bookworm source of apt's own configuration.
  mirror=$(awk '/^URIs:/ {u = $2} /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == "bookworm") print u}
                /^$/ {u = ""}' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) bookworm main.*/\2/p' \
                                 /etc/apt/sources.list 2>/dev/null | head -1)
fi
[ -n "$mirror" ] || { echo "deb_test: no bookworm mirror in apt's sources; set SVMKIT_DEBIAN_MIRROR" >&2; exit 1; }
base=$cache/debootstrap/bookworm-minbase.tar
mkdir -p "$cache/debootstrap/archives/partial"
if [ ! -s "$base" ]; then
  phase "debootstrap --variant=minbase bookworm (once; cached in $base)"
  debootstrap --variant=minbase bookworm "$work/bootstrap" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -30 "$work/debootstrap.log" >&2; exit 1; }
  rm -f "$work"/bootstrap/var/cache/apt/archives/*.deb
  tar -C "$work/bootstrap" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$work/bootstrap"
fi
phase "the minimal root"
mkdir "$rootfs"
tar -C "$rootfs" -xf "$base"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"
mount --bind /dev "$rootfs/dev"
mount --bind /dev/pts "$rootfs/dev/pts"
mount --bind "$cache/debootstrap/archives" "$rootfs/var/cache/apt/archives"
in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
check "the root has no svmkit yet" test ! -e "$rootfs/usr/bin/svmkit"
check "the root has no git" test ! -e "$rootfs/usr/bin/git"
cp "$deb" "$rootfs/tmp/"
phase "apt-get install ./$(basename "$deb") in the root"
if ! in_root sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
       apt-get install -y -qq --no-install-recommends /tmp/$(basename "$deb") man-db bash-completion" \
       >"$work/apt.log" 2>&1; then
  tail -30 "$work/apt.log" >&2
  echo "deb_test: installing the package in the root failed" >&2
  exit 1
fi
cp "$SVMKIT_DEBIAN_KERNEL" "$rootfs/tmp/vmlinux"

phase "svmkit in the root"
run() { # run CMD...: in the root, in /tmp; output in $OUT
  set +e
  OUT=$(in_root sh -c "cd /tmp && $*" 2>&1)
  RC=$?
  set -e
}
run svmkit --version
check "svmkit --version is 'svmkit $version' ($OUT)" test "$OUT" = "svmkit $version"
run svmkit keygen --algo ed25519 -o k.key --public-output k.pub
check "keygen ($OUT)" test "$RC" -eq 0
printf 'sample initrd\n' >"$rootfs/tmp/initrd"
run svmkit build --kernel /usr/libexec/svmkit/sample-kernel.elf --initrd initrd \
  --cmdline "'console=hvc0 svm=on svmkit.swiotlb=8M svmkit.io=16'" --compress gzip --key k.key -o host.img
check "build (host) ($OUT)" test "$RC" -eq 0
run svmkit build --arch ppc64le --kernel vmlinux --initrd initrd --cmdline "'console=hvc0 svm=on'" \
  --compress gzip --key k.key -o ppc64le.img
check "build --arch ppc64le ($OUT)" test "$RC" -eq 0
for img in host.img ppc64le.img; do
  run svmkit verify $img --trusted-key k.pub
  check "verify $img ($OUT)" test "$RC" -eq 0
done
run svmkit inspect --json ppc64le.img
check "inspect --json ($RC)" test "$RC" -eq 0
check "inspect --json prints JSON naming ppc64le" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert "ppc64le" in json.dumps(d), d' "$OUT"
run "truncate -s 128M disk.img && svmkit boot host.img --trusted-key k.pub --disk disk.img"
check "boot with a disk ($RC)" test "$RC" -eq 0
check "the sample kernel ran secure" contains "$OUT" "svmkit sample kernel: running secure"
check "its disk I/O verified" contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
[ "$failed" -eq 0 ] || echo "$OUT" >&2
mv "$rootfs/usr/libexec/svmkit/svmkit-hypervisor" "$rootfs/tmp/aside"
run svmkit boot host.img --trusted-key k.pub --disk disk.img
check "a missing helper is named ($RC: $OUT)" contains "$OUT" \
  "helper program svmkit-hypervisor is missing: /usr/libexec/svmkit/svmkit-hypervisor does not exist"
mv "$rootfs/tmp/aside" "$rootfs/usr/libexec/svmkit/svmkit-hypervisor"

phase "man pages and completion in the root"
run MANWIDTH=80 man -P cat svmkit
check "man svmkit ($RC)" test "$RC" -eq 0
check "man svmkit lists the commands' pages" contains "$OUT" "svmkit-esm\(1\)"
check "man svmkit has the exit codes" contains "$OUT" "guest-exit-status"
run MANWIDTH=80 man -P cat svmkit-esm-make
check "man svmkit-esm-make ($RC)" test "$RC" -eq 0
check "man svmkit-esm-make lists -y, --config" contains "$OUT" "-y, --config"
cat >"$rootfs/tmp/complete.sh" <<'SH'
source /usr/share/bash-completion/bash_completion
__load_completion svmkit || exit 1
comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _svmkit; echo "${COMPREPLY[*]}"; }
comp svmkit esm ""
comp svmkit build --ke
SH
run bash /tmp/complete.sh
check "bash-completion loads svmkit's completion ($RC)" test "$RC" -eq 0
check "it completes the esm commands" contains "$OUT" "^make display authorize revoke extract digest add$"
check "it completes build's options" contains "$OUT" "^--kernel --kernel-load-addr --key "

phase "done"
echo "deb_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
