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

"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --key k.key -o secure.img \
  --cmdline "console=hvc0 svm=on svmkit.swiotlb=8M svmkit.io=8"

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
# A normal guest's loader has shared nothing and unshares nothing.
CHECKS=$((CHECKS + 1))
[ "$(json "(j['loader']['secure'], j['loader']['unshared'], j['pool']['calls'][0]['call'])")" = "(False, None, 'UV_SHARE_PAGE')" ] ||
  fail "a normal guest's loader: $(json "j['loader'], j['pool']")"
expect_not_contains "$OUT" "UV_UNSHARE_ALL_PAGES"
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

# ---- grub-style: boot.cfg and the image from a disk ---------------------------------
# A boot disk made with standard tools (the layout of docs/loader.md): a newc
# cpio (cpio -H newc) in a GPT partition of type "svmkit boot", written here
# by a few lines of Python (no partitioning tool needed).
# boot_disk OUT DIR: DIR's files (boot.cfg first) archived onto a boot disk.
boot_disk() {
  (cd "$2" && { if [ -f boot.cfg ]; then echo boot.cfg; fi; find . -mindepth 1 ! -name boot.cfg | sed 's|^\./||' | sort; } |
    cpio -o -H newc --quiet) >"$WORK/part.cpio"
  python3 - "$1" "$WORK/part.cpio" <<'PY'
import struct, sys, uuid, zlib
out, part = sys.argv[1], open(sys.argv[2], "rb").read()
LBA, first = 512, 2048
count = -(-len(part) // (1 << 20)) * (1 << 20) // LBA
last = first + count + 2048 - 1
entry = (uuid.UUID("660bcd5f-9db5-409e-87fe-d909cdfd16cf").bytes_le + uuid.UUID(int=1).bytes_le +
         struct.pack("<QQQ", first, first + count - 1, 0) + "boot".encode("utf-16-le").ljust(72, b"\0"))
entries = entry.ljust(128 * 128, b"\0")
def header(me, other, at):
    h = struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, me, other, 34, last - 33,
                    uuid.UUID(int=2).bytes_le, at, 128, 128, zlib.crc32(entries))
    return (h[:16] + struct.pack("<I", zlib.crc32(h)) + h[20:]).ljust(LBA, b"\0")
disk = bytearray((last + 1) * LBA)
disk[446:462] = struct.pack("<B3sB3sII", 0, b"\0\2\0", 0xEE, b"\xff\xff\xff", 1, last)
disk[510:512] = b"\x55\xaa"
disk[LBA:2 * LBA] = header(1, last, 2)
disk[2 * LBA:2 * LBA + len(entries)] = entries
disk[first * LBA:first * LBA + len(part)] = part
disk[(last - 32) * LBA:(last - 32) * LBA + len(entries)] = entries
disk[last * LBA:] = header(last, 1, last - 32)
open(out, "wb").write(disk)
PY
}

mkdir -p root/images
cp secure.img root/images/secure.img
cp "$CORPUS/segments_overlap.elf" root/images/broken.img
cat >root/boot.cfg <<'CFG'
# svmkit boot menu
set default="secure"
set timeout=5
menuentry "missing" {
    linux /images/none.img console=hvc0
}
menuentry "secure" {
    linux /images/secure.img console=hvc0
}
menuentry "broken" {
    linux /images/broken.img
}
menuentry "dir" {
    linux /images
}
CFG
boot_disk boot.img root
# The workload writes to the first disk: the data disk goes first, the loader
# skips it (no boot partition) and boots from the second.
for backend in svmkit qemu; do
  truncate -s 0 data.img && truncate -s 128M data.img
  expect_exit 0 "$SVMKIT" boot --disk data.img --disk boot.img --backend $backend --trusted-key k.pub
  expect_contains "$OUT" "svmkit loader: virtio-blk disk at 0x100000000000"
  expect_contains "$OUT" "svmkit loader: no boot partition on this disk: "
  expect_contains "$OUT" "svmkit loader: boot partition at byte 1048576"
  expect_contains "$OUT" "svmkit loader: boot.cfg: 4 entries"
  expect_contains "$OUT" "svmkit loader: booting entry \"secure\": /images/secure.img"
  expect_contains "$OUT" "the entry's command line \"console=hvc0\" is not used"
  expect_contains "$OUT" "svmkit loader: image read: $(stat -c %s secure.img) bytes at 0x"
  expect_contains "$OUT" "purgatory: 5 segment digests rechecked"
  expect_contains "$OUT" "svmkit sample kernel: running secure"
  # The device the loader drove with direct DMA was reset: the secure kernel
  # set it up again, bounced through its pool.
  expect_contains "$OUT" "restricted-dma-pool described for 2 virtio device\(s\)"
  expect_contains "$OUT" "io on virtio-blk at 0x100000000000: 128 MiB, bounced through the pool"
  expect_contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
  expect_contains "$OUT" "io failed requests 0, private memory intact"
  expect_contains "$OUT" "boot menu: 4 entries, chose 1 \"secure\""
  expect_contains "$OUT" "image from disk: 0x[0-9a-f]+ \+$(stat -c %s secure.img)"
  expect_contains "$OUT" "svmkit boot report: data.img, boot.img"
