#!/usr/bin/env bash
# Every kind of bad input: each failure gives the documented exit code and an
# error on stderr naming the file and the problem, never a crash, and a failed
# build, extract or keygen leaves neither its output nor a temporary behind.
source "$(dirname "$0")/lib.sh"

# No runaway output: anything beyond 100 MiB is a bug (SIGXFSZ fails the check).
ulimit -f 102400

# re TEXT: TEXT as an extended regular expression matching itself.
re() { sed 's/[][\.*^$()+?{}|]/\\&/g' <<<"$1"; }

# bad CODE PATTERN CMD...: exit CODE, stderr matching PATTERN and made of
# svmkit's own error line, nothing a crash or a sanitizer would print.
bad() {
  local code=$1 pattern=$2
  shift 2
  expect_error "$code" "$pattern" "$@"
  CHECKS=$((CHECKS + 1))
  if grep -qE 'Sanitizer|runtime error|Segmentation|Aborted|terminate called' <<<"$ERR" ||
     ! grep -qE '^svmkit: (usage )?error: ' <<<"$ERR"; then
    fail "not a plain svmkit error from '$*': $ERR"
  fi
}

# no_output FILE: neither FILE nor a temporary beside it exists (a stray one
# is removed so that it does not fail later checks too).
no_output() {
  expect_no_file "$1"
  rm -f "$1"
}

# Binary surgery on ELF64 little-endian files.
cat > elfpatch.py <<'PY'
# elfpatch.py CMD IN OUT [ARGS...]
import struct, sys

EH = struct.Struct("<16sHHIQQQIHHHHHH")   # Elf64_Ehdr, 64 bytes
PH = struct.Struct("<IIQQQQQQ")           # Elf64_Phdr, 56 bytes
SH = struct.Struct("<IIQQQQIIQQ")         # Elf64_Shdr, 64 bytes
E_PHOFF, E_SHOFF, E_PHNUM, E_SHNUM, E_SHSTRNDX = 5, 6, 10, 12, 13
P_TYPE, P_OFFSET, P_VADDR, P_PADDR, P_FILESZ = 0, 2, 3, 4, 5
SH_NAME, SH_TYPE, SH_ADDR, SH_OFFSET, SH_SIZE = 0, 1, 3, 4, 5
PT_NULL, PT_LOAD = 0, 1

data = bytearray(open(sys.argv[2], "rb").read())
eh = list(EH.unpack_from(data, 0))

def phdrs():
    return [list(PH.unpack_from(data, eh[E_PHOFF] + i * PH.size)) for i in range(eh[E_PHNUM])]

def put_phdr(i, p):
    PH.pack_into(data, eh[E_PHOFF] + i * PH.size, *p)

def shdrs():
    return [list(SH.unpack_from(data, eh[E_SHOFF] + i * SH.size)) for i in range(eh[E_SHNUM])]

def name_at(off):
    start = shdrs()[eh[E_SHSTRNDX]][SH_OFFSET] + off
    return bytes(data[start:data.index(b"\0", start)]).decode(), start

def section(name):
    for i, s in enumerate(shdrs()):
        if name_at(s[SH_NAME])[0] == name:
            return i, s
    sys.exit("no section " + name)

def segment_of(s):
    for i, p in enumerate(phdrs()):
        if p[P_TYPE] == PT_LOAD and p[P_VADDR] == s[SH_ADDR]:
            return i, p
    sys.exit("no segment at %#x" % s[SH_ADDR])

cmd, out, args = sys.argv[1], sys.argv[3], sys.argv[4:]
if cmd == "boundaries":
    # Where the headers, tables and sections start and end.
    pts = {0, EH.size, eh[E_PHOFF], eh[E_PHOFF] + eh[E_PHNUM] * PH.size,
           eh[E_SHOFF], eh[E_SHOFF] + eh[E_SHNUM] * SH.size}
    for s in shdrs()[1:]:
        pts.update((s[SH_OFFSET], s[SH_OFFSET] + s[SH_SIZE]))
    print(" ".join(str(p) for p in sorted(pts) if p < len(data)))
    sys.exit(0)
