#!/usr/bin/env bash
# svmkit boot: secure images of the sample guest kernel boot on the simulated
# machine through the real stub and the ultravisor's checks; every refusal
# the CLI can cause is reported with its own cause and exit code 5, and the
# kernel never runs then.
source "$(dirname "$0")/lib.sh"

# The sample kernel is built beside svmkit (build/samples/kernel).
SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }
BANNER="svmkit sample kernel: hello from the guest kernel"
CMDLINE="console=hvc0 svm=on svmkit.swiotlb=8M"

json_check() { # json_check PYTHON-ASSERTIONS (on d = the JSON in $OUT)
  CHECKS=$((CHECKS + 1))
  python3 -c "import json, sys; d = json.loads(sys.stdin.read()); $1" <<<"$OUT" ||
    fail "JSON check failed: $1"
}

# flip SECTION INDEX IN OUT: invert one byte of a section, after signing.
cat > flip.py <<'PY'
import sys
from elf_sections import section
name, index, src, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
data = bytearray(open(src, "rb").read())
s = section(data, name)
if index < 0:
    index += s.size  # from the end
assert 0 <= index < s.size, "index outside the section"
data[s.offset + index] ^= 0xFF
open(dst, "wb").write(data)
PY

# ---- inputs ------------------------------------------------------------------
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
"$SVMKIT" keygen --algo ecdsa-p256 -o other.key --public-output other.pub >/dev/null
"$SVMKIT_SOURCE_DIR/samples/make-sample-initrd.sh" initrd.cpio.gz
for comp in gzip none; do
  expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --initrd initrd.cpio.gz \
    --cmdline "$CMDLINE" --compress $comp --security-version 2 --key k.key -o img-$comp
done

# ---- the happy path, gzip and stored kernels ------------------------------------
for comp in gzip none; do
  expect_exit 0 "$SVMKIT" boot img-$comp --trusted-key k.pub
  expect_contains "$OUT" "svmkit stub: entering secure mode: UV_ESM kbase 0x4000000"
  expect_contains "$OUT" "svmkit stub: resumed secure by the ultravisor"
  expect_contains "$OUT" "$BANNER"
  expect_contains "$OUT" "svmkit sample kernel: running secure \(MSR\[S\] set\)"
  expect_contains "$OUT" "svmkit sample kernel: bootargs \"$CMDLINE\""
  expect_contains "$OUT" "secure=yes fdt=ok bootargs=ok initrd=[0-9]+ bytes pool=0x[0-9a-f]+\+0x800000 virtio=0 canary=stored at 0x[0-9a-f]+ status=0"
  # The report: stages, pages secured, each digest, the signer, the pool, the entry.
  expect_contains "$OUT" "svmkit boot report: img-$comp"
  expect_contains "$OUT" "16384 pages secured"
  expect_contains "$OUT" "signature by trusted key $(openssl pkey -pubin -in k.pub -outform DER | sha256sum | cut -d' ' -f1)"
  expect_contains "$OUT" "kernel +0x[0-9a-f]+ \+[0-9]+ +sha256 [0-9a-f]{64} ok"
  expect_contains "$OUT" "shared 0x[0-9a-f]+\.\.0x[0-9a-f]+ \(128 pages\): U_SUCCESS"
  expect_contains "$OUT" "entered at 0x200000"
  expect_contains "$OUT" "result +exited with status 0"

  expect_exit 0 "$SVMKIT" boot img-$comp --trusted-key k.pub --json
  # Without --quiet the console goes to stderr with --json.
  expect_contains "$ERR" "$BANNER"
  json_check "
assert d['schema'] == 'svmkit-boot-v1'
assert d['result']['outcome'] == 'exited' and d['result']['exit_status'] == 0
assert [s['name'] for s in d['stages']] == ['load', 'stub', 'esm', 'stub-secure', 'kernel'], d['stages']
assert d['esm']['ok'] and d['esm']['failure'] == 'none' and d['esm']['pages_secured'] == 16384
assert [x['component'] for x in d['esm']['digests']] == ['stub-text', 'stub-rodata', 'kernel', 'initrd', 'cmdline']
assert all(x['ok'] for x in d['esm']['digests'])
assert len(d['esm']['signers']) == 1
assert d['pool']['calls'][0]['call'] == 'UV_SHARE_PAGE' and d['pool']['calls'][0]['size'] == 8 << 20
assert d['pool']['pages_shared'] == 128
assert d['kernel']['load_address'] == '0x200000' and d['kernel']['inflated'] == ('$comp' == 'gzip')
assert d['kernel_entry']['entry'] == '0x200000'
assert '$BANNER' in d['console'] and 'status=0' in d['console']
"
  # The digests the ultravisor checked are the ones svmkit inspect shows.
  INSPECT=$("$SVMKIT" inspect img-$comp --json)
  json_check "
want = {c['name']: c['digest'] for c in json.loads('''$INSPECT''')['components']}
got = {x['component']: x['digest'] for x in d['esm']['digests']}
assert want == got, (want, got)
"
done

# --quiet: no console, the report only.
expect_exit 0 "$SVMKIT" boot img-gzip --trusted-key k.pub --quiet
CHECKS=$((CHECKS + 1))
grep -qF "$BANNER" <<<"$OUT" && fail "--quiet still printed the console"

