#!/usr/bin/env bash
# The normal guest that loads a secure image (docs/loader-boot.md): svmkit
# boot runs the boot loader program non-secure, which loads the image
# kexec-style (from a buffer the firmware placed like an initrd) or grub-style
# (boot.cfg and the image from a disk made by `svmkit mkdisk`), checks every
# placed segment again in its purgatory, and jumps to the stub; the secure
# sample kernel then runs its I/O workload. Also: every malformed ELF of the
# loader's corpus is refused by the guest with its reason and a clean exit; a
# hypervisor writing a placed segment is caught by the purgatory; boot menu
# errors are named on the guest console.
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }
[ -f "$(dirname "$SVMKIT")/svmkit-boot-loader.elf" ] || [ -n "${SVMKIT_BOOT_LOADER:-}" ] ||
  { echo "no boot loader beside $SVMKIT" >&2; exit 1; }
CORPUS=${SVMKIT_LOADER_CORPUS:-$SVMKIT_SOURCE_DIR/tests/data/loader/malformed}
[ -f "$CORPUS/EXPECTED" ] || { echo "no malformed ELF corpus at $CORPUS" >&2; exit 1; }

# json EXPR: evaluates a Python expression over the JSON report in $OUT (j).
json() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$OUT"; }

"$SVMKIT" keygen --algo ed25519 --out k.key --pub k.pub >/dev/null
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --key k.key -o secure.img \
  --cmdline "console=hvc0 svm=on swiotlb=8M svmkit.io=8"

# ---- kexec-style: the loader places, digests, rechecks, jumps; the kernel runs secure ----
truncate -s 128M data.img
expect_exit 0 "$SVMKIT" boot --kexec secure.img --trusted-key k.pub --disk data.img \
  --cmdline-extra "loglevel=7"
expect_contains "$OUT" "svmkit loader: command line \"loglevel=7\""
expect_contains "$OUT" "svmkit loader: kexec image at 0x[0-9a-f]+, [0-9]+ bytes"
expect_contains "$OUT" "svmkit loader: image accepted: 5 segments, entry 0x4000000"
expect_contains "$OUT" "purgatory: 5 segment digests rechecked; jumping to the stub at 0x4000000 \(r3 = fdt 0x3e00000, r4 = kbase 0x4000000, r5 = 0\)"
expect_contains "$OUT" "svmkit sample kernel: running secure \(MSR\[S\] set\)"
expect_contains "$OUT" "io on virtio-blk at 0x100000000000: 128 MiB, bounced through the pool"
expect_contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
expect_contains "$OUT" "io failed requests 0, private memory intact"
# The report's loader stage, text and JSON.
expect_contains "$OUT" "  loader +at"
expect_contains "$OUT" "kexec image 0x[0-9a-f]+\.\.0x[0-9a-f]+ \(/chosen linux,initrd-start/end\)"
expect_contains "$OUT" "segment 0x4000000 \+[0-9]+ +sha256 [0-9a-f]{64}"
expect_contains "$OUT" "5 segments placed; entry 0x4000000, kbase 0x4000000"
expect_contains "$OUT" "purgatory: every segment digest rechecked, jumped to the stub"
expect_contains "$OUT" "result +exited with status 0"

expect_exit 0 "$SVMKIT" boot --kexec secure.img --trusted-key k.pub --json
CHECKS=$((CHECKS + 1))
[ "$(json "[s['name'] for s in j['stages']]")" = "['load', 'loader', 'stub', 'esm', 'stub-secure', 'kernel']" ] ||
  fail "stages: $(json "[s['name'] for s in j['stages']]")"
CHECKS=$((CHECKS + 1))
[ "$(json "j['loader']['source'], j['loader']['purgatory'], len(j['loader']['segments']), j['loader']['kbase'], j['loader']['entries']")" = "kexec ok 5 0x4000000 None" ] ||
  fail "loader report: $(json "j['loader']")"
