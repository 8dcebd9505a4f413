#!/usr/bin/env bash
# svmkit esm and the ultravisor's ibm,esm checks: a blob made from an
# svm-tools style YAML boots on the simulated machine and delivers its secret
# file; lockboxes for RSA 2048 and 4096 machine keys, several recipients,
# authorize then revoke; a wrong machine key, damaged lockboxes, changed
# ciphertext, IV or MAC and wrong bootargs are each refused with their own
# cause; bad inputs get their documented exit codes.
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }
DATA="$SVMKIT_SOURCE_DIR/tests/data/esm"
CMDLINE="console=hvc0 svm=on swiotlb=8M svmkit.secret_file=disk-passphrase"
PASS_FILE="$DATA/keys/owner-passphrase"

json_check() { # json_check PYTHON-ASSERTIONS (on d = the JSON in $OUT)
  CHECKS=$((CHECKS + 1))
  python3 -c "import json, sys; d = json.loads(sys.stdin.read()); $1" <<<"$OUT" ||
    fail "JSON check failed: $1"
}

# tamper.py IMAGE PATH OUT: flips the middle byte of one property of the ibm,esm
# nodes in the image's .kernel:esm_blob section, or of a blob file, in place
# (the tree's layout is unchanged). PATH is /node/.../property; "A::B" reaches property B of the
# device tree stored in property A (the files-fdt).
cat > tamper.py <<'PY'
import struct, sys
image, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
data = bytearray(open(image, "rb").read())
if data[:4] == b"\xd0\x0d\xfe\xed":
    base = 0  # a blob of its own (svmkit esm make)
else:
    from elf_sections import section
    base = section(data, ".kernel:esm_blob").offset

def find(at, want):
    """Offset and length of property `want` (a /-path) in the FDT at `at`."""
    magic, total, off_struct, off_strings = struct.unpack_from(">IIII", data, at)
    assert magic == 0xd00dfeed
    p, stack = at + off_struct, []
    while True:
        tok = struct.unpack_from(">I", data, p)[0]
        p += 4
        if tok == 1:
            end = data.index(b"\0", p)
            stack.append(data[p:end].decode())
            p = (end + 4) & ~3
        elif tok == 2:
            stack.pop()
        elif tok == 3:
            length, nameoff = struct.unpack_from(">II", data, p)
            p += 8
            s = at + off_strings + nameoff
            name = data[s:data.index(b"\0", s)].decode()
            if "/".join(stack[1:] + [name]) == want.strip("/"):
                return p, length
            p = (p + length + 3) & ~3
        elif tok == 9:
            sys.exit("no property " + want)

outer, _, inner = path.partition("::")
off, length = find(base, outer)
if inner:
    off, length = find(off, inner)
