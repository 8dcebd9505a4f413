#include "platform/qemu/attached_cpu.hpp"

namespace svmkit::platform::qemu {

Result<AttachedCpu> AttachedCpu::attach(gdb::Client& client) {
    const gdb::RegisterMap& map = client.registers();
    SVM_TRY(pc, map.require("pc"));
    SVM_TRY(msr, map.require("msr"));
    SVM_TRY(srr0, map.require("srr0"));
    SVM_TRY(srr1, map.require("srr1"));
    SVM_TRY(r0, map.require("r0"));
    SVM_TRY(r31, map.require("r31"));
    if (r0 != 0 || r31 != 31)
        return fail(ExitCode::qemu_failed,
                    "gdbstub: the general registers are not numbered 0..31 (r0 {}, r31 {})", r0,
                    r31);
    return AttachedCpu(client, pc, msr, srr0, srr1);
}

Result<void> AttachedCpu::stopped() {
    SVM_TRY(bytes, client_->read_register(msr_));
    if (bytes.size() != 8)
        return fail(ExitCode::qemu_failed, "gdbstub: the MSR came as {} bytes, not 8",
                    bytes.size());
    const auto order = gdb::msr_byte_order(std::span<const std::byte, 8>(bytes.data(), 8));
    if (!order)
        return fail(ExitCode::qemu_failed, "gdbstub: the MSR's bytes fit neither byte order");
    order_ = *order;
    return {};
}

Result<std::uint64_t> AttachedCpu::get(unsigned number) {
    SVM_TRY(bytes, client_->read_register(number));
    if (bytes.size() != 8)
        return fail(ExitCode::qemu_failed, "gdbstub: register {} came as {} bytes, not 8", number,
                    bytes.size());
    return gdb::register_value(std::span<const std::byte, 8>(bytes.data(), 8), order_);
}

Result<void> AttachedCpu::set(unsigned number, std::uint64_t value) {
    return client_->write_register(number, gdb::register_bytes(value, order_));
}

Result<svmkit_regs> AttachedCpu::call_registers() {
    svmkit_regs regs{};
    for (unsigned n = 3; n <= 12; ++n) {
        SVM_TRY(v, get(n));
        regs.r[n] = v;
    }
    return regs;
}

Result<void> AttachedCpu::set_call_registers(const svmkit_regs& regs) {
    for (unsigned n = 3; n <= 12; ++n)
        SVM_CHECK(set(n, regs.r[n]));
    return {};
}

Result<void> AttachedCpu::return_to(std::uint64_t pc, std::uint64_t msr) {
    SVM_CHECK(set(pc_, pc));
    return set(msr_, msr);
}

} // namespace svmkit::platform::qemu
