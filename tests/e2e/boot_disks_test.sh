#!/usr/bin/env bash
# svmkit boot's disks: the report and its JSON name each disk, its size, its
# back end and what the back end served (svmkit-vhost-blk's counters agree
# with what the guest says it wrote and read; qemu-storage-daemon keeps none
# and the report says so). A back end that cannot serve its disk fails the
# boot at once with svmkit's own message naming the disk and the cause, and
# the documented exit code, with and without --json.
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }

json_check() { # json_check PYTHON-ASSERTIONS (on d = the JSON in $OUT)
  CHECKS=$((CHECKS + 1))
  python3 -c "import json, sys; d = json.loads(sys.stdin.read()); $1" <<<"$OUT" ||
    fail "JSON check failed: $1"
}

"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --key k.key -o io.img \
  --cmdline "console=hvc0 svm=on svmkit.swiotlb=8M svmkit.io=2"
truncate -s 32M disk.img
truncate -s 1M second.img

# ---- svmkit-vhost-blk: counters, checked against the guest's own account ---------------
expect_exit 0 "$SVMKIT" boot io.img --trusted-key k.pub --disk disk.img --disk second.img --json
json_check "assert [x['name'] for x in d['disks']] == ['disk0', 'disk1']"
json_check "assert [x['path'] for x in d['disks']] == ['disk.img', 'second.img']"
json_check "assert [x['size'] for x in d['disks']] == [32 << 20, 1 << 20]"
json_check "assert all(x['backend'] == 'svmkit-vhost-blk' and x['failure'] is None for x in d['disks'])"
# The guest: "io write N KiB in R requests", "io read N KiB in R requests".
read -r WKIB WREQ < <(sed -nE 's/.*io write ([0-9]+) KiB in ([0-9]+) requests.*/\1 \2/p' <<<"$ERR")
read -r RKIB RREQ < <(sed -nE 's/.*io read ([0-9]+) KiB in ([0-9]+) requests.*/\1 \2/p' <<<"$ERR")
[ -n "$WKIB" ] && [ -n "$RKIB" ] || fail "the guest did not report its I/O: $ERR"
json_check "io = d['disks'][0]['io']; assert io['bytes_written'] == $WKIB * 1024 and io['writes'] == $WREQ, io"
json_check "io = d['disks'][0]['io']; assert io['bytes_read'] >= $RKIB * 1024 and io['reads'] >= $RREQ, io"
json_check "io = d['disks'][0]['io']; assert io['failed'] == 0 and io['flushes'] >= 1, io"
json_check "io = d['disks'][0]['io']; assert io['requests'] == io['reads'] + io['writes'] + io['flushes'] + io['other'], io"
json_check "io = d['disks'][1]['io']; assert io['bytes_written'] == 0 and io['failed'] == 0, io"
expect_exit 0 "$SVMKIT" boot io.img --trusted-key k.pub --disk disk.img --quiet
expect_contains "$OUT" "  disks"
expect_contains "$OUT" "disk0 disk.img: 33554432 bytes \(32 MiB\), back end svmkit-vhost-blk; [0-9]+ requests \([0-9]+ reads, $WREQ writes, [0-9]+ flushes, [0-9]+ other, 0 failed\), [0-9]+ bytes read, $((WKIB * 1024)) bytes written"

# ---- qemu-storage-daemon: named, sized, no counters of its own ---------------------------
if command -v qemu-storage-daemon >/dev/null; then
  expect_exit 0 "$SVMKIT" boot io.img --trusted-key k.pub --disk disk.img --backend qemu --json
  json_check "x = d['disks'][0]; assert x['backend'] == 'qemu-storage-daemon' and x['size'] == 32 << 20 and x['io'] is None and x['failure'] is None, x"
  expect_exit 0 "$SVMKIT" boot io.img --trusted-key k.pub --disk disk.img --backend qemu --quiet
  expect_contains "$OUT" "disk0 disk.img: 33554432 bytes \(32 MiB\), back end qemu-storage-daemon; I/O counters: none"
fi

# ---- a back end that cannot serve its disk ----------------------------------------------
# The back ends run without privileges (the hypervisor process drops them):
# a disk only root's capabilities can open passes svmkit's own check as
# root but not the back end's open.
if [ "$(id -u)" = 0 ]; then
  truncate -s 4M locked.img
  chmod 000 locked.img
  start=$(date +%s)
  expect_error 4 "^svmkit: error: locked.img: the svmkit-vhost-blk back end failed: svmkit-vhost-blk: locked.img: cannot open disk: Permission denied \(exited with status 4\)$" \
    "$SVMKIT" boot io.img --trusted-key k.pub --disk locked.img
  CHECKS=$((CHECKS + 1))
  [ $(( $(date +%s) - start )) -lt 5 ] || fail "the failing back end took $(( $(date +%s) - start )) s to be noticed"
  expect_not_contains "$ERR" "Connection reset|svmkit-hypervisor:"
  expect_exit 4 "$SVMKIT" boot io.img --trusted-key k.pub --disk disk.img --disk locked.img --json
  json_check "assert d['schema'] == 'svmkit-error-v1' and d['exit_code'] == 4 and d['error'].startswith('locked.img: the svmkit-vhost-blk back end failed: ')"
  if command -v qemu-storage-daemon >/dev/null; then
    expect_error 8 "^svmkit: error: locked.img: the qemu-storage-daemon back end failed: .*Permission denied.*\(exited with status 1\)$" \
      "$SVMKIT" boot io.img --trusted-key k.pub --disk locked.img --backend qemu
    expect_not_contains "$ERR" "Connection reset|svmkit-hypervisor:"
  fi
  chmod 600 locked.img
fi
# ---- a back end that ends during the boot ------------------------------------------------
# The guest writes 512 MiB; its disk's svmkit-vhost-blk (a descendant of
# this boot, found by parent ids) is killed meanwhile. The guest's requests
# then never complete: --timeout ends it, and the report, its JSON and a
# warning on stderr say which back end ended and how.
expect_exit 0 "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --key k.key -o long.img \
  --cmdline "console=hvc0 svm=on svmkit.swiotlb=8M svmkit.io=512"
truncate -s 1G long-disk.img
descendants() { # descendants PID: every process below PID
  local p
  for p in $(ps -o pid= --ppid "$1"); do echo "$p"; descendants "$p"; done
}
"$SVMKIT" boot long.img --trusted-key k.pub --disk long-disk.img --timeout 10 --json \
  >long.json 2>long.err &
booting=$!
backend=
for _ in $(seq 200); do
  for p in $(descendants "$booting"); do
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" = svmkit-vhost-bl ] && backend=$p
  done
  [ -n "$backend" ] && grep -q "io on virtio-blk" long.err && break
  sleep 0.05
done
[ -n "$backend" ] && kill -9 "$backend"
set +e
wait "$booting"
status=$?
set -e
CHECKS=$((CHECKS + 1))
[ "$status" = 9 ] || fail "a boot whose back end was killed exited $status, not 9 (timeout): $(cat long.err)"
OUT=$(cat long.json)
json_check "f = d['disks'][0]['failure']; assert f.startswith('long-disk.img: the svmkit-vhost-blk back end failed: ') and f.endswith('(killed by signal 9)'), f"
json_check "assert d['disks'][0]['io'] is None"
expect_contains "$(cat long.err)" "^svmkit: warning: long-disk.img: the svmkit-vhost-blk back end failed: .*\(killed by signal 9\)$"

echo "boot_disks_test: $CHECKS checks, $FAILURES failures"
[ "$FAILURES" -eq 0 ]
