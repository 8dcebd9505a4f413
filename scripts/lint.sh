#!/usr/bin/env bash
# Static analysis of svmkit's host code: cppcheck and clang-tidy (the checks
# in .clang-tidy), both must be clean. Freestanding guest code (stub/, guest/,
# samples/kernel) is built with its own flags and is not covered yet.
#
#   scripts/lint.sh [BUILD_DIR]      (default build-lint, configured with clang 14)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-lint}
dirs=(base signer format wrapper platform)

cppcheck --enable=warning,performance,portability --std=c++20 --inline-suppr --quiet \
  --error-exitcode=1 -I "$root" "${dirs[@]/#/$root/}"
echo "lint: cppcheck clean"

CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja >/dev/null
cmake --build "$build" -j2 --target svmkit_stub_blobs >/dev/null # generated inputs
files=$(cd "$root" && git ls-files "${dirs[@]}" | grep -E '\.cpp$' | sed "s|^|$root/|")
# shellcheck disable=SC2086
run-clang-tidy-14 -p "$build" -j 2 -quiet $files >"$build/clang-tidy.log" 2>&1 || {
  grep -E "warning:|error:" "$build/clang-tidy.log" | sed 's/\x1b\[[0-9;]*m//g' >&2
  echo "lint: clang-tidy found problems (full log: $build/clang-tidy.log)" >&2
  exit 1
}
echo "lint: clang-tidy clean"
