// The ppc64le stub entered firmware-style: by SLOF (QEMU's `-kernel`, or any
// IEEE 1275 firmware), r5 = the Open Firmware client interface.
//
// It does what Linux's zImage wrapper does for a pseries kernel, and no more:
// claim memory through Open Firmware, unpack the kernel to its load address
// (checking its digest), copy the initrd and the ESM blob into memory it
// claimed (the image's memory belongs to whoever loaded it: SLOF keeps it
// claimed as the "RAM kernel"), set /chosen bootargs to the signed command
// line, publish the ESM blob in /chosen (linux,esm-blob-start/end), and enter
// the kernel like a zImage: r3 = initrd, r4 = its size, r5 = the client
// interface, on the firmware's stack.
// The kernel's prom_init takes over from there; a kernel built with
// CONFIG_PPC_SVM and booted with svm=on calls UV_ESM itself, at its own end.
//
// Nothing is verified here: without an ultravisor in the loop the image is
// whatever was loaded. The digest check only catches corruption.
#include "stub/ppc64le/arch.h"
#include "stub/stub.h"

#include "guest/of_client_ppc64le.h"

#include <string.h>

namespace svmkit::stub {

namespace {

// inflate's scratch memory and the NUL-terminated command line.
constexpr uint64_t kScratchSize = kInflateScratch + (256u << 10);
constexpr uint64_t k4G = 1ull << 32;
// The bottom of memory holds the real-mode exception vectors, which the
// firmware uses until the kernel takes over (SLOF keeps 0..0x4000 claimed).
// The kernel's image starts there; the zImage unpacks over them too.
constexpr uint64_t kVectorArea = 0x10000;

bool claim_at(const OpenFirmware& of, const Range& r) {
    return r.end() <= k4G &&
           of.claim(static_cast<uint32_t>(r.base), static_cast<uint32_t>(r.size), 0) != kOfInvalid;
}

// Claims the kernel's load range, or stops: nothing may be handed out there.
// Only the exception-vector area may stay the firmware's.
void claim_kernel_range(Stub& s, const OpenFirmware& of, const Range& kernel) {
    if (claim_at(of, kernel))
        return;
    if (kernel.base < kVectorArea && kernel.end() > kVectorArea &&
        claim_at(of, Range{kVectorArea, kernel.end() - kVectorArea})) {
        s.say("Open Firmware keeps ").hex(kernel.base).str("..").hex(kVectorArea);
        s.con.str(" (its exception vectors): the kernel is unpacked over them, as a zImage does")
            .nl();
        return;
    }
    s.say("error: Open Firmware cannot claim the kernel's load range ").hex(kernel.base).str("..");
    s.con.hex(kernel.end()).nl();
    s.stop();
}

// Memory from the firmware, anywhere below 4 GiB, 64 KiB aligned.
Range claim_anywhere(Stub& s, const OpenFirmware& of, uint64_t size, const char* what) {
    uint64_t rounded = 0;
    uint32_t at = kOfInvalid;
    if (align_up(size, kPageSize, &rounded) && rounded < k4G)
        at = of.claim(0, static_cast<uint32_t>(rounded), static_cast<uint32_t>(kPageSize));
    if (at == kOfInvalid) {
        s.say("error: Open Firmware has no memory for ").str(what).str(" (").dec(size);
        s.con.str(" bytes)").nl();
        s.stop();
    }
    return Range{at, rounded};
}

// A copy of a part of the image in claimed memory.
Range copy_out(Stub& s, const OpenFirmware& of, const Range& from, const char* what) {
    const Range to = claim_anywhere(s, of, from.size, what);
    memcpy(gpa_ptr(to.base), gpa_ptr(from.base), from.size);
    return Range{to.base, from.size};
}

void set_chosen(Stub& s, const OpenFirmware& of, uint32_t chosen, const char* name,
                const void* value, uint32_t size) {
    if (!of.setprop(chosen, name, value, size)) {
        s.say("error: Open Firmware refused /chosen ").str(name).nl();
        s.stop();
    }
}

// /chosen bootargs = the signed command line, NUL-terminated (a copy in
// `scratch`: the image's has no NUL).
void set_bootargs(Stub& s, const OpenFirmware& of, uint32_t chosen, RegionAllocator& scratch) {
    const Range cmdline =
        s.manifest.get(ComponentId::cmdline).present ? s.placed(ComponentId::cmdline) : Range{};
    uint64_t size = 0;
    Range copy;
    if (!align_up(cmdline.size + 1, kPageSize, &size) || !scratch.allocate(size, kPageSize, &copy))
        s.fatal("the command line is too long");
    char* args = gpa_ptr<char>(copy.base);
    if (cmdline.size != 0)
        memcpy(args, gpa_ptr<const char>(cmdline.base), cmdline.size);
    args[cmdline.size] = '\0';
    set_chosen(s, of, chosen, "bootargs", args, static_cast<uint32_t>(cmdline.size + 1));
}

// linux,esm-blob-start/end as the Linux wrapper writes them: 32-bit cells.
void publish_esm_blob(Stub& s, const OpenFirmware& of, uint32_t chosen, const Range& blob) {
    const uint32_t start = __builtin_bswap32(static_cast<uint32_t>(blob.base));
    const uint32_t end = __builtin_bswap32(static_cast<uint32_t>(blob.end()));
    set_chosen(s, of, chosen, "linux,esm-blob-start", &start, sizeof start);
    set_chosen(s, of, chosen, "linux,esm-blob-end", &end, sizeof end);
}

} // namespace

void boot_firmware_style(uint64_t of_entry) {
    const OpenFirmware of(of_entry);
    Stub s{Calls()};
    s.calls.use_open_firmware(&of, of.stdout_ihandle());
    s.kbase = ptr_gpa(__stub_start);
    s.say("firmware-style entry at ").hex(s.kbase).str(" (Open Firmware client interface at ");
    s.con.hex(of_entry).str(")").nl();
    load_manifest(s);
    if (s.image.end() > k4G)
        s.fatal("the image must lie below 4 GiB for Open Firmware");

    const ComponentView& k = s.manifest.get(ComponentId::kernel);
    Range kernel;
    if (!make_range(k.load_address, k.memory_size, &kernel) || kernel.end() > k4G)
        s.fatal("the kernel's load range must lie below 4 GiB");
    if (kernel.overlaps(s.image))
        s.fatal("the kernel's load range overlaps the image");
    if (k.entry_offset >= k.memory_size)
        s.fatal("the kernel's entry point lies outside its image");
    claim_kernel_range(s, of, kernel);
    RegionAllocator scratch(claim_anywhere(s, of, kScratchSize, "the stub's scratch space"));

    // Open Firmware's device tree first: once the kernel is unpacked over low
    // memory, the less the firmware still runs, the better.
    const uint32_t chosen = of.finddevice("/chosen");
    if (chosen == kOfInvalid)
        s.fatal("Open Firmware has no /chosen");
    set_bootargs(s, of, chosen, scratch);
    const Range blob = copy_out(s, of, s.blob, "the ESM blob");
    publish_esm_blob(s, of, chosen, blob);
    s.say("/chosen: bootargs, linux,esm-blob-start/end ").hex(blob.base).str("..").hex(blob.end());
    s.con.nl();
    Range initrd;
    if (s.manifest.get(ComponentId::initrd).present) {
        initrd = copy_out(s, of, s.placed(ComponentId::initrd), "the initrd");
        s.say("initrd ").dec(initrd.size).str(" bytes at ").hex(initrd.base).nl();
    }

    unpack_kernel(s, scratch);

    if (svm_requested(s))
        s.say("svm=on: a kernel built with CONFIG_PPC_SVM enters secure mode itself").nl();
    const uint64_t entry = k.load_address + k.entry_offset;
    s.say("entering the kernel at ").hex(entry).str(" like a zImage (r3 = initrd ");
    s.con.hex(initrd.base).str(", r4 = ").hex(initrd.size).str(", r5 = Open Firmware)").nl();
    // On the firmware's stack: the kernel's prom_init runs on it.
    svmkit_ppc64le_enter(entry, initrd.base, initrd.size, of_entry, 0);
}

} // namespace svmkit::stub