# No command line: empty bootargs, the manifest's pool size (64 MiB by default).
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --compress gzip --key k.key -o img-bare
expect_exit 0 "$SVMKIT" boot img-bare --trusted-key k.pub --json --quiet
json_check "
assert d['result']['exit_status'] == 0
assert d['initrd'] is None
assert d['pool']['pages_shared'] == 1024
assert 'bootargs \"\"' in d['console']
"

# ---- a real-size image: a Debian kernel's bytes (or 41 MB) as the initrd ----
if [ -n "${SVMKIT_DEBIAN_KERNEL:-}" ] && [ -f "$SVMKIT_DEBIAN_KERNEL" ]; then
  cp "$SVMKIT_DEBIAN_KERNEL" big.bin
else
  head -c 41000000 /dev/urandom > big.bin
fi
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --initrd big.bin --cmdline "$CMDLINE" \
  --compress gzip --hash sha512 --key k.key -o img-big
expect_exit 0 "$SVMKIT" boot img-big --trusted-key k.pub --json --quiet
json_check "
assert d['result']['exit_status'] == 0
initrd = [x for x in d['esm']['digests'] if x['component'] == 'initrd'][0]
assert initrd['size'] == $(stat -c %s big.bin) and initrd['ok']
assert initrd['digest'] == '$(sha512sum big.bin | cut -d' ' -f1)'
assert int(d['initrd']['end'], 16) - int(d['initrd']['start'], 16) == $(stat -c %s big.bin)
"

# ---- refusals: distinct cause, exit 5, the kernel never runs ----------------------
# refused CAUSE CMD...: exit 5, the cause named on stderr and in the report, no
# kernel banner, the stub reporting the ultravisor's error.
refused() {
  local cause=$1
  shift
  expect_error 5 "^svmkit: error: .*the ultravisor refused the image: $cause: " "$@"
  expect_contains "$OUT" "svmkit stub: error: UV_ESM failed: -[0-9]+ \(U_[A-Z0-9_]+\)"
  expect_contains "$OUT" "REFUSED: the ultravisor refused the image: $cause"
  CHECKS=$((CHECKS + 1))
  if grep -qF "svmkit sample kernel" <<<"$OUT$ERR"; then fail "the kernel ran although $cause: $*"; fi
  CHECKS=$((CHECKS + 1))
  if grep -qE 'Sanitizer|runtime error' <<<"$ERR"; then fail "sanitizer report: $ERR"; fi
}

refused no-trusted-signature "$SVMKIT" boot img-gzip --trusted-key other.pub
refused revoked-key "$SVMKIT" boot img-gzip --trusted-key k.pub --revoked-key k.pub
refused revoked-key "$SVMKIT" boot img-gzip --trusted-key k.pub --revoked-key \
  "$(openssl pkey -pubin -in k.pub -outform DER | sha256sum | cut -d' ' -f1)"
refused rollback "$SVMKIT" boot img-gzip --trusted-key k.pub --min-security-version 3
expect_exit 0 "$SVMKIT" boot img-gzip --trusted-key k.pub --min-security-version 2 --quiet
refused too-few-signatures "$SVMKIT" boot img-gzip --trusted-key k.pub --trusted-key other.pub \
  --require-signatures 2
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --unsigned -o img-unsigned
refused no-signature "$SVMKIT" boot img-unsigned --trusted-key k.pub

# Two signers satisfy --require-signatures 2.
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --key k.key --key other.key -o img-two
expect_exit 0 "$SVMKIT" boot img-two --trusted-key k.pub --trusted-key other.pub \
  --require-signatures 2 --quiet --json
json_check "assert len(d['esm']['signers']) == 2 and d['result']['exit_status'] == 0"

# The JSON report of a refusal.
expect_exit 5 "$SVMKIT" boot img-gzip --trusted-key k.pub --min-security-version 3 --json --quiet
json_check "
assert d['result']['outcome'] == 'refused' and d['result']['exit_status'] is None
assert d['esm']['ok'] is False and d['esm']['failure'] == 'rollback'
assert d['esm']['return_code'] == 'U_PARAMETER'
assert d['kernel_entry'] is None and d['pool']['calls'] == []
assert 'svmkit sample kernel' not in d['console']
"

# Tampered after signing (one byte of a component): svmkit verify refuses it,
# and so does the platform.
# (The stub's code itself runs before ESM, so the stub is tampered in its
# read-only data, in bytes its first run does not use: the ultravisor must
# still refuse it.)
while read -r name section index; do
  python3 flip.py "$section" "$index" img-gzip tampered-$name || fail "flip.py $section $index"
  expect_exit 1 "$SVMKIT" verify tampered-$name --trusted-key k.pub
  refused "$name-digest-mismatch" "$SVMKIT" boot tampered-$name --trusted-key k.pub
done <<'PARTS'
kernel .kernel:vmlinux.strip 100
initrd .kernel:initrd 10
cmdline .kernel:cmdline 0
stub .rodata -1
PARTS

# ---- usage and input errors ---------------------------------------------------
expect_error 2 "trusted-key" "$SVMKIT" boot img-gzip
expect_error 2 "--memory" "$SVMKIT" boot img-gzip --trusted-key k.pub --memory 1000
expect_error 2 "too small" "$SVMKIT" boot img-gzip --trusted-key k.pub --memory 1M
expect_error 4 "nope: cannot open" "$SVMKIT" boot nope --trusted-key k.pub
expect_error 3 "" "$SVMKIT" boot k.pub --trusted-key k.pub
expect_exit 0 "$SVMKIT" boot --help
expect_contains "$OUT" "--trusted-key"
expect_contains "$OUT" "--min-security-version"

finish
