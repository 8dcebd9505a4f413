#include "guest/fdt_free.h"

#include <libfdt.h>

namespace svmkit::guest {

FdtReservations reserve_fdt_ranges(const void* fdt, uint64_t fdt_gpa, RegionAllocator* alloc) {
    Range tree;
    if (!make_range(fdt_gpa, fdt_totalsize(fdt), &tree))
        return FdtReservations::malformed;
    if (!alloc->reserve(tree))
        return FdtReservations::too_many;
    const int n = fdt_num_mem_rsv(fdt);
    for (int i = 0; i < n; ++i) {
        uint64_t base = 0;
        uint64_t size = 0;
        Range r;
        if (fdt_get_mem_rsv(fdt, i, &base, &size) != 0 || !make_range(base, size, &r))
            return FdtReservations::malformed;
        if (!alloc->reserve(r))
            return FdtReservations::too_many;
    }
    return FdtReservations::ok;
}

} // namespace svmkit::guest
