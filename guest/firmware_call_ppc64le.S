/* Calling big-endian, 32-bit firmware from little-endian, 64-bit guest code:
 * Open Firmware's client interface and RTAS both run that way, in real mode.
 *
 *   long svmkit_call_be_firmware(uint64_t r3, uint64_t r4, uint64_t entry);
 *
 * Enters `entry` with r3, r4 and an MSR equal to ours but with SF (64-bit
 * mode) and LE cleared, and returns the firmware's r3. The firmware runs on
 * our stack. Everything it is handed (the stack, the argument block, strings,
 * this code's return address) must lie below 4 GiB, because in 32-bit mode
 * only the low halves of addresses count.
 *
 * A 32-bit firmware saves and restores only the low halves of the registers
 * the ABI calls non-volatile, so this saves r2 and r13..r31 in full, with CR
 * and the MSR, and restores them after the firmware returns (big-endian, to
 * the bi-endian block below). */
#include "guest/endian_ppc64le.h"

#define FRAME 224       /* 16-byte aligned */
#define SAVE_R2 32
#define SAVE_R13 40
#define SAVE_R14 48     /* r14..r31: 18 doublewords, up to 192 */
#define SAVE_CR 192
#define SAVE_MSR 200

    .abiversion 2
    .section .text.svmkit_call_be_firmware, "ax", @progbits
    .globl svmkit_call_be_firmware
    .hidden svmkit_call_be_firmware
    .type svmkit_call_be_firmware, @function
    .p2align 2
svmkit_call_be_firmware:
    mflr 0
    std 0, 16(1)
    stdu 1, -FRAME(1)
    std 2, SAVE_R2(1)
    std 13, SAVE_R13(1)
    .irp n, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    std \n, SAVE_R14 + 8 * (\n - 14)(1)
    .endr
    mfcr 0
    std 0, SAVE_CR(1)
    mfmsr 11
    std 11, SAVE_MSR(1)

    mtsrr0 5
    bcl 20, 31, 1f              /* LR = the return point below */
1:  mflr 12
    addi 12, 12, (2f - 1b)
    mtlr 12
    li 12, 1
    rotldi 12, 12, SVMKIT_MSR_SF_BIT
    ori 12, 12, 1               /* MSR_SF | MSR_LE */
    andc 11, 11, 12
    mtsrr1 11
    rfid

2:  SWITCH_TO_LITTLE_ENDIAN
    /* Still 32-bit mode: the firmware may have cleared r1's upper half,
     * which is zero anyway (the stack lies below 4 GiB). */
    clrldi 1, 1, 32
    ld 0, SAVE_MSR(1)
    mtmsrd 0
    isync
    ld 2, SAVE_R2(1)
    ld 13, SAVE_R13(1)
    .irp n, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    ld \n, SAVE_R14 + 8 * (\n - 14)(1)
    .endr
    ld 0, SAVE_CR(1)
    mtcrf 0xff, 0
    addi 1, 1, FRAME
    ld 0, 16(1)
    mtlr 0
    blr
    .size svmkit_call_be_firmware, . - svmkit_call_be_firmware

    .section .note.GNU-stack, "", @progbits
