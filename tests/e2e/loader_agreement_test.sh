#!/usr/bin/env bash
# The loader's answer three ways (docs/loader.md, "Memory the loader keeps
# clear"): `svmkit load --plan` and `svmkit mkdisk` predict it with the boot
# loader's own constraints, `svmkit boot --kexec` gets it from the loader.
# The initrd of an image grows from 1 MiB in 4 MiB steps to the first size
# refused (the image's segments reach the boot loader at 0x8000000), then the
# boundary is bisected to 64 KiB; at every size the three must agree. A
# refusal names the segment and the range it hits, the same words in the
# plan, mkdisk, the boot's console, its report (with and without --quiet)
# and the JSON of each.
source "$(dirname "$0")/lib.sh"

SAMPLE_KERNEL=${SVMKIT_SAMPLE_KERNEL:-$(dirname "$SVMKIT")/../samples/kernel/sample-kernel.elf}
[ -f "$SAMPLE_KERNEL" ] || { echo "no sample kernel at $SAMPLE_KERNEL" >&2; exit 1; }

"$SVMKIT" keygen --algo ed25519 -o k.key --public-output k.pub >/dev/null

# image_of KIB: a secure image whose initrd is KIB KiB (sparse zeros: cheap to make).
image_of() {
  rm -f initrd.bin
  truncate -s "$1K" initrd.bin
  "$SVMKIT" build --kernel "$SAMPLE_KERNEL" --initrd initrd.bin --key k.key -o img.bin \
    --cmdline "console=hvc0" >/dev/null
}

# verdicts KIB: "PLAN MKDISK BOOT", each "ok" or "refused", for an initrd of
# KIB KiB. A refusal must be the loader's (exit 3 with its words, or the
# loader's status 31), nothing else.
verdicts() {
  image_of "$1"
  local plan disk boot
  set +e
  "$SVMKIT" load --plan img.bin >/dev/null 2>plan.err
  plan=$?
  rm -f disk.img
  "$SVMKIT" mkdisk -o disk.img --entry a=img.bin >/dev/null 2>mkdisk.err
  disk=$?
  "$SVMKIT" boot --kexec img.bin --trusted-key k.pub --quiet >boot.out 2>boot.err
  boot=$?
  set -e
  case "$plan" in 0) plan=ok ;; 3) grep -q "rejected by the loader" plan.err && plan=refused ;; esac
  case "$disk" in 0) disk=ok ;; 3) grep -q "the loader would refuse it" mkdisk.err && disk=refused ;; esac
  case "$boot" in
    0) boot=ok ;;
    10) grep -q "the guest exited with status 31$" boot.err && boot=refused ;;
  esac
  echo "$plan $disk $boot"
}

# ---- the sweep: 1 MiB, then 4 MiB steps, up to the first refusal ----
CHECKS=$((CHECKS + 1))
refused_at=
last_ok=
for ((mib = 1; mib <= 129; mib += 4)); do
  v=$(verdicts $((mib * 1024)))
  case "$v" in
    "ok ok ok") last_ok=$((mib * 1024)) ;;
    "refused refused refused") refused_at=$((mib * 1024)); break ;;
    *) fail "initrd of $mib MiB: plan, mkdisk and boot --kexec disagree: $v"
       cat plan.err mkdisk.err boot.err >&2
       break ;;
  esac
done
[ -n "$refused_at" ] || fail "no initrd size up to 129 MiB was refused"
[ -n "$last_ok" ] || fail "not even a 1 MiB initrd was accepted"

# ---- the boundary, bisected to 64 KiB: they agree on both sides of it ----
if [ -n "$refused_at" ] && [ -n "$last_ok" ]; then
  lo=$last_ok hi=$refused_at
  while ((hi - lo > 64)); do
    mid=$(((lo + hi) / 2 / 64 * 64))
    CHECKS=$((CHECKS + 1))
    case "$(verdicts "$mid")" in
      "ok ok ok") lo=$mid ;;
      "refused refused refused") hi=$mid ;;
      *) fail "initrd of $mid KiB: the three disagree: $(verdicts "$mid")"; break ;;
    esac
  done
  echo "largest initrd accepted: $lo KiB; smallest refused: $hi KiB"

  # ---- the refusal, named the same way everywhere ----
  image_of "$hi"
  expect_exit 3 "$SVMKIT" load --plan img.bin
  words=$(sed -nE 's/.*rejected by the loader: (.*)$/\1/p' <<<"$ERR")
  expect_contains "$words" '^segment overlaps a reserved memory range \(segment_in_reserved\): segment [0-9]+ \[0x[0-9a-f]+, 0x[0-9a-f]+\) overlaps the boot loader \[0x8000000, 0x[0-9a-f]+\)$'
  expect_exit 3 "$SVMKIT" load --plan --json img.bin
  plan_json=$OUT
  expect_error 3 "the loader would refuse it: $(sed 's/[][().]/\\&/g' <<<"$words")" \
    "$SVMKIT" mkdisk -o disk.img --entry a=img.bin
  expect_no_file disk.img
  # The console (the loader's own line), the report and stderr, not quiet.
  expect_exit 31 "$SVMKIT" boot --kexec img.bin --trusted-key k.pub
  expect_contains "$OUT" "svmkit loader: error: the image was rejected: $(sed 's/[][().]/\\&/g' <<<"$words")"
  expect_contains "$OUT" "REFUSED by the loader: $(sed 's/[][().]/\\&/g' <<<"$words")"
  expect_contains "$ERR" "the boot loader refused the image: $(sed 's/[][().]/\\&/g' <<<"$words")\$"
  expect_contains "$(tail -1 <<<"$ERR")" "^svmkit: error: img.bin: the guest exited with status 31\$"
  # Quiet: no console, the report and stderr still say it all.
  expect_exit 31 "$SVMKIT" boot --kexec img.bin --trusted-key k.pub --quiet
  expect_not_contains "$OUT" "svmkit loader: error"
  expect_contains "$OUT" "REFUSED by the loader: $(sed 's/[][().]/\\&/g' <<<"$words")"
  expect_contains "$ERR" "the boot loader refused the image: $(sed 's/[][().]/\\&/g' <<<"$words")"
  # The report's memory map shows the refused segment over the boot loader.
  expect_contains "$OUT" "segment   segment [0-9]+ \(refused\)  <- OVERLAPS the boot loader"
  expect_contains "$OUT" "loader    the boot loader  <- OVERLAPS segment [0-9]+ \(refused\)"
  # The JSON of the boot and of the plan carry the same refusal.
  expect_exit 31 "$SVMKIT" boot --kexec img.bin --trusted-key k.pub --quiet --json
  CHECKS=$((CHECKS + 1))
  python3 - "$plan_json" "$OUT" <<'PY' || fail "the plan's and the boot's JSON refusals differ"
import json, sys
plan, boot = json.loads(sys.argv[1]), json.loads(sys.argv[2])
p, b = plan["refusal"], boot["loader"]["refusal"]
assert p == b, (p, b)
assert p["error"] == "segment_in_reserved" and p["segment"]["index"] >= 0, p
assert p["range"]["kind"] == "boot_loader" and p["range"]["start"] == "0x8000000", p
assert plan["accepted"] is False and plan["error"] == "segment_in_reserved"
# Both memory maps mark the refused segment over the boot loader.
for doc in (plan, boot):
    rows = doc["memory_map"]
    refused = [r for r in rows if r["name"].endswith("(refused)")]
    assert len(refused) == 1 and "the boot loader" in refused[0]["overlaps"], rows
    starts = [int(r["start"], 16) for r in rows]
    assert starts == sorted(starts), rows
PY
fi

finish
