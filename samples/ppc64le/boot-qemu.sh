#!/usr/bin/env bash
# Boots a ppc64le secure image on QEMU's pseries machine (TCG, SLOF loads the
# ELF given with -kernel), one POWER9 CPU, 1 GiB, the console (spapr-vty,
# Linux's hvc0) to a log, and no other device: without the default disk,
# CD-ROM and network adapters SLOF reaches the image a few seconds sooner.
#
#   samples/ppc64le/boot-qemu.sh IMAGE LOG [STOP_REGEX]
#   samples/ppc64le/boot-qemu.sh disk:DISK LOG [STOP_REGEX]
#
# With disk:DISK there is no -kernel: SLOF boots from DISK (raw, on
# virtio-blk), as a guest installed with grub-install does (make-grub-disk.sh).
#
# Waits until QEMU exits (the guest powered off or stopped), until STOP_REGEX
# appears in the log (for guests that stay up, e.g. at Open Firmware's
# prompt), or until SVMKIT_QEMU_TIMEOUT seconds (default 110) have passed.
# Exit status: QEMU's own when it exits, 0 when STOP_REGEX appeared, 124 on
# the time limit. QEMU's own messages (e.g. "OS terminated: ...") go to the
# log as well.
set -euo pipefail
image=${1:?usage: boot-qemu.sh IMAGE LOG [STOP_REGEX]}
log=${2:?usage: boot-qemu.sh IMAGE LOG [STOP_REGEX]}
stop=${3:-}
limit=${SVMKIT_QEMU_TIMEOUT:-110}

if [[ $image == disk:* ]]; then
  boot=(-drive "file=${image#disk:},format=raw,if=none,id=disk0"
    -device virtio-blk-pci,drive=disk0,bootindex=0)
else
  boot=(-kernel "$image")
fi
qemu-system-ppc64 -M pseries -cpu POWER9 -smp 1 -m 1G -nodefaults -nographic -serial stdio \
  -no-reboot "${boot[@]}" </dev/null >"$log" 2>&1 &
pid=$!
# QEMU never outlives this script, however it ends.
trap 'kill "$pid" 2>/dev/null || true' EXIT
trap 'exit 143' INT TERM
deadline=$((SECONDS + limit))
while kill -0 "$pid" 2>/dev/null; do
  if [ -n "$stop" ] && grep -qE -- "$stop" "$log"; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    exit 0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "boot-qemu: no end after $limit s" >>"$log"
    exit 124
  fi
  sleep 0.5
done
set +e
wait "$pid"
status=$?
set -e
exit "$status"
