// The bounce pool (guest/swiotlb.h) against Linux swiotlb's semantics and the
// corner cases that broke it: copy rules, the records unmap checks, alignment
// (min_align_mask, alloc_align_mask, page-sized mappings, CVE-2024-35814),
// partial device writes (CVE-2022-0854), segments, pool-full numbers, areas,
// and concurrent use. The invariants are checked after every step of the
// churn tests.
#include "swiotlb_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

using namespace svmkit;
using namespace svmkit::guest;
using svmkit::test::fill_pattern;
using svmkit::test::has_pattern;
using svmkit::test::TestPool;

namespace {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t kSlot = Swiotlb::kSlotSize;

DmaError map_error(Swiotlb& tlb, void* p, std::size_t size, std::uint64_t min_mask = 0,
                   std::uint64_t alloc_mask = 0) {
    DmaError err;
    CHECK(tlb.map(p, size, DmaDirection::to_device, min_mask, alloc_mask, 0, &err) ==
          kDmaMappingError);
    return err;
}

std::uint64_t segment_of(const TestPool& t, std::uint64_t dma) {
    return (dma - t.range.base) / Swiotlb::kSegmentSize;
}

} // namespace

TEST_CASE("swiotlb: init checks the pool, the page size and the metadata buffer") {
    auto m = platform::GuestMemory::create(4 * MiB);
    REQUIRE(m.has_value());
    std::vector<std::uint8_t> buf(Swiotlb::metadata_bytes(1024, 4) + 64);
    auto* meta = buf.data() + (64 - reinterpret_cast<std::uintptr_t>(buf.data()) % 64) % 64;
    std::uint64_t need = Swiotlb::metadata_bytes(1024, 4);
    Swiotlb tlb;
    using E = Swiotlb::InitError;

    CHECK(tlb.init(Range{2 * MiB, 2 * MiB}, 4, meta, need) == E::none);
    CHECK(tlb.total_slots() == 1024);
    CHECK(tlb.area_count() == 4);
    CHECK(tlb.check_invariants() == nullptr);

    CHECK(tlb.init(Range{2 * MiB + kSlot, 2 * MiB}, 4, meta, need) == E::pool_misaligned);
    CHECK(tlb.init(Range{2 * MiB, 2 * MiB + 100}, 4, meta, need) == E::pool_misaligned);
    CHECK(tlb.init(Range{2 * MiB, Swiotlb::kSegmentSize - kSlot}, 4, meta, need) ==
          E::pool_too_small);
    CHECK(tlb.init(Range{~0ull - 0xffff, 2 * MiB}, 4, meta, need) == E::pool_too_large);
    CHECK(tlb.init(Range{0, (Swiotlb::kMaxSlots + 128) * kSlot}, 1, meta, ~0ull) ==
          E::pool_too_large);
    CHECK(tlb.init(Range{2 * MiB, 2 * MiB}, 4, meta, need - 1) == E::metadata_too_small);
    CHECK(tlb.init(Range{2 * MiB, 2 * MiB}, 4, meta + 8, need) == E::metadata_misaligned);
    CHECK(tlb.init(Range{2 * MiB, 2 * MiB}, 4, nullptr, need) == E::metadata_misaligned);
    CHECK(tlb.init(Range{2 * MiB, 2 * MiB}, 4, meta, need, 10) == E::bad_page_shift);
    CHECK(tlb.init(Range{2 * MiB, 2 * MiB}, 4, meta, need, 19) == E::bad_page_shift);
    // A failed init leaves an empty pool that maps nothing.
    DmaError err;
    CHECK(tlb.map(meta, 16, DmaDirection::to_device, 0, 0, 0, &err) == kDmaMappingError);
    CHECK(err.kind == DmaError::bad_argument);

    SUBCASE("areas: rounded up to a power of two, each at least one segment") {
        CHECK(tlb.init(Range{2 * MiB, 2 * MiB}, 3, meta, need) == E::none);
        CHECK(tlb.area_count() == 4);
        CHECK(tlb.init(Range{2 * MiB, 2 * MiB}, 0, meta, need) == E::none);
        CHECK(tlb.area_count() == 1);
        // 512 KiB: two segments, so two areas at most.
        CHECK(tlb.init(Range{2 * MiB, 512 * KiB}, 4, meta, need) == E::none);
        CHECK(tlb.area_count() == 2);
        // 1 MiB + 64 KiB: four whole segments and a part; the last area gets it.
        CHECK(tlb.init(Range{2 * MiB, MiB + 64 * KiB}, 4, meta, need) == E::none);
        CHECK(tlb.area_count() == 4);
        CHECK(tlb.total_slots() == 544);
        CHECK(tlb.area_of_slot(0) == 0);
        CHECK(tlb.area_of_slot(127) == 0);
        CHECK(tlb.area_of_slot(128) == 1);
        CHECK(tlb.area_of_slot(543) == 3);
        CHECK(tlb.check_invariants() == nullptr);
    }
}

TEST_CASE("swiotlb: copy-in on map whatever the direction, copy-out only for from/bidi") {
    TestPool t(MiB);
    std::uint8_t* buf = t.priv(0x10000);

    for (DmaDirection dir :
         {DmaDirection::to_device, DmaDirection::from_device, DmaDirection::bidirectional}) {
        CAPTURE(static_cast<int>(dir));
        fill_pattern(buf, 5000, 1);
        DmaError err;
        dma_addr_t dma = t.tlb.map(buf, 5000, dir, 0, 0, 0, &err);
        REQUIRE(dma != kDmaMappingError);
        CHECK(err.kind == DmaError::none);
        CHECK(t.tlb.contains(dma));
        CHECK(dma != ptr_gpa(buf));
        CHECK(has_pattern(TestPool::device(dma), 5000, 1)); // copied in, every direction
        CHECK(t.tlb.used_slots() == 3);
        t.check();
        fill_pattern(TestPool::device(dma), 5000, 2); // the device writes
        CHECK(t.tlb.unmap(dma, 5000, dir));
        bool out = dir != DmaDirection::to_device;
        CHECK(has_pattern(buf, 5000, out ? 2 : 1));
        CHECK(t.tlb.used_slots() == 0);
        t.check();
    }
}

