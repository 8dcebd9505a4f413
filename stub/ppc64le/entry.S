/* The ppc64le stub's first bytes: the image's entry point.
 *
 * Entered from SLOF (firmware-style: big-endian, 32-bit mode, r5 = the Open
 * Firmware client interface, r1 = the firmware's stack), from a kexec or from
 * the ultravisor (kexec-style: little-endian, r3 = FDT, r4 = kbase, r5 = 0,
 * no usable stack). Position independent: QEMU loads the image at an address
 * of its choosing (0x4400000 for an image linked at 0x4000000), so the TOC
 * pointer and the stack are derived from where this code runs.
 *
 * Writes nothing inside the image (the stack and the canary lie outside).
 */
#include "guest/endian_ppc64le.h"
#include "stub/ppc64le/arch.h"

    .abiversion 2
    .section .text.entry, "ax", @progbits
    .globl svmkit_stub_entry
    .type svmkit_stub_entry, @function
svmkit_stub_entry:
    SWITCH_TO_LITTLE_ENDIAN
    b 1f

    /* A kexec's secondary CPUs wait here, at physical 0x60 (see arch.h),
     * until the kernel the stub unpacks to 0 replaces this loop with its own
     * secondary hold. Linux's kexec sends them big-endian (kexec_wait clears
     * MSR[LE]); a loop for either byte order, laid out like Linux's own hold
     * so a CPU spinning in it runs into the right half of the kernel's
     * FIXUP_ENDIAN when the kernel replaces it:
     *   0x60  tdi 0,0,0x48 little-endian = b .+8 big-endian
     *   0x64  b .-4          little-endian loop (0x60, 0x64)
     *   0x68  b .            big-endian, stored byte-reversed */
    .org svmkit_stub_entry + SVMKIT_PPC64LE_SECONDARY_HOLD
0:  tdi 0, 0, 0x48
    b 0b
    .long 0x00000048

1:  /* 64-bit mode, with floating point, VMX and VSX usable: SLOF enters in
     * 32-bit mode, and Debian's zlib is built for POWER8 (VSX). */
    mfmsr 11
    li 12, 1
    rotldi 12, 12, SVMKIT_MSR_SF_BIT
    oris 12, 12, (SVMKIT_MSR_VEC | SVMKIT_MSR_VSX) >> 16
    ori 12, 12, SVMKIT_MSR_FP
    or 11, 11, 12
    mtmsrd 11
    isync

    /* r2 = the TOC pointer, from this code's own address. */
    bcl 20, 31, 2f
2:  mflr 12
    addis 2, 12, (.TOC. - 2b)@ha
    addi 2, 2, (.TOC. - 2b)@l

    /* The stack: kexec-style, the bootstrap stack (arch.h), which must lie
     * below the image (a loader placing the image there leaves no way to
     * report it: the stub stops here); firmware-style, the firmware's,
     * below its frame and the 288-byte zone the ABI protects under r1. */
    cmpdi 5, 0
    bne 3f
    .if (SVMKIT_PPC64LE_BOOTSTRAP_STACK_TOP & 0xffff) != 0
    .error "the bootstrap stack's top must be a multiple of 64 KiB"
    .endif
    lis 1, SVMKIT_PPC64LE_BOOTSTRAP_STACK_TOP >> 16
    addi 0, 12, (svmkit_stub_entry - 2b)
    cmpld 0, 1
    blt 6f
    b 4f
3:  addi 1, 1, -512
4:  clrrdi 1, 1, 4

    /* The first frame: back chain 0, and the canary slot at 48(r1). */
    addi 1, 1, -64
    li 0, 0
    std 0, 0(1)
    mftb 0
    std 0, 48(1)
    addi 13, 1, 48 + SVMKIT_PPC64LE_CANARY_OFFSET

    bl svmkit_stub_ppc64le_main
    nop
5:  b 5b
6:  b 6b
    .size svmkit_stub_entry, . - svmkit_stub_entry

/* void svmkit_ppc64le_run_on_stack(fn, a0, a1, stack_top): fn(a0, a1,
 * stack_top) on a fresh stack, whose first frame takes the canary slot (the
 * old stack may be overwritten next). Never returns. */
    .section .text.svmkit_ppc64le_run_on_stack, "ax", @progbits
    .globl svmkit_ppc64le_run_on_stack
    .hidden svmkit_ppc64le_run_on_stack
    .type svmkit_ppc64le_run_on_stack, @function
    .p2align 2
svmkit_ppc64le_run_on_stack:
    mtctr 3
    mr 12, 3
    ld 0, -SVMKIT_PPC64LE_CANARY_OFFSET(13)
    clrrdi 1, 6, 4
    addi 1, 1, -64
    li 9, 0
    std 9, 0(1)
    std 0, 48(1)
    addi 13, 1, 48 + SVMKIT_PPC64LE_CANARY_OFFSET
    mr 3, 4
    mr 4, 5
    mr 5, 6
    bctrl
0:  b 0b
    .size svmkit_ppc64le_run_on_stack, . - svmkit_ppc64le_run_on_stack

/* void svmkit_ppc64le_enter(entry, r3, r4, r5, stack_top) */
    .section .text.svmkit_ppc64le_enter, "ax", @progbits
    .globl svmkit_ppc64le_enter
    .hidden svmkit_ppc64le_enter
    .type svmkit_ppc64le_enter, @function
    .p2align 2
svmkit_ppc64le_enter:
    mtctr 3
    mr 12, 3
    mr 3, 4
    mr 4, 5
    mr 5, 6
    cmpdi 7, 0
    beq 1f
    addi 1, 7, -64
    clrrdi 1, 1, 4
    li 0, 0
    std 0, 0(1)
1:  li 6, 0
    li 7, 0
    bctr
    .size svmkit_ppc64le_enter, . - svmkit_ppc64le_enter

    .section .note.GNU-stack, "", @progbits
