// svmkit-vhost-blk driven through svmkit's vhost-user front end by the test
// virtio-blk driver: negotiation, config, I/O verified against the disk file,
// memory-table replacement, invalid chains, disconnects, SIGTERM.
#include "vhost_user_test_driver.hpp"

#include <csignal>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

using namespace svmkit;
using namespace svmkit::test;
using namespace svmkit::test::vhost;

namespace {

std::vector<std::byte> disk_bytes(const BackendUnderTest& b, std::uint64_t offset, std::size_t n) {
    auto all = read_bytes(b.disk);
    REQUIRE(all.size() >= offset + n);
    return {all.begin() + static_cast<std::ptrdiff_t>(offset),
            all.begin() + static_cast<std::ptrdiff_t>(offset + n)};
}

std::vector<std::byte> slice(const std::vector<std::byte>& v, std::uint64_t offset, std::size_t n) {
    return {v.begin() + static_cast<std::ptrdiff_t>(offset),
            v.begin() + static_cast<std::ptrdiff_t>(offset + n)};
}

// Whether `holds` becomes true within 2 s (the back end runs on its own).
bool soon(const std::function<bool()>& holds) {
    for (int wait_ms = 0; wait_ms < 2000; ++wait_ms) {
        if (holds())
            return true;
        ::usleep(1000);
    }
    return false;
}

std::uint16_t used_flags(const GuestRam& ram) {
    return __atomic_load_n(reinterpret_cast<const std::uint16_t*>(ram.at(kUsedGpa)),
                           __ATOMIC_ACQUIRE);
}

} // namespace

TEST_CASE("vhost-blk: features, protocol features and config space") {
    BackendUnderTest b;
    b.start_ours();
    Frontend f = b.connect();
    REQUIRE(f.set_owner().has_value());
    auto n = f.negotiate(kVirtioVersion1 | kVirtioAccessPlatform | kBlkFlush, kVirtioVersion1);
    REQUIRE_MESSAGE(n.has_value(), error_of(n));
    CHECK((n->offered & kVirtioAccessPlatform) != 0);
    CHECK((n->offered & kFeatureProtocolFeatures) != 0);
    CHECK((n->offered & kVirtioIndirectDesc) == 0); // hardened drivers never use them
    CHECK((n->offered & kBlkReadOnly) == 0);
    CHECK(n->features ==
          (kVirtioVersion1 | kVirtioAccessPlatform | kBlkFlush | kFeatureProtocolFeatures));
    CHECK(n->has_protocol(kProtocolReplyAck | kProtocolConfig | kProtocolMq));

    auto queues = f.get_queue_num();
    REQUIRE(queues.has_value());
    CHECK(*queues == 1);
    auto config = f.get_config(0, kBlkConfigSize);
    REQUIRE_MESSAGE(config.has_value(), error_of(config));
    CHECK(load_le64(config->data() + kBlkConfigCapacity) == kDiskSize / kSectorSize);
    CHECK(load_le32(config->data() + kBlkConfigBlkSize) == 512);
    CHECK(load_le16(config->data() + kBlkConfigNumQueues) == 1);
    // A partial read at an offset returns exactly the bytes asked for.
    auto capacity_high = f.get_config(4, 4);
    REQUIRE(capacity_high.has_value());
    CHECK(capacity_high->size() == 4);
    CHECK(load_le32(capacity_high->data()) == 0);
    // The config space is read-only: refused with an ack of 1, connection kept.
    std::byte wce[1] = {std::byte{1}};
    check_error(f.set_config(32, wce), ExitCode::io, "SET_CONFIG: back end refused (1)");
    CHECK(f.get_features().has_value());
    // Acknowledging a feature the back end did not offer is refused.
    check_error(f.set_features(kVirtioVersion1 | kVirtioIndirectDesc), ExitCode::io,
                "SET_FEATURES: back end refused");
    check_error(f.set_features(kBlkFlush | kFeatureProtocolFeatures), ExitCode::io,
                "SET_FEATURES: back end refused"); // no VERSION_1
    CHECK(b.alive());
}

