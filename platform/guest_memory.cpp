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
    if (size == 0 || size % kGuestPageSize != 0)
        return fail(ExitCode::usage, "guest memory size {} must be a non-zero multiple of 64 KiB",
                    size);
    GuestMemory m;
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
    m.size_ = size;
    m.pages_.assign(size / kGuestPageSize, PageState::normal);
    return m;
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : hv_fd_(std::move(o.hv_fd_)), secure_fd_(std::move(o.secure_fd_)), base_(o.base_),
      size_(o.size_), pages_(std::move(o.pages_)), remapped_first_(o.remapped_first_),
      remapped_end_(o.remapped_end_) {
    o.base_ = nullptr;
    o.size_ = 0;
}

GuestMemory::~GuestMemory() {
    if (base_ != nullptr)
        ::munmap(base_, size_);
}

std::uint64_t GuestMemory::count(PageState s) const {
    return static_cast<std::uint64_t>(std::count(pages_.begin(), pages_.end(), s));
}

Result<std::span<std::byte>> GuestMemory::range(std::uint64_t gpa, std::uint64_t len) {
    auto end = checked_add(gpa, len);
    if (!end || *end > size_)
        return fail(ExitCode::malformed,
                    "guest range [{:#x}, +{:#x}) is outside guest RAM ({:#x} bytes)", gpa, len,
                    size_);
    return std::span<std::byte>(base_ + gpa, len);
}

Result<void> GuestMemory::write(std::uint64_t gpa, std::span<const std::byte> data) {
    SVM_TRY(dst, range(gpa, data.size()));
    std::copy(data.begin(), data.end(), dst.begin());
    return {};
}

Result<void> GuestMemory::read(std::uint64_t gpa, std::span<std::byte> out) {
    SVM_TRY(src, range(gpa, out.size()));
    std::copy(src.begin(), src.end(), out.begin());
    return {};
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
        if (pages_[p] != PageState::normal)
            return fail(ExitCode::usage, "page {:#x} is not a normal page", p);
    return copy_between(fd, offset, hv_fd_.get(), gpa, len);
}

Result<std::uintptr_t> GuestMemory::host_address(std::uint64_t gpa) const {
    if (gpa >= size_)
        return fail(ExitCode::malformed, "guest address {:#x} is outside guest RAM", gpa);
    return reinterpret_cast<std::uintptr_t>(base_) + gpa;
}

Result<void> GuestMemory::check_pages(std::uint64_t pfn, std::uint64_t n) const {
    auto end = checked_add(pfn, n);
    if (n == 0 || !end || *end > pages_.size())
        return fail(ExitCode::malformed, "page range {:#x}+{} is outside guest RAM", pfn, n);
    return {};
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

Result<std::uint64_t> GuestMemory::secure_all() {
    for (PageState s : pages_)
        if (s != PageState::normal)
            return fail(ExitCode::usage, "guest memory is already secure");
    // Copy only what holds data: untouched memory is a hole in both backings.
    const int hv = hv_fd_.get();
    off_t pos = 0;
    const auto end = static_cast<off_t>(size_);
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
    SVM_CHECK(map_page_range(0, pages_.size(), secure_fd_.get()));
    SVM_CHECK(punch(hv, 0, size_, "hypervisor-visible"));
    std::fill(pages_.begin(), pages_.end(), PageState::secure);
    return pages_.size();
}

Result<void> GuestMemory::share(std::uint64_t pfn, std::uint64_t n) {
    SVM_CHECK(check_pages(pfn, n));
    for (std::uint64_t p = pfn; p < pfn + n; ++p)
        if (pages_[p] != PageState::secure)
            return fail(ExitCode::usage, "page {:#x} is not secure", p);
    // The hypervisor-visible range of a secure page is a hole: it reads as zero.
    SVM_CHECK(map_page_range(pfn, n, hv_fd_.get()));
    SVM_CHECK(punch(secure_fd_.get(), pfn * kGuestPageSize, n * kGuestPageSize, "secure"));
    std::fill_n(pages_.begin() + static_cast<std::ptrdiff_t>(pfn), n, PageState::shared);
    return {};
}

Result<void> GuestMemory::unshare(std::uint64_t pfn, std::uint64_t n) {
    SVM_CHECK(check_pages(pfn, n));
    for (std::uint64_t p = pfn; p < pfn + n; ++p)
        if (pages_[p] != PageState::shared)
            return fail(ExitCode::usage, "page {:#x} is not shared", p);
    const std::uint64_t off = pfn * kGuestPageSize;
    const std::uint64_t len = n * kGuestPageSize;
    SVM_CHECK(copy_out(secure_fd_.get(), base_, off, len));
    SVM_CHECK(map_page_range(pfn, n, secure_fd_.get()));
    SVM_CHECK(punch(hv_fd_.get(), off, len, "hypervisor-visible"));
    std::fill_n(pages_.begin() + static_cast<std::ptrdiff_t>(pfn), n, PageState::secure);
    return {};
}

} // namespace svmkit::platform
