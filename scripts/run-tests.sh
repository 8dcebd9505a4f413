#!/usr/bin/env bash
# Runs every test on a fresh Debian 12 machine: installs dependencies, fetches
# the Debian ppc64le test kernel, builds svmkit normally and with
# ASan+UBSan, runs the whole ctest suite on both builds (and the boot tests
# again as an unprivileged user, scripts/run-unprivileged.sh), builds the Debian
# package from a source tarball (Unix Makefiles, Release) and tests it
# installed in a fresh minimal Debian 12 root (tests/package), checks the host code
# with cppcheck and clang-tidy (scripts/lint.sh), and runs every libFuzzer
# target for a bounded, reproducible number of executions (set
# SVMKIT_FUZZ_SECONDS to fuzz for that many seconds per target instead).
#
# Under ASan the QEMU pseries boot tests (tests/e2e/ppc64le_*) are left out:
# their time is QEMU's, and the svmkit commands they run (build, inspect,
# verify of ppc64le images) run under ASan in the other tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
phase() { echo "run-tests: $1 (at ${SECONDS}s)"; }
"$root/scripts/install-deps.sh"
export SVMKIT_DEBIAN_KERNEL
SVMKIT_DEBIAN_KERNEL=$("$root/samples/fetch-debian-kernel.sh")

phase "build"
"$root/scripts/build.sh" "$root/build"
phase "tests"
(cd "$root/build" && ctest --output-on-failure -j2)
phase "unprivileged boots"
"$root/scripts/run-unprivileged.sh" "$root/build"

phase "Debian package"
"$root/tests/package/deb_test.sh"

phase "ASan+UBSan build"
"$root/scripts/build.sh" "$root/build-asan" -DSVMKIT_SANITIZE=ON
phase "ASan+UBSan tests"
(cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j2 -E '^e2e[.]ppc64le_')

phase "fuzz"
"$root/scripts/fuzz.sh" "${SVMKIT_FUZZ_SECONDS:-ci}" "$root/build-fuzz"
# lint needs a clang build tree with the generated stub blobs: the fuzz
# build's (same compiler, blobs built) saves configuring and building another.
phase "lint"
"$root/scripts/lint.sh" "$root/build-fuzz"
phase "done"
