// Builds secure-image containers from loaded sections, laid out exactly as
// svmkit's writer lays them out (docs/format.md, format/image_writer.cpp), so
// that sections of different signed images can be mixed into files whose ELF
// headers are consistent with their contents: the attacker's best effort,
// where only the signature and the digests stand in the way.
//
// Invariant (checked by the tamper matrix before use): composing the sections
// of a signed image gives back that image byte for byte.
#pragma once

#include "format/arch.hpp"
#include "format/image_reader.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace svmkit::tamper {

struct LoadedSection {
    std::string name;
    std::uint64_t address = 0; // guest-physical
    std::vector<std::byte> bytes;
    bool executable = false;
};

struct ComposedImage {
    format::Arch arch = format::Arch::x86_64;
    std::uint64_t image_base = 0;
    std::uint64_t entry = 0;             // guest-physical
    std::vector<LoadedSection> sections; // in address order
};

// The loaded sections (the manifest's included) of `image`, whose file is `bytes`.
ComposedImage decompose(const format::SecureImage& image, std::span<const std::byte> bytes);

// Replaces the section called `name` by `with` (keeping its name).
void replace_section(ComposedImage& image, const std::string& name, const LoadedSection& with);

// Moves every section after the manifest to the next 64 KiB boundary after the
// one before it, as the writer places payloads (sections keep their order).
void relayout(ComposedImage& image);

// The ELF file: header, one PT_LOAD per section, the sections at
// 0x10000 + (address - image base), .shstrtab after the last one, then the
// section headers, 8-byte aligned. Gaps are zero.
std::vector<std::byte> compose(const ComposedImage& image);

} // namespace svmkit::tamper
