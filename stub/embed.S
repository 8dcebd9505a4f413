/* Embeds the built stub ELF files into svmkit, which copies their loadable
 * segments into every image it builds. Paths come from CMake. */
    .section .rodata.svmkit_stubs, "a"
    .balign 16
    .globl svmkit_stub_x86_64_start, svmkit_stub_x86_64_end
svmkit_stub_x86_64_start:
    .incbin SVMKIT_STUB_X86_64_ELF
svmkit_stub_x86_64_end:
    .balign 16
    .globl svmkit_stub_ppc64le_start, svmkit_stub_ppc64le_end
svmkit_stub_ppc64le_start:
    .incbin SVMKIT_STUB_PPC64LE_ELF
svmkit_stub_ppc64le_end:
    .section .note.GNU-stack, "", @progbits
