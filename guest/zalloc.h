// A bump allocator over a scratch region (zlib's inflate state and window).
// Lives on the caller's stack; the region lies outside the image.
// Invariant: used <= size.
#pragma once

#include "guest/memory.h"

#include <stdint.h>

namespace svmkit::guest {

struct BumpArena {
    uint8_t* base = nullptr;
    uint64_t size = 0;
    uint64_t used = 0;
    // 16-byte aligned, zeroed; nullptr when the region is exhausted.
    void* allocate(uint64_t bytes);
};

} // namespace svmkit::guest

// Hidden: guest code takes their addresses (z_stream.zalloc), which -fpie
// would otherwise load from a GOT, and a GOT is writable data.
extern "C" {
__attribute__((visibility("hidden"))) void* zcalloc(void* opaque, unsigned items, unsigned size);
__attribute__((visibility("hidden"))) void zcfree(void* opaque, void* ptr);
}
