#!/usr/bin/env bash
# svmkit esm add (svm-tools' `svm add`): the archive it prepends equals the
# golden vector derived from svm-tools' procedure (tests/data/esm/add), and
# what GNU cpio makes from that procedure here; the result, built into an
# image, boots on the simulated machine with the ultravisor finding the blob
# in the initrd; every bad input gets its exit code and leaves nothing behind.
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }
DATA="$SVMKIT_SOURCE_DIR/tests/data/esm"
GOLDEN="$DATA/add"
GOLDEN_SHA256=20c18c0bf995ec745b0e4d2709e1bb8d85b473837ed88112ce3383d7b8dce016
CMDLINE="console=hvc0 svm=on swiotlb=8M svmkit.secret_file=disk-passphrase"

json_check() { # json_check PYTHON-ASSERTIONS (on d = the JSON in $OUT)
  CHECKS=$((CHECKS + 1))
  python3 -c "import json, sys; d = json.loads(sys.stdin.read()); $1" <<<"$OUT" ||
    fail "JSON check failed: $1"
}

# ---- the golden vector -------------------------------------------------------
CHECKS=$((CHECKS + 1))
[ "$(sha256sum "$GOLDEN/expected.bin" | cut -d' ' -f1)" = "$GOLDEN_SHA256" ] ||
  fail "tests/data/esm/add/expected.bin is not the recorded golden vector"
cp "$GOLDEN/blob.dtb" "$GOLDEN/initrd.bin" .
expect_exit 0 env SOURCE_DATE_EPOCH=1700000000 "$SVMKIT" esm add --blob blob.dtb \
  --initrd initrd.bin -o out.bin
same_files out.bin "$GOLDEN/expected.bin"
expect_contains "$OUT" "wrote out.bin: cpio member opt/ibm/pef/blob.dtb \(1 lockboxes, 0 files\)"
# svm-tools' spelling, and JSON.
expect_exit 0 env SOURCE_DATE_EPOCH=1700000000 "$SVMKIT" esm add -b blob.dtb -i initrd.bin \
  -f out-svm.bin --json
same_files out-svm.bin "$GOLDEN/expected.bin"
json_check "assert d['schema'] == 'svmkit-esm-add-v1' and d['output'] == 'out-svm.bin' and d['member'] == 'opt/ibm/pef/blob.dtb'"
json_check "assert d['archive_size'] % 512 == 0 and d['size'] == d['archive_size'] + d['initrd_size'] == $(stat -c %s "$GOLDEN/expected.bin")"
# Standard input and output.
expect_exit 0 env SOURCE_DATE_EPOCH=1700000000 sh -c "'$SVMKIT' esm add --blob blob.dtb --initrd - -o - < initrd.bin > out-stream.bin"
same_files out-stream.bin "$GOLDEN/expected.bin"

# What svm-tools does (svm_tool/svm/svm.py, svm_add), run here with GNU cpio,
# its metadata fixed as svmkit fixes it (README.md beside the golden vector).
if command -v cpio >/dev/null; then
  (
    umask 022
    mkdir -p svm/cpio_dir/opt/ibm/pef
    cp blob.dtb svm/cpio_dir/opt/ibm/pef/
    find svm/cpio_dir -exec touch -h -d @1700000000 {} +
    cd svm/cpio_dir
    find . -print0 | cpio --null --create --quiet --format=newc --reproducible -R 0:0 \
      -F ../esm_blob.cpio
  )
  cat svm/esm_blob.cpio initrd.bin > out-cpio.bin
  same_files out-cpio.bin out.bin
fi

# ---- SOURCE_DATE_EPOCH and --name ------------------------------------------------
expect_exit 0 env SOURCE_DATE_EPOCH=1700000001 "$SVMKIT" esm add --blob blob.dtb \
  --initrd initrd.bin -o later.bin
CHECKS=$((CHECKS + 1))
cmp -s later.bin out.bin && fail "a different SOURCE_DATE_EPOCH gave the same archive"
# The first entry, ".": inode 0, mode 040755, uid 0, gid 0, nlink 3, then the mtime.
expect_contains "$(head -c 110 later.bin)" "^070701""00000000""000041ED""00000000""00000000""00000003""6553F101"
expect_exit 0 env -u SOURCE_DATE_EPOCH "$SVMKIT" esm add --blob blob.dtb --initrd initrd.bin \
  -o now.bin --name esmb.dtb