if cmd == "loaded-end":
    print(max(p[P_OFFSET] + p[P_FILESZ] for p in phdrs() if p[P_TYPE] == PT_LOAD))
    sys.exit(0)
if cmd == "cut":
    # Cut the file at N (past the first loaded byte) but keep its name table
    # and section headers, moved into the padding after the program headers,
    # so that the reader gets past them to the missing contents.
    n = int(args[0])
    strndx = eh[E_SHSTRNDX]
    sh = shdrs()
    table = bytes(data[sh[strndx][SH_OFFSET]:sh[strndx][SH_OFFSET] + sh[strndx][SH_SIZE]])
    at = (eh[E_PHOFF] + eh[E_PHNUM] * PH.size + 7) // 8 * 8
    first = min(p[P_OFFSET] for p in phdrs() if p[P_TYPE] == PT_LOAD)
    assert at + len(table) + 8 + len(sh) * SH.size <= first <= n
    assert not any(data[at:first]), "no padding after the program headers"
    sh[strndx][SH_OFFSET] = at
    data[at:at + len(table)] = table
    eh[E_SHOFF] = (at + len(table) + 7) // 8 * 8
    for i, s in enumerate(sh):
        SH.pack_into(data, eh[E_SHOFF] + i * SH.size, *s)
    EH.pack_into(data, 0, *eh)
    del data[n:]
elif cmd == "flip-at":
    # flip-at OFFSET: invert one byte of the file.
    data[int(args[0], 0)] ^= 0xFF
elif cmd == "flip-value":
    # flip-value SECTION HEX INDEX: change byte INDEX of the one copy of the
    # bytes HEX inside SECTION.
    _, s = section(args[0])
    needle = bytes.fromhex(args[1])
    body = bytes(data[s[SH_OFFSET]:s[SH_OFFSET] + s[SH_SIZE]])
    at = body.find(needle)
    assert at >= 0 and body.find(needle, at + 1) < 0, "value not found exactly once"
    data[s[SH_OFFSET] + at + int(args[2])] ^= 0x01
elif cmd == "zero":
    # zero SECTION COUNT: clear the first COUNT bytes of a section.
    _, s = section(args[0])
    data[s[SH_OFFSET]:s[SH_OFFSET] + int(args[1])] = bytes(int(args[1]))
elif cmd == "rename":
    # rename OLD NEW: rewrite a section's name in place in .shstrtab.
    _, s = section(args[0])
    _, start = name_at(s[SH_NAME])
    old, new = args[0].encode(), args[1].encode()
    assert len(new) <= len(old)
    data[start:start + len(old)] = new + bytes(len(old) - len(new))
elif cmd == "overlap":
    # overlap A B: move the PT_LOAD of section A onto the one of section B.
    _, a = section(args[0])
    _, b = section(args[1])
    i, p = segment_of(a)
    _, q = segment_of(b)
    p[P_PADDR], p[P_VADDR] = q[P_PADDR] + 16, q[P_VADDR] + 16
    put_phdr(i, p)
elif cmd == "drop":
    # drop SECTION: remove its section header (the name table, last, takes
    # its slot) and turn its PT_LOAD into PT_NULL.
    i, s = section(args[0])
    sh = shdrs()
    last = len(sh) - 1
    assert eh[E_SHSTRNDX] == last
    j, p = segment_of(s)
    p[P_TYPE] = PT_NULL
    put_phdr(j, p)
    SH.pack_into(data, eh[E_SHOFF] + i * SH.size, *sh[last])
    SH.pack_into(data, eh[E_SHOFF] + last * SH.size, *([0] * 10))
    eh[E_SHNUM], eh[E_SHSTRNDX] = last, i
    EH.pack_into(data, 0, *eh)
