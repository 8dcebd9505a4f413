// Turning a user's kernel file into the kernel component: an ELF vmlinux is
// reduced to its loadable image (what `objcopy -O binary -S` gives), a raw
// image is taken as it is with the load address the user names.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "format/arch.hpp"
#include "format/manifest.hpp"
#include "format/payload.hpp"

#include <memory>
#include <optional>

namespace svmkit::format {

struct KernelInput {
    bool is_elf = false;
    PayloadSource image; // the loadable image, unpacked
    KernelPlacement placement;
};

inline constexpr std::size_t kMaxKernelSegments = 64;
inline constexpr std::size_t kMaxKernelSections = 4096;

// Errors: the empty file, a non-ELF file without `load_address`, a 32-bit or
// big-endian ELF, a machine other than `arch`, truncated or overlapping
// segments all give ExitCode::malformed (a missing load address for a raw
// image gives ExitCode::usage). Messages name the file.
Result<KernelInput> analyze_kernel(const std::shared_ptr<const InputFile>& file, Arch arch,
                                   std::optional<std::uint64_t> load_address);

} // namespace svmkit::format
