// The DmaDevice's cache of freed bounce slots (Swiotlb::SlotCache): an unmap
// keeps the allocation for the owner's next map of the same or a smaller
// size, without the area lock; the pool's accounting, the pool-full path
// (own cache first, then every other cache), teardown and moves know about
// the slots a cache holds.
#include "guest/dma.h"
#include "guest/swiotlb.h"
#include "swiotlb_fixture.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

using namespace svmkit;
using namespace svmkit::guest;
using namespace svmkit::test;

namespace {

constexpr unsigned kLinuxPageShift = 12; // 4 KiB pages: "a page or more" is reachable

// The pool's and the device's view of the cache agree, and both are sound.
void check_cached(TestPool& t, const DmaDevice& dev) {
    t.check();
    const char* broken = t.tlb.check_cache(dev.cache());
    REQUIRE_MESSAGE(broken == nullptr, broken);
    CHECK(t.tlb.cached_slots() == dev.cached_slots());
}

} // namespace

TEST_CASE("dma cache: an unmap keeps the slots and the next map of the same size reuses them") {
    TestPool t(MiB, 1, kLinuxPageShift);
    DmaDevice dev = DmaDevice::restricted(&t.tlb);
    std::uint8_t* buf = t.priv(0x10000);
    fill_pattern(buf, 4096, 1);
    const dma_addr_t first = dev.map_single(buf, 4096, DmaDirection::bidirectional);
    REQUIRE(first != kDmaMappingError);
    fill_pattern(TestPool::device(first), 4096, 2);
    REQUIRE(dev.unmap_single(first, 4096, DmaDirection::bidirectional));
    CHECK(has_pattern(buf, 4096, 2)); // copied out before the slots were cached
    CHECK(dev.cached_slots() == 2);
    CHECK(t.tlb.used_slots() == 2); // not free to others
    check_cached(t, dev);

    // The address is dead: unmap, sync and free of it are refused.
    CHECK_FALSE(dev.unmap_single(first, 4096, DmaDirection::bidirectional));
    CHECK_FALSE(dev.sync_for_cpu(first, 16, DmaDirection::bidirectional));
    CHECK_FALSE(dev.sync_for_device(first, 16, DmaDirection::bidirectional));
    CHECK_FALSE(dev.free_coherent(TestPool::device(first), 4096, first));

    fill_pattern(buf, 4096, 3);
    const dma_addr_t again = dev.map_single(buf, 4096, DmaDirection::to_device);
    CHECK(again == first);
    CHECK(has_pattern(TestPool::device(again), 4096, 3)); // copied in whatever was cached
    CHECK(dev.cached_slots() == 0);
    CHECK(t.tlb.used_slots() == 2);
    check_cached(t, dev);
    // The record is the new mapping's: its size and direction, nothing else.
    CHECK_FALSE(dev.unmap_single(again, 4096, DmaDirection::bidirectional));
    CHECK_FALSE(dev.unmap_single(again, 4095, DmaDirection::to_device));
    CHECK(dev.unmap_single(again, 4096, DmaDirection::to_device));
    dev.drain_cache();
    CHECK(t.tlb.used_slots() == 0);
    check_cached(t, dev);
}

