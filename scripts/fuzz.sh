#!/usr/bin/env bash
# Builds the libFuzzer targets with clang 14 (ASan + UBSan) and runs each on a
# copy of its checked-in seed corpus plus the regression inputs. Fails on any
# crash, hang, leak or sanitizer report. Prints the executions per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [BUILD_DIR]     (default 60, build-fuzz)
#   scripts/fuzz.sh ci [BUILD_DIR]
#
# `ci` mode runs a fixed number of executions per target with a fixed seed
# (up to about 15 s each on the project's 2-core machine): the same binary and
# corpus give the same run, so CI is reproducible; a time-bounded run explores
# further and is what to run on demand (e.g. `scripts/fuzz.sh 1800`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
declare -A ci_runs=([manifest]=1000000 [image]=30000 [kernel_input]=50000 [elf_reader]=100000 [esm]=150000
  [esm_yaml]=150000 [virtio_used]=150000 [vhost_user]=100000 [loader_elf]=100000
  [loader_boot_cfg]=500000 [loader_disk]=40000 [gdb_reply]=300000 [gate_channel]=20000 [of_flatten]=200000)
build=$(realpath -m "${2:-$root/build-fuzz}")
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSVMKIT_FUZZ=ON -DSVMKIT_WERROR=ON >/dev/null
targets=()
for t in "${!ci_runs[@]}"; do targets+=("fuzz_$t"); done
# Only the fuzz targets: the rest of the tree is built and tested elsewhere.
cmake --build "$build" -j2 --target "${targets[@]}" >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts=$build/artifacts
mkdir -p "$artifacts"
declare -A max_len=([manifest]=65536 [image]=600000 [kernel_input]=65536 [elf_reader]=16384 [esm]=65536
  [esm_yaml]=65536 [virtio_used]=4096 [vhost_user]=65536 [loader_elf]=16384
  [loader_boot_cfg]=8192 [loader_disk]=65536 [gdb_reply]=16384 [gate_channel]=4096 [of_flatten]=16384)
status=0
for target in "${!ci_runs[@]}"; do
  corpus=$work/$target
  mkdir -p "$corpus"
  cp "$root/tests/fuzz/corpus/$target/"* "$corpus/"
  cp "$root/tests/fuzz/regressions/$target-"* "$corpus/" 2>/dev/null || true
  if [ "$seconds" = ci ]; then
    bound=(-seed=1 -runs="${ci_runs[$target]}")
  else
    bound=(-max_total_time="$seconds")
  fi
  log=$work/$target.log
  echo "fuzz: $target (${bound[*]})"
  started=$SECONDS
  if ! (cd "$work" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$build/tests/fuzz/fuzz_$target" "${bound[@]}" -max_len="${max_len[$target]}" \
        -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 -artifact_prefix="$artifacts/$target-" "$corpus" >"$log" 2>&1); then
    echo "fuzz: $target FAILED; reproducer: $(ls -t "$artifacts/$target-"* 2>/dev/null | head -1)" >&2
    tail -60 "$log" >&2
    status=1
    continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz: $target ok: $execs executions, $cov, corpus $(ls "$corpus" | wc -l) inputs," \
    "$((SECONDS - started)) s"
done
exit $status
