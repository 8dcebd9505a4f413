#!/usr/bin/env bash
# Build, inspect, verify and extract with every key type, digest and both
# targets; the images are real ELF files that readelf and eu-elflint accept.
source "$(dirname "$0")/lib.sh"

make_x86_kernel kernel.elf
head -c 300000 /dev/urandom > initrd.bin
printf '/dts-v1/;\n/ { compatible = "svmkit,test"; model = "test"; };\n' > board.dts
dtc -I dts -O dtb -o board.dtb board.dts 2>/dev/null

for algo in ed25519 ecdsa-p256 ecdsa-p384 rsa-3072 rsa-4096; do
  expect_exit 0 "$SVMKIT" keygen --algo "$algo" -o "$algo.key" --public-output "$algo.pub"
  CHECKS=$((CHECKS + 1))
  [ "$(stat -c %a "$algo.key")" = 600 ] || fail "$algo private key mode is $(stat -c %a "$algo.key")"
  openssl pkey -in "$algo.key" -noout || fail "openssl cannot read $algo.key"
  openssl pkey -pubin -in "$algo.pub" -noout || fail "openssl cannot read $algo.pub"
done

for algo in ed25519 ecdsa-p256 ecdsa-p384 rsa-3072 rsa-4096; do
  for hash in sha256 sha384 sha512; do
    img=img-$algo-$hash
    expect_exit 0 "$SVMKIT" build --kernel kernel.elf --initrd initrd.bin --cmdline "console=hvc0 svm=on" \
      --dtb board.dtb --hash "$hash" --key "$algo.key" -o "$img"
    expect_exit 0 "$SVMKIT" verify "$img" --trusted-key "$algo.pub"
    expect_contains "$OUT" "verified"
  done
done

img=img-ed25519-sha256
expect_exit 0 readelf -W -h -l -S "$img"
expect_contains "$OUT" "Advanced Micro Devices X86-64"
expect_contains "$OUT" "\.kernel:vmlinux\.strip"
expect_contains "$OUT" "\.kernel:esm_blob"
expect_exit 0 eu-elflint "$img"
expect_exit 0 objdump -h "$img"
CHECKS=$((CHECKS + 1))
readelf -lW "$img" | grep -E '^\s+LOAD' | grep -q ' RW' && fail "an image segment is writable"

# inspect, human and JSON
expect_exit 0 "$SVMKIT" inspect "$img"
expect_contains "$OUT" "stub-text"
expect_contains "$OUT" "console=hvc0 svm=on"
# Every component's and the manifest's file offset, as readelf sees the sections.
CHECKS=$((CHECKS + 1))
readelf -SW "$img" | sed -nE 's/^ *\[ *[0-9]+\] +([^ ]+) +[A-Z_]+ +[0-9a-f]+ +([0-9a-f]+) .*/\1 \2/p' > sections.txt
python3 - "$OUT" sections.txt <<'PY' || fail "inspect's file offsets differ from readelf's"
import re, sys
text, sections = sys.argv[1], dict(l.split() for l in open(sys.argv[2]))
shown = re.findall(r"^  \S+ +(\S+) +at 0x[0-9a-f]+ file offset (0x[0-9a-f]+) ", text, re.M)
assert len(shown) == 6, (shown, text)
for name, off in shown:
    assert int(off, 16) == int(sections[name], 16), (name, off, sections)
m = re.search(r"^manifest .* file offset (0x[0-9a-f]+)$", text, re.M)
assert m and int(m.group(1), 16) == int(sections[".kernel:esm_blob"], 16), (m, sections)
PY
# Where the pieces land: the components as stored, the unpacked kernel.
expect_contains "$OUT" "^memory map \(firmware-style boot, 1024 MiB of RAM\)$"
expect_contains "$OUT" "  0x200000 +0x[0-9a-f]+ +[0-9.]+ [KM]iB  kernel    kernel \(unpacked\)$"
expect_contains "$OUT" "image     stub-text \(stored\)$"
expect_contains "$OUT" "placed by the stub at boot, top-down in free RAM"
expect_exit 0 "$SVMKIT" inspect "$img" --json
# The checks are the program (a file), the JSON comes on stdin: a here-document
# and a here-string on one command would both be stdin, and the last one wins.
cat >inspect_check.py <<'PY'
import json, sys
d = json.load(sys.stdin)
assert d["schema"] == "svmkit-inspect-v1"
names = [c["name"] for c in d["components"]]
assert names == ["stub-text", "stub-rodata", "kernel", "initrd", "cmdline", "dtb"], names
k = d["components"][2]
assert k["load_address"] == "0x200000" and k["compression"] == "none"
assert d["signatures"][0]["algorithm"] == "ed25519"
assert len(d["signatures"][0]["key_id"]) == 64
assert d["esm"] == {"source": None, "lockboxes": [], "digests": False, "files": []}, d["esm"]
names = [r["name"] for r in d["memory_map"]]
assert "kernel (unpacked)" in names and "initrd (stored)" in names, names
assert not any(r["overlaps"] for r in d["memory_map"]), d["memory_map"]
assert d["manifest"]["section_file_offset"] > 0
PY
CHECKS=$((CHECKS + 1))
python3 inspect_check.py <<<"$OUT" || fail "inspect --json content"

