#include "platform/vcpu/seccomp_filter.hpp"

#include <cstddef>
#include <linux/audit.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>

namespace svmkit::platform::vcpu {

namespace {

// Classic BPF with forward labels: jumps name a label, finish() turns them
// into the 8-bit relative offsets the kernel wants.
class Assembler {
  public:
    using Label = int;
    static constexpr Label kNext = -1; // fall through

    Label make_label() {
        targets_.push_back(-1);
        return static_cast<Label>(targets_.size() - 1);
    }
    void bind(Label l) { targets_[static_cast<std::size_t>(l)] = static_cast<long>(code_.size()); }
    void stmt(std::uint16_t op, std::uint32_t k) { code_.push_back(BPF_STMT(op, k)); }
    // if (A op k) goto jt else goto jf
    void jump(std::uint16_t op, std::uint32_t k, Label jt, Label jf) {
        fixups_.push_back(Fixup{code_.size(), jt, jf});
        code_.push_back(BPF_JUMP(op, k, 0, 0));
    }
    void ret(std::uint32_t action) { stmt(BPF_RET | BPF_K, action); }
    void load_arg_low(int arg) { stmt(BPF_LD | BPF_W | BPF_ABS, arg_offset(arg)); }
    void load_arg_high(int arg) { stmt(BPF_LD | BPF_W | BPF_ABS, arg_offset(arg) + 4); }

    std::vector<sock_filter> finish() {
        for (const Fixup& f : fixups_) {
            code_[f.at].jt = offset(f.at, f.jt);
            code_[f.at].jf = offset(f.at, f.jf);
        }
        return code_;
    }

