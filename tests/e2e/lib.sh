# Shared helpers for the end-to-end tests. Each test sources this file and runs
# in its own temporary directory. A broken expectation (fail) is counted and
# the test goes on, so one run shows every broken row; the test fails at the
# end if any broke. A command that fails outside an expectation stops the test
# at once (set -e).
set -euo pipefail
# elf_sections.py (the one section-table reader of the tests' Python) is here.
export PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
: "${SVMKIT:?SVMKIT must point at the svmkit binary}"
WORK=$(mktemp -d)
# SVMKIT_E2E_KEEP=1 keeps the test's directory (logs, images) for a look.
trap 'if [ -n "${SVMKIT_E2E_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi' EXIT
cd "$WORK"
FAILURES=0
CHECKS=0

fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}

# guest_status CODE STDERR: svmkit boot exits 10 when the guest exited with
# a non-zero status and names that status on stderr (its own codes never
# collide with the guest's: docs/cli.md, "Exit codes"). Tables of expected
# guest statuses compare against the status this prints; any other exit
# code is printed unchanged.
guest_status() {
  local status
  status=$(sed -nE 's/^svmkit: error: .*: the guest exited with status ([0-9]+)$/\1/p' <<<"$2" | tail -1)
  if [ "$1" = 10 ] && [ -n "$status" ]; then echo "$status"; else echo "$1"; fi
}

# expect_exit CODE CMD... (a guest's status for svmkit boot, see guest_status): runs CMD, checks its exit code; output in $OUT/$ERR.
expect_exit() {
  local want=$1
  shift
  CHECKS=$((CHECKS + 1))
  set +e
  "$@" >"$WORK/.out" 2>"$WORK/.err"
  local got=$?
  set -e
  OUT=$(cat "$WORK/.out")
  ERR=$(cat "$WORK/.err")
  [ "$want" = 10 ] || got=$(guest_status "$got" "$ERR")
  if [ "$got" -ne "$want" ]; then
    fail "expected exit $want, got $got: $*"
    echo "  stdout: $OUT" >&2
    echo "  stderr: $ERR" >&2
    return 0
  fi
}

# expect_error CODE PATTERN CMD...: exit code CODE and stderr matching PATTERN.
expect_error() {
  local code=$1 pattern=$2
  shift 2
  expect_exit "$code" "$@"
  if ! grep -qE -- "$pattern" <<<"$ERR"; then
    fail "stderr of '$*' does not match /$pattern/: $ERR"
  fi
}

expect_contains() {
  CHECKS=$((CHECKS + 1))
  grep -qE -- "$2" <<<"$1" || fail "output does not match /$2/: $1"
}

expect_not_contains() {
  CHECKS=$((CHECKS + 1))
  if grep -qE -- "$2" <<<"$1"; then fail "output matches /$2/ but should not: $1"; fi
}

expect_no_file() {
  CHECKS=$((CHECKS + 1))
  [ ! -e "$1" ] || fail "$1 exists but should not"
  # Nor any temporary left beside it.
  local leftovers
  leftovers=$(ls -a "$(dirname "$1")" | grep -F ".$(basename "$1").svmkit-" || true)
  [ -z "$leftovers" ] || fail "temporary files left behind: $leftovers"
}

same_files() {
  CHECKS=$((CHECKS + 1))
  cmp -s "$1" "$2" || fail "$1 and $2 differ"
}

# A small x86-64 ELF "kernel" made with the system toolchain.
make_x86_kernel() {
  local out=$1
  cat > "$WORK/kern.c" <<'C'
void _start(void) { for (;;) __asm__ volatile("hlt"); }
const char banner[] = "svmkit test kernel";
C
  gcc -nostdlib -static -no-pie -fno-pic -O2 -Wl,-Ttext=0x200000 -Wl,--build-id=none \
      -o "$out" "$WORK/kern.c"
}

# hexof TEXT: the bytes of TEXT as lowercase hex (for --hv-hook scan=/write=).
hexof() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }

# The sample kernel's secret canary: SHA-256 of its seed text, computed at run
# time in the guest, so its bytes are nowhere in an image.
CANARY_HEX=$(printf '%s' "svmkit sample kernel secret canary" | sha256sum | cut -d' ' -f1)

# section NAME IMAGE: "gpa size" of a section of a secure image, where the
# simulated machine loads it (file offset = 0x10000 + gpa - 0x4000000).
section() {
  python3 - "$1" "$2" <<'PY'
import sys
from elf_sections import section
s = section(open(sys.argv[2], "rb").read(), sys.argv[1])
print(0x4000000 + s.offset - 0x10000, s.size)
PY
}

# tamper_kernel IN OUT: OUT is IN with one byte of its stored kernel
# (.kernel:vmlinux.strip) flipped, as if changed after signing.
tamper_kernel() {
  python3 - "$1" "$2" <<'PY'
import sys
from elf_sections import section
data = bytearray(open(sys.argv[1], "rb").read())
s = section(data, ".kernel:vmlinux.strip")
data[s.offset + s.size // 2] ^= 0xFF
open(sys.argv[2], "wb").write(data)
PY
}

finish() {
  if [ "$FAILURES" -ne 0 ]; then
    echo "$FAILURES of $CHECKS checks failed" >&2
    exit 1
  fi
  echo "all $CHECKS checks passed"
}
