#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build
# svmkit, fetch Debian's ppc64le kernel, then keygen + build + inspect +
# verify a signed secure image of it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build"
svmkit=$root/build/wrapper/svmkit
kernel=$("$root/samples/fetch-debian-kernel.sh")
work=$root/build/main-job
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$root/samples/make-sample-initrd.sh" initrd.cpio.gz

set -x
"$svmkit" keygen --algo ed25519 --out release.key --pub release.pub
"$svmkit" build --arch ppc64le --kernel "$kernel" --initrd initrd.cpio.gz \
    --cmdline "console=hvc0 svm=on quiet" --compress gzip --security-version 1 \
    --key release.key -o secure.img
"$svmkit" inspect secure.img
"$svmkit" verify secure.img --trusted-key release.pub --min-security-version 1
