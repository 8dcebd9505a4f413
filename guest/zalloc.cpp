// zlib's allocator for freestanding guest code: a bump allocator over a
// scratch region the caller places outside the image.
//
// zlib's inflateInit() installs zcalloc/zcfree when the stream's zalloc is
// null and hands them the stream's `opaque`; defining them here keeps zlib's
// own zutil.o (which calls malloc and carries a writable error table) out of
// the link. `opaque` must point at a svmkit::guest::BumpArena.
#include "guest/zalloc.h"

#include <string.h>

namespace svmkit::guest {

void* BumpArena::allocate(uint64_t bytes) {
    uint64_t start = 0;
    uint64_t end = 0;
    if (!align_up(used, 16, &start) || add_overflows(start, bytes, &end) || end > size)
        return nullptr;
    used = end;
    void* p = base + start;
    memset(p, 0, bytes);
    return p;
}

} // namespace svmkit::guest

extern "C" {

// Signatures as zutil.h declares them (voidpf zcalloc(voidpf, unsigned, unsigned)).
void* zcalloc(void* opaque, unsigned items, unsigned size) {
    if (opaque == nullptr)
        return nullptr;
    return static_cast<svmkit::guest::BumpArena*>(opaque)->allocate(uint64_t{items} * size);
}

void zcfree(void*, void*) {
    // A bump allocator frees everything at once, when the arena goes away.
}

} // extern "C"
