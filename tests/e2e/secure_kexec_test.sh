#!/usr/bin/env bash
# kexec from a secure guest (docs/loader-boot.md "Secure kexec"): a secure
# image whose kernel is the boot loader and whose initrd is a second secure
# image. The ultravisor verifies the first image (its initrd, the second
# image, included); the loader, running secure, plans and places the second
# image, gives every shared page back to secure memory (UV_UNSHARE_ALL_PAGES)
# and jumps; the second stub runs secure without UV_ESM, shares a pool of its
# own, and the sample kernel does its I/O through it. Checked: the whole path
# (both back ends) and its report, that the hypervisor's view of the first pool is gone after
# the unshare, that a hypervisor write to a placed segment cannot reach a
# secure guest, and the loader's refusals while secure (no image in the
# initrd, a malformed image).
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
LOADER=${SVMKIT_BOOT_LOADER:-$(dirname "$SVMKIT")/svmkit-boot-loader.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }
[ -f "$LOADER" ] || { echo "no boot loader at $LOADER" >&2; exit 1; }

# json EXPR: evaluates a Python expression over the JSON report in $OUT (j);
# the guest console lines before the JSON object are skipped.
json() {
  python3 -c "import json,sys; t=sys.stdin.read(); j=json.loads(t[t.index('\n{')+1:] if not t.startswith('{') else t); print($1)" <<<"$OUT"
}
# hook LOG N KEY: KEY of the N-th line of a hook log.
hook() {
  python3 -c "import json,sys; print([json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2])][sys.argv[3]])" "$@"
}

"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --key k.key -o inner.img \
  --cmdline "console=hvc0 svm=on svmkit.swiotlb=8M svmkit.io=8"
expect_exit 0 "$SVMKIT" build --kernel "$LOADER" --initrd inner.img --key k.key -o outer.img \
  --cmdline "svm=on svmkit.swiotlb=4M"
truncate -s 128M data.img

# ---- the whole path ------------------------------------------------------------------
expect_exit 0 "$SVMKIT" boot outer.img --trusted-key k.pub --disk data.img \
  --hv-hook-log canary.jsonl --hv-hook "exit:scan=$CANARY_HEX"
expect_contains "$OUT" "svmkit stub: resumed secure by the ultravisor"
expect_contains "$OUT" "svmkit loader: boot loader, running secure \(MSR\[S\] set\)"
expect_contains "$OUT" "svmkit loader: kexec image at 0x4050000, [0-9]+ bytes"
# The second image lies inside the first, where its segments go: moved first.
expect_contains "$OUT" "svmkit loader: the image lies where its segments go: moved from 0x4050000 to 0x[0-9a-f]+"
expect_contains "$OUT" "svmkit loader: image accepted: 5 segments, entry 0x4000000"
expect_contains "$OUT" "svmkit loader: running secure: UV_UNSHARE_ALL_PAGES before the jump \(shared: 0x[0-9a-f]+\.\.0x[0-9a-f]+\)"
expect_contains "$OUT" "svmkit loader: purgatory: 5 segment digests rechecked; jumping to the stub at 0x4000000"
expect_contains "$OUT" "svmkit stub: entered secure by a kexec \(MSR\[S\] set, no UV_ESM of this image\)"
expect_contains "$OUT" "svmkit stub: dropping the previous kernel's bounce pool node svmkit-bounce-pool@[0-9a-f]+"
expect_contains "$OUT" "svmkit sample kernel: running secure \(MSR\[S\] set\)"
expect_contains "$OUT" "svmkit sample kernel: bootargs \"console=hvc0 svm=on svmkit.swiotlb=8M svmkit.io=8\""
expect_contains "$OUT" "io on virtio-blk at 0x100000000000: 128 MiB, bounced through the pool"
expect_contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
expect_contains "$OUT" "canary in the shared pool: no"
expect_contains "$OUT" "io failed requests 0, private memory intact"
# Exactly one UV_ESM: the second image entered secure mode through the kexec.
CHECKS=$((CHECKS + 1))
[ "$(grep -c "entering secure mode: UV_ESM" <<<"$OUT")" = 1 ] || fail "UV_ESM called more than once"
# The report: the loader stage between the two secure stub runs.
expect_contains "$OUT" "kernel \(the loader\) [0-9]+ bytes at 0x8000000 \(copied\), digest checked by the stub"
expect_contains "$OUT" "running secure: UV_UNSHARE_ALL_PAGES before the jump: U_SUCCESS \(its device tree's bounce pool 0x[0-9a-f]+\.\.0x[0-9a-f]+\)"
expect_contains "$OUT" "  stub-kexec +at"
expect_contains "$OUT" "kernel [0-9]+ bytes at 0x200000 \(copied\), digest checked by the stub"
expect_contains "$OUT" "result +exited with status 0"
CHECKS=$((CHECKS + 1))
[ "$(hook canary.jsonl 0 found)" = 0 ] || fail "the canary reached hypervisor-visible memory"