TEST_CASE("swiotlb: a partial device write does not leak stale pool bytes (CVE-2022-0854)") {
    TestPool t(MiB);
    std::uint8_t* secret = t.priv(0x10000);
    std::uint8_t* buf = t.priv(0x20000);
    // An earlier mapping leaves its bytes in the slots.
    fill_pattern(secret, 4096, 0x55);
    dma_addr_t first = t.tlb.map(secret, 4096, DmaDirection::to_device, 0, 0, 0, nullptr);
    REQUIRE(first != kDmaMappingError);
    REQUIRE(t.tlb.unmap(first, 4096, DmaDirection::to_device));

    // A read into a buffer the driver prepared; the device writes 100 bytes.
    std::memset(buf, 0xee, 4096);
    dma_addr_t dma = t.tlb.map(buf, 4096, DmaDirection::from_device, 0, 0, 0, nullptr);
    REQUIRE(dma == first); // the very slots the secret went through
    std::memset(TestPool::device(dma), 0x11, 100);
    REQUIRE(t.tlb.unmap(dma, 4096, DmaDirection::from_device));
    CHECK(std::all_of(buf, buf + 100, [](std::uint8_t b) { return b == 0x11; }));
    CHECK(std::all_of(buf + 100, buf + 4096, [](std::uint8_t b) { return b == 0xee; }));
}

TEST_CASE("swiotlb: large from_device mappings are copied in too (streaming), any size and "
          "alignment") {
    TestPool t(MiB);
    std::uint8_t seed = 1;
    for (std::size_t size : {16 * KiB, 64 * KiB + 1, 100 * KiB + 37, 256 * KiB}) {
        for (std::size_t src_offset : {0, 1, 8}) {
            CAPTURE(size);
            CAPTURE(src_offset);
            // Stale bytes in the slots first, then a read mapping over them.
            std::uint8_t* other = t.priv(0x300000);
            fill_pattern(other, size, static_cast<std::uint8_t>(seed + 100));
            dma_addr_t stale = t.tlb.map(other, size, DmaDirection::to_device, 0, 0, 0, nullptr);
            REQUIRE(stale != kDmaMappingError);
            REQUIRE(t.tlb.unmap(stale, size, DmaDirection::to_device));
            std::uint8_t* buf = t.priv(0x10000) + src_offset;
            fill_pattern(buf, size, ++seed);
            dma_addr_t dma = t.tlb.map(buf, size, DmaDirection::from_device, 0, 0, 0, nullptr);
            REQUIRE(dma == stale);
            CHECK(has_pattern(TestPool::device(dma), size, seed)); // every byte, the tail too
            REQUIRE(t.tlb.unmap(dma, size, DmaDirection::from_device));
            CHECK(has_pattern(buf, size, seed)); // the device wrote nothing
        }
    }
    // A bounce start that is not 16-byte aligned (min_align_mask keeps the
    // buffer's low bits): copied in all the same.
    std::uint8_t* buf = t.priv(0x10000) + 3;
    fill_pattern(buf, 40 * KiB, 77);
    dma_addr_t dma = t.tlb.map(buf, 40 * KiB, DmaDirection::from_device, 0xfff, 0, 0, nullptr);
    REQUIRE(dma != kDmaMappingError);
    CHECK(dma % 16 == 3);
    CHECK(has_pattern(TestPool::device(dma), 40 * KiB, 77));
    REQUIRE(t.tlb.unmap(dma, 40 * KiB, DmaDirection::from_device));
    t.check();
}

TEST_CASE("swiotlb: unmap checks address, size and direction against the record") {
    TestPool t(MiB);
    std::uint8_t* buf = t.priv(0x10000);
    fill_pattern(buf, 3000, 3);
    dma_addr_t dma = t.tlb.map(buf, 3000, DmaDirection::from_device, 0, 0, 0, nullptr);
    REQUIRE(dma != kDmaMappingError);
    std::memset(TestPool::device(dma), 0x77, 3000);

    CHECK_FALSE(t.tlb.unmap(dma, 2999, DmaDirection::from_device)); // size mismatch
    CHECK_FALSE(t.tlb.unmap(dma, 3001, DmaDirection::from_device));
    CHECK_FALSE(t.tlb.unmap(dma, 1u << 30, DmaDirection::from_device));
    CHECK_FALSE(t.tlb.unmap(dma, 3000, DmaDirection::to_device)); // direction mismatch
    CHECK_FALSE(t.tlb.unmap(dma, 3000, DmaDirection::bidirectional));
    CHECK_FALSE(t.tlb.unmap(dma + 1, 2999, DmaDirection::from_device)); // not the start
    CHECK_FALSE(t.tlb.unmap(dma + kSlot, 3000 - kSlot, DmaDirection::from_device));
    CHECK_FALSE(t.tlb.unmap(dma + 4 * kSlot, 3000, DmaDirection::from_device)); // free slot
    CHECK_FALSE(t.tlb.unmap(t.range.base - kSlot, 3000, DmaDirection::from_device));
    CHECK_FALSE(t.tlb.unmap(t.range.end(), 3000, DmaDirection::from_device));
    CHECK_FALSE(t.tlb.unmap(kDmaMappingError, 3000, DmaDirection::from_device));
    CHECK_FALSE(t.tlb.unmap(dma, 3000, static_cast<DmaDirection>(7)));
    // Nothing was copied back or freed by the refused calls.
    CHECK(has_pattern(buf, 3000, 3));
    CHECK(t.tlb.used_slots() == 2);
    t.check();

    CHECK(t.tlb.unmap(dma, 3000, DmaDirection::from_device));
    CHECK(buf[0] == 0x77);
    CHECK(buf[2999] == 0x77);
    CHECK_FALSE(t.tlb.unmap(dma, 3000, DmaDirection::from_device)); // twice
    CHECK(t.tlb.used_slots() == 0);
    t.check();
}

