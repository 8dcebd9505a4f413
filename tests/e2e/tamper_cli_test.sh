#!/usr/bin/env bash
# The tamper matrix of svmkit issue 8 through the real CLI, for a
# representative subset (the full matrix is tests/tamper, docs/tamper-matrix.md):
# header bytes flipped, padding changed, bytes appended, truncation at section
# boundaries, sections swapped between two signed images, manifests
# transplanted. `svmkit verify` and `svmkit boot` must refuse each with the
# documented exit code and a message that says what is wrong; the kernel never
# runs; a file identical to another signed image gets that image's verdict.
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }
BANNER="svmkit sample kernel"
export SOURCE_DATE_EPOCH=1700000000

# elf.py: the few ELF facts and edits the cases need (little-endian ELF64).
cat > elf.py <<'PY'
import struct, sys
from elf_sections import section, sections
EH = "<16sHHIQQQIHHHHHH"
PH_FIELDS = ["p_type", "p_flags", "p_offset", "p_vaddr", "p_paddr", "p_filesz", "p_memsz", "p_align"]
PH_OFF = [0, 4, 8, 16, 24, 32, 40, 48]
SH_FIELDS = ["sh_name", "sh_type", "sh_flags", "sh_addr", "sh_offset", "sh_size", "sh_link",
             "sh_info", "sh_addralign", "sh_entsize"]
SH_OFF = [0, 4, 8, 16, 24, 32, 40, 44, 48, 56]
EH_OFF = {"e_osabi": 7, "e_abiversion": 8, "e_pad": 9, "e_type": 16, "e_machine": 18,
          "e_version": 20, "e_entry": 24, "e_phoff": 32, "e_shoff": 40, "e_flags": 48,
          "e_phnum": 56, "e_shnum": 60, "e_shstrndx": 62}

def load(path):
    return bytearray(open(path, "rb").read())

def field(d, spec):  # e_flags | ph.N.p_align | sh.N.sh_entsize
    parts = spec.split(".")
    eh = struct.unpack_from(EH, d, 0)
    if len(parts) == 1:
        return EH_OFF[parts[0]]
    if parts[0] == "ph":
        return eh[5] + int(parts[1]) * 56 + PH_OFF[PH_FIELDS.index(parts[2])]
    return eh[6] + int(parts[1]) * 64 + SH_OFF[SH_FIELDS.index(parts[2])]

cmd = sys.argv[1]
if cmd == "sections":      # IMG: name offset size, one a line
    for s in sections(load(sys.argv[2])):
        print(s.name, s.offset, s.size)
elif cmd == "offset":      # IMG FIELD
    print(field(load(sys.argv[2]), sys.argv[3]))
elif cmd == "flip":        # IMG OFFSET MASK OUT
    d = load(sys.argv[2])
    d[int(sys.argv[3], 0)] ^= int(sys.argv[4], 0)
    open(sys.argv[5], "wb").write(d)
elif cmd == "truncate":    # IMG SIZE OUT
    open(sys.argv[4], "wb").write(load(sys.argv[2])[:int(sys.argv[3])])
elif cmd == "append":      # IMG N OUT
    open(sys.argv[4], "wb").write(load(sys.argv[2]) + bytes(int(sys.argv[3])))
elif cmd == "splice":      # DST SRC SECTION OUT: SRC's section over DST's (same size)
    d, s = load(sys.argv[2]), load(sys.argv[3])
    _, _, doff, dsize = section(d, sys.argv[4])
    _, _, soff, ssize = section(s, sys.argv[4])
    assert dsize == ssize, "sections differ in size"
    d[doff:doff + dsize] = s[soff:soff + ssize]
    open(sys.argv[5], "wb").write(d)
PY

