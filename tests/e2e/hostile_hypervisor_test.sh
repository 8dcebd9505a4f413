#!/usr/bin/env bash
# The hostile-hypervisor suite (docs/hostile-hypervisor.md): every attack a
# hypervisor (or its device back end) can make on a secure guest, through the
# real CLI: the nine hostile modes of svmkit-vhost-blk (ring attacks, bounce
# rewrites after completion, an interrupt storm, a back end without
# ACCESS_PLATFORM, DMA outside the shared pages), reading and writing secure
# memory, tampering with the image and the device tree before ESM, replaying
# an older image (rollback), and a guest misusing ultracalls.
#
# Each attack is one boot. Besides its own expectation, every boot must show:
#   - the hypervisor's scan of all the memory it can see at exit finds no
#     canary (the only exception is the normal VM of the svm=off row, where
#     nothing is private and the scan must find it: the scan's positive control);
#   - no wrong data, changed private memory or leaked canary reported by the
#     guest (MISMATCH, CHANGED, FOUND on a guest console line);
#   - no crash or hang (exit 6) unless the attack rewrote the stub's own code
#     before it ran;
#   - the guest's documented exit status, or a clean refusal/termination (5);
#   - no sanitizer report.
# It ends with a table: attack | expected guest behaviour | observed.
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }
# repeat HEX N: HEX N times (a write hook's payload).
repeat() { local s="" i; for ((i = 0; i < $2; i++)); do s+=$1; done; printf '%s' "$s"; }
HOSTILE_DMA_HEX=$(hexof "svmkit-vhost-blk hostile dma")
CMDLINE="console=hvc0 svm=on svmkit.swiotlb=4M svmkit.io=4"


# ---- the summary table and the per-attack checks ---------------------------------
ROWS=()     # "attack|expected|observed|ok"
ATTACK=""   # the attack being checked
EXPECTED="" # what the guest should do
ROW_OK=1

row_fail() {
  fail "$ATTACK: $*"
  ROW_OK=0
}

# need PATTERN / need_not PATTERN: over the console and the report ($ALL).
need() {
  CHECKS=$((CHECKS + 1))
  grep -qE -- "$1" <<<"$ALL" || row_fail "no line matches /$1/"
}
need_not() {
  CHECKS=$((CHECKS + 1))
  if grep -qE -- "$1" <<<"$ALL"; then row_fail "a line matches /$1/ but should not"; fi
}
# hook PYTHON-ASSERTION: over `log` (the hook log), find(event, action, n) (the
# n-th entry for that event and action) and scan(event, hex) (the scan for hex).
hook() {
  CHECKS=$((CHECKS + 1))
  python3 -c "
import json
log = [json.loads(l) for l in open('h.jsonl')]
def find(event, action, n=0):
    return [e for e in log if e['event'] == event and e['action'] == action][n]
def scan(event, pattern):
    return [e for e in log
            if e['event'] == event and e['action'] == 'scan' and e['pattern'] == pattern][0]
assert $1, log" || row_fail "hook check failed: $1"
}
# first PATTERN: the first match in $ALL (for the observed column).
first() { grep -oE -- "$1" <<<"$ALL" | head -n 1 || true; }

