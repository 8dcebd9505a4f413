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
#include "tests/data/guest_console.h"

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
#define PATTERN                                                                                    \
    { 0 }
#endif
static const uint8_t pattern_inverted[] = PATTERN;

static int matches_at(const volatile uint8_t* p) {
    for (unsigned i = 0; i < sizeof pattern_inverted; ++i)
        if (p[i] != (uint8_t)~pattern_inverted[i])
            return 0;
    return 1;
}

/* The whole-address-space scan's patterns (-DSCAN_PATTERNS=...), each
 * SCAN_PATTERN_SIZE bytes, inverted like PATTERN: the machine key's bytes,
 * the trust store's (a trusted key's public bytes) and the control marker. */
#define SCAN_PATTERN_SIZE 32
#ifndef SCAN_PATTERNS
#define SCAN_PATTERNS                                                                              \
    { 0 }
#endif
static const uint8_t scan_patterns_inverted[] = SCAN_PATTERNS;
#define SCAN_PATTERN_COUNT (sizeof scan_patterns_inverted / SCAN_PATTERN_SIZE)

/* The vCPU's gate channel (platform/vcpu/channel.hpp, whose static_asserts
 * hold these offsets): the attacker knows svmkit-vcpu's layout, so the suite
 * passes where its channel pointer lies relative to the gate table
 * (-DCHANNEL_VAR_OFFSET, from nm). */
#define CH_STATE 0
#define CH_REQUEST_KIND 32
#define CH_REQUEST_R 40
#define CH_REPLY_ACTION 144
#define CH_REPLY_VALUE 152
#define CH_REPLY_R 160
#define CH_PAGE_TABLE 4096
#define ST_REQUEST 1
#define ST_REPLY 2
#define KIND_HCALL 3

#ifdef CHANNEL_VAR_OFFSET
static inline volatile uint8_t* channel_of(const struct svmkit_gates* g) {
    return *(volatile uint8_t* const*)((const uint8_t*)g + CHANNEL_VAR_OFFSET);
}
static inline volatile uint32_t* u32_at(volatile uint8_t* ch, unsigned off) {
    return (volatile uint32_t*)(ch + off);
}
static inline volatile uint64_t* u64_at(volatile uint8_t* ch, unsigned off) {
    return (volatile uint64_t*)(ch + off);
}
/* Posts a request the way the vCPU's gate does, without waiting for it. */
static inline void post(volatile uint8_t* ch) {
    __atomic_store_n(u32_at(ch, CH_STATE), ST_REQUEST, __ATOMIC_RELEASE);
    sys6(202, (long)ch, 1 /* FUTEX_WAKE */, 1, 0, 0, 0);
}
static inline uint32_t state_of(volatile uint8_t* ch) {
    return __atomic_load_n(u32_at(ch, CH_STATE), __ATOMIC_ACQUIRE);
}
#endif

#if defined(ATTACK_scan_space)
/* The whole address space of the vCPU, as far as the guest can reach it:
 * starting from every pointer it holds (the gate table, its return address
 * into the vCPU, the thread pointer at %fs:0, guest RAM), every readable page
 * a pointer-sized word of a region already found points at (or just past)
 * becomes a region, extended page by page while the pages stay readable,
 * and the 16 pages past each end of a region are tried too.
 * Readability is probed without a fault: futex(FUTEX_WAIT) on the channel's
 * state word (the one futex the filter allows) reads its timeout from the
 * probed address first and fails with EFAULT when it cannot; the value it
 * then compares is never the word's, so it returns at once. Then the two
 * guest-memory descriptors, whole, through a 1 MiB window of guest RAM (the
 * one mmap the filter allows). Every byte of it all is compared with the
 * patterns. */
#define PAGE 4096ull
#define USER_TOP 0x800000000000ull
#define MAX_REGIONS 512
#define NEG_SLOTS 4096
#define GAP_PAGES 16 /* how far past an unreadable page a region is looked for */
#define WINDOW_GPA 0x100000ull
#define WINDOW_SIZE 0x100000ull

struct region {
    uint64_t lo, hi;
};
struct space {
    volatile uint8_t* channel;
    struct region r[MAX_REGIONS];
    unsigned n;
    uint64_t neg[NEG_SLOTS]; /* pages that probed unreadable (0: empty) */
    int full;                /* the region table ran out: the scan is incomplete */
};

