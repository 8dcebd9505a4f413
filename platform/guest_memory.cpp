#include "platform/guest_memory.hpp"

#include "base/checked.hpp"
#include "guest/layout.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

namespace svmkit::platform {

namespace {

constexpr int kGuestProt = PROT_READ | PROT_WRITE | PROT_EXEC;

Result<UniqueFd> make_memfd(const char* name, std::uint64_t size) {
    UniqueFd fd(::memfd_create(name, MFD_CLOEXEC));
    if (!fd.valid())
        return fail(ExitCode::io, "memfd_create({}): {}", name, std::strerror(errno));
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
        return fail(ExitCode::io, "sizing {} to {} bytes: {}", name, size, std::strerror(errno));
    return fd;
}

Result<void> punch(int fd, std::uint64_t offset, std::uint64_t len, const char* what) {
    if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(len)) != 0)
        return fail(ExitCode::io, "wiping {} backing: {}", what, std::strerror(errno));
    return {};
}

// Copies [offset, offset+len) of the guest's current view into `fd` at the same offset.
Result<void> copy_out(int fd, const std::byte* view, std::uint64_t offset, std::uint64_t len) {
    std::uint64_t done = 0;
    while (done < len) {
        ssize_t n =
            ::pwrite(fd, view + offset + done, len - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(ExitCode::io, "copying guest memory: {}", std::strerror(errno));
        done += static_cast<std::uint64_t>(n);
    }
    return {};
}

} // namespace

Result<GuestMemory> GuestMemory::create(std::uint64_t size) {
    SVM_CHECK(check_size(size));
    GuestMemory m(size);
    SVM_TRY(hv, make_memfd("svmkit-guest-ram", size));
    SVM_TRY(sec, make_memfd("svmkit-secure-ram", size));
    // The fixed guest base is an address by definition, not a pointer we derived.
    void* want = reinterpret_cast<void*>( // NOLINT(performance-no-int-to-ptr)
        static_cast<std::uintptr_t>(SVMKIT_SIM_GUEST_VA_BASE));
    void* got = ::mmap(want, size, kGuestProt, MAP_SHARED | MAP_FIXED_NOREPLACE, hv.get(), 0);
    if (got == MAP_FAILED)
        return fail(ExitCode::io, "cannot map guest RAM at {:#x}: {}", SVMKIT_SIM_GUEST_VA_BASE,
                    std::strerror(errno));
    if (got != want) {
        ::munmap(got, size);
        return fail(ExitCode::io, "guest RAM landed at {} instead of {:#x}", got,
                    SVMKIT_SIM_GUEST_VA_BASE);
    }
    m.hv_fd_ = std::move(hv);
    m.secure_fd_ = std::move(sec);
    m.base_ = static_cast<std::byte*>(got);
    return m;
}

// Only the GuestRam part of `o` is moved first; its own members are still
// there to take.
// NOLINTBEGIN(bugprone-use-after-move)
GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : GuestRam(std::move(o)), hv_fd_(std::move(o.hv_fd_)), secure_fd_(std::move(o.secure_fd_)),
      base_(o.base_), remapped_first_(o.remapped_first_), remapped_end_(o.remapped_end_) {
    o.base_ = nullptr;
}
// NOLINTEND(bugprone-use-after-move)

GuestMemory::~GuestMemory() {
    if (base_ != nullptr)
        ::munmap(base_, size());
}

namespace {

// Copies [from_off, from_off+len) of one file to another at `to_off`, inside
// the kernel (copy_file_range; between memfds it falls back to splice).
Result<void> copy_between(int from, std::uint64_t from_off, int to, std::uint64_t to_off,
                          std::uint64_t len) {
    auto in = static_cast<loff_t>(from_off);
    auto out = static_cast<loff_t>(to_off);
    while (len > 0) {
        ssize_t n = ::copy_file_range(from, &in, to, &out, len, 0);
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
            // Across filesystems (an image file into a memfd) copy_file_range
            // refuses; sendfile does the same in-kernel copy at `to`'s position.
            if (::lseek(to, out, SEEK_SET) != out)
                return fail(ExitCode::io, "seeking guest memory: {}", std::strerror(errno));
            n = ::sendfile(to, from, &in, len);
            if (n > 0)
                out += n;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(ExitCode::io, "copying into guest memory: {}",
                        n == 0 ? "source ended early" : std::strerror(errno));
        len -= static_cast<std::uint64_t>(n);
    }
    return {};
}

} // namespace

