// The ppc64le stub after its entry code (entry.S): which way it was entered,
// the kexec-style runs, and its way into the kernel.
//
// Kexec-style (r5 = 0) the stub does what it does on the simulated platform
// (stub.h), with POWER's own means: `sc 2` and `sc 1`, the console on the
// hypervisor's virtual terminal and RTAS to stop, both found in the device
// tree. Without svm=on on the signed command line it boots insecure, and
// says so. Firmware-style (r5 != 0) see firmware_boot.cpp; with svm=on it
// comes back here (bootstrap_kexec_style) with the firmware's tree flattened.
#include "stub/ppc64le/arch.h"
#include "stub/stub.h"

#include "guest/fdt_util.h"
#include "guest/icache.h"
#include "guest/rtas_ppc64le.h"

#include <libfdt.h>
#include <string.h>

namespace svmkit::stub {

void enter_kernel(Stub& s, uint64_t entry, uint64_t fdt, uint64_t kernel_base, uint64_t stack_top) {
    // The kernel's held first bytes (Stub::head_held), checked with the rest:
    // the parked secondaries now run into the kernel's own hold.
    if (s.head_size != 0) {
        uint8_t* at = gpa_ptr<uint8_t>(kernel_base);
        asm("" : "+r"(at)); // kernel_base is 0: hidden from GCC's null checks
        memcpy(at, s.head, s.head_size);
        sync_icache(at, s.head_size);
    }
    svmkit_ppc64le_enter(entry, fdt, kernel_base, 0, stack_top);
}

namespace {

// The system call interrupt's vector (real mode).
constexpr uint64_t kSystemCallVector = 0xc00;

// A handler for the system call vector that answers every `sc` it receives
// with U_FUNCTION, in either byte order (guest/endian_ppc64le.h explains the
// first word):
//   0 tdi 0,0,0x48 (LE) = b .+8 (BE)
//   1 b .+12            LE: to word 4
//   2 li r3,-2 (BE)     3 rfid (BE)
//   4 li r3,-2 (LE)     5 rfid (LE)
// With an ultravisor, `sc 2` goes to it; on a machine without one the
// hypervisor fails it. QEMU's TCG pseries instead delivers `sc 2` to the
// guest's own system call vector, where there is nothing (or a dead kernel's
// handler) before the stub unpacks its kernel: this makes UV_ESM fail
// cleanly there, and the stub stop, as it must without an ultravisor.
constexpr uint32_t kUnansweredUltracall[] = {0x08000048, 0x4800000c, 0xfeff6038,
                                             0x2400004c, 0x3860fffe, 0x4c000024};

void guard_unanswered_ultracalls() {
    void* vector = gpa_ptr<void>(kSystemCallVector);
    memcpy(vector, kUnansweredUltracall, sizeof kUnansweredUltracall);
    sync_icache(vector, sizeof kUnansweredUltracall);
}

// The console's unit address: the first node compatible with "hvterm1"
// (PAPR's virtual terminal), reg = <unit address>.
void use_device_tree_console(Stub& s, const void* fdt) {
    const int node = fdt_node_offset_by_compatible(fdt, -1, "hvterm1");
    int len = 0;
    const void* reg = node >= 0 ? fdt_getprop(fdt, node, "reg", &len) : nullptr;
    if (reg != nullptr && len >= 4)
        s.calls.use_vterm(get_be32(reg));
}

// Console and RTAS from the device tree, checked whole first, then the
// manifest. `rtas` outlives the calls that use it.
const void* start_kexec_style(Stub& s, Rtas& rtas, uint64_t r3) {
    s.kbase = ptr_gpa(__stub_start);
    const void* fdt =
        checked_fdt(s, r3, s.calls.secure() ? "given at a secure entry" : "from the loader");
    use_device_tree_console(s, fdt);
    if (rtas_from_fdt(fdt, &rtas))
        s.calls.use_rtas(&rtas);
    load_manifest(s);
    return fdt;
}

// The stub's stack: memory the device tree shows free (inside its first
// memory node; not in its reserve map, not the tree itself, the image or the
// kernel's load range). The bootstrap stack the stub runs on until then must
// lie in the kernel's load range, the one range it knows nothing else may use.
Range choose_stack(Stub& s, const void* fdt, uint64_t fdt_gpa) {
    RegionAllocator alloc(ram_from_fdt(s, fdt));
    reserve_fixed(s, alloc, fdt, fdt_gpa);
    const ComponentView& k = s.manifest.get(ComponentId::kernel);
    const Range bootstrap{SVMKIT_PPC64LE_BOOTSTRAP_STACK_BASE,
                          SVMKIT_PPC64LE_BOOTSTRAP_STACK_TOP - SVMKIT_PPC64LE_BOOTSTRAP_STACK_BASE};
    Range kernel;
    if (!make_range(k.load_address, k.memory_size, &kernel) || !kernel.contains(bootstrap))
        s.fatal("the kernel's load range does not cover the stub's bootstrap stack "
                "0x10000..0x20000");
    Range stack;
    if (!alloc.allocate(SVMKIT_PPC64LE_STACK_SIZE, kPageSize, &stack))
        s.fatal("no free memory for the stub's stack");
    s.say("stack ").hex(stack.base).str("..").hex(stack.end());
    s.con.str(": free in the device tree (memory, reserve map, the tree, the image, the kernel)")
        .nl();
    return stack;
}

[[noreturn]] void boot_kexec_style(uint64_t r3, uint64_t r4, uint64_t stack_top) {
    Stub s{Calls()};
    // A kexec parks the secondary CPUs at 0x60, in the image's first 0x100
    // bytes it copied to 0 (entry.S): the kernel's are written there last.
    s.head_held = Stub::kMaxHeadHeld;
    s.stack = Range{stack_top - SVMKIT_PPC64LE_STACK_SIZE, SVMKIT_PPC64LE_STACK_SIZE};
    Rtas rtas;
    start_kexec_style(s, rtas, r3);

    if (!s.calls.secure()) {
        s.say("kexec-style entry at ").hex(s.kbase).str(" (r3 = fdt ").hex(r3).str(")").nl();
        if (!svm_requested(s))
            boot_insecure(s, r3);
        guard_unanswered_ultracalls();
        request_esm(s, r3);
    }
    // The ultravisor resumes kexec-style at kbase: r3 = FDT, r4 = kbase, r5 = 0.
    if (r4 != s.kbase)
        s.fatal("resumed secure with r4 != the image base");
    boot_secure(s, r3);
}

} // namespace

// On the bootstrap stack (or, firmware-style with svm=on, the firmware's):
// find the real one, move there and start over (the Stub and everything else
// on the old stack are left behind).
void bootstrap_kexec_style(uint64_t r3, uint64_t r4) {
    Stub s{Calls()};
    Rtas rtas;
    const void* fdt = start_kexec_style(s, rtas, r3);
    const Range stack = choose_stack(s, fdt, r3);
    svmkit_ppc64le_run_on_stack(boot_kexec_style, r3, r4, stack.end());
}

} // namespace svmkit::stub

extern "C" void svmkit_stub_ppc64le_main(uint64_t r3, uint64_t r4, uint64_t r5) {
    if (r5 != 0)
        svmkit::stub::boot_firmware_style(r5, r3, r4);
    svmkit::stub::bootstrap_kexec_style(r3, r4);
}