TEST_CASE("swiotlb: sync copies by direction, inside the mapping only") {
    TestPool t(MiB);
    std::uint8_t* buf = t.priv(0x10000);
    fill_pattern(buf, 8192, 4);
    dma_addr_t dma = t.tlb.map(buf, 8192, DmaDirection::bidirectional, 0, 0, 0, nullptr);
    REQUIRE(dma != kDmaMappingError);
    std::uint8_t* dev = TestPool::device(dma);

    // sync_for_cpu of a part: only that part comes back.
    std::memset(dev, 0x21, 8192);
    CHECK(t.tlb.sync_for_cpu(dma + 1000, 500, DmaDirection::bidirectional));
    CHECK(buf[999] != 0x21);
    CHECK(buf[1000] == 0x21);
    CHECK(buf[1499] == 0x21);
    CHECK(buf[1500] != 0x21);
    // sync_for_device of a part: only that part goes out.
    std::memset(buf, 0x42, 8192);
    CHECK(t.tlb.sync_for_device(dma + 4096, 4096, DmaDirection::bidirectional));
    CHECK(dev[4095] == 0x21);
    CHECK(dev[4096] == 0x42);
    CHECK(dev[8191] == 0x42);

    // Outside the mapping, across its end, wrong direction, empty: refused.
    CHECK_FALSE(t.tlb.sync_for_cpu(dma + 8000, 193, DmaDirection::bidirectional));
    CHECK_FALSE(t.tlb.sync_for_cpu(dma + 8192, 1, DmaDirection::bidirectional));
    CHECK_FALSE(t.tlb.sync_for_cpu(dma - 1, 1, DmaDirection::bidirectional));
    CHECK_FALSE(t.tlb.sync_for_cpu(dma, 8192, DmaDirection::from_device));
    CHECK_FALSE(t.tlb.sync_for_device(dma, 0, DmaDirection::bidirectional));
    CHECK_FALSE(t.tlb.sync_for_device(dma, 1ull << 40, DmaDirection::bidirectional));
    CHECK(t.tlb.sync_for_cpu(dma + 8191, 1, DmaDirection::bidirectional));
    CHECK(t.tlb.unmap(dma, 8192, DmaDirection::bidirectional));
    CHECK_FALSE(t.tlb.sync_for_cpu(dma, 1, DmaDirection::bidirectional)); // gone

    SUBCASE("to_device: sync_for_cpu copies nothing, sync_for_device copies in") {
        fill_pattern(buf, 4096, 5);
        dma_addr_t d = t.tlb.map(buf, 4096, DmaDirection::to_device, 0, 0, 0, nullptr);
        REQUIRE(d != kDmaMappingError);
        std::memset(TestPool::device(d), 0x99, 4096);
        CHECK(t.tlb.sync_for_cpu(d, 4096, DmaDirection::to_device));
        CHECK(has_pattern(buf, 4096, 5));
        CHECK(t.tlb.sync_for_device(d, 4096, DmaDirection::to_device));
        CHECK(has_pattern(TestPool::device(d), 4096, 5));
        CHECK(t.tlb.unmap(d, 4096, DmaDirection::to_device));
    }
    SUBCASE("from_device: sync_for_device copies nothing, sync_for_cpu copies out") {
        std::memset(buf, 0x10, 4096);
        dma_addr_t d = t.tlb.map(buf, 4096, DmaDirection::from_device, 0, 0, 0, nullptr);
        REQUIRE(d != kDmaMappingError);
        std::memset(TestPool::device(d), 0x20, 4096);
        std::memset(buf, 0x30, 4096);
        CHECK(t.tlb.sync_for_device(d, 4096, DmaDirection::from_device));
        CHECK(TestPool::device(d)[0] == 0x20);
        CHECK(t.tlb.sync_for_cpu(d, 4096, DmaDirection::from_device));
        CHECK(buf[0] == 0x20);
        CHECK(t.tlb.unmap(d, 4096, DmaDirection::from_device));
    }
    t.check();
}

TEST_CASE("swiotlb: min_align_mask bits of the original address are kept") {
    for (unsigned page_shift : {12u, 16u}) {
        TestPool t(2 * MiB, 1, page_shift);
        std::mt19937_64 rng(page_shift);
        std::vector<std::pair<dma_addr_t, std::size_t>> live;
        for (std::uint64_t mask : {0x0ull, 0x3ull, 0x7ffull, 0xfffull, 0x3fffull, 0xffffull}) {
            for (int i = 0; i < 40; ++i) {
                std::uint64_t off = rng() % (2 * MiB);
                std::size_t size = 1 + rng() % (64 * KiB);
                CAPTURE(mask);
                CAPTURE(off);
                CAPTURE(size);
                std::uint8_t* buf = t.priv(off);
                dma_addr_t dma = t.tlb.map(buf, size, DmaDirection::to_device, mask, 0, 0, nullptr);
                REQUIRE(dma != kDmaMappingError);
                CHECK((dma & mask) == (ptr_gpa(buf) & mask));
                CHECK(std::memcmp(TestPool::device(dma), buf, size) == 0);
                CHECK(segment_of(t, dma) == segment_of(t, dma + size - 1));
                t.check();
                live.emplace_back(dma, size);
                if (live.size() > 6) {
                    CHECK(t.tlb.unmap(live.front().first, live.front().second,
                                      DmaDirection::to_device));
                    live.erase(live.begin());
                }
            }
        }
        for (auto [dma, size] : live)
            CHECK(t.tlb.unmap(dma, size, DmaDirection::to_device));
        CHECK(t.tlb.used_slots() == 0);
        t.check();
    }
}

