// Guest-physical addresses and ranges for freestanding guest code.
//
// Guest code works in guest-physical addresses (what the FDT, the manifest and
// every ultracall use) and turns them into pointers only here. On the
// simulated platform guest RAM is mapped at SVMKIT_SIM_GUEST_VA_BASE (and
// guest code is linked for it); on ppc64le the stub runs in real mode, where
// virtual = physical.
#pragma once

#include "guest/layout.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

#if defined(__x86_64__)
inline constexpr uint64_t kGuestVaBase = SVMKIT_SIM_GUEST_VA_BASE;
#else
inline constexpr uint64_t kGuestVaBase = 0;
#endif
inline constexpr uint64_t kPageSize = SVMKIT_PAGE_SIZE;
inline constexpr uint64_t kPageShift = SVMKIT_PAGE_SHIFT;

template <typename T = uint8_t>
inline T* gpa_ptr(uint64_t gpa) {
    return reinterpret_cast<T*>(static_cast<uintptr_t>(gpa + kGuestVaBase));
}
inline uint64_t ptr_gpa(const void* p) {
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)) - kGuestVaBase;
}

// a + b, false on overflow.
inline bool add_overflows(uint64_t a, uint64_t b, uint64_t* sum) {
    return __builtin_add_overflow(a, b, sum);
}

// Rounds up to a power-of-two alignment; false on overflow.
inline bool align_up(uint64_t v, uint64_t align, uint64_t* out) {
    uint64_t s = 0;
    if (add_overflows(v, align - 1, &s))
        return false;
    *out = s & ~(align - 1);
    return true;
}

// A half-open guest-physical range [base, base + size).
// Invariant: base + size does not overflow (constructors check it).
struct Range {
    uint64_t base = 0;
    uint64_t size = 0;
    uint64_t end() const { return base + size; }
    bool empty() const { return size == 0; }
    bool overlaps(const Range& o) const {
        return size != 0 && o.size != 0 && base < o.end() && o.base < end();
    }
    bool contains(const Range& o) const { return o.base >= base && o.end() <= end(); }
};

// A range from untrusted numbers: false when it overflows.
inline bool make_range(uint64_t base, uint64_t size, Range* out) {
    uint64_t end = 0;
    if (add_overflows(base, size, &end))
        return false;
    *out = Range{base, size};
    return true;
}

} // namespace svmkit::guest
