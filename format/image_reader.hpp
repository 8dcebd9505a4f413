// Reading a secure image that svmkit did not necessarily build: the whole
// container and manifest are validated before anything is used.
//
// Checks, each with its own message (ExitCode::malformed unless noted):
//   ELF identity (magic, 64-bit, little-endian, version, executable, machine),
//   header sizes, program/section header tables inside the file, counts
//   limited, the section name table inside the file with terminated names,
//   only known sections and each at most once, required sections present,
//   every loaded section read-only, inside the file, inside exactly one
//   PT_LOAD at the matching address and offset, no writable or overlapping
//   segments, entry inside the code, the manifest agreeing with the
//   container (every component <-> its section, addresses, sizes, arch,
//   entry), and the container in the one byte form of the manifest's format
//   version (canonical_container.hpp).
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "format/manifest.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::format {

struct ImageSection {
    std::string name;
    std::uint64_t offset = 0; // in the file
    std::uint64_t size = 0;
    std::uint64_t address = 0; // guest-physical
    bool executable = false;
};

struct ImageSegment {
    std::uint64_t offset = 0, filesz = 0, memsz = 0, paddr = 0, vaddr = 0;
    std::uint32_t flags = 0;
};

struct SecureImage {
    std::shared_ptr<const InputFile> file;
    Arch arch = Arch::x86_64;
    std::uint64_t entry_vaddr = 0;
    std::vector<ImageSegment> segments;
    std::vector<ImageSection> sections; // loaded sections, in address order
    ImageSection manifest_section;
    std::vector<std::byte> manifest_blob; // the device tree, without padding
    Manifest manifest;

    [[nodiscard]] const std::string& path() const { return file->path(); }
    [[nodiscard]] const ImageSection* section(std::string_view name) const;
    [[nodiscard]] const ImageSection* section(ComponentKind kind) const;
};

Result<SecureImage> open_image(const std::string& path);

} // namespace svmkit::format
