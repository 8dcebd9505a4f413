// The boot stub of a secure image, for the simulated platform (x86-64) and
// for POWER (ppc64le). Everything here is shared; each target adds a small
// arch layer (x86_64/, ppc64le/): the entry, how the kernel is entered, and
// its Calls (guest/hcall.h).
//
// Kexec-style, it runs twice, both times from the image's first byte:
//
//   1. entered by firmware or a loader, not secure (MSR[S] clear), kexec-style
//      (r3 = FDT, r4 = kbase, r5 = 0): it builds the FDT the kernel will get
//      in memory outside the image (esm_request.cpp) and calls UV_ESM. It
//      writes nothing inside the image: the ultravisor hashes it next.
//   2. resumed by the ultravisor, secure (r3 = that FDT, r4 = kbase, r5 = 0):
//      it unpacks the kernel, places the initrd, shares the bounce pool,
//      describes it in the FDT and enters the kernel (secure_boot.cpp).
//
// A kernel that is already secure can kexec an image too (it unshares every
// page first, as Linux does): then the stub runs once, secure, with no
// UV_ESM (the ultravisor verifies a VM once); it builds its FDT from the one
// it was given and boots as in 2 (boot_secure).
//
// On ppc64le a kexec-style entry without `svm=on` on the signed command line
// boots the kernel insecure instead (boot_insecure), and a firmware-style
// entry (r5 = Open Firmware) unpacks the kernel and enters it like a Linux
// zImage, leaving secure mode to the kernel (ppc64le/firmware_boot.cpp).
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

// Linker-script symbols (stub.lds.S): the stub's first byte and the end of its
// read-only data, where svmkit places the manifest section. Hidden, so that
// even compilers that would reach extern data through a GOT under -fpie
// (clang) address them PC-relative: a GOT is writable data.
extern "C" __attribute__((visibility("hidden"))) const uint8_t __stub_start[];
extern "C" __attribute__((visibility("hidden"))) const uint8_t __stub_end[];

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
// /chosen property (u64 = kbase) the stub's first run adds to the FDT it gives
// UV_ESM, and its secure run removes before the kernel sees that FDT: present,
// the secure entry is the ultravisor's resume of this image; absent, a kernel
// already secure kexec'd this image (boot_secure).
inline constexpr char kEsmResumeMark[] = "svmkit,esm-kbase";
// Exit status of a VM the stub stops (UV_SVM_TERMINATE, then H_SVMKIT_EXIT).
inline constexpr uint64_t kStubFailureStatus = 1;

struct Stub {
    Calls calls;
    Console con;
    uint64_t kbase = 0; // guest-physical address of the stub's first byte (the image base)
    ManifestView manifest;
    Range blob;  // the manifest's device tree in guest memory
    Range image; // the loaded image: stub, manifest, every component
    // The stub's own stack when it lies in memory the platform does not
    // reserve (ppc64le kexec-style: taken from the device tree's free memory,
    // stub/ppc64le/main.cpp); placements avoid it.
    Range stack;
    // The kernel's first bytes when other CPUs may be parked in them (ppc64le
    // after a kexec: the secondaries spin at 0x60 until the kernel's own hold
    // replaces the loop). unpack_kernel() keeps up to head_held bytes of a
    // kernel loaded at 0 here, hashes them with the rest, and enter_kernel()
    // writes them last: a secondary running the kernel's hold early would
    // write the kernel's memory (its hold acknowledgement) while the stub
    // still checks it.
    static constexpr uint64_t kMaxHeadHeld = 0x100;
    uint64_t head_held = 0; // set by the entry; at most kMaxHeadHeld
    uint64_t head_size = 0; // bytes kept in head (0: none)
    uint8_t head[kMaxHeadHeld] = {};

    explicit Stub(const Calls& c) : calls(c), con(calls) {}
    Stub(const Stub&) = delete; // con refers to calls
    Stub& operator=(const Stub&) = delete;

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

// True when the signed command line asks for secure mode: `svm=on` (or
// `svm=1`, `svm=y`; the last `svm=` counts, as in Linux).
bool svm_requested(const Stub& s);
// svm=off (or 0, n) on the signed command line: the image asks not to enter
// secure mode. The simulated platform's stub enters secure mode unless asked
// not to (its machine always has an ultravisor); on POWER only svm=on asks.
bool svm_refused(const Stub& s);

// The FDT the kernel will get: a copy of the platform's, outside the image,
// with bootargs (the signed command line), the ESM blob's range and the
// initrd's range in the image. Returns its guest-physical address.
uint64_t prepare_fdt(Stub& s, uint64_t platform_fdt);
// prepare_fdt, then UV_ESM; never returns (the ultravisor resumes the stub at
// kbase, or the stub reports the refusal and stops).
[[noreturn]] void request_esm(Stub& s, uint64_t platform_fdt);
// Entered secure: the ultravisor's resume (the FDT carries kEsmResumeMark for
// this kbase) or a kexec from a secure kernel (no mark).
[[noreturn]] void boot_secure(Stub& s, uint64_t fdt);
// Boots without secure mode (ppc64le, no svm=on): prepare_fdt, then as
// boot_secure but without the bounce pool.
[[noreturn]] void boot_insecure(Stub& s, uint64_t platform_fdt);

// Arch layer: enters the kernel kexec-style (r3 = fdt, r4 = kernel_base,
// r5 = 0) at `entry` on a stack ending at `stack_top` (all guest-physical).
[[noreturn]] void enter_kernel(Stub& s, uint64_t entry, uint64_t fdt, uint64_t kernel_base,
                               uint64_t stack_top);

// Unpacks the kernel to `at` (its load address, except where a firmware-style
// entry had to claim memory elsewhere) and checks its digest there
// (kernel_unpack.cpp).
void unpack_kernel(Stub& s, RegionAllocator& alloc, uint64_t at);

} // namespace svmkit::stub
