#include "platform/guest_ram.hpp"

#include "base/checked.hpp"

#include <algorithm>

namespace svmkit::platform {

namespace {

std::string_view state_name(PageState s) {
    switch (s) {
    case PageState::normal:
        return "normal";
    case PageState::secure:
        return "secure";
    case PageState::shared:
        return "shared";
    }
    return "?";
}

} // namespace

Result<void> GuestRam::check_size(std::uint64_t size) {
    if (size == 0 || size % kGuestPageSize != 0)
        return fail(ExitCode::usage, "guest memory size {} must be a non-zero multiple of 64 KiB",
                    size);
    return {};
}

std::uint64_t GuestRam::count(PageState s) const {
    return static_cast<std::uint64_t>(std::count(pages_.begin(), pages_.end(), s));
}

Result<std::span<std::byte>> GuestRam::range(std::uint64_t gpa, std::uint64_t len) {
    auto end = checked_add(gpa, len);
    if (!end || *end > size())
        return fail(ExitCode::malformed,
                    "guest range [{:#x}, +{:#x}) is outside guest RAM ({:#x} bytes)", gpa, len,
                    size());
    return std::span<std::byte>(view() + gpa, len);
}

Result<void> GuestRam::write(std::uint64_t gpa, std::span<const std::byte> data) {
    SVM_TRY(dst, range(gpa, data.size()));
    std::copy(data.begin(), data.end(), dst.begin());
    return {};
}

Result<void> GuestRam::read(std::uint64_t gpa, std::span<std::byte> out) {
    SVM_TRY(src, range(gpa, out.size()));
    std::copy(src.begin(), src.end(), out.begin());
    return {};
}

Result<void> GuestRam::require(std::uint64_t pfn, std::uint64_t n, PageState from) const {
    auto end = checked_add(pfn, n);
    if (n == 0 || !end || *end > pages_.size())
        return fail(ExitCode::malformed, "page range {:#x}+{} is outside guest RAM", pfn, n);
    for (std::uint64_t p = pfn; p < pfn + n; ++p)
        if (pages_[p] != from)
            return fail(ExitCode::usage, "page {:#x} is not {}", p, state_name(from));
    return {};
}

void GuestRam::set(std::uint64_t pfn, std::uint64_t n, PageState to) {
    std::fill_n(pages_.begin() + static_cast<std::ptrdiff_t>(pfn), n, to);
}

Result<std::uint64_t> GuestRam::secure_all() {
    if (count(PageState::normal) != pages_.size())
        return fail(ExitCode::usage, "guest memory is already secure");
    SVM_CHECK(move_all_to_secure());
    set(0, pages_.size(), PageState::secure);
    return pages_.size();
}

Result<void> GuestRam::share(std::uint64_t pfn, std::uint64_t n) {
    SVM_CHECK(require(pfn, n, PageState::secure));
    SVM_CHECK(move_to_shared(pfn, n));
    set(pfn, n, PageState::shared);
    return {};
}

Result<void> GuestRam::unshare(std::uint64_t pfn, std::uint64_t n) {
    SVM_CHECK(require(pfn, n, PageState::shared));
    SVM_CHECK(move_to_secure(pfn, n));
    set(pfn, n, PageState::secure);
    return {};
}

} // namespace svmkit::platform
