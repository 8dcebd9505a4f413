/* Linker script of the sample guest kernel, run through the C preprocessor.
 *
 * Linked for the simulated platform's guest RAM (virtual = guest VA base +
 * physical), with each segment's physical (load) address in p_paddr, so
 * `svmkit build --kernel` takes the load address (the lowest p_paddr) and the
 * entry offset from the ELF headers. The entry is the first byte.
 */
#include "guest/layout.h"

#define KERNEL_LOAD 0x200000
#define VA(x) (SVMKIT_SIM_GUEST_VA_BASE + (x))

ENTRY(svmkit_sample_kernel_entry)

PHDRS {
    text PT_LOAD FLAGS(5);   /* R + X */
    rodata PT_LOAD FLAGS(4); /* R */
    data PT_LOAD FLAGS(6);   /* R + W */
}

SECTIONS {
    . = VA(KERNEL_LOAD);
    __kernel_start = .;
    .text : AT(KERNEL_LOAD) {
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
    __kernel_end = .;

    /DISCARD/ : {
        *(.comment) *(.note .note.*) *(.eh_frame .eh_frame_hdr) *(.interp)
        *(.dynamic) *(.dynsym) *(.dynstr) *(.hash) *(.gnu.hash)
    }
}
