// The boot loader's entry (boot_loader.h): checks the firmware's device
// tree, then boots the kexec image or searches the disks.
#include "samples/boot_loader/boot_loader.h"

#include "guest/fdt_util.h"

#include <libfdt.h>

using namespace svmkit::guest;
using namespace svmkit::boot_loader;

// Linker-script symbols (loader.lds.S); hidden: PC-relative, no GOT. Their
// reserved names are the toolchain's convention for such symbols.
// NOLINTBEGIN(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)
extern "C" __attribute__((visibility("hidden"))) const uint8_t __loader_start[];
extern "C" __attribute__((visibility("hidden"))) const uint8_t __loader_end[];
// NOLINTEND(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)

extern "C" [[noreturn]] __attribute__((used, section(".text.entry"))) void
svmkit_boot_loader_entry(uint64_t r3, uint64_t r4, uint64_t r5, const svmkit_gates* gates) {
    Loader l(gates);
    l.self = Range{ptr_gpa(__loader_start), ptr_gpa(__loader_end) - ptr_gpa(__loader_start)};
    l.say(l.calls.secure() ? "boot loader, running secure (MSR[S] set)"
                           : "normal guest boot loader")
        .nl();
    if (r5 != 0 || r4 != l.self.base) {
        l.error("entered with r4 != the loader's start or r5 != 0").nl();
        l.calls.exit(kBadFirmware);
    }
    // The firmware's device tree is the hypervisor's: check all of it first.
    void* fdt = gpa_ptr<void>(r3);
    if (r3 % 8 != 0 || fdt_magic(fdt) != FDT_MAGIC || fdt_totalsize(fdt) > (1u << 20) ||
        fdt_check_full_strict(fdt, fdt_totalsize(fdt)) != 0 || !fdt_first_memory(fdt, &l.ram) ||
        !l.ram.contains(l.self)) {
        l.error("no valid device tree with memory in r3").nl();
        l.calls.exit(kBadFirmware);
    }
    l.fdt = fdt;
    l.fdt_gpa = r3;
    const int chosen = fdt_path_offset(fdt, "/chosen");
    int len = 0;
    const char* args = chosen >= 0 ? fdt_read_string(fdt, chosen, "bootargs", &len) : nullptr;
    if (args != nullptr) {
        l.bootargs = args;
        l.bootargs_len = len;
    }
    l.say("command line \"").write(l.bootargs, static_cast<size_t>(l.bootargs_len)).str("\"").nl();

    uint64_t start = 0;
    uint64_t end = 0;
    uint64_t status = 0;
    if (chosen >= 0 && fdt_read_u64(fdt, chosen, "linux,initrd-start", &start) &&
        fdt_read_u64(fdt, chosen, "linux,initrd-end", &end)) {
        // kexec-style: the image was handed over like an initrd.
        Range buffer;
        if (end < start || !make_range(start, end - start, &buffer) || !l.ram.contains(buffer) ||
            buffer.overlaps(l.self)) {
            l.error("the kexec image range lies outside RAM or over the loader").nl();
            l.calls.exit(kBadFirmware);
        }
        l.kexec_image = buffer;
        l.say("kexec image at ").hex(start).str(", ").dec(buffer.size).str(" bytes").nl();
        l.calls.trace(SVMKIT_TRACE_LOADER_IMAGE, SVMKIT_LOADER_SOURCE_KEXEC, start, buffer.size);
        status = boot_image(l, gpa_ptr<const uint8_t>(start), buffer.size, buffer);
    } else if (l.calls.secure()) {
        // Grub-style reads the disk with direct DMA, which a secure guest's
        // devices cannot do (they reach only the bounce pool); and what a
        // secure guest loads must be something it already trusts, like an
        // image inside its own verified initrd.
        l.error("running secure with no kexec image: a secure guest loads only an image handed "
                "over in its (verified) initrd, never from a disk")
            .nl();
        status = kNoImage;
    } else {
        status = boot_from_disks(l);
    }
    l.say("stopping with status ").dec(status).nl();
    l.calls.exit(status);
}
