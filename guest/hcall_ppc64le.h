// Ultracalls, hypercalls and the MSR on POWER (ppc64le): the real `sc 2`,
// `sc 1` and `mfmsr`, behind the interface guest/hcall.h gives the simulated
// platform's gates. Included through guest/hcall.h.
//
// Beyond the calls, a ppc64le Calls knows where the console is and how to
// stop the machine, because on POWER that depends on the firmware the stub
// was entered from: Open Firmware's `write` and `exit` for a firmware-style
// entry, the hypervisor's virtual terminal and RTAS for a kexec-style one.
#pragma once

#include "guest/gates.h"
#include "guest/hvterm.h"
#include "guest/uv_abi.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

class OpenFirmware; // guest/of_client_ppc64le.h
struct Rtas;        // guest/rtas_ppc64le.h

// The console's unit address until the device tree names it: QEMU's (and
// KVM's) pseries vty. PowerVM uses 0x30000000.
inline constexpr uint64_t kDefaultVterm = 0x71000000;

// `sc LEV` with r3..r12 from and back to `r` (PAPR: r0, r3..r12, CR, CTR
// and XER are volatile across the call; the hypervisor and the ultravisor
// may change every CR field, so all are clobbered here).
template <int Lev>
inline long system_call(svmkit_regs& r) {
    register uint64_t r3 asm("r3") = r.r[3];
    register uint64_t r4 asm("r4") = r.r[4];
    register uint64_t r5 asm("r5") = r.r[5];
    register uint64_t r6 asm("r6") = r.r[6];
    register uint64_t r7 asm("r7") = r.r[7];
    register uint64_t r8 asm("r8") = r.r[8];
    register uint64_t r9 asm("r9") = r.r[9];
    register uint64_t r10 asm("r10") = r.r[10];
    register uint64_t r11 asm("r11") = r.r[11];
    register uint64_t r12 asm("r12") = r.r[12];
    asm volatile("sc %[lev]"
                 : "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6), "+r"(r7), "+r"(r8), "+r"(r9), "+r"(r10),
                   "+r"(r11), "+r"(r12)
                 : [lev] "i"(Lev)
                 : "r0", "ctr", "xer", "cr0", "cr1", "cr2", "cr3", "cr4", "cr5", "cr6", "cr7",
                   "memory");
    r.r[3] = r3;
    r.r[4] = r4;
    r.r[5] = r5;
    r.r[6] = r6;
    r.r[7] = r7;
    r.r[8] = r8;
    r.r[9] = r9;
    r.r[10] = r10;
    r.r[11] = r11;
    r.r[12] = r12;
    return static_cast<long>(r3);
}

class Calls {
  public:
    // Ultracall `number` (`sc 2`) with up to four arguments in r4..r7. The full
    // register file (outputs in r4..r12) is left in `regs` when given.
    long ucall(uint64_t number, uint64_t r4 = 0, uint64_t r5 = 0, uint64_t r6 = 0, uint64_t r7 = 0,
               svmkit_regs* regs = nullptr) const {
        svmkit_regs local{};
        svmkit_regs& r = regs != nullptr ? *regs : local;
        set(r, number, r4, r5, r6, r7);
        return system_call<2>(r);
    }

    // Hypercall `number` (`sc 1`).
    long hcall(uint64_t number, uint64_t r4 = 0, uint64_t r5 = 0, uint64_t r6 = 0, uint64_t r7 = 0,
               svmkit_regs* regs = nullptr) const {
        svmkit_regs local{};
        svmkit_regs& r = regs != nullptr ? *regs : local;
        set(r, number, r4, r5, r6, r7);
        return system_call<1>(r);
    }

    uint64_t mfmsr() const {
        uint64_t msr = 0;
        asm volatile("mfmsr %0" : "=r"(msr));
        return msr;
    }
    bool secure() const { return (mfmsr() & SVMKIT_MSR_S) != 0; }

    // The console: Open Firmware's stdout while the firmware is in use, else
    // the virtual terminal (hcall_ppc64le.cpp).
    void console_write(const char* s, size_t n) const;

    // The simulated platform's boot report has no counterpart on POWER.
    void trace(uint64_t, uint64_t, uint64_t = 0, uint64_t = 0) const {}

    void use_vterm(uint64_t unit_address) { vterm_ = unit_address; }
    // `of` must outlive this object (both live in the stub's entry frame).
    void use_open_firmware(const OpenFirmware* of, uint32_t stdout_ihandle) {
        of_ = of;
        of_stdout_ = stdout_ihandle;
    }
    void use_rtas(const Rtas* rtas) { rtas_ = rtas; }

    // Stops the VM after a failure: UV_SVM_TERMINATE when secure, then the
    // firmware's way (Open Firmware `exit`, RTAS ibm,os-term or power-off);
    // spins when nothing stops it. Never returns.
    [[noreturn]] void terminate(uint64_t status) const;
    // Ends the VM normally (Open Firmware `exit`, RTAS power-off).
    [[noreturn]] void exit(uint64_t status) const;

  private:
    static void set(svmkit_regs& r, uint64_t number, uint64_t r4, uint64_t r5, uint64_t r6,
                    uint64_t r7) {
        r.r[3] = number;
        r.r[4] = r4;
        r.r[5] = r5;
        r.r[6] = r6;
        r.r[7] = r7;
    }

    uint64_t vterm_ = kDefaultVterm;
    const OpenFirmware* of_ = nullptr;
    uint32_t of_stdout_ = 0;
    const Rtas* rtas_ = nullptr;
};

} // namespace svmkit::guest
