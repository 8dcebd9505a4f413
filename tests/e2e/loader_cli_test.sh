#!/usr/bin/env bash
# svmkit load --plan and svmkit mkdisk (docs/loader.md), checked with tools
# that know nothing of svmkit: readelf for the plan, sha256sum for the segment
# digests, sfdisk/fdisk/sgdisk for the GPT, cpio for the boot archive. Every
# crafted malformed ELF in tests/data/loader/malformed is refused by the plan
# with its own reason and exit 3.
source "$(dirname "$0")/lib.sh"
: "${SVMKIT_SOURCE_DIR:?SVMKIT_SOURCE_DIR must point at the source tree}"
DATA=$SVMKIT_SOURCE_DIR/tests/data/loader
for tool in readelf sfdisk fdisk sgdisk cpio python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/install-deps.sh)" >&2; exit 1; }
done

json_check() { # json_check PYTHON-ASSERTIONS (on d = the JSON in $OUT)
  CHECKS=$((CHECKS + 1))
  python3 -c "import json, sys; d = json.loads(sys.stdin.read()); $1" <<<"$OUT" ||
    fail "JSON check failed: $1"
}

# ---- images: one per platform ----
make_x86_kernel kernel.elf
head -c 70000 /dev/urandom > initrd.bin
head -c 300000 /dev/urandom > raw.bin
expect_exit 0 "$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --initrd initrd.bin --cmdline "console=hvc0" \
  --key k.key -o x86.img
expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel raw.bin --kernel-load-addr 0 \
  --cmdline "console=hvc0" --key k.key -o ppc.img

# ---- load --plan: the plan is the image's PT_LOADs by physical address ----
expect_exit 0 "$SVMKIT" load --plan x86.img
expect_contains "$OUT" "x86_64 image, [0-9]+ bytes, [0-9]+ segments, entry 0x4000000"
expect_contains "$OUT" "the loader's stack \[0x3f00000, 0x4000000\)"
expect_contains "$OUT" "the boot loader \[0x8000000, 0x[0-9a-f]+\)"
# The memory map: the segments between the reserved ranges, nothing overlapping.
expect_contains "$OUT" "^memory map:$"
expect_contains "$OUT" "^  0x4000000 +0x[0-9a-f]+ +[0-9.]+ [KM]iB  segment   segment 0 \(r-x\)$"
expect_contains "$OUT" "reserved  the boot loader$"
expect_not_contains "$OUT" "OVERLAPS"
expect_exit 0 "$SVMKIT" load --plan --json x86.img
readelf -lW x86.img | awk '$1 == "LOAD" { print $2, $4, $5, $6 }' > loads.txt
[ -s loads.txt ] || fail "readelf shows no LOAD"
python3 - "$OUT" loads.txt x86.img <<'PY' || fail "the plan does not match readelf and sha256"
import hashlib, json, sys
d = json.loads(sys.argv[1])
loads = [l.split() for l in open(sys.argv[2])]
data = open(sys.argv[3], "rb").read()
assert d["schema"] == "svmkit-load-plan-v1" and d["accepted"] is True, d
assert d["arch"] == "x86_64" and d["machine"] == 62 and d["entry"] == "0x4000000"
assert len(d["segments"]) == len(loads), (d["segments"], loads)
for s, (off, paddr, filesz, memsz) in zip(d["segments"], loads):
    assert s["file_offset"] == int(off, 16) and int(s["address"], 16) == int(paddr, 16), s
    assert s["file_size"] == int(filesz, 16) and s["mem_size"] == int(memsz, 16), s
    placed = data[s["file_offset"]:s["file_offset"] + s["file_size"]]
    placed += bytes(s["mem_size"] - s["file_size"])
    assert s["sha256"] == hashlib.sha256(placed).hexdigest(), s
assert d["segments"][0]["flags"] == "r-x"
rows = d["memory_map"]
assert [int(r["start"], 16) for r in rows] == sorted(int(r["start"], 16) for r in rows), rows
assert sum(r["kind"] == "segment" for r in rows) == len(loads), rows
assert not any(r["overlaps"] for r in rows), rows
PY
CHECKS=$((CHECKS + 1))
expect_exit 0 "$SVMKIT" load --plan --json ppc.img
json_check 'assert d["arch"] == "ppc64le" and d["machine"] == 21 and d["accepted"]'
json_check 'assert d["memory"]["reserved"][0] == {"name": "the exception vectors", "kind": "exception_vectors", "start": "0x0", "end": "0x10000"}'
# The other platform's loader refuses it; a RAM too small to hold it too.
expect_error 3 "ELF machine does not match the platform \(wrong_machine\)" \
  "$SVMKIT" load --plan --arch x86_64 ppc.img
expect_error 3 "segment outside guest RAM \(segment_outside_ram\): segment [0-9]+ \[0x[0-9a-f]+, 0x[0-9a-f]+\) lies outside guest RAM \[0x0, 0x4000000\)" \
  "$SVMKIT" load --plan --memory 64M ppc.img
# The boot loader itself (at 0x8000000) does not fit in 64 MiB: no kexec at all.
expect_error 3 "svmkit-boot-loader.elf: not a usable guest program" \
  "$SVMKIT" load --plan --memory 64M x86.img
expect_error 2 "--plan is required" "$SVMKIT" load x86.img
expect_error 2 "--memory" "$SVMKIT" load --plan --memory 1000 x86.img
expect_error 4 "nope.img" "$SVMKIT" load --plan nope.img