static int readable(struct space* s, uint64_t page) {
    volatile uint32_t* state = u32_at(s->channel, CH_STATE);
    const long ret =
        sys6(202, (long)state, 0 /* FUTEX_WAIT */, (long)(*state + 1), (long)page, 0, 0);
    return ret != -14; /* EFAULT */
}

static int known(const struct space* s, uint64_t page) {
    for (unsigned i = 0; i < s->n; ++i)
        if (s->r[i].lo <= page && page < s->r[i].hi)
            return 1;
    return 0;
}

static uint64_t* neg_slot(struct space* s, uint64_t page) {
    uint64_t h = (page >> 12) * 0x9e3779b97f4a7c15ull;
    for (unsigned i = 0; i < NEG_SLOTS; ++i) {
        uint64_t* slot = &s->neg[(h + i) % NEG_SLOTS];
        if (*slot == 0 || *slot == page)
            return slot;
    }
    return 0;
}

static void add_region(struct space* s, uint64_t lo, uint64_t hi) {
    if (s->n == MAX_REGIONS) {
        s->full = 1;
        return;
    }
    s->r[s->n].lo = lo;
    s->r[s->n].hi = hi;
    ++s->n;
}

static void consider(struct space* s, uint64_t v) {
    if (v < 0x10000 || v >= USER_TOP)
        return;
    const uint64_t page = v & ~(PAGE - 1);
    if (known(s, page))
        return;
    uint64_t* slot = neg_slot(s, page);
    if (slot != 0 && *slot == page)
        return;
    if (!readable(s, page)) {
        if (slot != 0) /* a full cache only costs probes again */
            *slot = page;
        return;
    }
    uint64_t lo = page, hi = page + PAGE;
    while (lo > 0x10000 && !known(s, lo - PAGE) && readable(s, lo - PAGE))
        lo -= PAGE;
    while (hi < USER_TOP && !known(s, hi) && readable(s, hi))
        hi += PAGE;
    add_region(s, lo, hi);
    /* Past a hole: a mapping can have unreadable pages between readable
     * ones (the vvar pages), and mappings sit close to each other. */
    for (uint64_t k = 0; k < GAP_PAGES; ++k) {
        consider(s, hi + k * PAGE);
        consider(s, lo - (k + 1) * PAGE);
    }
}

static void consider_pointer(struct space* s, uint64_t v) {
    consider(s, v);
    if ((v & (PAGE - 1)) == 0)
        consider(s, v - 1); /* one past the end of something */
}

static int scan_bytes(const volatile uint8_t* p, uint64_t size) {
    /* Launders the patterns' address: the compiler must not fold the
     * inverted bytes back into the real ones anywhere in this image. */
    const uint8_t* pat = scan_patterns_inverted;
    __asm__("" : "+r"(pat));
    for (uint64_t i = 0; i + SCAN_PATTERN_SIZE <= size; ++i)
        for (unsigned k = 0; k < SCAN_PATTERN_COUNT; ++k) {
            const uint8_t* q = pat + k * SCAN_PATTERN_SIZE;
            unsigned j = 0;
            while (j < SCAN_PATTERN_SIZE && p[i + j] == (uint8_t)~q[j])
                ++j;
            if (j == SCAN_PATTERN_SIZE)
                return (int)k + 1;
        }
    return 0;
}