expect_contains "$OUT" "cpio member opt/ibm/pef/esmb.dtb"
# Unset, the entries carry the current time.
CHECKS=$((CHECKS + 1))
mtime=$((16#$(head -c 54 now.bin | tail -c 8)))
[ $(( $(date +%s) - mtime )) -lt 120 ] || fail "unset SOURCE_DATE_EPOCH: mtime $mtime is not now"

# ---- the result boots: the ultravisor finds the blob in the initrd ----------------
mkdir -p boot
cp "$SAMPLE_KERNEL" boot/sample-kernel.elf
"$SVMKIT_SOURCE_DIR/samples/make-sample-initrd.sh" boot/initrd.cpio.gz
ln -s "$DATA/keys" keys
ln -s "$DATA/attachments" attachments
"$SVMKIT" keygen --algo ed25519 -o sign.key --public-output sign.pub >/dev/null
expect_exit 0 "$SVMKIT" esm make -y "$DATA/svm_blob.yml" -o esmb.dtb \
  --key-passphrase-file "$DATA/keys/owner-passphrase"
expect_exit 0 "$SVMKIT" esm add --blob esmb.dtb --initrd boot/initrd.cpio.gz -o esmb-initrd
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd esmb-initrd \
  --cmdline "$CMDLINE" --key sign.key -o esmb.img
expect_exit 0 "$SVMKIT" boot esmb.img --trusted-key sign.pub --machine-key keys/tpm-priv.pem \
  --timeout 60
expect_contains "$OUT" "ibm,esm \(in the initrd's cpio member opt/ibm/pef/esmb.dtb\): lockbox-1 opened with the machine key; sealed digests match; 2 secret file\(s\) disk-passphrase luks-key"
expect_contains "$OUT" "secret file disk-passphrase: .* sha256 $(sha256sum "$DATA/attachments/disk-passphrase.txt" | cut -d' ' -f1)"
# A blob sealed for another initrd is refused by the ultravisor.
printf 'another initrd\n' > other-initrd
expect_exit 0 "$SVMKIT" esm add --blob esmb.dtb --initrd other-initrd -o other-esmb-initrd
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd other-esmb-initrd \
  --cmdline "$CMDLINE" --key sign.key -o other.img
expect_exit 5 "$SVMKIT" boot other.img --trusted-key sign.pub --machine-key keys/tpm-priv.pem \
  --timeout 60
expect_contains "$OUT" "refused: esm-initrd-digest-mismatch"

# ---- bad inputs ------------------------------------------------------------------
cp initrd.bin keep-initrd.bin
expect_error 2 "initrd.bin: .*same file" "$SVMKIT" esm add --blob blob.dtb --initrd initrd.bin -o initrd.bin
same_files initrd.bin keep-initrd.bin
ln -s initrd.bin link-initrd
expect_error 2 "same file" "$SVMKIT" esm add --blob blob.dtb --initrd initrd.bin -o link-initrd
same_files initrd.bin keep-initrd.bin
expect_error 2 "same file" "$SVMKIT" esm add --blob blob.dtb --initrd initrd.bin -o blob.dtb
same_files blob.dtb "$GOLDEN/blob.dtb"
expect_error 2 "-o/--output .*is required" "$SVMKIT" esm add --blob blob.dtb --initrd initrd.bin
printf 'not a blob' > not-a-blob
expect_error 3 "not-a-blob" "$SVMKIT" esm add --blob not-a-blob --initrd initrd.bin -o x1
expect_no_file x1
expect_error 4 "missing-initrd" "$SVMKIT" esm add --blob blob.dtb --initrd missing-initrd -o x2
expect_no_file x2
mkdir a-directory
expect_error 3 "a-directory" "$SVMKIT" esm add --blob blob.dtb --initrd a-directory -o x3
expect_no_file x3
expect_error 3 "out.bin: already starts with an ESM blob archive \(cpio member opt/ibm/pef/blob.dtb\)" \
  "$SVMKIT" esm add --blob blob.dtb --initrd out.bin -o x4
expect_no_file x4
expect_error 2 "SOURCE_DATE_EPOCH='4294967296'" env SOURCE_DATE_EPOCH=4294967296 \
  "$SVMKIT" esm add --blob blob.dtb --initrd initrd.bin -o x5
expect_no_file x5
expect_error 2 "'a/b' cannot name the blob" "$SVMKIT" esm add --blob blob.dtb \
  --initrd initrd.bin -o x6 --name a/b
expect_no_file x6
expect_exit 2 "$SVMKIT" esm add --blob blob.dtb --initrd initrd.bin -o x7 --json --name ..
json_check "assert d['schema'] == 'svmkit-error-v1' and d['exit_code'] == 2"
expect_no_file x7
expect_error 4 "/dev/full" "$SVMKIT" esm add --blob blob.dtb --initrd initrd.bin -o /dev/full

echo "esm_add_test: $CHECKS checks, $FAILURES failures"
[ "$FAILURES" -eq 0 ]