Result<void> GuestMemory::write_from_file(std::uint64_t gpa, int fd, std::uint64_t offset,
                                          std::uint64_t len) {
    SVM_CHECK(range(gpa, len));
    for (std::uint64_t p = gpa / kGuestPageSize; p * kGuestPageSize < gpa + len; ++p)
        if (state(p) != PageState::normal)
            return fail(ExitCode::usage, "page {:#x} is not a normal page", p);
    return copy_between(fd, offset, hv_fd_.get(), gpa, len);
}

Result<std::uintptr_t> GuestMemory::host_address(std::uint64_t gpa) const {
    if (gpa >= size())
        return fail(ExitCode::malformed, "guest address {:#x} is outside guest RAM", gpa);
    return reinterpret_cast<std::uintptr_t>(base_) + gpa;
}

Result<void> GuestMemory::map_page_range(std::uint64_t pfn, std::uint64_t n, int fd) {
    const std::uint64_t off = pfn * kGuestPageSize;
    const std::uint64_t len = n * kGuestPageSize;
    void* at = base_ + off;
    if (::mmap(at, len, kGuestProt, MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(off)) != at)
        return fail(ExitCode::io, "remapping guest pages {:#x}+{}: {}", pfn, n,
                    std::strerror(errno));
    if (remapped_first_ == remapped_end_) {
        remapped_first_ = pfn;
        remapped_end_ = pfn + n;
    } else {
        remapped_first_ = std::min(remapped_first_, pfn);
        remapped_end_ = std::max(remapped_end_, pfn + n);
    }
    return {};
}

std::pair<std::uint64_t, std::uint64_t> GuestMemory::take_remapped() {
    const std::pair range{remapped_first_, remapped_end_};
    remapped_first_ = remapped_end_ = 0;
    return range;
}

Result<void> GuestMemory::move_all_to_secure() {
    // Copy only what holds data: untouched memory is a hole in both backings.
    const int hv = hv_fd_.get();
    off_t pos = 0;
    const auto end = static_cast<off_t>(size());
    while (pos < end) {
        off_t data = ::lseek(hv, pos, SEEK_DATA);
        if (data < 0)
            break; // ENXIO: no data after pos
        off_t hole = ::lseek(hv, data, SEEK_HOLE);
        if (hole < 0)
            hole = end;
        SVM_CHECK(copy_between(hv, static_cast<std::uint64_t>(data), secure_fd_.get(),
                               static_cast<std::uint64_t>(data),
                               static_cast<std::uint64_t>(hole - data)));
        pos = hole;
    }
    SVM_CHECK(map_page_range(0, page_count(), secure_fd_.get()));
    return punch(hv, 0, size(), "hypervisor-visible");
}

Result<void> GuestMemory::move_to_shared(std::uint64_t pfn, std::uint64_t n) {
    // The hypervisor-visible range of a secure page is a hole: it reads as zero.
    SVM_CHECK(map_page_range(pfn, n, hv_fd_.get()));
    return punch(secure_fd_.get(), pfn * kGuestPageSize, n * kGuestPageSize, "secure");
}

Result<void> GuestMemory::move_to_secure(std::uint64_t pfn, std::uint64_t n) {
    const std::uint64_t off = pfn * kGuestPageSize;
    const std::uint64_t len = n * kGuestPageSize;
    SVM_CHECK(copy_out(secure_fd_.get(), base_, off, len));
    SVM_CHECK(map_page_range(pfn, n, secure_fd_.get()));
    return punch(hv_fd_.get(), off, len, "hypervisor-visible");
}

} // namespace svmkit::platform