TEST_CASE("dma cache: a smaller map takes the best-fitting entry, page aligned from a page on") {
    TestPool t(MiB, 1, kLinuxPageShift);
    DmaDevice dev = DmaDevice::restricted(&t.tlb);
    std::uint8_t* buf = t.priv(0x10000);
    // 3 slots (page aligned: 6000 >= a page), 1 slot (after it, so not page
    // aligned), 8 slots.
    const dma_addr_t big = dev.map_single(buf, 6000, DmaDirection::to_device);
    const dma_addr_t small = dev.map_single(buf, 100, DmaDirection::to_device);
    const dma_addr_t large = dev.map_single(buf, 16 * KiB, DmaDirection::to_device);
    REQUIRE(big != kDmaMappingError);
    REQUIRE(small != kDmaMappingError);
    REQUIRE(large != kDmaMappingError);
    CHECK((small - t.range.base) % 4096 != 0);
    REQUIRE(dev.unmap_single(big, 6000, DmaDirection::to_device));
    REQUIRE(dev.unmap_single(small, 100, DmaDirection::to_device));
    REQUIRE(dev.unmap_single(large, 16 * KiB, DmaDirection::to_device));
    CHECK(dev.cached_slots() == 3 + 1 + 8);
    check_cached(t, dev);

    // 1 byte: the 1-slot entry, the best fit.
    const dma_addr_t tiny = dev.map_single(buf, 1, DmaDirection::from_device);
    CHECK(tiny == small);
    // 4 KiB (a page): the 3-slot entry is page aligned, and smaller than 8.
    const dma_addr_t page = dev.map_single(buf, 4096, DmaDirection::to_device);
    CHECK(page == big);
    CHECK(t.tlb.used_slots() == 12);
    check_cached(t, dev);
    // A larger one than any entry: from the pool, the cache untouched.
    const dma_addr_t more = dev.map_single(buf, 20 * KiB, DmaDirection::to_device);
    REQUIRE(more != kDmaMappingError);
    CHECK(dev.cached_slots() == 8);
    CHECK(t.tlb.used_slots() == 12 + 10);
    for (auto [d, size, dir] : {std::tuple{tiny, std::size_t{1}, DmaDirection::from_device},
                                std::tuple{page, std::size_t{4096}, DmaDirection::to_device},
                                std::tuple{more, std::size_t{20 * KiB}, DmaDirection::to_device}})
        CHECK(dev.unmap_single(d, size, dir));
    check_cached(t, dev);
    dev.drain_cache();
    CHECK(t.tlb.used_slots() == 0);
}

TEST_CASE("dma cache: what does not fit the cache goes back to the pool") {
    TestPool t(MiB, 1, kLinuxPageShift);
    DmaDevice dev = DmaDevice::restricted(&t.tlb);
    std::uint8_t* buf = t.priv(0x10000);

    SUBCASE("an allocation larger than kCacheMaxSlots") {
        const std::size_t size = Swiotlb::kCacheMaxBytes + 1;
        const dma_addr_t d = dev.map_single(buf, size, DmaDirection::to_device);
        REQUIRE(d != kDmaMappingError);
        CHECK(dev.unmap_single(d, size, DmaDirection::to_device));
        CHECK(dev.cached_slots() == 0);
        CHECK(t.tlb.used_slots() == 0);
        // The largest that is kept.
        const dma_addr_t k = dev.map_single(buf, Swiotlb::kCacheMaxBytes, DmaDirection::to_device);
        CHECK(dev.unmap_single(k, Swiotlb::kCacheMaxBytes, DmaDirection::to_device));
        CHECK(dev.cached_slots() == Swiotlb::kCacheMaxSlots);
    }
    SUBCASE("a full cache") {
        std::vector<dma_addr_t> held;
        for (unsigned i = 0; i < Swiotlb::kCacheEntries + 3; ++i)
            held.push_back(dev.map_single(buf, 100, DmaDirection::to_device));
        for (dma_addr_t d : held)
            CHECK(dev.unmap_single(d, 100, DmaDirection::to_device));
        CHECK(dev.cache().count == Swiotlb::kCacheEntries);
        CHECK(dev.cached_slots() == Swiotlb::kCacheEntries);
        CHECK(t.tlb.used_slots() == Swiotlb::kCacheEntries);
    }
    SUBCASE("masks: a device with min_align_mask never uses the cache") {
        DmaDevice nvme_like = DmaDevice::restricted(&t.tlb, 0xfff);
        const dma_addr_t d = nvme_like.map_single(buf + 0x234, 100, DmaDirection::to_device);
        REQUIRE(d != kDmaMappingError);
        CHECK(nvme_like.unmap_single(d, 100, DmaDirection::to_device));
        // Kept (an unmap does not look at masks), but a map with the mask
        // searches the pool and keeps the offset.
        const dma_addr_t e = nvme_like.map_single(buf + 0x234, 100, DmaDirection::to_device);
        CHECK((e & 0xfff) == 0x234);
        CHECK(nvme_like.unmap_single(e, 100, DmaDirection::to_device));
        check_cached(t, nvme_like);
    }
    check_cached(t, dev);
}

