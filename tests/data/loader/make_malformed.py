#!/usr/bin/env python3
"""Writes the loader's corpus of crafted ELF images (tests/data/loader/).

    tests/data/loader/make_malformed.py [OUTDIR]   # default: beside this script

good/minimal.elf is a valid two-segment image; every file in malformed/ is
that image with exactly ONE defect, and malformed/EXPECTED lists, per file,
the ElfError name (loader/elf_plan.h) plan_elf_load() must reject it with.
The output is byte-for-byte reproducible (no time, no randomness), and the
files are checked in; tests/unit/loader_elf_test.cpp checks that they match
this script's output and that each is rejected with its reason.

The expected reasons hold for constraints like the simulated machine's
(docs/loader.md): e_machine EM_X86_64, guest RAM [0, 256 MiB) or more but
below 16 TiB, the firmware's FDT and stack [0x3e00000, 0x4000000) reserved,
segment limit 16 MiB or more and below 1 TiB.
"""
import os
import struct
import sys

EM_X86_64 = 62
VA_BASE = 0x200000000000  # SVMKIT_SIM_GUEST_VA_BASE: p_vaddr = VA_BASE + p_paddr
TEXT_PADDR = 0x4000000  # SVMKIT_IMAGE_BASE
DATA_PADDR = 0x4010000
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
PF_X, PF_W, PF_R = 1, 2, 4
SHT_PROGBITS, SHT_STRTAB, SHT_NOBITS = 1, 3, 8


def phdr(ptype, flags, offset, paddr, filesz, memsz, align=0x10000, vaddr=None):
    if vaddr is None:
        vaddr = VA_BASE + paddr
    return dict(type=ptype, flags=flags, offset=offset, vaddr=vaddr, paddr=paddr,
                filesz=filesz, memsz=memsz, align=align)


def base():
    """The valid image's description: edit one field to make a defect."""
    return dict(
        ident=bytearray(b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)),
        type=2, machine=EM_X86_64, version=1,
        entry=VA_BASE + TEXT_PADDR + 0x40,
        ehsize=64, phentsize=56, shentsize=64,
        phoff=None, phnum=None, shoff=None, shnum=None, shstrndx=None,
        phdrs=[
            # text: 0x200 bytes at file 0x1000, executable
            phdr(PT_LOAD, PF_R | PF_X, 0x1000, TEXT_PADDR, 0x200, 0x200),
            # data: 0x100 bytes at file 0x2000, zero fill to 0x1000
            phdr(PT_LOAD, PF_R | PF_W, 0x2000, DATA_PADDR, 0x100, 0x1000),
        ],
        # (name, type, offset, size): the null section and .shstrtab are added
        sections=[(".text", SHT_PROGBITS, 0x1000, 0x200), (".data", SHT_PROGBITS, 0x2000, 0x100),
                  (".bss", SHT_NOBITS, 0x2100, 0xf00)],
        size=0x2100,  # file bytes before the section name table and headers
        tail=b"",  # appended after the section headers
    )


