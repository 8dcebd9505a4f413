#include "platform/vhost_user/memory_table.hpp"

#include "base/checked.hpp"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace svmkit::vhost_user {

MemoryTable& MemoryTable::operator=(MemoryTable&& other) noexcept {
    if (this != &other) {
        unmap_all();
        regions_ = std::move(other.regions_);
        other.regions_.clear();
    }
    return *this;
}

MemoryTable::~MemoryTable() {
    unmap_all();
}

void MemoryTable::unmap_all() {
    for (Region& r : regions_)
        if (r.map_base != nullptr)
            ::munmap(r.map_base, r.map_len);
    regions_.clear();
}

Result<MemoryTable> MemoryTable::map(std::span<const RegionDesc> regions,
                                     std::vector<UniqueFd> fds) {
    if (regions.size() != fds.size())
        return fail(ExitCode::malformed, "{} regions but {} file descriptors", regions.size(),
                    fds.size());
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    MemoryTable table;
    for (std::size_t i = 0; i < regions.size(); ++i) {
        const RegionDesc& d = regions[i];
        struct stat st {};
        if (::fstat(fds[i].get(), &st) != 0)
            return fail(ExitCode::io, "region {}: fstat: {}", i, std::strerror(errno));
        if (!S_ISREG(st.st_mode))
            return fail(ExitCode::malformed, "region {}: fd is not a regular file or memfd", i);
        const auto file_size = static_cast<std::uint64_t>(st.st_size);
        auto end = checked_add(d.mmap_offset, d.size);
        if (!end || *end > file_size)
            return fail(
                ExitCode::malformed,
                "region {}: file range {:#x}+{:#x} is beyond the end of its {:#x}-byte file", i,
                d.mmap_offset, d.size, file_size);
        const std::uint64_t start = d.mmap_offset & ~(page - 1);
        const std::uint64_t lead = d.mmap_offset - start;
        const std::uint64_t len = lead + d.size;
        if (len > SIZE_MAX)
            return fail(ExitCode::malformed, "region {}: {:#x} bytes cannot be mapped", i, len);
        void* p = ::mmap(nullptr, static_cast<std::size_t>(len), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_NORESERVE, fds[i].get(), static_cast<off_t>(start));
        if (p == MAP_FAILED)
            return fail(ExitCode::io, "region {}: mmap of {:#x} bytes at {:#x}: {}", i, len, start,
                        std::strerror(errno));
        Region r;
        r.desc = d;
        r.map_base = static_cast<std::byte*>(p);
        r.map_len = static_cast<std::size_t>(len);
        r.host = r.map_base + lead;
        r.fd = std::move(fds[i]);
        r.file_size = file_size;
        table.regions_.push_back(std::move(r));
    }
    return table;
}

std::optional<std::byte*> MemoryTable::guest_range(std::uint64_t gpa, std::uint64_t len) const {
    auto end = checked_add(gpa, len);
    if (!end)
        return std::nullopt;
    for (const Region& r : regions_) {
        const std::uint64_t rend = r.desc.guest_address + r.desc.size; // checked at parse
        if (gpa >= r.desc.guest_address && *end <= rend)
            return r.host + (gpa - r.desc.guest_address);
    }
    return std::nullopt;
}

std::optional<std::byte*> MemoryTable::user_range(std::uint64_t uva, std::uint64_t len) const {
    auto end = checked_add(uva, len);
    if (!end)
        return std::nullopt;
    for (const Region& r : regions_) {
        const std::uint64_t rend = r.desc.user_address + r.desc.size; // checked at parse
        if (uva >= r.desc.user_address && *end <= rend)
            return r.host + (uva - r.desc.user_address);
    }
    return std::nullopt;
}

} // namespace svmkit::vhost_user
