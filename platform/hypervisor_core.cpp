#include "platform/hypervisor_core.hpp"

#include "base/checked.hpp"
#include "guest/layout.h"
#include "guest/uv_abi.h"
#include "platform/guest_memory.hpp"
#include "platform/platform_fdt.hpp"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

namespace svmkit::platform {

namespace {

Result<void> write_all(int fd, const void* data, std::size_t size, std::string_view what) {
    const auto* p = static_cast<const std::byte*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(ExitCode::io, "hypervisor: writing the {}: {}", what,
                        n < 0 ? std::strerror(errno) : "nothing written");
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return {};
}

} // namespace

Result<std::unique_ptr<HypervisorCore>> HypervisorCore::create(HypervisorCoreConfig config) {
    if (config.memory_size == 0 || config.memory_size % kGuestPageSize != 0)
        return fail(ExitCode::usage,
                    "hypervisor: guest memory size {} is not a positive multiple "
                    "of 64 KiB",
                    config.memory_size);
    void* p = ::mmap(nullptr, config.memory_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                     config.memory_fd, 0);
    if (p == MAP_FAILED)
        return fail(ExitCode::io, "hypervisor: cannot map guest memory: {}", std::strerror(errno));
    auto core = std::unique_ptr<HypervisorCore>(new HypervisorCore(std::move(config)));
    core->memory_ = {static_cast<std::byte*>(p), core->config_.memory_size};
    core->shared_pages_.assign(core->config_.memory_size / kGuestPageSize, false);
    return core;
}

HypervisorCore::~HypervisorCore() {
    if (!memory_.empty())
        ::munmap(memory_.data(), memory_.size());
}

Result<long> HypervisorCore::put_term_char(const svmkit_regs& regs) {
    // PAPR: r4 = vterm, r5 = length (<= 16), the bytes packed big-endian in r6, r7.
    if (regs.r[4] != SVMKIT_VTERM || regs.r[5] > 16)
        return H_PARAMETER;
    char bytes[16];
    const std::size_t n = regs.r[5];
    for (std::size_t i = 0; i < n; ++i)
        bytes[i] = static_cast<char>((regs.r[6 + i / 8] >> (56 - 8 * (i % 8))) & 0xff);
    SVM_CHECK(write_all(config_.console_fd, bytes, n, "console"));
    return H_SUCCESS;
}

Result<HvReply> HypervisorCore::hcall(const svmkit_regs& regs) {
    HvReply reply;
    reply.regs = regs;
    switch (regs.r[3]) {
    case H_PUT_TERM_CHAR: {
        SVM_TRY(ret, put_term_char(regs));
        reply.ret = ret;
        break;
    }
    case H_SVMKIT_MMIO_READ:
    case H_SVMKIT_MMIO_WRITE:
        reply.ret = mmio(reply.regs, regs.r[3] == H_SVMKIT_MMIO_WRITE);
        break;
    case H_SVMKIT_EXIT:
        reply.ret = H_SUCCESS;
        reply.flags = HvReply::kExit;
        reply.exit_status = regs.r[4];
        break;
    default:
        reply.ret = H_FUNCTION;
        break;
    }
    return reply;
}

HvMemoryView HypervisorCore::memory_view() const {
    HvMemoryView v;
    v.fd = config_.memory_fd;
    v.user_base = reinterpret_cast<std::uint64_t>(memory_.data());
    v.size = memory_.size();
    if (!secure_) {
        v.visible.emplace_back(0, memory_.size());
        return v;
    }
    for (const auto& [pfn, pages] : shared_runs())
        v.visible.emplace_back(pfn * kGuestPageSize, pages * kGuestPageSize);
    return v;
}

long HypervisorCore::mmio(svmkit_regs& regs, bool write) {
    const std::uint64_t addr = regs.r[4];
    const std::uint64_t size = regs.r[5];
    if ((size != 1 && size != 2 && size != 4 && size != 8) || addr % size != 0)
        return H_PARAMETER;
    if (addr < kVirtioMmioBase)
        return H_FUNCTION;
    const std::uint64_t index = (addr - kVirtioMmioBase) / kVirtioMmioStride;
    const std::uint64_t offset = (addr - kVirtioMmioBase) % kVirtioMmioStride;
    if (index >= devices_.size() || offset + size > kVirtioMmioSize)
        return H_FUNCTION;
    VirtioMmioBlk& dev = *devices_[index];
    const auto width = static_cast<unsigned>(size);
    if (write)
        return dev.write(offset, width, regs.r[6], memory_view()) ? H_SUCCESS : H_PARAMETER;
    const auto value = dev.read(offset, width);
    if (!value)
        return H_PARAMETER;
    regs.r[4] = *value;
    return H_SUCCESS;
}

void HypervisorCore::mark_shared(std::uint64_t pfn, std::uint64_t pages, bool shared) {
    const auto end = checked_add(pfn, pages);
    if (!end || *end > shared_pages_.size())
        return; // the ultravisor checked the range; nothing valid to record
    for (std::uint64_t p = pfn; p < *end; ++p)
        shared_pages_[p] = shared;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> HypervisorCore::shared_runs() const {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> runs;
    for (std::uint64_t p = 0; p < shared_pages_.size();) {
        if (!shared_pages_[p]) {
            ++p;
            continue;
        }
        std::uint64_t n = 0;
        while (p + n < shared_pages_.size() && shared_pages_[p + n])
            ++n;
        runs.emplace_back(p, n);
        p += n;
    }
    return runs;
}

Result<void> HypervisorCore::event(HvEvent e, const std::uint64_t (&args)[2]) {
    if (e == HvEvent::esm_done)
        secure_ = true;
    if (e == HvEvent::shared || e == HvEvent::unshared)
        mark_shared(args[0], args[1], e == HvEvent::shared);
    if (e == HvEvent::esm_done || e == HvEvent::shared || e == HvEvent::unshared)
        for (auto& dev : devices_)
            dev->memory_changed(memory_view());
    if (config_.hooks.empty())
        return {};
    const auto runs = shared_runs();
    const HvHookContext ctx{memory_, config_.memory_fd, runs, config_.guest_pid,
                            SVMKIT_SIM_GUEST_VA_BASE};
    for (const HvHook& hook : config_.hooks) {
        if (hook.at != e)
            continue;
        std::string line = run_hv_hook(hook, ctx);
        line += '\n';
        if (config_.hook_log_fd >= 0)
            SVM_CHECK(write_all(config_.hook_log_fd, line.data(), line.size(), "hook log"));
    }
    return {};
}

Result<HvReply> HypervisorCore::serve(const HvRequest& request) {
    switch (request.type) {
    case HvMessageType::hcall:
        return hcall(request.regs);
    case HvMessageType::event: {
        std::uint64_t args[2] = {request.args[0], request.args[1]};
        SVM_CHECK(event(request.event, args));
        return HvReply{};
    }
    case HvMessageType::stop:
        return HvReply{};
    case HvMessageType::disk_report: // the process's, which owns the back ends
        break;
    }
    return fail(ExitCode::io, "hypervisor: unexpected request type {}",
                static_cast<std::uint32_t>(request.type));
}

} // namespace svmkit::platform
