#include "platform/qemu/shared_ram.hpp"

#include "base/file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace svmkit::platform::qemu {

Result<SharedGuestRam> SharedGuestRam::create(const std::string& path, std::uint64_t size) {
    SVM_CHECK(check_size(size));
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid())
        return fail(ExitCode::io, "{}: cannot create guest RAM: {}", path, std::strerror(errno));
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
        return fail(ExitCode::io, "{}: sizing guest RAM to {} bytes: {}", path, size,
                    std::strerror(errno));
    void* at = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (at == MAP_FAILED)
        return fail(ExitCode::io, "{}: cannot map guest RAM: {}", path, std::strerror(errno));
    return SharedGuestRam(size, static_cast<std::byte*>(at));
}

// Only the GuestRam part of `o` is moved first; base_ is still there to take.
// NOLINTBEGIN(bugprone-use-after-move)
SharedGuestRam::SharedGuestRam(SharedGuestRam&& o) noexcept
    : GuestRam(std::move(o)), base_(o.base_) {
    o.base_ = nullptr;
}
// NOLINTEND(bugprone-use-after-move)

SharedGuestRam::~SharedGuestRam() {
    if (base_ != nullptr)
        ::munmap(base_, size());
}

Result<void> SharedGuestRam::move_to_shared(std::uint64_t pfn, std::uint64_t count) {
    std::memset(base_ + pfn * kGuestPageSize, 0, count * kGuestPageSize);
    return {};
}

} // namespace svmkit::platform::qemu
