#!/usr/bin/env bash
# `svmkit load --plan` and `svmkit mkdisk` read headers and stream the rest
# (docs/loader.md): under 64 MiB of memory (maximum resident set, measured by
# GNU time) at any image size. A 2 GiB sparse file with a bad ELF magic is
# refused at once; a valid image with a 96 MiB initrd is planned (its segment
# digests streamed, and checked against sha256sum) and put on a disk (copied
# in chunks); the same image padded to 2 GiB is planned too.
source "$(dirname "$0")/lib.sh"
command -v /usr/bin/time >/dev/null || { echo "missing GNU time (scripts/install-deps.sh)" >&2; exit 1; }
LIMIT_KIB=$((64 * 1024))
# Under AddressSanitizer the shadow memory alone is larger: the limit is the
# release build's (the check still runs, and must pass, in the normal build).
if ldd "$SVMKIT" 2>/dev/null | grep -q libasan; then LIMIT_KIB=$((512 * 1024)); fi

# measured MAX_SECONDS CMD...: runs CMD (exit code in $RC, stderr in $ERR),
# asserts it stayed under LIMIT_KIB of RSS and MAX_SECONDS of wall time.
measured() {
  local max_seconds=$1
  shift
  CHECKS=$((CHECKS + 1))
  local start end rss
  start=$(date +%s%N)
  set +e
  /usr/bin/time -f %M -o rss.txt "$@" >"$WORK/.out" 2>"$WORK/.err"
  RC=$?
  set -e
  end=$(date +%s%N)
  OUT=$(cat "$WORK/.out")
  ERR=$(cat "$WORK/.err")
  rss=$(tail -1 rss.txt)
  echo "$(basename "$1") $2: ${rss} KiB max RSS, $(((end - start) / 1000000)) ms" >&2
  [ "$rss" -lt "$LIMIT_KIB" ] || fail "$*: ${rss} KiB resident, limit $LIMIT_KIB KiB"
  [ $(((end - start) / 1000000000)) -lt "$max_seconds" ] || fail "$*: took over ${max_seconds} s"
}

# ---- a 2 GiB file that is not an ELF: refused quickly, in little memory ----
truncate -s 2G big.bin
printf 'NOPE' | dd of=big.bin conv=notrunc status=none
measured 5 "$SVMKIT" load --plan big.bin
CHECKS=$((CHECKS + 1))
[ "$RC" = 3 ] || fail "load --plan of a bad magic: exit $RC: $ERR"
expect_contains "$ERR" "big.bin: rejected by the loader: not an ELF file \(bad magic\) \(bad_magic\)"
measured 5 "$SVMKIT" mkdisk -o disk.img --entry a=big.bin
CHECKS=$((CHECKS + 1))
[ "$RC" = 3 ] || fail "mkdisk of a bad magic: exit $RC: $ERR"
expect_contains "$ERR" "--entry a: not a secure image: .*bad magic"
expect_no_file disk.img

# ---- a valid image with a large initrd (ppc64le: QEMU's firmware boots it
# itself, so segments up to 1 GiB are planned) ----
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
head -c 300000 /dev/urandom > raw.bin
head -c $((96 << 20)) /dev/urandom > initrd.bin
"$SVMKIT" build --arch ppc64le --kernel raw.bin --kernel-load-addr 0 --initrd initrd.bin \
  --cmdline "console=hvc0" --key k.key -o large.img >/dev/null
measured 30 "$SVMKIT" load --plan --json large.img
CHECKS=$((CHECKS + 1))
[ "$RC" = 0 ] || fail "load --plan of the large image: exit $RC: $ERR"
CHECKS=$((CHECKS + 1))
python3 - "$OUT" large.img <<'PY' || fail "the streamed digests are not the segments' SHA-256"
import hashlib, json, sys
d = json.loads(sys.argv[1])
assert d["accepted"] is True, d
biggest = max(s["mem_size"] for s in d["segments"])
assert biggest >= 96 << 20, biggest
with open(sys.argv[2], "rb") as f:
    for s in d["segments"]:
        f.seek(s["file_offset"])
        h = hashlib.sha256(f.read(s["file_size"]))
        h.update(bytes(s["mem_size"] - s["file_size"]))
        assert s["sha256"] == h.hexdigest(), s
PY
measured 30 "$SVMKIT" mkdisk -o disk.img --entry a=large.img
CHECKS=$((CHECKS + 1))
[ "$RC" = 0 ] || fail "mkdisk of the large image: exit $RC: $ERR"
# The image is on the disk whole: the boot partition's newc archive (at 1 MiB)
# holds it byte for byte.
CHECKS=$((CHECKS + 1))
python3 - disk.img large.img <<'PY' || fail "the image on the disk differs from large.img"
import sys
disk, want = open(sys.argv[1], "rb"), open(sys.argv[2], "rb").read()
pos = 1 << 20
while True:
    disk.seek(pos)
    h = disk.read(110)
    assert h[:6] == b"070701", h
    size, namesize = int(h[54:62], 16), int(h[94:102], 16)
    name = disk.read(namesize)[:-1].decode()
    data = (pos + 110 + namesize + 3) // 4 * 4
    if name == "images/a.img":
        disk.seek(data)
        assert size == len(want) and disk.read(size) == want, name
        break
    assert name != "TRAILER!!!", "images/a.img not in the archive"
    pos = (data + size + 3) // 4 * 4
PY

# ---- the same image padded to 2 GiB: planned the same, in as little memory ----
cp large.img padded.img
truncate -s 2G padded.img
measured 30 "$SVMKIT" load --plan --json padded.img
CHECKS=$((CHECKS + 1))
[ "$RC" = 0 ] || fail "load --plan of the padded image: exit $RC: $ERR"
expect_contains "$OUT" '"file_size": 2147483648'

finish
