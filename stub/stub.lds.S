/* Linker script for the boot stub, run through the C preprocessor with
 * STUB_LINK_ADDRESS defined.
 *
 * Invariants (checked here and again by tests/unit/stub_invariants_test):
 *   - exactly two loadable segments: code (R+X) and read-only data (R);
 *   - no writable section: .data/.bss must be empty (ASSERT below), because
 *     nothing inside the loaded image may be written before UV_ESM;
 *   - the entry is the first byte of the code segment (SLOF starts at the
 *     lowest loaded address, not at e_entry);
 *   - __stub_end, 64 KiB aligned, is where svmkit places .kernel:esm_blob.
 */
#include "guest/layout.h"

ENTRY(svmkit_stub_entry)

PHDRS {
    text PT_LOAD FLAGS(5);   /* R + X */
    rodata PT_LOAD FLAGS(4); /* R */
}

SECTIONS {
    . = STUB_LINK_ADDRESS;
    __stub_start = .;
    .text : {
        KEEP(*(.text.entry))
        *(.text .text.*)
    } :text

    . = ALIGN(SVMKIT_PAGE_SIZE);
    .rodata : {
        *(.rodata .rodata.*)
        *(.srodata .srodata.*)
    } :rodata

    .data : { *(.data .data.* .sdata .sdata.* .bss .bss.* .sbss .sbss.* COMMON) } :rodata
    ASSERT(SIZEOF(.data) == 0, "the stub must have no writable data")
    .got : { *(.got .got.* .toc .toc.*) } :rodata
    ASSERT(SIZEOF(.got) == 0, "the stub must not need a GOT or TOC")

    . = ALIGN(SVMKIT_PAGE_SIZE);
    __stub_end = .;

    /DISCARD/ : {
        *(.comment) *(.note .note.*) *(.eh_frame .eh_frame_hdr) *(.interp)
        *(.dynamic) *(.dynsym) *(.dynstr) *(.hash) *(.gnu.hash)
    }
}
