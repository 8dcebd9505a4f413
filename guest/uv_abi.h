/* The POWER ultravisor and hypervisor call ABI, as far as svmkit uses it.
 * Numbers and return codes from Linux's
 * arch/powerpc/include/asm/ultravisor-api.h and hvcall.h. Plain C so freestanding
 * guest code, the stub and the host platform share it. */
#ifndef SVMKIT_GUEST_UV_ABI_H
#define SVMKIT_GUEST_UV_ABI_H

#include <stdint.h>

/* Ultracalls: `sc 2`, r3 = number. */
#define UV_WRITE_PATE 0xF104
#define UV_RESTRICTED_SPR_WRITE 0xF108
#define UV_RESTRICTED_SPR_READ 0xF10C
#define UV_ESM 0xF110 /* r4 = kbase, r5 = FDT */
#define UV_READ_SCOM 0xF114
#define UV_WRITE_SCOM 0xF118
#define UV_RETURN 0xF11C
#define UV_REGISTER_MEM_SLOT 0xF120
#define UV_UNREGISTER_MEM_SLOT 0xF124
#define UV_PAGE_IN 0xF128
#define UV_PAGE_OUT 0xF12C
#define UV_SHARE_PAGE 0xF130   /* r4 = pfn, r5 = number of pages */
#define UV_UNSHARE_PAGE 0xF134 /* r4 = pfn, r5 = number of pages */
#define UV_PAGE_INVAL 0xF138
#define UV_SVM_TERMINATE 0xF13C
#define UV_UNSHARE_ALL_PAGES 0xF140
#define UV_READ_MEM 0xF144
#define UV_WRITE_MEM 0xF148
/* UV_ESMB_GET_FILE: r4 = offset, r5..r12 = file name (at most
 * UV_ESMB_NAME_MAX bytes, NUL-padded); out r3 = bytes returned (0 at the end)
 * or a negative U_* code, r4..r11 = up to UV_ESMB_CHUNK bytes of the file.
 * Names and data are packed into the registers big-endian, the first byte in
 * the most significant byte (svm-tools' esmb-get-file.c); see
 * svmkit_uv_pack_bytes / svmkit_uv_unpack_bytes. */
#define UV_ESMB_GET_FILE 0xF14C
#define UV_ESMB_CHUNK 64
#define UV_ESMB_NAME_MAX 64

/* Return codes (same values as the hypervisor's H_*). */
#define U_SUCCESS 0
#define U_FUNCTION (-2)
#define U_PARAMETER (-4)
#define U_RETRY (-5)
#define U_PERMISSION (-11)
#define U_P2 (-55)
#define U_P3 (-56)
#define U_P4 (-57)
#define U_P5 (-58)
#define U_BAD_MODE (-59)
#define U_STATE (-75)

/* A return code's name, for messages (guest console and host reports). */
static inline const char* svmkit_uv_code_name(long code) {
    switch (code) {
    case U_SUCCESS: return "U_SUCCESS";
    case U_FUNCTION: return "U_FUNCTION";
    case U_PARAMETER: return "U_PARAMETER";
    case U_RETRY: return "U_RETRY";
    case U_PERMISSION: return "U_PERMISSION";
    case U_P2: return "U_P2";
    case U_P3: return "U_P3";
    case U_P4: return "U_P4";
    case U_P5: return "U_P5";
    case U_BAD_MODE: return "U_BAD_MODE";
    case U_STATE: return "U_STATE";
    default: return "unknown";
    }
}

/* Packs n bytes (n <= 8 * nregs) into registers, first byte in the most
 * significant byte of regs[0]; the rest is zero. */
static inline void svmkit_uv_pack_bytes(const uint8_t* bytes, uint64_t n, uint64_t* regs,
                                        uint64_t nregs) {
    for (uint64_t i = 0; i < nregs; ++i)
        regs[i] = 0;
    for (uint64_t i = 0; i < n && i < 8 * nregs; ++i)
        regs[i / 8] |= (uint64_t)bytes[i] << (56 - 8 * (i % 8));
}

/* The reverse: 8 * nregs bytes out of registers. */
static inline void svmkit_uv_unpack_bytes(const uint64_t* regs, uint64_t nregs, uint8_t* bytes) {
    for (uint64_t i = 0; i < 8 * nregs; ++i)
        bytes[i] = (uint8_t)(regs[i / 8] >> (56 - 8 * (i % 8)));
}

/* Hypercalls used by svmkit guests: `sc 1`, r3 = number. */
#define H_PUT_TERM_CHAR                                                                            \
    0x58 /* r4 = vterm, r5 = length <= 16, bytes in r6..r7 (big-endian packed) */

