// The machine's side of the vCPU process (svmkit-vcpu, platform/vcpu/): it
// starts the vCPU sandboxed (its own user, PID, network, mount, IPC and UTS
// namespaces where the kernel allows them), waits for its gate requests,
// answers them, and learns how it ended from the kernel alone.
//
// A watcher thread waits on the vCPU's pidfd and its seccomp listener: a
// forbidden system call (the kernel's notification: number and arguments)
// or the --timeout deadline makes it kill the vCPU; once the vCPU is dead it
// marks the channel gone and wakes the machine. Every word the vCPU wrote is
// untrusted: next_request() hands out a copy taken once.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "platform/guest_memory.hpp"
#include "platform/vcpu/channel.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace svmkit::platform {

// svmkit-vcpu: $SVMKIT_VCPU, else the helper directory (helper_program.hpp).
Result<std::string> default_vcpu_path();

struct VcpuConfig {
    std::string path;
    int hypervisor_memory_fd = -1, secure_memory_fd = -1; // borrowed
    std::uint64_t memory_size = 0;
    std::chrono::milliseconds timeout{0}; // 0: none
};

// A system call the filter refused, as the kernel reported it.
struct ForbiddenCall {
    int number = 0;
    std::uint64_t args[6] = {};
};

// How the vCPU ended: the kernel's view (waitid), plus what the watcher did.
struct VcpuEnd {
    bool stopped_by_machine = false; // stop() killed it
    bool timed_out = false;          // the watcher killed it at the deadline
    std::optional<ForbiddenCall> forbidden;
    int signal = 0;      // killed by this signal (0: it exited)
    int exit_status = 0; // when signal == 0
};

class VcpuProcess {
  public:
    static Result<std::unique_ptr<VcpuProcess>> spawn(const VcpuConfig& config);
    ~VcpuProcess();
    VcpuProcess(const VcpuProcess&) = delete;
    VcpuProcess& operator=(const VcpuProcess&) = delete;

    // Blocks until the vCPU's next request (a copy) or its end (nullopt).
    std::optional<vcpu::Request> next_request();
    // Answers the request next_request() returned.
    void reply(const vcpu::Reply& reply);
    // The page table the vCPU remaps from (Reply::remap_first/end name the
    // pages to remap).
    [[nodiscard]] std::uint8_t* page_table() const;

    // Stops the vCPU (SIGSTOP) and waits until the kernel says it is
    // stopped: while the ultravisor reads guest memory, no guest instruction
    // runs. False when the vCPU is gone instead.
    bool freeze();
    void thaw();

    // Kills the vCPU (unless it is gone already) and reaps it.
    void stop();
    // After stop(): how it ended.
    [[nodiscard]] const VcpuEnd& end() const { return end_; }
    // What the vCPU's fault handler wrote (untrusted; for messages only).
    [[nodiscard]] vcpu::FaultReport fault_report() const;
    // The namespaces the vCPU was cloned into (CLONE_NEW* flags; 0: none).
    [[nodiscard]] unsigned long namespaces() const { return namespaces_; }
    [[nodiscard]] pid_t pid() const { return pid_; }

  private:
    VcpuProcess() = default;
    Result<void> await_startup(int setup_socket);
    void watch(std::chrono::steady_clock::time_point deadline, bool has_deadline);
    void kill_now();

    pid_t pid_ = -1;
    UniqueFd pidfd_;
    UniqueFd listener_;
    UniqueFd channel_fd_;
    vcpu::Header* channel_ = nullptr;
    std::size_t channel_size_ = 0;
    unsigned long namespaces_ = 0; // CLONE_NEW* flags of the clone that worked
    bool reaped_ = false;
    std::thread watcher_;
    std::atomic<bool> gone_{false};
    std::atomic<bool> timed_out_{false};
    std::atomic<bool> stopping_{false};
    std::optional<ForbiddenCall> forbidden_; // written by the watcher before gone_
    VcpuEnd end_;
};

// The names of the namespaces in CLONE_NEW* `flags`, in a fixed order
// ("user", "pid", "net", "mount", "ipc", "uts"); empty for none.
std::vector<std::string_view> namespace_names(unsigned long flags);

// The name of x86-64 system call `number` ("openat"), or "" when the table
// does not know it.
std::string_view syscall_name(int number);

} // namespace svmkit::platform