TEST_CASE("swiotlb: min_align_mask above alloc_align_mask: offset past a slot, no overlap") {
    // Linux needed "pad slots" here: the kept offset (0xc00) is more than a
    // slot, so the allocation's first slot is not the bounce address's slot.
    TestPool t(MiB, 1, 12);
    std::uint8_t* buf = t.priv(0x10c00);
    dma_addr_t a = t.tlb.map(buf, 5000, DmaDirection::to_device, 0xfff, 0xfff, 0, nullptr);
    REQUIRE(a != kDmaMappingError);
    CHECK((a & 0xfff) == 0xc00);
    dma_addr_t b = t.tlb.map(buf, 5000, DmaDirection::to_device, 0xfff, 0xfff, 0, nullptr);
    REQUIRE(b != kDmaMappingError);
    CHECK((b & 0xfff) == 0xc00);
    // The two bounce ranges do not overlap, and the slot that holds only
    // the offset belongs to the allocation, not to a neighbour.
    CHECK((b >= a + 5000 || a >= b + 5000));
    t.check();
    CHECK(t.tlb.used_slots() == 8); // (0xc00 + 5000) rounded to 4 KiB granules: 8 KiB each
    CHECK(t.tlb.unmap(b, 5000, DmaDirection::to_device));
    CHECK(t.tlb.unmap(a, 5000, DmaDirection::to_device));
    CHECK(t.tlb.used_slots() == 0);
    t.check();
}

TEST_CASE("swiotlb: alloc_align_mask aligns the start and covers whole granules") {
    TestPool t(MiB);
    std::uint8_t* buf = t.priv(0x10000);
    // Move the search index off any alignment first.
    dma_addr_t small = t.tlb.map(buf, 100, DmaDirection::to_device, 0, 0, 0, nullptr);
    REQUIRE(small != kDmaMappingError);
    for (std::uint64_t mask : {0x7ffull, 0xfffull, 0x3fffull, 0xffffull, 0x1ffffull, 0x3ffffull}) {
        CAPTURE(mask);
        dma_addr_t dma = t.tlb.map(buf, 3000, DmaDirection::to_device, 0, mask, 0, nullptr);
        REQUIRE(dma != kDmaMappingError);
        CHECK((dma & mask) == 0);
        CHECK(t.tlb.used_slots() == 1 + (std::max<std::uint64_t>(mask + 1, 4096)) / kSlot);
        CHECK(t.tlb.unmap(dma, 3000, DmaDirection::to_device));
        t.check();
    }
    // Masks that are not 2^k - 1, or reach a segment, are refused.
    CHECK(map_error(t.tlb, buf, 100, 0, 0x1000).kind == DmaError::bad_argument);
    CHECK(map_error(t.tlb, buf, 100, 0x1001, 0).kind == DmaError::bad_argument);
    CHECK(map_error(t.tlb, buf, 100, 0, 2 * Swiotlb::kSegmentSize - 1).kind ==
          DmaError::bad_argument);
    CHECK(map_error(t.tlb, buf, 100, 2 * Swiotlb::kSegmentSize - 1, 0).kind ==
          DmaError::bad_argument);
    CHECK(map_error(t.tlb, nullptr, 100).kind == DmaError::bad_argument);
    CHECK(map_error(t.tlb, buf, 0).kind == DmaError::bad_argument);
    CHECK(t.tlb.unmap(small, 100, DmaDirection::to_device));
}

TEST_CASE("swiotlb: mappings of a page or more are page aligned") {
    for (unsigned page_shift : {12u, 16u}) {
        CAPTURE(page_shift);
        const std::uint64_t page = std::uint64_t{1} << page_shift;
        TestPool t(2 * MiB, 1, page_shift);
        std::uint8_t* buf = t.priv(0x10000 + 123);
        std::vector<std::pair<dma_addr_t, std::size_t>> live;
        for (std::size_t size :
             {std::size_t{100}, std::size_t(page), std::size_t{2048}, std::size_t(page + 1),
              std::size_t{3000}, std::size_t(2 * page), std::size_t{200 * KiB}}) {
            dma_addr_t dma = t.tlb.map(buf, size, DmaDirection::to_device, 0, 0, 0, nullptr);
            REQUIRE(dma != kDmaMappingError);
            if (size >= page)
                CHECK(dma % page == 0);
            else
                CHECK(dma % kSlot == 0);
            live.emplace_back(dma, size);
            t.check();
        }
        for (auto [dma, size] : live)
            CHECK(t.tlb.unmap(dma, size, DmaDirection::to_device));
        t.check();
    }
}

TEST_CASE("swiotlb: an 8 KiB coherent ring after unaligned allocations is page aligned and "
          "overlaps nothing (CVE-2024-35814)") {
    // Linux's regression: with a 4 KiB page, mappings with a min_align_mask
    // left the area's search index on an odd slot, and the next 8 KiB
    // dma_alloc_coherent (a virtqueue) came back page-unaligned, overlapping
    // a live mapping.
    TestPool t(MiB, 1, 12);
    std::memset(TestPool::device(t.range.base), 0xab, 64 * KiB); // stale pool bytes
    std::uint8_t* buf = t.priv(0x10800);
    std::vector<dma_addr_t> small;
    for (int i = 0; i < 3; ++i) {
        dma_addr_t d = t.tlb.map(buf, 1500, DmaDirection::to_device, 0xfff, 0, 0, nullptr);
        REQUIRE(d != kDmaMappingError);
        CHECK((d & 0xfff) == 0x800); // odd slots
        small.push_back(d);
    }
    // One more slot: the search index is now odd (slot 7).
    dma_addr_t odd = t.tlb.map(buf, 100, DmaDirection::to_device, 0, 0, 0, nullptr);
    REQUIRE(odd == t.range.base + 6 * kSlot);
    small.push_back(odd);

    for (std::size_t size : {std::size_t{8 * KiB}, std::size_t{4 * KiB + 1}}) {
        CAPTURE(size);
        dma_addr_t ring_dma = 0;
        void* ring = t.tlb.alloc(size, &ring_dma, 0, nullptr);
        REQUIRE(ring != nullptr);
        CHECK(ring_dma % 4096 == 0);
        CHECK(ptr_gpa(ring) == ring_dma);
        for (dma_addr_t d : small)
            CHECK((d + 1500 <= ring_dma || d >= ring_dma + size));
        t.check();
        // Zeroed, although the slots held stale bytes.
        CHECK(std::all_of(static_cast<std::uint8_t*>(ring), static_cast<std::uint8_t*>(ring) + size,
                          [](std::uint8_t b) { return b == 0; }));
        small.push_back(ring_dma);
    }
    t.check();
}

