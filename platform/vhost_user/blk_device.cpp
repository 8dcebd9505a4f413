#include "platform/vhost_user/blk_device.hpp"

#include "base/checked.hpp"
#include "platform/vhost_user/virtio_blk.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace svmkit::vhost_user {

Result<BlockDisk> BlockDisk::open(const std::string& path, bool read_only) {
    BlockDisk d;
    d.path_ = path;
    d.read_only_ = read_only;
    d.fd_ = UniqueFd(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
    if (!d.fd_.valid())
        return fail(ExitCode::io, "{}: cannot open disk: {}", path, std::strerror(errno));
    struct stat st {};
    if (::fstat(d.fd_.get(), &st) != 0)
        return fail(ExitCode::io, "{}: cannot stat disk: {}", path, std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(ExitCode::usage, "{}: disk must be a regular file", path);
    d.sectors_ = static_cast<std::uint64_t>(st.st_size) / kSectorSize;
    return d;
}

void BlockDisk::count(std::uint32_t type, std::uint8_t status, std::uint64_t from_disk,
                      std::uint64_t to_disk) const {
    BlkCounters& c = counters_;
    ++c.requests;
    switch (type) {
    case kBlkTypeIn:
        ++c.reads;
        break;
    case kBlkTypeOut:
        ++c.writes;
        break;
    case kBlkTypeFlush:
        ++c.flushes;
        break;
    default:
        ++c.other;
        break;
    }
    if (status != kBlkStatusOk) {
        ++c.errors;
        return;
    }
    c.bytes_read += from_disk;
    c.bytes_written += to_disk;
}

namespace {

// A byte range [skip, skip+length) of the chain's readable (or writable)
// buffers, visited piece by piece.
template <typename F>
bool for_each_piece(const Chain& chain, bool writable, std::uint64_t skip, std::uint64_t length,
                    F&& fn) {
    for (const Segment& s : chain.segments) {
        if (s.device_writable != writable || length == 0)
            continue;
        if (skip >= s.len) {
            skip -= s.len;
            continue;
        }
        const std::uint64_t n = std::min<std::uint64_t>(s.len - skip, length);
        if (!fn(s.host + skip, static_cast<std::size_t>(n)))
            return false;
        skip = 0;
        length -= n;
    }
    return length == 0;
}

bool pread_all(int fd, std::byte* into, std::size_t n, std::uint64_t offset) {
    while (n > 0) {
        ssize_t r = ::pread(fd, into, n, static_cast<off_t>(offset));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        into += r;
        n -= static_cast<std::size_t>(r);
        offset += static_cast<std::uint64_t>(r);
    }
    return true;
}

bool pwrite_all(int fd, const std::byte* from, std::size_t n, std::uint64_t offset) {
    while (n > 0) {
        ssize_t r = ::pwrite(fd, from, n, static_cast<off_t>(offset));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        from += r;
        n -= static_cast<std::size_t>(r);
        offset += static_cast<std::uint64_t>(r);
    }
    return true;
}

// Checks that `bytes` of data starting at `sector` are whole sectors inside the disk.
bool in_disk(const BlockDisk& disk, std::uint64_t sector, std::uint64_t bytes) {
    if (bytes % kSectorSize != 0)
        return false;
    auto end = checked_add(sector, bytes / kSectorSize);
    return end && *end <= disk.sectors();
}

} // namespace

Result<std::uint32_t> serve_blk_request(const Chain& chain, const BlockDisk& disk) {
    if (chain.writable_bytes == 0)
        return fail(ExitCode::malformed, "request at head {} has no status byte", chain.head);
    const std::uint64_t data_out = chain.writable_bytes - 1; // writable bytes before the status
    std::byte* status = nullptr;
    for_each_piece(chain, true, data_out, 1, [&](std::byte* p, std::size_t) {
        status = p;
        return true;
    });
    // Counted as the header says once it is read; a chain too short for
    // one counts as "other".
    std::uint32_t type = ~0u;
    std::uint64_t to_disk = 0; // what a write put on the disk
    auto finish = [&](std::uint8_t s, std::uint64_t written) -> std::uint32_t {
        __atomic_store_n(reinterpret_cast<std::uint8_t*>(status), s, __ATOMIC_RELAXED);
        disk.count(type, s, type == kBlkTypeIn ? written : 0, to_disk);
        return static_cast<std::uint32_t>(written + 1);
    };

    std::byte header[kBlkHeaderSize];
    std::size_t got = 0;
    if (chain.readable_bytes < kBlkHeaderSize)
        return finish(kBlkStatusIoErr, 0);
    for_each_piece(chain, false, 0, kBlkHeaderSize, [&](std::byte* p, std::size_t n) {
        std::memcpy(header + got, p, n);
        got += n;
        return true;
    });
    type = load_le32(header);
    const std::uint64_t sector = load_le64(header + 8);

    switch (type) {
    case kBlkTypeIn: {
        // The used length (data + status) must fit its 32-bit field.
        if (data_out >= UINT32_MAX || !in_disk(disk, sector, data_out))
            return finish(kBlkStatusIoErr, 0);
        std::uint64_t offset = sector * kSectorSize;
        bool ok = for_each_piece(chain, true, 0, data_out, [&](std::byte* p, std::size_t n) {
            if (!pread_all(disk.fd(), p, n, offset))
                return false;
            offset += n;
            return true;
        });
        return ok ? finish(kBlkStatusOk, data_out) : finish(kBlkStatusIoErr, 0);
    }
    case kBlkTypeOut: {
        const std::uint64_t data_in = chain.readable_bytes - kBlkHeaderSize;
        if (disk.read_only() || !in_disk(disk, sector, data_in))
            return finish(kBlkStatusIoErr, 0);
        std::uint64_t offset = sector * kSectorSize;
        bool ok =
            for_each_piece(chain, false, kBlkHeaderSize, data_in, [&](std::byte* p, std::size_t n) {
                if (!pwrite_all(disk.fd(), p, n, offset))
                    return false;
                offset += n;
                return true;
            });
        to_disk = ok ? data_in : 0;
        return finish(ok ? kBlkStatusOk : kBlkStatusIoErr, 0);
    }
    case kBlkTypeFlush:
        if (disk.read_only())
            return finish(kBlkStatusOk, 0);
        return finish(::fdatasync(disk.fd()) == 0 ? kBlkStatusOk : kBlkStatusIoErr, 0);
    case kBlkTypeGetId: {
        char id[kBlkIdBytes] = {};
        // The id is 20 bytes, NUL-padded, not NUL-terminated when it fills them.
        std::copy_n(kBlkDeviceId, std::min(sizeof id, std::strlen(kBlkDeviceId)), id);
        const std::uint64_t n = std::min<std::uint64_t>(data_out, kBlkIdBytes);
        std::size_t done = 0;
        for_each_piece(chain, true, 0, n, [&](std::byte* p, std::size_t len) {
            std::memcpy(p, id + done, len);
            done += len;
            return true;
        });
        return finish(kBlkStatusOk, n);
    }
    default:
        return finish(kBlkStatusUnsupported, 0);
    }
}

} // namespace svmkit::vhost_user
