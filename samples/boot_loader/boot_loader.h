// The boot loader: a normal (not secure) guest program that loads a secure
// image and hands over to its stub, the way grub or a kexec-ing first kernel
// does on a PEF system (docs/loader-boot.md).
//
// The machine boots it instead of an image (`svmkit boot --kexec IMG`, or
// `svmkit boot --disk DISK` with no image). Entered like every guest program
// (guest/gates.h): r3 = the platform FDT, r4 = its own start, r5 = 0. Two
// sources, one path:
//   kexec-style   /chosen linux,initrd-start/end holds the image (the firmware
//                 placed it like an initrd);
//   grub-style    no such range: every virtio-blk disk is searched for the
//                 svmkit boot partition; its boot.cfg picks the entry (the
//                 default, or svmkit.boot_entry=NAME on the command line) and
//                 the image is read into RAM through the virtio-blk driver
//                 with direct DMA.
// Then boot_image(): loader::plan_elf_load validates the whole image, the
// segments are placed with a SHA-256 each, the purgatory rechecks every
// digest and jumps to the stub kexec-style (r3 = FDT, r4 = kbase, r5 = 0).
//
// Every failure prints `svmkit loader: error: ...` and ends the VM cleanly
// with its own exit status (below); nothing is ever jumped to unchecked.
#pragma once

#include "guest/console.h"
#include "guest/hcall.h"
#include "guest/memory.h"

#include <stdint.h>

namespace svmkit::boot_loader {

// Exit statuses (docs/loader-boot.md).
enum Status : uint64_t {
    kNoImage = 30,        // no kexec image and no disk with a boot partition
    kImageRejected = 31,  // the ELF loader refused the image (its reason is printed)
    kDigestMismatch = 32, // purgatory: a placed segment changed before the jump
    kMenuError = 33,      // boot.cfg missing or malformed, or no such entry
    kDiskError = 34,      // a disk read failed, or the entry's image is not on the disk
    kBadFirmware = 35,    // no valid device tree or memory description
    kNoRoom = 36,         // no free RAM for the image buffer
    kStubReturned = 37,   // the stub returned to the purgatory (it must not)
    kUnshareFailed = 38,  // secure: UV_UNSHARE_ALL_PAGES failed before the jump
};

struct Loader {
    guest::Calls calls;
    guest::Console con;
    void* fdt = nullptr;
    uint64_t fdt_gpa = 0;
    guest::Range ram;
    guest::Range self;        // the loader's own memory (text, data, bss)
    guest::Range kexec_image; // kexec-style: the buffer the firmware handed over
    const char* bootargs = "";
    int bootargs_len = 0;

    explicit Loader(const svmkit_gates* g) : calls(g), con(calls) {}
    guest::Console& say(const char* s) { return con.str("svmkit loader: ").str(s); }
    // "svmkit loader: error: <why>"; the caller adds details and ends the line.
    guest::Console& error(const char* why) { return say("error: ").str(why); }
};

// What nothing the loader places may overlap: the loader itself, the FDT,
// every /memreserve/ entry (the firmware's stack and FDT, or on a secure
// guest the stub's FDT and the kernel stack this loader runs on) and every
// /reserved-memory range (on a secure guest, the bounce pool, shared until
// the purgatory unshares it: nothing the loader validates may lie where the
// hypervisor can change it).
// Order: the loader, the FDT, the /memreserve/ entries, the /reserved-memory
// ranges (loader/boot_layout.h names each by where it came from).
struct ReservedRanges {
    static constexpr int kMax = 24;
    guest::Range ranges[kMax];
    int count = 0;      // ranges[0..count) are set
    int memreserve = 0; // how many /memreserve/ entries, from ranges[2]
};
// False (with the reason on the console) when the FDT's reservations are
// malformed or more than kMax.
bool collect_reserved(Loader& l, ReservedRanges* out);

// Loads the ELF image in [image, image+size) (inside RAM at `buffer`), jumps
// to its stub. Returns only on failure, with the exit status; the reason is
// on the console.
uint64_t boot_image(Loader& l, const uint8_t* image, uint64_t size, guest::Range buffer);

// Grub-style: finds the boot partition on a virtio-blk disk, reads boot.cfg,
// picks the entry, reads its image into RAM, resets the device and calls
// boot_image(). Returns only on failure, with the exit status.
uint64_t boot_from_disks(Loader& l);

} // namespace svmkit::boot_loader
