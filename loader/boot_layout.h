// The boot loader's memory rules in one place (docs/loader.md, "Memory the
// loader keeps clear"): what the segments of the image it loads must stay
// clear of, and the names a refusal gives those ranges.
//
// One definition for both sides: the boot loader (samples/boot_loader/)
// builds its LoadConstraints with boot_constraints() from what its firmware
// gave it (the device tree), and the host commands that predict its answer
// (`svmkit load --plan`, `svmkit mkdisk`) call the same function with what
// the simulated machine's firmware will give it (platform/normal_boot.hpp).
// So the plan, the disk check and the boot can only disagree if the firmware
// does something else than it says, and a test sweeps them to show they agree.
//
// Freestanding, like the rest of loader/.
#pragma once

#include "loader/elf_plan.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::loader {

// No segment of a secure image the boot loader loads is larger (the stub, a
// kernel, an initrd).
constexpr uint64_t kBootLoaderMaxSegment = 1ull << 30;
// The firmware puts a kexec image at the top of RAM, its start aligned down
// to this (the platform's page size).
constexpr uint64_t kKexecBufferAlignment = 0x10000;

// Where the firmware puts a kexec image of `size` bytes in RAM ending at
// ram_end (size <= ram_end: the caller checked).
constexpr uint64_t kexec_buffer_base(uint64_t ram_end, uint64_t size) {
    return (ram_end - size) & ~(kKexecBufferAlignment - 1);
}

// What a range a segment collides with is. Stable numbers: the boot loader
// passes them to the machine in its refusal record (guest/uv_abi.h).
enum class RangeKind : uint8_t {
    none = 0,
    boot_loader = 1,       // the loader's own image (text, data, bss)
    device_tree = 2,       // the FDT the loader was given
    stack = 3,             // the stack the loader runs on
    kexec_image = 4,       // the buffer the image itself was handed over in
    image_buffer = 5,      // grub-style: the buffer the image was read into
    firmware = 6,          // any other /memreserve/ entry
    reserved_memory = 7,   // a /reserved-memory node (a bounce pool)
    exception_vectors = 8, // ppc64le: the first 64 KiB
    guest_ram = 9,         // RAM itself: the segment lies outside it
    segment = 10,          // another segment of the image
};
// "the boot loader", "the device tree"...: for messages; never null.
const char* range_kind_name(RangeKind k);
// "boot_loader", "device_tree"...: for scripts and JSON; never null.
const char* range_kind_id(RangeKind k);

// What the loader knows when it plans: RAM, itself, its device tree, where
// its stack is, the kexec image's buffer (empty when it has none) and the
// device tree's reservations.
struct BootEnvironment {
    uint16_t machine; // kMachineX86_64 or kMachinePpc64
    AddressRange ram;
    AddressRange self;
    AddressRange fdt;     // [fdt, fdt + totalsize)
    uint64_t stack_probe; // an address on the stack the loader runs on
    AddressRange kexec_image;
    const AddressRange* memreserve; // /memreserve/ entries
    uint32_t memreserve_count;
    const AddressRange* reserved_memory; // /reserved-memory nodes
    uint32_t reserved_memory_count;
};

// LoadConstraints with what each reserved range is.
struct BootConstraints {
    LoadConstraints c;
    RangeKind kinds[kMaxReserved];
};

// The loader's constraints: RAM, segments of at most kBootLoaderMaxSegment,
// reserved = every /memreserve/ entry (named by what it holds: the loader,
// the FDT, the stack, the kexec image, else "firmware"), every
// /reserved-memory range, then the loader and its FDT themselves (in case the
// firmware left them out). Empty ranges are left out. False when they are
// more than kMaxReserved.
bool boot_constraints(const BootEnvironment& env, BootConstraints* out);

// One more reserved range (the grub-style image buffer); false when full.
bool add_reserved(BootConstraints* bc, AddressRange r, RangeKind kind);

// A refusal as the loader reports it and the host commands predict it: the
// error, the segment (index and memory range) and the range it hits (what it
// is, and where). Fixed layout, all 64-bit: the loader hands it to the
// machine by address (SVMKIT_TRACE_LOADER_REJECTED).
struct LoadRefusal {
    uint64_t error;   // ElfError
    uint64_t segment; // kNoIndex: not about one segment
    uint64_t segment_start, segment_end;
    uint64_t range_kind;  // RangeKind (none when there is no such range)
    uint64_t range_index; // RangeKind::segment: the other segment's index
    uint64_t range_start, range_end;
};

// The refusal for plan_elf_load()'s error `e` with its detail `d` against
// `bc`: the range a segment_in_reserved hits, RAM for segment_outside_ram,
// the other segment for segments_overlap and segment_files_overlap.
LoadRefusal describe_refusal(ElfError e, const ElfErrorDetail& d, const BootConstraints& bc);

} // namespace svmkit::loader
