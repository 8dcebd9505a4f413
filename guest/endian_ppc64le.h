/* The bi-endian start of code that may be entered big-endian (SLOF starts an
 * image big-endian; Open Firmware and RTAS return big-endian) and must run
 * little-endian. Assembler only.
 *
 * SWITCH_TO_LITTLE_ENDIAN: harmless when already little-endian; entered
 * big-endian, it flips MSR[LE] with rfid and resumes right after itself.
 * Clobbers r10, r11, SRR0, SRR1 (and MSR[EE], MSR[RI] when it switches).
 *
 * How: the first word, assembled little-endian, is `tdi 0,0,0x48` (a trap
 * that never traps). Its bytes, read big-endian, are 0x48000008: `b .+8`. A
 * little-endian CPU therefore runs word 1 (`b` past the block); a big-endian
 * CPU jumps to word 2, where the rest is stored big-endian:
 *
 *   mfmsr r11               0x7d6000a6
 *   xori r11,r11,1          0x696b0001    MSR[LE] flipped
 *   li r10,0                0x39400000
 *   mtmsrd r10,1            0x7d410164    EE = RI = 0 while SRR0/1 are live
 *   bcl 20,31,$+4           0x429f0005
 *   mflr r10                0x7d4802a6    r10 = the address of this mflr
 *   addi r10,r10,20         0x394a0014    5 words on: after the rfid
 *   mtsrr0 r10              0x7d5a03a6
 *   mtsrr1 r11              0x7d7b03a6
 *   rfid                    0x4c000024
 *
 * (Encodings from the Power ISA: D-form, X-form and XL-form fields; the same
 * trick Linux calls FIXUP_ENDIAN.) */
#ifndef SVMKIT_GUEST_ENDIAN_PPC64LE_H
#define SVMKIT_GUEST_ENDIAN_PPC64LE_H

#define SVMKIT_BSWAP32(x)                                                                          \
    ((((x) >> 24) & 0xff) | (((x) >> 8) & 0xff00) | (((x) << 8) & 0xff0000) |                      \
     (((x) << 24) & 0xff000000))
#define SVMKIT_BIG_ENDIAN_INSN(x) .long SVMKIT_BSWAP32(x)

/* clang-format off */
#define SWITCH_TO_LITTLE_ENDIAN                                                                    \
    tdi 0, 0, 0x48;                                                                                \
    b 191f;                                                                                        \
    SVMKIT_BIG_ENDIAN_INSN(0x7d6000a6);                                                            \
    SVMKIT_BIG_ENDIAN_INSN(0x696b0001);                                                            \
    SVMKIT_BIG_ENDIAN_INSN(0x39400000);                                                            \
    SVMKIT_BIG_ENDIAN_INSN(0x7d410164);                                                            \
    SVMKIT_BIG_ENDIAN_INSN(0x429f0005);                                                            \
    SVMKIT_BIG_ENDIAN_INSN(0x7d4802a6);                                                            \
    SVMKIT_BIG_ENDIAN_INSN(0x394a0014);                                                            \
    SVMKIT_BIG_ENDIAN_INSN(0x7d5a03a6);                                                            \
    SVMKIT_BIG_ENDIAN_INSN(0x7d7b03a6);                                                            \
    SVMKIT_BIG_ENDIAN_INSN(0x4c000024);                                                            \
191:
/* clang-format on */

/* MSR bits (64-bit value; IBM bit n is 1 << (63 - n)). */
#define SVMKIT_MSR_SF_BIT 63     /* 64-bit mode */
#define SVMKIT_MSR_VEC 0x2000000 /* Vector (VMX) available, IBM bit 38 */
#define SVMKIT_MSR_VSX 0x800000  /* VSX available, IBM bit 40 */
#define SVMKIT_MSR_FP 0x2000     /* floating point available, IBM bit 50 */

#endif
