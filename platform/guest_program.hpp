// Booting a NORMAL guest program: the simulated machine's firmware loads a
// freestanding ELF that svmkit itself builds (the boot loader, samples/
// boot_loader/) at its own guest-physical addresses and enters it non-secure,
// kexec-style, the way firmware boots a first kernel or grub. The program is
// project-built and trusted like firmware, but its headers are still checked
// before anything is copied: every PT_LOAD inside the file and inside guest
// RAM, clear of the firmware's FDT and stack and of the secure-image base
// (SVMKIT_IMAGE_BASE, where the loader will place the image it loads).
#pragma once

#include "base/error.hpp"
#include "platform/guest_memory.hpp"

#include <cstdint>
#include <span>
#include <string>

namespace svmkit::platform {

struct PlacedProgram {
    std::string path;
    std::uint64_t start = 0; // lowest guest-physical address of a PT_LOAD
    std::uint64_t end = 0;   // first byte after the highest one (memsz included)
    std::uint64_t entry = 0; // guest-physical entry point
};

// The boot loader among svmkit's helper programs (platform/helper_program.hpp;
// $SVMKIT_BOOT_LOADER overrides); an error when it is missing.
Result<std::string> default_boot_loader_path();

// Places the ELF's PT_LOAD segments at their p_paddr (memsz beyond filesz
// zeroed). `avoid` ranges ([base, base+size)) must stay untouched.
struct AvoidRange {
    std::uint64_t base = 0, size = 0;
    const char* name = "firmware memory"; // what lies there, for messages
};
// Where place_guest_program() would put the program, with the same checks,
// writing nothing (the commands that predict the boot loader's answer).
Result<PlacedProgram> guest_program_extent(std::uint64_t memory_size, const std::string& path,
                                           std::span<const AvoidRange> avoid);
Result<PlacedProgram> place_guest_program(GuestMemory& memory, const std::string& path,
                                          std::span<const AvoidRange> avoid);

} // namespace svmkit::platform
