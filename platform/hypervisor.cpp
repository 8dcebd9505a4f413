#include "platform/hypervisor.hpp"
#include "platform/helper_program.hpp"

#include "base/child_process.hpp"

#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace svmkit::platform {

namespace {

// A guest printing this much is broken; the report keeps the first part.
constexpr std::size_t kMaxConsole = 16u << 20;

// The descriptor numbers svmkit-hypervisor expects (hypervisor_main.cpp).
constexpr int kChildControlFd = 3;
constexpr int kChildMemoryFd = 4;
constexpr int kChildConsoleFd = 5;
constexpr int kChildHookLogFd = 6;
constexpr int kChildFirstDeviceFd = 7;

} // namespace

Result<std::string> default_hypervisor_path() {
    return helper_program("SVMKIT_HYPERVISOR", "svmkit-hypervisor");
}

Result<std::unique_ptr<HypervisorProcess>>
HypervisorProcess::spawn(HypervisorProcessConfig config) {
    if (::access(config.path.c_str(), X_OK) != 0)
        return fail(ExitCode::io, "{}: cannot run the hypervisor: {}", config.path,
                    std::strerror(errno));
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return fail(ExitCode::io, "socketpair: {}", std::strerror(errno));
    UniqueFd ours(sv[0]), theirs(sv[1]);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
        return fail(ExitCode::io, "pipe: {}", std::strerror(errno));
    UniqueFd console_read(pipe_fds[0]), console_write(pipe_fds[1]);
    // Non-blocking reads: drain_console() takes what is there and goes on.
    ::fcntl(console_read.get(), F_SETFL, O_NONBLOCK);

    // Everything the child needs, prepared before fork (only async-signal-safe
    // calls happen in the child).
    std::vector<std::string> args = {config.path, "--memory-size",
                                     std::to_string(config.memory_size), "--guest-pid",
                                     std::to_string(::getpid())};
    if (config.hook_log_fd >= 0)
        args.emplace_back("--hook-log");
    for (const std::string& h : config.hooks) {
        args.emplace_back("--hook");
        args.push_back(h);
    }
    for (const std::string& a : config.extra_args)
        args.push_back(a);
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    // (source, number in the child) for every descriptor the child keeps.
    std::vector<std::pair<int, int>> fds = {{theirs.get(), kChildControlFd},
                                            {config.memory_fd, kChildMemoryFd},
                                            {console_write.get(), kChildConsoleFd}};
    if (config.hook_log_fd >= 0)
        fds.emplace_back(config.hook_log_fd, kChildHookLogFd);
    for (std::size_t i = 0; i < config.device_fds.size(); ++i)
        fds.emplace_back(config.device_fds[i], kChildFirstDeviceFd + static_cast<int>(i));
    std::vector<int> moved(fds.size(), -1);

    auto hv = std::unique_ptr<HypervisorProcess>(new HypervisorProcess());
    hv->previous_dumpable_ = ::prctl(PR_GET_DUMPABLE);
    // Before the child exists: it must never see a dumpable machine.
    ::prctl(PR_SET_DUMPABLE, 0);
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int err = errno;
        ::prctl(PR_SET_DUMPABLE, hv->previous_dumpable_);
        return fail(ExitCode::io, "fork: {}", std::strerror(err));
    }
    if (pid == 0) {
        // Move the descriptors above every target number first, so no dup2
        // overwrites one still to be moved; dup2 clears close-on-exec.
        for (std::size_t i = 0; i < fds.size(); ++i)
            moved[i] = ::fcntl(fds[i].first, F_DUPFD_CLOEXEC, 256);
        for (std::size_t i = 0; i < fds.size(); ++i)
            if (moved[i] < 0 || ::dup2(moved[i], fds[i].second) < 0)
                ::_exit(127);
        // Everything else goes, whether or not it was close-on-exec.
        const int last = kChildFirstDeviceFd + static_cast<int>(config.device_fds.size());
        ::syscall(SYS_close_range, last, ~0u, 0);
        if (config.hook_log_fd < 0)
            ::close(kChildHookLogFd);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    hv->pid_ = pid;
    hv->alive_ = true;
    hv->control_ = std::move(ours);
    hv->console_read_ = std::move(console_read);
    hv->echo_ = config.console_echo;
    SVM_CHECK(hv->await_startup());
    return hv;
}

