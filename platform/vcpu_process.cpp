#include "platform/vcpu_process.hpp"

#include "guest/layout.h"
#include "platform/helper_program.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <span>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace svmkit::platform {

namespace {

using vcpu::State;

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value) {
    return ::syscall(SYS_futex, word, op, value, nullptr, nullptr, 0);
}

// The sandbox's namespaces. Unprivileged: all of them inside a user
// namespace of its own (where the kernel allows user namespaces). As root:
// the same without a user namespace first, so that the vCPU, which then sees
// itself as root, becomes nobody for real (vcpu_main.cpp drops its identity;
// inside a user namespace it would keep root's user id outside it). Last,
// none: the seccomp filter and the limits hold without them.
constexpr unsigned long kNamespaces =
    CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
constexpr unsigned long kUnprivilegedAttempts[] = {CLONE_NEWUSER | kNamespaces, 0};
constexpr unsigned long kRootAttempts[] = {kNamespaces, CLONE_NEWUSER | kNamespaces, 0};

// fork(), or clone() into new namespaces: the child returns 0 on a copy of
// this stack, as after fork.
pid_t clone_process(unsigned long flags) {
    return static_cast<pid_t>(::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0));
}

std::optional<siginfo_t> wait_for(int pidfd, int options) {
    siginfo_t info{};
    for (;;) {
        if (::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, options) == 0)
            return info;
        if (errno != EINTR)
            return std::nullopt;
    }
}

} // namespace

Result<std::string> default_vcpu_path() {
    return helper_program("SVMKIT_VCPU", "svmkit-vcpu");
}

Result<std::unique_ptr<VcpuProcess>> VcpuProcess::spawn(const VcpuConfig& config) {
    if (::access(config.path.c_str(), X_OK) != 0)
        return fail(ExitCode::io, "{}: cannot run the vCPU: {}", config.path, std::strerror(errno));
    auto p = std::unique_ptr<VcpuProcess>(new VcpuProcess());
    const std::uint64_t pages = config.memory_size / kGuestPageSize;
    p->channel_size_ = vcpu::channel_size(pages);
    p->channel_fd_ = UniqueFd(::memfd_create("svmkit-gate-channel", MFD_CLOEXEC));
    if (!p->channel_fd_.valid() ||
        ::ftruncate(p->channel_fd_.get(), static_cast<off_t>(p->channel_size_)) != 0)
        return fail(ExitCode::io, "creating the gate channel: {}", std::strerror(errno));
    void* mapped = ::mmap(nullptr, p->channel_size_, PROT_READ | PROT_WRITE, MAP_SHARED,
                          p->channel_fd_.get(), 0);
    if (mapped == MAP_FAILED)
        return fail(ExitCode::io, "mapping the gate channel: {}", std::strerror(errno));
    p->channel_ = static_cast<vcpu::Header*>(mapped); // zero-filled: a valid Header
    p->channel_->setup = vcpu::Setup{vcpu::kChannelMagic, vcpu::kChannelVersion, config.memory_size,
                                     static_cast<std::uint64_t>(SVMKIT_SIM_GUEST_VA_BASE)};

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return fail(ExitCode::io, "socketpair: {}", std::strerror(errno));
    UniqueFd ours(sv[0]), theirs(sv[1]);

    // Everything the child needs, prepared before it exists (it only makes
    // async-signal-safe calls, then execs with an empty environment).
    std::string path = config.path;
    char* const argv[] = {path.data(), nullptr};
    char* const envp[] = {nullptr};
    const std::pair<int, int> fds[] = {{theirs.get(), vcpu::kSetupSocketFd},
                                       {p->channel_fd_.get(), vcpu::kChannelFd},
                                       {config.hypervisor_memory_fd, vcpu::kHypervisorMemoryFd},
                                       {config.secure_memory_fd, vcpu::kSecureMemoryFd}};
    int moved[std::size(fds)];
    pid_t pid = -1;
    const std::span<const unsigned long> attempts =
        ::geteuid() == 0 ? std::span<const unsigned long>(kRootAttempts)
                         : std::span<const unsigned long>(kUnprivilegedAttempts);
    for (unsigned long flags : attempts) {
        pid = clone_process(flags);
        if (pid >= 0) {
            p->namespaces_ = flags;
            break;
        }
    }
    if (pid < 0)
        return fail(ExitCode::io, "starting the vCPU: {}", std::strerror(errno));
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        // Above every target number first, so no dup2 overwrites one still
        // to be moved; dup2 clears close-on-exec.
        for (std::size_t i = 0; i < std::size(fds); ++i)
            moved[i] = ::fcntl(fds[i].first, F_DUPFD_CLOEXEC, 256);
        for (std::size_t i = 0; i < std::size(fds); ++i)
            if (moved[i] < 0 || ::dup2(moved[i], fds[i].second) < 0)
                ::_exit(127);
        ::syscall(SYS_close_range, vcpu::kFirstFreeFd, ~0u, 0);
        ::execve(argv[0], argv, envp);
        ::_exit(127);
    }
    p->pid_ = pid;
    theirs = UniqueFd();
    p->pidfd_ = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!p->pidfd_.valid()) {
        const int err = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        p->reaped_ = true;
        return fail(ExitCode::io, "pidfd_open: {}", std::strerror(err));
    }
    SVM_CHECK(p->await_startup(ours.get()));
    const bool has_deadline = config.timeout.count() > 0;
    const auto deadline = std::chrono::steady_clock::now() + config.timeout;
    p->watcher_ = std::thread(
        [raw = p.get(), deadline, has_deadline] { raw->watch(deadline, has_deadline); });
    return p;
}

