#!/usr/bin/env bash
# Benchmark: secure boot on the simulated machine of an image with a 41 MB
# kernel payload and a 256 MiB initrd (issue 4): time from `svmkit boot` start
# to kernel entry and its ESM part, next to `openssl dgst -sha256` of the same
# bytes in the same run. Best of N runs, warm page cache.
#
# The kernel payload is the sample kernel's loadable image padded with random
# bytes to 41 MB (a raw image at its load address), so the stub copies and
# hashes 41 MB before entering it.
#
#   tests/bench/boot_bench.sh [SVMKIT_BINARY] [RUNS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
svmkit=$(realpath "${1:-$root/build/wrapper/svmkit}")
runs=${2:-3}
sample=$(dirname "$svmkit")/../samples/kernel/sample-kernel.elf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

objcopy -O binary -S "$sample" kernel.bin
head -c $((41000000 - $(stat -c %s kernel.bin))) /dev/urandom >> kernel.bin
head -c $((256 << 20)) /dev/urandom > initrd.bin
"$svmkit" keygen --algo ed25519 -o k.pem --public-output k.pub >/dev/null
"$svmkit" build --kernel kernel.bin --kernel-load-addr 0x200000 --initrd initrd.bin \
  --cmdline "console=hvc0 svmkit.swiotlb=64M" --key k.pem -o boot.img >/dev/null

best() { sort -n | head -1; }
now() { date +%s.%N; }
for _ in $(seq "$runs"); do
  t0=$(now); openssl dgst -sha256 kernel.bin initrd.bin >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc
done | best > dgst.txt
for _ in $(seq "$runs"); do
  "$svmkit" boot boot.img --trusted-key k.pub --quiet --json > report.json
  python3 - <<'PY'
import json
d = json.load(open("report.json"))
assert d["result"]["exit_status"] == 0, d["result"]
stages = {s["name"]: s for s in d["stages"]}
k = stages["kernel"]["start_us"]
print(k / 1e6, stages["esm"]["duration_us"] / 1e6)
PY
done | sort -n | head -1 > boot.txt
dgst=$(cat dgst.txt)
read -r entry esm < boot.txt
printf 'openssl dgst -sha256 (kernel + initrd): %.3f s\n' "$dgst"
printf 'svmkit boot: start to kernel entry:     %.3f s (%.2fx openssl)\n' "$entry" "$(echo "$entry / $dgst" | bc -l)"
printf '  of which ESM:                         %.3f s (%.2fx openssl)\n' "$esm" "$(echo "$esm / $dgst" | bc -l)"