TEST_CASE("vhost-blk: read-only disks offer VIRTIO_BLK_F_RO and refuse writes") {
    BackendUnderTest b;
    b.start_ours("none", true);
    Frontend f = b.connect();
    GuestRam ram;
    TestBlkDriver d(f, ram);
    MemoryRegion table[] = {ram.whole()};
    REQUIRE(d.start(table).has_value());
    CHECK((f.negotiated().offered & kBlkReadOnly) != 0);
    auto r = d.read(0, 4096);
    REQUIRE(r.has_value());
    CHECK(*r == slice(b.pattern, 0, 4096));
    check_error(d.write(0, filled(512, 0x42)), ExitCode::io, "write: device status 1");
    CHECK(disk_bytes(b, 0, 512) == slice(b.pattern, 0, 512));
}

TEST_CASE("vhost-blk: read, write, flush and get-id reach the disk file, and kicks stay enabled") {
    StartedBackend s;
    BackendUnderTest& b = s.backend;
    GuestRam& ram = s.ram;
    TestBlkDriver& d = s.driver;

    auto r = d.read(3, 8192);
    REQUIRE_MESSAGE(r.has_value(), error_of(r) << "\n" << b.backend_log());
    CHECK(*r == slice(b.pattern, 3 * 512, 8192));
    auto data = random_bytes(16384, 99);
    REQUIRE(d.write(100, data).has_value());
    REQUIRE(d.flush().has_value());
    CHECK(disk_bytes(b, 100 * 512, data.size()) == data);
    auto back = d.read(100, 16384);
    REQUIRE(back.has_value());
    CHECK(*back == data);
    auto id = d.get_id();
    REQUIRE(id.has_value());
    CHECK(*id == "svmkit-vhost-blk");

    // Requests the device must refuse get an error status, not a broken ring.
    check_error(d.read(kDiskSize / 512 - 1, 1024), ExitCode::io, "read: device status 1");
    check_error(d.read(0, 100), ExitCode::io, "read: device status 1");     // not whole sectors
    check_error(d.read(~0ull, 512), ExitCode::io, "read: device status 1"); // sector overflow
    check_error(d.write(kDiskSize / 512, filled(512, 1)), ExitCode::io, "write: device status 1");
    CHECK_FALSE(d.broken().has_value());
    CHECK(d.read(0, 512).has_value());
    CHECK(d.spurious_interrupts() == 0);

    // The device sets VIRTQ_USED_F_NO_NOTIFY while it serves the ring and
    // clears it before it sleeps: left set, a driver honouring it would never
    // kick again and its next request would never be served. (It notifies
    // per request, so the flag may still be set when the driver sees the
    // completion; it must be clear soon after.)
    for (int i = 0; i < 50; ++i) {
        auto got = d.read(static_cast<std::uint64_t>(i), 4096);
        REQUIRE_MESSAGE(got.has_value(), error_of(got) << "\n" << b.backend_log());
        CHECK(*got == slice(b.pattern, static_cast<std::uint64_t>(i) * 512, 4096));
        REQUIRE(soon([&] { return used_flags(ram) == 0; }));
    }
}

