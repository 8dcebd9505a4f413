// A bounce pool over real guest RAM for the swiotlb and DMA API tests: the
// simulated machine's guest memory at the fixed guest base (so gpa_ptr and
// ptr_gpa work as in a guest), private buffers in its first 4 MiB, the pool
// after them, and the pool's bookkeeping in host memory (private).
#pragma once

#include "guest/dma.h"
#include "guest/memory.h"
#include "guest/swiotlb.h"
#include "platform/guest_memory.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace svmkit::test {

inline constexpr std::uint64_t KiB = 1024;
inline constexpr std::uint64_t MiB = 1024 * KiB;

class TestPool {
  public:
    static constexpr std::uint64_t kPrivateSize = 4u << 20;
    static constexpr std::uint64_t kPoolBase = kPrivateSize;

    // `pool_base_offset` moves the pool off kPoolBase (a multiple of the page
    // the pool is initialised with).
    explicit TestPool(std::uint64_t pool_bytes, unsigned nareas = 1,
                      unsigned page_shift = guest::kPageShift, std::uint64_t pool_base_offset = 0) {
        std::uint64_t ram = kPoolBase + pool_base_offset + pool_bytes;
        ram = (ram + platform::kGuestPageSize - 1) & ~(platform::kGuestPageSize - 1);
        auto m = platform::GuestMemory::create(ram);
        REQUIRE_MESSAGE(m.has_value(), m.error().message);
        memory.emplace(std::move(*m));
        range = guest::Range{kPoolBase + pool_base_offset, pool_bytes};
        std::uint64_t meta =
            guest::Swiotlb::metadata_bytes(guest::Swiotlb::slots_in(pool_bytes), nareas);
        storage.resize(meta + guest::Swiotlb::kMetadataAlign);
        auto addr = reinterpret_cast<std::uintptr_t>(storage.data());
        metadata = storage.data() +
                   ((guest::Swiotlb::kMetadataAlign - addr % guest::Swiotlb::kMetadataAlign) %
                    guest::Swiotlb::kMetadataAlign);
        REQUIRE(tlb.init(range, nareas, metadata, meta, page_shift) ==
                guest::Swiotlb::InitError::none);
        REQUIRE(tlb.check_invariants() == nullptr);
    }

    // Private memory at guest-physical `gpa` (below kPrivateSize).
    std::uint8_t* priv(std::uint64_t gpa) {
        REQUIRE(gpa < kPrivateSize);
        return guest::gpa_ptr(gpa);
    }
    // What the device sees at `dma`.
    static std::uint8_t* device(guest::dma_addr_t dma) { return guest::gpa_ptr(dma); }

    void check() {
        const char* broken = tlb.check_invariants();
        REQUIRE_MESSAGE(broken == nullptr, broken);
    }

    std::optional<platform::GuestMemory> memory;
    std::vector<std::uint8_t> storage;
    std::uint8_t* metadata = nullptr;
    guest::Range range;
    guest::Swiotlb tlb;
};

inline void fill_pattern(std::uint8_t* p, std::size_t n, std::uint8_t seed) {
    for (std::size_t i = 0; i < n; ++i)
        p[i] = static_cast<std::uint8_t>(seed + i * 7 + (i >> 8));
}

inline bool has_pattern(const std::uint8_t* p, std::size_t n, std::uint8_t seed) {
    for (std::size_t i = 0; i < n; ++i)
        if (p[i] != static_cast<std::uint8_t>(seed + i * 7 + (i >> 8)))
            return false;
    return true;
}

} // namespace svmkit::test