// The vCPU's one startup message: ok with the seccomp listener, or why it
// could not set up (then it exits 1).
Result<void> VcpuProcess::await_startup(int setup_socket) {
    vcpu::StartupEnvelope envelope;
    vcpu::StartupMessage& m = envelope.message;
    msghdr& msg = envelope.header;
    ssize_t n = -1;
    do {
        n = ::recvmsg(setup_socket, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    const int err = errno;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
            listener_ = UniqueFd(fd);
        }
    if (n == static_cast<ssize_t>(sizeof m) && m.ok == 1 && listener_.valid())
        return {};
    stop();
    if (n == static_cast<ssize_t>(sizeof m) && m.ok == 0) {
        m.error[sizeof m.error - 1] = '\0';
        return fail(ExitCode::io, "the vCPU could not start: {}", m.error);
    }
    if (n < 0)
        return fail(ExitCode::io, "the vCPU's startup message: {}", std::strerror(err));
    return fail(ExitCode::io,
                "the vCPU ended before it was ready ({} {}; is svmkit-vcpu the one built with "
                "this svmkit?)",
                end_.signal != 0 ? "killed by signal" : "exit status",
                end_.signal != 0 ? end_.signal : end_.exit_status);
}

void VcpuProcess::kill_now() {
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

void VcpuProcess::watch(std::chrono::steady_clock::time_point deadline, bool has_deadline) {
    seccomp_notif_sizes sizes{};
    if (::syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0)
        sizes.seccomp_notif = sizeof(seccomp_notif);
    // The kernel writes its own struct size: at least ours, zeroed (it must be).
    std::vector<std::uint64_t> buffer(
        (std::max<std::size_t>(sizes.seccomp_notif, sizeof(seccomp_notif)) + 7) / 8);
    pollfd fds[2] = {{pidfd_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    bool killed = false;
    for (;;) {
        int timeout_ms = -1;
        if (has_deadline && !killed) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                timed_out_ = true;
                kill_now();
                killed = true;
                continue;
            }
            timeout_ms = static_cast<int>(std::min<long long>(left.count(), 1 << 30));
        }
        const int n = ::poll(fds, 2, timeout_ms);
        if (n <= 0)
            continue; // EINTR, or the deadline (checked above)
        if (fds[0].revents != 0)
            break; // the vCPU is dead
        if ((fds[1].revents & POLLIN) != 0) {
            std::fill(buffer.begin(), buffer.end(), 0);
            auto* request = reinterpret_cast<seccomp_notif*>(buffer.data());
            if (::ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_RECV, request) == 0 && !forbidden_ &&
                !killed) {
                ForbiddenCall call;
                call.number = request->data.nr;
                for (int i = 0; i < 6; ++i)
                    call.args[i] = request->data.args[i];
                forbidden_ = call;
            }
            if (!killed)
                kill_now();
            killed = true;
        } else if (fds[1].revents != 0) {
            fds[1].fd = -1; // the filter has no users left
        }
    }
    // Dead: nothing can write the channel any more.
    gone_.store(true, std::memory_order_release);
    channel_->state.store(static_cast<std::uint32_t>(State::gone), std::memory_order_release);
    futex(&channel_->state, FUTEX_WAKE, INT32_MAX);
}

std::optional<vcpu::Request> VcpuProcess::next_request() {
    for (;;) {
        if (gone_.load(std::memory_order_acquire))
            return std::nullopt;
        const std::uint32_t s = channel_->state.load(std::memory_order_acquire);
        if (s == static_cast<std::uint32_t>(State::request)) {
            vcpu::Request copy;
            std::memcpy(&copy, &channel_->request, sizeof copy);
            return copy;
        }
        futex(&channel_->state, FUTEX_WAIT, s);
    }
}

void VcpuProcess::reply(const vcpu::Reply& reply) {
    std::memcpy(&channel_->reply, &reply, sizeof reply);
    channel_->state.store(static_cast<std::uint32_t>(State::reply), std::memory_order_release);
    futex(&channel_->state, FUTEX_WAKE, 1);
}

std::uint8_t* VcpuProcess::page_table() const {
    return reinterpret_cast<std::uint8_t*>(channel_) + vcpu::kPageTableOffset;
}

bool VcpuProcess::freeze() {
    if (gone_.load(std::memory_order_acquire) ||
        ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGSTOP, nullptr, 0) != 0)
        return false;
    const auto info = wait_for(pidfd_.get(), WSTOPPED | WEXITED | WNOWAIT);
    return info && info->si_code == CLD_STOPPED;
}

