// svmkit-vcpu: the simulated machine's vCPU process. It maps guest RAM at the
// fixed guest address, locks itself down (docs/platform.md, "The vCPU
// process") and runs guest code; the gates guest code calls (guest/gates.h)
// cross to the machine in the svmkit process over the gate channel
// (platform/vcpu/channel.hpp). It holds nothing worth stealing: everything
// here is as untrusted as the guest code it runs, and the machine treats it so.
//
// Started by the machine (platform/vcpu_process.cpp) with the descriptors of
// channel.hpp and no arguments; never run by hand. Exit status 1: setup
// failed (the reason went to the setup socket). After setup it never exits by
// itself: the machine kills it when the VM is over.
#include "platform/vcpu/channel.hpp"
#include "platform/vcpu/gates.hpp"
#include "platform/vcpu/seccomp_filter.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <grp.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

namespace {

using namespace svmkit::platform::vcpu;

constexpr std::uint64_t kPageSize = 0x10000; // guest pages: 64 KiB
constexpr std::size_t kGateStackSize = 1u << 20;
constexpr std::size_t kSignalStackSize = 64u << 10;
constexpr int kGuestProt = PROT_READ | PROT_WRITE | PROT_EXEC;
constexpr int kFaultSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};

const svmkit_gates kGates = {svmkit_gate_ucall, svmkit_gate_hcall, svmkit_gate_mfmsr};

Header* g_channel = nullptr;
const std::uint8_t* g_page_table = nullptr;
std::uint64_t g_base = 0, g_pages = 0;
// The reply of a gate that leaves guest code, for the main loop.
Reply g_leaving;

[[noreturn]] void setup_failed(const char* what, int err) {
    StartupMessage m;
    std::snprintf(m.error, sizeof m.error, "svmkit-vcpu: %s: %s", what, std::strerror(err));
    (void)!::send(kSetupSocketFd, &m, sizeof m, MSG_NOSIGNAL);
    ::_exit(1);
}

long futex(int op, std::uint32_t value) {
    return ::syscall(SYS_futex, &g_channel->state, op, value, nullptr, nullptr, 0);
}

// Maps pages [first, end) of guest RAM from the backing the page table names,
// one mmap per run of equal bytes. A failure leaves this process nothing to
// run on: trap (the machine sees the signal).
void remap(std::uint64_t first, std::uint64_t end) {
    if (end > g_pages)
        end = g_pages;
    while (first < end) {
        const std::uint8_t backing = g_page_table[first];
        std::uint64_t n = 1;
        while (first + n < end && g_page_table[first + n] == backing)
            ++n;
        const int fd = backing == static_cast<std::uint8_t>(Backing::secure) ? kSecureMemoryFd
                                                                             : kHypervisorMemoryFd;
        void* at = reinterpret_cast<void*>( // NOLINT(performance-no-int-to-ptr)
            g_base + first * kPageSize);    // guest RAM's fixed address
        if (::mmap(at, n * kPageSize, kGuestProt, MAP_SHARED | MAP_FIXED, fd,
                   static_cast<off_t>(first * kPageSize)) != at)
            __builtin_trap();
        first += n;
    }
}

// One gate crossing: the request out, a blocking wait, the reply in (its
// remaps applied before anything touches guest RAM again).
Reply exchange(RequestKind kind, const std::uint64_t* regs) {
    Request& request = g_channel->request;
    request.kind = static_cast<std::uint32_t>(kind);
    for (int i = 0; i < 13; ++i)
        request.r[i] = regs != nullptr ? regs[i] : 0;
    g_channel->state.store(static_cast<std::uint32_t>(State::request), std::memory_order_release);
    futex(FUTEX_WAKE, 1);
    for (std::uint32_t s = g_channel->state.load(std::memory_order_acquire);
         s != static_cast<std::uint32_t>(State::reply);
         s = g_channel->state.load(std::memory_order_acquire))
        futex(FUTEX_WAIT, s);
    Reply reply;
    std::memcpy(&reply, &g_channel->reply, sizeof reply);
    remap(reply.remap_first, reply.remap_end);
    return reply;
}

