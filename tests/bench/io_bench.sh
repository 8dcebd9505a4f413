#!/usr/bin/env bash
# Benchmark (issue 5): virtio-blk I/O of the sample kernel through the bounce
# pool (secure guest, swiotlb) next to the same guest without a pool (svm=off:
# a normal VM, direct DMA), in one run, on svmkit-vhost-blk and on
# qemu-storage-daemon: sequential 128 KiB reads and random 4 KiB reads, 8 in
# flight. Prints MB/s, IOPS and the bounce/direct ratios. Best of N runs.
#
# Targets: sequential 128 KiB reads >= 0.7x of direct, random 4 KiB reads
# >= 0.8x of direct (our back end).
#
#   tests/bench/io_bench.sh [SVMKIT_BINARY] [RUNS] [MIB]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
svmkit=$(realpath "${1:-$root/build/wrapper/svmkit}")
runs=${2:-3}
mib=${3:-256}
sample=$(dirname "$svmkit")/../samples/kernel/sample-kernel.elf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

"$svmkit" keygen --algo ed25519 --out k.pem --pub k.pub >/dev/null
head -c $((64 << 20)) /dev/urandom > disk.img # in the page cache: the guest path is measured
for mode in seqread randread; do
  for svm in on off; do
    "$svmkit" build --kernel "$sample" --key k.pem -o $mode-$svm.img \
      --cmdline "console=hvc0 svm=$svm swiotlb=16M svmkit.io=$mib svmkit.io_mode=$mode" >/dev/null
  done
done

# rate BACKEND MODE SVM: best "MB/s IOPS" of the runs.
rate() {
  for _ in $(seq "$runs"); do
    "$svmkit" boot "$2-$3.img" --trusted-key k.pub --disk disk.img --backend "$1" --timeout 300 |
      sed -nE "s/.*io $2 .* ([0-9]+) MB\/s, ([0-9]+) IOPS/\1 \2/p"
  done | sort -n | tail -1
}

printf "%-8s %-9s %14s %14s %8s %s\n" backend workload "bounce MB/s" "direct MB/s" ratio target
for backend in svmkit qemu; do
  for mode in seqread randread; do
    read -r b_mb b_iops < <(rate $backend $mode on)
    read -r d_mb d_iops < <(rate $backend $mode off)
    target=$([ $mode = seqread ] && echo 0.70 || echo 0.80)
    ratio=$(echo "scale=2; $b_mb / $d_mb" | bc)
    printf "%-8s %-9s %8s (%6s) %8s (%6s) %7sx >=%sx\n" $backend $mode "$b_mb" "$b_iops" \
      "$d_mb" "$d_iops" "$ratio" $target
  done
done