elif cmd == "spread":
    # spread: move the last PT_LOAD of a kernel 1 TiB up (physical address).
    ps = phdrs()
    i = max(k for k, p in enumerate(ps) if p[P_TYPE] == PT_LOAD)
    ps[i][P_PADDR] += 1 << 40
    put_phdr(i, ps[i])
else:
    sys.exit("unknown command " + cmd)
open(out, "wb").write(data)
PY
patch() { python3 elfpatch.py "$@" || fail "elfpatch.py $*"; }
json_field() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# ---- inputs ------------------------------------------------------------------
make_x86_kernel kernel.elf
head -c 200000 /dev/urandom > initrd.bin
printf '/dts-v1/;\n/ { compatible = "svmkit,test"; model = "test"; };\n' > board.dts
dtc -I dts -O dtb -o board.dtb board.dts 2>/dev/null
expect_exit 0 "$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub
expect_exit 0 "$SVMKIT" keygen --algo ed25519 -o other.key --public-output other.pub
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --initrd initrd.bin --cmdline "console=hvc0" \
  --dtb board.dtb --key k.key -o img
expect_exit 0 "$SVMKIT" verify img --trusted-key k.pub
mkdir adir
OUTIMG=out.img

# ---- missing and unreadable files: 4 -------------------------------------------
# (a directory is not a file of the right kind: 3, docs/cli.md)
for f in nope adir nodir/nope; do
  code=4
  case $f in
    adir) why="is a directory" code=3 ;;
    *) why="cannot open: No such file or directory" ;;
  esac
  F=$(re "$f")
  bad $code "^svmkit: error: $F: $why" "$SVMKIT" build --kernel "$f" --key k.key -o $OUTIMG
  no_output $OUTIMG
  bad $code "^svmkit: error: $F: $why" "$SVMKIT" build --kernel kernel.elf --initrd "$f" --key k.key -o $OUTIMG
  no_output $OUTIMG
  bad $code "^svmkit: error: $F: $why" "$SVMKIT" build --kernel kernel.elf --dtb "$f" --key k.key -o $OUTIMG
  no_output $OUTIMG
  bad $code "^svmkit: error: $F: $why" "$SVMKIT" build --kernel kernel.elf --cmdline-file "$f" --key k.key -o $OUTIMG
  no_output $OUTIMG
  bad $code "^svmkit: error: $F: $why" "$SVMKIT" build --kernel kernel.elf --key "$f" -o $OUTIMG
  no_output $OUTIMG
  bad $code "^svmkit: error: $F: $why" "$SVMKIT" verify img --trusted-key "$f"
  bad $code "^svmkit: error: $F: $why" "$SVMKIT" verify img --trusted-key k.pub --revoked-key "$f"
  bad $code "^svmkit: error: $F: $why" "$SVMKIT" inspect "$f"
  bad $code "^svmkit: error: $F: $why" "$SVMKIT" verify "$f" --trusted-key k.pub
  bad $code "^svmkit: error: $F: $why" "$SVMKIT" extract "$f" --component kernel -o out.bin
  no_output out.bin
done
openssl genpkey -algorithm ed25519 -aes-256-cbc -pass pass:s3cret -out enc.key 2>/dev/null
bad 4 "^svmkit: error: nope: cannot open" "$SVMKIT" build --kernel kernel.elf --key enc.key \
  --key-passphrase-file nope -o $OUTIMG
no_output $OUTIMG

# Outputs in a missing directory, or onto a directory.
bad 4 "^svmkit: error: nodir/out\.img: cannot create the output in .*/nodir: No such file or directory" \
  "$SVMKIT" build --kernel kernel.elf --key k.key -o nodir/out.img
bad 4 "^svmkit: error: nodir/k\.bin: cannot create the output in .*/nodir: No such file or directory" \
  "$SVMKIT" extract img --component kernel -o nodir/k.bin
bad 4 "^svmkit: error: nodir/new\.key: cannot create the output in .*/nodir: No such file or directory" \
  "$SVMKIT" keygen --algo ed25519 -o nodir/new.key --public-output new.pub
