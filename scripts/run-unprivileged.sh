#!/usr/bin/env bash
# Runs end-to-end tests of `svmkit boot` as an unprivileged user (nobody),
# from an install of the build tree: what a user without root gets. The
# guest's sandbox must hold without the namespaces only root can create, and
# nothing may depend on root's privileges.
#
#   scripts/run-unprivileged.sh [BUILD_DIR] [TEST...]
#
# Default tests: boot_test, guest_io_test, hostile_guest_test (when present).
# As a non-root user there is nobody to switch to: the suite already ran
# unprivileged, and this says so and exits 0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${1:-$root/build}")
shift || true
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  tests=(boot_test guest_io_test)
  [ -f "$root/tests/e2e/hostile_guest_test.sh" ] && tests+=(hostile_guest_test)
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "run-unprivileged: not root: every test already ran as $(id -un)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
# The tests' scripts and data, readable by nobody (and guest/'s headers, which
# the hostile-guest suite compiles its attacks against).
mkdir -p "$work/src/tests"
cp -r "$root/tests/e2e" "$root/tests/data" "$work/src/tests/"
cp -r "$root/samples" "$root/guest" "$work/src/"
chmod -R a+rX "$work"

user=nobody group=$(id -gn nobody)
status=0
for t in "${tests[@]}"; do
  echo "run-unprivileged: $t as $user"
  if ! (cd /tmp && setpriv --reuid="$user" --regid="$group" --clear-groups \
      env -i PATH="$PATH" HOME=/tmp TMPDIR=/tmp LANG=C.UTF-8 \
      SVMKIT="$work/prefix/bin/svmkit" SVMKIT_SOURCE_DIR="$work/src" \
      SVMKIT_SAMPLE_KERNEL="$work/prefix/libexec/svmkit/sample-kernel.elf" \
      SVMKIT_DEBIAN_KERNEL="${SVMKIT_DEBIAN_KERNEL:-}" \
      bash -c 'test "$(id -u)" -ne 0 && exec bash "$0"' "$work/src/tests/e2e/$t.sh"); then
    echo "run-unprivileged: $t FAILED as $user" >&2
    status=1
  fi
done
exit "$status"
