// The loader's constraints (loader/elf_plan.h) for the platforms svmkit knows,
// as `svmkit load --plan` and `svmkit mkdisk` check images against them
// (docs/loader.md, "Memory layout the plan uses").
#pragma once

#include "format/arch.hpp"
#include "loader/elf_plan.h"

#include <cstdint>
#include <string>
#include <vector>

namespace svmkit::cli {

// Largest single segment the CLI plans (an uncompressed kernel or an initrd).
inline constexpr std::uint64_t kMaxPlannedSegment = 512ull << 20;

struct PlatformLoadLayout {
    loader::LoadConstraints constraints{};
    std::vector<std::string> reserved_names; // one per constraints.reserved entry
};

// Guest RAM [0, memory_size); reserved: what the firmware keeps below the image
// base on the simulated machine (its FDT and the boot stack), and on ppc64le
// also the first 64 KiB (exception vectors; kexec copies the image's first
// 0x100 bytes to 0).
PlatformLoadLayout platform_load_layout(format::Arch arch, std::uint64_t memory_size);

} // namespace svmkit::cli