TEST_CASE("vhost-blk: EVENT_IDX: avail_event published before it sleeps, used_event honoured") {
    StartedBackend s(kVirtioVersion1 | kVirtioAccessPlatform | kBlkFlush | kVirtioEventIdx);
    BackendUnderTest& b = s.backend;
    Frontend& f = s.frontend;
    GuestRam& ram = s.ram;
    TestBlkDriver& d = s.driver;
    CHECK((f.negotiated().offered & kVirtioEventIdx) != 0);
    CHECK((f.negotiated().features & kVirtioEventIdx) != 0);

    // used_event asks for each next completion: each is signalled (a device
    // ignoring used_event after the first would leave the driver waiting).
    // Before it sleeps the device asks for a kick at the next chain.
    for (int i = 0; i < 20; ++i) {
        auto got = d.read(static_cast<std::uint64_t>(i), 4096);
        REQUIRE_MESSAGE(got.has_value(), error_of(got) << "\n" << b.backend_log());
        CHECK(*got == slice(b.pattern, static_cast<std::uint64_t>(i) * 512, 4096));
        REQUIRE(soon([&] { return d.avail_event() == d.avail_idx(); }));
        CHECK(used_flags(ram) == 0); // the flags are not the hint with EVENT_IDX
    }
    CHECK(d.spurious_interrupts() == 0);

    // used_event half the index space away: completions, no signal.
    drain_eventfd(d.call_fd());
    d.set_used_event(static_cast<std::uint16_t>(d.used_idx_seen() + 0x8000));
    d.wait_by_polling(true);
    for (int i = 0; i < 5; ++i) {
        auto got = d.read(static_cast<std::uint64_t>(i) * 8, 4096);
        REQUIRE_MESSAGE(got.has_value(), error_of(got) << "\n" << b.backend_log());
        CHECK(*got == slice(b.pattern, static_cast<std::uint64_t>(i) * 8 * 512, 4096));
    }
    CHECK_FALSE(wait_readable(d.call_fd(), 50));
    CHECK_FALSE(d.broken().has_value());
}

TEST_CASE("vhost-blk: --stats counts what was served, written when it stops") {
    BackendUnderTest b;
    const std::string stats = b.dir.file("stats.json");
    b.start_ours("none", false, stats);
    {
        Frontend f = b.connect();
        GuestRam ram;
        TestBlkDriver d(f, ram);
        MemoryRegion table[] = {ram.whole()};
        auto started = d.start(table);
        REQUIRE_MESSAGE(started.has_value(), error_of(started));
        REQUIRE(d.read(3, 8192).has_value());
        REQUIRE(d.read(7, 512).has_value());
        REQUIRE(d.write(100, random_bytes(16384, 5)).has_value());
        REQUIRE(d.flush().has_value());
        REQUIRE(d.get_id().has_value());
        check_error(d.read(kDiskSize / 512 - 1, 1024), ExitCode::io, "read: device status 1");
        check_error(d.write(kDiskSize / 512, filled(512, 1)), ExitCode::io,
                    "write: device status 1");
    }
    CHECK_FALSE(std::filesystem::exists(stats)); // only when it stops
    CHECK(b.process->stop() == 0);
    const auto bytes = read_bytes(stats);
    const auto j = nlohmann::json::parse(bytes.begin(), bytes.end());
    CHECK(j["requests"] == 7);
    CHECK(j["reads"] == 3);
    CHECK(j["writes"] == 2);
    CHECK(j["flushes"] == 1);
    CHECK(j["other"] == 1);
    CHECK(j["errors"] == 2);
    CHECK(j["bytes_read"] == 8192 + 512);
    CHECK(j["bytes_written"] == 16384);
}

TEST_CASE("vhost-blk: a new memory table replaces the old one") {
    BackendUnderTest b;
    b.start_ours();
    Frontend f = b.connect();
    GuestRam ram;
    TestBlkDriver d(f, ram);
    MemoryRegion whole[] = {ram.whole()};
    REQUIRE(d.start(whole).has_value());
    REQUIRE(d.read(0, 512).has_value());

    // After ESM the hypervisor sends a table with the shared window only; the
    // region now starts at a non-zero offset of the memfd.
    MemoryRegion shared[] = {ram.window(0, kSharedWindow)};
    auto replaced = f.set_mem_table(shared);
    REQUIRE_MESSAGE(replaced.has_value(), error_of(replaced));
    auto r = d.read(8, 4096);
    REQUIRE(r.has_value());
    CHECK(*r == slice(b.pattern, 8 * 512, 4096));

    // Two regions, the second at an offset, both live.
    MemoryRegion split[] = {ram.window(0, 0x100000), ram.window(0x100000, kRamSize - 0x100000)};
    REQUIRE(f.set_mem_table(split).has_value());
    auto r2 = d.read(16, 4096);
    REQUIRE(r2.has_value());
    CHECK(*r2 == slice(b.pattern, 16 * 512, 4096));

    // A table that would leave the running rings outside is refused; the old
    // table stays in force.
    MemoryRegion no_rings[] = {ram.window(0x100000, 0x100000)};
    check_error(f.set_mem_table(no_rings), ExitCode::io, "SET_MEM_TABLE: back end refused (1)");
    CHECK(d.read(24, 512).has_value());
    CHECK(b.backend_log().find("new table leaves ring 0") != std::string::npos);
}