# The same with QEMU's qemu-storage-daemon serving the disk to the second kernel.
expect_exit 0 "$SVMKIT" boot outer.img --trusted-key k.pub --disk data.img --backend qemu
expect_contains "$OUT" "svmkit stub: entered secure by a kexec"
expect_contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
expect_contains "$OUT" "io failed requests 0, private memory intact"

expect_exit 0 "$SVMKIT" boot outer.img --trusted-key k.pub --disk data.img --json
CHECKS=$((CHECKS + 1))
[ "$(json "[s['name'] for s in j['stages']]")" = "['load', 'stub', 'esm', 'stub-secure', 'loader', 'stub-kexec', 'kernel']" ] ||
  fail "stages: $(json "[s['name'] for s in j['stages']]")"
CHECKS=$((CHECKS + 1))
[ "$(json "(j['loader']['secure'], j['loader']['source'], j['loader']['purgatory'], j['loader']['program_start'], j['loader']['unshared']['return_code'])")" = "(True, 'kexec', 'ok', '0x8000000', 'U_SUCCESS')" ] ||
  fail "loader report: $(json "j['loader']")"
# Share calls in order: the first stub's pool, its unshare by the loader, the
# second stub's pool; at the end only the second pool is shared.
CHECKS=$((CHECKS + 1))
[ "$(json "[c['call'] for c in j['pool']['calls']]")" = "['UV_SHARE_PAGE', 'UV_UNSHARE_PAGE', 'UV_SHARE_PAGE']" ] ||
  fail "share calls: $(json "j['pool']")"
CHECKS=$((CHECKS + 1))
[ "$(json "j['pool']['calls'][0]['base'] == j['pool']['calls'][1]['base'] == j['loader']['unshared']['pool_base'] and j['pool']['calls'][0]['size'] == j['pool']['calls'][1]['size'] and j['pool']['pages_shared'] == j['pool']['calls'][2]['pages']")" = True ] ||
  fail "unshared pool differs from the shared one: $(json "j['pool'], j['loader']['unshared']")"
POOL=$(json "j['pool']['calls'][0]['base']")
POOL_SIZE=$(json "j['pool']['calls'][0]['size']")
NEW_POOL=$(json "j['pool']['calls'][2]['base']")
KERNEL_FDT=$(json "j['kernel_entry']['fdt']")

# ---- the hypervisor's view of the first pool ends with the loader's unshare ------------
# At segments-placed the pool is still shared: the hypervisor sees it and can
# write into it. Right after UV_UNSHARE_ALL_PAGES it sees no shared page, and
# the same range reads as zeros: its view of those pages is gone.
expect_exit 0 "$SVMKIT" boot outer.img --trusted-key k.pub --disk data.img \
  --hv-hook segments-placed:shared --hv-hook "segments-placed:write=$POOL:414243" \
  --hv-hook "segments-placed:read=$POOL+65536" \
  --hv-hook loader-unshared:shared --hv-hook "loader-unshared:read=$POOL+$POOL_SIZE" \
  --hv-hook exit:shared --hv-hook-log view.jsonl
