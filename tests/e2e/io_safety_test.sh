#!/usr/bin/env bash
# Inputs and outputs that cannot lose data (docs/cli.md, "Inputs", "Outputs"):
# every command, every input and output option, tried with a pipe, a FIFO
# (with and without a writer), a directory, character devices, a symlink to
# an input, an output naming an input by another spelling (relative path,
# symlink, hard link), a read-only directory, a full device, a FIFO with no
# reader. Each refusal row checks the documented exit code, one error line
# naming the file and the problem, no output left behind and no input
# changed (every file of the working directory hashed before and after).
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
export SVMKIT_INPUT_TIMEOUT=1

# ---- fixtures ----------------------------------------------------------------
cp "$SAMPLE_KERNEL" kernel.elf
head -c 100000 /dev/urandom >initrd.bin
echo "console=hvc0 svm=on" >cmdline.txt
"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out tpm.key 2>/dev/null
openssl pkey -in tpm.key -pubout -out tpm.pub
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out owner.key 2>/dev/null
openssl pkey -in owner.key -pubout -out owner.pub
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.key 2>/dev/null
openssl pkey -in other.key -pubout -out other.pub
echo "a secret" >secret.txt
cat >blob.yml <<'EOF'
- origin:
    pubkey: "owner.pub"
    seckey: "owner.key"
    comment: "owner"
- recipient:
    pubkey: "tpm.pub"
    comment: "machine"
- digest:
    args: "console=hvc0 svm=on"
    initramfs: "initrd.bin"
    kernel: "kernel.elf"
- file:
    name: "secret"
    path: "secret.txt"