TEST_CASE("swiotlb: coherent allocations are zeroed, aligned, and freed only as allocated") {
    TestPool t(MiB);
    std::uint8_t* buf = t.priv(0x10000);
    std::memset(TestPool::device(t.range.base), 0xab, 64 * KiB); // stale pool bytes
    dma_addr_t d1 = 0;
    auto* p1 = static_cast<std::uint8_t*>(t.tlb.alloc(100, &d1, 0, nullptr));
    REQUIRE(p1 != nullptr);
    CHECK(d1 % kSlot == 0);
    CHECK(std::all_of(p1, p1 + 100, [](std::uint8_t b) { return b == 0; }));
    dma_addr_t d2 = 0;
    auto* p2 = static_cast<std::uint8_t*>(t.tlb.alloc(20000, &d2, 0, nullptr));
    REQUIRE(p2 != nullptr);
    CHECK(d2 % (32 * KiB) == 0); // 20000 rounds up to 32 KiB
    dma_addr_t d3 = 0;
    auto* p3 = static_cast<std::uint8_t*>(t.tlb.alloc(200 * KiB, &d3, 0, nullptr));
    REQUIRE(p3 != nullptr);
    CHECK(d3 % (64 * KiB) == 0); // at most a page
    t.check();

    CHECK_FALSE(t.tlb.free(p2, 19999, d2));         // size mismatch
    CHECK_FALSE(t.tlb.free(p2 + kSlot, 20000, d2)); // pointer and address disagree
    CHECK_FALSE(t.tlb.free(p2, 20000, d2 + kSlot)); // not the start
    CHECK_FALSE(t.tlb.free(nullptr, 20000, d2));
    CHECK_FALSE(t.tlb.unmap(d2, 20000, DmaDirection::bidirectional)); // not a mapping
    CHECK_FALSE(t.tlb.sync_for_cpu(d2, 100, DmaDirection::bidirectional));
    dma_addr_t m = t.tlb.map(buf, 100, DmaDirection::bidirectional, 0, 0, 0, nullptr);
    REQUIRE(m != kDmaMappingError);
    CHECK_FALSE(t.tlb.free(TestPool::device(m), 100, m)); // a mapping is not coherent memory
    CHECK(t.tlb.unmap(m, 100, DmaDirection::bidirectional));

    CHECK(t.tlb.free(p2, 20000, d2));
    CHECK_FALSE(t.tlb.free(p2, 20000, d2)); // twice
    CHECK(t.tlb.free(p1, 100, d1));
    CHECK(t.tlb.free(p3, 200 * KiB, d3));
    CHECK(t.tlb.used_slots() == 0);
    t.check();

    DmaError err;
    dma_addr_t d = 0;
    CHECK(t.tlb.alloc(0, &d, 0, &err) == nullptr);
    CHECK(err.kind == DmaError::bad_argument);
    CHECK(t.tlb.alloc(100, nullptr, 0, &err) == nullptr);
    CHECK(err.kind == DmaError::bad_argument);
    CHECK(t.tlb.alloc(Swiotlb::kSegmentSize + 1, &d, 0, &err) == nullptr);
    CHECK(err.kind == DmaError::too_large);
}

TEST_CASE("swiotlb: the largest mapping is a segment, 256 KiB") {
    TestPool t(MiB);
    std::uint8_t* buf = t.priv(0x100000);
    CHECK(t.tlb.max_mapping_size(0) == 256 * KiB);
    CHECK(t.tlb.max_mapping_size(0x7ff) == 254 * KiB);
    CHECK(t.tlb.max_mapping_size(0xfff) == 252 * KiB);

    fill_pattern(buf, 256 * KiB, 9);
    dma_addr_t dma = t.tlb.map(buf, 256 * KiB, DmaDirection::to_device, 0, 0, 0, nullptr);
    REQUIRE(dma != kDmaMappingError);
    CHECK((dma - t.range.base) % Swiotlb::kSegmentSize == 0);
    CHECK(has_pattern(TestPool::device(dma), 256 * KiB, 9));
    CHECK(t.tlb.unmap(dma, 256 * KiB, DmaDirection::to_device));

    DmaError err = map_error(t.tlb, buf, 256 * KiB + 1);
    CHECK(err.kind == DmaError::too_large);
    CHECK(err.size == 256 * KiB + 1);
    CHECK(map_error(t.tlb, buf, ~std::size_t{0}).kind == DmaError::too_large);
    // With a kept offset, a full segment no longer fits.
    CHECK(map_error(t.tlb, buf + 1, 256 * KiB, 0x7ff).kind == DmaError::too_large);
    // The advertised maximum always fits, whatever the offset.
    for (std::uint64_t mask : {0x7ffull, 0xfffull, 0x3fffull}) {
        for (std::uint64_t off : {std::uint64_t{0}, mask / 2, mask}) {
            std::size_t size = t.tlb.max_mapping_size(mask);
            dma_addr_t d = t.tlb.map(buf + off, size, DmaDirection::to_device, mask, 0, 0, nullptr);
            CAPTURE(mask);
            CAPTURE(off);
            REQUIRE(d != kDmaMappingError);
            CHECK(t.tlb.unmap(d, size, DmaDirection::to_device));
        }
    }
    t.check();
}

