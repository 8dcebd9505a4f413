// The targets a secure image can be built for.
#pragma once

#include "base/error.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace svmkit::format {

enum class Arch {
    x86_64,  // the simulated platform on an x86-64 host
    ppc64le, // POWER, little-endian, ELF ABI v2
};

std::string_view arch_name(Arch arch); // "x86_64", "ppc64le": the manifest's spelling
// Accepts "host" (the ISA svmkit runs on), "x86_64" and "ppc64le".
Result<Arch> parse_arch(std::string_view name);
Arch host_arch();

std::uint16_t arch_elf_machine(Arch arch); // EM_X86_64, EM_PPC64
std::uint32_t arch_elf_flags(Arch arch);   // 0, 2 (ELF ABI v2)

// Guest virtual address = va_base + guest-physical address for code in the
// image (see guest/layout.h).
std::uint64_t arch_link_va_base(Arch arch);

} // namespace svmkit::format
