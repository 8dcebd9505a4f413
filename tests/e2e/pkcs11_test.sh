#!/usr/bin/env bash
# svmkit build with keys that live in a PKCS#11 token (SoftHSM2): EC P-384 and
# RSA-3072 generated inside the token, PIN from the environment or a
# pin-source file, never argv; every failure named with its exit code.
source "$(dirname "$0")/lib.sh"
MODULE=/usr/lib/softhsm/libsofthsm2.so
[ -f "$MODULE" ] || { echo "softhsm2 is not installed (scripts/install-deps.sh installs it)" >&2; exit 1; }

mkdir tokens
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORK/tokens" > softhsm2.conf
export SOFTHSM2_CONF=$WORK/softhsm2.conf
softhsm2-util --init-token --free --label ci --so-pin 1111 --pin 2468 >/dev/null
pkcs11-tool --module $MODULE --token-label ci --login --pin 2468 --keypairgen --key-type EC:secp384r1 \
  --label ec384 --id 01 >/dev/null 2>&1
pkcs11-tool --module $MODULE --token-label ci --login --pin 2468 --keypairgen --key-type rsa:3072 \
  --label rsa3072 --id 02 >/dev/null 2>&1
for k in ec384 rsa3072; do
  PKCS11_MODULE_PATH=$MODULE openssl pkey -engine pkcs11 -pubin -inform engine \
    -in "pkcs11:token=ci;object=$k;type=public" -pubout -out $k.pub 2>/dev/null
done
make_x86_kernel kernel.elf

# Build + sign inside the token; PIN from SVMKIT_PKCS11_PIN.
SVMKIT_PKCS11_PIN=2468 expect_exit 0 "$SVMKIT" build --kernel kernel.elf --cmdline "quiet" \
  --key "pkcs11:token=ci;object=ec384" --key "pkcs11:token=ci;object=rsa3072" \
  --pkcs11-module $MODULE -o signed.img
expect_exit 0 "$SVMKIT" verify signed.img --trusted-key ec384.pub --trusted-key rsa3072.pub --require-signatures 2
expect_contains "$OUT" "ecdsa-p384-sha384 trusted"
expect_contains "$OUT" "rsa-pss-sha256 trusted"
# PIN from a named variable, module from the environment; pin-source file.
RELEASE_PIN=2468 SVMKIT_PKCS11_MODULE=$MODULE expect_exit 0 "$SVMKIT" build --kernel kernel.elf \
  --key "pkcs11:token=ci;object=ec384" --pkcs11-pin-env RELEASE_PIN -o env.img
printf '2468' > pin.txt
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --key "pkcs11:token=ci;object=rsa3072;pin-source=file:$WORK/pin.txt" \
  --pkcs11-module $MODULE -o file.img
expect_exit 0 "$SVMKIT" verify file.img --trusted-key rsa3072.pub
# The private keys never existed as files.
CHECKS=$((CHECKS + 1))
if grep -rl "PRIVATE KEY" "$WORK" --exclude-dir=tokens >/dev/null 2>&1; then fail "a private key file appeared"; fi

# Failures: clear message, documented exit code, no output left behind.
export SVMKIT_PKCS11_PIN=2468
expect_error 3 "no token 'nope'" "$SVMKIT" build --kernel kernel.elf --key "pkcs11:token=nope;object=ec384" \
  --pkcs11-module $MODULE -o x.img
expect_no_file x.img
expect_error 3 "no private key 'missing'" "$SVMKIT" build --kernel kernel.elf --key "pkcs11:token=ci;object=missing" \
  --pkcs11-module $MODULE -o x.img
expect_no_file x.img
SVMKIT_PKCS11_PIN=9999 expect_error 3 "PIN rejected" "$SVMKIT" build --kernel kernel.elf \
  --key "pkcs11:token=ci;object=ec384" --pkcs11-module $MODULE -o x.img
expect_no_file x.img
expect_error 4 "/nonexistent/module.so" "$SVMKIT" build --kernel kernel.elf --key "pkcs11:token=ci;object=ec384" \
  --pkcs11-module /nonexistent/module.so -o x.img
expect_no_file x.img
env -u SVMKIT_PKCS11_MODULE -u PKCS11_MODULE_PATH "$SVMKIT" build --kernel kernel.elf \
  --key "pkcs11:token=ci;object=ec384" -o x.img >/dev/null 2>err.txt && fail "build without a module succeeded"
CHECKS=$((CHECKS + 1)); grep -q -- "--pkcs11-module" err.txt || fail "no-module message: $(cat err.txt)"
expect_no_file x.img
expect_error 2 "pin-value" "$SVMKIT" build --kernel kernel.elf --key "pkcs11:token=ci;object=ec384;pin-value=2468" \
  --pkcs11-module $MODULE -o x.img
expect_no_file x.img
CHECKS=$((CHECKS + 1)); grep -q 2468 <<<"$ERR" && fail "the PIN appears in an error message"
finish
