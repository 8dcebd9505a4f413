#!/usr/bin/env python3
"""Writes a newc cpio archive (the initramfs format) from a list of entries,
without touching the file system: device nodes need no root, and every
timestamp and owner is fixed, so the archive is reproducible.

    make-cpio.py OUT ENTRY...
      dir:PATH                     a directory (0755)
      file:PATH=SOURCE[:MODE]      a regular file with SOURCE's bytes (MODE in octal, default 0644)
      char:PATH=MAJOR,MINOR        a character device (0600)
"""
import sys


def header(ino, mode, size, namesize, rdev):
    # ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor
    # rdevminor namesize check
    nlink = 2 if mode & 0o040000 else 1
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], namesize, 0]
    return ("070701" + "".join("%08X" % v for v in fields)).encode()


def pad4(n):
    return (4 - n % 4) % 4


def entry(out, ino, name, mode, data=b"", rdev=(0, 0)):
    encoded = name.encode() + b"\0"
    hdr = header(ino, mode, len(data), len(encoded), rdev)
    out += hdr + encoded + b"\0" * pad4(len(hdr) + len(encoded))
    out += data + b"\0" * pad4(len(data))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = bytearray()
    for ino, spec in enumerate(sys.argv[2:], start=1):
        kind, _, rest = spec.partition(":")
        if kind == "dir":
            entry(out, ino, rest, 0o040755)
        elif kind == "file":
            path, _, source = rest.partition("=")
            source, _, mode = source.partition(":")
            with open(source, "rb") as f:
                entry(out, ino, path, 0o100000 | int(mode or "644", 8), f.read())
        elif kind == "char":
            path, _, numbers = rest.partition("=")
            major, minor = (int(x) for x in numbers.split(","))
            entry(out, ino, path, 0o020600, rdev=(major, minor))
        else:
            sys.exit("unknown entry " + spec)
    entry(out, len(sys.argv), "TRAILER!!!", 0)
    out += b"\0" * pad4(len(out))
    with open(sys.argv[1], "wb") as f:
        f.write(out)


main()