TEST_CASE("swiotlb: pool full reports the size asked, total and used slots") {
    TestPool t(MiB); // 512 slots
    std::uint8_t* buf = t.priv(0x10000);
    std::vector<dma_addr_t> live;
    for (int i = 0; i < 255; ++i) {
        dma_addr_t d = t.tlb.map(buf, 4096, DmaDirection::to_device, 0, 0, 0, nullptr);
        REQUIRE(d != kDmaMappingError);
        live.push_back(d);
    }
    CHECK(t.tlb.used_slots() == 510);
    DmaError err = map_error(t.tlb, buf, 8192);
    CHECK(err.kind == DmaError::pool_full);
    CHECK(err.size == 8192);
    CHECK(err.total_slots == 512);
    CHECK(err.used_slots == 510);
    char line[160];
    describe_dma_error(err, line, sizeof line);
    CHECK(std::string(line) ==
          "swiotlb buffer is full (sz: 8192 bytes), total 512 (slots), used 510 (slots)");
    // Two slots remain: a 4 KiB mapping still fits, then nothing does.
    dma_addr_t last = t.tlb.map(buf, 4096, DmaDirection::to_device, 0, 0, 0, nullptr);
    CHECK(last != kDmaMappingError);
    err = map_error(t.tlb, buf, 1);
    CHECK(err.kind == DmaError::pool_full);
    CHECK(err.used_slots == 512);
    dma_addr_t d = 0;
    CHECK(t.tlb.alloc(64, &d, 0, &err) == nullptr);
    CHECK(err.kind == DmaError::pool_full);
    t.check();
    // Freeing one mapping makes room again.
    CHECK(t.tlb.unmap(live[100], 4096, DmaDirection::to_device));
    dma_addr_t again = t.tlb.map(buf, 4096, DmaDirection::to_device, 0, 0, 0, nullptr);
    CHECK(again == live[100]);
    t.check();
}

TEST_CASE("swiotlb: map takes the slots at the search index when they fit, else what the full "
          "search finds from there") {
    // map()'s fast path tries only the search index's slot; when that is
    // taken, misaligned or too short, the full search runs from the same
    // index. Either way the result is the next fit, as in Linux.
    TestPool t(MiB); // 512 slots, one area; 64 KiB pages (32 slots)
    std::uint8_t* buf = t.priv(0x10000);
    auto map4k = [&]() {
        return t.tlb.map(buf, 4096, DmaDirection::to_device, 0, 0, 0, nullptr);
    };
    const dma_addr_t base = t.range.base;
    std::vector<dma_addr_t> live;
    for (int i = 0; i < 3; ++i)
        live.push_back(map4k());
    CHECK(live == std::vector<dma_addr_t>{base, base + 2 * kSlot, base + 4 * kSlot});
    // Not the area's latest allocation, but below the search index: the
    // index moves back to it (lowest free slots first), and the next mapping
    // fills the hole at slot 2, then goes on at slot 6.
    CHECK(t.tlb.unmap(live[1], 4096, DmaDirection::to_device));
    CHECK(map4k() == base + 2 * kSlot);
    CHECK(map4k() == base + 6 * kSlot);
    t.check();
    // Slot 2 again free, then slot 6 (the latest, above slot 2): the index
    // stays on the lower hole.
    CHECK(t.tlb.unmap(base + 2 * kSlot, 4096, DmaDirection::to_device));
    CHECK(t.tlb.unmap(base + 6 * kSlot, 4096, DmaDirection::to_device));
    CHECK(map4k() == base + 2 * kSlot);
    // Its fast path missed nothing: slot 4 is taken, so the next mapping's
    // full search goes on from slot 4 to the free slot 6.
    CHECK(map4k() == base + 6 * kSlot);
    t.check();
    // Fill slots 8..511, then the index wraps to slot 0, which is taken, and
    // the full search finds the hole left at slot 2.
    for (int i = 0; i < 252; ++i)
        REQUIRE(map4k() == base + (8 + 2 * static_cast<std::uint64_t>(i)) * kSlot);
    CHECK(t.tlb.unmap(base + 2 * kSlot, 4096, DmaDirection::to_device));
    CHECK(t.tlb.unmap(base + 8 * kSlot, 4096, DmaDirection::to_device)); // above: no move
    CHECK(map4k() == base + 2 * kSlot);
    CHECK(map4k() == base + 8 * kSlot);
    CHECK(t.tlb.used_slots() == 512);
    // Full: the fast path's success must not survive the failed search.
    DmaError err = map_error(t.tlb, buf, 1);
    CHECK(err.kind == DmaError::pool_full);
    CHECK(err.used_slots == 512);
    t.check();
    // Free slots 64..95 (a whole 64 KiB page), then slots 2..3: the area's
    // latest allocation, so the index rewinds to slot 2.
    for (std::uint64_t slot = 64; slot < 96; slot += 2)
        CHECK(t.tlb.unmap(base + slot * kSlot, 4096, DmaDirection::to_device));
    CHECK(t.tlb.unmap(base + 2 * kSlot, 4096, DmaDirection::to_device));
    t.check();
    // A page-sized mapping: slot 2 is not page aligned (nor a page long); the
    // search lands on the page-aligned free run at slot 64.
    const dma_addr_t page_map = t.tlb.map(buf, 64 * KiB, DmaDirection::to_device, 0, 0, 0, &err);
    CHECK(page_map == base + 64 * kSlot);
    CHECK(err.kind == DmaError::none);
    // Its end (slot 96, taken) is now the index; a small mapping takes slots
    // 2..3 after the search wraps past the pool's end.
    CHECK(map4k() == base + 2 * kSlot);
    CHECK(t.tlb.unmap(page_map, 64 * KiB, DmaDirection::to_device));
    // The page is free again; the index (slot 4) is not page aligned, and the
    // search finds slot 64 again.
    CHECK(t.tlb.map(buf, 64 * KiB, DmaDirection::to_device, 0, 0, 0, nullptr) == base + 64 * kSlot);
    t.check();
}