no_output new.pub
bad 4 "^svmkit: error: nodir/new\.pub: cannot create the output in .*/nodir: No such file or directory" \
  "$SVMKIT" keygen --algo ed25519 -o new.key --public-output nodir/new.pub
no_output new.key
bad 2 "^svmkit: error: adir: is a directory; name the output file" \
  "$SVMKIT" build --kernel kernel.elf --key k.key -o adir
CHECKS=$((CHECKS + 1))
[ -z "$(ls -A adir)" ] && ! ls -a . | grep -q '\.adir\.svmkit-' || fail "temporary left beside adir"

# ---- kernels, initrds, device trees: 3 (or 2 for a raw kernel without address)
: > empty
bad 3 "^svmkit: error: empty: kernel file is empty" "$SVMKIT" build --kernel empty --key k.key -o $OUTIMG
no_output $OUTIMG
bad 3 "^svmkit: error: empty: initrd file is empty" \
  "$SVMKIT" build --kernel kernel.elf --initrd empty --key k.key -o $OUTIMG
no_output $OUTIMG
bad 3 "^svmkit: error: empty: not a device tree blob" \
  "$SVMKIT" build --kernel kernel.elf --dtb empty --key k.key -o $OUTIMG
no_output $OUTIMG

# The kernel ELF's machine decides the target; an --arch that disagrees is a
# usage error naming both (docs/cli.md).
bad 2 "^svmkit: error: --arch ppc64le: the kernel kernel\.elf is a x86_64 ELF file" \
  "$SVMKIT" build --kernel kernel.elf --arch ppc64le --key k.key -o $OUTIMG
no_output $OUTIMG
if [ -z "${SVMKIT_DEBIAN_KERNEL:-}" ]; then
  fail "SVMKIT_DEBIAN_KERNEL is not set: run samples/fetch-debian-kernel.sh and export it"
else
  bad 2 "^svmkit: error: --arch x86_64: the kernel $(re "$SVMKIT_DEBIAN_KERNEL") is a ppc64le ELF file" \
    "$SVMKIT" build --kernel "$SVMKIT_DEBIAN_KERNEL" --arch x86_64 --key k.key -o $OUTIMG
  no_output $OUTIMG
fi

# Truncated ELF kernels: inside the ELF header, the program headers, a
# segment, the section headers. (A cut inside the 4-byte magic leaves a file
# that is not recognisably ELF: a raw image, see below.)
ksize=$(stat -c %s kernel.elf)
phend=$((64 + 56 * $(readelf -hW kernel.elf | sed -n 's/^ *Number of program headers: *//p')))
seg=$((0x$(readelf -lW kernel.elf | awk '$1 == "LOAD" && $2 != "0x000000" { print $2; exit }' | sed 's/^0x//')))
for n in 4 10 40 63 64 100 $((phend - 1)) $((seg + 1)) $((ksize - 1)); do
  head -c "$n" kernel.elf > "kcut$n"
  bad 3 "^svmkit: error: kcut$n: truncated" "$SVMKIT" build --kernel "kcut$n" --key k.key -o $OUTIMG
  no_output $OUTIMG
done
head -c 3 kernel.elf > kcut3
bad 2 "^svmkit: error: kcut3: not an ELF file; a raw kernel image needs --kernel-load-addr" \
  "$SVMKIT" build --kernel kcut3 --key k.key -o $OUTIMG

# A kernel whose segments lie 1 TiB apart must not become a 1 TiB image.
patch spread kernel.elf kspread.elf
bad 3 "^svmkit: error: kspread\.elf: the loadable image spans .* more than" \
  "$SVMKIT" build --kernel kspread.elf --key k.key -o $OUTIMG
no_output $OUTIMG

head -c 70000 /dev/urandom > raw.bin
bad 2 "^svmkit: error: raw\.bin: not an ELF file; a raw kernel image needs --kernel-load-addr" \
  "$SVMKIT" build --kernel raw.bin --key k.key -o $OUTIMG