# The digests the loader recorded are the ones the ultravisor computed on the
# secure copy (same bytes, same places).
CHECKS=$((CHECKS + 1))
[ "$(json "all(any(s['address'] == d['address'] and s['sha256'] == d['digest'] for s in j['loader']['segments']) for d in j['esm']['digests'])")" = True ] ||
  fail "loader digests differ from the ultravisor's: $(json "j['loader']['segments'], j['esm']['digests']")"
CHECKS=$((CHECKS + 1))
[ "$(json "j['loader']['kexec_buffer']['end'] != j['loader']['kexec_buffer']['start']")" = True ] ||
  fail "no kexec buffer in the report"
# A secure image booted firmware-style has no loader stage.
expect_exit 0 "$SVMKIT" boot secure.img --trusted-key k.pub --json
CHECKS=$((CHECKS + 1))
[ "$(json "j['loader']")" = None ] || fail "a firmware-style boot reports a loader"

# ---- purgatory: the hypervisor changes a placed segment before the jump -------------
for at in 0x4000100:ff 0x4040000:41; do
  expect_exit 32 "$SVMKIT" boot --kexec secure.img --trusted-key k.pub \
    --hv-hook "segments-placed:write=$at" --hv-hook-log tamper.jsonl
  expect_contains "$OUT" "svmkit loader: error: purgatory: segment [0-9] at 0x40[0-4]0000 \([0-9]+ bytes\) changed after it was placed: digest mismatch; not jumping to the stub"
  expect_contains "$OUT" "purgatory: segment [0-9] CHANGED after placement"
  expect_not_contains "$OUT" "svmkit stub:|UV_ESM"
  expect_contains "$(cat tamper.jsonl)" '"event":"segments-placed","action":"write".*"bytes":1'
done
# A hook that only reads at segments-placed changes nothing: the boot goes on.
expect_exit 0 "$SVMKIT" boot --kexec secure.img --trusted-key k.pub \
  --hv-hook "segments-placed:read=0x4000000+16" --hv-hook-log read.jsonl
expect_contains "$(cat read.jsonl)" '"event":"segments-placed","action":"read"'

# ---- the malformed ELF corpus: each refused by the guest with its reason ----------
n=0
while read -r file reason; do
  case $file in '#'* | '') continue ;; esac
  expect_exit 31 "$SVMKIT" boot --kexec "$CORPUS/$file" --trusted-key k.pub
  expect_contains "$OUT" "svmkit loader: error: the image was rejected: .* \($reason\)"
  expect_contains "$OUT" "svmkit loader: stopping with status 31"
  expect_not_contains "$OUT" "svmkit stub:|segments placed"
  n=$((n + 1))
done <"$CORPUS/EXPECTED"
CHECKS=$((CHECKS + 1))
[ "$n" -ge 12 ] || fail "only $n malformed images in the corpus"
# Not an ELF at all, and a truncated image.
head -c 100 secure.img >truncated.img
expect_exit 31 "$SVMKIT" boot --kexec truncated.img --trusted-key k.pub
expect_contains "$OUT" "the image was rejected: .* \(phdr_table_outside_file\)"

# ---- usage --------------------------------------------------------------------------
expect_error 2 "nothing to boot" "$SVMKIT" boot --trusted-key k.pub
expect_error 2 "leave out the image argument" "$SVMKIT" boot secure.img --kexec secure.img --trusted-key k.pub
expect_error 2 "--entry picks from a disk's boot menu" "$SVMKIT" boot --kexec secure.img --entry x --trusted-key k.pub
expect_error 4 "missing.img: cannot open the image" "$SVMKIT" boot --kexec missing.img --trusted-key k.pub
SVMKIT_BOOT_LOADER=$WORK/none.elf expect_error 4 "none.elf" "$SVMKIT" boot --kexec secure.img --trusted-key k.pub
finish
