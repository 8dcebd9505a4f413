#!/usr/bin/env bash
# Benchmark: a gate round trip from the sandboxed vCPU (issue 17), side by
# side in one run with its floor:
#   - a null hypercall (H_SVMKIT_TIMEBASE, answered by the machine) from a
#     guest in svmkit-vcpu, through the gate channel (gate_bench_guest.c);
#   - the same blocking futex wake-and-wait round trip between two plain
#     processes (futex_floor.cpp): the floor.
# Median and p99 of 20000 round trips each, best of ROUNDS interleaved runs,
# and the ratio of the medians (target: at most 1.5x). Build without
# sanitizers (the default build directory).
#
#   tests/bench/gate_bench.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rounds=${2:-5}
svmkit=$build/wrapper/svmkit
floor=$build/tests/futex_floor
for f in "$svmkit" "$floor"; do
  [ -x "$f" ] || { echo "gate_bench.sh: $f not built (ninja -C $build)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
gcc -nostdlib -static -fPIC -fno-stack-protector -ffreestanding -O2 -I "$root" \
    -T "$root/tests/data/hostile_guest/hostile_guest.lds" -Wl,-e,bench_entry -Wl,--build-id=none \
    -o bench.elf "$root/tests/bench/gate_bench_guest.c"
"$svmkit" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
"$svmkit" build --kernel bench.elf --cmdline "console=hvc0 svmkit.swiotlb=4M" --key k.key -o bench.img \
  >/dev/null

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
best_gate="" best_floor=""
for ((i = 0; i < rounds; i++)); do
  gate=$("$svmkit" boot bench.img --trusted-key k.pub --memory 128M |
    sed -nE 's/.*gate round trip: rounds [0-9]+ median_ns ([0-9]+) p99_ns ([0-9]+).*/\1 \2/p')
  floor_line=$("$floor" | sed -nE 's/.*median_ns ([0-9]+) p99_ns ([0-9]+).*/\1 \2/p')
  [ -n "$gate" ] && [ -n "$floor_line" ] || { echo "gate_bench.sh: a run printed no result" >&2; exit 1; }
  echo "run $i: gate median/p99 ${gate/ //} ns, floor ${floor_line/ //} ns"
  if [ -z "$best_gate" ] || [ "${gate%% *}" -lt "${best_gate%% *}" ]; then best_gate=$gate; fi
  if [ -z "$best_floor" ] || [ "${floor_line%% *}" -lt "${best_floor%% *}" ]; then best_floor=$floor_line; fi
done
read -r gm gp <<<"$best_gate"
read -r fm fp <<<"$best_floor"
printf 'gate round trip (sandboxed vCPU, null hypercall): median %d ns, p99 %d ns\n' "$gm" "$gp"
printf 'futex round trip (two processes, the floor):      median %d ns, p99 %d ns\n' "$fm" "$fp"
awk -v g="$gm" -v f="$fm" -v gp="$gp" -v fp="$fp" \
  'BEGIN { printf "ratio: median %.2fx, p99 %.2fx (target: median at most 1.5x)\n", g / f, gp / fp }'
