// Placing a secure image into guest memory the way firmware does for
// `-kernel`: every loaded section at kbase + (its address - image base).
#pragma once

#include "base/error.hpp"
#include "format/image_reader.hpp"
#include "platform/guest_memory.hpp"

namespace svmkit::platform {

struct PlacedImage {
    std::uint64_t kbase = 0;          // where the image base landed
    std::uint64_t entry = 0;          // guest-physical entry point
    std::uint64_t manifest_start = 0; // the .kernel:esm_blob section in guest memory
    std::uint64_t manifest_end = 0;
    std::uint64_t end = 0; // first byte after the image
};

// The image must already have passed format::open_image (strict validation).
Result<PlacedImage> place_image(GuestMemory& memory, const format::SecureImage& image,
                                std::uint64_t kbase);

} // namespace svmkit::platform