CHECKS=$((CHECKS + 1))
[ "$(hook view.jsonl 0 ranges)" = "[{'gpa': $((POOL)), 'size': $POOL_SIZE}]" ] ||
  fail "at segments-placed the hypervisor sees $(hook view.jsonl 0 ranges), not the pool"
CHECKS=$((CHECKS + 1))
[ "$(hook view.jsonl 2 nonzero)" = 3 ] || fail "the hypervisor's write into the shared pool: $(sed -n 3p view.jsonl)"
CHECKS=$((CHECKS + 1))
[ "$(hook view.jsonl 3 event) $(hook view.jsonl 3 ranges)" = "loader-unshared []" ] ||
  fail "after the loader's unshare the hypervisor still sees shared pages: $(sed -n 4p view.jsonl)"
CHECKS=$((CHECKS + 1))
[ "$(hook view.jsonl 4 nonzero)" = 0 ] || fail "after the unshare the hypervisor still reads the pool: $(sed -n 5p view.jsonl)"
CHECKS=$((CHECKS + 1))
[ "$(hook view.jsonl 5 ranges)" = "[{'gpa': $((NEW_POOL)), 'size': 8388608}]" ] ||
  fail "at exit the hypervisor sees $(hook view.jsonl 5 ranges), not only the second pool"

# ---- a hypervisor write to a placed segment does not reach a secure guest ------------
# (In a normal guest the purgatory catches it: loader_boot_test.sh.)
expect_exit 0 "$SVMKIT" boot outer.img --trusted-key k.pub --disk data.img \
  --hv-hook "segments-placed:write=0x4000100:ff" --hv-hook-log seg.jsonl
expect_contains "$OUT" "purgatory: 5 segment digests rechecked; jumping to the stub"
expect_contains "$OUT" "io failed requests 0, private memory intact"
expect_contains "$(cat seg.jsonl)" '"event":"segments-placed","action":"write".*"bytes":1'

# ---- refusals while secure -------------------------------------------------------------
# No image in the initrd: a secure guest never boots from a disk.
expect_exit 0 "$SVMKIT" build --kernel "$LOADER" --key k.key -o noimage.img --cmdline "svm=on"
expect_exit 30 "$SVMKIT" boot noimage.img --trusted-key k.pub --disk data.img
expect_contains "$OUT" "svmkit loader: error: running secure with no kexec image: a secure guest loads only an image handed over in its \(verified\) initrd, never from a disk"
expect_contains "$OUT" "svmkit loader: stopping with status 30"
# A malformed image in the initrd: refused with its reason, nothing unshared.
head -c 4096 /dev/zero | tr '\0' 'x' >garbage.img
expect_exit 0 "$SVMKIT" build --kernel "$LOADER" --initrd garbage.img --key k.key -o bad.img \
  --cmdline "svm=on"
expect_exit 31 "$SVMKIT" boot bad.img --trusted-key k.pub --json
expect_contains "$OUT" "svmkit loader: error: the image was rejected: .*\(bad_magic\)"
CHECKS=$((CHECKS + 1))
[ "$(json "(j['loader']['secure'], j['loader']['program_start'], j['loader']['unshared'], [c['call'] for c in j['pool']['calls']])")" = "(True, '0x8000000', None, ['UV_SHARE_PAGE'])" ] ||
  fail "a refused secure kexec: $(json "j['loader'], j['pool']")"

# The kernel's device tree is the second stub's own, not the loader's.
CHECKS=$((CHECKS + 1))
[ "$KERNEL_FDT" != 0x3ffe0000 ] || fail "the kernel got the first stub's device tree"

finish
