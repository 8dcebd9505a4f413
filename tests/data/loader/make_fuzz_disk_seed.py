#!/usr/bin/env python3
"""Writes the seed of fuzz_loader_disk (tests/fuzz/corpus/loader_disk/):
a 48 KiB GPT disk (protective MBR, primary and backup GPT, 128 entries) whose
"svmkit boot" partition (LBAs 34..62) holds a newc cpio with boot.cfg and
images/a.img; prefixed by the harness's control byte (1: fix CRCs).

    tests/data/loader/make_fuzz_disk_seed.py OUT
"""
import struct
import sys
import zlib

LBA = 512
LBAS = 96
BOOT_TYPE = bytes.fromhex("5fcd0b66b59d9e4087fed909cdfd16cf")


def newc(name, mode, data):
    h = b"070701" + b"".join(b"%08X" % v for v in (
        1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
    h += name + b"\0"
    h += bytes(-len(h) % 4)
    h += data + bytes(-len(data) % 4)
    return h


def main():
    cfg = b'menuentry "a" {\n  linux /images/a.img console=hvc0\n}\n'
    archive = (newc(b"boot.cfg", 0o100644, cfg) + newc(b"images", 0o40755, b"") +
               newc(b"images/a.img", 0o100644, bytes(range(256)) * 8) +
               newc(b"TRAILER!!!", 0, b""))
    first, last = 34, LBAS - 34
    assert len(archive) <= (last - first + 1) * LBA
    disk = bytearray(LBAS * LBA)
    disk[446 + 4] = 0xEE
    struct.pack_into("<II", disk, 446 + 8, 1, LBAS - 1)
    disk[510:512] = b"\x55\xaa"
    entries = bytearray(128 * 128)
    entries[0:16] = BOOT_TYPE
    entries[16:32] = bytes(range(16))
    struct.pack_into("<QQ", entries, 32, first, last)
    disk[first * LBA:first * LBA + len(archive)] = archive

    def header(my, alt, entries_lba):
        h = bytearray(92)
        struct.pack_into("<8sIIIIQQQQ16sQIII", h, 0, b"EFI PART", 0x10000, 92, 0, 0, my, alt,
                         34, last, bytes(range(16, 32)), entries_lba, 128, 128,
                         zlib.crc32(entries))
        struct.pack_into("<I", h, 16, zlib.crc32(h))
        return h

    disk[2 * LBA:2 * LBA + len(entries)] = entries
    disk[(LBAS - 33) * LBA:(LBAS - 1) * LBA] = entries
    disk[LBA:LBA + 92] = header(1, LBAS - 1, 2)
    disk[(LBAS - 1) * LBA:(LBAS - 1) * LBA + 92] = header(LBAS - 1, 1, LBAS - 33)
    with open(sys.argv[1], "wb") as f:
        f.write(b"\x00" + disk)


if __name__ == "__main__":
    main()
