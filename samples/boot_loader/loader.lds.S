/* Linker script of the boot loader (a normal guest program), run through the
 * C preprocessor.
 *
 * Linked for the simulated platform's guest RAM (virtual = guest VA base +
 * physical), with each segment's physical (load) address in p_paddr, where
 * the machine's firmware places it (platform/guest_program.hpp). The entry
 * is the first byte.
 */
#include "guest/layout.h"

/* Clear of the sample kernel (0x200000), the firmware (0x3e00000..0x4000000)
 * and the secure-image base (0x4000000), where the images it loads go. */
#define LOADER_LOAD 0x8000000
#define VA(x) (SVMKIT_SIM_GUEST_VA_BASE + (x))

ENTRY(svmkit_boot_loader_entry)

PHDRS {
    text PT_LOAD FLAGS(5);   /* R + X */
    rodata PT_LOAD FLAGS(4); /* R */
    data PT_LOAD FLAGS(6);   /* R + W */
}

SECTIONS {
    . = VA(LOADER_LOAD);
    __loader_start = .;
    .text : AT(LOADER_LOAD) {
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
    __loader_end = .;

    /DISCARD/ : {
        *(.comment) *(.note .note.*) *(.eh_frame .eh_frame_hdr) *(.interp)
        *(.dynamic) *(.dynsym) *(.dynstr) *(.hash) *(.gnu.hash)
    }
}