long gate(RequestKind kind, svmkit_regs* regs) {
    const Reply reply = exchange(kind, regs != nullptr ? regs->r : nullptr);
    if (reply.action == static_cast<std::uint32_t>(ReplyAction::resume)) {
        if (regs != nullptr)
            for (int i = 0; i < 13; ++i)
                regs->r[i] = reply.r[i];
        return reply.value;
    }
    g_leaving = reply;
    svmkit_gate_ctx.leave = 1;
    return 0;
}

// A fault: note where (for the report's message; the machine takes the
// signal itself from the kernel) and return. SA_RESETHAND restored the
// default action, so the faulting instruction runs again and kills the vCPU.
void on_fault(int sig, siginfo_t* info, void* context) {
    const auto* uc = static_cast<const ucontext_t*>(context);
    FaultReport& f = g_channel->fault;
    f.signal = static_cast<std::uint32_t>(sig);
    f.code = info->si_code;
    f.pc = static_cast<std::uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
    // si_addr is the faulting address only for these codes (a privileged
    // instruction raises SIGSEGV with SI_KERNEL and no address).
    f.has_address =
        (sig == SIGSEGV && (info->si_code == SEGV_MAPERR || info->si_code == SEGV_ACCERR)) ||
        (sig == SIGBUS && info->si_code > 0);
    f.address = f.has_address != 0 ? reinterpret_cast<std::uint64_t>(info->si_addr) : 0;
}

void* map_anonymous(std::size_t size, const char* what) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        setup_failed(what, errno);
    return p;
}

void map_channel_and_memory() {
    void* head =
        ::mmap(nullptr, kPageTableOffset, PROT_READ | PROT_WRITE, MAP_SHARED, kChannelFd, 0);
    if (head == MAP_FAILED)
        setup_failed("mapping the gate channel", errno);
    const Setup setup = static_cast<Header*>(head)->setup;
    ::munmap(head, kPageTableOffset);
    if (setup.magic != kChannelMagic || setup.version != kChannelVersion ||
        setup.memory_size == 0 || setup.memory_size % kPageSize != 0)
        setup_failed("the gate channel's setup record", EPROTO);
    g_base = setup.guest_base;
    g_pages = setup.memory_size / kPageSize;
    void* whole =
        ::mmap(nullptr, channel_size(g_pages), PROT_READ | PROT_WRITE, MAP_SHARED, kChannelFd, 0);
    if (whole == MAP_FAILED)
        setup_failed("mapping the gate channel", errno);
    g_channel = static_cast<Header*>(whole);
    g_page_table = static_cast<const std::uint8_t*>(whole) + kPageTableOffset;
    void* want = reinterpret_cast<void*>(g_base); // NOLINT(performance-no-int-to-ptr): fixed
    if (::mmap(want, setup.memory_size, kGuestProt, MAP_SHARED | MAP_FIXED_NOREPLACE,
               kHypervisorMemoryFd, 0) != want)
        setup_failed("mapping guest RAM at its fixed address", errno);
}

