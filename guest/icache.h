// Making code the guest just wrote executable: after copying or unpacking a
// kernel, the data cache lines are written back and the instruction cache
// invalidated over the range (Power ISA Book II, "instruction storage"). x86
// keeps its instruction cache coherent, so this is empty there.
#pragma once

#include <stdint.h>

namespace svmkit::guest {

inline void sync_icache(const void* start, uint64_t size) {
#if defined(__powerpc64__)
    // 32 bytes: no POWER cache block is smaller (POWER8/9 use 128), so no
    // line is skipped; dcbst/icbi on an address covers its whole block.
    constexpr uint64_t kLine = 32;
    const uint64_t begin = reinterpret_cast<uintptr_t>(start) & ~(kLine - 1);
    const uint64_t end = reinterpret_cast<uintptr_t>(start) + size;
    for (uint64_t a = begin; a < end; a += kLine)
        asm volatile("dcbst 0,%0" : : "r"(a) : "memory");
    asm volatile("sync" ::: "memory");
    for (uint64_t a = begin; a < end; a += kLine)
        asm volatile("icbi 0,%0" : : "r"(a) : "memory");
    asm volatile("sync; isync" ::: "memory");
#else
    (void)start;
    (void)size;
#endif
}

} // namespace svmkit::guest
