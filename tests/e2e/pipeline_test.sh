#!/usr/bin/env bash
# samples/ci/pipeline.sh end to end: builder, token signer, publisher.
source "$(dirname "$0")/lib.sh"
: "${SVMKIT_DEBIAN_KERNEL:?run samples/fetch-debian-kernel.sh and export SVMKIT_DEBIAN_KERNEL}"
"$SVMKIT_SOURCE_DIR/samples/make-sample-initrd.sh" initrd.cpio.gz
expect_exit 0 env SVMKIT="$SVMKIT" bash "$SVMKIT_SOURCE_DIR/samples/ci/pipeline.sh" \
  "$SVMKIT_DEBIAN_KERNEL" initrd.cpio.gz "$WORK/out"
expect_contains "$OUT" "attached ecdsa-p384-sha384 signature"
python3 - "$WORK/out/publisher/release.json" <<'PY' || fail "release record"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["verified"] is True and r["security_version"] == 2
assert len(r["signers"]) == 1 and len(r["signers"][0]) == 64
assert set(r["components"]) == {"stub-text", "stub-rodata", "kernel", "initrd", "cmdline"}
PY
# The release key never existed as a file: no private key anywhere in the output.
CHECKS=$((CHECKS + 1))
if grep -rl "PRIVATE KEY" "$WORK/out" >/dev/null 2>&1; then fail "a private key file appeared"; fi
# The builder never had a signature; the publisher's image verifies independently.
expect_exit 1 "$SVMKIT" verify "$WORK/out/builder/unsigned.img" --trusted-key "$WORK/out/signer/release.pub"
expect_exit 0 "$SVMKIT" verify "$WORK/out/publisher/secure.img" --trusted-key "$WORK/out/signer/release.pub" \
  --min-security-version 2
finish
