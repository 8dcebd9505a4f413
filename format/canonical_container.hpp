// The one byte form of a secure image's ELF container.
//
// Signatures cover the manifest and, through its digests, every loaded
// section's contents; nothing signs the ELF headers, the section name table
// or the padding between sections. So the reader accepts only the exact bytes
// svmkit's writer puts there for the sections it found (the same rule the
// manifest decoder applies to the device tree): a file that differs from
// this form anywhere outside the sections' contents is refused, and the file
// as a whole is a function of what is signed. docs/format.md, "Bytes not
// covered by a signature".
//
// The form (format/image_writer.cpp writes it through libelf):
//   ELF header (ELFOSABI_NONE, ABI version 0, zero e_ident padding, e_flags of
//   the arch, program headers right after it); format version 1: one PT_LOAD
//   per loaded section in address order (R or R+X), version 2: one R+X
//   PT_LOAD from the image base to the end of the last section (p_align 64
//   KiB, file offset mirroring the address); the sections' contents; .shstrtab right after the last
//   section
//   ("\0", the section names in order, ".shstrtab\0"); the section headers at
//   the next 8-byte boundary (null, the loaded sections, .shstrtab), ending
//   the file. Every other byte is zero.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "format/arch.hpp"

#include <cstddef>
#include <cstdint>
#include <elf.h>
#include <span>
#include <string>
#include <vector>

namespace svmkit::format {

struct ContainerSection {
    std::string name;
    std::uint64_t address = 0; // guest-physical
    std::uint64_t size = 0;
    bool executable = false;
};

struct CanonicalContainer {
    std::uint64_t file_size = 0;
    // Placed byte strings; every byte of the file outside them and outside
    // the sections' contents is zero.
    struct Piece {
        std::uint64_t offset = 0;
        std::vector<std::byte> bytes;
    };
    std::vector<Piece> pieces; // headers, name table, section headers (in file order)
};

// A PT_LOAD as svmkit writes it: [address, address + size) read-only (and
// executable when asked), its file offset mirroring its address, 64 KiB
// aligned. Format version 1 has one per section, version 2 one over the
// whole image (manifest.hpp).
Elf64_Phdr image_load_segment(Arch arch, std::uint64_t image_base, std::uint64_t address,
                              std::uint64_t size, bool executable);

// `sections` in address order.
CanonicalContainer canonical_container(Arch arch, std::uint32_t format_version,
                                       std::uint64_t image_base, std::uint64_t entry,
                                       std::span<const ContainerSection> sections);

// Compares every byte of `file` outside the sections' contents with the
// canonical form; the error (ExitCode::malformed) names the first field or
// the padding that differs.
Result<void> check_canonical_container(const InputFile& file, Arch arch,
                                       std::uint32_t format_version, std::uint64_t image_base,
                                       std::uint64_t entry,
                                       std::span<const ContainerSection> sections);

} // namespace svmkit::format
