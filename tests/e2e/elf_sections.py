"""The section table of an ELF64 little-endian file (a secure image), for
the end-to-end tests' byte surgery: one reading of it, shared by every
script (lib.sh puts this directory on PYTHONPATH).

Deliberately separate from svmkit's own readers: the tests cross-check them.
"""
import struct
import sys
from collections import namedtuple

Section = namedtuple("Section", "name addr offset size")

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr
_SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr


def sections(data):
    """Every section but the null one, in table order."""
    eh = _EHDR.unpack_from(data, 0)
    shoff, shentsize, shnum, shstrndx = eh[6], eh[11], eh[12], eh[13]
    assert shentsize == _SHDR.size, "not an ELF64 section table"
    sh = [_SHDR.unpack_from(data, shoff + i * _SHDR.size) for i in range(shnum)]
    names = sh[shstrndx][4]
    out = []
    for s in sh[1:]:
        name = bytes(data[names + s[0]:data.index(b"\0", names + s[0])]).decode()
        out.append(Section(name, s[3], s[4], s[5]))
    return out


def section(data, name):
    """The section called `name`; exits with a message when there is none."""
    for s in sections(data):
        if s.name == name:
            return s
    sys.exit("no section " + name)