static void scan_space(const struct svmkit_gates* g, uint64_t guest_sp) {
    struct space s;
    s.channel = channel_of(g);
    s.n = 0;
    s.full = 0;
    for (unsigned i = 0; i < NEG_SLOTS; ++i)
        s.neg[i] = 0;
    add_region(&s, SVMKIT_SIM_GUEST_VA_BASE, SVMKIT_SIM_GUEST_VA_BASE + GUEST_RAM_SIZE);
    uint64_t thread_pointer;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(thread_pointer));
    consider_pointer(&s, (uint64_t)g);
    consider_pointer(&s, (uint64_t)__builtin_return_address(0));
    consider_pointer(&s, thread_pointer);
    consider_pointer(&s, (uint64_t)s.channel);
    consider_pointer(&s, guest_sp);
    /* Every word of every region, the regions found on the way included. */
    for (unsigned i = 0; i < s.n; ++i)
        for (uint64_t a = s.r[i].lo; a + 8 <= s.r[i].hi; a += 8)
            consider_pointer(&s, *(const volatile uint64_t*)a);
    uint64_t outside = 0;
    for (unsigned i = 0; i < s.n; ++i) {
        const int found = scan_bytes((const volatile uint8_t*)s.r[i].lo, s.r[i].hi - s.r[i].lo);
        if (found != 0)
            guest_exit(g, 89 + (uint64_t)found);
        if (i > 0)
            outside += s.r[i].hi - s.r[i].lo;
    }
    /* Both guest-memory descriptors, every offset, through the window; then
     * the window as the page table says it was. */
    volatile uint8_t* window = (volatile uint8_t*)(SVMKIT_SIM_GUEST_VA_BASE + WINDOW_GPA);
    uint64_t through_window = 0;
    for (long fd = 5; fd <= 6; ++fd)
        for (uint64_t off = 0; off < GUEST_RAM_SIZE; off += WINDOW_SIZE) {
            if (sys6(9, (long)window, WINDOW_SIZE, 7, 0x11, fd, (long)off) != (long)window)
                guest_exit(g, NOT_STOPPED);
            const int found = scan_bytes(window, WINDOW_SIZE);
            if (found != 0)
                guest_exit(g, 89 + (uint64_t)found);
            through_window += WINDOW_SIZE;
        }
    const volatile uint8_t* table = s.channel + CH_PAGE_TABLE;
    for (uint64_t gpa = WINDOW_GPA; gpa < WINDOW_GPA + WINDOW_SIZE; gpa += 0x10000)
        sys6(9, (long)(SVMKIT_SIM_GUEST_VA_BASE + gpa), 0x10000, 7, 0x11,
             table[gpa >> 16] == 1 ? 6 : 5, (long)gpa);
    char line[160];
    unsigned n = 0;
    const char* parts[] = {"scan: ", " regions, ", " bytes outside guest RAM, ",
                           " bytes of guest-memory descriptors\n"};
    const uint64_t values[] = {s.n, outside, through_window};
    for (unsigned k = 0; k < 4; ++k) {
        for (const char* c = parts[k]; *c != 0; ++c)
            line[n++] = *c;
        if (k < 3)
            n += guest_decimal(line + n, values[k]);
    }
    guest_put(g, line, n);
    guest_exit(g, s.full ? NOT_STOPPED : 0);
}
#endif

#define FORGED_RESUME 0x5ec0de /* r5 of the forged "resume": the second act */
#define FORGE_HELD 97          /* the forgery gained nothing */

#if defined(ATTACK_forge_esm) || defined(ATTACK_forge_refused)
/* After the forged "success": does anything treat the guest as secure? */
static void forged_resume_checks(const struct svmkit_gates* g, uint64_t kbase) {
    volatile uint8_t* ch = channel_of(g);
    /* Claim MSR[S] where the vCPU reads the gate's answer: the machine's
     * reply must overwrite it. */
    *u64_at(ch, CH_REPLY_VALUE) = SVMKIT_MSR_S;
    if ((g->mfmsr() & SVMKIT_MSR_S) != 0)
        guest_exit(g, NOT_STOPPED);
    struct svmkit_regs r = {{0}};
    r.r[3] = UV_SHARE_PAGE; /* only a secure guest may share */
    r.r[4] = kbase >> 16;
    r.r[5] = 1;
    g->ucall(&r);
    if (r.r[3] == U_SUCCESS)
        guest_exit(g, NOT_STOPPED);
    if ((g->mfmsr() & SVMKIT_MSR_S) != 0)
        guest_exit(g, NOT_STOPPED);
    guest_exit(g, FORGE_HELD);
}
#endif

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
#elif defined(ATTACK_mremap)
    /* More memory: grow guest RAM's mapping in place or elsewhere. */
    sys6(25, SVMKIT_SIM_GUEST_VA_BASE, GUEST_RAM_SIZE, 2 * GUEST_RAM_SIZE, 1 /* MAYMOVE */, 0, 0);
#elif defined(ATTACK_mmap_ram_huge)
    /* The allowed mmap's shape (a guest-memory descriptor, RWX, MAP_SHARED |
     * MAP_FIXED) at guest RAM's base, but 1 TiB long. */
    sys6(9, SVMKIT_SIM_GUEST_VA_BASE, 1ll << 40, 7, 0x11, 5, 0);
