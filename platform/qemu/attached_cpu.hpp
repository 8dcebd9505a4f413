// The guest CPU as the attached ultravisor sees it through QEMU's gdbstub,
// while the guest is stopped: registers by POWER's names, in values rather
// than bytes.
//
// QEMU sends and takes registers in the guest's current byte order
// (MSR[LE]); it is told again at every stop (at 0xc00 the MSR is the
// interrupt's: LE follows LPCR[ILE], which firmware and Linux set
// differently). Writes go in that order too, the MSR last: QEMU decodes the
// bytes of each write before it applies it.
#pragma once

#include "base/error.hpp"
#include "guest/gates.h"
#include "platform/gdbstub/client.hpp"

#include <bit>
#include <cstdint>

namespace svmkit::platform::qemu {

// MSR bits (POWER numbering as 64-bit values).
inline constexpr std::uint64_t kMsrIr = 1ull << 5; // instruction relocation
inline constexpr std::uint64_t kMsrDr = 1ull << 4; // data relocation

class AttachedCpu {
  public:
    // The register numbers it needs, from the client's target description.
    static Result<AttachedCpu> attach(gdb::Client& client);

    // At a stop: the byte order of the register file, from the MSR.
    Result<void> stopped();
    Result<std::uint64_t> gpr(unsigned n) { return get(n); }
    Result<void> set_gpr(unsigned n, std::uint64_t v) { return set(n, v); }
    Result<std::uint64_t> pc() { return get(pc_); }
    Result<std::uint64_t> msr() { return get(msr_); }
    Result<std::uint64_t> srr0() { return get(srr0_); }
    Result<std::uint64_t> srr1() { return get(srr1_); }
    // r3..r12 into the ultracall register file, and back.
    Result<svmkit_regs> call_registers();
    Result<void> set_call_registers(const svmkit_regs& regs);
    // Leaves the stop at `pc` with `msr` (what rfid from the interrupt does).
    Result<void> return_to(std::uint64_t pc, std::uint64_t msr);

  private:
    AttachedCpu(gdb::Client& client, unsigned pc, unsigned msr, unsigned srr0, unsigned srr1)
        : client_(&client), pc_(pc), msr_(msr), srr0_(srr0), srr1_(srr1) {}
    Result<std::uint64_t> get(unsigned number);
    Result<void> set(unsigned number, std::uint64_t value);

    gdb::Client* client_;
    unsigned pc_, msr_, srr0_, srr1_;
    std::endian order_ = std::endian::big;
};

} // namespace svmkit::platform::qemu
