// Placement of what the stub puts into guest RAM (the FDT it builds, the
// initrd, the bounce pool, inflate's scratch memory, the kernel's stack):
// top-down, like Linux's memblock, 64 KiB aligned, never overlapping anything
// reserved.
//
// All state lives in the object, which lives on the stack: the stub has no
// writable data.
//
// Invariants: reserved_[0..count_) are the ranges in use (they may reach
// outside RAM); a range handed out by allocate() lies inside `ram`, is
// aligned, overlaps none of them, and joins them, so later allocations avoid it.
#pragma once

#include "guest/memory.h"

namespace svmkit::guest {

class RegionAllocator {
  public:
    static constexpr int kMaxReserved = 48;

    explicit RegionAllocator(Range ram) : ram_(ram) {}

    // Marks a range as in use. False when the table is full.
    bool reserve(Range r);
    // The highest `align`-aligned range of `size` bytes inside RAM that
    // overlaps nothing reserved; reserves it. False when none is left.
    bool allocate(uint64_t size, uint64_t align, Range* out);
    // True when `r` overlaps a reserved range.
    bool collides(Range r) const;

    Range ram() const { return ram_; }
    int count() const { return count_; }
    Range reserved(int i) const { return reserved_[i]; }

  private:
    Range ram_;
    Range reserved_[kMaxReserved];
    int count_ = 0;
};

} // namespace svmkit::guest