def render(d):
    """ELF bytes: header, program headers at 64, segment contents (a pattern),
    then .shstrtab and the section header table."""
    phnum = len(d["phdrs"])
    body = bytearray(d["size"])
    for i in range(len(body)):
        body[i] = (i * 7 + 3) & 0xFF
    names = b"\0" + b"\0".join(n.encode() for n, *_ in d["sections"]) + b"\0.shstrtab\0"
    strtab_off = len(body)
    body += names
    while len(body) % 8:
        body.append(0)
    shoff = len(body)
    shdrs = [bytes(64)]
    name_off = 1
    for name, stype, off, size in d["sections"]:
        flags = 0x2 | (0x4 if name == ".text" else 0) | (0x1 if name in (".data", ".bss") else 0)
        shdrs.append(struct.pack("<IIQQQQIIQQ", name_off, stype, flags, (VA_BASE + off) & (2**64 - 1), off, size,
                                 0, 0, 16, 0))
        name_off += len(name) + 1
    shdrs.append(struct.pack("<IIQQQQIIQQ", name_off, SHT_STRTAB, 0, 0, strtab_off, len(names),
                             0, 0, 1, 0))
    shnum = len(shdrs)
    body += b"".join(shdrs)
    body += d["tail"]
    ph = b"".join(struct.pack("<IIQQQQQQ", p["type"], p["flags"], p["offset"], p["vaddr"],
                              p["paddr"], p["filesz"], p["memsz"], p["align"])
                  for p in d["phdrs"])
    body[64:64 + len(ph)] = ph  # the segments start at 0x1000: room for 70 headers
    eh = struct.pack("<16sHHIQQQIHHHHHH", bytes(d["ident"]), d["type"], d["machine"],
                     d["version"], d["entry"],
                     64 if d["phoff"] is None else d["phoff"],
                     shoff if d["shoff"] is None else d["shoff"], 0, d["ehsize"],
                     d["phentsize"], phnum if d["phnum"] is None else d["phnum"],
                     d["shentsize"], shnum if d["shnum"] is None else d["shnum"],
                     shnum - 1 if d["shstrndx"] is None else d["shstrndx"])
    body[0:64] = eh
    return bytes(body)


def variant(edit):
    d = base()
    edit(d)
    return render(d)


def setp(i, **fields):
    def edit(d):
        d["phdrs"][i].update(fields)
    return edit


def set_(**fields):
    def edit(d):
        d.update(fields)
    return edit


def ident(i, v):
    def edit(d):
        d["ident"][i] = v
    return edit


def many_loads(d):
    d["phdrs"] = [phdr(PT_LOAD, PF_R | (PF_X if i == 0 else 0), 0x1000 + i * 0x40,
                       TEXT_PADDR + i * 0x10000, 0x40, 0x40) for i in range(17)]


def good_minimal():
    return render(base())


