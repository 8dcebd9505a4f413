// Starting and stopping a device back-end daemon (svmkit-vhost-blk or QEMU's
// qemu-storage-daemon) as a child process.
//
// Invariants:
//   - the child dies with us: it gets PR_SET_PDEATHSIG(SIGKILL), so a
//     crashed test or hypervisor leaves no daemon behind (the signal fires
//     when the spawning *thread* exits: spawn from a long-lived thread);
//   - the child inherits no descriptor but stdin (/dev/null), stdout and
//     stderr (the log), even ones the parent left without FD_CLOEXEC;
//   - the destructor stops a running child (SIGTERM, then SIGKILL after the
//     grace period) and reaps it; no zombie, no leftover process;
//   - the child's stdout and stderr go to the log file given (the caller
//     reads it for diagnostics), never to the parent's terminal.
#pragma once

#include "base/error.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace svmkit::vhost_user {

class DaemonProcess {
  public:
    // Starts argv[0] (searched in PATH) with `argv`; output appended to
    // `log_path` (created if missing).
    static Result<DaemonProcess> spawn(const std::vector<std::string>& argv,
                                       const std::string& log_path);
    DaemonProcess(DaemonProcess&& other) noexcept;
    DaemonProcess& operator=(DaemonProcess&&) = delete;
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;
    ~DaemonProcess();

    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] const std::string& log_path() const { return log_path_; }
    // True while the child has not exited (reaps it if it has).
    bool running();
    // The wait status once the child exited (after running() or stop()).
    [[nodiscard]] std::optional<int> wait_status() const { return status_; }
    // SIGTERM, wait up to `grace`, then SIGKILL; returns the wait status.
    int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
    // The log file's contents so far (for error messages).
    [[nodiscard]] std::string log() const;

  private:
    DaemonProcess() = default;
    pid_t pid_ = -1;
    std::string log_path_;
    std::optional<int> status_;
};

// Command lines of the two back ends svmkit uses.
std::vector<std::string> vhost_blk_command(const std::string& executable,
                                           const std::string& socket_path,
                                           const std::string& disk_path, bool read_only,
                                           const std::string& hostile_mode = "none",
                                           const std::string& stats_path = "");
// qemu-storage-daemon exporting `disk_path` (raw) as vhost-user-blk on `socket_path`.
std::vector<std::string>
qemu_storage_daemon_command(const std::string& socket_path, const std::string& disk_path,
                            bool writable, const std::string& binary = "qemu-storage-daemon");

} // namespace svmkit::vhost_user
