#!/usr/bin/env bash
# Runs every test on a fresh Debian 12 machine: installs dependencies, fetches
# the Debian ppc64le test kernel, builds svmkit normally and with
# ASan+UBSan, runs the whole ctest suite on both builds, checks the host code
# with cppcheck and clang-tidy (scripts/lint.sh), then runs every
# libFuzzer target for a bounded, reproducible number of executions (set
# SVMKIT_FUZZ_SECONDS to fuzz for that many seconds per target instead).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
export SVMKIT_DEBIAN_KERNEL
SVMKIT_DEBIAN_KERNEL=$("$root/samples/fetch-debian-kernel.sh")

"$root/scripts/build.sh" "$root/build"
(cd "$root/build" && ctest --output-on-failure -j2)

"$root/scripts/build.sh" "$root/build-asan" -DSVMKIT_SANITIZE=ON
(cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j2)

"$root/scripts/lint.sh" "$root/build-lint"
"$root/scripts/fuzz.sh" "${SVMKIT_FUZZ_SECONDS:-ci}" "$root/build-fuzz"
