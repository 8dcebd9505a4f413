#!/usr/bin/env bash
# Benchmark (issue 5): virtio-blk I/O of the sample kernel through the bounce
# pool (secure guest, swiotlb) next to the same guest without a pool (svm=off:
# a normal VM, direct DMA), in one run, on svmkit-vhost-blk and on
# qemu-storage-daemon: sequential 128 KiB reads and random 4 KiB reads, 8 in
# flight. Each of the RUNS rounds boots the bounce guest and then the direct
# one, so both see the same machine load. Prints the median MB/s (IOPS), the
# spread (slowest..fastest run) and the bounce/direct ratio three ways: of
# the medians, of the best runs, and the median of each round's own ratio
# (bounce over the direct boot right after it: the least sensitive to load
# that changes during the script).
#
# Then, per back end and workload, one bounce and one direct boot with
# svmkit.io_stages=1 print where a request's time goes in the guest (the
# driver's stages, timed with the cycle counter: copy into the pool, the
# rest of submitting, sleeping until the device signals, copy out of the
# pool, reaping; ns per request). These instrumented boots are slower by
# the timing itself and are not used for the ratios.
# Last, the same interleaved runs with one CPU-bound process competing (the
# script starts it, bounded by a timeout, and stops it): report-only, to show
# what a busy machine does to the ratios.
#
# Targets (idle machine, ratio of medians, both back ends): sequential
# 128 KiB reads >= 0.90x of direct, random 4 KiB reads >= 0.95x of direct.
#
#   tests/bench/io_bench.sh [SVMKIT_BINARY] [RUNS] [MIB]
# IO_BENCH_BACKENDS="svmkit" limits the back ends (default: svmkit qemu);
# IO_BENCH_LOADED=0 skips the competing-process runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
svmkit=$(realpath "${1:-$root/build/wrapper/svmkit}")
runs=${2:-9}
mib=${3:-256}
sample=$(dirname "$svmkit")/../samples/kernel/sample-kernel.elf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

"$svmkit" keygen --algo ed25519 -o k.pem --public-output k.pub >/dev/null
head -c $((64 << 20)) /dev/urandom > disk.img # in the page cache: the guest path is measured
for mode in seqread randread; do
  for svm in on off; do
    args="console=hvc0 svm=$svm svmkit.swiotlb=16M svmkit.io=$mib svmkit.io_mode=$mode"
    "$svmkit" build --kernel "$sample" --key k.pem -o $mode-$svm.img --cmdline "$args" >/dev/null
    "$svmkit" build --kernel "$sample" --key k.pem -o $mode-$svm-stages.img \
      --cmdline "$args svmkit.io_stages=1" >/dev/null
  done
done

# once BACKEND MODE SVM: "MB/s IOPS" of one boot.
once() {
  "$svmkit" boot "$2-$3.img" --trusted-key k.pub --disk disk.img --backend "$1" --timeout 300 |
    sed -nE "s/.*io $2 .* ([0-9]+) MB\/s, ([0-9]+) IOPS/\1 \2/p"
}

# stats FILE: "median min max" of the first column, and the IOPS of the median run.
stats() {
  sort -n "$1" | awk '{ mb[NR] = $1; io[NR] = $2 } END {
    m = int((NR + 1) / 2); print mb[m], mb[1], mb[NR], io[m] }'
}

# stages BACKEND MODE SVM: the guest's stage line of one instrumented boot, as
# "copy_in submit sleep copy_out reap other total kicks cedes in-flight".
stages() {
  "$svmkit" boot "$2-$3-stages.img" --trusted-key k.pub --disk disk.img --backend "$1" \
    --timeout 300 | awk '/io stages ns\/request:/ {
      for (i = 1; i < NF; ++i) v[$i] = $(i + 1)
      print v["copy_in"], v["submit"], v["sleep"], v["copy_out"], v["reap"], v["other"],
        v["total"] + 0, v["kicks"], v["cedes"], v["in-flight-at-cede"] }'
}

load1() { cut -d' ' -f1 /proc/loadavg; }

# ratios: RUNS interleaved rounds of every back end and workload, one row each.
ratios() {
  printf "%-7s %-9s %-26s %-26s %7s %7s %7s %-8s %s\n" backend workload \
    "bounce MB/s median (IOPS)" "direct MB/s median (IOPS)" median best paired target load
  for backend in ${IO_BENCH_BACKENDS:-svmkit qemu}; do
    for mode in seqread randread; do
      : > on.txt
      : > off.txt
      for _ in $(seq "$runs"); do
        once $backend $mode on >> on.txt
        once $backend $mode off >> off.txt
      done
      read -r b_med b_min b_max b_iops < <(stats on.txt)
      read -r d_med d_min d_max d_iops < <(stats off.txt)
      target=$([ $mode = seqread ] && echo 0.90 || echo 0.95)
      paired=$(paste on.txt off.txt | awk '{ print $1 / $3 }' | sort -g |
        awk '{ r[NR] = $1 } END { printf "%.2f", r[int((NR + 1) / 2)] }')
      printf "%-7s %-9s %5s (%6s) [%5s..%5s] %5s (%6s) [%5s..%5s] %6.2fx %6.2fx %6sx >=%sx %6s\n" \
        $backend $mode "$b_med" "$b_iops" "$b_min" "$b_max" "$d_med" "$d_iops" "$d_min" "$d_max" \
        "$(echo "scale=4; $b_med / $d_med" | bc)" "$(echo "scale=4; $b_max / $d_max" | bc)" \
        "$paired" $target "$(load1)"
    done
  done
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "machine: $(nproc) CPUs (${cpu_model:-unknown model}), load $(cut -d' ' -f1-3 /proc/loadavg);" \
  "$runs interleaved runs each"
ratios

echo
echo "where a request's time goes in the guest (ns per request, one instrumented boot each;" \
  "sleep: the vCPU idle while the device works)"
printf "%-7s %-9s %-6s %7s %7s %7s %8s %6s %6s %7s | %s\n" backend workload mode copy_in submit \
  sleep copy_out reap other total "per 1000 requests: kicks, cedes, in flight at a cede"
for backend in ${IO_BENCH_BACKENDS:-svmkit qemu}; do
  for mode in seqread randread; do
    for svm in on off; do
      read -r ci su sl co re ot to ki ce fl < <(stages $backend $mode $svm)
      printf "%-7s %-9s %-6s %7s %7s %7s %8s %6s %6s %7s | %5s %5s %5s.%03d\n" $backend $mode \
        "$([ $svm = on ] && echo bounce || echo direct)" "$ci" "$su" "$sl" "$co" "$re" "$ot" "$to" \
        "$ki" "$ce" "$((fl / 1000))" "$((fl % 1000))"
    done
  done
done

if [ "${IO_BENCH_LOADED:-1}" != 0 ]; then
  # One CPU-bound process beside the VMs, for at most 30 minutes whatever
  # happens to this script; stopped as soon as the runs are done.
  timeout 1800 bash -c 'while :; do :; done' &
  hog=$!
  trap 'kill $hog 2>/dev/null; rm -rf "$work"' EXIT
  echo
  echo "with one CPU-bound process competing (report-only), load $(cut -d' ' -f1-3 /proc/loadavg)"
  ratios
  kill $hog 2>/dev/null || true
  wait $hog 2>/dev/null || true
fi
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