TEST_CASE("vhost-blk: rings must lie inside the memory table, aligned") {
    BackendUnderTest b;
    b.start_ours();
    GuestRam ram;
    Frontend f = b.connect();
    REQUIRE(f.set_owner().has_value());
    REQUIRE(f.negotiate(kVirtioVersion1, kVirtioVersion1).has_value());
    MemoryRegion shared[] = {ram.window(0, kSharedWindow)};
    REQUIRE(f.set_mem_table(shared).has_value());
    REQUIRE(f.set_vring_num(0, kQueueSize).has_value());
    auto addr = [&](std::uint64_t desc, std::uint64_t avail, std::uint64_t used) {
        return VringAddr{
            0, 0, ram.user_address(desc), ram.user_address(used), ram.user_address(avail), 0};
    };
    check_error(f.set_vring_addr(addr(kDescGpa, kAvailGpa, kSharedWindow)), ExitCode::io,
                "SET_VRING_ADDR: back end refused (1)");
    // The used ring would end just past the region.
    check_error(f.set_vring_addr(addr(kDescGpa, kAvailGpa, kSharedWindow - 8)), ExitCode::io,
                "SET_VRING_ADDR: back end refused (1)");
    check_error(f.set_vring_addr(addr(kDescGpa + 8, kAvailGpa, kUsedGpa)), ExitCode::io,
                "SET_VRING_ADDR: back end refused (1)");
    check_error(f.set_vring_addr(addr(kDescGpa, kAvailGpa + 1, kUsedGpa)), ExitCode::io,
                "SET_VRING_ADDR: back end refused (1)");
    check_error(f.set_vring_addr(addr(kDescGpa, kAvailGpa, kUsedGpa + 2)), ExitCode::io,
                "SET_VRING_ADDR: back end refused (1)");
    CHECK(f.set_vring_addr(addr(kDescGpa, kAvailGpa, kUsedGpa)).has_value());
    const std::string log = b.backend_log();
    CHECK(log.find("used ring at") != std::string::npos);
    CHECK(log.find("descriptor table at") != std::string::npos);
    CHECK(log.find("is not 16-byte aligned") != std::string::npos);
    CHECK(log.find("is not 2-byte aligned") != std::string::npos);
    CHECK(log.find("is not 4-byte aligned") != std::string::npos);
    // Starting a ring before SET_FEATURES, or changing a running one, is refused.
    UniqueFd kick = make_eventfd();
    REQUIRE(f.set_vring_kick(0, kick.get()).has_value());
    check_error(f.set_vring_num(0, 8), ExitCode::io, "SET_VRING_NUM: back end refused (1)");
    CHECK(b.backend_log().find("ring 0 is running") != std::string::npos);
    REQUIRE(f.get_vring_base(0).has_value());
    CHECK(f.set_vring_num(0, 8).has_value());
}

TEST_CASE("vhost-blk: a ring cannot start before SET_FEATURES") {
    BackendUnderTest b;
    b.start_ours();
    Frontend f = b.connect();
    REQUIRE(f.set_owner().has_value());
    UniqueFd kick = make_eventfd();
    // No REPLY_ACK yet: the refusal closes the connection.
    REQUIRE(f.set_vring_kick(0, kick.get()).has_value());
    // (closed, or reset because our request was still unread)
    check_error(f.get_features(), ExitCode::io, "GET_FEATURES: ");
    CHECK(b.backend_log().find("SET_FEATURES must come before a ring starts") != std::string::npos);
}

