// From an image in RAM to the stub: plan (strict validation), place with a
// SHA-256 per segment, report, purgatory recheck, jump (docs/loader-boot.md).
#include "samples/boot_loader/boot_loader.h"

#include "guest/uv_abi.h"
#include "loader/elf_plan.h"
#include "loader/segment_digest.h"

#include <libfdt.h>

namespace svmkit::boot_loader {

using namespace svmkit::guest;

namespace {

// No secure image segment is larger than this (the stub, a kernel, an initrd).
constexpr uint64_t kMaxSegmentSize = 1ull << 30;

// place_segments()/recheck_segments() reach guest RAM through this; the plan
// already keeps every segment inside RAM, this checks it once more.
uint8_t* to_pointer(void* ctx, uint64_t gpa, uint64_t size) {
    const Range& ram = *static_cast<const Range*>(ctx);
    Range r;
    if (!make_range(gpa, size, &r) || !ram.contains(r))
        return nullptr;
    return gpa_ptr<uint8_t>(gpa);
}

// What the plan must keep clear: the loader itself, the FDT, the image
// buffer, and whatever the firmware reserved (its stack, the FDT, the
// loader, the kexec buffer), as far as the table holds.
void fill_constraints(const Loader& l, Range buffer, loader::LoadConstraints* c) {
    c->machine = loader::kMachineX86_64;
    c->ram_start = l.ram.base;
    c->ram_end = l.ram.end();
    c->max_segment_size = kMaxSegmentSize;
    c->reserved_count = 0;
    auto add = [&](uint64_t base, uint64_t size) {
        if (size == 0 || c->reserved_count >= sizeof c->reserved / sizeof c->reserved[0])
            return;
        uint64_t end = 0;
        if (add_overflows(base, size, &end))
            end = ~uint64_t{0};
        c->reserved[c->reserved_count++] = loader::AddressRange{base, end};
    };
    add(l.self.base, l.self.size);
    add(l.fdt_gpa, fdt_totalsize(l.fdt));
    add(buffer.base, buffer.size);
    const int n = fdt_num_mem_rsv(l.fdt);
    for (int i = 0; i < n; ++i) {
        uint64_t base = 0;
        uint64_t size = 0;
        if (fdt_get_mem_rsv(l.fdt, i, &base, &size) == 0)
            add(base, size);
    }
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

using StubEntry = void (*)(uint64_t r3, uint64_t r4, uint64_t r5, const svmkit_gates* gates);

// The purgatory: the last code before the stub. It recomputes every placed
// segment's SHA-256 and compares it with what was recorded at placement;
// any difference (a hypervisor can write a normal guest's memory at any
// time before ESM) stops the boot. Then the kexec-style jump.
uint64_t purgatory(Loader& l, const loader::LoadPlan& plan, const loader::SegmentDigests& d,
                   uint64_t entry, uint64_t kbase) {
    // Before jumping, a loader unshares what it shared (UV_UNSHARE_ALL_PAGES
    // on a secure guest). This one runs as a normal VM, which shares nothing:
    // the hypervisor already sees all of its memory, and the ultravisor
    // refuses share calls from it.
    if (l.calls.secure()) {
        l.error("running secure: a secure VM cannot enter secure mode again").nl();
        return kImageRejected;
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

uint64_t boot_image(Loader& l, const uint8_t* image, uint64_t size, Range buffer) {
    loader::LoadConstraints c{};
    fill_constraints(l, buffer, &c);
    loader::LoadPlan plan{};
    const loader::ElfError e = loader::plan_elf_load(image, size, c, &plan);
    if (e != loader::ElfError::none) {
        l.error("the image was rejected: ").str(loader::elf_error_message(e));
        l.con.str(" (").str(loader::elf_error_name(e)).str(")").nl();
        return kImageRejected;
    }
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