# attack NAME EXPECTED STATUSES CANARY ARGS...: one boot of the attack,
# `svmkit boot ARGS`, with the hypervisor's canary scan at exit. Guest RAM is
# 256 MiB: the scan reads every byte the hypervisor can see, and at the
# default 1 GiB that alone takes over a second per boot. STATUSES:
# the acceptable exit codes ("0", "5", "5 6"); CANARY: "none" (the scan must
# find nothing) or "visible" (a normal VM: the scan must find it). Leaves the
# console and report in $ALL and the hook log in h.jsonl for the attack's
# own checks; end the row with `observed TEXT`.
attack() {
  ATTACK=$1 EXPECTED=$2
  local statuses=$3 canary=$4
  shift 4
  ROW_OK=1
  rm -f h.jsonl
  local started=$SECONDS
  set +e
  "$SVMKIT" boot "$@" --memory 256M --timeout "${TIMEOUT:-30}" \
    --hv-hook-log h.jsonl --hv-hook "exit:scan=$CANARY_HEX" >"$WORK/.out" 2>"$WORK/.err"
  STATUS=$?
  set -e
  OUT=$(cat "$WORK/.out")
  ERR=$(cat "$WORK/.err")
  STATUS=$(guest_status "$STATUS" "$ERR")
  ALL="$OUT"$'\n'"$ERR"
  echo "attack: $ATTACK: exit $STATUS in $((SECONDS - started)) s"
  CHECKS=$((CHECKS + 1))
  if ! grep -qw -- "$STATUS" <<<"$statuses"; then
    row_fail "exit $STATUS, expected one of: $statuses"
    echo "  output: $ALL" >&2
  fi
  CHECKS=$((CHECKS + 1))
  if [ "$STATUS" = 6 ] && ! grep -qw 6 <<<"$statuses"; then row_fail "guest code crashed or hung"; fi
  # What the guest says about its own data and memory.
  CHECKS=$((CHECKS + 1))
  # (A row that accepts 21 accepts a mismatch the workload's verification
  # caught: the device rewriting a buffer while the guest copies it out.)
  local wrong='MISMATCH|CHANGED|\bFOUND\b'
  grep -qw 21 <<<"$statuses" && wrong='CHANGED|\bFOUND\b'
  if grep -E '^svmkit sample kernel:' <<<"$ALL" | grep -qE "$wrong"; then
    row_fail "the guest saw wrong data, changed private memory or a leak"
  fi
  need_not "Sanitizer|runtime error"
  CANARY_FOUND=$(python3 -c "
import json, sys
scans = [e for e in map(json.loads, open('h.jsonl')) if e['event'] == 'exit' and e['action'] == 'scan'
         and e['pattern'] == sys.argv[1]]
print(scans[0]['found'] if len(scans) == 1 else 'no-scan')" "$CANARY_HEX" 2>/dev/null || echo no-log)
  CHECKS=$((CHECKS + 1))
  if [ "$canary" = none ] && [ "$CANARY_FOUND" != 0 ]; then
    row_fail "the hypervisor's exit scan found the canary: $CANARY_FOUND"
  elif [ "$canary" = visible ] && ! [ "$CANARY_FOUND" -ge 1 ] 2>/dev/null; then
    row_fail "the canary of a normal VM is not visible to the scan: $CANARY_FOUND"
  fi
}

observed() {
  local text="exit $STATUS; $1; canary scan $CANARY_FOUND"
  ROWS+=("$ATTACK|$EXPECTED|$text|$([ "$ROW_OK" = 1 ] && echo ok || echo FAIL)")
}

# ---- images and the layout they boot with ----------------------------------------------
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
"$SVMKIT_SOURCE_DIR/samples/make-sample-initrd.sh" initrd.cpio.gz
build() { # build OUT SECURITY-VERSION CMDLINE
  expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --initrd initrd.cpio.gz \
    --cmdline "$3" --security-version "$2" --key k.key -o "$1"
}
build secure.img 2 "$CMDLINE"
build old.img 1 "$CMDLINE"
build misuse.img 2 "console=hvc0 svm=on svmkit.swiotlb=4M svmkit.io=2 svmkit.uv_misuse=1"
build misuse-normal.img 2 "console=hvc0 svm=off svmkit.io=2 svmkit.uv_misuse=1"
[ "$FAILURES" = 0 ] || finish
truncate -s 128M disk.img
# The platform's policy: this key, security version 2 and up.
POLICY=(--trusted-key k.pub --min-security-version 2)
read -r KBASE _ < <(section .text secure.img)
read -r IMG_KERNEL IMG_KERNEL_SIZE < <(section .kernel:vmlinux.strip secure.img)
read -r IMG_CMDLINE _ < <(section .kernel:cmdline secure.img)
read -r IMG_INITRD _ < <(section .kernel:initrd secure.img)
IMAGE_SIZE=$((IMG_KERNEL + IMG_KERNEL_SIZE - KBASE))

# ---- control: no attack; learns where the stub put the FDT, the kernel, the pool -------
attack "none (control)" "boots secure, I/O verified, exit 0" 0 none \
  secure.img "${POLICY[@]}" --disk disk.img --json --hv-hook "esm-start:scan=$(hexof "$CMDLINE")"
need "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
need "io failed requests 0, private memory intact"
observed "$(first 'io verified [0-9]+ blocks of 4 KiB, 0 mismatched')"
REPORT=$OUT
layout() { python3 -c "import json, sys; d = json.loads(sys.stdin.read()); print($1)" <<<"$REPORT"; }
FDT=$(layout "int(d['kernel_entry']['fdt'], 16)")
KLOAD=$(layout "int(d['kernel']['load_address'], 16)")
POOL_BASE=$(layout "int(d['pool']['calls'][0]['base'], 16)")
POOL_SIZE=$(layout "d['pool']['calls'][0]['size']")
RAM=$(layout "d['memory_size']")
CANARY_GPA=$(first 'canary=stored at 0x[0-9a-f]+' | grep -oE '0x[0-9a-f]+')
# The signed command line as the stub wrote it into /chosen/bootargs of its
# FDT (the other copy is the image's .kernel:cmdline).
BOOTARGS_GPA=$(python3 -c "
import json
scan = [e for e in map(json.loads, open('h.jsonl')) if e['event'] == 'esm-start'][0]
print([a for a in scan['at'] if $FDT <= a < $FDT + 0x10000][0])")

# ---- the back end attacks the rings and the shared pool (svmkit-vhost-blk --hostile) -------
# mode|expected behaviour|status|a line the guest must log
while IFS='|' read -r mode expected status line; do
  attack "back end: $mode" "$expected" "$status" none secure.img "${POLICY[@]}" --disk disk.img \
    --hostile "$mode" --hv-hook "exit:scan=$HOSTILE_DMA_HEX"
  need "$line"
  [ "$status" = 22 ] || need "private memory intact"
  if [ "$mode" = dma-outside-shared ]; then
    # The out-of-bounds DMA really happened, into memory only the hypervisor sees.
    hook "scan('exit', '$HOSTILE_DMA_HEX')['found'] >= 1"
  fi
  observed "$(first "$line")"
done <<'MODES'
used-id-out-of-range|ring marked broken, requests fail cleanly (20)|20|used id [0-9]+ out of range.*marked broken
duplicate-completion|ring marked broken, requests fail cleanly (20)|20|(used idx moved|used id [0-9]+ completed twice).*marked broken
len-too-large|ring marked broken, requests fail cleanly (20)|20|used len [0-9]+ for chain [0-9]+ exceeds .*marked broken
used-idx-jump|ring marked broken, requests fail cleanly (20)|20|used idx moved from 0 to [0-9]+.*marked broken
rewrite-descriptors|ignored: the driver never reads its table back; data verified (0)|0|io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched
rewrite-bounce-after-completion|copied once: rewritten requests fail cleanly, never wrong data (20)|20|io request failed: (read|write) of [0-9]+ bytes at sector [0-9]+: [a-z -]+
interrupt-storm|spurious interrupts ignored; data verified (0)|0|io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched
no-access-platform|device refused at probe (22)|22|device refused: it lacks VIRTIO_F_ACCESS_PLATFORM
dma-outside-shared|lands in hypervisor-visible holes only; data verified (0)|0|io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched
MODES

# ---- the same attacks mid-workload (MODE@N: N requests served honestly first) ------------
# The probe of the data partition is the driver's first request; @8 strikes
# during the write phase with 8 requests in flight, @40 during the read phase
# (the copy-out path): the ring is marked broken there too, every request in
# flight fails, nothing wrong is ever returned.
while IFS='|' read -r mode expected status line; do
  attack "back end: $mode" "$expected" "$status" none secure.img "${POLICY[@]}" --disk disk.img \
    --hostile "$mode"
  need "$line"
  need "private memory intact"
  # The phase the attack struck: requests of that kind failed.
  if [ "$status" = 20 ]; then
    case "$mode" in
    *@8) need "io request failed: write of [0-9]+ bytes" ;;
    *@40) need "io request failed: read of [0-9]+ bytes" ;;
    esac
  fi
  observed "$(first "$line")"
