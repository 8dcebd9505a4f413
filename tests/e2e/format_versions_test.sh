#!/usr/bin/env bash
# Format versions (docs/format.md): svmkit writes version 2 (one PT_LOAD over
# the whole image) for ppc64le and version 1 (one PT_LOAD per section) for
# the simulated platform, and reads both. A ppc64le image built before
# version 2 keeps verifying; the container must have the form of the signed
# version, and an unknown version is refused naming it.
source "$(dirname "$0")/lib.sh"
DATA=$SVMKIT_SOURCE_DIR/tests/data/format

# ---- an image of version 1 (ppc64le, built before version 2) -------------------
expect_exit 0 "$SVMKIT" verify "$DATA/ppc64le-v1.img" --trusted-key "$DATA/ppc64le-v1.pub"
expect_exit 0 "$SVMKIT" inspect "$DATA/ppc64le-v1.img"
expect_contains "$OUT" "manifest    format 1,"
expect_exit 0 readelf -lW "$DATA/ppc64le-v1.img"
CHECKS=$((CHECKS + 1))
[ "$(grep -c ' LOAD ' <<<"$OUT")" -eq 5 ] || fail "the version 1 image has not 5 PT_LOADs"

# ---- what svmkit writes now: version 2 for ppc64le, version 1 for x86_64 ---------
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
head -c 65536 /dev/zero | tr '\0' '\252' >kernel.bin
expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel kernel.bin --kernel-load-addr 0 \
  --cmdline "console=hvc0" --key k.key -o v2.img
expect_exit 0 "$SVMKIT" inspect v2.img
expect_contains "$OUT" "manifest    format 2,"
expect_exit 0 readelf -lW v2.img
expect_contains "$OUT" "LOAD +0x010000 0x0000000004000000 0x0000000004000000 0x[0-9a-f]+ 0x[0-9a-f]+ R E 0x10000"
CHECKS=$((CHECKS + 1))
[ "$(grep -c ' LOAD ' <<<"$OUT")" -eq 1 ] || fail "the version 2 image has more than one PT_LOAD"
expect_exit 0 "$SVMKIT" verify v2.img --trusted-key k.pub
expect_exit 0 "$SVMKIT" build --arch host --kernel kernel.bin --kernel-load-addr 0x8000000 \
  --cmdline "console=hvc0" --key k.key -o host.img
expect_exit 0 "$SVMKIT" inspect host.img
expect_contains "$OUT" "manifest    format 1,"

# ---- the container must have the signed version's form ---------------------------
# Version 2's single segment shortened to the first 64 KiB, as if it were
# version 1's first segment: the sections no longer lie in segments.
python3 - v2.img split.img <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
phoff = struct.unpack_from("<Q", d, 0x20)[0]
struct.pack_into("<QQ", d, phoff + 0x20, 0x10000, 0x10000)  # p_filesz, p_memsz
open(sys.argv[2], "wb").write(d)
PY
expect_exit 3 "$SVMKIT" verify split.img --trusted-key k.pub
expect_contains "$ERR" "section '[^']+' is not inside a loadable segment"
# A changed alignment: the one byte form names the field.
python3 - v2.img align.img <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
phoff = struct.unpack_from("<Q", d, 0x20)[0]
struct.pack_into("<Q", d, phoff + 0x30, 0x1000)  # p_align
open(sys.argv[2], "wb").write(d)
PY
expect_exit 3 "$SVMKIT" verify align.img --trusted-key k.pub
expect_contains "$ERR" "program header 0 field p_align is not what svmkit writes"
finish
