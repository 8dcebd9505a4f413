#!/usr/bin/env bash
# The firmware-style entry reaches UV_ESM: `svmkit boot IMAGE` (no --kexec)
# of a ppc64le image with svm=on starts QEMU pseries with svmkit's ultravisor
# attached; SLOF enters the stub with r5 = the Open Firmware client
# interface. The stub instantiates RTAS, flattens SLOF's device tree (reserve
# map, boot CPU, /rtas), quiesces the firmware and continues as the
# kexec-style entry does: UV_ESM, the ultravisor verifies the image and
# resumes the stub secure, and Debian's kernel (entered kexec-style with that
# tree, no prom_init) reaches /init with exactly the signed command line, on
# two CPUs (SLOF keeps the second stopped; the kernel starts it through
# RTAS). A kernel changed after signing is refused, with no kernel run.
source "$(dirname "$0")/lib.sh"
SAMPLES=$SVMKIT_SOURCE_DIR/samples/ppc64le
LIMIT=${SVMKIT_PPC64LE_BOOT_LIMIT:-150} # seconds for one boot
CMDLINE="console=hvc0 svm=on svmkit.test=attached-firmware"
MARKER="svmkit ppc64le initramfs: hello from /init"

"$SAMPLES/prepare-boot.sh" in >/dev/null
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd in/initramfs.cpio.gz \
  --cmdline "$CMDLINE" --compress none --key k.key -o secure.img

boot() { # boot NAME IMAGE [OPTIONS...]: NAME.out (report), NAME.err; sets STATUS
  local name=$1 image=$2 start=$SECONDS
  shift 2
  set +e
  "$SVMKIT" boot "$image" --timeout "$LIMIT" "$@" >"$name.out" 2>"$name.err"
  STATUS=$?
  set -e
  echo "ppc64le attached firmware-style ($name): exit $STATUS in $((SECONDS - start)) s"
  OUT=$(cat "$name.out")
}

# ---- accepted: SLOF -> the stub's flattening -> UV_ESM -> the kernel -------
boot accepted secure.img --trusted-key k.pub --cpus 2 --json
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 0 ] || fail "accepted boot: exit $STATUS: $(tail -5 accepted.err)"
python3 - accepted.out "$CMDLINE" <<'PY' || fail "accepted boot: the JSON report"
import json, re, sys
r = json.load(open(sys.argv[1]))
esm = r["esm"]
assert esm["ok"] and esm["failure"] == "none", esm
assert all(d["ok"] for d in esm["digests"]), esm["digests"]
assert r["result"]["outcome"] == "exited" and r["result"]["exit_status"] == 0, r["result"]
con = r["console"]
for line in ("svmkit stub: firmware-style entry at ",
             "svmkit stub: svm=on: leaving Open Firmware for UV_ESM, as Linux's prom_init does",
             "svmkit stub: RTAS instantiated at ",
             "svmkit stub: quiescing Open Firmware; continuing kexec-style (r3 = fdt ",
             "svmkit stub: resumed secure by the ultravisor",
             "smp: Brought up 1 node, 2 CPUs",
             "svmkit ppc64le initramfs: /proc/cmdline=[%s]" % sys.argv[2]):
    assert line in con, (line, "not on the console")
m = re.search(r"svmkit stub: device tree flattened at (0x[0-9a-f]+): (\d+) nodes, (\d+) properties, "
              r"(\d+) bytes; boot CPU 0; reserve map (\d+) entries", con)
assert m and int(m.group(2)) > 10 and int(m.group(5)) >= 1, "the flattening's line"
# Secure mode was entered by this stub, not left to the kernel's prom_init.
assert "Booting Linux via __start()" not in con
assert "a kernel built with CONFIG_PPC_SVM" not in con
PY
CHECKS=$((CHECKS + 1))
grep -q "$MARKER" accepted.err || fail "accepted boot: no /init marker on the console (stderr)"

# ---- refused: a kernel changed after signing --------------------------------
tamper_kernel secure.img tampered.img
boot tampered tampered.img --trusted-key k.pub
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 5 ] || fail "tampered kernel: exit $STATUS, not 5 (refused)"
expect_contains "$OUT" "refused: kernel-digest-mismatch \(U_PARAMETER -4\)"
expect_contains "$OUT" "svmkit stub: quiescing Open Firmware; continuing kexec-style"
expect_contains "$OUT" "svmkit stub: error: UV_ESM failed: -4"
CHECKS=$((CHECKS + 1))
if sed -n '/svmkit stub: entering secure mode/,$p' tampered.out | grep -qE "Linux version|entering the kernel"; then
  fail "tampered kernel: a kernel ran after the refused UV_ESM"
fi

# ---- insecure: without svm=on the stub hands the kernel to prom_init, as
# documented; the ultravisor sees no UV_ESM and the report says so --------
expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd in/initramfs.cpio.gz \
  --cmdline "console=hvc0 svmkit.test=insecure" --compress none --key k.key -o insecure.img
boot insecure insecure.img --trusted-key k.pub --json
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 0 ] || fail "insecure boot: exit $STATUS: $(tail -5 insecure.err)"
python3 - insecure.out <<'PY' || fail "insecure boot: the JSON report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["esm"] is None, r["esm"]
assert r["pool"]["calls"] == [], r["pool"]
assert r["result"]["outcome"] == "exited" and r["result"]["exit_status"] == 0, r["result"]
assert "svmkit ppc64le initramfs: /proc/cmdline=[console=hvc0 svmkit.test=insecure]" in r["console"]
PY

finish
