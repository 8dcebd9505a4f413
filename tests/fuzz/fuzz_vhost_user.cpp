// Fuzz target: svmkit-vhost-blk's handling of what a front end sends (every
// message through parse_request and the session: memory tables, rings,
// config) and of what a guest puts in its rings (processed after every
// message, as if kicked).
//
// Input layout:
//   [u8 hostile mode (mod the number of modes)]
//   [u16 n][n bytes: guest RAM contents (a 64 KiB memfd; the rest zero)]
//   then messages, until the input ends:
//   [u8 fd count][12-byte header][header.size payload bytes (fewer if the
//    input ends)]
// The fds a message carries are the guest-RAM memfd for SET_MEM_TABLE and an
// eventfd otherwise (dup'ed, so the session may own and close them).
#include "platform/vhost_user/session.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

namespace {

using namespace svmkit;
using namespace svmkit::vhost_user;

constexpr std::size_t kRamSize = 64 * 1024;
constexpr unsigned kModes = 10;

struct Fixture {
    UniqueFd ram;
    UniqueFd event;
    UniqueFd disk_memfd;
    std::optional<BlockDisk> disk;

    Fixture() {
        ram = UniqueFd(::memfd_create("fuzz-vhost-ram", MFD_CLOEXEC));
        event = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        disk_memfd = UniqueFd(::memfd_create("fuzz-vhost-disk", MFD_CLOEXEC));
        if (!ram.valid() || !event.valid() || !disk_memfd.valid() ||
            ::ftruncate(disk_memfd.get(), 64 * 1024) != 0)
            std::abort();
        auto d = BlockDisk::open("/proc/self/fd/" + std::to_string(disk_memfd.get()), false);
        if (!d)
            std::abort();
        disk.emplace(std::move(*d));
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Fixture& fx = fixture();
    if (size < 3)
        return 0;
    const auto mode = static_cast<HostileMode>(data[0] % kModes);
    std::size_t ram_len = data[1] | (std::size_t{data[2]} << 8);
    data += 3;
    size -= 3;
    ram_len = std::min({ram_len, size, kRamSize});
    // Fresh guest RAM for every input.
    if (::ftruncate(fx.ram.get(), 0) != 0 ||
        ::ftruncate(fx.ram.get(), static_cast<off_t>(kRamSize)) != 0 ||
        ::pwrite(fx.ram.get(), data, ram_len, 0) != static_cast<ssize_t>(ram_len))
        std::abort();
    data += ram_len;
    size -= ram_len;

    Session session(*fx.disk, BackendOptions{mode, 1}, nullptr);
    while (size >= 1 + kHeaderSize) {
        const std::size_t fd_count = std::min<std::size_t>(data[0], kMaxFds);
        Message m;
        m.header = Header{load_le32(reinterpret_cast<const std::byte*>(data + 1)),
                          load_le32(reinterpret_cast<const std::byte*>(data + 5)),
                          load_le32(reinterpret_cast<const std::byte*>(data + 9))};
        data += 1 + kHeaderSize;
        size -= 1 + kHeaderSize;
        // What Channel::receive guarantees before a message reaches the session.
        if (!check_header(m.header, false))
            break;
        const std::size_t n = std::min<std::size_t>(m.header.size, size);
        m.header.size = static_cast<std::uint32_t>(n);
        auto bytes = reinterpret_cast<const std::byte*>(data);
        m.payload.assign(bytes, bytes + n);
        data += n;
        size -= n;
        const bool table = m.header.request == static_cast<std::uint32_t>(Request::set_mem_table);
        for (std::size_t i = 0; i < fd_count; ++i)
            m.fds.emplace_back(::dup(table ? fx.ram.get() : fx.event.get()));
        Response r = session.handle(std::move(m));
        if (r.close)
            break;
        for (std::size_t q = 0; q < session.queue_count(); ++q) {
            session.process_queue(q);
            if (session.storm_active())
                session.storm_tick();
        }
    }
    std::uint64_t drain = 0;
    (void)!::read(fx.event.get(), &drain, sizeof drain);
    return 0;
}
