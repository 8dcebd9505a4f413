#!/usr/bin/env bash
# The whole secure path on emulated POWER: `svmkit boot --kexec` of a
# ppc64le image starts QEMU pseries (TCG, POWER9) with svmkit's ultravisor
# attached through the gdbstub; a first-stage Debian guest kexecs the image
# with Debian's kexec-tools, the stub calls UV_ESM, the same ultravisor code
# as the simulated machine's verifies the image in guest memory, resumes the
# stub secure (it sees MSR[S]), serves its UV_SHARE_PAGE, and Debian's kernel
# reaches /init with exactly the signed command line. Refusals stop the VM
# before any kernel instruction, each with its own cause and exit 5.
source "$(dirname "$0")/lib.sh"
SAMPLES=$SVMKIT_SOURCE_DIR/samples/ppc64le
LIMIT=${SVMKIT_PPC64LE_BOOT_LIMIT:-150} # seconds for one boot
CMDLINE="console=hvc0 svm=on svmkit.swiotlb=8M swiotlb=65536,4 svmkit.test=attached"
MARKER="svmkit ppc64le initramfs: hello from /init"

"$SAMPLES/prepare-boot.sh" in >/dev/null
"$SAMPLES/prepare-first-stage.sh" first >/dev/null
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
"$SVMKIT" keygen --algo ed25519 -o other.key --public-output other.pub >/dev/null
expect_exit 0 "$SVMKIT" build --arch ppc64le --kernel in/vmlinux --initrd in/initramfs.cpio.gz \
  --cmdline "$CMDLINE" --compress none --key k.key -o secure.img

boot() { # boot NAME IMAGE [OPTIONS...]: NAME.out (report), NAME.err; sets STATUS
  local name=$1 image=$2 start=$SECONDS
  shift 2
  set +e
  "$SVMKIT" boot --kexec "$image" --first-stage-kernel first/vmlinux \
    --first-stage-initrd first/initramfs.cpio.gz --timeout "$LIMIT" "$@" \
    >"$name.out" 2>"$name.err"
  STATUS=$?
  set -e
  echo "ppc64le attached ($name): exit $STATUS in $((SECONDS - start)) s"
  OUT=$(cat "$name.out")
}

# ---- accepted: UV_ESM succeeds, the kernel runs secure, on 2 CPUs ----------
# (a kexec parks the secondary CPU at 0x60 in the image's copied first bytes;
# the stub writes the kernel's own there last, after checking it).
boot accepted secure.img --trusted-key k.pub --json --cpus 2
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 0 ] || fail "accepted boot: exit $STATUS: $(tail -3 accepted.err)"
python3 - accepted.out "$CMDLINE" <<'PY' || fail "accepted boot: the JSON report"
import json, sys
r = json.load(open(sys.argv[1]))
esm = r["esm"]
assert esm["ok"] and esm["failure"] == "none", esm
assert all(d["ok"] for d in esm["digests"]) and len(esm["digests"]) == 5, esm["digests"]
assert r["result"]["outcome"] == "exited" and r["result"]["exit_status"] == 0, r["result"]
calls = r["pool"]["calls"]
shared = [c for c in calls if c["call"] == "UV_SHARE_PAGE" and c["return_code"] == "U_SUCCESS"]
assert len(shared) == 1 and len(calls) == 1, calls
con = r["console"]
base = int(shared[0]["base"], 16)
pool = "svmkit stub: bounce pool {:#x}..{:#x} shared ({} pages)".format(
    base, base + shared[0]["size"], shared[0]["pages"])
