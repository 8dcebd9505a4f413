// The boot stub as svmkit embeds it: a freestanding ELF per target, whose two
// loadable segments become the image's .text and .rodata.
#pragma once

#include "base/error.hpp"
#include "format/arch.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace svmkit::format {

// Invariants (checked by parse_stub_elf, which every build runs):
//   - exactly one R+X PT_LOAD (text) starting at the link address of the
//     target (SVMKIT_IMAGE_BASE translated to its link VA), holding the entry
//     point at its first byte; at most one R PT_LOAD (rodata) above it;
//   - no writable segment, no PT_DYNAMIC/PT_INTERP, no relocation section;
//   - __stub_end is the first 64 KiB boundary at or after the end of every segment.
struct StubImage {
    Arch arch = Arch::x86_64;
    std::uint64_t base = 0;           // guest-physical address of text (== image base)
    std::vector<std::byte> text;      // code, placed at base
    std::uint64_t rodata_address = 0; // guest-physical; 0 when there is no rodata
    std::vector<std::byte> rodata;
    std::uint64_t end = 0; // guest-physical __stub_end: where .kernel:esm_blob goes
};

Result<StubImage> parse_stub_elf(std::span<const std::byte> elf, Arch arch,
                                 const std::string& where);

// The stub built into this svmkit for `arch`.
std::span<const std::byte> embedded_stub_elf(Arch arch);
Result<StubImage> embedded_stub(Arch arch);

} // namespace svmkit::format