void install_fault_handlers() {
    stack_t ss{};
    ss.ss_sp = map_anonymous(kSignalStackSize, "allocating the signal stack");
    ss.ss_size = kSignalStackSize;
    if (::sigaltstack(&ss, nullptr) != 0)
        setup_failed("sigaltstack", errno);
    struct sigaction sa {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigfillset(&sa.sa_mask);
    for (int sig : kFaultSignals)
        if (::sigaction(sig, &sa, nullptr) != 0)
            setup_failed("sigaction", errno);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Root without a user namespace of its own (the machine could not make one):
// become nobody, which drops every capability.
void drop_identity() {
    if (::geteuid() != 0 && ::getuid() != 0)
        return;
    constexpr uid_t kNobody = 65534;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0)
        setup_failed("dropping root", errno);
}

void limit_resources() {
    const struct {
        int resource;
        rlim_t limit;
    } limits[] = {
        {RLIMIT_NPROC, 0},
        {RLIMIT_CORE, 0},
        {RLIMIT_FSIZE, 0},
        {RLIMIT_MEMLOCK, 0},
        {RLIMIT_MSGQUEUE, 0},
        {RLIMIT_LOCKS, 0},
        {RLIMIT_SIGPENDING, 64},
        // Room for the seccomp listener (the lowest free descriptor), no more.
        {RLIMIT_NOFILE, kFirstFreeFd},
    };
    for (const auto& l : limits) {
        const rlimit r{l.limit, l.limit};
        if (::setrlimit(l.resource, &r) != 0)
            setup_failed("setrlimit", errno);
    }
}

// no_new_privs, then the filter; returns the user-notification listener.
int lock_down() {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        setup_failed("PR_SET_NO_NEW_PRIVS", errno);
    FilterSpec spec;
    spec.guest_base = g_base;
    spec.memory_size = g_pages * kPageSize;
    spec.futex_word = reinterpret_cast<std::uint64_t>(&g_channel->state);
    spec.setup_socket_fd = kSetupSocketFd;
    spec.memory_fds[0] = kHypervisorMemoryFd;
    spec.memory_fds[1] = kSecureMemoryFd;
    std::vector<sock_filter> code = build_filter(spec);
    sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
    const long listener =
        ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (listener < 0)
        setup_failed("installing the seccomp filter", errno);
    return static_cast<int>(listener);
}

// The startup message with the listener attached; then neither is kept.
void hand_over_listener(int listener) {
    StartupEnvelope envelope;
    envelope.message.ok = 1;
    msghdr& msg = envelope.header;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &listener, sizeof listener);
    if (::sendmsg(kSetupSocketFd, &msg, MSG_NOSIGNAL) != sizeof envelope.message)
        ::_exit(1); // the machine sees the socket close without a message
    ::close(listener);
    ::close(kSetupSocketFd);
}

} // namespace

int main() {
    // Before anything of the guest's is mapped: nobody of the same user may
    // ptrace this process or read its memory through /proc.
    ::prctl(PR_SET_DUMPABLE, 0);
    map_channel_and_memory();
    void* gate_stack = map_anonymous(kGateStackSize, "allocating the gate stack");
    svmkit_gate_ctx.gate_stack_top =
        (reinterpret_cast<std::uint64_t>(gate_stack) + kGateStackSize) & ~std::uint64_t{15};
    install_fault_handlers();
    drop_identity();
    ::prctl(PR_SET_DUMPABLE, 0); // again: a change of identity may reset it
    ::close(0);
    ::close(1);
    ::close(2);
    ::syscall(SYS_close_range, kFirstFreeFd, ~0u, 0);
    limit_resources();
    hand_over_listener(lock_down());

    // Locked down: from here on only the filter's system calls work.
    Reply next = exchange(RequestKind::ready, nullptr);
    for (;;) {
        if (next.action != static_cast<std::uint32_t>(ReplyAction::enter))
            __builtin_trap(); // the machine sent nonsense: stop where it can see it
        const long how =
            svmkit_guest_enter(next.pc, next.r[3], next.r[4], next.r[5], &kGates, next.stack_top);
        next = how == SVMKIT_GUEST_RETURNED ? exchange(RequestKind::returned, nullptr) : g_leaving;
    }
}

extern "C" long svmkit_ucall_handler(svmkit_regs* regs) {
    return gate(RequestKind::ucall, regs);
}

extern "C" long svmkit_hcall_handler(svmkit_regs* regs) {
    return gate(RequestKind::hcall, regs);
}

extern "C" std::uint64_t svmkit_mfmsr_handler() {
    return static_cast<std::uint64_t>(gate(RequestKind::mfmsr, nullptr));
}
