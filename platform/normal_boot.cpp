// The firmware's layout for the boot loader (platform/normal_boot.hpp).
#include "platform/normal_boot.hpp"

#include "guest/layout.h"
#include "platform/machine.hpp"

#include <algorithm>

namespace svmkit::platform {

namespace {

loader::AddressRange address_range(const Reservation& r) {
    return loader::AddressRange{r.base, r.base + r.size};
}

} // namespace

std::array<AvoidRange, 2> firmware_ranges() {
    return {AvoidRange{kFirmwareFdtAddress, kPlatformFdtMaxSize, "the firmware's device tree"},
            AvoidRange{kGuestStackBase, kGuestStackTop - kGuestStackBase, "the firmware's stack"}};
}

Result<PlacedProgram> boot_loader_extent(std::uint64_t memory_size) {
    SVM_TRY(path, default_boot_loader_path());
    return guest_program_extent(memory_size, path, firmware_ranges());
}

Result<NormalBootLayout> normal_boot_layout(std::uint64_t memory_size, const PlacedProgram& program,
                                            const std::string& image,
                                            std::optional<std::uint64_t> kexec_size) {
    NormalBootLayout layout;
    layout.program = program;
    PlatformFdtSpec& fdt = layout.fdt;
    fdt.memory_size = memory_size;
    fdt.reserved = {{kFirmwareFdtAddress, kPlatformFdtMaxSize},
                    {kGuestStackBase, kGuestStackTop - kGuestStackBase},
                    {program.start, program.end - program.start}};
    if (kexec_size) {
        // Untrusted input for the loader, which validates it: the firmware
        // copies its bytes and nothing else, at the top of RAM.
        const std::uint64_t floor = std::max<std::uint64_t>(program.end, SVMKIT_IMAGE_BASE);
        if (floor > memory_size || *kexec_size > memory_size - floor)
            return fail(ExitCode::usage,
                        "{}: {} bytes do not fit in guest RAM above the loader; use a larger "
                        "--memory",
                        image, *kexec_size);
        const std::uint64_t base = loader::kexec_buffer_base(memory_size, *kexec_size);
        layout.kexec = Reservation{base, *kexec_size};
        fdt.initrd = layout.kexec;
        fdt.reserved.push_back(Reservation{base, memory_size - base});
    }
    return layout;
}

Result<loader::BootConstraints> normal_boot_constraints(const NormalBootLayout& layout) {
    SVM_TRY(fdt, build_platform_fdt(layout.fdt));
    std::vector<loader::AddressRange> memreserve;
    for (const Reservation& r : layout.fdt.reserved)
        memreserve.push_back(address_range(r));
    const loader::BootEnvironment env{
        loader::kMachineX86_64,
        loader::AddressRange{0, layout.fdt.memory_size},
        loader::AddressRange{layout.program.start, layout.program.end},
        loader::AddressRange{kFirmwareFdtAddress, kFirmwareFdtAddress + fdt.size()},
        kGuestStackTop - 1, // the loader is entered with its stack at the top
        layout.kexec ? address_range(*layout.kexec) : loader::AddressRange{0, 0},
        memreserve.data(),
        static_cast<std::uint32_t>(memreserve.size()),
        nullptr,
        0};
    loader::BootConstraints bc{};
    if (!loader::boot_constraints(env, &bc))
        return fail(ExitCode::usage, "the boot loader's layout has more than {} reserved ranges",
                    loader::kMaxReserved);
    return bc;
}

} // namespace svmkit::platform