done <<'MODES'
used-id-out-of-range@8|mid-write, 8 in flight: ring broken, requests fail cleanly (20)|20|used id [0-9]+ out of range.*marked broken
duplicate-completion@8|mid-write: ring broken, requests fail cleanly (20)|20|(used idx moved|used id [0-9]+ completed twice).*marked broken
len-too-large@40|mid-read: ring broken before any copy-out of the bad chain (20)|20|used len [0-9]+ for chain [0-9]+ exceeds .*marked broken
used-idx-jump@40|mid-read: ring broken, requests fail cleanly (20)|20|used idx moved from [0-9]+ to [0-9]+.*marked broken
rewrite-bounce-after-completion@40|mid-read: rewritten status refused (20), or a rewrite racing the copy-out caught by the workload's verification (21); private memory intact|20 21|io request failed: read of [0-9]+ bytes at sector [0-9]+: [a-z_ -]+|io verified [0-9]+ blocks of 4 KiB, [1-9][0-9]* mismatched
interrupt-storm@8|storm from mid-write on: ignored, data verified (0)|0|io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched
MODES

# ---- reading secure memory --------------------------------------------------------------
attack "read secure memory" "hypervisor reads zeros outside the pool, /proc refused; exit 0" 0 none \
  secure.img "${POLICY[@]}" --disk disk.img \
  --hv-hook "loaded:read=$KBASE+$IMAGE_SIZE" \
  --hv-hook "esm-done:read=$KBASE+$IMAGE_SIZE" \
  --hv-hook "esm-done:read=$FDT+65536" \
  --hv-hook "exit:read=0+$POOL_BASE" \
  --hv-hook "exit:read=$((POOL_BASE + POOL_SIZE))+$((RAM - POOL_BASE - POOL_SIZE))" \
  --hv-hook "exit:read=$KLOAD+$((16 << 20))" \
  --hv-hook "exit:read=$CANARY_GPA+32" \
  --hv-hook "loaded:proc-mem" --hv-hook "esm-done:proc-mem" --hv-hook "exit:proc-mem"
