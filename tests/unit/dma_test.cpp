// The DMA API (guest/dma.h): direct devices (a normal guest) use guest-physical
// addresses of the buffers themselves; restricted devices bounce everything
// through their pool; scatter-gather maps all or nothing; block I/O can wait
// for room instead of failing.
#include "guest/dma.h"

#include "guest/zalloc.h"
#include "swiotlb_fixture.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace svmkit;
using namespace svmkit::guest;
using svmkit::test::fill_pattern;
using svmkit::test::has_pattern;
using svmkit::test::TestPool;

namespace {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;

} // namespace

TEST_CASE("dma: a direct device maps buffers in place") {
    auto m = platform::GuestMemory::create(MiB);
    REQUIRE(m.has_value());
    BumpArena arena{gpa_ptr(0x10008), 0x40000, 0}; // base deliberately unaligned
    DmaDevice dev = DmaDevice::direct(&arena);
    CHECK_FALSE(dev.is_restricted());
    CHECK(dev.pool() == nullptr);
    CHECK(dev.max_mapping_size() == ~std::uint64_t{0});

    std::uint8_t* buf = gpa_ptr(0x80000);
    dma_addr_t dma = dev.map_single(buf, 4096, DmaDirection::from_device);
    CHECK(dma == 0x80000);
    CHECK(dev.last_error().kind == DmaError::none);
    CHECK(dev.sync_for_cpu(dma, 4096, DmaDirection::from_device));
    CHECK(dev.sync_for_device(dma, 4096, DmaDirection::from_device));
    CHECK(dev.unmap_single(dma, 4096, DmaDirection::from_device));
    CHECK(dev.map_single(nullptr, 16, DmaDirection::to_device) == kDmaMappingError);
    CHECK(dev.last_error().kind == DmaError::bad_argument);
    CHECK(dev.map_single(buf, 0, DmaDirection::to_device) == kDmaMappingError);

    DmaSegment segs[2] = {{buf, 100, kDmaMappingError}, {buf + 4096, 200, kDmaMappingError}};
    CHECK(dev.map_sg(segs, 2, DmaDirection::to_device));
    CHECK(segs[0].dma == 0x80000);
    CHECK(segs[1].dma == 0x81000);
    CHECK(dev.unmap_sg(segs, 2, DmaDirection::to_device));

    SUBCASE("coherent memory comes from the arena, zeroed and aligned") {
        std::memset(arena.base, 0xcd, arena.size);
        dma_addr_t d1 = 0;
        auto* p1 = static_cast<std::uint8_t*>(dev.alloc_coherent(100, &d1));
        REQUIRE(p1 != nullptr);
        CHECK(d1 == ptr_gpa(p1));
        CHECK(d1 % 128 == 0);
        CHECK(p1[0] == 0);
        CHECK(p1[99] == 0);
        dma_addr_t d2 = 0;
        auto* p2 = static_cast<std::uint8_t*>(dev.alloc_coherent(8192, &d2));
        REQUIRE(p2 != nullptr);
        CHECK(d2 % 8192 == 0);
        CHECK(d2 >= d1 + 100);
        dma_addr_t d3 = 0;
        REQUIRE(dev.alloc_coherent(0x20000, &d3) != nullptr);
        CHECK(d3 % kPageSize == 0); // at most a page
        CHECK(dev.free_coherent(p2, 8192, d2));
        // Exhausted: nullptr and an error, the arena unchanged.
        std::uint64_t used = arena.used;
        CHECK(dev.alloc_coherent(0x40000, &d3) == nullptr);
        CHECK(dev.last_error().kind == DmaError::pool_full);
        CHECK(arena.used == used);
        CHECK(dev.alloc_coherent(0, &d3) == nullptr);
        CHECK(dev.last_error().kind == DmaError::bad_argument);
    }
    SUBCASE("no arena: no coherent memory") {
        DmaDevice bare = DmaDevice::direct(nullptr);
        dma_addr_t d = 0;
        CHECK(bare.alloc_coherent(64, &d) == nullptr);
        CHECK(bare.last_error().kind == DmaError::bad_argument);
    }
}