EOF
openssl genpkey -algorithm ed25519 -aes256 -pass pass:swordfish -out enc.key 2>/dev/null
chmod 600 ./*.key
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --initrd initrd.bin --cmdline-file cmdline.txt \
  --key k.key -o img
expect_exit 0 "$SVMKIT" build --kernel kernel.elf --unsigned -o unsigned.img
expect_exit 0 "$SVMKIT" tbs unsigned.img -o unsigned.tbs
openssl pkeyutl -sign -rawin -inkey k.key -in unsigned.tbs -out unsigned.sig
expect_exit 0 "$SVMKIT" esm make -y blob.yml -o blob.dtb
mkfifo fifo
mkdir dir
# Small: every row hashes the whole working directory twice.
truncate -s 1M disk.img

# ---- the row checker ---------------------------------------------------------
# Every file in the working directory with its hash (symlinks and FIFOs by
# what they are, not followed).
snapshot() {
  find . -mindepth 1 -maxdepth 2 ! -name '.out' ! -name '.err' ! -name '.snap*' \
    \( -type f -exec sha256sum {} + \) -o \( ! -type f -printf '%y %p -> %l\n' \) | sort
}

# refused CODE PATTERN FILE CMD...: exit CODE; stderr is one svmkit error line
# naming FILE and matching PATTERN; no file appears, none changes.
refused() {
  local code=$1 pattern=$2 file=$3
  shift 3
  snapshot >.snap-before
  expect_exit "$code" "$@"
  snapshot >.snap-after
  CHECKS=$((CHECKS + 3))
  local errors
  errors=$(grep -c '^svmkit: \(usage \)\?error: ' <<<"$ERR" || true)
  [ "$errors" = 1 ] || fail "expected one error line from '$*', got: $ERR"
  grep -qF -- "$file" <<<"$ERR" || fail "the error of '$*' does not name $file: $ERR"
  grep -qE -- "$pattern" <<<"$ERR" || fail "the error of '$*' does not match /$pattern/: $ERR"
  if ! diff -u .snap-before .snap-after >.snap-diff; then
    fail "'$*' changed the working directory:"
    cat .snap-diff >&2
  fi
}

# accepted CMD...: exit 0 (for streams that must work).
accepted() { expect_exit 0 "$@"; }

# ---- large inputs: regular files only ------------------------------------------
# (kernel, initrd, image, blob or image for esm, disk-image entry for mkdisk)
LARGE=(
  "build --kernel @ --key k.key -o out.img"
  "build --kernel kernel.elf --initrd @ --key k.key -o out.img"
  "inspect @"
  "verify @ --trusted-key k.pub"
  "extract @ --component kernel -o out.bin"
  "tbs @ -o out.bin"
  "attach @ --signature unsigned.sig --pubkey k.pub -o out.img"
  "mkdisk -o out.disk --size 8M --entry a=@"
  "load --plan @"
  "esm display @"
  "build --kernel kernel.elf --key k.key --esm-blob @ -o out.img"
  "esm authorize @ --origin-key owner.key --recipient other.pub -o out.dtb"
  "esm revoke @ --fingerprint tpm.pub -o out.dtb"
  "esm extract @ --key tpm.key -o out.bin"
  "esm digest --kernel @"
  "esm digest --kernel kernel.elf --initrd @"
  "esm add --blob blob.dtb --initrd @ -o out.img"
  "boot @ --trusted-key k.pub"
)
for row in "${LARGE[@]}"; do
  for bad in fifo /dev/zero dir; do
    # shellcheck disable=SC2086
    refused 3 "is (a pipe or FIFO|a character device|a directory)" "$bad" \
      "$SVMKIT" ${row//@/$bad}
  done
  # A pipe (process substitution) is refused the same way.
  set -f
  read -r -a words <<<"$row"
  set +f
  args=()
  for w in "${words[@]}"; do
    args+=("${w//@//dev/fd/3}")
  done
  refused 3 "is a pipe or FIFO" "/dev/fd/3" "$SVMKIT" "${args[@]}" 3< <(cat img)
done

# '-' reads standard input (spooled when it is a pipe).
accepted "$SVMKIT" inspect - < <(cat img)
expect_contains "$OUT" "standard input"
accepted "$SVMKIT" verify - --trusted-key k.pub <img
refused 2 "already read" "standard input" \
  "$SVMKIT" build --kernel - --initrd - --key k.key -o out.img <kernel.elf

# ---- small inputs: streams read to their end, bounded, never forever ------------
SMALL=(
  "build --kernel kernel.elf --cmdline-file @ --key k.key -o out.img"
  "build --kernel kernel.elf --dtb @ --key k.key -o out.img"
  "build --kernel kernel.elf --key @ -o out.img"
  "build --kernel kernel.elf --key enc.key --key-passphrase-file @ -o out.img"
  "build --kernel kernel.elf --key k.key --esm-recipient @ -o out.img"
  "build --kernel kernel.elf --key k.key --esm-recipient tpm.pub --esm-file s=@ -o out.img"
  "verify img --trusted-key @"
  "verify img --trusted-key k.pub --revoked-key @"
  "attach unsigned.img --signature @ --pubkey k.pub -o out.img"
  "attach unsigned.img --signature unsigned.sig --pubkey @ -o out.img"
  "esm make -y @ -o out.dtb"
  "esm authorize blob.dtb --origin-key @ --recipient other.pub -o out.dtb"
  "esm authorize blob.dtb --origin-key owner.key --recipient @ -o out.dtb"
  "esm extract blob.dtb --key @ -o out.bin"
  "esm digest -y @"
  "esm add --blob @ --initrd initrd.bin -o out.img"
  "boot img --trusted-key @"
  "boot img --trusted-key k.pub --machine-key @"
)
for row in "${SMALL[@]}"; do
  # A FIFO nobody writes: refused after the input timeout, not a hang.
  # shellcheck disable=SC2086
  refused 4 "no data for 1 s" fifo "$SVMKIT" ${row//@/fifo}
  # An endless character device: refused at the input's size bound.
  # shellcheck disable=SC2086
  refused 3 "more than [0-9]+ bytes" /dev/zero "$SVMKIT" ${row//@/\/dev\/zero}
  # A directory is no file to read.
  # shellcheck disable=SC2086
  refused 3 "is a directory" dir "$SVMKIT" ${row//@/dir}
done

# Streams carry the whole input: a command line from a pipe, a FIFO and a
# here-string; a secret file and a YAML from a pipe.
accepted "$SVMKIT" build --kernel kernel.elf --cmdline-file <(echo "console=hvc0 from-a-pipe") \
  --key k.key -o piped.img
accepted "$SVMKIT" extract piped.img --component cmdline -o -
[ "$OUT" = "console=hvc0 from-a-pipe" ] || fail "the piped command line became '$OUT'"
(sleep 0.3; echo "console=hvc0 from-a-fifo" >fifo) &
accepted "$SVMKIT" build --kernel kernel.elf --cmdline-file fifo --key k.key -o fifo.img
wait
accepted "$SVMKIT" extract fifo.img --component cmdline -o -
[ "$OUT" = "console=hvc0 from-a-fifo" ] || fail "the FIFO's command line became '$OUT'"
accepted "$SVMKIT" build --kernel kernel.elf --cmdline-file - --key k.key -o stdin.img \
  <<<"console=hvc0 from-stdin"
accepted "$SVMKIT" extract stdin.img --component cmdline -o -
[ "$OUT" = "console=hvc0 from-stdin" ] || fail "stdin's command line became '$OUT'"
accepted "$SVMKIT" esm make -y <(cat blob.yml) -o piped.dtb
accepted "$SVMKIT" esm extract piped.dtb --key tpm.key --file secret -o -
[ "$OUT" = "a secret" ] || fail "a blob made from a piped YAML carries '$OUT'"
accepted "$SVMKIT" build --kernel kernel.elf --key k.key --esm-recipient tpm.pub \
  --esm-file s=<(echo "piped secret") -o secret.img
accepted "$SVMKIT" esm extract secret.img --key tpm.key --file s -o -
[ "$OUT" = "piped secret" ] || fail "the piped secret file became '$OUT'"
# A symlink to an input is read through.
ln -s kernel.elf kernel.link
accepted "$SVMKIT" build --kernel kernel.link --key k.key -o link.img
rm -f piped.img fifo.img stdin.img piped.dtb secret.img link.img kernel.link

# ---- outputs never replace an input ---------------------------------------------
ln -s k.key key.symlink
ln k.key key.hardlink
OUTPUTS=(
  # CMD with @ as the output | the input it names | that input's other spellings
  "build --kernel kernel.elf --key k.key -o @|k.key"
  "build --kernel kernel.elf --initrd initrd.bin --key k.key -o @|initrd.bin"
  "build --kernel kernel.elf --key k.key -o @|kernel.elf"
  "build --kernel kernel.elf --cmdline-file cmdline.txt --key k.key -o @|cmdline.txt"
  "build --kernel kernel.elf --key k.key --esm-blob blob.dtb -o @|blob.dtb"
  "extract img --component kernel -o @|img"
  "tbs img -o @|img"
  "attach unsigned.img --signature unsigned.sig --pubkey k.pub -o @|unsigned.sig"
  "attach unsigned.img --signature unsigned.sig --pubkey k.pub -o @|k.pub"
  "attach unsigned.img --signature unsigned.sig --pubkey k.pub -o @|unsigned.img"
  "mkdisk --size 8M --entry a=img -o @|img"
  "esm make -y blob.yml -o @|owner.key"
  "esm make -y blob.yml -o @|secret.txt"
  "esm authorize blob.dtb --origin-key owner.key --recipient other.pub -o @|owner.key"
  "esm extract blob.dtb --key tpm.key -o @|tpm.key"
  "esm extract blob.dtb --key tpm.key -o @|blob.dtb"
  "esm add --blob blob.dtb --initrd initrd.bin -o @|initrd.bin"
  "esm add --blob blob.dtb --initrd initrd.bin -o @|blob.dtb"
  "boot img --trusted-key k.pub --hv-hook-log @|img"
)
for row in "${OUTPUTS[@]}"; do
  cmd=${row%%|*}
  input=${row#*|}
  rm -f "sym-$input"
  ln -s "$input" "sym-$input"
  ln -f "$input" "hard-$input" 2>/dev/null || cp "$input" "hard-$input"
  for spelling in "./$input" "sym-$input" "hard-$input" "$PWD/$input"; do
    # shellcheck disable=SC2086
    refused 2 "is the same file as the input" "$spelling" "$SVMKIT" ${cmd//@/$spelling}
  done
  rm -f "sym-$input" "hard-$input"
done
refused 2 "is the same file as the output" "./x.key" \
  "$SVMKIT" keygen --algo ed25519 -o x.key --public-output ./x.key
# An existing private key needs --force, and is created 0600.
refused 2 "refusing to overwrite a private key \(use --force\)" k.key \
  "$SVMKIT" keygen --algo ed25519 -o k.key --public-output new.pub
accepted "$SVMKIT" keygen --algo ed25519 -o forced.key --public-output forced.pub
accepted "$SVMKIT" keygen --algo ed25519 -o forced.key --public-output forced2.pub --force
[ "$(stat -c %a forced.key)" = 600 ] || fail "keygen's private key is not 0600"
refused 2 "a private key is never written to standard output" "-" \
  "$SVMKIT" keygen --algo ed25519 -o - --public-output p.pub
rm -f forced.key forced.pub forced2.pub
# Edited in place on purpose: esm authorize/revoke without -o.
cp blob.dtb inplace.dtb
accepted "$SVMKIT" esm authorize inplace.dtb --origin-key owner.key --recipient other.pub
cmp -s blob.dtb inplace.dtb && fail "esm authorize did not change its blob in place"
rm -f inplace.dtb

# ---- outputs that are devices, FIFOs, standard output -----------------------------
OUTPUT_CMDS=(
  "build --kernel kernel.elf --key k.key -o @"
  "extract img --component kernel -o @"
  "tbs img -o @"
  "attach unsigned.img --signature unsigned.sig --pubkey k.pub -o @"
  "mkdisk --size 8M --entry a=img -o @"
  "esm make -y blob.yml -o @"
  "esm authorize blob.dtb --origin-key owner.key --recipient other.pub -o @"
  "esm revoke blob.dtb --fingerprint tpm.pub -o @"
  "esm extract blob.dtb --key tpm.key -o @"
  "esm add --blob blob.dtb --initrd initrd.bin -o @"
  "keygen --algo ed25519 -o new.key --public-output @"
)
for cmd in "${OUTPUT_CMDS[@]}"; do
  # /dev/null takes the bytes and stays a character device.
  # shellcheck disable=SC2086
  accepted "$SVMKIT" ${cmd//@/\/dev\/null}
  [ -c /dev/null ] || fail "/dev/null is no longer a character device after: $cmd"
  rm -f new.key
  # A full device is an I/O error.
  # shellcheck disable=SC2086
  refused 4 "No space left on device" /dev/full "$SVMKIT" ${cmd//@/\/dev\/full}
  # A FIFO with no reader is an error, not a hang.
  # shellcheck disable=SC2086
  refused 4 "a FIFO with no reader" fifo "$SVMKIT" ${cmd//@/fifo}
  # A directory is no output file.
  # shellcheck disable=SC2086
  refused 2 "is a directory" dir "$SVMKIT" ${cmd//@/dir}
  # Standard output carries the data alone.
  # shellcheck disable=SC2086
  "$SVMKIT" ${cmd//@/-} >stdout.bin 2>stderr.txt || fail "'$cmd' with -o - failed: $(cat stderr.txt)"
  CHECKS=$((CHECKS + 1))
  [ -s stdout.bin ] || fail "'$cmd' with -o - wrote nothing to stdout"
  grep -q "^wrote" stdout.bin && fail "'$cmd' with -o - mixed its message into the data"
  rm -f new.key stdout.bin stderr.txt
done
# A FIFO with a reader gets the bytes.
cat fifo >from-fifo.img &
accepted "$SVMKIT" build --kernel kernel.elf --key k.key -o fifo
wait
accepted "$SVMKIT" inspect from-fifo.img
rm -f from-fifo.img
# -o - with --json: the data on stdout, the JSON on stderr.
"$SVMKIT" extract img --component cmdline -o - --json >data.txt 2>json.txt
CHECKS=$((CHECKS + 1))
[ "$(cat data.txt)" = "console=hvc0 svm=on" ] || fail "extract -o - --json: data is '$(cat data.txt)'"
grep -q '"schema": "svmkit-extract-v1"' json.txt || fail "extract -o - --json: no JSON on stderr"
rm -f data.txt json.txt

# ---- a read-only directory: nothing written, nothing left -------------------------
mkdir ro
if [ "$(id -u)" = 0 ]; then
  # Root ignores directory modes: make it a read-only mount of its own.
  RO=(unshare -m sh -c 'mount --bind ro ro && mount -o remount,bind,ro ro && exec "$@"' sh)
else
  chmod 555 ro
  RO=()
fi
for cmd in "${OUTPUT_CMDS[@]}"; do
  # shellcheck disable=SC2086
  refused 4 "cannot create the output in" ro/out "${RO[@]}" "$SVMKIT" ${cmd//@/ro\/out}
  rm -f new.key
done

# ---- boot's disks ------------------------------------------------------------------
refused 3 "is a directory" dir "$SVMKIT" boot img --trusted-key k.pub --disk dir
refused 3 "is a character device" /dev/zero "$SVMKIT" boot img --trusted-key k.pub --disk /dev/zero
refused 2 "is the image being booted" img "$SVMKIT" boot img --trusted-key k.pub --disk img
refused 2 "is the image being booted" ./img "$SVMKIT" boot --kexec img --trusted-key k.pub --disk ./img
refused 2 "given twice" disk.img "$SVMKIT" boot img --trusted-key k.pub --disk disk.img --disk ./disk.img

# ---- deprecated spellings still work, and say so -----------------------------------
expect_exit 0 "$SVMKIT" keygen --algo ed25519 --out old.key --pub old.pub
expect_contains "$ERR" "warning: --out is deprecated; use -o/--output"
expect_contains "$ERR" "warning: --pub is deprecated; use --public-output"
expect_exit 0 "$SVMKIT" tbs img --hash sha256 --hex
new_spelling=$OUT
expect_exit 0 "$SVMKIT" tbs img --digest sha256 --hex
expect_contains "$ERR" "warning: --digest is deprecated; use --hash"
[ "$OUT" = "$new_spelling" ] || fail "tbs --digest and --hash disagree: $OUT / $new_spelling"

finish