no_output $OUTIMG
# ... and one placed on top of the image itself.
for addr in 0x4000000 0x4010000; do
  bad 3 "^svmkit: error: $OUTIMG: kernel load range .* overlaps the image" \
    "$SVMKIT" build --kernel raw.bin --kernel-load-addr $addr --key k.key -o $OUTIMG
  no_output $OUTIMG
done
# ... or over the simulated machine's firmware device tree (0x3e00000) or
# stack (0x3f00000): fixed there, so refused at build time (the stub would
# refuse them at boot). raw.bin is 70000 bytes.
for addr in 0x3e00000 0x3dff000 0x3e0ffff 0x3f00000 0x3fe0000 0x3ff0000; do
  bad 3 "^svmkit: error: raw\.bin: the kernel's load range \[$addr, .*\) overlaps the firmware's (device tree \[0x3e00000, 0x3e10000\)|stack \[0x3f00000, 0x4000000\))" \
    "$SVMKIT" build --kernel raw.bin --kernel-load-addr $addr --key k.key -o $OUTIMG
  no_output $OUTIMG
done
# Just clear of the device tree: built. A ppc64le image has no such fixed
# ranges (its firmware places them at boot): built.
"$SVMKIT" build --kernel raw.bin --kernel-load-addr $((0x3e00000 - 70000)) --key k.key -o clear.img >/dev/null ||
  fail "a kernel ending right below the firmware's device tree was refused"
"$SVMKIT" build --arch ppc64le --kernel raw.bin --kernel-load-addr 0x3e00000 --key k.key -o clear-ppc.img >/dev/null ||
  fail "a ppc64le kernel at the simulated machine's FDT address was refused"
CHECKS=$((CHECKS + 2))

head -c 1000 /dev/urandom > junk.dtb
bad 3 "^svmkit: error: junk\.dtb: not a device tree blob" \
  "$SVMKIT" build --kernel kernel.elf --dtb junk.dtb --key k.key -o $OUTIMG
no_output $OUTIMG
dsize=$(stat -c %s board.dtb)
for n in 20 40 $((dsize / 2)) $((dsize - 1)); do
  head -c "$n" board.dtb > "dcut$n.dtb"
  bad 3 "^svmkit: error: dcut$n\.dtb: .*(device tree|only $n bytes)" \
    "$SVMKIT" build --kernel kernel.elf --dtb "dcut$n.dtb" --key k.key -o $OUTIMG
  no_output $OUTIMG
done
# A header that claims the right size over a broken structure block.
python3 - board.dtb <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
off = int.from_bytes(d[8:12], "big")          # off_dt_struct
d[off:off + 4] = b"\xde\xad\xbe\xef"          # not FDT_BEGIN_NODE
open("badstruct.dtb", "wb").write(d)
PY
bad 3 "^svmkit: error: badstruct\.dtb: invalid device tree" \
  "$SVMKIT" build --kernel kernel.elf --dtb badstruct.dtb --key k.key -o $OUTIMG
no_output $OUTIMG

# ---- unknown algorithms: 2 -------------------------------------------------------
bad 2 "--algo: unknown key type 'dsa'" "$SVMKIT" keygen --algo dsa -o dsa.key --public-output dsa.pub
no_output dsa.key
no_output dsa.pub
bad 2 "--hash: unknown digest 'md5'" "$SVMKIT" build --kernel kernel.elf --hash md5 --key k.key -o $OUTIMG
no_output $OUTIMG
bad 2 "--compress: unknown compression 'xz'" \
  "$SVMKIT" build --kernel kernel.elf --compress xz --key k.key -o $OUTIMG
no_output $OUTIMG
bad 2 "unknown architecture 'sparc'" "$SVMKIT" build --kernel kernel.elf --arch sparc --key k.key -o $OUTIMG
no_output $OUTIMG