Result<void> HypervisorProcess::await_startup() {
    HvStartup startup;
    auto received =
        receive_record(control_.get(), &startup, sizeof startup, "the hypervisor process");
    if (received && startup.code == 0)
        return {};
    reap(true);
    if (!received)
        return svmkit::unexpected(received.error());
    startup.message[sizeof startup.message - 1] = '\0';
    const bool known = startup.code > 0 && startup.code <= static_cast<int>(ExitCode::timeout);
    return svmkit::unexpected(
        Error{known ? static_cast<ExitCode>(startup.code) : ExitCode::io, startup.message});
}

HypervisorProcess::~HypervisorProcess() {
    if (alive_) {
        HvRequest request;
        request.type = HvMessageType::stop;
        // Best effort: a hypervisor that does not answer is killed by reap().
        (void)send_record(control_.get(), &request, sizeof request);
        reap(true);
    }
    ::prctl(PR_SET_DUMPABLE, previous_dumpable_);
}

void HypervisorProcess::drain_console() {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(console_read_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        const auto len = static_cast<std::size_t>(n);
        if (echo_ != nullptr) {
            std::fwrite(buf, 1, len, echo_);
            std::fflush(echo_);
        }
        if (console_.size() < kMaxConsole)
            console_.append(buf, std::min(len, kMaxConsole - console_.size()));
    }
}

Result<HvReply> HypervisorProcess::roundtrip(const HvRequest& request) {
    if (!alive_)
        return fail(ExitCode::io, "the hypervisor process is not running");
    auto sent = send_record(control_.get(), &request, sizeof request);
    HvReply reply;
    auto received =
        sent ? receive_record(control_.get(), &reply, sizeof reply, "the hypervisor process")
             : sent;
    // Whatever the guest printed before the hypervisor answered (or died).
    drain_console();
    if (!received) {
        reap(true);
        return svmkit::unexpected(received.error());
    }
    return reply;
}

Result<HvReply> HypervisorProcess::hcall(const svmkit_regs& regs) {
    HvRequest request;
    request.type = HvMessageType::hcall;
    request.regs = regs;
    return roundtrip(request);
}

Result<void> HypervisorProcess::notify(HvEvent event, std::uint64_t a0, std::uint64_t a1) {
    HvRequest request;
    request.type = HvMessageType::event;
    request.event = event;
    request.args[0] = a0;
    request.args[1] = a1;
    SVM_CHECK(roundtrip(request));
    return {};
}

Result<HvDiskReport> HypervisorProcess::disk_report(std::uint64_t index) {
    if (!alive_)
        return fail(ExitCode::io, "the hypervisor process is not running");
    HvRequest request;
    request.type = HvMessageType::disk_report;
    request.args[0] = index;
    SVM_CHECK(send_record(control_.get(), &request, sizeof request));
    HvDiskReport report;
    auto received =
        receive_record(control_.get(), &report, sizeof report, "the hypervisor process");
    drain_console();
    if (!received) {
        reap(true);
        return svmkit::unexpected(received.error());
    }
    report.message[sizeof report.message - 1] = '\0';
    return report;
}

void HypervisorProcess::reap(bool kill_first) {
    if (!alive_)
        return;
    alive_ = false;
    // Give an orderly exit a moment, then insist.
    (void)wait_or_kill(pid_, std::chrono::milliseconds(kill_first ? 1000 : 500));
}

Result<void> HypervisorProcess::stop() {
    HvRequest request;
    request.type = HvMessageType::stop;
    SVM_CHECK(roundtrip(request));
    alive_ = false;
    int status = 0;
    pid_t r = -1;
    do {
        r = ::waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    drain_console();
    if (r != pid_ || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(ExitCode::io, "the hypervisor process ended badly (status {:#x})", status);
    return {};
}

} // namespace svmkit::platform