TEST_CASE("swiotlb: a queue of mappings freed in order keeps reusing the lowest slots") {
    // A block device's pattern: N mappings in flight, the oldest unmapped
    // and a new one mapped. Lowest free slots first keeps the working set to
    // N allocations at the start of the area (cache-hot lines); next-fit
    // would walk the whole pool.
    TestPool t(4 * MiB); // 2048 slots, one area
    std::uint8_t* buf = t.priv(0x20000);
    constexpr std::size_t kBytes = 128 * KiB; // 64 slots, page aligned
    constexpr int kInFlight = 8;
    std::vector<dma_addr_t> ring;
    for (int i = 0; i < kInFlight; ++i)
        ring.push_back(t.tlb.map(buf, kBytes, DmaDirection::from_device, 0, 0, 0, nullptr));
    dma_addr_t highest = 0;
    for (int i = 0; i < 200; ++i) {
        const std::size_t oldest = static_cast<std::size_t>(i) % kInFlight;
        REQUIRE(t.tlb.unmap(ring[oldest], kBytes, DmaDirection::from_device));
        ring[oldest] = t.tlb.map(buf, kBytes, DmaDirection::from_device, 0, 0, 0, nullptr);
        REQUIRE(ring[oldest] != kDmaMappingError);
        highest = std::max(highest, ring[oldest]);
    }
    CHECK(highest < t.range.base + kInFlight * kBytes);
    for (dma_addr_t d : ring)
        CHECK(t.tlb.unmap(d, kBytes, DmaDirection::from_device));
    t.check();
}

TEST_CASE("swiotlb: fragmentation is pool_full, never too_large") {
    TestPool t(MiB);
    std::uint8_t* buf = t.priv(0x10000);
    // Every other slot taken: 256 free slots, but no two adjacent.
    std::vector<dma_addr_t> all;
    for (int i = 0; i < 512; ++i)
        all.push_back(t.tlb.map(buf, 100, DmaDirection::to_device, 0, 0, 0, nullptr));
    for (int i = 0; i < 512; i += 2)
        CHECK(t.tlb.unmap(all[i], 100, DmaDirection::to_device));
    t.check();
    CHECK(t.tlb.used_slots() == 256);
    DmaError err = map_error(t.tlb, buf, 4096);
    CHECK(err.kind == DmaError::pool_full);
    CHECK(t.tlb.map(buf, 2048, DmaDirection::to_device, 0, 0, 0, nullptr) != kDmaMappingError);
}

TEST_CASE("swiotlb: areas: start in the cpu's area, fall back to the others, free to the owner") {
    TestPool t(2 * MiB, 4); // 4 areas of 256 slots
    REQUIRE(t.tlb.area_count() == 4);
    std::uint8_t* buf = t.priv(0x10000);
    auto area_of = [&](dma_addr_t d) {
        return t.tlb.area_of_slot(static_cast<std::uint32_t>((d - t.range.base) / kSlot));
    };
    for (unsigned cpu = 0; cpu < 8; ++cpu) {
        dma_addr_t d = t.tlb.map(buf, 100, DmaDirection::to_device, 0, 0, cpu, nullptr);
        REQUIRE(d != kDmaMappingError);
        CHECK(area_of(d) == cpu % 4);
        CHECK(t.tlb.unmap(d, 100, DmaDirection::to_device));
    }
    // Fill area 1; cpu 1 then lands in area 2, then 3, 0.
    std::vector<dma_addr_t> area1;
    for (int i = 0; i < 64; ++i) {
        dma_addr_t d = t.tlb.map(buf, 8192, DmaDirection::to_device, 0, 0, 1, nullptr);
        REQUIRE(d != kDmaMappingError);
        CHECK(area_of(d) == 1);
        area1.push_back(d);
    }
    CHECK(t.tlb.area_used(1) == 256);
    dma_addr_t d2 = t.tlb.map(buf, 8192, DmaDirection::to_device, 0, 0, 1, nullptr);
    REQUIRE(d2 != kDmaMappingError);
    CHECK(area_of(d2) == 2);
    // Freed from anywhere, it goes back to its own area.
    CHECK(t.tlb.unmap(d2, 8192, DmaDirection::to_device));
    CHECK(t.tlb.area_used(2) == 0);
    CHECK(t.tlb.area_used(1) == 256);
    // Fill areas 2 and 3 too: cpu 1 wraps around to area 0.
    std::vector<dma_addr_t> more;
    for (int i = 0; i < 128; ++i)
        more.push_back(t.tlb.map(buf, 8192, DmaDirection::to_device, 0, 0, 2, nullptr));
    CHECK(t.tlb.area_used(2) == 256);
    CHECK(t.tlb.area_used(3) == 256);
    dma_addr_t d0 = t.tlb.map(buf, 8192, DmaDirection::to_device, 0, 0, 1, nullptr);
    REQUIRE(d0 != kDmaMappingError);
    CHECK(area_of(d0) == 0);
    t.check();
    // A mapping larger than what is left in every area fails, with numbers.
    for (int i = 0; i < 63; ++i)
        more.push_back(t.tlb.map(buf, 8192, DmaDirection::to_device, 0, 0, 0, nullptr));
    DmaError err;
    CHECK(t.tlb.map(buf, 100, DmaDirection::to_device, 0, 0, 3, &err) == kDmaMappingError);
    CHECK(err.kind == DmaError::pool_full);
    CHECK(err.used_slots == 1024);
    CHECK(err.total_slots == 1024);
    for (dma_addr_t d : area1)
        CHECK(t.tlb.unmap(d, 8192, DmaDirection::to_device));
    for (dma_addr_t d : more)
        CHECK(t.tlb.unmap(d, 8192, DmaDirection::to_device));
    CHECK(t.tlb.unmap(d0, 8192, DmaDirection::to_device));
    CHECK(t.tlb.used_slots() == 0);
    t.check();
}