# ---- wrong keys: 3; passphrases: 2 when missing, 3 when wrong -------------------
bad 3 "^svmkit: error: k\.pub: is a public key or certificate; a private key is needed" \
  "$SVMKIT" build --kernel kernel.elf --key k.pub -o $OUTIMG
no_output $OUTIMG
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2048.key 2>/dev/null
bad 3 "^svmkit: error: rsa2048\.key: unsupported RSA key size 2048 bits" \
  "$SVMKIT" build --kernel kernel.elf --key rsa2048.key -o $OUTIMG
no_output $OUTIMG
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out k1.key 2>/dev/null
bad 3 "^svmkit: error: k1\.key: unsupported EC curve secp256k1" \
  "$SVMKIT" build --kernel kernel.elf --key k1.key -o $OUTIMG
no_output $OUTIMG
head -c 500 /dev/urandom > garbage.key
bad 3 "^svmkit: error: garbage\.key: not a private key" \
  "$SVMKIT" build --kernel kernel.elf --key garbage.key -o $OUTIMG
no_output $OUTIMG

bad 2 "^svmkit: error: enc\.key: the private key is encrypted; pass --key-passphrase" \
  "$SVMKIT" build --kernel kernel.elf --key enc.key -o $OUTIMG
no_output $OUTIMG
unset SVMKIT_NO_SUCH_VAR
bad 2 "^svmkit: error: enc\.key: .*SVMKIT_NO_SUCH_VAR is not set" \
  "$SVMKIT" build --kernel kernel.elf --key enc.key --key-passphrase-env SVMKIT_NO_SUCH_VAR -o $OUTIMG
no_output $OUTIMG
printf 'wrong\n' > wrong.txt
bad 3 "^svmkit: error: enc\.key: cannot decrypt private key \(wrong passphrase\?\)" \
  "$SVMKIT" build --kernel kernel.elf --key enc.key --key-passphrase-file wrong.txt -o $OUTIMG
no_output $OUTIMG
WRONGPASS=wrong bad 3 "^svmkit: error: enc\.key: cannot decrypt private key" \
  "$SVMKIT" build --kernel kernel.elf --key enc.key --key-passphrase-env WRONGPASS -o $OUTIMG
no_output $OUTIMG

# ---- truncated images: 3 from inspect, verify and extract, at every boundary ------
isize=$(stat -c %s img)
shoff=$(readelf -hW img | sed -n 's/^ *Start of section headers: *\([0-9]*\).*/\1/p')
for n in $(python3 elfpatch.py boundaries img -) 10 63 100 $((shoff + 100)) $((isize - 1)); do
  head -c "$n" img > "cut$n.img"
  bad 3 "^svmkit: error: cut$n\.img: truncated" "$SVMKIT" inspect "cut$n.img"
  bad 3 "^svmkit: error: cut$n\.img: truncated" "$SVMKIT" verify "cut$n.img" --trusted-key k.pub
done
bad 3 "^svmkit: error: cut100\.img: truncated" "$SVMKIT" extract cut100.img --component kernel -o out.bin
no_output out.bin
# The same cuts with the section headers kept: the loaded contents are missing.
loaded_end=$(python3 elfpatch.py loaded-end img -)
for n in $(python3 elfpatch.py boundaries img -) 100000 300000; do
  [ "$n" -ge $((0x10000)) ] && [ "$n" -lt "$loaded_end" ] || continue
  patch cut img "keep$n.img" "$n"
  bad 3 "^svmkit: error: keep$n\.img: truncated: (segment|section)" "$SVMKIT" inspect "keep$n.img"
  bad 3 "^svmkit: error: keep$n\.img: truncated: (segment|section)" "$SVMKIT" verify "keep$n.img" --trusted-key k.pub
  bad 3 "^svmkit: error: keep$n\.img: truncated" "$SVMKIT" extract "keep$n.img" --component initrd -o out.bin
  no_output out.bin
done