need "io failed requests 0, private memory intact"
hook "find('loaded', 'read')['nonzero'] > 0" # the control: before ESM it sees the image
hook "find('esm-done', 'read', 0)['nonzero'] == 0"
hook "find('esm-done', 'read', 1)['nonzero'] == 0"
hook "all(find('exit', 'read', n)['nonzero'] == 0 for n in range(4))"
hook "all(find(e, 'proc-mem')['readable'] is False for e in ('loaded', 'esm-done', 'exit'))"
observed "image, FDT, kernel, canary and all RAM outside the pool read as zeros; /proc/pid/mem: $(
  python3 -c "import json; print([e for e in map(json.loads, open('h.jsonl')) if e['action'] == 'proc-mem'][0]['error'])")"

# ---- writing secure memory (after ESM, in the hypervisor's view) ------------------------------
UD2_4K=$(repeat 0f0b 2048)
while IFS='|' read -r what gpa bytes; do
  attack "write secure memory: $what" \
    "unaffected: digest and FDT checks pass, sentinel intact; exit 0" 0 none secure.img "${POLICY[@]}" --disk disk.img --hv-hook "esm-done:write=$gpa:$bytes" \
    --hv-hook "exit:read=$gpa+4096"
  # The bytes went into the hypervisor's own copy, and stayed there: the
  # guest's (secure) page is another page.
  hook "find('esm-done', 'write')['bytes'] == 4096"
  hook "find('exit', 'read')['nonzero'] == 4096"
  need "svmkit stub: kernel [0-9]+ bytes at 0x[0-9a-f]+ \((copied|inflated)\), digest ok"
  need "secure=yes fdt=ok bootargs=ok"
  need "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
  need "io failed requests 0, private memory intact"
  observed "4096 bytes at $(printf '%#x' "$gpa"), still in the hypervisor's copy at exit; guest: $(
    first 'digest ok'), $(first 'fdt=ok'), $(first 'private memory intact')"
