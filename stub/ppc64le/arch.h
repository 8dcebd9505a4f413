/* The ppc64le stub's arch layer: what its entry code (entry.S) and its C++
 * share. Plain C preprocessor definitions and C declarations, so entry.S can
 * include it. */
#ifndef SVMKIT_STUB_PPC64LE_ARCH_H
#define SVMKIT_STUB_PPC64LE_ARCH_H

/* Kexec-style (r5 = 0) nothing tells the stub which memory is free before it
 * has read the device tree, and the ultravisor resumes it without a stack.
 * So entry.S starts it on a small bootstrap stack inside the kernel's load
 * range (a Linux ppc64 kernel loads at 0): memory the stub unpacks the
 * kernel over anyway, which a loader therefore has to leave alone (kexec-tools
 * keeps the running kernel's [0, linux,kernel-end) out of its placements).
 * The stub checks that from the manifest and the device tree, then allocates
 * its real stack (SVMKIT_PPC64LE_STACK_SIZE) from memory the device tree shows
 * free and moves onto it (main.cpp) before it writes anything else. Below
 * the bootstrap stack: the exception vectors and the secondary CPUs' hold. */
#define SVMKIT_PPC64LE_BOOTSTRAP_STACK_BASE 0x10000
#define SVMKIT_PPC64LE_BOOTSTRAP_STACK_TOP 0x20000
#define SVMKIT_PPC64LE_STACK_SIZE 0x40000

/* Debian's libz.a and libfdt.a (-fstack-protector-strong) read the canary at
 * r13 - 0x7010 (the ppc64 TLS ABI). entry.S points r13 there: at a slot in
 * the stub's first stack frame. */
#define SVMKIT_PPC64LE_CANARY_OFFSET 0x7010

/* Offset in the image where a kexec's secondary CPUs spin (the "slave code"
 * convention: a kexec copies the new kernel's first 0x100 bytes to address 0
 * and sends the secondaries to 0x60). */
#define SVMKIT_PPC64LE_SECONDARY_HOLD 0x60

#ifndef __ASSEMBLER__
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* entry.S: jumps to `entry` with r3, r4, r5 (and r6 = r7 = 0), on a stack
 * ending at `stack_top`, or on the current stack when it is 0. */
__attribute__((noreturn, visibility("hidden"))) void
svmkit_ppc64le_enter(uint64_t entry, uint64_t r3, uint64_t r4, uint64_t r5, uint64_t stack_top);

/* entry.S: calls fn(a0, a1, stack_top) on a stack ending at `stack_top`, with
 * the stack-protector canary (and r13) moved into its first frame. */
__attribute__((noreturn, visibility("hidden"))) void
svmkit_ppc64le_run_on_stack(void (*fn)(uint64_t, uint64_t, uint64_t), uint64_t a0, uint64_t a1,
                            uint64_t stack_top);

/* entry.S hands over here, little-endian, 64-bit, on a stack, with r2 and
 * r13 set up and the registers the stub was entered with. */
__attribute__((noreturn, visibility("hidden"))) void
svmkit_stub_ppc64le_main(uint64_t r3, uint64_t r4, uint64_t r5);

#ifdef __cplusplus
}

namespace svmkit::stub {
/* firmware_boot.cpp: the firmware-style entry (r5 = Open Firmware). */
[[noreturn]] void boot_firmware_style(uint64_t of_entry, uint64_t r3, uint64_t r4);
/* main.cpp: the kexec-style entry (r3 = FDT, r4 = kbase, r5 = 0) on any
 * stack: checks the tree and the manifest, moves to a stack from the tree's
 * free memory and boots from there. The firmware-style entry with svm=on
 * continues here once it has flattened the firmware's tree and left it. */
[[noreturn]] void bootstrap_kexec_style(uint64_t r3, uint64_t r4);
} // namespace svmkit::stub
#endif

#endif /* __ASSEMBLER__ */
#endif
