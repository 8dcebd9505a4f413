#!/usr/bin/env bash
# Makes a small newc cpio.gz initrd with an /init script, using standard tools.
# Usage: samples/make-sample-initrd.sh OUT.cpio.gz
set -euo pipefail
out=${1:?usage: make-sample-initrd.sh OUT.cpio.gz}
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/dev" "$tree/proc" "$tree/sys"
cat > "$tree/init" <<'INIT'
#!/bin/sh
echo "svmkit sample initrd: hello from /init"
cat /proc/cmdline
INIT
chmod 755 "$tree/init"
# Fixed timestamps and ownership so the archive is reproducible.
find "$tree" -exec touch -h -d @0 {} +
(cd "$tree" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -9 > "$out.tmp"
mv "$out.tmp" "$out"
