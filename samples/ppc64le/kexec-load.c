/* A minimal kexec loader for ppc64le secure images, for the initramfs of the
 * kexec test (tests/e2e/ppc64le_kexec_test.sh): loads the image the way a
 * kexec-style loader does and reboots into it, so the stub is entered with
 * r3 = the device tree, r4 = the image base, r5 = 0.
 *
 *   kexec-load IMAGE
 *
 * Built static with Debian's powerpc64le-linux-gnu-gcc. Uses kexec_load(2)
 * (Debian's ppc64le kernel has CONFIG_KEXEC, not CONFIG_KEXEC_FILE), whose
 * new image starts with r3 = the CPU number, r4 = its entry, r5 = 0, after
 * copying the entry's first 0x100 bytes to address 0 for the secondary CPUs
 * (which wait at 0x60). So, like kexec-tools, it adds a small purgatory as
 * the entry: the image's own first 0x100 bytes (the stub's secondary hold at
 * 0x60) with a branch to 0x100 in front, and at 0x100 code that sets r3 =
 * the device tree, r4 = the image base, r5 = 0 and branches to the image.
 *
 * Segments: every PT_LOAD of the image at its p_paddr; the running kernel's
 * flattened device tree (/sys/firmware/fdt) at FDT_ADDR; the purgatory at
 * PURGATORY_ADDR, below the image, like the simulated platform's map. The
 * stub takes its stack from memory the device tree leaves free
 * (stub/ppc64le/arch.h); Debian's own kexec-tools is tested too
 * (tests/e2e/ppc64le_kexec_tools_test.sh).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <linux/kexec.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 0x10000ul /* Debian's ppc64le kernel uses 64 KiB pages */
#define FDT_ADDR 0x3e00000ul
#define PURGATORY_ADDR 0x3d00000ul
#define MAX_SEGMENTS 16

static void die(const char* what) {
    perror(what);
    exit(1);
}

static void* read_all(const char* path, size_t* size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path);
    size_t cap = 1 << 20, n = 0;
    char* buf = malloc(cap);
    if (!buf)
        die("malloc");
    for (;;) {
        if (n == cap) {
            char* grown = realloc(buf, cap *= 2);
            if (!grown)
                die("realloc"); /* exits; buf goes with the process */
            buf = grown;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0)
            die(path);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *size = n;
    return buf;
}

/* True when fewer than 0x100 bytes of the file follow `first`. */
static int ph_size_below(const unsigned char* first, const unsigned char* image, size_t size) {
    return first == NULL || (size_t)(first - image) + 0x100 > size;
}

static size_t round_up(size_t v) {
    return (v + PAGE - 1) & ~(PAGE - 1);
}

/* lis rD,hi; ori rD,rD,lo: a 32-bit value (all addresses here are below 2 GiB). */
static void load32(uint32_t* p, unsigned reg, uint32_t v) {
    p[0] = (15u << 26) | (reg << 21) | (v >> 16);
    p[1] = (24u << 26) | (reg << 21) | (reg << 16) | (v & 0xffff);
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: kexec-load IMAGE\n");
        return 2;
    }
    size_t image_size = 0, fdt_size = 0;
    unsigned char* image = read_all(argv[1], &image_size);
    void* fdt = read_all("/sys/firmware/fdt", &fdt_size);

    const Elf64_Ehdr* eh = (const Elf64_Ehdr*)image;
    if (image_size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_machine != EM_PPC64 ||
        eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr) > image_size) {
        fprintf(stderr, "kexec-load: %s is not a ppc64 ELF image\n", argv[1]);
        return 1;
    }
    struct kexec_segment seg[MAX_SEGMENTS];
    size_t n = 0;
    uint64_t base = UINT64_MAX;
    const unsigned char* first = NULL; /* the lowest segment's bytes: the stub's entry */
    const Elf64_Phdr* ph = (const Elf64_Phdr*)(image + eh->e_phoff);
    for (unsigned i = 0; i < eh->e_phnum; ++i) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        if (n + 2 >= MAX_SEGMENTS || ph[i].p_offset + ph[i].p_filesz > image_size ||
            ph[i].p_paddr % PAGE != 0) {
            fprintf(stderr, "kexec-load: unusable segment %u\n", i);
            return 1;
        }
        seg[n++] = (struct kexec_segment){image + ph[i].p_offset, ph[i].p_filesz,
                                          (void*)ph[i].p_paddr, round_up(ph[i].p_memsz)};
        if (ph[i].p_paddr < base) {
            base = ph[i].p_paddr;
            first = image + ph[i].p_offset;
        }
    }
    /* The stub's stack is the 1 MiB under the image base. */
    if (n == 0 || base < FDT_ADDR + round_up(fdt_size) + (1u << 20) || base >= (1ul << 31) ||
        ph_size_below(first, image, image_size)) {
        fprintf(stderr, "kexec-load: the image must lie above 0x%lx, below 2 GiB\n",
                (unsigned long)(FDT_ADDR + round_up(fdt_size) + (1u << 20)));
        return 1;
    }
    seg[n++] = (struct kexec_segment){fdt, fdt_size, (void*)FDT_ADDR, round_up(fdt_size)};

    static uint32_t purgatory[0x200 / 4];
    memcpy(purgatory, first, 0x100);    /* the stub's first 0x100 bytes */
    purgatory[0] = (18u << 26) | 0x100; /* b .+0x100 */
    uint32_t* master = purgatory + 0x100 / 4;
    load32(master, 3, FDT_ADDR);           /* r3 = device tree */
    load32(master + 2, 4, (uint32_t)base); /* r4 = image base */
    master[4] = (14u << 26) | (5u << 21);  /* li r5,0 */
    master[5] = 0x7c8903a6;                /* mtctr r4 */
    master[6] = 0x4e800420;                /* bctr */
    seg[n++] = (struct kexec_segment){purgatory, sizeof purgatory, (void*)PURGATORY_ADDR, PAGE};

    if (syscall(SYS_kexec_load, PURGATORY_ADDR, n, seg, KEXEC_ARCH_PPC64) != 0)
        die("kexec_load");
    printf("kexec-load: %s loaded at 0x%lx (device tree at 0x%lx); rebooting into it\n", argv[1],
           (unsigned long)base, FDT_ADDR);
    fflush(stdout);
    sync();
    reboot(RB_KEXEC);
    die("reboot");
    return 1;
}