assert pool in con, (pool, "not in the console")
assert "svmkit stub: resumed secure by the ultravisor" in con
assert "svmkit ppc64le initramfs: /proc/cmdline=[%s]" % sys.argv[2] in con
PY
CHECKS=$((CHECKS + 1))
grep -q "$MARKER" accepted.err || fail "accepted boot: no /init marker on the console (stderr)"
# Under TCG a vCPU thread starved by other work on the host can miss the
# kernel's wait for its secondaries ("Processor 1 is stuck"): one more boot
# tells that from a hold that does not work (which fails every time).
secondaries_up() { sed -n '/svmkit stub: entering the kernel/,$p' "$1" | grep -q "smp: Brought up 1 node, 2 CPUs"; }
CHECKS=$((CHECKS + 1))
if ! secondaries_up accepted.err; then
  echo "accepted boot: second CPU not up ($(grep -a -m2 -E 'smp: Brought up|is stuck' accepted.err | tr '\n' ' ')); booting again"
  boot accepted2 secure.img --trusted-key k.pub --json --cpus 2
  secondaries_up accepted2.err ||
    fail "accepted boot: the secure kernel did not bring up its second CPU, twice: $(grep -a -E 'smp: Brought up|is stuck' accepted2.err | tr '\n' ' ')"
fi

# ---- refused: a kernel changed after signing --------------------------------
tamper_kernel secure.img tampered.img
boot tampered tampered.img --trusted-key k.pub
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 5 ] || fail "tampered kernel: exit $STATUS, not 5 (refused)"
expect_contains "$OUT" "refused: kernel-digest-mismatch \(U_PARAMETER -4\)"
expect_contains "$OUT" "svmkit stub: error: UV_ESM failed: -4"
expect_contains "$(cat tampered.err)" "tampered.img: UV_ESM refused the image: kernel-digest-mismatch"
CHECKS=$((CHECKS + 1))
if sed -n '/svmkit stub: entering secure mode/,$p' tampered.out | grep -qE "Linux version|entering the kernel"; then
  fail "tampered kernel: a kernel ran after the refused UV_ESM"
fi

# ---- refused: signed by a key the platform does not trust -------------------
boot untrusted secure.img --trusted-key other.pub
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 5 ] || fail "untrusted key: exit $STATUS, not 5 (refused)"
expect_contains "$OUT" "refused: no-trusted-signature"

# ---- interrupted: SIGINT to svmkit leaves no QEMU and nothing on disk ------
mkdir -p tmp
# Started with SIGINT at its default: a script's background job ignores it.
TMPDIR=$PWD/tmp env --default-signal=INT "$SVMKIT" boot --kexec secure.img --first-stage-kernel first/vmlinux \
  --first-stage-initrd first/initramfs.cpio.gz --trusted-key k.pub --timeout "$LIMIT" \
  >interrupted.out 2>&1 &
pid=$!
for _ in $(seq 1 "$LIMIT"); do
  grep -q "$MARKER" interrupted.out && break
  sleep 1
done
CHECKS=$((CHECKS + 1))
grep -q "$MARKER" interrupted.out || fail "interrupted: the first stage never reached /init"
CHECKS=$((CHECKS + 1))
[ -z "$(ls -A tmp)" ] || fail "interrupted: the private directory is still there while QEMU runs"
qemu_pid=$(pgrep -P "$pid" qemu-system-ppc || true)
kill -INT "$pid"
set +e
wait "$pid"
STATUS=$?
set -e
CHECKS=$((CHECKS + 1))
[ "$STATUS" -eq 130 ] || fail "interrupted: svmkit ended with $STATUS, not 130 (SIGINT)"
gone() { # gone PID: exited (a zombie not yet reaped by init counts)
  ! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1" | cut -c1)" = Z ]
}
for _ in $(seq 1 50); do
  gone "$qemu_pid" && break
  sleep 0.1
done
CHECKS=$((CHECKS + 1))
[ -n "$qemu_pid" ] && gone "$qemu_pid" || fail "interrupted: QEMU ('$qemu_pid') outlived svmkit"
CHECKS=$((CHECKS + 1))
[ -z "$(ls -A tmp)" ] || fail "interrupted: left behind in TMPDIR: $(ls -A tmp)"

finish
