/* Linker script for the boot stub, run through the C preprocessor with
 * STUB_LINK_ADDRESS defined.
 *
 * Invariants (checked here and again by tests/unit/stub_invariants_test):
 *   - exactly two loadable segments: code (R+X) and read-only data (R);
 *   - no writable section: .data/.bss must be empty (ASSERT below), because
 *     nothing inside the loaded image may be written before UV_ESM;
 *   - the entry is the first byte of the code segment (SLOF starts at the
 *     lowest loaded address, not at e_entry);
 *   - __stub_end, 64 KiB aligned, is where svmkit places .kernel:esm_blob;
 *   - ppc64le: position independent. QEMU loads an image linked at 0x4000000
 *     at 0x4400000, so the stub reaches everything through r2, which its
 *     entry derives from where it runs. It is linked as a PIE (so ld keeps
 *     each function's global entry PC-relative instead of turning it into an
 *     absolute `lis r2,.TOC.@ha`), and any absolute address would need a
 *     dynamic relocation: there must be none (ASSERT below).
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
#if defined(__powerpc64__)
    /* ld's 8-byte GOT header (the TOC base, for a dynamic linker there is
     * not), kept only as an unloaded section: the TOC base is placed
     * relative to it. Compiler TOC entries would hold absolute addresses;
     * ld turns every use into r2-relative arithmetic, and none may remain. */
    .got (INFO) : {
        *(.got)
        __stub_toc_start = .;
        *(.toc .toc.*)
        __stub_toc_end = .;
    }
    ASSERT(SIZEOF(.got) <= 8, "the stub must not need a GOT")
    ASSERT(__stub_toc_end == __stub_toc_start, "the stub must not need TOC entries")
    .rela.dyn : { *(.rela.dyn .rela.*) } :rodata
    ASSERT(SIZEOF(.rela.dyn) == 0, "the stub must be position independent (no dynamic relocation)")
#else
    .got : { *(.got .got.* .toc .toc.*) } :rodata
    ASSERT(SIZEOF(.got) == 0, "the stub must not need a GOT or TOC")
#endif

    . = ALIGN(SVMKIT_PAGE_SIZE);
    __stub_end = .;

    /DISCARD/ : {
        *(.comment) *(.note .note.*) *(.eh_frame .eh_frame_hdr) *(.interp)
        *(.dynamic) *(.dynsym) *(.dynstr) *(.hash) *(.gnu.hash)
    }
}
