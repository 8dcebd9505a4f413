/* The linker script body of a freestanding guest program on the simulated
 * platform (the sample kernel, the boot loader), run through the C
 * preprocessor. The including script defines:
 *   PROGRAM_LOAD   its guest-physical load address
 *   PROGRAM_ENTRY  its entry symbol (placed first: section .text.entry)
 *   PROGRAM_START, PROGRAM_END  the symbols that bound its memory
 *
 * Linked for guest RAM (virtual = guest VA base + physical), with each
 * segment's physical (load) address in p_paddr: text (R+X), rodata (R) and
 * data + bss (R+W) in three PT_LOAD segments, nothing dynamic.
 */
#include "guest/layout.h"

#define VA(x) (SVMKIT_SIM_GUEST_VA_BASE + (x))

ENTRY(PROGRAM_ENTRY)

PHDRS {
    text PT_LOAD FLAGS(5);   /* R + X */
    rodata PT_LOAD FLAGS(4); /* R */
    data PT_LOAD FLAGS(6);   /* R + W */
}

SECTIONS {
    . = VA(PROGRAM_LOAD);
    PROGRAM_START = .;
    .text : AT(PROGRAM_LOAD) {
        KEEP(*(.text.entry))
        *(.text .text.*)
    } :text

    . = ALIGN(0x1000);
    .rodata : AT(ADDR(.rodata) - SVMKIT_SIM_GUEST_VA_BASE) {
        *(.rodata .rodata.*)
    } :rodata

    . = ALIGN(0x1000);
    .data : AT(ADDR(.data) - SVMKIT_SIM_GUEST_VA_BASE) {
        *(.data .data.* .got .got.*)
    } :data
    .bss : AT(ADDR(.bss) - SVMKIT_SIM_GUEST_VA_BASE) {
        *(.bss .bss.* COMMON)
    } :data
    PROGRAM_END = .;

    /DISCARD/ : {
        *(.comment) *(.note .note.*) *(.eh_frame .eh_frame_hdr) *(.interp)
        *(.dynamic) *(.dynsym) *(.dynstr) *(.hash) *(.gnu.hash)
    }
}
