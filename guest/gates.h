/* The gate ABI of the simulated platform: how natively running guest code
 * reaches the ultravisor and the hypervisor.
 *
 * On POWER a guest issues `sc 2` (ultracall) or `sc 1` (hypercall) with the
 * call number in r3 and arguments in r4..r12, and reads the return code from
 * r3 and outputs from r4..r12. On the simulated platform guest code runs
 * natively in the machine process, so those instructions become calls
 * through function pointers the platform passes at every entry. The register
 * file travels in a struct svmkit_regs with the same meaning per register, so
 * guest code written against this ABI maps one to one onto the real
 * instructions (see guest/hcall.h for the wrappers guest code uses).
 *
 * Entry convention (firmware, the ultravisor's resume, the stub's kernel
 * entry all use it): the entry point is a C function
 *
 *     extern "C" void entry(uint64_t r3, uint64_t r4, uint64_t r5,
 *                           const struct svmkit_gates* gates);
 *
 * called on a stack inside guest RAM. r3..r5 carry what POWER passes in
 * those registers (kexec-style: r3 = FDT, r4 = kernel base, r5 = 0).
 *
 * Plain C: shared by freestanding guest code and the host platform.
 */
#ifndef SVMKIT_GUEST_GATES_H
#define SVMKIT_GUEST_GATES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* r[3] = call number in, return code out; r[4..12] = arguments in, outputs
 * out. r[0..2] are unused (kept so indices match POWER register numbers). */
struct svmkit_regs {
    uint64_t r[13];
};

/* Every gate runs its handler on a stack of the platform's own, never on the
 * guest's stack (UV_ESM remaps all of guest RAM while its handler runs). */
struct svmkit_gates {
    long (*ucall)(struct svmkit_regs* regs); /* `sc 2` */
    long (*hcall)(struct svmkit_regs* regs); /* `sc 1` */
    uint64_t (*mfmsr)(void);                 /* `mfmsr` */
};

/* MSR bits as a 64-bit POWER MSR value. POWER documents MSR bits in IBM
 * (MSB-0) numbering: the secure bit MSR[S] is bit 41, which is bit 22 counted
 * from the least significant end (63 - 41), exactly Linux's MSR_S_LG = 22.
 * The mfmsr gate returns a real POWER-format MSR so that guest code testing
 * SVMKIT_MSR_S is the same on ppc64le, where it reads the register itself. */
#define SVMKIT_MSR_SF (1ull << 63) /* 64-bit mode (IBM bit 0) */
#define SVMKIT_MSR_S (1ull << 22)  /* secure (IBM bit 41) */
#define SVMKIT_MSR_LE (1ull << 0)  /* little-endian (IBM bit 63) */

#ifdef __cplusplus
}
#endif

#endif
