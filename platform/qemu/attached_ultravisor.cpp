#include "platform/qemu/attached_ultravisor.hpp"

#include "guest/uv_abi.h"

#include <algorithm>
#include <cstring>

namespace svmkit::platform::qemu {

namespace {

constexpr std::uint64_t kMsrLe = 1;
constexpr unsigned kSigTrap = 5; // GDB's signal numbers are the classic Unix ones

std::uint32_t load32(const std::byte* p, bool little) {
    std::uint32_t v = 0;
    std::memcpy(&v, p, 4);
    const bool host_little = std::endian::native == std::endian::little;
    return little == host_little ? v : __builtin_bswap32(v);
}

std::chrono::milliseconds until(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return std::max(left, std::chrono::milliseconds(1));
}

} // namespace

std::optional<unsigned> mfmsr_target(std::uint32_t instruction) {
    // mfmsr rD: primary opcode 31, extended opcode 83, RA and RB zero.
    if ((instruction & 0xfc1fffffu) != 0x7c0000a6u)
        return std::nullopt;
    return (instruction >> 21) & 31u;
}

Result<void> AttachedUltravisor::arm() {
    return client_.insert_breakpoint(kSystemCallVector);
}

Result<AttachedEnd> AttachedUltravisor::run(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        if (std::chrono::steady_clock::now() >= deadline) {
            end_.kind = AttachedEnd::Kind::timed_out;
            return end_;
        }
        auto stop = client_.resume(until(deadline));
        if (!stop && stop.error().code == ExitCode::timeout) {
            end_.kind = AttachedEnd::Kind::timed_out;
            return end_;
        }
        if (!stop)
            return svmkit::unexpected(stop.error());
        // A breakpoint stops the guest with SIGTRAP. QEMU reports its own
        // stops with other signals (the guest shutting down: SIGQUIT) or
        // ends (W, X): either way the VM is over, and QEMU's exit status
        // says how (the driver waits for it).
        if (stop->kind != gdb::StopReply::Kind::signal || stop->value != kSigTrap) {
            end_.kind = AttachedEnd::Kind::qemu_ended;
            return end_;
        }
        SVM_TRY(next, on_stop());
        if (next == Next::end)
            return end_;
    }
}

Result<AttachedUltravisor::Next> AttachedUltravisor::on_stop() {
    SVM_CHECK(cpu_.stopped());
    SVM_TRY(pc, cpu_.pc());
    if (pc == kSystemCallVector)
        return on_system_call();
    const auto site = std::find_if(mfmsr_sites_.begin(), mfmsr_sites_.end(),
                                   [pc](const auto& s) { return s.first == pc; });
    if (site != mfmsr_sites_.end()) {
        SVM_TRY(msr, cpu_.msr());
        if ((msr & (kMsrIr | kMsrDr)) == 0) // the stub runs in real mode
            SVM_CHECK(present_secure_msr(site->second));
    }
    return Next::resume;
}

Result<std::optional<std::uint32_t>> AttachedUltravisor::instruction_at(std::uint64_t gpa,
                                                                        std::uint64_t msr) {
    auto bytes = ram_.range(gpa, 4);
    if (!bytes || gpa % 4 != 0)
        return std::optional<std::uint32_t>{};
    return std::optional<std::uint32_t>{load32(bytes->data(), (msr & kMsrLe) != 0)};
}

Result<AttachedUltravisor::Next> AttachedUltravisor::on_system_call() {
    SVM_TRY(srr0, cpu_.srr0());
    SVM_TRY(srr1, cpu_.srr1());
    if ((srr1 & (kMsrIr | kMsrDr)) != 0 || srr0 < 4)
        return Next::resume; // not from the stub: the guest's own vector
    SVM_TRY(instruction, instruction_at(srr0 - 4, srr1));
    if (instruction != kScLev2)
        return Next::resume;
    ++end_.ultracalls;
    SVM_TRY(regs, cpu_.call_registers());
    SVM_TRY(result, uv_.ucall(regs));
    if (uv_.terminated()) {
        end_.kind = AttachedEnd::Kind::terminated;
        return Next::end;
    }
    if (result.leave_guest && uv_.resume()) {
        SVM_CHECK(after_esm_success(*uv_.resume(), srr1));
        return Next::resume;
    }
    SVM_CHECK(cpu_.set_call_registers(regs));
    SVM_CHECK(cpu_.return_to(srr0, srr1));
    return Next::resume;
}

Result<void> AttachedUltravisor::after_esm_success(const EsmResume& resume, std::uint64_t msr) {
    svmkit_regs regs{};
    regs.r[3] = resume.r3;
    regs.r[4] = resume.r4;
    SVM_CHECK(cpu_.set_call_registers(regs));
    SVM_CHECK(cpu_.return_to(resume.pc, msr));
    // The stub's text, verified by UV_ESM: its mfmsr instructions.
    const EsmResult& esm = *uv_.esm();
    const format::Manifest& m = esm.manifest;
    for (const format::Component& c : m.components) {
        if (c.kind != format::ComponentKind::stub_text)
            continue;
        const std::uint64_t at = resume.r4 + (c.address - m.image_base);
        SVM_TRY(text, ram_.range(at, c.size));
        for (std::uint64_t off = 0; off + 4 <= text.size(); off += 4)
            if (auto target = mfmsr_target(load32(text.data() + off, (msr & kMsrLe) != 0))) {
                SVM_CHECK(client_.insert_breakpoint(at + off));
                mfmsr_sites_.emplace_back(at + off, *target);
            }
    }
    return {};
}

Result<void> AttachedUltravisor::present_secure_msr(unsigned target) {
    SVM_TRY(stop, client_.step());
    if (stop.kind != gdb::StopReply::Kind::signal)
        return fail(ExitCode::qemu_failed, "QEMU ended while stepping over mfmsr");
    SVM_CHECK(cpu_.stopped());
    SVM_TRY(value, cpu_.gpr(target));
    SVM_CHECK(cpu_.set_gpr(target, value | SVMKIT_MSR_S));
    ++end_.mfmsr_presented;
    return {};
}

} // namespace svmkit::platform::qemu