TEST_CASE("swiotlb: random churn never double-allocates (invariants after every step)") {
    for (unsigned areas : {1u, 4u}) {
        CAPTURE(areas);
        // 1 MiB + 64 KiB: a part segment at the end, too.
        TestPool t(MiB + 64 * KiB, areas, 12, 64 * KiB);
        std::mt19937_64 rng(areas * 77);
        struct Live {
            dma_addr_t dma;
            std::size_t size;
            std::uint64_t orig;
            DmaDirection dir;
            bool coherent;
            std::uint8_t seed;
        };
        std::vector<Live> live;
        for (int step = 0; step < 3000; ++step) {
            CAPTURE(step);
            bool do_map = live.empty() || rng() % 100 < 55;
            if (do_map) {
                std::size_t size = 1 + rng() % (rng() % 4 == 0 ? 256 * KiB : 9000);
                std::uint64_t orig = rng() % (3 * MiB);
                std::uint64_t min_mask = (std::uint64_t{1} << (rng() % 15)) - 1;
                if (rng() % 3 == 0)
                    min_mask = 0;
                std::uint64_t alloc_mask =
                    rng() % 4 == 0 ? (std::uint64_t{1} << (rng() % 17)) - 1 : 0;
                auto dir = static_cast<DmaDirection>(rng() % 3);
                auto seed = static_cast<std::uint8_t>(rng());
                bool coherent = rng() % 8 == 0;
                DmaError err;
                Live l{0, size, orig, dir, coherent, seed};
                if (coherent) {
                    void* p = t.tlb.alloc(size, &l.dma, static_cast<unsigned>(rng()), &err);
                    if (p == nullptr) {
                        CHECK((err.kind == DmaError::pool_full || err.kind == DmaError::too_large));
                        t.check();
                        continue;
                    }
                    fill_pattern(static_cast<std::uint8_t*>(p), size, seed);
                } else {
                    fill_pattern(t.priv(orig), size, seed);
                    l.dma = t.tlb.map(t.priv(orig), size, dir, min_mask, alloc_mask,
                                      static_cast<unsigned>(rng()), &err);
                    if (l.dma == kDmaMappingError) {
                        CHECK((err.kind == DmaError::pool_full || err.kind == DmaError::too_large));
                        CHECK(err.total_slots == t.tlb.total_slots());
                        CHECK(err.used_slots == t.tlb.used_slots());
                        t.check();
                        continue;
                    }
                    CHECK((l.dma & min_mask) == (orig & min_mask));
                    CHECK(has_pattern(TestPool::device(l.dma), size, seed));
                    // Different bytes from here on, so a later overlap shows.
                    fill_pattern(TestPool::device(l.dma), size,
                                 static_cast<std::uint8_t>(seed + 1));
                }
                CHECK(segment_of(t, l.dma) == segment_of(t, l.dma + l.size - 1));
                for (const Live& o : live)
                    REQUIRE((o.dma + o.size <= l.dma || l.dma + l.size <= o.dma));
                live.push_back(l);
            } else {
                std::size_t i = rng() % live.size();
                Live l = live[i];
                live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
                if (l.coherent) {
                    CHECK(has_pattern(TestPool::device(l.dma), l.size, l.seed));
                    CHECK(t.tlb.free(TestPool::device(l.dma), l.size, l.dma));
                } else {
                    CHECK(has_pattern(TestPool::device(l.dma), l.size,
                                      static_cast<std::uint8_t>(l.seed + 1)));
                    CHECK(t.tlb.unmap(l.dma, l.size, l.dir));
                    if (l.dir != DmaDirection::to_device)
                        CHECK(has_pattern(t.priv(l.orig), l.size,
                                          static_cast<std::uint8_t>(l.seed + 1)));
                }
            }
            t.check();
        }
        for (const Live& l : live) {
            if (l.coherent)
                CHECK(t.tlb.free(TestPool::device(l.dma), l.size, l.dma));
            else
                CHECK(t.tlb.unmap(l.dma, l.size, l.dir));
        }
        CHECK(t.tlb.used_slots() == 0);
        t.check();
    }
}

TEST_CASE("swiotlb: two threads on two areas map, bounce and unmap concurrently") {
    TestPool t(4 * MiB, 2);
    REQUIRE(t.tlb.area_count() == 2);
    std::atomic<int> failures{0};
    auto worker = [&](unsigned cpu) {
        std::mt19937_64 rng(cpu);
        // Each thread owns half of the private region.
        std::uint8_t* mine = t.priv(cpu * 2 * MiB);
        for (int i = 0; i < 20000; ++i) {
            std::size_t size = 1 + rng() % (i % 16 == 0 ? 64 * KiB : 4096);
            auto seed = static_cast<std::uint8_t>(rng());
            fill_pattern(mine, size, seed);
            // Most go to the thread's own area; some cross to the other.
            unsigned start = rng() % 8 == 0 ? cpu ^ 1 : cpu;
            dma_addr_t d = t.tlb.map(mine, size, DmaDirection::bidirectional, 0, 0, start, nullptr);
            if (d == kDmaMappingError) {
                ++failures;
                continue;
            }
            if (!has_pattern(TestPool::device(d), size, seed))
                ++failures;
            fill_pattern(TestPool::device(d), size, static_cast<std::uint8_t>(seed ^ 0x5a));
            if (!t.tlb.unmap(d, size, DmaDirection::bidirectional) ||
                !has_pattern(mine, size, static_cast<std::uint8_t>(seed ^ 0x5a)))
                ++failures;
        }
    };
    std::thread a(worker, 0u);
    std::thread b(worker, 1u);
    a.join();
    b.join();
    CHECK(failures.load() == 0);
    CHECK(t.tlb.used_slots() == 0);
    t.check();
}

TEST_CASE("swiotlb: alignment no segment can give is too_large, not pool_full") {
    // The pool starts 4 KiB past a 256 KiB boundary: no segment starts on one,
    // so a whole 256 KiB granule aligned to 256 KiB never fits.
    TestPool t(MiB, 1, 12, 4 * KiB);
    std::uint8_t* buf = t.priv(0x10000);
    DmaError err = map_error(t.tlb, buf, 4096, 0, Swiotlb::kSegmentSize - 1);
    CHECK(err.kind == DmaError::too_large);
    CHECK(err.size == 4096);
    CHECK(t.tlb.used_slots() == 0);
    // 128 KiB granules do fit, at the 256 KiB boundary inside a segment.
    dma_addr_t d = t.tlb.map(buf, 4096, DmaDirection::to_device, 0, 0x1ffff, 0, nullptr);
    REQUIRE(d != kDmaMappingError);
    CHECK(d % (128 * KiB) == 0);
    CHECK(segment_of(t, d) == segment_of(t, d + 128 * KiB - 1));
    CHECK(t.tlb.unmap(d, 4096, DmaDirection::to_device));
    t.check();
}
