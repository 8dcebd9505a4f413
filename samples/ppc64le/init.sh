#!/bin/busybox sh
# /init of the ppc64le sample initramfs (samples/ppc64le/prepare-boot.sh):
# prints a marker and the kernel's command line, then powers the VM off.
# tests/e2e/ppc64le_boot_test.sh looks for these exact lines.
/bin/busybox mkdir -p /proc /sys /bin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "svmkit ppc64le initramfs: hello from /init"
echo "svmkit ppc64le initramfs: /proc/cmdline=[$(cat /proc/cmdline)]"
# The kexec test's first boot carries the image to boot next.
if [ -f /next.img ] && [ -x /bin/kexec-load ]; then
  kexec-load /next.img
fi
# The kexec-tools and GRUB tests' boots carry a script of what to run next
# (e.g. Debian's kexec with its options).
if [ -f /next.sh ]; then
  echo "svmkit ppc64le initramfs: running /next.sh"
  sh /next.sh
fi
echo "svmkit ppc64le initramfs: powering off"
sync
poweroff -f