# refused_both EXIT PATTERN IMG: verify and boot refuse IMG with exit code EXIT
# (boot: 5 for an ultravisor refusal) and a message matching PATTERN; the
# kernel never runs, nothing crashes.
refused_both() {
  local code=$1 pattern=$2 img=$3 boot_code=${4:-$1} boot_pattern=${5:-$2}
  expect_error "$code" "^svmkit: error: .*$pattern" "$SVMKIT" verify "$img" --trusted-key k.pub \
    --min-security-version 2
  expect_error "$boot_code" "^svmkit: error: .*$boot_pattern" "$SVMKIT" boot "$img" \
    --trusted-key k.pub --min-security-version 2 --memory 256M
  CHECKS=$((CHECKS + 1))
  if grep -qF "$BANNER" <<<"$OUT$ERR"; then fail "the kernel ran: $img"; fi
  CHECKS=$((CHECKS + 1))
  if grep -qE 'Sanitizer|runtime error' <<<"$ERR"; then fail "sanitizer report: $ERR"; fi
}

# ---- two signed images from different inputs, same key, and variants of A -----
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
head -c 100000 /dev/urandom > initrd-1
head -c 100000 /dev/urandom > initrd-2
printf '/dts-v1/;\n/ { model = "tamper image 1"; };\n' | dtc -I dts -O dtb -o dtb-1 -
printf '/dts-v1/;\n/ { model = "tamper image 2"; };\n' | dtc -I dts -O dtb -o dtb-2 -
build() { # build OUT COMPRESS N CMDLINE SECURITY-VERSION
  expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --initrd initrd-$3 --dtb dtb-$3 \
    --cmdline "$4" --compress "$2" --swiotlb-size 8M --security-version "$5" --key k.key -o "$1"
}
build A.img gzip 1 "console=hvc0 svm=on svmkit.swiotlb=8M" 2
build B.img none 2 "console=hvc1 svm=on svmkit.swiotlb=8M" 2
build C.img gzip 1 "console=hvc1 svm=on svmkit.swiotlb=8M" 2 # A but the command line (same length)
build D.img gzip 1 "console=hvc0 svm=on svmkit.swiotlb=8M" 1 # A but an older security version
SOURCE_DATE_EPOCH=1700000001 build E.img gzip 1 "console=hvc0 svm=on svmkit.swiotlb=8M" 2
for img in A B C E; do
  expect_exit 0 "$SVMKIT" verify $img.img --trusted-key k.pub --min-security-version 2
  expect_exit 0 "$SVMKIT" boot $img.img --trusted-key k.pub --min-security-version 2 --memory 256M --quiet
done

# ---- header bytes: not signed, so the reader must refuse every change ----------
while read -r spec mask pattern; do
  off=$(python3 elf.py offset A.img "$spec")
  python3 elf.py flip A.img "$off" "$mask" h.img
  refused_both 3 "$pattern" h.img
done <<'CASES'
e_osabi 0x03 ELF header field e_ident is not what svmkit writes
e_pad 0x01 ELF header field e_ident is not what svmkit writes
e_flags 0x01 ELF header field e_flags is not what svmkit writes
e_entry 0x10 ELF entry point disagrees with the manifest
e_phnum 0x08 ELF header field e_phnum is not what svmkit writes
ph.1.p_flags 0x04 program header 1 field p_flags is not what svmkit writes
ph.2.p_align 0x01 program header 2 field p_align is not what svmkit writes
ph.3.p_paddr 0x01 segment 3 has inconsistent addresses
ph.4.p_filesz 0x40 segment 4 has file size 100064 but memory size 100000
sh.0.sh_addr 0x01 section header 0 \(null\) field sh_addr is not what svmkit writes
sh.1.sh_entsize 0x08 section header 1 \(.text\) field sh_entsize is not what svmkit writes
sh.5.sh_link 0x01 section header 5 \(.kernel:initrd\) field sh_link is not what svmkit writes
sh.3.sh_flags 0x01 section '.kernel:esm_blob' is writable
sh.8.sh_name 0x01 the section name table is not what svmkit writes|section header 8
CASES