done <<WRITES
the kernel in the image (the stub copies and checks it after ESM)|$IMG_KERNEL|$(repeat cc 4096)
the stub's code in the image (ud2 where ESM resumes)|$KBASE|$UD2_4K
the stub's FDT for the kernel|$FDT|$(repeat ff 4096)
the kernel's load range (ud2 at its entry)|$KLOAD|$UD2_4K
WRITES

# ---- tampering before ESM: the ultravisor refuses, each cause its own ----------------------------
while IFS='|' read -r what hookspec cause code; do
  attack "tamper before ESM: $what" "refused: $cause; the kernel never runs (5)" 5 none \
    secure.img "${POLICY[@]}" --disk disk.img --hv-hook "$hookspec"
  need "svmkit: error: .*the ultravisor refused the image: $cause: "
  need "svmkit stub: error: UV_ESM failed: -[0-9]+ \($code\)"
  need_not "svmkit sample kernel"
  observed "refused: $(first "refused: [a-z-]+ \(U_[A-Z0-9]+ -?[0-9]+\)" | sed 's/^refused: //')"
done <<TAMPER
the kernel, at load|loaded:write=$((IMG_KERNEL + IMG_KERNEL_SIZE / 2)):ff|kernel-digest-mismatch|U_PARAMETER
the kernel, as ESM starts|esm-start:write=$((IMG_KERNEL + 64)):00ff|kernel-digest-mismatch|U_PARAMETER
the initrd, at load|loaded:write=$((IMG_INITRD + 100)):00ff|initrd-digest-mismatch|U_PARAMETER
the command line, as ESM starts|esm-start:write=$IMG_CMDLINE:41|cmdline-digest-mismatch|U_PARAMETER
the stub's code, after its first run|esm-start:write=$((KBASE + 0x10)):0f0b|stub-digest-mismatch|U_PARAMETER
/chosen/bootargs in the stub's FDT|esm-start:write=$BOOTARGS_GPA:58|bootargs-mismatch|U_PARAMETER
the stub's FDT (the same 4 KiB as after ESM)|esm-start:write=$FDT:$(repeat ff 4096)|bad-fdt|U_P3
TAMPER

# The platform's own device tree, forged before the stub runs: the stub checks
# it whole and stops the VM itself (UV_SVM_TERMINATE) before asking for ESM.
attack "tamper before ESM: the platform FDT" "stub refuses it, terminates the VM (5)" 5 none \
  secure.img "${POLICY[@]}" --disk disk.img --hv-hook "loaded:write=0x3e00000:00000000" --json
need "svmkit stub: error: no valid device tree at 0x3e00000"
need_not "svmkit sample kernel"
CHECKS=$((CHECKS + 1))
python3 -c "
import json, sys
d = json.loads(sys.argv[1])
assert d['result']['outcome'] == 'terminated' and d['esm'] is None" "$OUT" ||
  row_fail "not terminated before ESM"
observed "terminated by the stub before UV_ESM"

# The stub's code itself, rewritten before it ever runs: a malicious program
# like any other (docs/platform.md): it may crash or call ESM, which refuses
# it; it never runs the kernel secure.
TIMEOUT=20 attack "tamper before ESM: the stub's code, before it runs" \
  "no secure kernel: refused (5) or crashes (6)" "5 6" none secure.img "${POLICY[@]}" --disk disk.img \
  --hv-hook "loaded:write=$((KBASE + 0x10)):0f0b"
need_not "running secure|svmkit sample kernel"
observed "$(first 'guest code faulted: SIG[A-Z]+ \([a-z ]+\)( at guest address 0x[0-9a-f]+)?|the ultravisor refused the image: [a-z-]+')"

# ---- replaying an old image: rollback ---------------------------------------------------------
attack "rollback: replay security version 1 (policy >= 2)" \
  "refused: rollback (5); version 2 boots under the same policy (control)" 5 none \
  old.img "${POLICY[@]}" --disk disk.img
need "svmkit: error: .*the ultravisor refused the image: rollback: "
need_not "svmkit sample kernel"
observed "refused: $(first "refused: rollback \(U_[A-Z]+ -?[0-9]+\)" | sed 's/^refused: //')"