#elif defined(ATTACK_exhaust_memory)
    /* Everything it has (every page of guest RAM read), then 64 GiB more. */
    uint64_t sum = 0;
    for (uint64_t a = 0; a < GUEST_RAM_SIZE; a += 4096)
        sum += *(const volatile uint8_t*)(SVMKIT_SIM_GUEST_VA_BASE + a);
    (void)sum;
    sys6(9, 0, 64ll << 30, 3, 0x22 | 0x4000 /* MAP_NORESERVE */, -1, 0);
#elif defined(ATTACK_forge_esm) || defined(ATTACK_forge_refused)
    /* A stub that forges UV_ESM's success: (forge_refused: after UV_ESM
     * refused it) it writes U_SUCCESS into its registers and into the
     * channel's reply, then "resumes secure" by entering itself at the
     * resume address (the stub's entry) as the ultravisor would. */
    if (r5 == FORGED_RESUME)
        forged_resume_checks(g, r4);
    struct svmkit_regs regs = {{0}};
#if defined(ATTACK_forge_refused)
    regs.r[3] = UV_ESM;
    regs.r[4] = r4;
    regs.r[5] = r3;
    g->ucall(&regs);
#endif
    regs.r[3] = U_SUCCESS;
    volatile uint8_t* ch = channel_of(g);
    *u64_at(ch, CH_REPLY_VALUE) = U_SUCCESS;
    *u64_at(ch, CH_REPLY_R + 3 * 8) = U_SUCCESS;
    *u32_at(ch, CH_REPLY_ACTION) = 2; /* enter */
    hostile_entry(r3, r4, FORGED_RESUME, g);
#elif defined(ATTACK_race_args)
    /* Posts console writes straight into the channel and, until the machine
     * replies, keeps flipping the call number (H_PUT_TERM_CHAR, unknown)
     * and the length (8, 2^31 - 1) under it: the machine must act on one
     * copy it validated, never on a second read. */
    volatile uint8_t* ch = channel_of(g);
    for (int round = 0; round < 3000; ++round) {
        *u32_at(ch, CH_REQUEST_KIND) = KIND_HCALL;
        volatile uint64_t* r = u64_at(ch, CH_REQUEST_R);
        r[3] = H_PUT_TERM_CHAR;
        r[4] = SVMKIT_VTERM;
        r[5] = 8;
        r[6] = 0x524143452d4f4b21ull; /* "RACE-OK!" packed big-endian */
        r[7] = 0;
        post(ch);
        for (uint64_t flip = 0; state_of(ch) != ST_REPLY; ++flip) {
            r[3] = (flip & 1) != 0 ? 0xdead0 : H_PUT_TERM_CHAR;
            r[5] = (flip & 2) != 0 ? 0x7fffffff : 8;
        }
        const int64_t value = (int64_t)*u64_at(ch, CH_REPLY_VALUE);
        if (value != H_SUCCESS && value != H_FUNCTION && value != H_PARAMETER)
            guest_exit(g, NOT_STOPPED);
    }
    guest_exit(g, FORGE_HELD);
#elif defined(ATTACK_race_kind)
    /* The same race on the request's kind: a harmless hypercall one moment,
     * kind 0x77 (no such request) the next; in the end it posts kind 0x77
     * and waits, so the run always ends on the illegal request. */
    volatile uint8_t* ch = channel_of(g);
    for (int round = 0; round < 3000; ++round) {
        volatile uint64_t* r = u64_at(ch, CH_REQUEST_R);
        r[3] = H_SVMKIT_TIMEBASE;
        *u32_at(ch, CH_REQUEST_KIND) = KIND_HCALL;
        post(ch);
        for (uint64_t flip = 0; state_of(ch) != ST_REPLY; ++flip)
            *u32_at(ch, CH_REQUEST_KIND) = (flip & 1) != 0 ? 0x77 : KIND_HCALL;
    }
    *u32_at(ch, CH_REQUEST_KIND) = 0x77;
    post(ch);
    while (state_of(ch) != ST_REPLY)
        sys6(202, (long)ch, 0 /* FUTEX_WAIT */, ST_REQUEST, 0, 0, 0);
#elif defined(ATTACK_scan_space)
    (void)path;
    uint64_t sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    scan_space(g, sp);
#else
#error "ATTACK_<name> not defined"
#endif
    guest_exit(g, NOT_STOPPED);
    for (;;)
        ;
}
