#!/usr/bin/env bash
# cmake --install: svmkit in bin/, its helpers in libexec/svmkit/, the docs in
# share/doc/svmkit/, the man pages in share/man/man1/ (man finds them), the
# bash completion where bash-completion loads it; the install works moved to
# another prefix (the path to the helpers is relative); a helper missing at
# run time, an install into a read-only prefix and a configure without the
# ppc64el libraries or the cross compiler each give a message naming what is
# missing and what to install.
source "$(dirname "$0")/lib.sh"
: "${SVMKIT_BUILD_DIR:?SVMKIT_BUILD_DIR must point at the build tree}"
unset SVMKIT_HYPERVISOR SVMKIT_VHOST_BLK SVMKIT_BOOT_LOADER

# expect_cmake_error CODE PATTERN CMD...: as expect_error, on stderr with its
# line breaks and runs of blanks made single spaces (CMake wraps messages).
expect_cmake_error() {
  local code=$1 pattern=$2
  shift 2
  expect_exit "$code" "$@"
  ERR=$(tr -s ' \n' '  ' <<<"$ERR")
  grep -qE -- "$pattern" <<<"$ERR" || fail "stderr of '$*' does not match /$pattern/: $ERR"
}

# ---- install under a prefix, then move it ------------------------------------
expect_exit 0 cmake --install "$SVMKIT_BUILD_DIR" --prefix "$WORK/first/prefix"
mv "$WORK/first/prefix" "$WORK/moved"
P=$WORK/moved
for f in bin/svmkit libexec/svmkit/svmkit-hypervisor libexec/svmkit/svmkit-vcpu \
         libexec/svmkit/svmkit-vhost-blk libexec/svmkit/svmkit-boot-loader.elf libexec/svmkit/sample-kernel.elf \
         share/doc/svmkit/README.md share/doc/svmkit/platform.md share/man/man1/svmkit.1 \
         share/man/man1/svmkit-build.1 share/man/man1/svmkit-esm-make.1 \
         share/bash-completion/completions/svmkit; do
  CHECKS=$((CHECKS + 1))
  [ -f "$P/$f" ] || fail "the install has no $f"
done
CHECKS=$((CHECKS + 1))
[ -x "$P/libexec/svmkit/svmkit-hypervisor" ] || fail "svmkit-hypervisor is not executable"
CHECKS=$((CHECKS + 1))
[ -x "$P/libexec/svmkit/svmkit-vcpu" ] || fail "svmkit-vcpu is not executable"
CHECKS=$((CHECKS + 1))
[ "$(ls "$P")" = "$(printf 'bin\nlibexec\nshare')" ] || fail "unexpected top level: $(ls "$P")"

expect_exit 0 "$P/bin/svmkit" --version
expect_contains "$OUT" "^svmkit [0-9]+[.][0-9]+[.][0-9]+"

# man finds the pages under the install's share/man; the examples name the
# installed sample kernel.
expect_exit 0 env MANWIDTH=80 man -M "$P/share/man" -P cat svmkit-build
expect_contains "$OUT" "svmkit-build - Package kernel"
expect_contains "$OUT" "--kernel /[^ ]*/libexec/svmkit/sample-kernel.elf"
expect_exit 0 env MANWIDTH=80 man -M "$P/share/man" -P cat svmkit
expect_contains "$OUT" "EXIT STATUS"
# bash-completion loads the completion on demand from the prefix's share/
# (in XDG_DATA_DIRS; /usr/local and /usr are there by default).
if [ -r /usr/share/bash-completion/bash_completion ]; then
  expect_exit 0 env XDG_DATA_DIRS="$P/share" bash -c '
    source /usr/share/bash-completion/bash_completion
    __load_completion svmkit || exit 1
    complete -p svmkit
    COMP_WORDS=(svmkit esm ma); COMP_CWORD=2; _svmkit; echo "${COMPREPLY[*]}"'
  expect_contains "$OUT" "complete -F _svmkit svmkit"
  expect_contains "$OUT" "^make$"
else
  fail "bash-completion is not installed (scripts/install-deps.sh installs it)"
fi
expect_exit 0 "$P/bin/svmkit" keygen --algo ed25519 -o k.key --public-output k.pub
"$SVMKIT_SOURCE_DIR/samples/make-sample-initrd.sh" initrd.cpio.gz
expect_exit 0 "$P/bin/svmkit" build --kernel "$P/libexec/svmkit/sample-kernel.elf" \
  --initrd initrd.cpio.gz --cmdline "console=hvc0 svm=on svmkit.swiotlb=8M svmkit.io=16" \
  --compress gzip --key k.key -o sample.img