# ---- padding and appended bytes -------------------------------------------------------
python3 elf.py flip A.img 0x1000 0xff p.img
refused_both 3 "non-zero padding at offset 0x1000, outside every section" p.img
python3 elf.py append A.img 1 p.img
refused_both 3 "bytes after the section headers" p.img

# ---- truncation at every section boundary, and one byte either side -----------------
while read -r name off size; do
  for cut in $((off - 1)) $off $((off + 1)) $((off + size - 1)) $((off + size)); do
    python3 elf.py truncate A.img $cut t.img
    refused_both 3 "truncated" t.img
  done
done < <(python3 elf.py sections A.img)

# ---- sections swapped between A and B (same sizes: headers stay consistent) --------
while read -r section component; do
  python3 elf.py splice A.img B.img "$section" s.img
  refused_both 1 "verification failed: $component: digest mismatch" s.img 5 \
    "the ultravisor refused the image: $component-digest-mismatch"
done <<'SWAPS'
.kernel:initrd initrd
.kernel:cmdline cmdline
.kernel:dtb dtb
SWAPS
# The kernels differ in size (gzip vs stored): the manifest and the container disagree.
python3 elf.py splice A.img B.img .kernel:esm_blob s.img
refused_both 3 "section '.kernel:vmlinux.strip' is at 0x[0-9a-f]+ size [0-9]+, the manifest says" s.img

# ---- manifest transplants (same key, validly signed manifests) ------------------------
# C's manifest over A: everything matches but the command line.
python3 elf.py splice A.img C.img .kernel:esm_blob m.img
refused_both 1 "verification failed: cmdline: digest mismatch" m.img 5 \
  "the ultravisor refused the image: cmdline-digest-mismatch"
# D's manifest (an older security version) over A is D itself: only the policy stops it.
python3 elf.py splice A.img D.img .kernel:esm_blob m.img
same_files m.img D.img
refused_both 1 "security version 1 is below the minimum 2" m.img 5 \
  "the ultravisor refused the image: rollback"
# E's manifest (signed a second later) over A is E itself: a genuine signed image.
python3 elf.py splice A.img E.img .kernel:esm_blob m.img
same_files m.img E.img
expect_exit 0 "$SVMKIT" verify m.img --trusted-key k.pub --min-security-version 2
expect_exit 0 "$SVMKIT" boot m.img --trusted-key k.pub --min-security-version 2 --memory 256M --quiet

# ---- the manifest's tree and its padding -----------------------------------------------
read -r _ moff _ < <(python3 elf.py sections A.img | grep '^.kernel:esm_blob ')
python3 elf.py flip A.img $((moff + 0xfff0)) 0x01 m.img
refused_both 3 "manifest: non-zero bytes after the device tree" m.img
python3 elf.py flip A.img $((moff + 3)) 0x01 m.img # the FDT magic
refused_both 3 "manifest is not a device tree" m.img

# ---- the stub's code: it runs before any check; whatever it then does, the VM never
# becomes secure, the kernel never runs, and svmkit boot reports it (never a crash) ---
read -r _ toff tsize < <(python3 elf.py sections A.img | grep '^.text ')
for at in 0x100 0x167 0x2000 $((tsize - 1)); do
  python3 elf.py flip A.img $((toff + at)) 0x80 x.img
  expect_error 1 "verification failed: stub-text: digest mismatch" "$SVMKIT" verify x.img --trusted-key k.pub
  CHECKS=$((CHECKS + 1))
  set +e
  "$SVMKIT" boot x.img --trusted-key k.pub --memory 256M --timeout 20 >x.out 2>x.err
  got=$?
  set -e
  case $got in
  5 | 6) grep -qE "^svmkit: error: x.img: (the ultravisor refused the image|guest code faulted|the guest terminated)" x.err ||
      fail "stub flip at $at: boot said: $(cat x.err)" ;;
  *) fail "stub flip at $at: boot exited $got (expected 5 or 6): $(cat x.err)" ;;
  esac
  grep -qF "$BANNER" x.out && fail "stub flip at $at: the kernel ran"
done

finish
