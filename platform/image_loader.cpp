#include "platform/image_loader.hpp"

#include "base/checked.hpp"
#include "format/verify.hpp"

#include <algorithm>

namespace svmkit::platform {

Result<PlacedImage> place_image(GuestMemory& memory, const format::SecureImage& image,
                                std::uint64_t kbase) {
    const format::Manifest& m = image.manifest;
    if (kbase % kGuestPageSize != 0)
        return fail(ExitCode::usage, "image load address {:#x} is not 64 KiB aligned", kbase);
    PlacedImage placed;
    placed.kbase = kbase;
    placed.entry = kbase + (m.entry - m.image_base);
    auto place = [&](const format::ImageSection& s) -> Result<std::uint64_t> {
        auto at = checked_add(kbase, s.address - m.image_base);
        if (!at)
            return fail(ExitCode::malformed, "{}: section {} overflows guest memory", image.path(),
                        s.name);
        // Copied inside the kernel straight into guest RAM's backing, as
        // firmware DMA would: no page faults, no pass through user memory.
        SVM_CHECK(memory.write_from_file(*at, image.file->fd(), s.offset, s.size));
        placed.end = std::max(placed.end, *at + s.size);
        return *at;
    };
    for (const format::ImageSection& s : image.sections)
        SVM_CHECK(place(s));
    SVM_TRY(mstart, place(image.manifest_section));
    placed.manifest_start = mstart;
    placed.manifest_end = mstart + image.manifest_section.size;
    return placed;
}

} // namespace svmkit::platform
