#include "guest/region_alloc.h"

namespace svmkit::guest {

bool RegionAllocator::reserve(Range r) {
    if (r.empty())
        return true;
    if (count_ == kMaxReserved)
        return false;
    reserved_[count_++] = r;
    return true;
}

bool RegionAllocator::collides(Range r) const {
    for (int i = 0; i < count_; ++i)
        if (reserved_[i].overlaps(r))
            return true;
    return false;
}

bool RegionAllocator::allocate(uint64_t size, uint64_t align, Range* out) {
    if (size == 0 || align == 0 || (align & (align - 1)) != 0 || size > ram_.size ||
        count_ == kMaxReserved)
        return false;
    uint64_t top = ram_.end();
    // Each round either succeeds or lowers `top` to the base of a reserved
    // range it overlapped, so the loop ends.
    while (top >= ram_.base + size) {
        const uint64_t base = (top - size) & ~(align - 1);
        if (base < ram_.base)
            return false;
        const Range candidate{base, size};
        uint64_t lowest_clash = top;
        bool clash = false;
        for (int i = 0; i < count_; ++i) {
            if (reserved_[i].overlaps(candidate)) {
                clash = true;
                if (reserved_[i].base < lowest_clash)
                    lowest_clash = reserved_[i].base;
            }
        }
        if (!clash) {
            reserved_[count_++] = candidate;
            *out = candidate;
            return true;
        }
        if (lowest_clash >= top)
            return false;
        top = lowest_clash;
    }
    return false;
}

} // namespace svmkit::guest