void VcpuProcess::thaw() {
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGCONT, nullptr, 0);
}

vcpu::FaultReport VcpuProcess::fault_report() const {
    vcpu::FaultReport copy;
    std::memcpy(&copy, &channel_->fault, sizeof copy);
    return copy;
}

void VcpuProcess::stop() {
    if (reaped_)
        return;
    reaped_ = true;
    if (!gone_.load(std::memory_order_acquire)) {
        end_.stopped_by_machine = true;
        stopping_ = true;
        kill_now();
    }
    if (watcher_.joinable())
        watcher_.join();
    if (const auto info = wait_for(pidfd_.get(), WEXITED)) {
        if (info->si_code == CLD_EXITED)
            end_.exit_status = info->si_status;
        else
            end_.signal = info->si_status;
    }
    end_.timed_out = timed_out_;
    end_.forbidden = forbidden_;
}

VcpuProcess::~VcpuProcess() {
    if (pid_ > 0)
        stop();
    if (channel_ != nullptr)
        ::munmap(channel_, channel_size_);
}

std::vector<std::string_view> namespace_names(unsigned long flags) {
    static constexpr std::pair<unsigned long, std::string_view> kNames[] = {
        {CLONE_NEWUSER, "user"}, {CLONE_NEWPID, "pid"}, {CLONE_NEWNET, "net"},
        {CLONE_NEWNS, "mount"},  {CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"},
    };
    std::vector<std::string_view> names;
    for (const auto& [flag, name] : kNames)
        if ((flags & flag) != 0)
            names.push_back(name);
    return names;
}

std::string_view syscall_name(int number) {
    // The calls a hostile guest tries first (docs/hostile-guest.md), and
    // those the vCPU itself uses.
    static constexpr std::pair<int, std::string_view> kNames[] = {
        {SYS_read, "read"},
        {SYS_write, "write"},
        {SYS_open, "open"},
        {SYS_close, "close"},
        {SYS_mmap, "mmap"},
        {SYS_mprotect, "mprotect"},
        {SYS_munmap, "munmap"},
        {SYS_brk, "brk"},
        {SYS_rt_sigaction, "rt_sigaction"},
        {SYS_rt_sigreturn, "rt_sigreturn"},
        {SYS_ioctl, "ioctl"},
        {SYS_mremap, "mremap"},
        {SYS_socket, "socket"},
        {SYS_connect, "connect"},
        {SYS_sendmsg, "sendmsg"},
        {SYS_clone, "clone"},
        {SYS_fork, "fork"},
        {SYS_vfork, "vfork"},
        {SYS_execve, "execve"},
        {SYS_exit, "exit"},
        {SYS_kill, "kill"},
        {SYS_ptrace, "ptrace"},
        {SYS_prctl, "prctl"},
        {SYS_futex, "futex"},
        {SYS_exit_group, "exit_group"},
        {SYS_tgkill, "tgkill"},
        {SYS_openat, "openat"},
        {SYS_process_vm_readv, "process_vm_readv"},
        {SYS_process_vm_writev, "process_vm_writev"},
        {SYS_seccomp, "seccomp"},
        {SYS_execveat, "execveat"},
        {SYS_pidfd_open, "pidfd_open"},
        {SYS_clone3, "clone3"},
        {SYS_pidfd_getfd, "pidfd_getfd"},
    };
    for (const auto& [n, name] : kNames)
        if (n == number)
            return name;
    return {};
}

} // namespace svmkit::platform