truncate -s 128M disk.img
boot=("$P/bin/svmkit" boot sample.img --trusted-key k.pub --disk disk.img)
# The version is svmkit's, never the image's: images stay reproducible.
expect_exit 0 "$P/bin/svmkit" --version
version=${OUT#svmkit }
CHECKS=$((CHECKS + 1))
if grep -aqF "$version" sample.img; then fail "the image holds svmkit's version '$version'"; fi
expect_exit 0 "${boot[@]}"
expect_contains "$OUT" "svmkit sample kernel: running secure"
expect_contains "$OUT" "io verified [1-9][0-9]+ blocks of 4 KiB, 0 mismatched"
# The boot loader, from libexec too.
expect_exit 0 "$P/bin/svmkit" mkdisk -o boot-disk.img --entry sample=sample.img --default sample
expect_exit 0 "$P/bin/svmkit" boot --disk boot-disk.img --trusted-key k.pub
expect_contains "$OUT" "svmkit sample kernel: running secure"

# ---- a helper missing at run time --------------------------------------------
H=$P/libexec/svmkit
mv "$H/svmkit-hypervisor" "$WORK/aside"
expect_error 4 "helper program svmkit-hypervisor is missing: $H/svmkit-hypervisor does not exist; reinstall svmkit.*SVMKIT_HYPERVISOR" \
  "${boot[@]}"
mv "$WORK/aside" "$H/svmkit-hypervisor"
mv "$H/svmkit-vcpu" "$WORK/aside"
expect_error 4 "helper program svmkit-vcpu is missing: $H/svmkit-vcpu does not exist; reinstall svmkit.*SVMKIT_VCPU" \
  "${boot[@]}"
mv "$WORK/aside" "$H/svmkit-vcpu"
mv "$H/svmkit-vhost-blk" "$WORK/aside"
# The hypervisor (in libexec/svmkit) looks for it beside itself; svmkit says
# which disk's back end is missing.
expect_error 4 "svmkit: error: .*: the svmkit-vhost-blk back end: the helper program svmkit-vhost-blk is missing: .* nor $H/svmkit-vhost-blk \(beside svmkit-hypervisor\)" \
  "${boot[@]}"
mv "$WORK/aside" "$H/svmkit-vhost-blk"
mv "$H/svmkit-boot-loader.elf" "$WORK/aside"
expect_error 4 "helper program svmkit-boot-loader.elf is missing: $H/svmkit-boot-loader.elf does not exist" \
  "$P/bin/svmkit" boot --disk boot-disk.img --trusted-key k.pub
mv "$WORK/aside" "$H/svmkit-boot-loader.elf"
# Without its libexec/svmkit at all: both places looked at are named.
mv "$H" "$WORK/aside"
expect_error 4 "svmkit-hypervisor is missing: neither $H/svmkit-hypervisor .* nor $P/bin/svmkit-hypervisor \(beside svmkit\)" \
  "${boot[@]}"
mv "$WORK/aside" "$H"
# An override that names nothing is not silently replaced by the default.
expect_error 4 "$WORK/nothing: no such file \(set by SVMKIT_HYPERVISOR" \
  env SVMKIT_HYPERVISOR="$WORK/nothing" "${boot[@]}"

# ---- a read-only prefix --------------------------------------------------------
mkdir ro
if mount -t tmpfs -o ro,size=1m tmpfs ro 2>/dev/null; then
  trap 'umount "$WORK/ro" 2>/dev/null || true; rm -rf "$WORK"' EXIT
  expect_cmake_error 1 "svmkit: cannot install into $WORK/ro/usr: $WORK/ro is not writable \(a read-only file system" \
    cmake --install "$SVMKIT_BUILD_DIR" --prefix "$WORK/ro/usr"
  expect_cmake_error 1 "cannot install into $WORK/ro/usr/local: $WORK/ro is not writable" \
    env DESTDIR="$WORK/ro" cmake --install "$SVMKIT_BUILD_DIR" --prefix /usr/local
  umount ro
  trap 'rm -rf "$WORK"' EXIT
else
  fail "cannot mount a read-only tmpfs (run as root) to test the read-only prefix"
fi

# ---- configure without Debian's ppc64el libraries --------------------------------
mkdir empty only-libz
ln -s "$(find /usr/lib -path '*powerpc64le*' -name libz.a | head -1)" only-libz/libz.a
expect_cmake_error 1 "libz.a not found in $WORK/empty: install Debian's zlib1g-dev:ppc64el after .dpkg --add-architecture ppc64el" \
  cmake -S "$SVMKIT_SOURCE_DIR" -B cfg1 -DSVMKIT_PPC64EL_LIBDIR="$WORK/empty"
expect_cmake_error 1 "libfdt.a for ppc64el not found in $WORK/only-libz nor in $WORK/empty: run scripts/install-deps.sh" \
  cmake -S "$SVMKIT_SOURCE_DIR" -B cfg2 -DSVMKIT_PPC64EL_LIBDIR="$WORK/only-libz" \
  -DSVMKIT_PPC64EL_LIBFDT_DIR="$WORK/empty"
# Nor the cross compiler (a -D path that names nothing is not taken either).
expect_cmake_error 1 "the ppc64le cross compiler is missing \(powerpc64le-linux-gnu-g\+\+: $WORK/none, .*install Debian's g\+\+-powerpc64le-linux-gnu and binutils-powerpc64le-linux-gnu" \
  cmake -S "$SVMKIT_SOURCE_DIR" -B cfg3 -DSVMKIT_PPC64LE_CXX="$WORK/none"

finish
