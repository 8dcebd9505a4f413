#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build
# svmkit, fetch Debian's ppc64le kernel, then keygen + build + inspect +
# verify a signed secure image of it and boot it secure on QEMU pseries with
# svmkit's ultravisor attached (a first-stage Debian guest kexecs it); then
# build and boot the sample guest kernel's image on the simulated machine,
# with a disk; then boot it the way the mission does, loaded by a normal
# guest from a boot disk (grub-style).
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
# Debian's busybox-static for ppc64el as the secure image's initramfs, and the
# first stage (Debian's kernel and kexec-tools) that loads it.
"$root/samples/ppc64le/prepare-boot.sh" ppc64le >/dev/null
"$root/samples/ppc64le/prepare-first-stage.sh" first-stage >/dev/null

set -x
"$svmkit" keygen --algo ed25519 -o release.key --public-output release.pub
"$svmkit" build --arch ppc64le --kernel "$kernel" --initrd ppc64le/initramfs.cpio.gz \
    --cmdline "console=hvc0 svm=on svmkit.swiotlb=8M quiet" --compress gzip --security-version 1 \
    --key release.key -o secure.img
"$svmkit" inspect secure.img
"$svmkit" verify secure.img --trusted-key release.pub --min-security-version 1

# The mission's whole path on POWER's own kernel: QEMU pseries (POWER9, TCG)
# with svmkit's ultravisor attached through QEMU's gdbstub. A normal Debian
# guest kexecs the image with Debian's kexec-tools; the stub calls UV_ESM;
# the ultravisor verifies the image in guest memory and resumes the stub
# secure; it shares its bounce pool and Debian's kernel reaches /init with
# the signed command line (docs/ppc64le.md).
"$svmkit" boot --kexec secure.img --first-stage-kernel first-stage/vmlinux \
    --first-stage-initrd first-stage/initramfs.cpio.gz --trusted-key release.pub \
    --min-security-version 1 --timeout 300

# The sample guest kernel, booted secure on the simulated PEF machine: the stub
# calls UV_ESM, the ultravisor verifies the image, the kernel runs secure and
# writes and reads back 16 MiB on a virtio-blk disk, every byte bounced
# through the shared pool, served by svmkit-vhost-blk over vhost-user
# (docs/platform.md). Prints the guest console and the boot report.
"$svmkit" build --kernel "$root/build/samples/kernel/sample-kernel.elf" --initrd initrd.cpio.gz \
    --cmdline "console=hvc0 svm=on svmkit.swiotlb=8M svmkit.io=16" --compress gzip --security-version 1 \
    --key release.key -o sample.img
truncate -s 128M disk.img
"$svmkit" boot sample.img --trusted-key release.pub --min-security-version 1 --disk disk.img

# The mission's path: a normal guest loads the secure image itself. The boot
# loader (a normal guest program) reads boot.cfg and the image from a boot
# disk made by `svmkit mkdisk`, checks and places the image's segments,
# rechecks their digests in its purgatory and jumps to the stub, which enters
# secure mode; the secure kernel's I/O goes to the disk's data partition
# (docs/loader-boot.md).
"$svmkit" mkdisk -o boot-disk.img --entry sample=sample.img --default sample
"$svmkit" boot --disk boot-disk.img --trusted-key release.pub --min-security-version 1