# ---- load --plan: every crafted malformed image, its own reason ----
# (the corpus is written for the simulated platform: --arch x86_64, or
# wrong_machine.elf would be planned as the ppc64le image it claims to be)
n=0
while read -r file reason; do
  case "$file" in '#'* | '') continue ;; esac
  n=$((n + 1))
  expect_error 3 "rejected by the loader: .*\($reason\)(: segment [0-9]+ \[.*\).*)?\$" \
    "$SVMKIT" load --plan --arch x86_64 "$DATA/malformed/$file"
  expect_exit 3 "$SVMKIT" load --plan --arch x86_64 --json "$DATA/malformed/$file"
  json_check "assert d['accepted'] is False and d['error'] == '$reason' and d['message']"
done < "$DATA/malformed/EXPECTED"
CHECKS=$((CHECKS + 1))
[ "$n" -ge 38 ] || fail "only $n malformed images checked"
expect_exit 0 "$SVMKIT" load --plan "$DATA/good/minimal.elf"
expect_contains "$OUT" "entry 0x4000040"

# ---- mkdisk: a GPT standard tools accept, a cpio standard tools read ----
expect_exit 0 "$SVMKIT" mkdisk -o disk.img --entry "sim=x86.img,cmdline=console=hvc0 svm=on, x=1" \
  --entry power=ppc.img --default power
expect_contains "$OUT" 'partition 1 "svmkit boot"'
expect_contains "$OUT" 'partition 2 "svmkit data"'
CHECKS=$((CHECKS + 1))
sfdisk -d disk.img > sfdisk.txt 2> sfdisk.err || fail "sfdisk -d refuses the disk: $(cat sfdisk.err)"
[ ! -s sfdisk.err ] || fail "sfdisk complains: $(cat sfdisk.err)"
expect_contains "$(cat sfdisk.txt)" "^label: gpt"
expect_contains "$(cat sfdisk.txt)" "disk.img1 : start= +2048, size= +[0-9]+, type=660BCD5F-9DB5-409E-87FE-D909CDFD16CF, .*name=\"svmkit boot\""
expect_contains "$(cat sfdisk.txt)" "disk.img2 : .*type=8EB3C5D8-91CA-4A30-8BDD-14936935D6D0, .*name=\"svmkit data\""
expect_exit 0 fdisk -l disk.img
expect_contains "$OUT" "Disklabel type: gpt"
expect_not_contains "$OUT$ERR" "corrupt|mismatch|invalid"
expect_exit 0 sgdisk -v disk.img
expect_contains "$OUT" "No problems found"

read -r start size < <(sed -n 's/^disk.img1 : start= *\([0-9]*\), size= *\([0-9]*\),.*/\1 \2/p' sfdisk.txt)
dd if=disk.img of=boot.cpio bs=512 skip="$start" count="$size" status=none
expect_exit 0 cpio -t -F boot.cpio
expect_contains "$OUT" "^boot.cfg$"
expect_contains "$OUT" "^images/sim.img$"
expect_contains "$OUT" "^images/power.img$"
mkdir out && (cd out && cpio -idm --quiet -F ../boot.cpio) || fail "cpio -i failed"
same_files out/images/sim.img x86.img
same_files out/images/power.img ppc.img
expect_contains "$(cat out/boot.cfg)" '^set default="power"$'
expect_contains "$(cat out/boot.cfg)" '^menuentry "sim" \{$'
expect_contains "$(cat out/boot.cfg)" '^ +linux /images/sim.img console=hvc0 svm=on, x=1$'
expect_contains "$(cat out/boot.cfg)" '^ +linux /images/power.img$'

# Same inputs, same bytes; --size gives exactly that size.
expect_exit 0 "$SVMKIT" mkdisk -o disk2.img --entry "sim=x86.img,cmdline=console=hvc0 svm=on, x=1" \
  --entry power=ppc.img --default power
same_files disk.img disk2.img
expect_exit 0 "$SVMKIT" mkdisk -o sized.img --entry sim=x86.img --size 32M
CHECKS=$((CHECKS + 1))
[ "$(stat -c %s sized.img)" -eq $((32 << 20)) ] || fail "--size 32M gave $(stat -c %s sized.img) bytes"
expect_exit 0 sgdisk -v sized.img
expect_contains "$OUT" "No problems found"

# ---- mkdisk refusals: documented exit code, no disk left behind ----
expect_error 3 "not a secure image" "$SVMKIT" mkdisk -o bad.img --entry a=kernel.elf
no_bad() { expect_no_file bad.img; }
no_bad
expect_error 3 "not a secure image" "$SVMKIT" mkdisk -o bad.img --entry a=x86.img \
  --entry b="$DATA/malformed/segments_overlap.elf"
no_bad
expect_error 2 "--default 'c': no such --entry" "$SVMKIT" mkdisk -o bad.img --entry a=x86.img --default c
expect_error 2 "'a' named twice" "$SVMKIT" mkdisk -o bad.img --entry a=x86.img --entry a=ppc.img
expect_error 2 "NAME must be" "$SVMKIT" mkdisk -o bad.img --entry 'a b=x86.img'
expect_error 2 "NAME=IMG" "$SVMKIT" mkdisk -o bad.img --entry x86.img
expect_error 2 "too small" "$SVMKIT" mkdisk -o bad.img --entry a=x86.img --size 1M
expect_error 4 "nope.img" "$SVMKIT" mkdisk -o bad.img --entry a=nope.img
no_bad

finish
