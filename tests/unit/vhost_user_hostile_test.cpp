// svmkit-vhost-blk --hostile MODE: each mode misbehaves in the way it is
// named, observably, and the hardened test driver (or the memory layout)
// shows it. Without --hostile the same requests succeed (the backend tests).
#include "vhost_user_test_driver.hpp"

#include <chrono>
#include <thread>

using namespace svmkit;
using namespace svmkit::test;
using namespace svmkit::test::vhost;

namespace {

struct Hostile {
    BackendUnderTest b;
    GuestRam ram;
    std::optional<Frontend> f;
    std::optional<TestBlkDriver> d;

    explicit Hostile(const std::string& mode, bool shared_window_only = false) {
        b.start_ours(mode);
        f.emplace(b.connect());
        d.emplace(*f, ram);
        MemoryRegion whole[] = {ram.whole()};
        MemoryRegion shared[] = {ram.window(0, kSharedWindow)};
        auto started = d->start(shared_window_only ? std::span<const MemoryRegion>(shared)
                                                   : std::span<const MemoryRegion>(whole));
        REQUIRE_MESSAGE(started.has_value(), error_of(started));
    }
};

std::vector<std::byte> slice(const std::vector<std::byte>& v, std::uint64_t offset, std::size_t n) {
    return {v.begin() + static_cast<std::ptrdiff_t>(offset),
            v.begin() + static_cast<std::ptrdiff_t>(offset + n)};
}

} // namespace

TEST_CASE("vhost-blk hostile: every mode has a name, unknown names are refused") {
    for (auto mode : {"used-id-out-of-range", "duplicate-completion", "len-too-large",
                      "used-idx-jump", "rewrite-bounce-after-completion", "rewrite-descriptors",
                      "interrupt-storm", "no-access-platform", "dma-outside-shared"}) {
        auto m = parse_hostile_mode(mode);
        REQUIRE(m.has_value());
        CHECK(hostile_mode_name(*m) == mode);
        CHECK(hostile_mode_list().find(mode) != std::string::npos);
    }
    check_error(parse_hostile_mode("everything"), ExitCode::usage, "unknown hostile mode");
}

TEST_CASE("vhost-blk hostile: MODE@N parses, and refuses what it cannot mean") {
    auto plain = parse_hostile_spec("duplicate-completion");
    REQUIRE(plain.has_value());
    CHECK(plain->mode == HostileMode::duplicate_completion);
    CHECK(plain->after == 0);
    auto later = parse_hostile_spec("len-too-large@64");
    REQUIRE(later.has_value());
    CHECK(later->mode == HostileMode::len_too_large);
    CHECK(later->after == 64);
    check_error(parse_hostile_spec("len-too-large@"), ExitCode::usage, "count after @");
    check_error(parse_hostile_spec("len-too-large@x1"), ExitCode::usage, "count after @");
    check_error(parse_hostile_spec("len-too-large@-1"), ExitCode::usage, "count after @");
    check_error(parse_hostile_spec("len-too-large@1000000001"), ExitCode::usage, "count after @");
    check_error(parse_hostile_spec("no-access-platform@3"), ExitCode::usage, "takes no @N");
    check_error(parse_hostile_spec("none@3"), ExitCode::usage, "takes no @N");
    check_error(parse_hostile_spec("everything@3"), ExitCode::usage, "unknown hostile mode");
}

TEST_CASE("vhost-blk hostile: MODE@N serves N requests honestly, then attacks") {
    Hostile h("used-id-out-of-range@3");
    for (std::uint64_t sector = 0; sector < 3; ++sector) {
        auto r = h.d->read(sector, 512);
        REQUIRE_MESSAGE(r.has_value(), error_of(r));
        CHECK(*r == slice(h.b.pattern, sector * 512, 512));
    }
    CHECK_FALSE(h.d->broken().has_value());
    check_error(h.d->read(3, 512), ExitCode::io, "out of range (queue size 16)");
    CHECK(h.d->broken().has_value());
    CHECK(h.b.alive());
}

TEST_CASE("vhost-blk hostile: used-id-out-of-range") {
    Hostile h("used-id-out-of-range");
    check_error(h.d->read(0, 512), ExitCode::io, "used id 16 out of range (queue size 16)");
    CHECK(h.d->broken().has_value());
    CHECK(h.b.alive());
}

TEST_CASE("vhost-blk hostile: duplicate-completion") {
    Hostile h("duplicate-completion");
    check_error(h.d->read(0, 512), ExitCode::io, "used id 0 is not in flight (completed twice?)");
    CHECK(h.d->shared_used_idx() == 2); // two used entries for one request
}

TEST_CASE("vhost-blk hostile: len-too-large") {
    Hostile h("len-too-large");
    // 4096 data bytes + 1 status byte are device-writable; the device claims 4096 more.
    check_error(h.d->read(0, 4096), ExitCode::io,
                "used len 8193 exceeds the 4097 device-writable bytes");
}

TEST_CASE("vhost-blk hostile: used-idx-jump") {
    Hostile h("used-idx-jump");
    check_error(h.d->read(0, 512), ExitCode::io, "used idx moved by 17 > queue size 16");
}