TEST_CASE("vhost-blk: a chain outside the memory table breaks only that ring") {
    BackendUnderTest b;
    b.start_ours();
    GuestRam ram;
    {
        Frontend f = b.connect();
        TestBlkDriver d(f, ram);
        MemoryRegion shared[] = {ram.window(0, kSharedWindow)};
        REQUIRE(d.start(shared).has_value());
        // A data buffer in memory the guest did not share (outside the table).
        const std::uint64_t slot = kBufferGpa;
        store_le32(ram.at(slot), kBlkTypeIn);
        store_le64(ram.at(slot + 8), 0);
        const Buffer chain[] = {
            {slot, 16, false}, {kSharedWindow + 0x1000, 512, true}, {slot + 64, 1, true}};
        check_error(d.submit(chain, 300), ExitCode::io, "no completion");
        CHECK(wait_readable(d.err_fd(), 2000)); // the back end reported the broken ring
        CHECK(b.backend_log().find("is not inside the memory table") != std::string::npos);
        // The ring stays stopped, the connection and the process stay up.
        auto features = f.get_features();
        CHECK(features.has_value());
        // Restarting the ring (GET_VRING_BASE, then SET_VRING_*) recovers it.
        auto base = f.get_vring_base(0);
        REQUIRE(base.has_value());
        CHECK(*base == 0); // the broken chain was not consumed
        TestBlkDriver d2(f, ram);
        REQUIRE(d2.start_queue().has_value());
        auto r = d2.read(0, 512);
        REQUIRE_MESSAGE(r.has_value(), error_of(r));
    }
    CHECK(b.alive());
}

TEST_CASE("vhost-blk: guest-written rings that loop or point anywhere do not crash it") {
    BackendUnderTest b;
    b.start_ours();
    GuestRam ram;
    struct Case {
        const char* what;
        std::function<void(std::byte* desc, std::byte* avail)> corrupt;
        const char* logged;
    };
    const std::vector<Case> cases = {
        {"descriptor loop",
         [](std::byte* desc, std::byte*) {
             for (int i = 0; i < 2; ++i) {
                 store_le64(desc + 16 * i, kBufferGpa);
                 store_le32(desc + 16 * i + 8, 16);
                 store_le16(desc + 16 * i + 12, kDescFlagNext);
                 store_le16(desc + 16 * i + 14, static_cast<std::uint16_t>(1 - i));
             }
         },
         "longer than the queue"},
        {"next out of range",
         [](std::byte* desc, std::byte*) {
             store_le64(desc, kBufferGpa);
             store_le32(desc + 8, 16);
             store_le16(desc + 12, kDescFlagNext);
             store_le16(desc + 14, 999);
         },
         "links to 999"},
        {"head out of range", [](std::byte*, std::byte* avail) { store_le16(avail + 4, 4096); },
         "names descriptor 4096"},
        {"indirect descriptor",
         [](std::byte* desc, std::byte*) {
             store_le64(desc, kBufferGpa);
             store_le32(desc + 8, 16);
             store_le16(desc + 12, kDescFlagIndirect);
         },
         "is indirect"},
        {"length overflowing the address space",
         [](std::byte* desc, std::byte*) {
             store_le64(desc, ~0ull - 8);
             store_le32(desc + 8, 0xffffffff);
             store_le16(desc + 12, kDescFlagWrite);
         },
         "is not inside the memory table"},
        {"readable after writable",
         [](std::byte* desc, std::byte*) {
             store_le64(desc, kBufferGpa);
             store_le32(desc + 8, 16);
             store_le16(desc + 12, kDescFlagNext | kDescFlagWrite);
             store_le16(desc + 14, 1);
             store_le64(desc + 16, kBufferGpa + 64);
             store_le32(desc + 24, 1);
             store_le16(desc + 28, 0);
         },
         "device-readable after device-writable"},
        {"no status byte",
         [](std::byte* desc, std::byte*) {
             store_le64(desc, kBufferGpa);
             store_le32(desc + 8, 16);
             store_le16(desc + 12, 0);
         },
         "has no status byte"},
        {"avail idx far ahead of the device",
         [](std::byte* desc, std::byte* avail) {
             store_le64(desc, kBufferGpa);
             store_le32(desc + 8, 16);
             store_le16(avail + 2, 1000);
         },
         "entries ahead"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.what);
        Frontend f = b.connect();
        TestBlkDriver d(f, ram);
        MemoryRegion table[] = {ram.whole()};
        REQUIRE(d.start(table).has_value());
        std::byte* desc = ram.at(kDescGpa);
        std::byte* avail = ram.at(kAvailGpa);
        std::memset(desc, 0, kDescSize * kQueueSize);
        store_le16(avail + 4, 0);
        store_le16(avail + 2, 1);
        c.corrupt(desc, avail);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        const std::uint64_t one = 1;
        // Kick by hand: the driver's own submit would rewrite the descriptors.
        REQUIRE(f.get_vring_base(0).has_value());
        UniqueFd kick = make_eventfd();
        QueueSetup q{kQueueSize,
                     ram.user_address(kDescGpa),
                     ram.user_address(kAvailGpa),
                     ram.user_address(kUsedGpa),
                     0,
                     kick.get(),
                     d.call_fd(),
                     d.err_fd()};
        REQUIRE(f.start_queue(0, q).has_value());
        REQUIRE(::write(kick.get(), &one, sizeof one) == sizeof one);
        CHECK(wait_readable(d.err_fd(), 5000));
        CHECK(b.backend_log().find(c.logged) != std::string::npos);
        CHECK(b.alive());
    }
    CHECK(b.alive());
}

