// What the simulated machine's firmware gives the boot loader
// (docs/loader-boot.md, "What the firmware gives the loader"), in one place:
// Machine::load_normal does it, and the commands that predict the loader's
// answer (`svmkit load --plan`, `svmkit mkdisk`) compute the loader's
// constraints from it with the loader's own boot_constraints()
// (loader/boot_layout.h).
#pragma once

#include "base/error.hpp"
#include "loader/boot_layout.h"
#include "platform/guest_program.hpp"
#include "platform/platform_fdt.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace svmkit::platform {

// The firmware's FDT and stack: what the loader's own segments must avoid.
std::array<AvoidRange, 2> firmware_ranges();

// Where the firmware will put the boot loader `svmkit boot` runs
// (default_boot_loader_path()), checked as when it places it.
Result<PlacedProgram> boot_loader_extent(std::uint64_t memory_size);

struct NormalBootLayout {
    PlacedProgram program;            // the loader, where its ELF puts it
    PlatformFdtSpec fdt;              // the device tree written at kFirmwareFdtAddress
    std::optional<Reservation> kexec; // kexec-style: the image's bytes
};

// The loader at `program` in `memory_size` bytes of RAM, with a kexec image of
// kexec_size bytes (nullopt: grub-style, from a disk) named `image` in
// messages. Its /memreserve/ table: the FDT (kPlatformFdtMaxSize), the stack,
// the loader, and the kexec image's buffer to the top of RAM. An image that
// does not fit above the loader is ExitCode::usage.
Result<NormalBootLayout> normal_boot_layout(std::uint64_t memory_size, const PlacedProgram& program,
                                            const std::string& image,
                                            std::optional<std::uint64_t> kexec_size);

// The constraints the loader will plan with under `layout` (the device tree
// built as the firmware builds it, for its size).
Result<loader::BootConstraints> normal_boot_constraints(const NormalBootLayout& layout);

} // namespace svmkit::platform