TEST_CASE("dma: a restricted device bounces through its pool") {
    TestPool t(MiB);
    DmaDevice dev = DmaDevice::restricted(&t.tlb);
    CHECK(dev.is_restricted());
    CHECK(dev.pool() == &t.tlb);
    CHECK(dev.max_mapping_size() == 256 * KiB);
    CHECK(DmaDevice::restricted(&t.tlb, 0xfff).max_mapping_size() == 252 * KiB);

    std::uint8_t* buf = t.priv(0x10000);
    fill_pattern(buf, 5000, 1);
    dma_addr_t dma = dev.map_single(buf, 5000, DmaDirection::bidirectional, 0);
    REQUIRE(dma != kDmaMappingError);
    CHECK(t.tlb.contains(dma));
    CHECK(has_pattern(TestPool::device(dma), 5000, 1));
    fill_pattern(TestPool::device(dma), 5000, 2);
    CHECK(dev.sync_for_cpu(dma, 5000, DmaDirection::bidirectional));
    CHECK(has_pattern(buf, 5000, 2));
    fill_pattern(buf, 5000, 3);
    CHECK(dev.sync_for_device(dma, 5000, DmaDirection::bidirectional));
    CHECK(has_pattern(TestPool::device(dma), 5000, 3));
    CHECK_FALSE(dev.unmap_single(dma, 4999, DmaDirection::bidirectional));
    CHECK_FALSE(dev.sync_for_cpu(dma, 5001, DmaDirection::bidirectional));
    CHECK(dev.unmap_single(dma, 5000, DmaDirection::bidirectional));
    CHECK(t.tlb.used_slots() == dev.cached_slots()); // kept for reuse (dma_cache_test)
    dev.drain_cache();
    CHECK(t.tlb.used_slots() == 0);

    SUBCASE("min_align_mask of the device is honoured") {
        DmaDevice nvme_like = DmaDevice::restricted(&t.tlb, 0xfff);
        dma_addr_t d = nvme_like.map_single(buf + 0x234, 100, DmaDirection::to_device);
        REQUIRE(d != kDmaMappingError);
        CHECK((d & 0xfff) == 0x234);
        CHECK(nvme_like.unmap_single(d, 100, DmaDirection::to_device));
    }
    SUBCASE("coherent memory lives in the pool") {
        dma_addr_t d = 0;
        void* ring = dev.alloc_coherent(6000, &d);
        REQUIRE(ring != nullptr);
        CHECK(t.tlb.contains(d));
        CHECK(ptr_gpa(ring) == d);
        CHECK(d % 8192 == 0);
        CHECK_FALSE(dev.free_coherent(ring, 6001, d));
        CHECK(dev.free_coherent(ring, 6000, d));
        CHECK(t.tlb.used_slots() == 0);
    }
    SUBCASE("errors carry the numbers") {
        CHECK(dev.map_single(buf, 256 * KiB + 1, DmaDirection::to_device) == kDmaMappingError);
        CHECK(dev.last_error().kind == DmaError::too_large);
        CHECK(dev.last_error().size == 256 * KiB + 1);
        CHECK(dev.last_error().total_slots == 512);
        char line[128];
        std::size_t n = describe_dma_error(dev.last_error(), line, sizeof line);
        CHECK(std::string(line, n) == "swiotlb cannot map 262145 bytes: larger than a 256 KiB "
                                      "segment allows, total 512 (slots)");
        // Truncated, still terminated.
        char tiny[8];
        CHECK(describe_dma_error(dev.last_error(), tiny, sizeof tiny) == 7);
        CHECK(std::string(tiny) == "swiotlb");
        CHECK(describe_dma_error(dev.last_error(), tiny, 0) == 0);
        CHECK(describe_dma_error(DmaError{}, line, sizeof line) == 12);
        CHECK(std::string(line) == "no DMA error");
        CHECK(describe_dma_error(DmaError{DmaError::bad_argument, 0, 0, 0}, line, sizeof line) > 0);
        CHECK(std::string(line) == "DMA mapping refused: bad argument (sz: 0 bytes)");
        // A success clears the error.
        dma_addr_t d = dev.map_single(buf, 10, DmaDirection::to_device);
        CHECK(dev.last_error().kind == DmaError::none);
        CHECK(dev.unmap_single(d, 10, DmaDirection::to_device));
    }
}

TEST_CASE("dma: map_sg maps every segment or none") {
    TestPool t(MiB); // 512 slots
    DmaDevice dev = DmaDevice::restricted(&t.tlb);
    std::uint8_t* buf = t.priv(0);
    // Leave 20 slots free.
    std::vector<dma_addr_t> hold;
    for (int i = 0; i < 246; ++i)
        hold.push_back(dev.map_single(buf, 4096, DmaDirection::to_device));
    REQUIRE(t.tlb.used_slots() == 492);

    DmaSegment segs[3] = {{buf, 16 * KiB, kDmaMappingError},
                          {buf + 0x10000, 32 * KiB, kDmaMappingError},
                          {buf + 0x20000, 16, kDmaMappingError}};
    CHECK_FALSE(dev.map_sg(segs, 3, DmaDirection::from_device));
    CHECK(dev.last_error().kind == DmaError::pool_full);
    CHECK(dev.last_error().size == 32 * KiB);
    for (auto& s : segs)
        CHECK(s.dma == kDmaMappingError);
    CHECK(t.tlb.used_slots() == 492); // the first segment's mapping was undone
    t.check();

    segs[1].size = 8 * KiB;
    REQUIRE(dev.map_sg(segs, 3, DmaDirection::from_device));
    CHECK(t.tlb.used_slots() == 492 + 8 + 4 + 1);
    for (auto& s : segs)
        std::memset(TestPool::device(s.dma), 0x6b, s.size);
    CHECK(dev.unmap_sg(segs, 3, DmaDirection::from_device));
    CHECK(buf[0x10000 + 8 * KiB - 1] == 0x6b);
    CHECK(segs[0].dma == kDmaMappingError);
    CHECK(dev.cached_slots() == 8 + 4 + 1); // kept for the next maps (dma_cache_test)
    dev.drain_cache();
    CHECK(t.tlb.used_slots() == 492);
    // A refused unmap shows in the result.
    segs[0].dma = hold[0];
    segs[0].size = 4095;
    CHECK_FALSE(dev.unmap_sg(segs, 1, DmaDirection::to_device));
    for (dma_addr_t d : hold)
        CHECK(dev.unmap_single(d, 4096, DmaDirection::to_device));
    t.check();
}

