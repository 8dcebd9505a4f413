// From an image in RAM to the stub: plan (strict validation), place with a
// SHA-256 per segment, report, purgatory recheck, jump (docs/loader-boot.md).
#include "samples/boot_loader/boot_loader.h"

#include "guest/fdt_util.h"
#include "guest/region_alloc.h"
#include "guest/uv_abi.h"
#include "loader/boot_layout.h"
#include "loader/elf_plan.h"
#include "loader/segment_digest.h"

#include <libfdt.h>
#include <string.h>

namespace svmkit::boot_loader {

using namespace svmkit::guest;

namespace {

// place_segments()/recheck_segments() reach guest RAM through this; the plan
// already keeps every segment inside RAM, this checks it once more.
uint8_t* to_pointer(void* ctx, uint64_t gpa, uint64_t size) {
    const Range& ram = *static_cast<const Range*>(ctx);
    Range r;
    if (!make_range(gpa, size, &r) || !ram.contains(r))
        return nullptr;
    return gpa_ptr<uint8_t>(gpa);
}

loader::AddressRange address_range(Range r) {
    return loader::AddressRange{r.base, r.end()};
}

// What the plan must keep clear (loader/boot_layout.h, the one definition the
// host's `svmkit load --plan` and `mkdisk` use too): everything
// collect_reserved() listed, and the image buffer unless it is empty (the
// first plan, which only asks where the segments go). False when there are
// too many ranges.
bool fill_constraints(const Loader& l, const ReservedRanges& reserved, Range buffer,
                      loader::BootConstraints* bc) {
    static_assert(ReservedRanges::kMax + 1 <= loader::kMaxReserved);
    loader::AddressRange memreserve[ReservedRanges::kMax];
    loader::AddressRange pools[ReservedRanges::kMax];
    const int first_pool = 2 + reserved.memreserve;
    for (int i = 2; i < first_pool; ++i)
        memreserve[i - 2] = address_range(reserved.ranges[i]);
    for (int i = first_pool; i < reserved.count; ++i)
        pools[i - first_pool] = address_range(reserved.ranges[i]);
    const int on_the_stack = 0;
    loader::BootEnvironment env{loader::kMachineX86_64,
                                address_range(l.ram),
                                address_range(reserved.ranges[0]),
                                address_range(reserved.ranges[1]),
                                ptr_gpa(&on_the_stack),
                                address_range(l.kexec_image),
                                memreserve,
                                static_cast<uint32_t>(reserved.memreserve),
                                pools,
                                static_cast<uint32_t>(reserved.count - first_pool)};
    const bool handed_over = buffer.base == l.kexec_image.base && buffer.size == l.kexec_image.size;
    return loader::boot_constraints(env, bc) &&
           loader::add_reserved(bc, address_range(buffer),
                                handed_over ? loader::RangeKind::kexec_image
                                            : loader::RangeKind::image_buffer);
}

// kexec-tools keeps an image's segments apart from where it reads them; this
// loader reads them straight from the buffer, so a buffer lying where the
// segments go (a secure kernel's initrd sits in its own image, at the base
// every secure image is linked for) is first copied to free RAM clear of
// them. Returns false, with the reason on the console, when there is no room.
bool move_buffer_clear_of(Loader& l, const ReservedRanges& reserved, const loader::LoadPlan& plan,
                          const uint8_t** image, uint64_t size, Range* buffer) {
    bool in_the_way = false;
    for (uint32_t i = 0; i < plan.count; ++i)
        in_the_way = in_the_way ||
                     Range{plan.segments[i].address, plan.segments[i].mem_size}.overlaps(*buffer);
    if (!in_the_way)
        return true;
    RegionAllocator alloc(l.ram);
    bool ok = alloc.reserve(*buffer);
    for (int i = 0; ok && i < reserved.count; ++i)
        ok = alloc.reserve(reserved.ranges[i]);
    for (uint32_t i = 0; ok && i < plan.count; ++i)
        ok = alloc.reserve(Range{plan.segments[i].address, plan.segments[i].mem_size});
    uint64_t want = 0;
    Range moved;
    if (!ok || !align_up(size, kPageSize, &want) || !alloc.allocate(want, kPageSize, &moved)) {
        l.error("the image lies where its segments go and there is no free RAM to move its ");
        l.con.dec(size).str(" bytes to").nl();
        return false;
    }
    memcpy(gpa_ptr<void>(moved.base), *image, size);
    l.say("the image lies where its segments go: moved from ").hex(buffer->base).str(" to ");
    l.con.hex(moved.base).nl();
    *image = gpa_ptr<const uint8_t>(moved.base);
    *buffer = Range{moved.base, size};
    return true;
}

// The image will not need the kexec buffer's description: the stub builds
// its own /chosen (bootargs, initrd) from the verified image.
void forget_kexec_buffer(const Loader& l) {
    const int chosen = fdt_path_offset(l.fdt, "/chosen");
    if (chosen < 0)
        return;
    fdt_delprop(l.fdt, chosen, "linux,initrd-start");
    fdt_delprop(l.fdt, fdt_path_offset(l.fdt, "/chosen"), "linux,initrd-end");
}

// A secure guest's loader (a secure kernel kexec'ing the next image) gives
// back to secure memory every page the VM shared before it jumps, as Linux's
// kexec does: the next kernel knows nothing of them, would take them for
// private memory, and the hypervisor would read what it put there. After
// this the hypervisor sees none of the VM's memory; the next stub shares a
// pool of its own. (A normal guest has shared nothing: the hypervisor sees
// all of it, and the ultravisor refuses share calls from it.)
uint64_t unshare_everything(Loader& l) {
    Range pools[ReservedRanges::kMax];
    const int count = fdt_reserved_memory(l.fdt, pools, ReservedRanges::kMax);
    l.say("running secure: UV_UNSHARE_ALL_PAGES before the jump");
    for (int i = 0; i < count; ++i)
        l.con.str(i == 0 ? " (shared: " : ", ").hex(pools[i].base).str("..").hex(pools[i].end());
    l.con.str(count > 0 ? ")" : "").nl();
    const long rc = l.calls.ucall(UV_UNSHARE_ALL_PAGES);
    l.calls.trace(SVMKIT_TRACE_LOADER_UNSHARED, static_cast<uint64_t>(rc),
                  count > 0 ? pools[0].base : 0, count > 0 ? pools[0].size : 0);
    if (rc != U_SUCCESS) {
        l.error("UV_UNSHARE_ALL_PAGES failed: ").str(svmkit_uv_code_name(rc));
        l.con.str("; not jumping with pages still shared").nl();
        return kUnshareFailed;
    }
    return 0;
}

using StubEntry = void (*)(uint64_t r3, uint64_t r4, uint64_t r5, const svmkit_gates* gates);

// The purgatory: the last code before the stub. It recomputes every placed
// segment's SHA-256 and compares it with what was recorded at placement;
// any difference (a hypervisor can write a normal guest's memory at any
// time before ESM) stops the boot. Then the kexec-style jump.
uint64_t purgatory(Loader& l, const loader::LoadPlan& plan, const loader::SegmentDigests& d,
                   uint64_t entry, uint64_t kbase) {
    if (l.calls.secure()) {
        const uint64_t status = unshare_everything(l);
        if (status != 0)
            return status;
    }
    Range ram = l.ram;
    const int32_t bad = loader::recheck_segments(plan, d, to_pointer, &ram);
    if (bad >= 0) {
        const loader::PlannedSegment& s = plan.segments[bad];
        l.calls.trace(SVMKIT_TRACE_LOADER_PURGATORY, 1, static_cast<uint64_t>(bad), entry);
        l.error("purgatory: segment ").dec(static_cast<uint64_t>(bad)).str(" at ").hex(s.address);
        l.con.str(" (").dec(s.mem_size).str(" bytes) changed after it was placed: digest mismatch");
        l.con.str("; not jumping to the stub").nl();
        return kDigestMismatch;
    }
    l.calls.trace(SVMKIT_TRACE_LOADER_PURGATORY, 0, plan.count, entry);
    l.say("purgatory: ").dec(plan.count).str(" segment digests rechecked; jumping to the stub at ");
    l.con.hex(entry).str(" (r3 = fdt ").hex(l.fdt_gpa).str(", r4 = kbase ").hex(kbase);
    l.con.str(", r5 = 0)").nl();
    // kexec-style, as the stub expects: r3 = FDT, r4 = kbase, r5 = 0 (no
    // Open Firmware), on this stack; the stub never returns (UV_ESM resumes
    // it elsewhere, or it stops the VM).
    reinterpret_cast<StubEntry>(gpa_ptr<void>(entry))(l.fdt_gpa, kbase, 0, l.calls.gates());
    l.error("the stub returned to the purgatory").nl();
    return kStubReturned;
}

} // namespace

namespace {

// ": segment I [A, B) overlaps the boot loader [C, D)": what a refusal hits,
// in the words `svmkit load --plan` uses (wrapper/load_constraints.cpp).
void print_refusal(Console& con, const loader::LoadRefusal& r) {
    if (r.segment == loader::kNoIndex)
        return;
    con.str(": segment ").dec(r.segment).str(" [").hex(r.segment_start).str(", ");
    con.hex(r.segment_end).str(")");
    const auto kind = static_cast<loader::RangeKind>(r.range_kind);
    if (kind == loader::RangeKind::none)
        return;
    con.str(kind == loader::RangeKind::guest_ram ? " lies outside " : " overlaps ");
    con.str(loader::range_kind_name(kind));
    if (kind == loader::RangeKind::segment)
        con.str(" ").dec(r.range_index);
    con.str(" [").hex(r.range_start).str(", ").hex(r.range_end).str(")");
}

// plan_elf_load() with the loader's constraints; false (the reason printed,
// and traced for the machine's report) when the image is refused.
bool plan_load(Loader& l, const ReservedRanges& reserved, const uint8_t* image, uint64_t size,
               Range buffer, loader::LoadPlan* out) {
    loader::BootConstraints bc{};
    if (!fill_constraints(l, reserved, buffer, &bc)) {
        l.error("more reserved ranges than the plan can hold").nl();
        return false;
    }
    loader::ElfErrorDetail detail{};
    const loader::ElfError e = loader::plan_elf_load(image, size, bc.c, out, &detail);
    if (e != loader::ElfError::none) {
        const loader::LoadRefusal refusal = loader::describe_refusal(e, detail, bc);
        l.error("the image was rejected: ").str(loader::elf_error_message(e));
        l.con.str(" (").str(loader::elf_error_name(e)).str(")");
        print_refusal(l.con, refusal);
        l.con.nl();
        // The machine reads the record now, while it is on this stack.
        l.calls.trace(SVMKIT_TRACE_LOADER_REJECTED, refusal.error, ptr_gpa(&refusal), 0);
        return false;
    }
    return true;
}

} // namespace

uint64_t boot_image(Loader& l, const uint8_t* image, uint64_t size, Range buffer) {
    // Where the segments go, then (the buffer moved out of their way if
    // need be) the plan again, whole, with the buffer kept clear.
    ReservedRanges reserved;
    loader::LoadPlan plan{};
    if (!collect_reserved(l, &reserved) || !plan_load(l, reserved, image, size, Range{}, &plan) ||
        !move_buffer_clear_of(l, reserved, plan, &image, size, &buffer) ||
        !plan_load(l, reserved, image, size, buffer, &plan))
        return kImageRejected;
    // The stub's entry (guest-physical in the plan), and the image base (the
    // lowest segment: the stub's first byte) for r4.
    const uint64_t entry = plan.entry;
    uint64_t kbase = ~uint64_t{0};
    for (uint32_t i = 0; i < plan.count; ++i)
        if (plan.segments[i].address < kbase)
            kbase = plan.segments[i].address;
    l.say("image accepted: ").dec(plan.count).str(" segments, entry ").hex(entry).nl();

    Range ram = l.ram;
    loader::SegmentDigests digests{};
    if (!loader::place_segments(image, plan, to_pointer, &ram, &digests)) {
        l.error("placing the segments failed: a destination is not RAM or overlaps the image").nl();
        return kImageRejected;
    }
    for (uint32_t i = 0; i < plan.count; ++i) {
        const loader::PlannedSegment& s = plan.segments[i];
        l.say("segment ").dec(i).str(" at ").hex(s.address).str(" +").dec(s.mem_size);
        l.con.str(" sha256 ");
        for (uint8_t b : digests.sha256[i]) {
            const char hex[] = "0123456789abcdef";
            const char two[2] = {hex[b >> 4], hex[b & 15]};
            l.con.write(two, 2);
        }
        l.con.nl();
        l.calls.trace(SVMKIT_TRACE_LOADER_SEGMENT, s.address, s.mem_size,
                      ptr_gpa(digests.sha256[i]));
    }
    // Segments placed, digests recorded: the hypervisor hears of it (and its
    // test hooks may tamper now, as a real one could).
    l.calls.trace(SVMKIT_TRACE_LOADER_PLACED, plan.count, entry, kbase);
    forget_kexec_buffer(l);
    return purgatory(l, plan, digests, entry, kbase);
}

} // namespace svmkit::boot_loader
