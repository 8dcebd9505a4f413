#!/usr/bin/env bash
# A pseries boot disk laid out as Debian's grub-install lays one out on a
# POWER guest: an MBR partition table whose first partition is a PReP boot
# partition (type 0x41, active) holding GRUB's core image, an ELF that SLOF
# loads and starts, and a second partition with a file system holding
# /boot/grub/grub.cfg and the files it boots. The core image is made by
# grub-mkimage -O powerpc-ieee1275 from Debian 12's own modules
# (fetch-grub.sh); its embedded configuration finds /boot/grub/grub.cfg by
# searching the disks for it, as grub-install's search by UUID does. No root
# needed: the file system is made from a directory (mke2fs -d).
#
#   samples/ppc64le/make-grub-disk.sh DISK GRUB_CFG NAME=FILE...
#     DISK: the disk image (raw); NAME=FILE: FILE copied to /boot/NAME
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
disk=${1:?usage: make-grub-disk.sh DISK GRUB_CFG NAME=FILE...}
cfg=${2:?usage: make-grub-disk.sh DISK GRUB_CFG NAME=FILE...}
shift 2
grub=$("$here/fetch-grub.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/early.cfg" <<'CFG'
search.file /boot/grub/grub.cfg root
set prefix=($root)/boot/grub
configfile $prefix/grub.cfg
CFG
grub-mkimage -O powerpc-ieee1275 -d "$grub/powerpc-ieee1275" -c "$work/early.cfg" -p /boot/grub \
  -o "$work/core.elf" part_msdos ext2 linux normal configfile search search_fs_file echo boot

mkdir -p "$work/root/boot/grub"
cp "$cfg" "$work/root/boot/grub/grub.cfg"
for f in "$@"; do
  cp "${f#*=}" "$work/root/boot/${f%%=*}"
done
# Sizes in MiB: the PReP partition at 1 MiB, the file system after it.
prep=8
fs=$(($(du -sm "$work/root" | cut -f1) + 16))
mke2fs -q -t ext2 -F -d "$work/root" "$work/fs.img" "${fs}M"
truncate -s $((1 + prep + fs))M "$disk"
sfdisk -q "$disk" <<TABLE
label: dos
start=1MiB, size=${prep}MiB, type=41, bootable
start=$((1 + prep))MiB, size=${fs}MiB, type=83
TABLE
dd if="$work/core.elf" of="$disk" bs=1M seek=1 conv=notrunc status=none
dd if="$work/fs.img" of="$disk" bs=1M seek=$((1 + prep)) conv=notrunc status=none
