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

# The whole-address-space scan looks for three 32-byte patterns, each
# inverted in the scanner: the machine key's bytes above; the trust store's
# (the public key of a second --trusted-key, which signs nothing, so no image
# holds it); and a marker only the vCPU's own stack can hold, for the control
# that runs svmkit-vcpu from a directory named after it (its argv[0]).
"$SVMKIT" keygen --algo ed25519 -o trust.key --public-output trust.pub >/dev/null
TRUST_BYTES=$(openssl pkey -pubin -in trust.pub -outform DER | tail -c 32 | od -An -tu1 -v | xargs)
MARKER=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n') # 32 hex digits: 32 bytes
MARKER_BYTES=$(printf '%s' "$MARKER" | od -An -tu1 -v | xargs)
SCAN_PATTERNS="{$(for b in $KEY_BYTES $TRUST_BYTES $MARKER_BYTES; do printf '%d,' $((255 - b)); done)}"
python3 -c "import sys; sys.stdout.buffer.write(bytes(int(b) for b in sys.argv[1:]) * 4)" \
  $TRUST_BYTES >trust-bytes.bin
# The attacker knows svmkit-vcpu's layout: where its channel pointer lies
# from the gate table it is handed (nm; a wrong offset makes the attacks
# that use it fail loudly, with a forbidden futex or a fault).
# svmkit-vcpu: beside svmkit in the build tree, in libexec/svmkit/ of an install.
VCPU=${SVMKIT_VCPU:-$(dirname "$SVMKIT")/svmkit-vcpu}
[ -x "$VCPU" ] || VCPU=$(dirname "$SVMKIT")/../libexec/svmkit/svmkit-vcpu
symbol() { nm "$VCPU" | awk -v s="$1" '$3 == s { print $1 }'; }
GATES_AT=$(symbol _ZN12_GLOBAL__N_1L6kGatesE)
CHANNEL_AT=$(symbol _ZN12_GLOBAL__N_19g_channelE)
[ -n "$GATES_AT" ] && [ -n "$CHANNEL_AT" ] || { echo "no kGates/g_channel symbol in $VCPU" >&2; exit 1; }
CHANNEL_VAR_OFFSET=$((0x$CHANNEL_AT - 0x$GATES_AT))
mkdir "vcpu-$MARKER"
ln -s "$(cd "$(dirname "$VCPU")" && pwd)/$(basename "$VCPU")" "vcpu-$MARKER/svmkit-vcpu"