done
# The boot disk itself was only read: byte for byte what was written.
boot_disk boot-again.img root
same_files boot.img boot-again.img
expect_exit 0 "$SVMKIT" boot --disk data.img --disk boot.img --trusted-key k.pub --json
CHECKS=$((CHECKS + 1))
[ "$(json "j['loader']['source'], j['loader']['entries'], j['loader']['chosen'], j['loader']['chosen_name'], j['loader']['kexec_buffer'], j['loader']['purgatory']")" = "disk 4 1 secure None ok" ] ||
  fail "grub-style loader report: $(json "j['loader']")"
# A data disk alone: nothing to boot.
expect_exit 30 "$SVMKIT" boot --disk data.img --trusted-key k.pub
expect_contains "$OUT" "svmkit loader: error: no disk holds an svmkit boot partition"

# The same from a disk made by `svmkit mkdisk` (docs/loader.md): two entries,
# the one named on the command line (--entry) boots.
"$SVMKIT" build --kernel "$SAMPLE_KERNEL" --key k.key -o other.img \
  --cmdline "console=hvc0 svm=on svmkit.swiotlb=4M svmkit.io=2" >/dev/null
expect_exit 0 "$SVMKIT" mkdisk -o mk.img --entry main=secure.img --entry other=other.img --default main
expect_exit 0 "$SVMKIT" boot --disk data.img --disk mk.img --entry other --trusted-key k.pub
expect_contains "$OUT" "svmkit loader: command line \"svmkit.boot_entry=other\""
expect_contains "$OUT" "svmkit loader: booting entry \"other\": /images/other.img"
expect_contains "$OUT" "bootargs \"console=hvc0 svm=on svmkit.swiotlb=4M svmkit.io=2\""
expect_contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
expect_contains "$OUT" "boot menu: 2 entries, chose 1 \"other\""
expect_exit 0 "$SVMKIT" boot --disk data.img --disk mk.img --trusted-key k.pub
expect_contains "$OUT" "boot menu: 2 entries, chose 0 \"main\""
expect_contains "$OUT" "bootargs \"console=hvc0 svm=on svmkit.swiotlb=8M svmkit.io=8\""

# The mkdisk disk alone (`svmkit boot --disk mk.img`): the secure kernel's
# workload writes the disk's "svmkit data" partition, never what precedes it
# (MBR, GPT, the boot partition).
data_start=$(sfdisk -d mk.img | sed -n 's/^mk.img2 : start= *\([0-9]*\),.*/\1/p')
expect_contains "$data_start" "^[0-9]+$" # mk.img has a data partition
head_sum() { head -c $((data_start * 512)) "$1" | sha256sum; }
data_sum() { tail -c +$((data_start * 512 + 1)) "$1" | sha256sum; }
before=$(head_sum mk.img)
data_before=$(data_sum mk.img)
expect_exit 0 "$SVMKIT" boot --disk mk.img --trusted-key k.pub
expect_contains "$OUT" "io: the svmkit data partition at byte 0x$(printf %x $((data_start * 512)))"
expect_contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
expect_contains "$(head_sum mk.img)" "^$before\$" # GPT and boot partition unchanged
expect_not_contains "$(data_sum mk.img)" "^$data_before\$" # the data partition was written
# The primary GPT damaged (its header sector zeroed): the loader and the
# kernel read the backup GPT at the disk's last LBA, and the workload still
# writes only the data partition.
cp mk.img damaged.img
dd if=/dev/zero of=damaged.img bs=512 seek=1 count=1 conv=notrunc status=none
before=$(head_sum damaged.img)
expect_exit 0 "$SVMKIT" boot --disk damaged.img --trusted-key k.pub
expect_contains "$OUT" "svmkit loader: the primary GPT is damaged: using the backup GPT at the disk's last LBA"
expect_contains "$OUT" "svmkit loader: booting entry \"main\""
expect_contains "$OUT" "io: the svmkit data partition at byte 0x$(printf %x $((data_start * 512))) \(from the backup GPT: the primary is damaged\)"
expect_contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
expect_contains "$(head_sum damaged.img)" "^$before\$"
# Both GPTs damaged: no boot partition, the primary's reason.
dd if=/dev/zero of=damaged.img bs=512 seek=$(($(stat -c %s damaged.img) / 512 - 1)) count=1 conv=notrunc status=none
expect_exit 30 "$SVMKIT" boot --disk damaged.img --trusted-key k.pub
expect_contains "$OUT" "no boot partition on this disk: bad GPT signature"
# A boot disk without a data partition is left alone: the workload refuses.
mk_size=$(stat -c %s mk.img)
expect_exit 0 "$SVMKIT" mkdisk -o nodata.img --entry main=secure.img --size $((mk_size - (64 << 20)))
expect_not_contains "$(sfdisk -d nodata.img)" "^nodata.img2 "
cp nodata.img nodata.orig
expect_exit 22 "$SVMKIT" boot --disk nodata.img --trusted-key k.pub
expect_contains "$OUT" "io: the disk is an svmkit boot disk without a data partition: not writing to it"
same_files nodata.img nodata.orig

