#!/usr/bin/env bash
# Installs what svmkit needs to build and test on Debian 12, and nothing that
# is already there. Idempotent; used by both README commands and by .ci/run.
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ pkg-config
  libelf-dev libssl-dev libcli11-dev zlib1g-dev doctest-dev libfdt-dev libfmt-dev
  libyaml-cpp-dev nlohmann-json3-dev libp11-kit-dev
  # the ppc64le stub: the cross compiler and Debian's ppc64el zlib (multiarch,
  # below); libfdt-dev:ppc64el is unpacked instead (ppc64el_libfdt)
  g++-powerpc64le-linux-gnu binutils-powerpc64le-linux-gnu zlib1g-dev:ppc64el
  # the Debian package (debian/) and its test (tests/package)
  debhelper lintian debootstrap fakeroot xz-utils
  # tools the tests and benchmarks compare against or check with
  openssl elfutils binutils device-tree-compiler u-boot-tools cpio time python3
  # the man page and completion tests (tests/e2e/man_pages_test.sh, bash_completion_test.sh)
  groff-base man-db bash-completion
  # GPT checkers for svmkit mkdisk disks (tests/e2e/loader_cli_test.sh)
  fdisk gdisk
  # libFuzzer with ASan+UBSan (scripts/fuzz.sh)
  clang-14 libclang-rt-14-dev
  # static analysis (scripts/lint.sh)
  clang-tidy-14 cppcheck
  # PKCS#11 tokens for the signing-pipeline tests
  softhsm2 opensc libengine-pkcs11-openssl
  # QEMU: qemu-storage-daemon (vhost-user-blk back end) and pseries boots
  qemu-system-common qemu-utils qemu-system-ppc
  # grub-mkimage (any target, given Debian's ppc64el GRUB modules) for the
  # GRUB boot test's core image
  grub-common
)

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root to $1" >&2
    exit 1
  fi
}
export DEBIAN_FRONTEND=noninteractive

# ppc64el packages come through Debian's multiarch.
updated=false
if ! dpkg --print-foreign-architectures | grep -qx ppc64el; then
  need_root "add the ppc64el architecture"
  echo "install-deps: dpkg --add-architecture ppc64el"
  dpkg --add-architecture ppc64el
  apt-get update -qq
  updated=true
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: every package is installed"
else
  echo "install-deps: installing ${missing[*]}"
  need_root "install packages"
  $updated || apt-get update -qq
  updated=true
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# libfdt-dev is not Multi-Arch: same in Debian 12: libfdt-dev:ppc64el would
# replace the host's libfdt-dev. Its .deb, the host's version, is unpacked
# under the cache instead, where guest/CMakeLists.txt looks (the stub links
# its libfdt.a; the headers are the host's, the same files).
ppc64el_libfdt() {
  local version dir
  version=$(dpkg-query -W -f='${Version}' libfdt-dev)
  dir=${SVMKIT_CACHE:-/var/cache/svmkit}/debian-ppc64el/libfdt-dev
  if [ -s "$dir/usr/lib/powerpc64le-linux-gnu/libfdt.a" ] &&
     [ "$(cat "$dir/version" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  echo "install-deps: unpacking libfdt-dev:ppc64el $version into $dir"
  local work
  work=$(mktemp -d)
  chmod 755 "$work" # apt-get download runs as _apt
  (cd "$work" && apt-get download -q "libfdt-dev:ppc64el=$version" >/dev/null) || {
    $updated || { apt-get update -qq && updated=true; }
    (cd "$work" && apt-get download -q "libfdt-dev:ppc64el=$version" >/dev/null)
  }
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  dpkg-deb -x "$work"/libfdt-dev_*_ppc64el.deb "$dir.tmp"
  echo "$version" >"$dir.tmp/version"
  rm -rf "$dir" "$work"
  mv "$dir.tmp" "$dir"
}
ppc64el_libfdt
