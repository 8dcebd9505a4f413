// The DMA API's plain types (freestanding), shared by the DMA API (guest/dma.h)
// and the bounce pool behind it (guest/swiotlb.h).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

using dma_addr_t = uint64_t;
inline constexpr dma_addr_t kDmaMappingError = ~dma_addr_t{0};

enum class DmaDirection : uint8_t {
    to_device,     // the device reads the buffer
    from_device,   // the device writes the buffer
    bidirectional, // both
};

// One element of a scatter-gather list: the CPU buffer in, the device
// address out (set by map_sg).
struct DmaSegment {
    void* cpu = nullptr;
    size_t size = 0;
    dma_addr_t dma = kDmaMappingError;
};

// Why the last mapping failed, with the numbers a user needs to size the pool
// (Linux prints the same three: "swiotlb buffer is full (sz: N bytes), total
// T (slots), used U (slots)").
//   pool_full:    no room now; room comes back as mappings are unmapped (a
//                 block driver waits for its completions: map_sg_wait)
//   too_large:    can never be mapped by this pool (larger than a segment,
//                 or alignment that no segment can give)
//   bad_argument: null buffer, size 0, malformed masks, no coherent arena
struct DmaError {
    enum Kind : uint8_t { none, pool_full, too_large, bad_argument } kind = none;
    size_t size = 0; // bytes asked for
    uint64_t total_slots = 0;
    uint64_t used_slots = 0;
};

// Writes the error as one line, NUL-terminated, truncated to `cap` bytes, and
// returns its length, e.g. "swiotlb buffer is full (sz: 65536 bytes), total
// 32768 (slots), used 32760 (slots)".
size_t describe_dma_error(const DmaError& e, char* out, size_t cap);

} // namespace svmkit::guest
