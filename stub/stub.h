// The boot stub of a secure image on the simulated platform.
//
// It runs twice, both times from the image's first byte (svmkit_stub_entry):
//
//   1. entered by firmware or a loader, not secure (MSR[S] clear), kexec-style
//      (r3 = FDT, r4 = kbase, r5 = 0): it builds the FDT the kernel will get
//      in memory outside the image (esm_request.cpp) and calls UV_ESM. It
//      writes nothing inside the image: the ultravisor hashes it next.
//   2. resumed by the ultravisor, secure (r3 = that FDT, r4 = kbase, r5 = 0):
//      it unpacks the kernel, places the initrd, shares the bounce pool,
//      describes it in the FDT and enters the kernel (secure_boot.cpp).
//
// The stub has no writable data (the linker script and a unit test check it):
// all its state lives in a Stub on the stack or in guest RAM outside the
// image. Everything it reads before UV_ESM (the platform's FDT, the manifest)
// is untrusted and checked before use.
#pragma once

#include "guest/console.h"
#include "guest/hcall.h"
#include "guest/manifest_view.h"
#include "guest/memory.h"
#include "guest/region_alloc.h"

#include <stdint.h>

namespace svmkit::stub {

using namespace svmkit::guest;

// Largest device tree the stub accepts from the platform.
inline constexpr uint64_t kMaxFdtSize = 1u << 20;
// Room added to the platform's FDT for what the stub writes into it.
inline constexpr uint64_t kFdtHeadroom = 64u << 10;
// The manifest's largest size (format/manifest_fdt.hpp kMaxManifestSize).
inline constexpr uint64_t kMaxManifestSize = 4u << 20;
// Scratch memory for inflate: its state (~7 KiB) and 32 KiB window, with room.
inline constexpr uint64_t kInflateScratch = 256u << 10;
// The stack the kernel is entered on.
inline constexpr uint64_t kKernelStackSize = 256u << 10;
// Exit status of a VM the stub stops (UV_SVM_TERMINATE, then H_SVMKIT_EXIT).
inline constexpr uint64_t kStubFailureStatus = 1;

struct Stub {
    Calls calls;
    Console con;
    uint64_t kbase = 0; // guest-physical address of the stub's first byte (the image base)
    ManifestView manifest;
    Range blob;  // the manifest's device tree in guest memory
    Range image; // the loaded image: stub, manifest, every component

    explicit Stub(const svmkit_gates* gates) : calls(gates), con(calls) {}

    // Where a component's stored bytes are in guest memory.
    Range placed(ComponentId id) const {
        const ComponentView& c = manifest.get(id);
        return Range{kbase + (c.stored.base - manifest.image_base), c.stored.size};
    }

    // "svmkit stub: " + message; the caller continues the line.
    Console& say(const char* message) { return con.str("svmkit stub: ").str(message); }
    // Reports and stops the VM; never returns.
    [[noreturn]] void fatal(const char* message) {
        con.str("svmkit stub: error: ").str(message).nl();
        calls.terminate(kStubFailureStatus);
    }
    [[noreturn]] void stop() { calls.terminate(kStubFailureStatus); }
};

// Reads and checks the manifest at __stub_end and the image's extent.
void load_manifest(Stub& s);
// Reads the RAM range from an FDT that passed fdt_check_full.
Range ram_from_fdt(Stub& s, const void* fdt);
// An FDT at `gpa` that passes the header checks and fdt_check_full, or fatal.
void* checked_fdt(Stub& s, uint64_t gpa, const char* whose);
// Reserves what every placement must avoid: the image, the kernel's load
// range, the FDT at `fdt_gpa` and every /memreserve/ entry of `fdt`.
void reserve_fixed(Stub& s, RegionAllocator& alloc, const void* fdt, uint64_t fdt_gpa);

[[noreturn]] void request_esm(Stub& s, uint64_t platform_fdt);
[[noreturn]] void boot_secure(Stub& s, uint64_t fdt);

// Unpacks the kernel to its load address and checks its digest (kernel_unpack.cpp).
void unpack_kernel(Stub& s, RegionAllocator& alloc);

} // namespace svmkit::stub