# build_attack NAME [EXTRA-IMAGE-ARGS...]: NAME.elf (the attack as a kernel),
# NAME.img (signed, with it as kernel) and NAME-stub.img (its blob over the
# stub's entry, at file offset 0x10000: .text, whose first byte is the entry).
build_attack() {
  local name=$1
  shift
  gcc -nostdlib -static -fPIC -fno-stack-protector -ffreestanding -O2 -I "$SRC" \
      -DATTACK_"$name" -DHOST_PATH="\"$WORK/created-by-$name\"" \
      -DGUEST_RAM_SIZE="$MEMORY_BYTES" -DPATTERN="$PATTERN" -DSCAN_PATTERNS="$SCAN_PATTERNS" \
      -DCHANNEL_VAR_OFFSET="$CHANNEL_VAR_OFFSET" \
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

# [TIMEOUT=S] [OUT=REGEX] [JSON=PYTHON] attack NAME WHERE CODE PATTERN
# [BOOT-ARGS...]: boots NAME.img (WHERE = kernel) or NAME-stub.img (WHERE =
# stub) with --timeout S (20); svmkit must exit CODE with stderr matching
# PATTERN; with OUT, stdout (the console and report) must match REGEX; with
# JSON, the boot runs with --json and the expression must hold of its
# report `d`.
attack() {
  local name=$1 where=$2 code=$3 pattern=$4
  shift 4
  local img=$name.img
  [ "$where" = kernel ] || img=$name-stub.img
  local before=$FAILURES
  CHECKS=$((CHECKS + 1))
  local json=()
  [ -z "${JSON:-}" ] || json=(--json)
  set +e
  "$SVMKIT" boot "$img" --trusted-key k.pub --memory $MEMORY --timeout "${TIMEOUT:-20}" "${json[@]}" \
    "$@" >"$name.$where.out" 2>"$name.$where.err"
  local got=$?
  set -e
  local err
  err=$(cat "$name.$where.err")
  if [ -n "${OUT:-}" ]; then
    CHECKS=$((CHECKS + 1))
    grep -qE -- "$OUT" "$name.$where.out" || fail "$name ($where): stdout does not match /$OUT/"
  fi
  if [ -n "${JSON:-}" ]; then
    CHECKS=$((CHECKS + 1))
    python3 -c "import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if ($JSON) else 1)" \
      "$name.$where.out" || fail "$name ($where): the report does not satisfy: $JSON"
  fi
  [ "$got" -lt 128 ] || fail "$name ($where): svmkit itself was killed (exit $got)"
  [ "$got" = "$code" ] || fail "$name ($where): exit $got, expected $code: $err"
  grep -qE -- "$pattern" <<<"$err" || fail "$name ($where): stderr does not match /$pattern/: $err"
  if grep -qE "Sanitizer|runtime error" <<<"$err"; then fail "$name ($where): sanitizer report"; fi
  CHECKS=$((CHECKS + 1))
  [ ! -e "$WORK/created-by-$name" ] || fail "$name ($where): the guest created a host file"
  # Where the attack ran: the kernel after UV_ESM (secure), the stub before it.
  CHECKS=$((CHECKS + 1))
  # (With --json the console streams to stderr.)
  if [ "$where" = kernel ]; then
    grep -q "svmkit stub: resumed secure by the ultravisor" "$name.$where.out" "$name.$where.err" ||
      fail "$name ($where): the kernel did not run secure"
  elif grep -q "entering secure mode" "$name.$where.out" "$name.$where.err"; then
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
  "mremap|7|$(forbidden mremap 25)"
  "mmap_ram_huge|7|$(forbidden mmap 9)"
  "exhaust_memory|7|$(forbidden mmap 9)"
  "race_kind|7|illegal gate use: a gate request of unknown kind 119"
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

# Forged ultracall results, before UV_ESM (after it the guest is secure
# already): a stub that writes UV_ESM's success into its registers and the
# channel's reply and enters itself at the resume address, without UV_ESM
# (forge_esm) or after UV_ESM refused it (forge_refused), then claims MSR[S]
# in the channel and asks to share a page. It ends with status 97 when
# mfmsr never showed MSR[S] and the share was refused (99 otherwise); the
# report must show no successful UV_ESM, no secure stage and no page shared.
NOT_SECURE="not any(s['name'] == 'stub-secure' for s in d['stages']) and \
all(c['return_code'] != 'U_SUCCESS' for c in d['pool']['calls']) and \
d['result']['exit_status'] == 97"
build_attack forge_esm
JSON="d['esm'] is None and $NOT_SECURE" \
  attack forge_esm stub 10 "the guest exited with status 97"
build_attack forge_refused
JSON="d['esm']['ok'] is False and $NOT_SECURE" \
  attack forge_refused stub 5 "the ultravisor refused the image"

# A racing channel: console writes posted straight into the channel while the
# guest flips the call number and the length under the machine's read. The
# machine acts on one copy: only whole "RACE-OK!" writes reach the console,
# every reply is one of the three a copy can get, and the guest ends 97.
RACE_CONSOLE="d['result']['exit_status'] == 97 and d['console'].count('RACE-OK!') > 0 and \
'RACE' not in d['console'].replace('RACE-OK!', '') and \
'OK!' not in d['console'].replace('RACE-OK!', '')"
build_attack race_args
JSON=$RACE_CONSOLE attack race_args kernel 10 "the guest exited with status 97"
JSON=$RACE_CONSOLE attack race_args stub 10 "the guest exited with status 97"

# The whole address space the guest can reach (hostile_guest.c, scan_space:
# every region a pointer leads to, probed without a fault, and both
# guest-memory descriptors whole) holds neither the machine key's bytes nor
# the trust store's, while the ultravisor holds both. Its controls: the same
# scanner finds the key's bytes (status 90) and the trust store's (91) placed
# in guest RAM, and the marker (92) on the vCPU's own stack, outside guest
# RAM, when svmkit-vcpu runs from a directory named after it. It must have
# walked the vCPU (its 1 MiB gate stack alone) and both descriptors whole.
SCAN_LINE="scan: [0-9]+ regions, [0-9]{7,} bytes outside guest RAM, $((2 * MEMORY_BYTES)) bytes of guest-memory descriptors"
SCAN_ARGS=(--machine-key machine.key --trusted-key trust.pub)
build_attack scan_space
OUT=$SCAN_LINE attack scan_space kernel 0 "^$" "${SCAN_ARGS[@]}"
OUT=$SCAN_LINE attack scan_space stub 0 "^$" "${SCAN_ARGS[@]}"
cp scan_space.elf scan_space_key.elf
"$SVMKIT" build --kernel scan_space_key.elf --initrd key-bytes.bin --cmdline "$CMDLINE" \
  --key k.key -o scan_space_key.img >/dev/null
attack scan_space_key kernel 10 "the guest exited with status 90" "${SCAN_ARGS[@]}"
cp scan_space.elf scan_space_trust.elf
"$SVMKIT" build --kernel scan_space_trust.elf --initrd trust-bytes.bin --cmdline "$CMDLINE" \
  --key k.key -o scan_space_trust.img >/dev/null
attack scan_space_trust kernel 10 "the guest exited with status 91" "${SCAN_ARGS[@]}"
cp scan_space.img scan_space_marker.img
cp scan_space-stub.img scan_space_marker-stub.img
for where in kernel stub; do
  SVMKIT_VCPU="$WORK/vcpu-$MARKER/svmkit-vcpu" \
    attack scan_space_marker "$where" 10 "the guest exited with status 92" "${SCAN_ARGS[@]}"
done

# The report says which new namespaces the vCPU ran in: those the kernel
# lets this user make (as root, all but a user namespace: docs/platform.md).
NS=(--pid --net --mount --ipc --uts)
NS_NAMES="pid, net, mount, ipc, uts"
if [ "$(id -u)" != 0 ]; then
  NS=(--user "${NS[@]}")
  NS_NAMES="user, $NS_NAMES"
fi
unshare "${NS[@]}" --fork true 2>/dev/null || NS_NAMES=none
CHECKS=$((CHECKS + 1))
grep -qx "  vcpu         sandboxed; new namespaces: $NS_NAMES" scan_space.kernel.out ||
  fail "the report does not name the vCPU's namespaces ($NS_NAMES): $(grep vcpu scan_space.kernel.out)"
CHECKS=$((CHECKS + 1))
python3 -c "import json, sys; d = json.load(open(sys.argv[1])); \
sys.exit(0 if ', '.join(d['vcpu']['namespaces']) == sys.argv[2] or \
(not d['vcpu']['namespaces'] and sys.argv[2] == 'none') else 1)" forge_esm.stub.out "$NS_NAMES" ||
  fail "the JSON report does not name the vCPU's namespaces ($NS_NAMES)"

echo
printf '%-18s | %-6s | %-4s | %s\n' attack where ok observed
for r in "${ROWS[@]}"; do
  IFS='|' read -r name where _ observed ok <<<"$r"
  printf '%-18s | %-6s | %-4s | %s\n' "$name" "$where" "$ok" "$observed"
done
finish
