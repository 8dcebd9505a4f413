// What every run of the stub shares, on every target: the manifest, the
// image's extent, the RAM and the reserved ranges. (The entry points are in
// the arch layers, x86_64/ and ppc64le/.)
#include "stub/stub.h"

#include "guest/fdt_free.h"
#include "guest/fdt_util.h"

#include <libfdt.h>

namespace svmkit::stub {

void load_manifest(Stub& s) {
    const uint64_t at = ptr_gpa(__stub_end);
    const ManifestError e = read_manifest(__stub_end, kMaxManifestSize, &s.manifest);
    if (e != ManifestError::none) {
        s.say("error: the manifest at ").hex(at).str(" is unusable: ").str(manifest_error_name(e));
        s.con.nl();
        s.stop();
    }
    s.blob = Range{at, s.manifest.blob_size};
    const ManifestView& m = s.manifest;
    if (m.image_base % kPageSize != 0)
        s.fatal("the manifest's image base is not 64 KiB aligned");
    // The image spans from its base to the end of its last part; every
    // component must lie above the base and translate without overflow.
    uint64_t end = s.blob.end();
    for (int i = 0; i < kComponentCount; ++i) {
        const ComponentView& c = m.components[i];
        if (!c.present)
            continue;
        uint64_t placed_end = 0;
        if (c.stored.base < m.image_base ||
            add_overflows(s.kbase, c.stored.end() - m.image_base, &placed_end))
            s.fatal("a component lies outside the image");
        if (placed_end > end)
            end = placed_end;
    }
    s.image = Range{s.kbase, end - s.kbase};
}

void* checked_fdt(Stub& s, uint64_t gpa, const char* whose) {
    void* fdt = gpa_ptr<void>(gpa);
    if (gpa % 8 != 0 || fdt_magic(fdt) != FDT_MAGIC || fdt_totalsize(fdt) < sizeof(fdt_header) ||
        fdt_totalsize(fdt) > kMaxFdtSize + kFdtHeadroom) {
        s.say("error: no valid device tree at ").hex(gpa).str(" (").str(whose).str(")");
        s.con.nl();
        s.stop();
    }
    if (const int err = guest::fdt_check_full_strict(fdt, fdt_totalsize(fdt)); err != 0) {
        s.say("error: the device tree at ").hex(gpa).str(" (").str(whose).str(") is malformed: ");
        s.con.str(fdt_error_name(err)).nl();
        s.stop();
    }
    return fdt;
}

Range ram_from_fdt(Stub& s, const void* fdt) {
    Range ram;
    if (!fdt_first_memory(fdt, &ram) || ram.empty())
        s.fatal("the device tree describes no memory");
    if (!ram.contains(s.image))
        s.fatal("the image does not lie inside the memory the device tree describes");
    return ram;
}

void reserve_fixed(Stub& s, RegionAllocator& alloc, const void* fdt, uint64_t fdt_gpa) {
    const ComponentView& k = s.manifest.get(ComponentId::kernel);
    Range kernel;
    if (!make_range(k.load_address, k.memory_size, &kernel) || !alloc.ram().contains(kernel))
        s.fatal("the kernel's load range lies outside memory");
    if (kernel.overlaps(s.image))
        s.fatal("the kernel's load range overlaps the image");
    if (!alloc.reserve(s.image) || (!s.stack.empty() && !alloc.reserve(s.stack)))
        s.fatal("too many reserved memory ranges");
    switch (reserve_fdt_ranges(fdt, fdt_gpa, &alloc)) {
    case FdtReservations::ok:
        break;
    case FdtReservations::malformed:
        s.fatal("a /memreserve/ entry of the device tree is malformed");
    case FdtReservations::too_many:
        s.fatal("too many reserved memory ranges");
    }
    // The kernel is unpacked over its load range: nothing the platform or the
    // stub keeps may lie there.
    if (alloc.collides(kernel)) {
        s.say("error: the kernel's load range ").hex(kernel.base).str("..").hex(kernel.end());
        s.con.str(" overlaps reserved memory").nl();
        s.stop();
    }
    if (!alloc.reserve(kernel))
        s.fatal("too many reserved memory ranges");
}

} // namespace svmkit::stub
