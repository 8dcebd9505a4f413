/* Where things live in guest-physical and guest-virtual memory.
 *
 * One source of truth for the host tools (C++), the freestanding guest code
 * and the stub's linker script (run through the C preprocessor), so it is
 * plain C preprocessor definitions.
 *
 * Secure images are linked at SVMKIT_IMAGE_BASE (guest-physical), the address
 * the Linux pseries zImage uses too. On the simulated platform guest RAM sits
 * at a fixed host virtual base, and guest code is linked for
 * SVMKIT_SIM_GUEST_VA_BASE + guest-physical address (like a kernel linked for
 * its linear map). The base lies above AddressSanitizer's shadow memory on
 * x86-64 (which ends at 0x10007fff7fff), so sanitizer builds can map it too.
 * On ppc64le the stub is position independent and linked at
 * virtual = physical.
 */
#ifndef SVMKIT_GUEST_LAYOUT_H
#define SVMKIT_GUEST_LAYOUT_H

/* 64 KiB pages, as on PEF (SVM_PAGESHIFT 16). */
#define SVMKIT_PAGE_SHIFT 16
#define SVMKIT_PAGE_SIZE 0x10000

#define SVMKIT_IMAGE_BASE 0x4000000

#define SVMKIT_SIM_GUEST_VA_BASE 0x200000000000

/* Link (virtual) address of the stub's first byte, per target. */
#define SVMKIT_STUB_LINK_ADDRESS_SIM (SVMKIT_SIM_GUEST_VA_BASE + SVMKIT_IMAGE_BASE)
#define SVMKIT_STUB_LINK_ADDRESS_PPC64LE SVMKIT_IMAGE_BASE

#endif