TEST_CASE("vhost-blk: survives front ends that disconnect at any point") {
    BackendUnderTest b;
    b.start_ours();
    GuestRam ram;
    for (int stage = 0; stage < 4; ++stage) {
        CAPTURE(stage);
        Frontend f = b.connect();
        TestBlkDriver d(f, ram);
        if (stage >= 1)
            REQUIRE(f.set_owner().has_value());
        if (stage >= 2)
            REQUIRE(f.negotiate(kVirtioVersion1, kVirtioVersion1).has_value());
        if (stage >= 3) {
            MemoryRegion table[] = {ram.whole()};
            REQUIRE(f.set_mem_table(table).has_value());
            REQUIRE(d.start_queue().has_value());
            REQUIRE(d.read(0, 512).has_value());
        }
        // `f` goes away here: the connection closes mid-session.
    }
    // Half a message, then gone.
    {
        Frontend f = b.connect();
        auto header =
            encode_header({static_cast<std::uint32_t>(Request::set_features), kVersion, 8});
        header.push_back(std::byte{1});
        REQUIRE(f.channel().send_raw(header).has_value());
    }
    Frontend f = b.connect();
    TestBlkDriver d(f, ram);
    MemoryRegion table[] = {ram.whole()};
    REQUIRE(d.start(table).has_value());
    auto r = d.read(1, 512);
    REQUIRE(r.has_value());
    CHECK(*r == slice(b.pattern, 512, 512));
    CHECK(b.backend_log().find("truncated") != std::string::npos);
}