TEST_CASE("vhost-blk hostile: rewrite-bounce-after-completion") {
    Hostile h("rewrite-bounce-after-completion");
    std::uint64_t slot = 0;
    auto r = h.d->read(2, 4096, &slot);
    REQUIRE(r.has_value());
    const auto expected = slice(h.b.pattern, 2 * 512, 4096);
    CHECK(*r == expected);
    // The next kick makes the device rewrite the completed request's buffers.
    REQUIRE(h.d->flush().has_value());
    const std::byte* shared = h.ram.at(slot + 4096);
    CHECK(std::all_of(shared, shared + 4096,
                      [](std::byte b) { return b == std::byte{kHostileRewriteByte}; }));
    CHECK(h.d->status(slot) == kHostileRewriteByte);
    // The driver copied the data out once, before: its result is intact.
    CHECK(*r == expected);
}

TEST_CASE("vhost-blk hostile: rewrite-descriptors") {
    Hostile h("rewrite-descriptors");
    REQUIRE(h.d->shared_table_matches_shadow());
    auto r = h.d->read(0, 512);
    REQUIRE(r.has_value()); // the driver never reads descriptors back
    CHECK(*r == slice(h.b.pattern, 0, 512));
    CHECK_FALSE(h.d->shared_table_matches_shadow());
    const std::byte* d0 = h.ram.at(kDescGpa);
    CHECK(load_le64(d0) == ~0ull);
    CHECK(load_le32(d0 + 8) == 0xffffffffu);
    CHECK(load_le16(d0 + 14) == 0); // next = head: a loop for a driver that walks it
    // The driver's private copy drives the next request, which works.
    auto again = h.d->read(1, 512);
    REQUIRE(again.has_value());
    CHECK(*again == slice(h.b.pattern, 512, 512));
}

TEST_CASE("vhost-blk hostile: interrupt-storm") {
    Hostile h("interrupt-storm");
    REQUIRE(h.d->read(0, 512).has_value());
    // Nothing is in flight, yet interrupts keep arriving: each window sees
    // several, and the used idx does not move.
    for (int window = 0; window < 2; ++window) {
        drain_eventfd(h.d->call_fd());
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        CHECK(drain_eventfd(h.d->call_fd()) >= 2);
        CHECK(h.d->shared_used_idx() == h.d->used_idx_seen());
    }
    CHECK(h.b.alive());
}

TEST_CASE("vhost-blk hostile: interrupt-storm@2 starts after two requests") {
    Hostile h("interrupt-storm@2");
    REQUIRE(h.d->read(0, 512).has_value());
    // One request done: no storm yet, the call eventfd stays quiet.
    drain_eventfd(h.d->call_fd());
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    CHECK(drain_eventfd(h.d->call_fd()) == 0);
    REQUIRE(h.d->read(1, 512).has_value());
    // Two requests served honestly: the storm is on from here.
    drain_eventfd(h.d->call_fd());
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    CHECK(drain_eventfd(h.d->call_fd()) >= 2);
    CHECK(h.b.alive());
}

TEST_CASE("vhost-blk hostile: no-access-platform") {
    BackendUnderTest b;
    b.start_ours("no-access-platform");
    {
        Frontend f = b.connect();
        REQUIRE(f.set_owner().has_value());
        // A front end serving a secure guest requires it, and says what is missing.
        check_error(f.negotiate(kVirtioVersion1 | kVirtioAccessPlatform,
                                kVirtioVersion1 | kVirtioAccessPlatform),
                    ExitCode::io, "lacks required features 0x200000000");
    }
    Frontend f = b.connect();
    REQUIRE(f.set_owner().has_value());
    auto n = f.negotiate(kVirtioVersion1 | kVirtioAccessPlatform, kVirtioVersion1);
    REQUIRE(n.has_value());
    CHECK((n->offered & kVirtioAccessPlatform) == 0);
    CHECK_FALSE(n->has(kVirtioAccessPlatform));
    // Acknowledging it anyway is refused.
    check_error(f.set_features(n->features | kVirtioAccessPlatform), ExitCode::io,
                "SET_FEATURES: back end refused (1)");
}

TEST_CASE("vhost-blk hostile: dma-outside-shared") {
    const std::string_view marker = kHostileDmaMarker;
    SUBCASE("writes into guest memory the table does not cover") {
        Hostile h("dma-outside-shared", true);
        const std::byte* outside = h.ram.at(kSharedWindow);
        CHECK(std::all_of(outside, outside + marker.size(),
                          [](std::byte b) { return b == std::byte{0}; }));
        auto r = h.d->read(0, 512);
        REQUIRE(r.has_value());
        CHECK(std::string_view(reinterpret_cast<const char*>(outside), marker.size()) == marker);
    }
    SUBCASE("a table that covers the whole file leaves nowhere outside") {
        Hostile h("dma-outside-shared", false);
        REQUIRE(h.d->read(0, 512).has_value());
        std::string_view all(reinterpret_cast<const char*>(h.ram.at(0)), kRamSize);
        CHECK(all.find(marker) == std::string_view::npos);
    }
}
