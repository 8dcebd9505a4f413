// Ultracalls, hypercalls and the MSR for freestanding guest code.
//
// On the simulated platform these go through the gates the platform passes at
// entry (guest/gates.h); on POWER they are `sc 2`, `sc 1` and `mfmsr`
// (guest/hcall_ppc64le.h, the same interface). Guest code calls only these
// wrappers.
#pragma once

#if defined(__powerpc64__)
#include "guest/hcall_ppc64le.h"
#else

#include "guest/gates.h"
#include "guest/hvterm.h"
#include "guest/uv_abi.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

class Calls {
  public:
    explicit Calls(const svmkit_gates* gates) : gates_(gates) {}

    // Ultracall `number` with up to four arguments in r4..r7. The full
    // register file (outputs in r4..r12) is left in `regs` when given.
    long ucall(uint64_t number, uint64_t r4 = 0, uint64_t r5 = 0, uint64_t r6 = 0, uint64_t r7 = 0,
               svmkit_regs* regs = nullptr) const {
        svmkit_regs local{};
        svmkit_regs& r = regs != nullptr ? *regs : local;
        set(r, number, r4, r5, r6, r7);
        return gates_->ucall(&r);
    }

    long hcall(uint64_t number, uint64_t r4 = 0, uint64_t r5 = 0, uint64_t r6 = 0, uint64_t r7 = 0,
               svmkit_regs* regs = nullptr) const {
        svmkit_regs local{};
        svmkit_regs& r = regs != nullptr ? *regs : local;
        set(r, number, r4, r5, r6, r7);
        return gates_->hcall(&r);
    }

    // The console: the platform's virtual terminal.
    void console_write(const char* s, size_t n) const { hvterm_write(*this, SVMKIT_VTERM, s, n); }

    // An event for the platform's boot report (H_SVMKIT_TRACE).
    void trace(uint64_t event, uint64_t a, uint64_t b = 0, uint64_t c = 0) const {
        hcall(H_SVMKIT_TRACE, event, a, b, c);
    }

    uint64_t mfmsr() const { return gates_->mfmsr(); }
    bool secure() const { return (mfmsr() & SVMKIT_MSR_S) != 0; }
    const svmkit_gates* gates() const { return gates_; }

    // Stops the VM: UV_SVM_TERMINATE, and should the ultravisor return, the
    // platform's exit hypercall with `status`; never returns.
    [[noreturn]] void terminate(uint64_t status) const {
        ucall(UV_SVM_TERMINATE);
        hcall(H_SVMKIT_EXIT, status);
        for (;;)
            __builtin_trap();
    }

    // Ends the VM with an exit status (the sample kernel's normal end).
    [[noreturn]] void exit(uint64_t status) const {
        hcall(H_SVMKIT_EXIT, status);
        for (;;)
            __builtin_trap();
    }

  private:
    static void set(svmkit_regs& r, uint64_t number, uint64_t r4, uint64_t r5, uint64_t r6,
                    uint64_t r7) {
        r.r[3] = number;
        r.r[4] = r4;
        r.r[5] = r5;
        r.r[6] = r6;
        r.r[7] = r7;
    }

    const svmkit_gates* gates_;
};

} // namespace svmkit::guest

#endif // __powerpc64__
