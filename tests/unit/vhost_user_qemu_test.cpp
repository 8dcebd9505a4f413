// QEMU's qemu-storage-daemon (unmodified, Debian's qemu-system-common) as a
// vhost-user-blk back end, driven by svmkit's front end and the test driver:
// the same protocol svmkit-vhost-blk speaks works against QEMU's
// libvhost-user.
#include "vhost_user_test_driver.hpp"

using namespace svmkit;
using namespace svmkit::test;
using namespace svmkit::test::vhost;

namespace {

bool have_qsd() {
    if (have_tool("qemu-storage-daemon"))
        return true;
    MESSAGE("qemu-storage-daemon not installed: skipping");
    return false;
}

std::vector<std::byte> slice(const std::vector<std::byte>& v, std::uint64_t offset, std::size_t n) {
    return {v.begin() + static_cast<std::ptrdiff_t>(offset),
            v.begin() + static_cast<std::ptrdiff_t>(offset + n)};
}

} // namespace

TEST_CASE("vhost-blk qemu: negotiation and config through svmkit's front end") {
    if (!have_qsd())
        return;
    BackendUnderTest b;
    b.start_qemu();
    {
        Frontend f = b.connect();
        REQUIRE(f.set_owner().has_value());
        auto n = f.negotiate(kVirtioVersion1 | kVirtioAccessPlatform | kBlkFlush, kVirtioVersion1);
        REQUIRE_MESSAGE(n.has_value(), error_of(n) << "\n" << b.backend_log());
        MESSAGE(fmt::format("qemu-storage-daemon offers features {:#x}, protocol features {:#x}",
                            n->offered, n->offered_protocol));
        CHECK((n->offered & kFeatureProtocolFeatures) != 0);
        CHECK(n->has(kVirtioVersion1 | kBlkFlush));
        // Only what both sides want: never INDIRECT or EVENT_IDX, which QEMU offers.
        CHECK((n->features & (kVirtioIndirectDesc | kVirtioEventIdx)) == 0);
        CHECK(n->has_protocol(kProtocolReplyAck | kProtocolConfig | kProtocolMq));
        auto config = f.get_config(0, kBlkConfigSize);
        REQUIRE_MESSAGE(config.has_value(), error_of(config));
        CHECK(load_le64(config->data() + kBlkConfigCapacity) == kDiskSize / kSectorSize);
        auto queues = f.get_queue_num();
        REQUIRE(queues.has_value());
        CHECK(*queues >= 1);
    }
    // Requiring a feature QEMU does not offer fails with a clear message.
    Frontend g = b.connect();
    REQUIRE(g.set_owner().has_value());
    check_error(g.negotiate(kVirtioVersion1 | kVirtioRingPacked | kVirtioAccessPlatform,
                            kVirtioVersion1 | (1ull << 60)),
                ExitCode::io, "lacks required features 0x1000000000000000");
}

TEST_CASE("vhost-blk qemu: read, write, flush, get-id and a new memory table") {
    if (!have_qsd())
        return;
    BackendUnderTest b;
    b.start_qemu();
    Frontend f = b.connect();
    GuestRam ram;
    TestBlkDriver d(f, ram);
    MemoryRegion whole[] = {ram.whole()};
    auto started = d.start(whole);
    REQUIRE_MESSAGE(started.has_value(), error_of(started) << "\n" << b.backend_log());

    auto r = d.read(5, 8192);
    REQUIRE_MESSAGE(r.has_value(), error_of(r) << "\n" << b.backend_log());
    CHECK(*r == slice(b.pattern, 5 * 512, 8192));
    auto data = random_bytes(12288, 3);
    REQUIRE(d.write(200, data).has_value());
    REQUIRE(d.flush().has_value());
    auto on_disk = read_bytes(b.disk);
    CHECK(slice(on_disk, 200 * 512, data.size()) == data);
    auto back = d.read(200, 12288);
    REQUIRE(back.has_value());
    CHECK(*back == data);
    auto id = d.get_id();
    REQUIRE_MESSAGE(id.has_value(), error_of(id));
    MESSAGE("qemu-storage-daemon device id: " << *id);
    CHECK_FALSE(id->empty());
    check_error(d.read(kDiskSize / 512, 512), ExitCode::io, "read: device status 1");

    // The table after ESM: the shared window only, at a non-zero mmap offset
    // in a second region. libvhost-user maps [0, offset + size) of the fd and
    // remaps the running rings.
    MemoryRegion split[] = {ram.window(0, 0x100000),
                            ram.window(0x100000, kSharedWindow - 0x100000)};
    auto replaced = f.set_mem_table(split);
    REQUIRE_MESSAGE(replaced.has_value(), error_of(replaced) << "\n" << b.backend_log());
    auto r2 = d.read(64, 4096);
    REQUIRE_MESSAGE(r2.has_value(), error_of(r2) << "\n" << b.backend_log());
    CHECK(*r2 == slice(on_disk, 64 * 512, 4096));
    REQUIRE(d.write(300, data).has_value());
    CHECK(slice(read_bytes(b.disk), 300 * 512, data.size()) == data);

    // Stopping the ring reports how far QEMU got.
    auto base = f.get_vring_base(0);
    REQUIRE(base.has_value());
    CHECK(*base == d.used_idx_seen());
    CHECK(b.alive());
}

TEST_CASE("vhost-blk qemu: the daemon outlives a front end and serves the next") {
    if (!have_qsd())
        return;
    BackendUnderTest b;
    b.start_qemu();
    GuestRam ram;
    {
        Frontend f = b.connect();
        TestBlkDriver d(f, ram);
        MemoryRegion whole[] = {ram.whole()};
        REQUIRE(d.start(whole).has_value());
        REQUIRE(d.read(0, 512).has_value());
    }
    Frontend f = b.connect();
    TestBlkDriver d(f, ram);
    MemoryRegion whole[] = {ram.whole()};
    auto started = d.start(whole);
    REQUIRE_MESSAGE(started.has_value(), error_of(started) << "\n" << b.backend_log());
    auto r = d.read(7, 512);
    REQUIRE_MESSAGE(r.has_value(), error_of(r) << "\n" << b.backend_log());
    CHECK(*r == slice(b.pattern, 7 * 512, 512));
    CHECK(b.alive());
    // The test stops the daemon itself (and the destructor would).
    b.process->stop();
    CHECK_FALSE(b.alive());
}