  private:
    struct Fixup {
        std::size_t at;
        Label jt, jf;
    };
    static std::uint32_t arg_offset(int arg) {
        return static_cast<std::uint32_t>(offsetof(seccomp_data, args) +
                                          8 * static_cast<std::size_t>(arg));
    }
    // Labels are bound after their jumps and within 255 instructions (the
    // filter is small and fixed: a violation is a build-time bug, so trap).
    std::uint8_t offset(std::size_t at, Label l) const {
        if (l == kNext)
            return 0;
        const long target = targets_[static_cast<std::size_t>(l)];
        const long delta = target - static_cast<long>(at) - 1;
        if (target < 0 || delta < 0 || delta > 255)
            __builtin_trap();
        return static_cast<std::uint8_t>(delta);
    }
    std::vector<sock_filter> code_;
    std::vector<long> targets_;
    std::vector<Fixup> fixups_;
};

std::uint32_t low(std::uint64_t v) {
    return static_cast<std::uint32_t>(v);
}
std::uint32_t high(std::uint64_t v) {
    return static_cast<std::uint32_t>(v >> 32);
}

// Scratch memory slots of the mmap check.
enum Slot : std::uint32_t { addr_hi, addr_lo, len_hi, len_lo, end_lo };

} // namespace

std::vector<sock_filter> build_filter(const FilterSpec& spec) {
    Assembler a;
    const auto allow = a.make_label();
    const auto notify = a.make_label();
    const auto kill = a.make_label();
    const auto futex = a.make_label();
    const auto mmap = a.make_label();
    const auto sendmsg = a.make_label();

    // Only the x86-64 ABI: x32 calls (the same arch, numbers with bit 30)
    // and i386 calls would bypass the number checks below.
    a.stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, Assembler::kNext, kill);
    a.stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
    a.jump(BPF_JMP | BPF_JSET | BPF_K, __X32_SYSCALL_BIT, kill, Assembler::kNext);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex, futex, Assembler::kNext);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, mmap, Assembler::kNext);
    // Returning from the fault handler (it re-runs the faulting instruction,
    // which then kills the vCPU), and the kernel's restart of a futex wait a
    // SIGSTOP interrupted.
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigreturn, allow, Assembler::kNext);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_restart_syscall, allow, Assembler::kNext);
    // Closing only ever gives something up.
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_close, allow, Assembler::kNext);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendmsg, sendmsg, notify);

    // futex(channel state word, FUTEX_WAIT or FUTEX_WAKE, ...): shared (not
    // private) operations on the one word the svmkit process waits on.
    a.bind(futex);
    a.load_arg_low(0);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, low(spec.futex_word), Assembler::kNext, notify);
    a.load_arg_high(0);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, high(spec.futex_word), Assembler::kNext, notify);
    a.load_arg_low(1);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAIT, allow, Assembler::kNext);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAKE, allow, notify);

    // sendmsg(setup socket, ...): the startup message carrying the seccomp
    // listener. The vCPU closes that socket before guest code runs, and no
    // allowed call makes a descriptor, so the number names nothing after.
    a.bind(sendmsg);
    a.load_arg_low(0);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(spec.setup_socket_fd), allow,
           notify);

    // mmap(addr, len, RWX, MAP_SHARED | MAP_FIXED, a guest-memory fd, off)
    // with guest_base <= addr and addr + len <= guest_base + memory_size,
    // compared as 64-bit values from 32-bit halves.
    a.bind(mmap);
    a.load_arg_low(2);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, PROT_READ | PROT_WRITE | PROT_EXEC, Assembler::kNext, notify);
    a.load_arg_low(3);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, MAP_SHARED | MAP_FIXED, Assembler::kNext, notify);
    a.load_arg_low(4);
    const auto fd_ok = a.make_label();
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(spec.memory_fds[0]), fd_ok,
           Assembler::kNext);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(spec.memory_fds[1]), fd_ok,
           notify);
    a.bind(fd_ok);
    const std::uint64_t limit = spec.guest_base + spec.memory_size;
    // The start: addr.hi in [base.hi, limit.hi] (so the sums below stay
    // below 2^32), and addr >= base.
    a.load_arg_high(0);
    a.stmt(BPF_ST, addr_hi);
    a.jump(BPF_JMP | BPF_JGT | BPF_K, high(limit), notify, Assembler::kNext);
    const auto start_ok = a.make_label();
    const auto start_low = a.make_label();
    a.jump(BPF_JMP | BPF_JGT | BPF_K, high(spec.guest_base), start_ok, Assembler::kNext);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, high(spec.guest_base), start_low, notify);
    a.bind(start_low);
    a.load_arg_low(0);
    a.jump(BPF_JMP | BPF_JGE | BPF_K, low(spec.guest_base), start_ok, notify);
    a.bind(start_ok);
    a.load_arg_low(0);
    a.stmt(BPF_ST, addr_lo);
    // The length: len.hi at most 0xffff keeps end.hi from wrapping.
    a.load_arg_high(1);
    a.jump(BPF_JMP | BPF_JGT | BPF_K, 0xffff, notify, Assembler::kNext);
    a.stmt(BPF_ST, len_hi);
    a.load_arg_low(1);
    a.stmt(BPF_ST, len_lo);
    // end.lo = addr.lo + len.lo; a carry when the sum is below addr.lo.
    a.stmt(BPF_LDX | BPF_MEM, addr_lo);
    a.stmt(BPF_ALU | BPF_ADD | BPF_X, 0);
    a.stmt(BPF_ST, end_lo);
    const auto carry = a.make_label();
    const auto high_sum = a.make_label();
    a.jump(BPF_JMP | BPF_JGE | BPF_X, 0, Assembler::kNext, carry);
    a.stmt(BPF_LD | BPF_MEM, addr_hi);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, 0, high_sum, high_sum); // either way: an unconditional jump
    a.bind(carry);
    a.stmt(BPF_LD | BPF_MEM, addr_hi);
    a.stmt(BPF_ALU | BPF_ADD | BPF_K, 1);
    a.bind(high_sum);
    a.stmt(BPF_LDX | BPF_MEM, len_hi);
    a.stmt(BPF_ALU | BPF_ADD | BPF_X, 0); // A = end.hi
    // end <= limit.
    const auto end_low = a.make_label();
    a.jump(BPF_JMP | BPF_JGT | BPF_K, high(limit), notify, Assembler::kNext);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, high(limit), end_low, allow);
    a.bind(end_low);
    a.stmt(BPF_LD | BPF_MEM, end_lo);
    a.jump(BPF_JMP | BPF_JGT | BPF_K, low(limit), notify, allow);

    a.bind(allow);
    a.ret(SECCOMP_RET_ALLOW);
    a.bind(notify);
    a.ret(SECCOMP_RET_USER_NOTIF);
    a.bind(kill);
    a.ret(SECCOMP_RET_KILL_PROCESS);
    return a.finish();
}

} // namespace svmkit::platform::vcpu
