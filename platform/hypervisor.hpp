// The hypervisor as the machine sees it: a separate process
// (svmkit-hypervisor, platform/hypervisor_main.cpp) that serves the guest's
// hypercalls, hears the ultravisor's notices, and owns the console.
//
// The process gets the hypervisor-visible memfd and nothing else of the
// guest: the secure memfd never crosses (the child closes every descriptor
// but the ones it is given, then executes a fresh program), and the machine
// makes itself non-dumpable while the hypervisor lives, so the kernel refuses
// ptrace and /proc/<pid>/mem to the capability-less hypervisor.
//
// Invariants: while alive_, pid_ is our child and control_ its channel; every
// request gets exactly one reply before the next is sent; console_ holds what
// the guest printed, in order (drained from the console pipe after every
// reply, so the pipe never fills).
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "platform/hv_protocol.hpp"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace svmkit::platform {

struct HypervisorProcessConfig {
    std::string path;   // the svmkit-hypervisor executable
    int memory_fd = -1; // the hypervisor-visible memfd (borrowed)
    std::uint64_t memory_size = 0;
    std::vector<std::string> hooks;    // --hv-hook specs (checked by parse_hv_hook)
    int hook_log_fd = -1;              // where hook results go (borrowed; -1: none)
    std::FILE* console_echo = nullptr; // the console as it comes (nullptr: nowhere)
    // Device descriptors (borrowed): they become 7, 8, ... in the child, in
    // this order; extra_args describe them (hypervisor_main.cpp).
    std::vector<int> device_fds;
    std::vector<std::string> extra_args;
};

// Where svmkit-hypervisor is: $SVMKIT_HYPERVISOR, else among the helper
// programs (platform/helper_program.hpp); an error when it is missing.
Result<std::string> default_hypervisor_path();

class HypervisorProcess {
  public:
    // Starts the process and waits until it has started its disks' back
    // ends; a back end that fails makes this fail with its cause.
    static Result<std::unique_ptr<HypervisorProcess>> spawn(HypervisorProcessConfig config);
    // Stops the process if it still runs (kills it if it does not answer).
    ~HypervisorProcess();
    HypervisorProcess(const HypervisorProcess&) = delete;
    HypervisorProcess& operator=(const HypervisorProcess&) = delete;

    Result<HvReply> hcall(const svmkit_regs& regs);
    Result<void> notify(HvEvent event, std::uint64_t a0 = 0, std::uint64_t a1 = 0);
    // Once the VM is over: stops disk `index`'s back end and returns what it
    // served.
    Result<HvDiskReport> disk_report(std::uint64_t index);
    // Orderly end: the process answers `stop`, exits, and is reaped; its exit
    // status must be 0.
    Result<void> stop();

    [[nodiscard]] const std::string& console() const { return console_; }
    [[nodiscard]] pid_t pid() const { return pid_; }

  private:
    HypervisorProcess() = default;
    // Waits for the process's HvStartup record; its failure becomes ours.
    Result<void> await_startup();
    Result<HvReply> roundtrip(const HvRequest& request);
    void drain_console();
    void reap(bool kill_first);

    pid_t pid_ = -1;
    bool alive_ = false;
    int previous_dumpable_ = 1;
    UniqueFd control_;
    UniqueFd console_read_;
    std::FILE* echo_ = nullptr;
    std::string console_;
};

} // namespace svmkit::platform