TEST_CASE("vhost-blk: one front end at a time, the next is served after it leaves") {
    BackendUnderTest b;
    b.start_ours();
    GuestRam ram;
    auto first = std::make_unique<Frontend>(b.connect());
    REQUIRE(first->set_owner().has_value());
    REQUIRE(first->get_features().has_value());
    // The second connects (backlog) but gets no answer while the first is served.
    ConnectOptions quick;
    quick.reply_timeout = std::chrono::milliseconds(300);
    auto second = Frontend::connect(b.socket, quick);
    REQUIRE(second.has_value());
    check_error(second->get_features(), ExitCode::io, "no message within 300 ms");
    // Once the first leaves, the second's queued request is answered.
    first.reset();
    auto reply = second->channel().receive(true, std::chrono::milliseconds(5000));
    REQUIRE(reply.has_value());
    REQUIRE(reply->has_value());
    CHECK((*reply)->header.request == static_cast<std::uint32_t>(Request::get_features));
    CHECK(second->get_features().has_value());
    CHECK(b.alive());
}

TEST_CASE("vhost-blk: SIGTERM stops it cleanly and removes its socket") {
    BackendUnderTest b;
    b.start_ours();
    Frontend f = b.connect();
    REQUIRE(f.set_owner().has_value());
    REQUIRE(std::filesystem::exists(b.socket));
    const int status = b.process->stop();
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_FALSE(std::filesystem::exists(b.socket));
}

TEST_CASE("vhost-blk: bad command lines and disks are refused with svmkit exit codes") {
    BackendUnderTest b;
    auto run = [&](const std::vector<std::string>& argv) {
        auto p = DaemonProcess::spawn(argv, b.log);
        REQUIRE(p.has_value());
        for (int i = 0; i < 500 && p->running(); ++i)
            ::usleep(10000);
        REQUIRE_FALSE(p->running());
        return WEXITSTATUS(*p->wait_status());
    };
    CHECK(run({SVMKIT_VHOST_BLK, "--socket", b.socket}) == 106); // CLI11: required option
    CHECK(run(vhost_blk_command(SVMKIT_VHOST_BLK, b.socket, b.disk, false, "bogus")) == 2);
    auto log = read_bytes(b.log);
    CHECK(std::string(reinterpret_cast<const char*>(log.data()), log.size())
              .find("unknown hostile mode 'bogus'") != std::string::npos);
    CHECK(run(vhost_blk_command(SVMKIT_VHOST_BLK, b.socket, b.dir.file("missing.img"), false)) ==
          4);
    // A non-socket file at the socket path is never replaced.
    write_bytes(b.dir.file("not-a-socket"), to_bytes("keep me"));
    CHECK(run(vhost_blk_command(SVMKIT_VHOST_BLK, b.dir.file("not-a-socket"), b.disk, false)) == 2);
    CHECK(read_bytes(b.dir.file("not-a-socket")) == to_bytes("keep me"));
}

TEST_CASE("vhost daemon process: only stdin, stdout and stderr cross exec, and stop reaps") {
    TempDir dir("vhost");
    // A descriptor the parent forgot to mark close-on-exec.
    UniqueFd leaky(::memfd_create("svmkit-test-leaky", 0));
    REQUIRE(leaky.valid());
    auto p = DaemonProcess::spawn({"sh", "-c", "ls -l /proc/self/fd/; sleep 30"}, dir.file("log"));
    REQUIRE(p.has_value());
    std::string log;
    for (int i = 0; i < 500 && log.find("sleep") == std::string::npos &&
                    log.find("/proc/") == std::string::npos;
         ++i) {
        ::usleep(10000);
        log = p->log();
    }
    CHECK(log.find("svmkit-test-leaky") == std::string::npos);
    CHECK(log.find(" 0 -> /dev/null") != std::string::npos);
    CHECK(log.find(" 2 -> " + dir.file("log")) != std::string::npos);
    CHECK(p->running());
    const pid_t pid = p->pid();
    const int status = p->stop(std::chrono::milliseconds(2000));
    CHECK(WIFSIGNALED(status));
    CHECK(::kill(pid, 0) != 0); // reaped: no such process
    check_error(DaemonProcess::spawn({"/nonexistent/svmkit-no-such-daemon"}, dir.file("log")),
                ExitCode::io, "cannot start /nonexistent/svmkit-no-such-daemon");
}
