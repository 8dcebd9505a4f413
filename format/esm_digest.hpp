// The digests an ibm,esm blob carries (SHA-512), computed from the inputs of
// an image the way svm-tools' esm_digest does: the kernel's loadable image
// (what `objcopy -O binary -S vmlinux` gives, format/kernel_input.hpp) and its
// size, the initrd file, the command line without a NUL.
#pragma once

#include "base/error.hpp"
#include "format/arch.hpp"
#include "format/esm_blob.hpp"
#include "format/payload.hpp"

#include <optional>
#include <string>

namespace svmkit::format {

struct EsmDigestInputs {
    std::string kernel; // ELF vmlinux, or a raw image (taken as it is)
    Arch arch = host_arch();
    std::optional<std::string> initrd;
    std::string bootargs;
};

// Errors: those of reading the files and analyze_kernel; a loadable image
// of 4 GiB or more (kernel-size is 32 bits) is ExitCode::malformed.
Result<EsmDigests> compute_esm_digests(const EsmDigestInputs& in);

// The digests of payloads already analysed (svmkit build).
Result<EsmDigests> compute_esm_digests(const PayloadSource& kernel_image,
                                       const std::optional<PayloadSource>& initrd,
                                       const std::string& bootargs);

} // namespace svmkit::format
