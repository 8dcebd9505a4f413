// svmkit's ultravisor attached to a QEMU pseries guest through the gdbstub:
// the same Ultravisor (platform/ultracalls.hpp) the simulated machine runs,
// reached where POWER's hardware would reach it.
//
// Under TCG an `sc 2` is an ordinary system call interrupt: the guest
// arrives at the system call vector 0xc00 in real mode, with SRR0 the
// address after the `sc` and SRR1 its MSR. One breakpoint there (QEMU keeps
// it; guest memory is not changed) stops the guest at every such interrupt;
// an ultracall is one from real mode (SRR1: IR and DR clear) whose
// instruction at SRR0 - 4 is `sc 2`. The ultravisor serves it with the
// registers r3..r12 and the guest leaves the interrupt as rfid would: at
// SRR0 with SRR1, or, after a successful UV_ESM, at the ultravisor's resume
// address (r3 = FDT, r4 = kbase, r5 = 0). Other interrupts at 0xc00 go on to
// the guest's own vector untouched.
//
// MSR[S] cannot be set under TCG. After a successful UV_ESM the ultravisor
// finds every `mfmsr` in the verified stub's text and puts a breakpoint on
// each: when the guest (in real mode) executes one, it is stepped and MSR[S]
// is or-ed into the register it wrote. That is all of "secure" a guest sees
// on this machine (docs/ppc64le.md says what is and is not real).
//
// Everything QEMU reports (registers, addresses) is untrusted: an address
// is used only through the guest RAM's checked range().
#pragma once

#include "base/error.hpp"
#include "platform/gdbstub/client.hpp"
#include "platform/qemu/attached_cpu.hpp"
#include "platform/qemu/shared_ram.hpp"
#include "platform/ultracalls.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace svmkit::platform::qemu {

inline constexpr std::uint64_t kSystemCallVector = 0xc00;
inline constexpr std::uint32_t kScLev2 = 0x44000042; // sc 2

// `mfmsr rD`: its destination register, or nullopt for another instruction.
std::optional<unsigned> mfmsr_target(std::uint32_t instruction);

// How the attached run ended.
struct AttachedEnd {
    enum class Kind { qemu_ended, terminated, timed_out } kind = Kind::qemu_ended;
    std::uint64_t ultracalls = 0;
    std::uint64_t mfmsr_presented = 0; // mfmsr results with MSR[S] or-ed in
};

class AttachedUltravisor {
  public:
    AttachedUltravisor(gdb::Client& client, AttachedCpu& cpu, SharedGuestRam& ram, Ultravisor& uv)
        : client_(client), cpu_(cpu), ram_(ram), uv_(uv) {}

    // Arms the breakpoint at the system call vector; the guest is stopped.
    Result<void> arm();
    // Runs the guest, serving ultracalls, until QEMU ends, the ultravisor
    // terminates the VM, or `deadline` passes (then the guest is stopped).
    Result<AttachedEnd> run(std::chrono::steady_clock::time_point deadline);

  private:
    enum class Next { resume, end };
    Result<Next> on_stop();
    Result<Next> on_system_call();
    Result<void> after_esm_success(const EsmResume& resume, std::uint64_t msr);
    Result<void> present_secure_msr(unsigned target);
    Result<std::optional<std::uint32_t>> instruction_at(std::uint64_t gpa, std::uint64_t msr);

    gdb::Client& client_;
    AttachedCpu& cpu_;
    SharedGuestRam& ram_;
    Ultravisor& uv_;
    // After a successful UV_ESM: the stub's mfmsr sites and their targets.
    std::vector<std::pair<std::uint64_t, unsigned>> mfmsr_sites_;
    AttachedEnd end_;
};

} // namespace svmkit::platform::qemu
