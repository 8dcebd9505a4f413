#!/usr/bin/env bash
# Static analysis: cppcheck and clang-tidy (the checks in .clang-tidy), both
# must be clean, on the host code and on the freestanding guest code (guest/,
# stub/, loader/, samples/), the latter with the exact flags each ISA's guest
# build uses (CMake records them in BUILD/guest-compile-db/ISA/, since custom
# commands do not reach compile_commands.json; clang reads the ppc64le
# cross-compiler's name as its target).
#
#   scripts/lint.sh [BUILD_DIR]      (default build-lint, configured with clang 14)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-lint}
dirs=(base signer format wrapper platform)
guest_dirs=()
for d in guest stub loader samples; do
  [ -d "$root/$d" ] && guest_dirs+=("$root/$d")
done

cppcheck --enable=warning,performance,portability --std=c++20 --inline-suppr --quiet \
  --error-exitcode=1 -I "$root" "${dirs[@]/#/$root/}"
# Guest code: the simulated platform's view (the ppc64le-only files are read
# under the same definitions; cppcheck only needs the code paths).
cppcheck --enable=warning,performance,portability --std=c++20 --inline-suppr --quiet \
  --error-exitcode=1 -I "$root" -D__x86_64__ "${guest_dirs[@]}"
echo "lint: cppcheck clean"

# Each file's own compile command (no unity sources) for clang-tidy.
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DSVMKIT_WERROR=ON \
  -DSVMKIT_UNITY_BUILD=OFF >/dev/null
cmake --build "$build" -j2 --target svmkit_stub_blobs >/dev/null # generated inputs
# The host sources, listed without git (a source tarball or a fresh machine
# has none).
files=$(find "${dirs[@]/#/$root/}" -name '*.cpp' -type f | sort)
# run-clang-tidy skips a file its database does not list: none may be missing.
for f in $files; do
  grep -qF "\"$f\"" "$build/compile_commands.json" ||
    { echo "lint: $f has no compile command in $build (not built by any target?)" >&2; exit 1; }
done
# shellcheck disable=SC2086
run-clang-tidy-14 -p "$build" -j 2 -quiet $files >"$build/clang-tidy.log" 2>&1 || {
  grep -E "warning:|error:" "$build/clang-tidy.log" | sed 's/\x1b\[[0-9;]*m//g' >&2
  echo "lint: clang-tidy found problems (full log: $build/clang-tidy.log)" >&2
  exit 1
}
echo "lint: clang-tidy clean on host code"
for isa in x86_64 ppc64le; do
  log=$build/clang-tidy-guest-$isa.log
  run-clang-tidy-14 -p "$build/guest-compile-db/$isa" -j 2 -quiet >"$log" 2>&1 || {
    grep -E "warning:|error:" "$log" | sed 's/\x1b\[[0-9;]*m//g' | sort -u >&2
    echo "lint: clang-tidy found problems in $isa guest code (full log: $log)" >&2
    exit 1
  }
done
echo "lint: clang-tidy clean on guest code (x86_64, ppc64le)"