TEST_CASE("dma cache: a full pool drains the mapper's own cache, then asks the others") {
    TestPool t(MiB); // 512 slots, one area
    std::uint8_t* buf = t.priv(0);
    DmaDevice dev = DmaDevice::restricted(&t.tlb);
    DmaDevice other = DmaDevice::restricted(&t.tlb);

    // `other` caches 8 entries of 16 slots; `dev` holds everything else.
    std::vector<dma_addr_t> others;
    for (unsigned i = 0; i < Swiotlb::kCacheEntries; ++i)
        others.push_back(other.map_single(buf, Swiotlb::kCacheMaxBytes, DmaDirection::to_device));
    for (dma_addr_t d : others)
        REQUIRE(other.unmap_single(d, Swiotlb::kCacheMaxBytes, DmaDirection::to_device));
    REQUIRE(other.cached_slots() == 128);
    std::vector<dma_addr_t> held;
    for (;;) {
        const dma_addr_t d = dev.map_single(buf, 64 * KiB, DmaDirection::to_device);
        if (d == kDmaMappingError)
            break;
        held.push_back(d);
    }
    CHECK(held.size() == 12); // 384 slots: the rest is in other's cache
    CHECK(dev.last_error().kind == DmaError::pool_full);
    CHECK(dev.last_error().used_slots == 512);

    SUBCASE("the mapper's own cache goes first") {
        // Two of dev's mappings into its cache would not fit 64 KiB (32
        // slots > 16), so make room with small ones: unmap one 64 KiB (freed:
        // too large to cache), map and unmap 16 KiB twice (cached).
        REQUIRE(dev.unmap_single(held.back(), 64 * KiB, DmaDirection::to_device));
        held.pop_back();
        const dma_addr_t a = dev.map_single(buf, 32 * KiB, DmaDirection::to_device);
        const dma_addr_t b = dev.map_single(buf, 32 * KiB, DmaDirection::to_device);
        REQUIRE(dev.unmap_single(a, 32 * KiB, DmaDirection::to_device));
        REQUIRE(dev.unmap_single(b, 32 * KiB, DmaDirection::to_device));
        CHECK(dev.cached_slots() == 32);
        const dma_addr_t d = dev.map_single(buf, 64 * KiB, DmaDirection::to_device);
        CHECK(d != kDmaMappingError);
        CHECK(dev.cached_slots() == 0);
        CHECK(other.cached_slots() == 128); // nobody else asked
        held.push_back(d);
    }
    SUBCASE("then every other cache drains at its owner's next call") {
        // dev's failure asked for it; other's next unmap drains its cache
        // instead of keeping more.
        const dma_addr_t o = other.map_single(buf, 100, DmaDirection::to_device);
        CHECK(o != kDmaMappingError); // stale epoch: drained first, then mapped
        CHECK(other.cached_slots() == 0);
        CHECK(t.tlb.used_slots() == 384 + 1);
        REQUIRE(other.unmap_single(o, 100, DmaDirection::to_device));
        CHECK(other.cached_slots() == 1); // the epoch is current again: kept
        const dma_addr_t d = dev.map_single(buf, 64 * KiB, DmaDirection::to_device);
        CHECK(d != kDmaMappingError);
        held.push_back(d);
    }
    SUBCASE("a waiting block driver gets the room the other cache held") {
        struct Waiter {
            DmaDevice* other;
            int waits = 0;
            static bool wait(void* ctx) {
                auto* w = static_cast<Waiter*>(ctx);
                ++w->waits;
                // Another device's activity: any call of its sees the drain.
                w->other->drain_cache();
                return true;
            }
        } w{&other};
        const dma_addr_t d =
            dev.map_single_wait(buf, 64 * KiB, DmaDirection::to_device, &Waiter::wait, &w);
        CHECK(d != kDmaMappingError);
        CHECK(w.waits == 1);
        held.push_back(d);
    }
    other.drain_cache();
    for (dma_addr_t d : held)
        CHECK(dev.unmap_single(d, 64 * KiB, DmaDirection::to_device));
    check_cached(t, dev);
    dev.drain_cache();
    CHECK(t.tlb.used_slots() == 0);
    t.check();
}

TEST_CASE("dma cache: a failed map_sg leaves nothing cached while it waits") {
    TestPool t(MiB);
    DmaDevice dev = DmaDevice::restricted(&t.tlb);
    std::uint8_t* buf = t.priv(0);
    std::vector<dma_addr_t> hold;
    for (int i = 0; i < 246; ++i)
        hold.push_back(dev.map_single(buf, 4096, DmaDirection::to_device));
    DmaSegment segs[2] = {{buf, 16 * KiB, kDmaMappingError},
                          {buf + 0x10000, 64 * KiB, kDmaMappingError}};
    CHECK_FALSE(dev.map_sg(segs, 2, DmaDirection::to_device));
    CHECK(dev.last_error().kind == DmaError::pool_full);
    CHECK(dev.cached_slots() == 0);
    CHECK(t.tlb.used_slots() == 492);
    for (dma_addr_t d : hold)
        CHECK(dev.unmap_single(d, 4096, DmaDirection::to_device));
}

