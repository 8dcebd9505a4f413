#!/usr/bin/env bash
# Guest I/O through the shared pool: the secure sample kernel writes and reads
# back random 4 KiB..256 KiB extents on a virtio-blk disk, every byte bounced
# through the restricted pool by swiotlb, served by svmkit-vhost-blk and by
# QEMU's qemu-storage-daemon (unmodified). Then every hostile mode of
# svmkit-vhost-blk: the guest detects or contains it, logs it, never crashes,
# never accepts wrong data, leaks nothing (the hypervisor's scan of all the
# memory it can see finds no canary) and its private memory is unchanged.
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }
HOSTILE_DMA_HEX=$(hexof "svmkit-vhost-blk hostile dma")

# hook_found LOG N: the "found" count of the N-th scan in the hook log.
hook_found() {
  python3 -c "import json,sys; print([e for e in map(json.loads, open(sys.argv[1])) if e['action'] == 'scan'][int(sys.argv[2])]['found'])" "$1" "$2"
}

"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --key k.key -o secure.img \
  --cmdline "console=hvc0 svm=on svmkit.swiotlb=8M svmkit.io=16"

# ---- both back ends, secure guest, bounce path ----------------------------------------
for backend in svmkit qemu; do
  truncate -s 0 disk-$backend.img && truncate -s 128M disk-$backend.img
  expect_exit 0 "$SVMKIT" boot secure.img --trusted-key k.pub --disk disk-$backend.img \
    --backend $backend --hv-hook-log hooks-$backend.jsonl --hv-hook "exit:scan=$CANARY_HEX"
  expect_contains "$OUT" "io on virtio-blk at 0x100000000000: 128 MiB, bounced through the pool"
  expect_contains "$OUT" "io write 1[0-9]{4} KiB in [0-9]+ requests"
  expect_contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
  expect_contains "$OUT" "io pool high-water [1-9][0-9]* KiB of 8192 KiB; canary in the shared pool: no"
  expect_contains "$OUT" "io failed requests 0, private memory intact"
  CHECKS=$((CHECKS + 1))
  [ "$(hook_found hooks-$backend.jsonl 0)" = 0 ] || fail "$backend: the canary reached hypervisor-visible memory"
  # The writes reached the disk file.
  CHECKS=$((CHECKS + 1))
  [ "$(od -An -tx1 -v disk-$backend.img | tr -d ' \n0' | head -c 1)" != "" ] ||
    fail "$backend: the disk file is still all zeros"
done

# ---- the same workload on a normal VM (svm=off): no pool, direct DMA -------------------
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --key k.key -o plain.img \
  --cmdline "console=hvc0 svm=off svmkit.io=16"
for backend in svmkit qemu; do
  expect_exit 0 "$SVMKIT" boot plain.img --trusted-key k.pub --disk disk-$backend.img \
    --backend $backend
  expect_contains "$OUT" "svm=off is on the signed command line: booting without secure mode"
  expect_contains "$OUT" "running as a normal \(not secure\) VM"
  expect_contains "$OUT" "io on virtio-blk at 0x100000000000: 128 MiB, direct DMA"
  expect_contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
  expect_contains "$OUT" "io failed requests 0, private memory intact"
  expect_not_contains "$OUT" "UV_ESM|pool high-water"
done

# ---- hostile back end modes -------------------------------------------------------
# mode:expected exit status:a line the guest must log
cases=(
  "used-id-out-of-range:20:used id [0-9]+ out of range.*marked broken"
  "duplicate-completion:20:(used idx moved|used id [0-9]+ completed twice).*marked broken"
  "len-too-large:20:used len [0-9]+ for chain [0-9]+ exceeds .*marked broken"
  "used-idx-jump:20:used idx moved from 0 to [0-9]+.*marked broken"
  "rewrite-bounce-after-completion:20:io request failed: (read|write) of [0-9]+ bytes at sector [0-9]+: "
  "rewrite-descriptors:0:io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
  "interrupt-storm:0:io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
  "no-access-platform:22:device refused: it lacks VIRTIO_F_ACCESS_PLATFORM"
  "dma-outside-shared:0:io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
)
truncate -s 128M hostile.img
for c in "${cases[@]}"; do
  IFS=: read -r mode status line <<<"$c"
  rm -f h.jsonl
  expect_exit "$status" "$SVMKIT" boot secure.img --trusted-key k.pub --disk hostile.img \
    --hostile "$mode" --timeout 60 --hv-hook-log h.jsonl \
    --hv-hook "exit:scan=$CANARY_HEX" --hv-hook "exit:scan=$HOSTILE_DMA_HEX"
  expect_contains "$OUT" "$line"
  # Never wrong data, never a leak, never private memory changed, never a crash.
  expect_not_contains "$OUT" "MISMATCH|CHANGED|canary in the shared pool: FOUND|faulted"
  [ "$status" = 22 ] || expect_contains "$OUT" "private memory intact"
  CHECKS=$((CHECKS + 1))
  [ "$(hook_found h.jsonl 0)" = 0 ] || fail "$mode: the canary reached hypervisor-visible memory"
done
# The out-of-bounds DMA really happened, in hypervisor-visible memory only.
CHECKS=$((CHECKS + 1))
[ "$(hook_found h.jsonl 1)" -ge 1 ] || fail "dma-outside-shared wrote nothing the hypervisor can see"

# ---- bad disks are refused before the guest runs ------------------------------------
expect_error 4 "nope.img: cannot open the disk" "$SVMKIT" boot secure.img --trusted-key k.pub \
  --disk nope.img
expect_error 2 "--backend xen: expected svmkit or qemu" "$SVMKIT" boot secure.img \
  --trusted-key k.pub --disk hostile.img --backend xen
expect_error 2 "--hostile needs --backend svmkit" "$SVMKIT" boot secure.img --trusted-key k.pub \
  --disk hostile.img --backend qemu --hostile used-idx-jump
finish
