// The hypervisor's logic, as it runs in the hypervisor process
// (platform/hypervisor_main.cpp): the console, the platform's exit call, the
// ultravisor's notices, and the test hooks.
//
// What it can reach of the guest is exactly what a hypervisor can: its own
// MAP_SHARED mapping of the hypervisor-visible memfd. Secure pages are holes
// there (they read as zero); shared pages are the guest's bounce buffers.
//
// Invariants: shared_pages_[p] is true exactly for the pages the ultravisor
// last reported shared (and not unshared since); memory_ spans the whole
// guest RAM of memory_size_ bytes.
#pragma once

#include "base/error.hpp"
#include "platform/hv_hooks.hpp"
#include "platform/hv_protocol.hpp"
#include "platform/virtio_mmio_blk.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace svmkit::platform {

struct HypervisorCoreConfig {
    int memory_fd = -1; // the hypervisor-visible memfd (borrowed)
    std::uint64_t memory_size = 0;
    int console_fd = -1;  // where the guest's console goes (borrowed)
    int hook_log_fd = -1; // JSON lines from the hooks (borrowed; -1: none)
    std::vector<HvHook> hooks;
    int guest_pid = 0;
};

class HypervisorCore {
  public:
    static Result<std::unique_ptr<HypervisorCore>> create(HypervisorCoreConfig config);
    ~HypervisorCore();
    HypervisorCore(const HypervisorCore&) = delete;
    HypervisorCore& operator=(const HypervisorCore&) = delete;

    // One request from the machine; platform faults (a console that cannot be
    // written) are errors.
    Result<HvReply> serve(const HvRequest& request);

    // Device i answers MMIO in window i (platform_fdt.hpp).
    void add_device(std::unique_ptr<VirtioMmioBlk> device) {
        devices_.push_back(std::move(device));
    }
    // What a back end may map now: all of RAM before ESM, the shared pages after.
    [[nodiscard]] HvMemoryView memory_view() const;

  private:
    explicit HypervisorCore(HypervisorCoreConfig config) : config_(std::move(config)) {}
    Result<HvReply> hcall(const svmkit_regs& regs);
    Result<long> put_term_char(const svmkit_regs& regs);
    Result<void> event(HvEvent e, const std::uint64_t (&args)[2]);
    void mark_shared(std::uint64_t pfn, std::uint64_t pages, bool shared);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> shared_runs() const;
    long mmio(svmkit_regs& regs, bool write);

    HypervisorCoreConfig config_;
    std::span<std::byte> memory_;
    std::vector<bool> shared_pages_;
    bool secure_ = false; // the ultravisor reported a successful ESM
    std::vector<std::unique_ptr<VirtioMmioBlk>> devices_;
};

} // namespace svmkit::platform
