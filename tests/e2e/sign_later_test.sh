#!/usr/bin/env bash
# Sign later: unsigned build, tbs bytes or digest, signatures made by plain
# openssl (as README documents), attach with a check, verify with policy.
source "$(dirname "$0")/lib.sh"

make_x86_kernel kernel.elf
head -c 100000 /dev/urandom > initrd.bin
for a in ed25519 ecdsa-p256 ecdsa-p384 rsa-3072 rsa-4096; do
  "$SVMKIT" keygen --algo $a -o $a.key --public-output $a.pub >/dev/null
done

expect_exit 0 "$SVMKIT" build --kernel kernel.elf --initrd initrd.bin --cmdline "quiet" --unsigned -o unsigned.img
expect_exit 0 "$SVMKIT" inspect unsigned.img
expect_contains "$OUT" "none \(unsigned image\)"
expect_error 1 "" "$SVMKIT" verify unsigned.img --trusted-key ed25519.pub
expect_contains "$OUT" "carries no signature"

expect_exit 0 "$SVMKIT" tbs unsigned.img -o tbs.bin
for d in sha256 sha384 sha512; do
  expect_exit 0 "$SVMKIT" tbs unsigned.img --hash $d -o $d.bin
  CHECKS=$((CHECKS + 1))
  [ "$(openssl dgst -$d -binary tbs.bin | od -An -tx1 | tr -d ' \n')" = "$(od -An -tx1 $d.bin | tr -d ' \n')" ] ||
    fail "tbs --hash $d is not the $d of the tbs bytes"
  expect_exit 0 "$SVMKIT" tbs unsigned.img --hash $d --hex
  CHECKS=$((CHECKS + 1))
  [ "$OUT" = "$(openssl dgst -$d -r tbs.bin | cut -d' ' -f1)" ] || fail "tbs --hex $d"
done

# The exact openssl commands README documents, one per algorithm.
openssl pkeyutl -sign -rawin -inkey ed25519.key -in tbs.bin -out ed25519.sig
openssl dgst -sha256 -sign ecdsa-p256.key -out ecdsa-p256.sig tbs.bin
openssl pkeyutl -sign -inkey ecdsa-p384.key -in sha384.bin -out ecdsa-p384.sig
openssl pkeyutl -sign -inkey rsa-3072.key -in sha256.bin -pkeyopt digest:sha256 \
  -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest -out rsa-3072.sig
openssl dgst -sha384 -sign rsa-4096.key -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
  -out rsa-4096.sig tbs.bin

img=unsigned.img
n=0
for a in ed25519 ecdsa-p256 ecdsa-p384 rsa-3072 rsa-4096; do
  n=$((n + 1))
  expect_exit 0 "$SVMKIT" attach $img --signature $a.sig --pubkey $a.pub -o signed-$n.img
  expect_contains "$OUT" "attached"
  expect_exit 0 "$SVMKIT" verify signed-$n.img --trusted-key $a.pub
  img=signed-$n.img
done
expect_exit 0 "$SVMKIT" verify $img --trusted-key ed25519.pub --trusted-key ecdsa-p256.pub \
  --trusted-key ecdsa-p384.pub --trusted-key rsa-3072.pub --trusted-key rsa-4096.pub --require-signatures 5
expect_exit 1 "$SVMKIT" verify $img --json --trusted-key ed25519.pub --trusted-key rsa-4096.pub --revoked-key ecdsa-p256.pub
expect_contains "$OUT" '"key": "revoked"'
expect_contains "$OUT" '"failure": "revoked-key"'

# Attaching changes nothing outside the manifest section.
python3 - unsigned.img "$img" <<'PY' || fail "attach changed bytes outside the manifest section"
import sys
from elf_sections import section
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert len(a) == len(b)
s = section(a, ".kernel:esm_blob")
lo, hi = s.offset, s.offset + s.size
diff = [i for i in range(len(a)) if a[i] != b[i]]
assert diff and all(lo <= i < hi for i in diff), (diff[:3], lo, hi)
PY

# Bad input: each refused with exit 1 (or 2) and no output left behind.
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --cmdline "other" --unsigned -o other.img
expect_error 1 "does not verify" "$SVMKIT" attach other.img --signature ed25519.sig --pubkey ed25519.pub -o out.img
expect_no_file out.img
# wrong digest algorithm: a P-384 key signing a sha256 digest
openssl pkeyutl -sign -inkey ecdsa-p384.key -in sha256.bin -out p384-over-sha256.sig
expect_error 1 "does not verify" "$SVMKIT" attach unsigned.img --signature p384-over-sha256.sig --pubkey ecdsa-p384.pub -o out.img
expect_no_file out.img
expect_error 2 "does not fit" "$SVMKIT" attach unsigned.img --signature ecdsa-p384.sig --pubkey ecdsa-p384.pub --algo ecdsa-p256-sha256 -o out.img
expect_no_file out.img
# truncated signature
head -c 100 rsa-3072.sig > short.sig
expect_error 1 "short.sig.*does not verify" "$SVMKIT" attach unsigned.img --signature short.sig --pubkey rsa-3072.pub -o out.img
expect_no_file out.img
# wrong key
"$SVMKIT" keygen --algo ed25519 -o other.key --public-output other.pub >/dev/null
expect_error 1 "does not verify" "$SVMKIT" attach unsigned.img --signature ed25519.sig --pubkey other.pub -o out.img
expect_no_file out.img
expect_error 2 "does not fit" "$SVMKIT" attach unsigned.img --signature ed25519.sig --pubkey ecdsa-p256.pub --algo ed25519 -o out.img
# an image modified after tbs: rebuild with a different security version
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --initrd initrd.bin --cmdline "quiet" --security-version 7 --unsigned -o changed.img
expect_error 1 "does not verify" "$SVMKIT" attach changed.img --signature ed25519.sig --pubkey ed25519.pub -o out.img
expect_no_file out.img
# the same key twice
expect_error 2 "already carries" "$SVMKIT" attach signed-1.img --signature ed25519.sig --pubkey ed25519.pub -o out.img
expect_no_file out.img
# policy: more required signatures than trusted keys; revoked key as the only signer
expect_error 2 "require-signatures" "$SVMKIT" verify signed-1.img --trusted-key ed25519.pub --require-signatures 2
expect_exit 1 "$SVMKIT" verify signed-1.img --trusted-key ed25519.pub --revoked-key ed25519.pub
expect_contains "$OUT" "revoked"
expect_exit 1 "$SVMKIT" verify signed-1.img --trusted-key ed25519.pub --revoked-key \
  "$("$SVMKIT" inspect signed-1.img --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["signatures"][0]["key_id"])')"
expect_error 2 "tbs|-o" "$SVMKIT" tbs unsigned.img
expect_error 2 "unknown digest" "$SVMKIT" tbs unsigned.img --hash md5 -o x.bin
finish
