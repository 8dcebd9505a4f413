/* A hostile guest for the hostile-guest suite (tests/e2e/hostile_guest_test.sh,
 * docs/hostile-guest.md): one attack per build (-DATTACK=NAME), either as the
 * kernel of a signed image (it runs secure, after UV_ESM) or copied over the
 * stub's entry of an image (it runs first, before UV_ESM).
 *
 * Position-independent and self-contained (hostile_guest.lds puts everything
 * in one blob with the entry at its first byte), so the same bytes work at
 * either place. Called as entry(r3, r4, r5, gates) (guest/gates.h).
 *
 * If an attack is not stopped, the guest says so: it exits the VM with status
 * 99 (H_SVMKIT_EXIT), which no row expects. */
#include "guest/gates.h"
#include "guest/layout.h"
#include "guest/uv_abi.h"

#include <stdint.h>

#define NOT_STOPPED 99

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static void guest_exit(const struct svmkit_gates* g, uint64_t status) {
    struct svmkit_regs r = {{0}};
    r.r[3] = H_SVMKIT_EXIT;
    r.r[4] = status;
    g->hcall(&r);
}

/* Bytes the suite writes in at build time (-DPATTERN=...): the machine key's
 * DER bytes with every byte inverted, so this image does not hold them. */
#ifndef PATTERN
#define PATTERN {0}
#endif
static const uint8_t pattern_inverted[] = PATTERN;

static int matches_at(const volatile uint8_t* p) {
    for (unsigned i = 0; i < sizeof pattern_inverted; ++i)
        if (p[i] != (uint8_t)~pattern_inverted[i])
            return 0;
    return 1;
}

__attribute__((section(".text.entry"))) void hostile_entry(uint64_t r3, uint64_t r4, uint64_t r5,
                                                           const struct svmkit_gates* g) {
    (void)r3;
    (void)r4;
    (void)r5;
    static const char path[] = HOST_PATH;
#if defined(ATTACK_exit)
    sys6(60, 0, 0, 0, 0, 0, 0); /* exit(0) */
#elif defined(ATTACK_exit_group)
    sys6(231, 0, 0, 0, 0, 0, 0);
#elif defined(ATTACK_kill)
    sys6(62, 0, 9, 0, 0, 0, 0); /* kill(0, SIGKILL): the whole process group */
#elif defined(ATTACK_open_creat)
    sys6(257, -100, (long)path, 0101, 0644, 0, 0); /* openat(AT_FDCWD, path, O_CREAT|O_WRONLY) */
#elif defined(ATTACK_ptrace)
    sys6(101, 0, 0, 0, 0, 0, 0); /* ptrace(PTRACE_TRACEME) */
#elif defined(ATTACK_socket)
    sys6(41, 2, 1, 0, 0, 0, 0); /* socket(AF_INET, SOCK_STREAM) */
#elif defined(ATTACK_execve)
    static const char sh[] = "/bin/sh";
    sys6(59, (long)sh, 0, 0, 0, 0, 0);
#elif defined(ATTACK_fork)
    sys6(57, 0, 0, 0, 0, 0, 0);
#elif defined(ATTACK_mmap_outside)
    /* A guest-memory fd (5), the right protection and flags, one page above RAM. */
    sys6(9, 0x100000000000, 0x10000, 7, 0x11, 5, 0);
#elif defined(ATTACK_mmap_anonymous)
    sys6(9, 0, 0x10000, 7, 0x22, -1, 0); /* MAP_PRIVATE|MAP_ANONYMOUS */
#elif defined(ATTACK_mprotect)
    sys6(10, SVMKIT_SIM_GUEST_VA_BASE, 0x10000, 1, 0, 0, 0);
#elif defined(ATTACK_brk)
    sys6(12, 0x7f0000000000, 0, 0, 0, 0, 0); /* more memory: brk */
#elif defined(ATTACK_rt_sigaction)
    static const uint64_t ignore[4] = {1 /* SIG_IGN */, 0x04000000 /* SA_RESTORER */, 0, 0};
    sys6(13, 11, (long)ignore, 0, 8, 0, 0); /* ignore SIGSEGV */
#elif defined(ATTACK_process_vm_readv)
    sys6(310, 1, 0, 0, 0, 0, 0);
#elif defined(ATTACK_proc_mem)
    static const char mem[] = "/proc/1/mem";
    sys6(257, -100, (long)mem, 2, 0, 0, 0); /* openat(O_RDWR) */
#elif defined(ATTACK_x32_syscall)
    sys6(0x40000000 + 39, 0, 0, 0, 0, 0, 0); /* getpid through the x32 ABI */
#elif defined(ATTACK_int80)
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory"); /* i386 getpid */
#elif defined(ATTACK_futex_other_word)
    sys6(202, (long)path, 1, 1, 0, 0, 0); /* FUTEX_WAKE on a word not the channel's */
#elif defined(ATTACK_jump_host)
    ((void (*)(void))0x7fff00001000)(); /* a host address, far outside guest RAM */
#elif defined(ATTACK_write_outside)
    *(volatile uint64_t*)(SVMKIT_SIM_GUEST_VA_BASE - 8) = 1; /* just below guest RAM */
#elif defined(ATTACK_spin)
    for (;;)
        __asm__ volatile("");
#elif defined(ATTACK_scan_key)
    /* Every byte of guest RAM, then the gate table's page and the stack's:
     * the machine key's bytes must be nowhere the guest can read. */
    (void)path;
    const volatile uint8_t* ram = (const volatile uint8_t*)SVMKIT_SIM_GUEST_VA_BASE;
    for (uint64_t i = 0; i + sizeof pattern_inverted <= GUEST_RAM_SIZE; ++i)
        if (matches_at(ram + i))
            guest_exit(g, 98); /* found */
    const volatile uint8_t* gates = (const volatile uint8_t*)((uintptr_t)g & ~(uintptr_t)0xfff);
    for (uint64_t i = 0; i + sizeof pattern_inverted <= 0x1000; ++i)
        if (matches_at(gates + i))
            guest_exit(g, 98);
    guest_exit(g, 0); /* nothing found */
#else
#error "ATTACK_<name> not defined"
#endif
    guest_exit(g, NOT_STOPPED);
    for (;;)
        ;
}