data[off + length // 2] ^= 0x01
open(out, "wb").write(data)
PY

# ---- keys and inputs -------------------------------------------------------
mkdir -p boot work
cp "$SAMPLE_KERNEL" boot/sample-kernel.elf
"$SVMKIT_SOURCE_DIR/samples/make-sample-initrd.sh" boot/initrd.cpio.gz
ln -s "$DATA/keys" keys
ln -s "$DATA/attachments" attachments
"$SVMKIT" keygen --algo ed25519 -o sign.key --public-output sign.pub >/dev/null
for bits in 2048 4096; do
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:$bits -out m$bits.key 2>/dev/null
  openssl pkey -in m$bits.key -pubout -out m$bits.pub
done
for n in a b c; do
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $n.key 2>/dev/null
  openssl pkey -in $n.key -pubout -out $n.pub
done
DISK_SHA=$(sha256sum "$DATA/attachments/disk-passphrase.txt" | cut -d' ' -f1)
LUKS_SHA=$(sha256sum "$DATA/attachments/luks-key.b64" | cut -d' ' -f1)

boot() { # boot IMAGE [options]: the sample kernel on the simulated machine
  local img=$1
  shift
  expect_exit "${WANT:-0}" "$SVMKIT" boot "$img" --trusted-key sign.pub --timeout 60 "$@"
}

# ---- esm make from the svm-tools YAML ----------------------------------------
expect_error 2 "owner-priv.pem: the private key is encrypted; pass --key-passphrase-env" \
  "$SVMKIT" esm make -y "$DATA/svm_blob.yml" -o blob.dtb
expect_no_file blob.dtb
expect_error 2 "passphrase variable SVMKIT_ESM_TEST_PW is not set" \
  "$SVMKIT" esm make -y "$DATA/svm_blob.yml" -o blob.dtb --key-passphrase-env SVMKIT_ESM_TEST_PW
printf 'wrong\n' > wrong-pass
expect_error 3 "cannot decrypt private key \(wrong passphrase\?\)" \
  "$SVMKIT" esm make -y "$DATA/svm_blob.yml" -o blob.dtb --key-passphrase-file wrong-pass
expect_exit 0 env SVMKIT_ESM_TEST_PW="$(head -1 "$PASS_FILE")" "$SVMKIT" esm make \
  -y "$DATA/svm_blob.yml" -o blob-env.dtb --key-passphrase-env SVMKIT_ESM_TEST_PW
expect_exit 0 "$SVMKIT" esm make -y "$DATA/svm_blob.yml" -o blob.dtb --key-passphrase-file "$PASS_FILE"
expect_contains "$OUT" "wrote blob.dtb: 2 lockboxes, 2 files"
dtc -I dtb -O dts blob.dtb > blob.dts 2>/dev/null || fail "dtc cannot read blob.dtb"
expect_contains "$(cat blob.dts)" 'compatible = "ibm,esm"'
expect_contains "$(cat blob.dts)" "origin-lockbox"

# display: the fingerprints are SHA-256 of the PEM files, as svm-tools computes them.
expect_exit 0 "$SVMKIT" esm display blob.dtb --json
json_check "assert d['schema'] == 'svmkit-esm-v1'"
json_check "assert [b['name'] for b in d['lockboxes']] == ['origin-lockbox', 'lockbox-1']"
json_check "assert d['lockboxes'][0]['fingerprint'] == '$(sha256sum keys/owner-pub.pem | cut -d' ' -f1)'"
json_check "assert d['lockboxes'][1]['fingerprint'] == '$(sha256sum keys/tpm-pub.pem | cut -d' ' -f1)'"
json_check "assert d['lockboxes'][1]['encrypted_symkey_size'] == 512"
json_check "assert [f['name'] for f in d['files']] == ['disk-passphrase', 'luks-key']"
json_check "assert d['files'][0]['untrusted_comment'] == 'LUKS passphrase'"
expect_exit 0 "$SVMKIT" esm display blob.dtb
expect_contains "$OUT" "recipient lockbox-1 +$(sha256sum keys/tpm-pub.pem | cut -d' ' -f1)"

# extract: each lockbox's key decrypts the same files and digests.
expect_exit 0 "$SVMKIT" esm extract blob.dtb --key keys/tpm-priv.pem --file luks-key -o luks.out
same_files luks.out attachments/luks-key.b64
expect_exit 0 "$SVMKIT" esm extract blob.dtb --key keys/owner-priv.pem \
  --key-passphrase-file "$PASS_FILE" --file disk-passphrase -o disk.out
same_files disk.out attachments/disk-passphrase.txt
expect_exit 0 "$SVMKIT" esm extract blob.dtb --key keys/tpm-priv.pem -o digests.dtb
dtc -I dtb -O dts digests.dtb > digests.dts 2>/dev/null || fail "dtc cannot read digests.dtb"
expect_exit 0 "$SVMKIT" esm digest -y "$DATA/svm_blob.yml" --json
json_check "assert d['kernel_size'] == $(python3 -c "
import re; print(int(re.search(r'kernel-size = <(0x[0-9a-f]+)>', open('digests.dts').read()).group(1), 16))")"
json_check "assert d['bootargs'] == '$(printf '%s' "$CMDLINE" | sha512sum | cut -d' ' -f1)'"
json_check "assert d['initrd'] == '$(sha512sum boot/initrd.cpio.gz | cut -d' ' -f1)'"
expect_error 1 "no lockbox for key m2048.key" \
  "$SVMKIT" esm extract blob.dtb --key m2048.key -o x.out
expect_no_file x.out
expect_error 2 "the blob has no file 'nope'" \
  "$SVMKIT" esm extract blob.dtb --key keys/tpm-priv.pem --file nope -o x.out

# ---- the YAML's blob in an image boots and delivers the secret file ----------
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd boot/initrd.cpio.gz \
  --cmdline "$CMDLINE" --key sign.key --esm-blob blob.dtb -o yaml.img
expect_exit 0 "$SVMKIT" verify yaml.img --trusted-key sign.pub
boot yaml.img --machine-key keys/tpm-priv.pem
expect_contains "$OUT" "svmkit sample kernel: secret file disk-passphrase: 68 bytes in 3 calls \(1 reads\), sha256 $DISK_SHA"
expect_contains "$OUT" "result +exited with status 0"
# The owner's key is a lockbox too (origin-lockbox).
expect_exit 0 "$SVMKIT" esm display yaml.img --json
json_check "assert len(d['lockboxes']) == 2 and len(d['files']) == 2"

# ---- build --esm-recipient: RSA 2048 and 4096 machines, thousands of calls ----
LUKS_CMDLINE="console=hvc0 svm=on swiotlb=8M svmkit.secret_file=luks-key svmkit.secret_file_reads=50"
for bits in 2048 4096; do
  expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd boot/initrd.cpio.gz \
    --cmdline "$LUKS_CMDLINE" --compress gzip --key sign.key --esm-recipient m$bits.pub \
    --esm-file luks-key=attachments/luks-key.b64 -o r$bits.img
  boot r$bits.img --machine-key m$bits.key
  expect_contains "$OUT" "secret file luks-key: 4053 bytes in 3250 calls \(50 reads\), sha256 $LUKS_SHA"
done

# ---- several recipients: each machine's lockbox, in any position --------------
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd boot/initrd.cpio.gz \
  --cmdline "$CMDLINE" --key sign.key --esm-origin keys/owner-pub.pem \
  --esm-recipient a.pub --esm-recipient b.pub --esm-recipient c.pub \
  --esm-file disk-passphrase=attachments/disk-passphrase.txt -o multi.img
i=1
for n in a b c; do
  boot multi.img --machine-key $n.key
  expect_contains "$OUT" "sha256 $DISK_SHA"
  # The report names the lockbox that opened (origin-lockbox is the owner's).
  expect_contains "$OUT" "ibm,esm: lockbox-$i opened with the machine key; sealed digests match; 1 secret file\(s\) disk-passphrase"
  i=$((i + 1))
done
boot multi.img --machine-key c.key --json
json_check "assert d['esm']['esm_lockbox'] == 'lockbox-3' and d['esm']['esm_files'] == ['disk-passphrase']"

# inspect summarises the ibm,esm nodes (text and JSON); an image without them says none.
expect_exit 0 "$SVMKIT" inspect multi.img
expect_contains "$OUT" "ibm,esm     4 lockbox\(es\), digests sealed, 1 secret file\(s\)"
expect_contains "$OUT" "  file    disk-passphrase"
expect_exit 0 "$SVMKIT" inspect multi.img --json
json_check "assert len(d['esm']['lockboxes']) == 4 and d['esm']['digests'] and d['esm']['files'] == ['disk-passphrase']"
expect_exit 0 "$SVMKIT" esm display multi.img --json
FPS=$(python3 -c "import json,sys; print(' '.join(l['fingerprint'] for l in json.loads(sys.argv[1])['lockboxes']))" "$OUT")
expect_exit 0 "$SVMKIT" inspect multi.img
for fp in $FPS; do expect_contains "$OUT" "lockbox [0-9]+ fingerprint $fp"; done
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --cmdline "$CMDLINE" --key sign.key -o plain.img
expect_exit 0 "$SVMKIT" inspect plain.img
expect_contains "$OUT" "ibm,esm     none"
expect_exit 0 "$SVMKIT" inspect plain.img --json
json_check "assert d['esm']['source'] is None and d['esm']['lockboxes'] == []"
WANT=26 boot plain.img --json # no secret files: the kernel asking for one stops (26)
json_check "assert d['esm']['ok'] and d['esm']['esm_lockbox'] is None"

# ---- wrong machine key, no machine key ----------------------------------------
WANT=5 boot multi.img --machine-key m2048.key
expect_contains "$OUT" "refused: esm-no-lockbox \(U_PARAMETER -4\): no lockbox for key m2048.key"
expect_not_contains "$OUT" "svmkit sample kernel"
WANT=5 boot multi.img
expect_contains "$OUT" "esm-no-lockbox.*this machine has no key"

# ---- authorize, then revoke -----------------------------------------------------
expect_exit 0 "$SVMKIT" esm authorize blob.dtb --origin-key keys/owner-priv.pem \
  --key-passphrase-file "$PASS_FILE" --recipient m2048.pub -c "second machine" -o auth.dtb
expect_contains "$OUT" "authorised m2048.pub"
expect_exit 0 "$SVMKIT" esm display auth.dtb --json
json_check "assert d['lockboxes'][2]['name'] == 'lockbox-2' and d['lockboxes'][2]['untrusted_comment'] == 'second machine'"
expect_error 2 "already authorised in lockbox-2" "$SVMKIT" esm authorize auth.dtb \
  --origin-key keys/owner-priv.pem --key-passphrase-file "$PASS_FILE" --recipient m2048.pub
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd boot/initrd.cpio.gz \
  --cmdline "$CMDLINE" --key sign.key --esm-blob auth.dtb -o auth.img
boot auth.img --machine-key m2048.key
expect_contains "$OUT" "sha256 $DISK_SHA"
# A recipient key can authorise too (it holds the same symmetric key), in place.
cp auth.dtb inplace.dtb
expect_exit 0 "$SVMKIT" esm authorize inplace.dtb --origin-key m2048.key --recipient a.pub
expect_exit 0 "$SVMKIT" esm extract inplace.dtb --key a.key --file luks-key -o a.out
same_files a.out attachments/luks-key.b64
# Revoke by fingerprint and by public key file.
FP=$(sha256sum m2048.pub | cut -d' ' -f1)
expect_exit 0 "$SVMKIT" esm revoke auth.dtb --fingerprint "$FP" -o revoked.dtb
expect_contains "$OUT" "revoked $FP"
expect_exit 0 "$SVMKIT" esm revoke inplace.dtb --fingerprint a.pub
expect_error 1 "no lockbox for key a.key" "$SVMKIT" esm extract inplace.dtb --key a.key -o x.out
expect_error 2 "no lockbox has fingerprint $FP" "$SVMKIT" esm revoke revoked.dtb --fingerprint "$FP"
expect_error 2 "origin lockbox, which cannot be revoked" \
  "$SVMKIT" esm revoke revoked.dtb --fingerprint keys/owner-pub.pem
expect_error 2 "neither 64 hex digits nor an RSA public key" \
  "$SVMKIT" esm revoke revoked.dtb --fingerprint 1234
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd boot/initrd.cpio.gz \
  --cmdline "$CMDLINE" --key sign.key --esm-blob revoked.dtb -o revoked.img
WANT=5 boot revoked.img --machine-key m2048.key
expect_contains "$OUT" "esm-no-lockbox"
boot revoked.img --machine-key keys/tpm-priv.pem # the others still boot

# Authorize and revoke work on an image too; its signatures stay valid.
cp multi.img image-auth.img
expect_exit 0 "$SVMKIT" esm authorize image-auth.img --origin-key keys/owner-priv.pem \
  --key-passphrase-file "$PASS_FILE" --recipient m4096.pub
expect_exit 0 "$SVMKIT" verify image-auth.img --trusted-key sign.pub
boot image-auth.img --machine-key m4096.key
expect_contains "$OUT" "sha256 $DISK_SHA"
expect_exit 0 "$SVMKIT" esm revoke image-auth.img --fingerprint m4096.pub -o image-revoked.img
expect_exit 0 "$SVMKIT" verify image-revoked.img --trusted-key sign.pub
WANT=5 boot image-revoked.img --machine-key m4096.key
expect_contains "$OUT" "esm-no-lockbox"
boot image-revoked.img --machine-key b.key

# ---- damaged lockbox; sealed nodes changed after signing; a blob that does not open ----
python3 tamper.py multi.img /lockboxes/lockbox-2/encrypted-symkey t-lockbox.img
# Lockboxes are outside the signed bytes: verify passes, the ultravisor refuses.
expect_exit 0 "$SVMKIT" verify t-lockbox.img --trusted-key sign.pub
WANT=5 boot t-lockbox.img --machine-key b.key
expect_contains "$OUT" "refused: esm-unwrap-failed .*lockbox-2"
# The sealed digests and files are signed with the manifest: changing any of
# their bytes in a signed image breaks its signature (nobody can swap their
# own secrets into it).
for part in ciphertext iv mac; do
  python3 tamper.py multi.img /digest/digests-fdt/$part t-$part.img
  expect_exit 1 "$SVMKIT" verify t-$part.img --trusted-key sign.pub
  expect_contains "$OUT" "VERIFICATION FAILED"
  WANT=5 boot t-$part.img --machine-key a.key
  expect_contains "$OUT" "refused: bad-signature"
  expect_not_contains "$OUT" "svmkit sample kernel"
done
python3 tamper.py multi.img "/file/files-fdt::/files/disk-passphrase/ciphertext" t-file.img
expect_exit 1 "$SVMKIT" verify t-file.img --trusted-key sign.pub
WANT=5 boot t-file.img --machine-key c.key
expect_contains "$OUT" "refused: bad-signature"
# A blob damaged before it was signed: the signatures hold, the AES-256-GCM
# tags do not.
for part in ciphertext iv mac; do
  python3 tamper.py blob.dtb /digest/digests-fdt/$part blob-$part.dtb
  expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd boot/initrd.cpio.gz \
    --cmdline "$CMDLINE" --key sign.key --esm-blob blob-$part.dtb -o s-$part.img
  expect_exit 0 "$SVMKIT" verify s-$part.img --trusted-key sign.pub
  WANT=5 boot s-$part.img --machine-key keys/tpm-priv.pem
  expect_contains "$OUT" "refused: esm-auth-failed .*/digest/digests-fdt: AES-256-GCM authentication failed"
  expect_not_contains "$OUT" "svmkit sample kernel"
done
python3 tamper.py blob.dtb "/file/files-fdt::/files/disk-passphrase/ciphertext" blob-file.dtb
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd boot/initrd.cpio.gz \
  --cmdline "$CMDLINE" --key sign.key --esm-blob blob-file.dtb -o s-file.img
WANT=5 boot s-file.img --machine-key keys/tpm-priv.pem
expect_contains "$OUT" "refused: esm-auth-failed .*file disk-passphrase"

# ---- the blob in a cpio prepended to the initrd (svm-tools' esmb-initrd) ------------
# An image with no ibm,esm nodes of its own whose initrd starts with a newc
# archive holding opt/ibm/pef/esmb.dtb: the ultravisor uses that blob, and the
# sealed initrd digest covers what follows the archive (its end rounded up to
# 512 bytes, as cpio pads it).
mkdir -p esmb/opt/ibm/pef
cp blob.dtb esmb/opt/ibm/pef/esmb.dtb
(cd esmb && find opt | LC_ALL=C sort | cpio -o -H newc --quiet) > esmb.cpio
cat esmb.cpio boot/initrd.cpio.gz > esmb-initrd
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd esmb-initrd \
  --cmdline "$CMDLINE" --key sign.key -o esmb.img
expect_exit 0 "$SVMKIT" inspect esmb.img
expect_contains "$OUT" "ibm,esm     in the initrd's cpio member opt/ibm/pef/esmb.dtb: 2 lockbox\(es\), digests sealed, 2 secret file\(s\) \(signed as part of the initrd"
expect_exit 0 "$SVMKIT" inspect esmb.img --json
json_check "assert d['esm']['source'] == 'initrd:opt/ibm/pef/esmb.dtb' and len(d['esm']['lockboxes']) == 2 and d['esm']['files'] == ['disk-passphrase', 'luks-key']"
boot esmb.img --machine-key keys/tpm-priv.pem
expect_contains "$OUT" "ibm,esm \(in the initrd's cpio member opt/ibm/pef/esmb.dtb\): lockbox-1 opened with the machine key; sealed digests match; 2 secret file\(s\) disk-passphrase luks-key"
expect_contains "$OUT" "sha256 $DISK_SHA"
boot esmb.img --machine-key keys/tpm-priv.pem --json
json_check "assert d['esm']['esm_source'] == 'initrd:opt/ibm/pef/esmb.dtb' and d['esm']['esm_lockbox'] == 'lockbox-1'"
WANT=5 boot esmb.img --machine-key a.key
expect_contains "$OUT" "refused: esm-no-lockbox"
# esm display and extract read it there; authorize and revoke would change the
# signed initrd: refused, nothing written.
expect_exit 0 "$SVMKIT" esm display esmb.img
expect_contains "$OUT" "esmb.img: ibm,esm blob in the initrd's cpio member opt/ibm/pef/esmb.dtb"
expect_exit 0 "$SVMKIT" esm display esmb.img --json
json_check "assert d['initrd_member'] == 'opt/ibm/pef/esmb.dtb' and [f['name'] for f in d['files']] == ['disk-passphrase', 'luks-key']"
expect_exit 0 "$SVMKIT" esm extract esmb.img --key keys/tpm-priv.pem --file luks-key -o luks2.out
same_files luks2.out attachments/luks-key.b64
expect_error 2 "the ESM blob is the initrd's cpio member opt/ibm/pef/esmb.dtb, part of the signed initrd" \
  "$SVMKIT" esm revoke esmb.img --fingerprint keys/tpm-pub.pem -o esmb-revoked.img
expect_no_file esmb-revoked.img
# Another initrd after the same archive: not what the blob seals.
cat esmb.cpio esmb.cpio boot/initrd.cpio.gz > esmb-other
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd esmb-other \
  --cmdline "$CMDLINE" --key sign.key -o esmb-other.img
WANT=5 boot esmb-other.img --machine-key keys/tpm-priv.pem
expect_contains "$OUT" "refused: esm-initrd-digest-mismatch"
# Something under opt/ibm/pef that is not a blob: refused, the member named.
mkdir -p junkb/opt/ibm/pef
head -c 300 /dev/urandom > junkb/opt/ibm/pef/esmb.dtb
(cd junkb && find opt | LC_ALL=C sort | cpio -o -H newc --quiet) > junk.cpio
cat junk.cpio boot/initrd.cpio.gz > junk-initrd
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd junk-initrd \
  --cmdline "$CMDLINE" --key sign.key -o junk.img
expect_exit 0 "$SVMKIT" inspect junk.img
expect_contains "$OUT" "ibm,esm     unusable: junk.img: the initrd \(cpio member opt/ibm/pef/esmb.dtb\)"
WANT=5 boot junk.img --machine-key keys/tpm-priv.pem
expect_contains "$OUT" "refused: esm-digests-malformed .*the initrd \(cpio member opt/ibm/pef/esmb.dtb\)"

# ---- sealed digests that do not match the image ----------------------------------
sed 's/svmkit.secret_file=disk-passphrase/svmkit.secret_file=luks-key/' "$DATA/svm_blob.yml" > other-args.yml
expect_exit 0 "$SVMKIT" esm make -y other-args.yml -o other-args.dtb --key-passphrase-file "$PASS_FILE"
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd boot/initrd.cpio.gz \
  --cmdline "$CMDLINE" --key sign.key --esm-blob other-args.dtb -o wrong-args.img
WANT=5 boot wrong-args.img --machine-key keys/tpm-priv.pem
expect_contains "$OUT" "refused: esm-bootargs-mismatch"
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf \
  --cmdline "$CMDLINE" --key sign.key --esm-blob blob.dtb -o no-initrd.img
WANT=5 boot no-initrd.img --machine-key keys/tpm-priv.pem
expect_contains "$OUT" "refused: esm-initrd-digest-mismatch.*no initrd"
printf 'other initrd' > other.initrd
expect_exit 0 "$SVMKIT" build --kernel boot/sample-kernel.elf --initrd other.initrd \
  --cmdline "$CMDLINE" --key sign.key --esm-blob blob.dtb -o other-initrd.img
WANT=5 boot other-initrd.img --machine-key keys/tpm-priv.pem
expect_contains "$OUT" "refused: esm-initrd-digest-mismatch"
make_x86_kernel other-kernel.elf
expect_exit 0 "$SVMKIT" build --kernel other-kernel.elf --initrd boot/initrd.cpio.gz \
  --cmdline "$CMDLINE" --key sign.key --esm-blob blob.dtb -o other-kernel.img
WANT=5 boot other-kernel.img --machine-key keys/tpm-priv.pem
expect_contains "$OUT" "refused: esm-kernel-digest-mismatch"

# ---- bad inputs: file named, documented exit codes ---------------------------------
printf -- '- origin:\n    pubkey: keys/owner-pub.pem\n    colour: blue\n' > bad.yml
expect_error 3 "bad.yml: entry 1 \(origin\): unknown field 'colour'" \
  "$SVMKIT" esm make -y bad.yml -o x.dtb
printf -- '- origin: [\n' > broken.yml
expect_error 3 "broken.yml: not valid YAML" "$SVMKIT" esm make -y broken.yml -o x.dtb
expect_error 4 "missing.yml" "$SVMKIT" esm make -y missing.yml -o x.dtb
sed 's|keys/tpm-pub.pem|missing.pem|' "$DATA/svm_blob.yml" > missing-key.yml
expect_error 4 "missing.pem" "$SVMKIT" esm make -y missing-key.yml -o x.dtb \
  --key-passphrase-file "$PASS_FILE"
"$SVMKIT" keygen --algo ecdsa-p256 -o ec.key --public-output ec.pub >/dev/null
sed 's|keys/tpm-pub.pem|ec.pub|' "$DATA/svm_blob.yml" > ec.yml
expect_error 3 "ec.pub: not an RSA key" "$SVMKIT" esm make -y ec.yml -o x.dtb \
  --key-passphrase-file "$PASS_FILE"
sed 's|seckey: "keys/owner-priv.pem"|seckey: "a.key"|' "$DATA/svm_blob.yml" > mismatch.yml
expect_error 2 "origin seckey a.key is not the private half of keys/owner-pub.pem" \
  "$SVMKIT" esm make -y mismatch.yml -o x.dtb
expect_no_file x.dtb
head -c 300 /dev/urandom > junk.dtb
expect_error 3 "junk.dtb: not a device tree blob" "$SVMKIT" esm display junk.dtb
head -c $(($(stat -c %s blob.dtb) - 1)) blob.dtb > short.dtb
expect_error 3 "short.dtb" "$SVMKIT" esm display short.dtb
expect_error 2 "NAME=PATH" "$SVMKIT" build --kernel boot/sample-kernel.elf --cmdline x \
  --key sign.key --esm-recipient a.pub --esm-file nameonly -o x.img
expect_error 2 "usage error" "$SVMKIT" build --kernel boot/sample-kernel.elf --cmdline x \
  --key sign.key --esm-recipient a.pub --esm-blob blob.dtb -o x.img
expect_error 2 "file name '9bad' is not valid" "$SVMKIT" build --kernel boot/sample-kernel.elf \
  --cmdline x --key sign.key --esm-recipient a.pub --esm-file 9bad=a.pub -o x.img
expect_no_file x.img

finish
