#!/usr/bin/env bash
# The hypervisor is a process of its own that sees only hypervisor-visible
# memory. Playing the hypervisor through the test hooks (svmkit boot
# --hv-hook, run inside that process at the moments a hypervisor sees):
#   - before ESM it sees the guest (a normal VM): the image, the command line;
#   - after ESM it finds none of the guest's data anywhere it can read: not
#     the command line, not the sample kernel's secret canary, zeros where the
#     image was; only the shared bounce pool, with the public bytes the guest
#     put there;
#   - it cannot read the guest's process memory through /proc;
#   - tampering with the image in guest memory between load and ESM (at
#     load, or as ESM starts) is caught by the ultravisor.
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }
MARKER="svmkit-hv-visible-marker-7f3a9c"
CMDLINE="console=hvc0 svm=on svmkit.swiotlb=4M note=$MARKER"
MARKER_HEX=$(hexof "$MARKER")
POOL_HEX=$(hexof "svmkit sample kernel: public bytes in the shared pool")


# hook_check PYTHON-ASSERTION: over `log` = the hook log as a list of dicts,
# and `find(event, action)` = the first entry for that event and action.
hook_check() {
  CHECKS=$((CHECKS + 1))
  python3 -c "
import json
log = [json.loads(l) for l in open('hooks.jsonl')]
def find(event, action, n=0):
    return [e for e in log if e['event'] == event and e['action'] == action][n]
assert $1, log" || fail "hook check failed: $1"
}

"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
"$SVMKIT_SOURCE_DIR/samples/make-sample-initrd.sh" initrd.cpio.gz
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --initrd initrd.cpio.gz \
  --cmdline "$CMDLINE" --key k.key -o img
read -r KBASE _ < <(section .text img)
read -r KERNEL_GPA KERNEL_SIZE < <(section .kernel:vmlinux.strip img)
read -r CMDLINE_GPA _ < <(section .kernel:cmdline img)
read -r INITRD_GPA _ < <(section .kernel:initrd img)
IMAGE_SIZE=$((KERNEL_GPA + KERNEL_SIZE - KBASE))

# ---- what the hypervisor sees, before and after ESM --------------------------------
expect_exit 0 "$SVMKIT" boot img --trusted-key k.pub --hv-hook-log hooks.jsonl \
  --hv-hook "loaded:scan=$MARKER_HEX" \
  --hv-hook "loaded:read=$KBASE+$IMAGE_SIZE" \
  --hv-hook "loaded:proc-mem" \
  --hv-hook "esm-start:scan=$MARKER_HEX" \
  --hv-hook "esm-done:scan=$MARKER_HEX" \
  --hv-hook "esm-done:read=$KBASE+$IMAGE_SIZE" \
  --hv-hook "exit:scan=$MARKER_HEX" \
  --hv-hook "exit:scan=$CANARY_HEX" \
  --hv-hook "exit:scan=$POOL_HEX" \
  --hv-hook "exit:shared" \
  --hv-hook "exit:read=$KBASE+$IMAGE_SIZE" \
  --hv-hook "exit:proc-mem"
expect_contains "$OUT" "canary=stored at 0x[0-9a-f]+ status=0"
# A normal VM until ESM: the command line is in the image and in the FDT the
# stub built, and the image bytes are there.
hook_check "find('loaded', 'scan')['found'] >= 1"
hook_check "find('loaded', 'read')['nonzero'] > 0"
hook_check "find('esm-start', 'scan')['found'] >= 1"
# Secure: nothing left, anywhere in the hypervisor's view of guest RAM.
hook_check "find('esm-done', 'scan')['found'] == 0"
hook_check "find('esm-done', 'read')['nonzero'] == 0"
hook_check "find('exit', 'scan', 0)['found'] == 0"
hook_check "find('exit', 'scan', 1)['found'] == 0 and find('exit', 'scan', 1)['pattern'] == '$CANARY_HEX'"
hook_check "find('exit', 'read')['nonzero'] == 0"
# ...except the shared pool, with the guest's public bytes in it.
hook_check "len(find('exit', 'shared')['ranges']) == 1 and find('exit', 'shared')['ranges'][0]['size'] == 4 << 20"
hook_check "find('exit', 'scan', 2)['found'] == 1"
hook_check "(lambda r, a: r['gpa'] <= a < r['gpa'] + r['size'])(find('exit', 'shared')['ranges'][0], find('exit', 'scan', 2)['at'][0])"
# The guest's process memory is out of reach.
hook_check "find('loaded', 'proc-mem')['readable'] is False"
hook_check "find('exit', 'proc-mem')['readable'] is False"

# ---- tampering between load and ESM is caught ---------------------------------
for event in loaded esm-start; do
  expect_error 5 "kernel-digest-mismatch" "$SVMKIT" boot img --trusted-key k.pub \
    --hv-hook-log t.jsonl --hv-hook "$event:write=$((KERNEL_GPA + KERNEL_SIZE / 2)):ff"
  expect_not_contains "$OUT" "hello from the guest kernel"
done
expect_error 5 "initrd-digest-mismatch" "$SVMKIT" boot img --trusted-key k.pub \
  --hv-hook-log t.jsonl --hv-hook "loaded:write=$((INITRD_GPA + 100)):00ff"
expect_error 5 "cmdline-digest-mismatch" "$SVMKIT" boot img --trusted-key k.pub \
  --hv-hook-log t.jsonl --hv-hook "esm-start:write=$CMDLINE_GPA:41"
# The stub's own code, changed before it ever runs: it may crash or call ESM;
# either way the guest kernel never runs secure.
"$SVMKIT" boot img --trusted-key k.pub --timeout 20 --hv-hook-log t.jsonl \
  --hv-hook "loaded:write=$((KBASE + 0x10)):0f0b" >out.txt 2>&1 && fail "a tampered stub booted"
expect_not_contains "$(cat out.txt)" "running secure"

# ---- bad hooks are usage errors, before anything runs -----------------------------
expect_error 2 "--hv-hook nonsense: expected EVENT:ACTION" "$SVMKIT" boot img --trusted-key k.pub \
  --hv-hook-log t.jsonl --hv-hook nonsense
expect_error 2 "unknown event" "$SVMKIT" boot img --trusted-key k.pub --hv-hook-log t.jsonl \
  --hv-hook "later:shared"
expect_error 2 "write wants =GPA:HEX" "$SVMKIT" boot img --trusted-key k.pub --hv-hook-log t.jsonl \
  --hv-hook "loaded:write=0x100:zz"
expect_error 2 "needs --hv-hook-log" "$SVMKIT" boot img --trusted-key k.pub --hv-hook "exit:shared"
finish
