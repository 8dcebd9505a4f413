// The stub's arch layer for the simulated platform (x86-64): its entry point
// and its way into the kernel. Guest code runs natively; the platform passes
// the gates that stand in for `sc 2`, `sc 1` and `mfmsr` (guest/gates.h) at
// every entry, and there is no Open Firmware.
#include "stub/stub.h"

namespace svmkit::stub {

void enter_kernel(Stub& s, uint64_t entry, uint64_t fdt, uint64_t kernel_base, uint64_t stack_top) {
    // The C-call form of POWER's kexec entry (guest/gates.h), on a stack of the
    // kernel's own; a kernel that returns faults on ud2.
    asm volatile("mov %[stack], %%rsp\n\t"
                 "xor %%ebp, %%ebp\n\t"
                 "call *%[entry]\n\t"
                 "ud2"
                 :
                 : [stack] "r"(gpa_ptr<void>(stack_top)), [entry] "r"(gpa_ptr<void>(entry)),
                   "D"(fdt), "S"(kernel_base), "d"(uint64_t{0}), "c"(s.calls.gates())
                 : "memory");
    __builtin_unreachable();
}

} // namespace svmkit::stub

using namespace svmkit::stub;

// The image's entry point: its first byte (.text.entry comes first in
// stub.lds.S). Register conventions as a C call (guest/gates.h).
extern "C" [[noreturn]] __attribute__((used, section(".text.entry"))) void
svmkit_stub_entry(uint64_t r3, uint64_t r4, uint64_t r5, const svmkit_gates* gates) {
    Stub s{Calls(gates)};
    s.kbase = ptr_gpa(__stub_start);
    if (r5 != 0)
        s.fatal("entered firmware-style (r5 = Open Firmware entry), but this platform has no "
                "Open Firmware; enter kexec-style (r3 = FDT, r4 = kbase, r5 = 0)");
    load_manifest(s);
    if (!s.calls.secure() && svm_refused(s))
        boot_insecure(s, r3); // a normal VM: no ESM, no bounce pool
    if (!s.calls.secure())
        request_esm(s, r3);
    // The ultravisor resumes kexec-style at kbase: r3 = FDT, r4 = kbase, r5 = 0.
    if (r4 != s.kbase)
        s.fatal("resumed secure with r4 != the image base");
    boot_secure(s, r3);
}
