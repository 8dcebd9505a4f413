#!/usr/bin/env bash
# Builds the libFuzzer targets with clang 14 (ASan + UBSan) and runs each for
# a bounded time on a copy of its checked-in seed corpus. Fails on any crash,
# leak or sanitizer report. Prints the executions per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [BUILD_DIR]     (default 60, build-fuzz)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
build=${2:-$root/build-fuzz}
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSVMKIT_FUZZ=ON >/dev/null
cmake --build "$build" -j2 >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts=$build/artifacts
mkdir -p "$artifacts"
declare -A max_len=([manifest]=65536 [image]=600000 [kernel_input]=65536 [esm]=65536)
status=0
for target in manifest image kernel_input esm; do
  corpus=$work/$target
  mkdir -p "$corpus"
  cp "$root/tests/fuzz/corpus/$target/"* "$corpus/"
  log=$work/$target.log
  echo "fuzz: $target for ${seconds}s"
  if ! (cd "$work" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -max_len="${max_len[$target]}" \
        -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 -artifact_prefix="$artifacts/$target-" "$corpus" >"$log" 2>&1); then
    echo "fuzz: $target FAILED; reproducer: $(ls -t "$artifacts/$target-"* 2>/dev/null | head -1)" >&2
    tail -60 "$log" >&2
    status=1
    continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz: $target ok: $execs executions, $cov, corpus $(ls "$corpus" | wc -l) inputs"
done
exit $status
