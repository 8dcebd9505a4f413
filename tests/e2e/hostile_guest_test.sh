#!/usr/bin/env bash
# The hostile-guest suite (docs/hostile-guest.md): a guest that attacks the
# simulated machine from inside its vCPU process, through the real CLI. Each
# attack (tests/data/hostile_guest/hostile_guest.c, one build per attack) runs
# twice: as the kernel of a signed image (after UV_ESM, secure) and copied
# over the stub's entry of that image (before UV_ESM: the image no longer
# verifies, and its first instruction is the attack).
#
# Every boot must show its row's exit code and message, and besides:
#   - svmkit itself is never killed (an exit code below 128) and never exits 0
#     for an attack the sandbox stopped;
#   - no file the attack names exists afterwards;
#   - no sanitizer report.
# It ends with a table: attack | where | expected | observed.
source "$(dirname "$0")/lib.sh"

SRC=${SVMKIT_SOURCE_DIR:?SVMKIT_SOURCE_DIR must point at the source tree}
DATA=$SRC/tests/data/hostile_guest
MEMORY=128M
MEMORY_BYTES=$((128 << 20))
CMDLINE="console=hvc0 svm=on svmkit.swiotlb=4M" # a bounce pool that fits 128 MiB
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null

# The machine key, and 32 of its private bytes (from the middle of its DER
# encoding) for the scan: inverted in the scanner, so no image holds them.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out machine.key 2>/dev/null
KEY_BYTES=$(openssl pkey -in machine.key -outform DER | od -An -tu1 -v -j 600 -N 32 | xargs)
PATTERN="{$(for b in $KEY_BYTES; do printf '%d,' $((255 - b)); done)}"
# The positive control's initrd: the key's bytes themselves, in guest RAM.
python3 -c "import sys; sys.stdout.buffer.write(bytes(int(b) for b in sys.argv[1:]) * 4)" \
  $KEY_BYTES >key-bytes.bin

# build_attack NAME [EXTRA-IMAGE-ARGS...]: NAME.elf (the attack as a kernel),
# NAME.img (signed, with it as kernel) and NAME-stub.img (its blob over the
# stub's entry, at file offset 0x10000: .text, whose first byte is the entry).
build_attack() {
  local name=$1
  shift
  gcc -nostdlib -static -fPIC -fno-stack-protector -ffreestanding -O2 -I "$SRC" \
      -DATTACK_"$name" -DHOST_PATH="\"$WORK/created-by-$name\"" \
      -DGUEST_RAM_SIZE="$MEMORY_BYTES" -DPATTERN="$PATTERN" \
      -T "$DATA/hostile_guest.lds" -Wl,--build-id=none -o "$name.elf" "$DATA/hostile_guest.c"
  objcopy -O binary "$name.elf" "$name.bin"
  "$SVMKIT" build --kernel "$name.elf" --cmdline "$CMDLINE" --key k.key -o "$name.img" "$@" \
    >/dev/null
  python3 - "$name.img" "$name.bin" "$name-stub.img" <<'PY'
import sys
image = bytearray(open(sys.argv[1], "rb").read())
blob = open(sys.argv[2], "rb").read()
image[0x10000:0x10000 + len(blob)] = blob
open(sys.argv[3], "wb").write(image)
PY
}

ROWS=() # "attack|where|expected|observed|ok"