/* Hypercall return codes (PAPR). */
#define H_SUCCESS 0
#define H_HARDWARE (-1)
#define H_FUNCTION (-2)
#define H_PARAMETER (-4)

/* The console of the simulated platform is virtual terminal 0 (QEMU's
 * pseries console has unit address 0x71000000 instead). */
#define SVMKIT_VTERM 0

/* Platform-specific hypercalls of the simulated platform. PAPR leaves
 * 0xF000..0xFFFC to the platform; QEMU uses 0xF000..0xF00C (KVMPPC_H_*), Linux
 * 0xF800..0xF80C (nested KVM). svmkit takes 0xFF00 upwards, clear of both and
 * of the ultracall numbers 0xF104..0xF14C. Hypercall numbers are multiples of 4. */
#define H_SVMKIT_EXIT 0xFF00  /* r4 = exit status: the VM stops, the status is its result */
#define H_SVMKIT_TRACE 0xFF04 /* r4 = event, r5..r7 = event data (boot report) */
/* Device registers. The simulated machine cannot trap loads and stores, so
 * guest code reaches a device's MMIO window through these (on POWER they are
 * plain cache-inhibited loads and stores):
 *   H_SVMKIT_MMIO_READ:  r4 = guest-physical address, r5 = access size (1, 2,
 *                        4 or 8, naturally aligned); out r4 = the value.
 *   H_SVMKIT_MMIO_WRITE: r4 = address, r5 = size, r6 = value.
 * H_PARAMETER for a bad size or alignment, H_FUNCTION when no device decodes
 * the address. A write to a virtio-mmio QueueNotify register is served like
 * KVM's ioeventfd: straight into the queue's kick eventfd, without a round
 * trip to the hypervisor process. */
#define H_SVMKIT_MMIO_READ 0xFF08
#define H_SVMKIT_MMIO_WRITE 0xFF0C

/* The platform's clock: out r4 = nanoseconds since the machine started
 * (monotonic). On POWER guest code would read the timebase (mftb) instead. */
#define H_SVMKIT_TIMEBASE 0xFF10

/* PAPR H_CEDE: the vCPU idles until an interrupt (a device's used-buffer
 * notification) arrives or a platform tick (10 ms) passes. Guest drivers
 * check their used rings after it returns. */
#define H_CEDE 0xE0

/* H_SVMKIT_TRACE events. */
#define SVMKIT_TRACE_KERNEL_ENTRY 1 /* r5 = entry (gpa), r6 = FDT (gpa), r7 = stack top (gpa) */
#define SVMKIT_TRACE_INITRD 2       /* r5 = start, r6 = end (gpa): where the initrd was placed */
#define SVMKIT_TRACE_KERNEL 3       /* r5 = load address, r6 = unpacked size, r7 = 1 if inflated */
/* The boot loader of a normal guest (samples/boot_loader/, docs/loader-boot.md).
 * Strings and digests are passed by guest-physical address; the machine reads
 * them when the event arrives (at most 64 bytes of a name). */
#define SVMKIT_TRACE_LOADER_IMAGE 4 /* r5 = source (1 kexec buffer, 2 disk), r6 = gpa, r7 = size */
#define SVMKIT_TRACE_LOADER_MENU 5  /* r5 = entries, r6 = chosen index, r7 = gpa of its name (NUL) */
#define SVMKIT_TRACE_LOADER_SEGMENT 6 /* r5 = address, r6 = memory size, r7 = gpa of its SHA-256 */
#define SVMKIT_TRACE_LOADER_PLACED 7  /* r5 = segments, r6 = entry, r7 = kbase: digests recorded */
#define SVMKIT_TRACE_LOADER_PURGATORY 8 /* r5 = 0 ok / 1 mismatch, r6 = bad segment, r7 = entry */
/* A secure guest's loader called UV_UNSHARE_ALL_PAGES before its jump: r5 = the
 * return code, r6/r7 = base and size of the first bounce pool its FDT names. */
#define SVMKIT_TRACE_LOADER_UNSHARED 9
/* The loader refused the image: r5 = loader::ElfError, r6 = gpa of its
 * loader::LoadRefusal record (loader/boot_layout.h: eight 64-bit fields, the
 * segment and the range it hits). */
#define SVMKIT_TRACE_LOADER_REJECTED 10
#define SVMKIT_LOADER_SOURCE_KEXEC 1
#define SVMKIT_LOADER_SOURCE_DISK 2

#endif