# ---- tampering a normal guest's kexec load before the jump (docs/loader-boot.md) ---------------
# The hypervisor may write a normal guest's memory: between the loader placing
# the image's segments and its purgatory's recheck is where it would strike.
attack "tamper a kexec load: the stub's code after placement, before the purgatory" \
  "purgatory: digest mismatch, no jump to the stub (32)" 32 none \
  --kexec secure.img "${POLICY[@]}" --disk disk.img --hv-hook "segments-placed:write=0x4000100:ff"
need "svmkit loader: error: purgatory: segment [0-9] at 0x4000000 .* digest mismatch; not jumping to the stub"
need_not "svmkit stub:|UV_ESM|svmkit sample kernel"
observed "$(first 'purgatory: segment [0-9] at 0x[0-9a-f]+ \([0-9]+ bytes\) changed after it was placed')"

# ---- the guest misuses ultracalls (svmkit.uv_misuse=1) -----------------------------------------
attack "ultracall misuse, secure guest" \
  "ESM twice U_PERMISSION, bad shares/unshares U_PARAMETER, nothing changes; exit 0" 0 none \
  misuse.img "${POLICY[@]}" --disk disk.img --hv-hook "exit:shared"
for call in "UV_ESM .*\(ESM a second time\): U_PERMISSION" \
  "UV_UNSHARE_PAGE .*\(a private page never shared\): U_PARAMETER" \
  "UV_SHARE_PAGE .*\(the first page past RAM\): U_PARAMETER" \
  "UV_SHARE_PAGE .*\(two pages across RAM's end\): U_PARAMETER" \
  "UV_SHARE_PAGE .*\(pfn \+ pages overflows\): U_PARAMETER" \
  "UV_SHARE_PAGE .*\(zero pages\): U_PARAMETER" \
  "UV_SHARE_PAGE .*\(the bounce pool, already shared\): U_PARAMETER" \
  "UV_READ_MEM .*: U_FUNCTION"; do
  need "uv misuse: $call, expected U_[A-Z]+: ok"
done
need "uv misuse: 8 of 8 calls refused as expected; still secure"
need_not "UNEXPECTED"
need "io failed requests 0, private memory intact"
# ESM did not run again (one kernel, one resume); only the pool is shared.
CHECKS=$((CHECKS + 1))
[ "$(grep -c 'hello from the guest kernel' <<<"$ALL")" = 1 ] || row_fail "the kernel ran more than once"
hook "find('exit', 'shared')['ranges'] == [{'gpa': $POOL_BASE, 'size': $POOL_SIZE}]"
observed "$(first 'uv misuse: [0-9]+ of [0-9]+ calls refused as expected; still secure')"

attack "ultracall misuse, normal guest (svm=off)" \
  "every share call U_PERMISSION; exit 0 (a normal VM: its canary is visible)" 0 visible \
  misuse-normal.img "${POLICY[@]}" --disk disk.img --hv-hook "exit:shared"
need "UV_SHARE_PAGE .*\(share from a normal guest\): U_PERMISSION, expected U_PERMISSION: ok"
need "UV_SHARE_PAGE .*\(share past RAM from a normal guest\): U_PERMISSION, expected U_PERMISSION: ok"
need "UV_UNSHARE_PAGE .*: U_PERMISSION, expected U_PERMISSION: ok"
need "UV_UNSHARE_ALL_PAGES .*: U_PERMISSION, expected U_PERMISSION: ok"
need "uv misuse: 4 of 4 calls refused as expected; still not secure"
need_not "UNEXPECTED"
hook "find('exit', 'shared')['ranges'] == []"
observed "$(first 'uv misuse: [0-9]+ of [0-9]+ calls refused as expected; still not secure')"

# ---- the summary ------------------------------------------------------------------------
echo
echo "| attack | expected guest behaviour | observed | |"
echo "|---|---|---|---|"
for r in "${ROWS[@]}"; do
  IFS='|' read -r a e o ok <<<"$r"
  echo "| $a | $e | $o | $ok |"
  [ "$ok" = ok ] || fail "row not as expected: $a"
done
echo
finish
