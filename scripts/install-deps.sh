#!/usr/bin/env bash
# Installs what svmkit needs to build and test on Debian 12, and nothing that
# is already there. Idempotent; used by both README commands and by .ci/run.
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ pkg-config
  libelf-dev libssl-dev libcli11-dev zlib1g-dev doctest-dev libfdt-dev libfmt-dev
  libyaml-cpp-dev nlohmann-json3-dev
  # the ppc64le stub
  g++-powerpc64le-linux-gnu binutils-powerpc64le-linux-gnu
  # tools the tests and benchmarks compare against or check with
  openssl elfutils binutils device-tree-compiler u-boot-tools cpio time python3
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

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: must run as root to install packages" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