# ---- boot menu errors: a clear message on the guest console, a clean stop --------
expect_exit 34 "$SVMKIT" boot --disk data.img --disk boot.img --entry missing --trusted-key k.pub
expect_contains "$OUT" "svmkit loader: error: cannot read the image /images/none.img: "
expect_exit 34 "$SVMKIT" boot --disk data.img --disk boot.img --entry dir --trusted-key k.pub
expect_contains "$OUT" "svmkit loader: error: cannot read the image /images: "
expect_exit 33 "$SVMKIT" boot --disk data.img --disk boot.img --entry nosuch --trusted-key k.pub
expect_contains "$OUT" "svmkit loader: error: boot.cfg has no entry named \"nosuch\" \(entries: \"missing\" \"secure\" \"broken\" \"dir\"\)"
# A malformed image on the disk is refused by the same ELF loader.
expect_exit 31 "$SVMKIT" boot --disk data.img --disk boot.img --entry broken --trusted-key k.pub
expect_contains "$OUT" "the image was rejected: .* \(segments_overlap\)"
expect_contains "$OUT" "boot menu: 4 entries, chose 2 \"broken\""
# Bad boot.cfg files: each names its line and problem.
bad_cfg() { # NAME EXPECTED-PATTERN: boot.cfg from stdin
  mkdir -p "bad-$1/images" && cp secure.img "bad-$1/images/secure.img" && cat >"bad-$1/boot.cfg"
  boot_disk "bad-$1.img" "bad-$1"
  expect_exit 33 "$SVMKIT" boot --disk data.img --disk "bad-$1.img" --trusted-key k.pub
  expect_contains "$OUT" "svmkit loader: error: boot.cfg line $2"
  expect_not_contains "$OUT" "svmkit stub:"
}
printf 'set default="gone"\nmenuentry "secure" {\n linux /images/secure.img\n}\n' | bad_cfg default "[0-9]+: .*default"
printf 'menuentry "secure" {\n linux /images/secure.img\n}\nboot "secure"\n' | bad_cfg keyword "4: unknown keyword"
printf 'menuentry "secure" {\n linux /images/secure.img\n initrd /x\n}\n' | bad_cfg initrd "3: initrd not supported"
printf 'menuentry "secure" {\n linux /images/secure.img\n' | bad_cfg unterminated "[0-9]+: .*"
# No boot.cfg in the archive.
mkdir -p nocfg/images && cp secure.img nocfg/images/secure.img && boot_disk nocfg.img nocfg
expect_exit 33 "$SVMKIT" boot --disk data.img --disk nocfg.img --trusted-key k.pub
expect_contains "$OUT" "svmkit loader: error: cannot read boot.cfg: "

# ---- usage --------------------------------------------------------------------------
expect_error 2 "nothing to boot" "$SVMKIT" boot --trusted-key k.pub
expect_error 2 "leave out the image argument" "$SVMKIT" boot secure.img --kexec secure.img --trusted-key k.pub
expect_error 2 "--entry picks from a disk's boot menu" "$SVMKIT" boot --kexec secure.img --entry x --trusted-key k.pub
expect_error 4 "missing.img: cannot open the image" "$SVMKIT" boot --kexec missing.img --trusted-key k.pub
SVMKIT_BOOT_LOADER=$WORK/none.elf expect_error 4 "none.elf" "$SVMKIT" boot --kexec secure.img --trusted-key k.pub
finish