# extract gives back the exact bytes
objcopy -O binary -S kernel.elf kernel.ref
expect_exit 0 "$SVMKIT" extract "$img" --component kernel -o kernel.out
same_files kernel.out kernel.ref
expect_exit 0 "$SVMKIT" extract "$img" --component initrd -o initrd.out
same_files initrd.out initrd.bin
expect_exit 0 "$SVMKIT" extract "$img" --component cmdline -o cmdline.out
CHECKS=$((CHECKS + 1))
[ "$(cat cmdline.out)" = "console=hvc0 svm=on" ] || fail "cmdline extract: $(cat cmdline.out)"
[ "$(stat -c %s cmdline.out)" = 19 ] || fail "cmdline has a terminator or newline"
expect_exit 0 "$SVMKIT" extract "$img" --component dtb -o board.out
same_files board.out board.dtb
expect_exit 0 "$SVMKIT" extract "$img" --component manifest -o manifest.dtb
expect_exit 0 dtc -I dtb -O dts manifest.dtb
expect_contains "$OUT" 'compatible = "ibm,esm"'
expect_contains "$OUT" "svmkit-manifest"

# gzip: both digests, and extract gives back the unpacked image
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --compress gzip --key ed25519.key -o img-gz
expect_exit 0 "$SVMKIT" inspect img-gz --json
expect_contains "$OUT" '"compression": "gzip"'
expect_contains "$OUT" '"unpacked_digest"'
expect_exit 0 "$SVMKIT" verify img-gz --trusted-key ed25519.pub
expect_contains "$OUT" "unpacked digest ok"
expect_exit 0 "$SVMKIT" extract img-gz --component kernel -o kernel-gz.out
same_files kernel-gz.out kernel.ref

# several signatures
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --key ed25519.key --key ecdsa-p384.key --key rsa-3072.key -o img-multi
expect_exit 0 "$SVMKIT" verify img-multi --trusted-key ecdsa-p384.pub --trusted-key rsa-3072.pub --require-signatures 2
expect_contains "$OUT" "2 trusted signers"

# raw kernel with a load address; ppc64le target
head -c 70000 /dev/urandom > raw.bin
expect_exit 0 "$SVMKIT" build --kernel raw.bin --kernel-load-addr 0x100000 --key ed25519.key -o img-raw
expect_exit 0 "$SVMKIT" extract img-raw --component kernel -o raw.out
same_files raw.out raw.bin
expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel raw.bin --kernel-load-addr 0 --key ed25519.key -o img-ppc
expect_exit 0 readelf -h img-ppc
expect_contains "$OUT" "PowerPC64"
expect_contains "$OUT" "little endian"
expect_exit 0 eu-elflint img-ppc
expect_exit 0 "$SVMKIT" verify img-ppc --trusted-key ed25519.pub

# encrypted private keys: passphrase from the environment or a file, never argv
openssl genpkey -algorithm ed25519 -aes-256-cbc -pass pass:s3cret -out enc.key 2>/dev/null
openssl pkey -in enc.key -passin pass:s3cret -pubout -out enc.pub
expect_error 2 "passphrase" "$SVMKIT" build --kernel kernel.elf --key enc.key -o img-enc
expect_no_file img-enc
KEYPASS=s3cret expect_exit 0 "$SVMKIT" build --kernel kernel.elf --key enc.key --key-passphrase-env KEYPASS -o img-enc
printf 's3cret\n' > pass.txt
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --key enc.key --key-passphrase-file pass.txt -o img-enc2
expect_exit 0 "$SVMKIT" verify img-enc2 --trusted-key enc.pub
printf 'wrong\n' > wrong.txt
expect_error 3 "passphrase|decrypt" "$SVMKIT" build --kernel kernel.elf --key enc.key --key-passphrase-file wrong.txt -o img-enc3
expect_no_file img-enc3

# DER keys and certificates
openssl pkey -in ecdsa-p256.key -outform DER -out p256.der
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --key p256.der -o img-der
openssl req -x509 -new -key ecdsa-p256.key -subj /CN=svmkit-test -days 2 -out p256.crt 2>/dev/null
expect_exit 0 "$SVMKIT" verify img-der --trusted-key p256.crt

finish
