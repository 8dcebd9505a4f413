// Platform load constraints (wrapper/load_constraints.hpp).
#include "wrapper/load_constraints.hpp"

#include "platform/machine.hpp"
#include "platform/platform_fdt.hpp"

#include <algorithm>

namespace svmkit::cli {

PlatformLoadLayout platform_load_layout(format::Arch arch, std::uint64_t memory_size) {
    PlatformLoadLayout out;
    loader::LoadConstraints& c = out.constraints;
    c.machine = format::arch_elf_machine(arch);
    c.ram_start = 0;
    c.ram_end = memory_size;
    c.max_segment_size = std::min(memory_size, kMaxPlannedSegment);
    auto reserve = [&](std::uint64_t start, std::uint64_t end, const char* name) {
        c.reserved[c.reserved_count++] = loader::AddressRange{start, end};
        out.reserved_names.emplace_back(name);
    };
    if (arch == format::Arch::ppc64le)
        reserve(0, 0x10000, "exception vectors");
    reserve(platform::kFirmwareFdtAddress,
            platform::kFirmwareFdtAddress + platform::kPlatformFdtMaxSize, "firmware FDT");
    reserve(platform::kGuestStackBase, platform::kGuestStackTop, "firmware stack");
    return out;
}

} // namespace svmkit::cli