# ---- changed contents: verify says 1 and what failed -------------------------------
# sect IMG NAME: the section's file offset and size (hex), from readelf, as a
# user would find them.
sect() {
  readelf -SW "$1" | awk -v name="$2" '{ sub(/^ *\[ *[0-9]+\] /, "") } $1 == name { print $4, $5 }'
}
read -r ioff isz < <(sect img .kernel:initrd)
[ "$((0x$isz))" = 200000 ] || fail "readelf: .kernel:initrd is $isz bytes"
patch flip-at img initrd-flip.img $((0x$ioff + 12345))
bad 1 "^svmkit: error: initrd-flip\.img: verification failed: initrd: digest mismatch" \
  "$SVMKIT" verify initrd-flip.img --trusted-key k.pub
expect_contains "$OUT" "initrd +digest MISMATCH"
expect_contains "$OUT" "kernel +digest ok"
read -r koff ksz < <(sect img .kernel:vmlinux.strip)
patch flip-at img kernel-flip.img $((0x$koff + 0x$ksz - 1))
bad 1 "^svmkit: error: kernel-flip\.img: verification failed: kernel: digest mismatch" \
  "$SVMKIT" verify kernel-flip.img --trusted-key k.pub
expect_exit 1 "$SVMKIT" verify kernel-flip.img --trusted-key k.pub --json
python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["verified"] is False
bad = [c["name"] for c in d["components"] if not c["digest_ok"]]
assert bad == ["kernel"], bad
' <<<"$OUT" || fail "verify --json of kernel-flip.img"

# A corrupt gzip-compressed kernel: verify says which digests fail, extract
# refuses the stream and leaves nothing behind.
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --compress gzip --key k.key -o gz.img
read -r zoff zsz < <(sect gz.img .kernel:vmlinux.strip)
patch flip-at gz.img gz-flip.img $((0x$zoff + 0x$zsz / 2))
bad 1 "^svmkit: error: gz-flip\.img: verification failed: kernel: digest mismatch.*kernel: unpacked digest mismatch" \
  "$SVMKIT" verify gz-flip.img --trusted-key k.pub
bad 3 "^svmkit: error: gz-flip\.img \(\.kernel:vmlinux\.strip\): corrupt gzip data" \
  "$SVMKIT" extract gz-flip.img --component kernel -o out.bin
no_output out.bin

# A digest in the manifest: the component no longer matches, and the
# signature over the manifest is invalid.
expect_exit 0 "$SVMKIT" inspect img --json
INSPECT=$OUT
initrd_digest=$(json_field '[c["digest"] for c in d["components"] if c["name"] == "initrd"][0]' <<<"$INSPECT")
patch flip-value img digest-edit.img .kernel:esm_blob "$initrd_digest" 7
bad 1 "^svmkit: error: digest-edit\.img: verification failed: .*does not verify" \
  "$SVMKIT" verify digest-edit.img --trusted-key k.pub
expect_contains "$OUT" "signature .* INVALID"
expect_contains "$OUT" "initrd: digest mismatch"
# A signature byte.
sig=$(json_field 'd["signatures"][0]["value"]' <<<"$INSPECT")
keyid=$(json_field 'd["signatures"][0]["key_id"]' <<<"$INSPECT")
patch flip-value img sig-edit.img .kernel:esm_blob "$sig" 20
bad 1 "^svmkit: error: sig-edit\.img: verification failed: policy: signature by trusted key $keyid does not verify" \
  "$SVMKIT" verify sig-edit.img --trusted-key k.pub
expect_contains "$OUT" "INVALID"

# ---- policy: 1, or 2 when no image could pass --------------------------------------
bad 1 "^svmkit: error: img: verification failed: policy: no signature by a trusted key" \
  "$SVMKIT" verify img --trusted-key other.pub
bad 1 "^svmkit: error: img: verification failed: policy: .*revoked" \
  "$SVMKIT" verify img --trusted-key k.pub --revoked-key "$keyid"
