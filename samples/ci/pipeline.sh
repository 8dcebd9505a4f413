#!/usr/bin/env bash
# A CI signing pipeline for secure images, in three roles that share nothing
# but files (in a real pipeline: artifacts passed between jobs):
#
#   builder    builds the image unsigned and publishes its to-be-signed digest;
#              it never sees a private key.
#   signer     holds the release key in a PKCS#11 token (SoftHSM2 here; an HSM
#              or a cloud KMS in production) and signs ONLY the digest.
#   publisher  attaches the signature (svmkit checks it first), verifies the
#              image against the release policy and writes a release record.
#
# Usage: samples/ci/pipeline.sh KERNEL [INITRD] [OUTDIR]
# Needs: svmkit on PATH (or $SVMKIT), softhsm2, opensc, libengine-pkcs11-openssl.
set -euo pipefail
svmkit=${SVMKIT:-svmkit}
kernel=${1:?usage: pipeline.sh KERNEL [INITRD] [OUTDIR]}
initrd=${2:-}
out=${3:-$PWD/pipeline-out}
module=${SVMKIT_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
mkdir -p "$out"/{builder,signer,publisher}
# Each role works in its own directory: make the inputs absolute.
kernel=$(realpath "$kernel")
[ -n "$initrd" ] && initrd=$(realpath "$initrd")
out=$(realpath "$out")
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

# ---------------------------------------------------------------- signer setup
# A throw-away token with an EC P-384 release key generated inside it. In
# production this exists already and the PIN comes from the CI secret store.
token_dir=$out/signer/tokens
mkdir -p "$token_dir"
cat > "$out/signer/softhsm2.conf" <<CONF
directories.tokendir = $token_dir
objectstore.backend = file
log.level = ERROR
CONF
export SOFTHSM2_CONF=$out/signer/softhsm2.conf
pin_file=$out/signer/pin            # a pin-source file, never argv
printf '%s' "${RELEASE_PIN:-246810}" > "$pin_file"  # libp11 reads it verbatim: no newline
chmod 600 "$pin_file"
softhsm2-util --init-token --free --label release --so-pin 13579 --pin "$(cat "$pin_file")" >/dev/null
pkcs11-tool --module "$module" --token-label release --login --pin "$(cat "$pin_file")" \
  --keypairgen --key-type EC:secp384r1 --label release-key --id 01 >/dev/null
# The public half is what the publisher and the platform trust.
PKCS11_MODULE_PATH=$module openssl pkey -engine pkcs11 -pubin -inform engine \
  -in "pkcs11:token=release;object=release-key;type=public" -pubout -out "$out/signer/release.pub" 2>/dev/null

# ---------------------------------------------------------------- builder
(
  cd "$out/builder"
  args=(--arch ppc64le --kernel "$kernel" --cmdline "console=hvc0 svm=on" --compress gzip
        --security-version 2 --unsigned -o unsigned.img)
  [ -n "$initrd" ] && args+=(--initrd "$initrd")
  "$svmkit" build "${args[@]}"
  "$svmkit" tbs unsigned.img --hash sha384 -o tbs.sha384
)

# ---------------------------------------------------------------- signer
# Signs the 48-byte digest inside the token; the key never leaves it.
(
  cd "$out/signer"
  PKCS11_MODULE_PATH=$module openssl pkeyutl -engine pkcs11 -keyform engine \
    -inkey "pkcs11:token=release;object=release-key;type=private;pin-source=file:$pin_file" \
    -sign -in "$out/builder/tbs.sha384" -out release.sig 2>/dev/null
)

# ---------------------------------------------------------------- publisher
(
  cd "$out/publisher"
  "$svmkit" attach "$out/builder/unsigned.img" --signature "$out/signer/release.sig" \
    --pubkey "$out/signer/release.pub" -o secure.img
  "$svmkit" verify secure.img --trusted-key "$out/signer/release.pub" \
    --min-security-version 2 --json > verify.json
  "$svmkit" inspect secure.img --json > inspect.json
  python3 - verify.json inspect.json > release.json <<'PY'
import json, sys
verify = json.load(open(sys.argv[1]))
inspect = json.load(open(sys.argv[2]))
assert verify["verified"], verify["failures"]
print(json.dumps({
    "image": "secure.img",
    "verified": verify["verified"],
    "security_version": inspect["manifest"]["security_version"],
    "signers": [s["key_id"] for s in verify["signatures"] if s["valid"]],
    "components": {c["name"]: c["digest"] for c in inspect["components"]},
}, indent=2))
PY
  echo "release record: $out/publisher/release.json"
)
