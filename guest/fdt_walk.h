/* A strict walk over a flattened device tree's structure block, shared by
 * host code (format/dtb.cpp) and freestanding guest code (guest/fdt_util.cpp).
 *
 * Why: libfdt 1.6.1's fdt_check_full trusts a property's length while
 * stepping to the next tag; a huge length wraps the offset backwards and
 * fdt_check_full loops forever (found by tests/fuzz; reproducer in
 * tests/fuzz/regressions/). This walk bounds every step, so a tree that
 * passes it cannot make fdt_check_full loop. Header-only, no library calls. */
#ifndef SVMKIT_GUEST_FDT_WALK_H
#define SVMKIT_GUEST_FDT_WALK_H

#include <libfdt.h>
#include <stdint.h>

namespace svmkit::fdtwalk {

inline uint32_t be32_at(const unsigned char* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

/* 0, or a negative libfdt error. `size` is the buffer size (>= totalsize). */
inline int fdt_walk_strict(const void* fdt, uint64_t size) {
    if (size < sizeof(fdt_header) || fdt_magic(fdt) != FDT_MAGIC)
        return -FDT_ERR_BADMAGIC;
    /* Version 16 is the oldest whose node names are not full paths (the form
     * every current tool writes; libfdt 1.6.1's fdt_check_full dereferences
     * NULL on some older trees); 17 adds size_dt_struct. Beyond that, what
     * the specification and libfdt accept: a reader of version 17 can read
     * any tree whose last_comp_version is at most 17, and a tree cannot be
     * compatible with a version newer than its own. kexec-tools' fs2dt
     * writes version 17 with last_comp_version 17, dtc and QEMU 17 with 16. */
    if (fdt_version(fdt) < 16 || fdt_last_comp_version(fdt) > 17 ||
        fdt_version(fdt) < fdt_last_comp_version(fdt))
        return -FDT_ERR_BADVERSION;
    const uint64_t total = fdt_totalsize(fdt);
    const uint64_t s_off = fdt_off_dt_struct(fdt);
    const uint64_t str_off = fdt_off_dt_strings(fdt);
    const uint64_t str_size = fdt_size_dt_strings(fdt);
    if (total > size || s_off > total || str_off > total || str_size > total - str_off)
        return -FDT_ERR_TRUNCATED;
    const uint64_t s_size = fdt_version(fdt) >= 17 ? fdt_size_dt_struct(fdt) : total - s_off;
    if (s_size > total - s_off || s_off % 4 != 0)
        return -FDT_ERR_TRUNCATED;
    const unsigned char* base = static_cast<const unsigned char*>(fdt) + s_off;
    uint64_t off = 0;
    int depth = 0;
    for (;;) {
        if (s_size - off < 4)
            return -FDT_ERR_TRUNCATED;
        const uint32_t tag = be32_at(base + off);
        off += 4;
        switch (tag) {
        case FDT_BEGIN_NODE: {
            uint64_t n = off;
            while (n < s_size && base[n] != 0)
                ++n;
            if (n >= s_size)
                return -FDT_ERR_TRUNCATED;
            off = (n + 1 + 3) & ~uint64_t{3};
            ++depth;
            break;
        }
        case FDT_END_NODE:
            if (--depth < 0)
                return -FDT_ERR_BADSTRUCTURE;
            break;
        case FDT_NOP:
            break;
        case FDT_PROP: {
            if (s_size - off < 8 || depth < 1)
                return -FDT_ERR_BADSTRUCTURE;
            const uint64_t len = be32_at(base + off);
            const uint64_t nameoff = be32_at(base + off + 4);
            off += 8;
            if (len > s_size - off || nameoff >= str_size)
                return -FDT_ERR_BADSTRUCTURE;
            off = (off + len + 3) & ~uint64_t{3};
            break;
        }
        case FDT_END:
            return depth == 0 ? 0 : -FDT_ERR_BADSTRUCTURE;
        default:
            return -FDT_ERR_BADSTRUCTURE;
        }
        if (off > s_size)
            return -FDT_ERR_TRUNCATED;
    }
}

/* The one way svmkit checks an untrusted tree: the bounded walk above, then
 * libfdt's own complete check. 0, or a negative libfdt error. */
inline int fdt_check_full_strict(const void* fdt, uint64_t size) {
    if (size < sizeof(fdt_header))
        return -FDT_ERR_TRUNCATED;
    if (int err = fdt_walk_strict(fdt, size); err != 0)
        return err;
    return fdt_check_full(fdt, static_cast<size_t>(size));
}

} // namespace svmkit::fdtwalk

#endif