bad 1 "^svmkit: error: img: verification failed: policy: .*revoked" \
  "$SVMKIT" verify img --trusted-key k.pub --revoked-key k.pub
expect_contains "$OUT" "revoked key $keyid"
bad 1 "^svmkit: error: img: verification failed: policy: security version 0 is below the minimum 3" \
  "$SVMKIT" verify img --trusted-key k.pub --min-security-version 3
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --security-version 4 --key k.key -o sv4.img
bad 1 "security version 4 is below the minimum 5" \
  "$SVMKIT" verify sv4.img --trusted-key k.pub --min-security-version 5
expect_exit 0 "$SVMKIT" verify sv4.img --trusted-key k.pub --min-security-version 4
bad 2 "--require-signatures 2 is more than the 1 distinct trusted keys" \
  "$SVMKIT" verify img --trusted-key k.pub --require-signatures 2
bad 2 "--require-signatures 2 is more than the 1 distinct trusted keys" \
  "$SVMKIT" verify img --trusted-key k.pub --trusted-key k.pub --require-signatures 2

# ---- broken containers: 3 ----------------------------------------------------------
patch rename img dup.img .kernel:cmdline .kernel:initrd
bad 3 "^svmkit: error: dup\.img: duplicate section '\.kernel:initrd'" "$SVMKIT" inspect dup.img
bad 3 "^svmkit: error: dup\.img: duplicate section" "$SVMKIT" verify dup.img --trusted-key k.pub
patch rename img unknown.img .kernel:initrd .kernel:initrX
bad 3 "^svmkit: error: unknown\.img: unknown section '\.kernel:initrX'" "$SVMKIT" inspect unknown.img
bad 3 "^svmkit: error: unknown\.img: unknown section" "$SVMKIT" verify unknown.img --trusted-key k.pub
patch drop img missing.img .kernel:initrd
bad 3 "^svmkit: error: missing\.img: missing section '\.kernel:initrd' for manifest component initrd" \
  "$SVMKIT" inspect missing.img
bad 3 "^svmkit: error: missing\.img: missing section" "$SVMKIT" verify missing.img --trusted-key k.pub
patch drop img missing-kernel.img .kernel:vmlinux.strip
bad 3 "^svmkit: error: missing-kernel\.img: missing section '\.kernel:vmlinux\.strip'" \
  "$SVMKIT" inspect missing-kernel.img
patch overlap img overlap.img .kernel:cmdline .kernel:initrd
bad 3 "^svmkit: error: overlap\.img: segment [0-9]+ \[0x[0-9a-f]+, 0x[0-9a-f]+\) overlaps segment" \
  "$SVMKIT" inspect overlap.img
bad 3 "^svmkit: error: overlap\.img: segment [0-9]+ .* overlaps" "$SVMKIT" verify overlap.img --trusted-key k.pub
patch zero img nofdt.img .kernel:esm_blob 16
bad 3 "^svmkit: error: nofdt\.img: manifest is not a device tree" "$SVMKIT" inspect nofdt.img
bad 3 "^svmkit: error: nofdt\.img: manifest is not a device tree" "$SVMKIT" verify nofdt.img --trusted-key k.pub
bad 3 "^svmkit: error: nofdt\.img: manifest is not a device tree" \
  "$SVMKIT" extract nofdt.img --component kernel -o out.bin
no_output out.bin
# Any ELF file that is not a secure image.
bad 3 "^svmkit: error: kernel\.elf: .+" "$SVMKIT" inspect kernel.elf

# ---- extract: components the image does not have ------------------------------------
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --key k.key -o bare.img
for c in initrd dtb cmdline; do
  bad 2 "^svmkit: error: bare\.img: the image has no $c" "$SVMKIT" extract bare.img --component $c -o out.bin
  no_output out.bin
done
bad 2 "--component: 'stub-text' is not one of" "$SVMKIT" extract img --component stub-text -o out.bin
no_output out.bin

finish
