// What every byte of a secure image file is: a field of the ELF header, of a
// program or section header, the section name table, a loaded section's
// contents, the manifest's device tree or its zero padding, or file padding
// between them. The tamper matrix names each mutated byte with this map and
// chooses its expectations from it (docs/format.md, "Bytes not covered by
// signatures").
//
// Invariant: the regions are sorted by offset, do not overlap, and together
// cover [0, file size) exactly (map_image checks this before returning).
#pragma once

#include "base/error.hpp"
#include "format/image_reader.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace svmkit::tamper {

enum class RegionKind {
    elf_header,       // the ELF file header (one region per field)
    program_header,   // one region per field of each program header
    section_header,   // one region per field of each section header
    section_names,    // .shstrtab's contents
    section,          // a loaded section's contents (the manifest's tree included)
    manifest_padding, // zero bytes after the manifest's tree, up to its capacity
    file_padding,     // bytes of the file that belong to no header and no section
};
std::string_view region_kind_name(RegionKind k);

struct Region {
    RegionKind kind{};
    std::string name;    // "e_entry", "program header 2 p_align", ".kernel:initrd", ...
    std::string section; // the loaded section it belongs to (section, manifest_padding)
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
    [[nodiscard]] std::uint64_t end() const { return offset + size; }
};

class ImageMap {
  public:
    // `bytes` is the whole file `image` was read from.
    static Result<ImageMap> map(const format::SecureImage& image, std::span<const std::byte> bytes);

    [[nodiscard]] const std::vector<Region>& regions() const { return regions_; }
    // The region holding file offset `offset` (< file size).
    [[nodiscard]] const Region& at(std::uint64_t offset) const;
    [[nodiscard]] std::uint64_t file_size() const { return file_size_; }

  private:
    std::vector<Region> regions_;
    std::uint64_t file_size_ = 0;
};

} // namespace svmkit::tamper