namespace {

// A block driver's view: requests in flight hold mappings; waiting means
// completing the oldest (whose unmap frees its slots).
struct InFlight {
    DmaDevice* dev = nullptr;
    std::vector<dma_addr_t> held;
    int waits = 0;

    static bool wait(void* ctx) {
        auto* self = static_cast<InFlight*>(ctx);
        ++self->waits;
        if (self->held.empty())
            return false; // nothing of ours in flight: no room will come
        CHECK(self->dev->unmap_single(self->held.back(), 64 * KiB, DmaDirection::to_device));
        self->held.pop_back();
        return true;
    }
};

} // namespace

TEST_CASE("dma: block I/O waits for room instead of failing when the pool is full") {
    TestPool t(MiB);
    DmaDevice dev = DmaDevice::restricted(&t.tlb);
    std::uint8_t* buf = t.priv(0);
    InFlight q{&dev, {}, 0};
    for (int i = 0; i < 16; ++i) {
        dma_addr_t d =
            dev.map_single_wait(buf, 64 * KiB, DmaDirection::to_device, &InFlight::wait, &q);
        REQUIRE(d != kDmaMappingError);
        q.held.push_back(d);
    }
    CHECK(q.waits == 0);
    CHECK(t.tlb.used_slots() == 512);
    // Full: the next request waits for two completions, then goes through.
    DmaSegment segs[2] = {{buf, 64 * KiB, kDmaMappingError},
                          {buf + 0x10000, 64 * KiB, kDmaMappingError}};
    CHECK(dev.map_sg_wait(segs, 2, DmaDirection::to_device, &InFlight::wait, &q));
    CHECK(q.waits == 2);
    CHECK(q.held.size() == 14);
    CHECK(dev.unmap_sg(segs, 2, DmaDirection::to_device));
    CHECK(dev.map_single_wait(buf, 64 * KiB, DmaDirection::to_device, &InFlight::wait, &q) !=
          kDmaMappingError);
    CHECK(q.waits == 2);

    SUBCASE("a request that can never fit does not wait") {
        q.waits = 0;
        CHECK(dev.map_single_wait(buf, 300 * KiB, DmaDirection::to_device, &InFlight::wait, &q) ==
              kDmaMappingError);
        CHECK(dev.last_error().kind == DmaError::too_large);
        DmaSegment big[1] = {{buf, 300 * KiB, kDmaMappingError}};
        CHECK_FALSE(dev.map_sg_wait(big, 1, DmaDirection::to_device, &InFlight::wait, &q));
        CHECK(q.waits == 0);
    }
    SUBCASE("nothing in flight: the wait gives up and the error stays pool_full") {
        // Another user holds the whole pool.
        std::vector<dma_addr_t> other;
        DmaDevice other_dev = DmaDevice::restricted(&t.tlb);
        while (true) {
            dma_addr_t d = other_dev.map_single(buf, 64 * KiB, DmaDirection::to_device);
            if (d == kDmaMappingError)
                break;
            other.push_back(d);
        }
        InFlight idle{&dev, {}, 0};
        CHECK(dev.map_single_wait(buf, 4096, DmaDirection::to_device, &InFlight::wait, &idle) ==
              kDmaMappingError);
        CHECK(idle.waits == 1);
        CHECK(dev.last_error().kind == DmaError::pool_full);
        DmaSegment s[1] = {{buf, 4096, kDmaMappingError}};
        CHECK_FALSE(dev.map_sg_wait(s, 1, DmaDirection::to_device, &InFlight::wait, &idle));
        CHECK(idle.waits == 2);
        CHECK_FALSE(dev.map_sg_wait(s, 1, DmaDirection::to_device, nullptr, nullptr));
        for (dma_addr_t d : other)
            CHECK(other_dev.unmap_single(d, 64 * KiB, DmaDirection::to_device));
    }
}