# [TIMEOUT=S] attack NAME WHERE CODE PATTERN [BOOT-ARGS...]: boots NAME.img
# (WHERE = kernel) or NAME-stub.img (WHERE = stub) with --timeout S (20);
# svmkit must exit CODE with stderr matching PATTERN.
attack() {
  local name=$1 where=$2 code=$3 pattern=$4
  shift 4
  local img=$name.img
  [ "$where" = kernel ] || img=$name-stub.img
  local before=$FAILURES
  CHECKS=$((CHECKS + 1))
  set +e
  "$SVMKIT" boot "$img" --trusted-key k.pub --memory $MEMORY --timeout "${TIMEOUT:-20}" "$@" \
    >"$name.$where.out" 2>"$name.$where.err"
  local got=$?
  set -e
  local err
  err=$(cat "$name.$where.err")
  [ "$got" -lt 128 ] || fail "$name ($where): svmkit itself was killed (exit $got)"
  [ "$got" = "$code" ] || fail "$name ($where): exit $got, expected $code: $err"
  grep -qE -- "$pattern" <<<"$err" || fail "$name ($where): stderr does not match /$pattern/: $err"
  if grep -qE "Sanitizer|runtime error" <<<"$err"; then fail "$name ($where): sanitizer report"; fi
  CHECKS=$((CHECKS + 1))
  [ ! -e "$WORK/created-by-$name" ] || fail "$name ($where): the guest created a host file"
  # Where the attack ran: the kernel after UV_ESM (secure), the stub before it.
  CHECKS=$((CHECKS + 1))
  if [ "$where" = kernel ]; then
    grep -q "svmkit stub: resumed secure by the ultravisor" "$name.$where.out" ||
      fail "$name ($where): the kernel did not run secure"
  elif grep -q "entering secure mode" "$name.$where.out"; then
    fail "$name ($where): the stub reached UV_ESM"
  fi
  local observed
  observed=$(grep -oE -- "$pattern" <<<"$err" | head -n 1 || true)
  ROWS+=("$name|$where|exit $code: $pattern|exit $got: ${observed:-$(tail -n 1 <<<"$err")}|$([ "$FAILURES" = "$before" ] && echo ok || echo FAIL)")
}

forbidden() { printf 'the guest made a forbidden system call: %s \\(number %s\\)' "$1" "$2"; }
OTHER_ABI="the guest made a system call of another ABI"

# name|code|pattern: every attack, each run before and after UV_ESM.
TABLE=(
  "exit|7|$(forbidden exit 60)"
  "exit_group|7|$(forbidden exit_group 231)"
  "kill|7|$(forbidden kill 62)"
  "open_creat|7|$(forbidden openat 257)"
  "proc_mem|7|$(forbidden openat 257)"
  "ptrace|7|$(forbidden ptrace 101)"
  "socket|7|$(forbidden socket 41)"
  "execve|7|$(forbidden execve 59)"
  "fork|7|$(forbidden fork 57)"
  "mmap_outside|7|$(forbidden mmap 9)"
  "mmap_anonymous|7|$(forbidden mmap 9)"
  "mprotect|7|$(forbidden mprotect 10)"
  "brk|7|$(forbidden brk 12)"
  "rt_sigaction|7|$(forbidden rt_sigaction 13)"
  "process_vm_readv|7|$(forbidden process_vm_readv 310)"
  "futex_other_word|7|$(forbidden futex 202)"
  "x32_syscall|7|$OTHER_ABI"
  "int80|7|$OTHER_ABI"
  "jump_host|6|guest code faulted: SIGSEGV \\(bad memory access\\): it jumped to 0x7fff00001000, outside guest RAM"
  "write_outside|6|guest code faulted: SIGSEGV \\(bad memory access\\) at guest address 0x[0-9a-f]+ accessing 0x1ffffffffff8, outside guest RAM"
)
for row in "${TABLE[@]}"; do
  IFS='|' read -r name code pattern <<<"$row"
  build_attack "$name"
  attack "$name" kernel "$code" "$pattern"
  attack "$name" stub "$code" "$pattern"
done

# A guest that never stops: killed at --timeout.
build_attack spin
TIMEOUT=2 attack spin kernel 9 "the guest did not finish within 2000 ms; stopped"
TIMEOUT=2 attack spin stub 9 "the guest did not finish within 2000 ms; stopped"

# The scan: every byte of guest RAM and the gate table's page hold none of
# the machine key's bytes (the guest exits 0, a clean boot), while the
# ultravisor holds the key (--machine-key). Its positive control: the same
# scanner with the key's bytes placed in guest RAM (as the initrd) finds
# them and exits 98, so a scan that could not find them would fail here.
build_attack scan_key
attack scan_key kernel 0 "^$" --machine-key machine.key
attack scan_key stub 0 "^$" --machine-key machine.key
cp scan_key.elf scan_control.elf
"$SVMKIT" build --kernel scan_control.elf --initrd key-bytes.bin --cmdline "$CMDLINE" --key k.key \
  -o scan_control.img >/dev/null
attack scan_control kernel 10 "the guest exited with status 98" --machine-key machine.key

echo
printf '%-18s | %-6s | %-4s | %s\n' attack where ok observed
for r in "${ROWS[@]}"; do
  IFS='|' read -r name where _ observed ok <<<"$r"
  printf '%-18s | %-6s | %-4s | %s\n' "$name" "$where" "$ok" "$observed"
done
finish
