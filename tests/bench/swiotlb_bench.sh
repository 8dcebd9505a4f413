#!/usr/bin/env bash
# Benchmark: the guest's bounce pool (issues 5, 20), side by side in one run:
#   - swiotlb map+unmap of 4 KiB and 64 KiB buffers against plain memcpy of
#     the same bytes between the same places, through the pool's locked calls
#     and through a DmaDevice's cache (target, cached: at most 1.30x, and at
#     most 10 ns of bookkeeping);
#   - 4 KiB map+unmap throughput of 2 threads on 2 areas against 1 thread
#     (target, cached: at least 1.8x), and 2 threads on one shared area for
#     reference.
# The binary prints the table and the ratios; best of ROUNDS interleaved
# rounds. Build it without sanitizers (the default build directory).
#
#   tests/bench/swiotlb_bench.sh [SWIOTLB_BENCH_BINARY] [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=${1:-$root/build/tests/swiotlb_bench}
rounds=${2:-300}
if [ ! -x "$bench" ]; then
  echo "swiotlb_bench.sh: $bench not built (ninja -C build swiotlb_bench)" >&2
  exit 1
fi
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" "$rounds"
