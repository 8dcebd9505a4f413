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
        SVM_TRY(dst, memory.range(*at, s.size));
        format::PayloadSource src;
        src.label = image.path();
        src.file = image.file;
        src.size = s.size;
        src.extents = {format::Extent{s.offset, s.size, 0}};
        std::uint64_t done = 0;
        SVM_CHECK(
            format::stream_payload(src, [&](std::span<const std::byte> chunk) -> Result<void> {
                std::copy(chunk.begin(), chunk.end(),
                          dst.begin() + static_cast<std::ptrdiff_t>(done));
                done += chunk.size();
                return {};
            }));
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