# (file, expected ElfError name, bytes)
CASES = [
    ("empty_file.elf", "empty_file", lambda: b""),
    ("truncated_header.elf", "truncated_header", lambda: good_minimal()[:40]),
    ("bad_magic.elf", "bad_magic", lambda: variant(ident(1, ord("X")))),
    ("wrong_class.elf", "wrong_class", lambda: variant(ident(4, 1))),
    ("wrong_endianness.elf", "wrong_endianness", lambda: variant(ident(5, 2))),
    ("bad_ident_version.elf", "bad_ident_version", lambda: variant(ident(6, 0))),
    ("wrong_type.elf", "wrong_type", lambda: variant(set_(type=3))),
    ("wrong_machine.elf", "wrong_machine", lambda: variant(set_(machine=21))),
    ("bad_version.elf", "bad_version", lambda: variant(set_(version=2))),
    ("bad_ehsize.elf", "bad_ehsize", lambda: variant(set_(ehsize=52))),
    ("bad_phentsize.elf", "bad_phentsize", lambda: variant(set_(phentsize=32))),
    ("no_program_headers.elf", "no_program_headers", lambda: variant(set_(phnum=0))),
    ("too_many_program_headers.elf", "too_many_program_headers",
     lambda: variant(set_(phnum=65))),
    ("phdr_table_overflow.elf", "phdr_table_overflow",
     lambda: variant(set_(phoff=0xFFFFFFFFFFFFFFC0))),
    ("phdr_table_outside_file.elf", "phdr_table_outside_file",
     lambda: variant(set_(phoff=0x100000))),
    ("bad_shentsize.elf", "bad_shentsize", lambda: variant(set_(shentsize=40))),
    ("too_many_section_headers.elf", "too_many_section_headers",
     lambda: variant(set_(shnum=1025))),
    ("bad_section_table.elf", "bad_section_table", lambda: variant(set_(shoff=0))),
    ("shdr_table_overflow.elf", "shdr_table_overflow",
     lambda: variant(set_(shoff=0xFFFFFFFFFFFFFF00))),
    ("section_headers_outside_file.elf", "shdr_table_outside_file",
     lambda: variant(set_(shoff=0x10000))),
    ("bad_shstrndx.elf", "bad_shstrndx", lambda: variant(set_(shstrndx=9))),
    ("section_offset_overflow.elf", "section_offset_overflow",
     lambda: variant(lambda d: d["sections"].__setitem__(
         1, (".data", SHT_PROGBITS, 0xFFFFFFFFFFFFFF80, 0x100)))),
    ("section_outside_file.elf", "section_outside_file",
     lambda: variant(lambda d: d["sections"].__setitem__(
         1, (".data", SHT_PROGBITS, 0x2000, 0x100000)))),
    ("dynamic_image.elf", "dynamic_image",
     lambda: variant(lambda d: d["phdrs"].insert(0, phdr(PT_INTERP, PF_R, 0x1000, 0, 0x10,
                                                        0x10, 1, 0)))),
    ("too_many_segments.elf", "too_many_segments", lambda: variant(many_loads)),
    ("empty_segment.elf", "empty_segment", lambda: variant(setp(1, filesz=0, memsz=0))),
    ("bad_segment_alignment.elf", "bad_segment_alignment",
     lambda: variant(setp(1, align=0x3000))),
    ("segment_offset_overflow.elf", "segment_offset_overflow",
     lambda: variant(setp(1, offset=0xFFFFFFFFFFFFF000, filesz=0x2000, memsz=0x2000))),
    ("segment_beyond_file.elf", "segment_beyond_file",
     lambda: variant(setp(1, filesz=0x800, memsz=0x1000, offset=0x2000 + 0x100000 - 0x800))),
    ("filesz_exceeds_memsz.elf", "filesz_exceeds_memsz",
     lambda: variant(setp(1, filesz=0x100, memsz=0x80))),
    ("huge_memsz.elf", "segment_too_large", lambda: variant(setp(1, memsz=0x10000000000))),
    ("segment_address_overflow.elf", "segment_address_overflow",
     lambda: variant(setp(1, paddr=0xFFFFFFFFFFFFF000, vaddr=0xFFFFFFFFFFFFF000))),
    ("segment_outside_ram.elf", "segment_outside_ram",
     lambda: variant(setp(1, paddr=0x100000000000, vaddr=VA_BASE))),
    ("segment_in_reserved.elf", "segment_in_reserved",
     lambda: variant(setp(1, paddr=0x3F00000, vaddr=VA_BASE + 0x3F00000))),
    ("segments_overlap.elf", "segments_overlap",
     lambda: variant(setp(1, paddr=TEXT_PADDR + 0x100, vaddr=VA_BASE + TEXT_PADDR + 0x100))),
    ("segment_files_overlap.elf", "segment_files_overlap",
     lambda: variant(setp(1, offset=0x1100))),
    ("no_loadable_segment.elf", "no_loadable_segment",
     lambda: variant(lambda d: [p.update(type=PT_NOTE) for p in d["phdrs"]])),
    ("entry_in_data.elf", "entry_not_executable",
     lambda: variant(set_(entry=VA_BASE + DATA_PADDR))),
    ("entry_past_text.elf", "entry_not_executable",
     lambda: variant(set_(entry=VA_BASE + TEXT_PADDR + 0x200))),
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(os.path.join(out, "good"), exist_ok=True)
    os.makedirs(os.path.join(out, "malformed"), exist_ok=True)
    with open(os.path.join(out, "good", "minimal.elf"), "wb") as f:
        f.write(good_minimal())
    lines = []
    for name, reason, make in CASES:
        with open(os.path.join(out, "malformed", name), "wb") as f:
            f.write(make())
        lines.append(f"{name} {reason}\n")
    with open(os.path.join(out, "malformed", "EXPECTED"), "w") as f:
        f.write("# file  ElfError name (loader/elf_plan.h); written by ../make_malformed.py\n")
        f.writelines(lines)


if __name__ == "__main__":
    main()