TEST_CASE("dma cache: teardown and moves give the cached slots back or hand them over") {
    TestPool t(MiB);
    std::uint8_t* buf = t.priv(0);
    {
        DmaDevice dev = DmaDevice::restricted(&t.tlb);
        REQUIRE(dev.unmap_single(dev.map_single(buf, 4096, DmaDirection::to_device), 4096,
                                 DmaDirection::to_device));
        CHECK(t.tlb.used_slots() == 2);

        DmaDevice moved(std::move(dev));
        CHECK(moved.cached_slots() == 2);
        CHECK(dev.cached_slots() == 0); // NOLINT(bugprone-use-after-move): the contract
        CHECK_FALSE(dev.is_restricted());
        check_cached(t, moved);

        // Assigning over a device with a cache drains it first.
        DmaDevice second = DmaDevice::restricted(&t.tlb);
        REQUIRE(second.unmap_single(second.map_single(buf, 100, DmaDirection::to_device), 100,
                                    DmaDirection::to_device));
        CHECK(t.tlb.used_slots() == 3);
        second = std::move(moved);
        CHECK(t.tlb.used_slots() == 2);
        CHECK(second.cached_slots() == 2);
        check_cached(t, second);
    }
    CHECK(t.tlb.used_slots() == 0); // destroyed: drained
    t.check();
}

TEST_CASE("dma cache: threads with their own devices share a small pool under pressure") {
    // 2 areas of 128 slots; 2 threads, each with its own device, map and
    // unmap random sizes (some larger than the cache keeps) with up to 6
    // mappings in flight, check every copy, and wait (unmap their oldest)
    // when the pool is full. Each thread's cache is touched by it alone; the
    // other's pool-full asks it to drain through the epoch.
    TestPool t(512 * KiB, 2);
    std::atomic<bool> failed{false};
    std::atomic<unsigned> fulls{0};
    auto worker = [&](unsigned id) {
        DmaDevice dev = DmaDevice::restricted(&t.tlb);
        std::mt19937 rng(id + 1);
        std::uint8_t* base = t.priv(id * MiB);
        struct Held {
            dma_addr_t dma;
            std::size_t size;
            std::uint8_t* buf;
            std::uint8_t seed;
        };
        std::vector<Held> held;
        auto retire = [&] {
            const Held h = held.front();
            held.erase(held.begin());
            if (!has_pattern(TestPool::device(h.dma), h.size, h.seed) ||
                !dev.unmap_single(h.dma, h.size, DmaDirection::to_device))
                failed = true;
        };
        for (unsigned i = 0; i < 20000 && !failed; ++i) {
            const std::size_t sizes[] = {16, 512, 2048, 4096, 5000, 16 * KiB, 40 * KiB, 64 * KiB};
            const std::size_t size = sizes[rng() % 8];
            std::uint8_t* buf = base + (held.size() * 64 * KiB);
            const auto seed = static_cast<std::uint8_t>(rng());
            fill_pattern(buf, size, seed);
            dma_addr_t d = dev.map_single(buf, size, DmaDirection::to_device, id);
            while (d == kDmaMappingError && dev.last_error().kind == DmaError::pool_full &&
                   !held.empty()) {
                fulls.fetch_add(1, std::memory_order_relaxed);
                retire();
                d = dev.map_single(buf, size, DmaDirection::to_device, id);
            }
            if (d == kDmaMappingError) {
                // Nothing of ours in flight: the other thread holds the pool
                // (its in-flight mappings and at most its cache, which it
                // drains at its next call); try again later.
                if (dev.last_error().kind != DmaError::pool_full)
                    failed = true;
                continue;
            }
            held.push_back({d, size, buf, seed});
            if (held.size() == 6 || rng() % 3 == 0)
                retire();
        }
        while (!held.empty())
            retire();
    };
    std::thread a(worker, 0);
    std::thread b(worker, 1);
    a.join();
    b.join();
    CHECK_FALSE(failed.load());
    CHECK(fulls.load() > 0);        // the pool really was under pressure
    CHECK(t.tlb.used_slots() == 0); // both devices drained at their end
    t.check();
}
