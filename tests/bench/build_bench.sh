#!/usr/bin/env bash
# Benchmark: svmkit build/verify against the baselines the issue names, side
# by side in one run, on the same inputs (Debian's ppc64le kernel and a
# 256 MiB uncompressed initrd, sha256, Ed25519 for svmkit):
#   - `openssl dgst -sha256` over the same two files (the hashing floor);
#   - `mkimage -E -f` of a FIT with the same payloads, sha256 hashes and an
#     rsa4096 configuration signature (u-boot-tools).
# Prints wall time, peak RSS and the ratios. Best of N runs, warm page cache.
#
#   tests/bench/build_bench.sh [SVMKIT_BINARY] [RUNS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
svmkit=${1:-$root/build/wrapper/svmkit}
runs=${2:-3}
kernel=${SVMKIT_DEBIAN_KERNEL:-$("$root/samples/fetch-debian-kernel.sh")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

head -c $((256 << 20)) /dev/urandom > initrd.bin
cp "$kernel" vmlinux
powerpc64le-linux-gnu-objcopy -O binary -S vmlinux vmlinux.bin
"$svmkit" keygen --algo ed25519 -o k.pem --public-output k.pub >/dev/null
mkdir keys
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out keys/dev.key 2>/dev/null
openssl req -batch -new -x509 -key keys/dev.key -subj /CN=bench -days 2 -out keys/dev.crt 2>/dev/null
cat > fit.its <<'ITS'
/dts-v1/;
/ {
    description = "svmkit benchmark baseline";
    #address-cells = <1>;
    images {
        kernel {
            data = /incbin/("vmlinux.bin");
            type = "kernel"; arch = "powerpc"; os = "linux"; compression = "none";
            load = <0>; entry = <0>;
            hash-1 { algo = "sha256"; };
        };
        ramdisk {
            data = /incbin/("initrd.bin");
            type = "ramdisk"; arch = "powerpc"; os = "linux"; compression = "none";
            hash-1 { algo = "sha256"; };
        };
    };
    configurations {
        default = "conf-1";
        conf-1 {
            kernel = "kernel"; ramdisk = "ramdisk";
            signature-1 { algo = "sha256,rsa4096"; key-name-hint = "dev"; sign-images = "kernel", "ramdisk"; };
        };
    };
};
ITS
cat vmlinux vmlinux.bin initrd.bin > /dev/null # warm the page cache

# measure NAME CMD...: best wall time (s) and the peak RSS (KiB) of that run.
declare -A secs rss
measure() {
  local name=$1 best="" best_rss=""
  shift
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o t.txt "$@" > /dev/null 2> err.txt || { cat err.txt >&2; exit 1; }
    read -r s m < t.txt
    if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s; best_rss=$m; fi
  done
  secs[$name]=$best
  rss[$name]=$best_rss
}

measure openssl openssl dgst -sha256 vmlinux initrd.bin
measure build "$svmkit" build --arch ppc64le --kernel vmlinux --initrd initrd.bin --hash sha256 --key k.pem -o secure.img
measure verify "$svmkit" verify secure.img --trusted-key k.pub
measure mkimage mkimage -E -f fit.its -k keys -r fit.itb

ratio() { awk "BEGIN{ if ($2 == 0) print \"inf\"; else printf \"%.2f\", $1 / $2 }"; }
printf '%-28s %10s %12s\n' "command" "seconds" "peak RSS"
for n in openssl build verify mkimage; do
  printf '%-28s %10s %9s MiB\n' "$n" "${secs[$n]}" "$((rss[$n] / 1024))"
done
echo
echo "payload: $(stat -c %s vmlinux) byte kernel ELF + $(stat -c %s initrd.bin) byte initrd"
echo "build  / openssl dgst: $(ratio "${secs[build]}" "${secs[openssl]}")x   (target <= 1.5)"
echo "verify / openssl dgst: $(ratio "${secs[verify]}" "${secs[openssl]}")x   (target <= 1.5)"
echo "mkimage / build:       $(ratio "${secs[mkimage]}" "${secs[build]}")x   (target >= 10)"
echo "build peak RSS:        $((rss[build] / 1024)) MiB   (target < 64)"
echo "verify peak RSS:       $((rss[verify] / 1024)) MiB"
