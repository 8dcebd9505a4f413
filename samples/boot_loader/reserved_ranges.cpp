// The loader's map of memory it must leave alone (boot_loader.h
// collect_reserved): one list for the ELF plan's constraints, the image
// buffer read from disk and the kexec buffer's move.
#include "samples/boot_loader/boot_loader.h"

#include "guest/fdt_util.h"

#include <libfdt.h>

namespace svmkit::boot_loader {

using namespace svmkit::guest;

bool collect_reserved(Loader& l, ReservedRanges* out) {
    out->count = 0;
    out->memreserve = 0;
    // Empty ranges are kept (the order says what each is); nothing overlaps them.
    auto add = [&](Range r) {
        if (out->count == ReservedRanges::kMax)
            return false;
        out->ranges[out->count++] = r;
        return true;
    };
    bool ok = add(l.self) && add(Range{l.fdt_gpa, fdt_totalsize(l.fdt)});
    const int n = fdt_num_mem_rsv(l.fdt);
    for (int i = 0; ok && i < n; ++i) {
        uint64_t base = 0;
        uint64_t size = 0;
        Range r;
        if (fdt_get_mem_rsv(l.fdt, i, &base, &size) != 0 || !make_range(base, size, &r)) {
            l.error("a /memreserve/ entry of the device tree is malformed").nl();
            return false;
        }
        ok = add(r);
        out->memreserve += ok ? 1 : 0;
    }
    Range pools[ReservedRanges::kMax];
    const int pool_count = fdt_reserved_memory(l.fdt, pools, ReservedRanges::kMax);
    if (pool_count < 0) {
        l.error("the device tree's /reserved-memory is malformed").nl();
        return false;
    }
    for (int i = 0; ok && i < pool_count; ++i)
        ok = add(pools[i]);
    if (!ok)
        l.error("the device tree reserves more than ")
            .dec(ReservedRanges::kMax)
            .str(" ranges")
            .nl();
    return ok;
}

} // namespace svmkit::boot_loader
