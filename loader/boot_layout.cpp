// The boot loader's memory rules (loader/boot_layout.h).
#include "loader/boot_layout.h"

namespace svmkit::loader {

namespace {

bool empty(AddressRange r) {
    return r.end <= r.start;
}

bool contains(AddressRange outer, AddressRange inner) {
    return !empty(inner) && outer.start <= inner.start && inner.end <= outer.end;
}

bool holds(AddressRange r, uint64_t address) {
    return r.start <= address && address < r.end;
}

// A /memreserve/ entry says nothing of what it holds: it is named after the
// first thing of the loader's own it contains (the firmware lists the FDT,
// the stack, the loader and the kexec image there, docs/loader-boot.md).
RangeKind memreserve_kind(const BootEnvironment& env, AddressRange r) {
    if (contains(r, env.self))
        return RangeKind::boot_loader;
    if (contains(r, env.fdt))
        return RangeKind::device_tree;
    if (holds(r, env.stack_probe))
        return RangeKind::stack;
    if (contains(r, env.kexec_image))
        return RangeKind::kexec_image;
    return RangeKind::firmware;
}

} // namespace

// A switch, not a table of pointers (loader/error_text.h says why).
const char* range_kind_name(RangeKind k) {
    switch (k) {
    case RangeKind::none:
        return "nothing";
    case RangeKind::boot_loader:
        return "the boot loader";
    case RangeKind::device_tree:
        return "the device tree";
    case RangeKind::stack:
        return "the loader's stack";
    case RangeKind::kexec_image:
        return "the kexec image buffer";
    case RangeKind::image_buffer:
        return "the image buffer";
    case RangeKind::firmware:
        return "a firmware reservation";
    case RangeKind::reserved_memory:
        return "a /reserved-memory range";
    case RangeKind::exception_vectors:
        return "the exception vectors";
    case RangeKind::guest_ram:
        return "guest RAM";
    case RangeKind::segment:
        return "segment";
    }
    return "an unknown range";
}

const char* range_kind_id(RangeKind k) {
    switch (k) {
    case RangeKind::none:
        return "none";
    case RangeKind::boot_loader:
        return "boot_loader";
    case RangeKind::device_tree:
        return "device_tree";
    case RangeKind::stack:
        return "stack";
    case RangeKind::kexec_image:
        return "kexec_image";
    case RangeKind::image_buffer:
        return "image_buffer";
    case RangeKind::firmware:
        return "firmware";
    case RangeKind::reserved_memory:
        return "reserved_memory";
    case RangeKind::exception_vectors:
        return "exception_vectors";
    case RangeKind::guest_ram:
        return "guest_ram";
    case RangeKind::segment:
        return "segment";
    }
    return "unknown";
}

bool add_reserved(BootConstraints* bc, AddressRange r, RangeKind kind) {
    if (empty(r))
        return true;
    if (bc->c.reserved_count >= kMaxReserved)
        return false;
    bc->kinds[bc->c.reserved_count] = kind;
    bc->c.reserved[bc->c.reserved_count++] = r;
    return true;
}

bool boot_constraints(const BootEnvironment& env, BootConstraints* out) {
    out->c.machine = env.machine;
    out->c.ram_start = env.ram.start;
    out->c.ram_end = env.ram.end;
    out->c.max_segment_size = kBootLoaderMaxSegment;
    out->c.reserved_count = 0;
    // The firmware's reservations first: a refusal names the first range a
    // segment hits, and these are the ones a host can predict exactly (the
    // FDT's own size depends on the command line; its reservation does not).
    bool ok = true;
    for (uint32_t i = 0; ok && i < env.memreserve_count; ++i)
        ok = add_reserved(out, env.memreserve[i], memreserve_kind(env, env.memreserve[i]));
    for (uint32_t i = 0; ok && i < env.reserved_memory_count; ++i)
        ok = add_reserved(out, env.reserved_memory[i], RangeKind::reserved_memory);
    return ok && add_reserved(out, env.self, RangeKind::boot_loader) &&
           add_reserved(out, env.fdt, RangeKind::device_tree);
}

LoadRefusal describe_refusal(ElfError e, const ElfErrorDetail& d, const BootConstraints& bc) {
    LoadRefusal r{static_cast<uint64_t>(e), d.segment, 0, 0, 0, kNoIndex, 0, 0};
    r.range_kind = static_cast<uint64_t>(RangeKind::none);
    if (d.segment != kNoIndex) {
        r.segment_start = d.start;
        r.segment_end = d.end;
    }
    if (e == ElfError::segment_in_reserved && d.reserved < bc.c.reserved_count) {
        r.range_kind = static_cast<uint64_t>(bc.kinds[d.reserved]);
        r.range_start = bc.c.reserved[d.reserved].start;
        r.range_end = bc.c.reserved[d.reserved].end;
    } else if (e == ElfError::segment_outside_ram) {
        r.range_kind = static_cast<uint64_t>(RangeKind::guest_ram);
        r.range_start = bc.c.ram_start;
        r.range_end = bc.c.ram_end;
    } else if (d.other_segment != kNoIndex) {
        r.range_kind = static_cast<uint64_t>(RangeKind::segment);
        r.range_index = d.other_segment;
        r.range_start = d.other_start;
        r.range_end = d.other_end;
    }
    return r;
}

} // namespace svmkit::loader
