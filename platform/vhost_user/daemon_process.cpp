#include "platform/vhost_user/daemon_process.hpp"

#include "base/child_process.hpp"
#include "base/file.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <linux/close_range.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace svmkit::vhost_user {

Result<DaemonProcess> DaemonProcess::spawn(const std::vector<std::string>& argv,
                                           const std::string& log_path) {
    if (argv.empty())
        return fail(ExitCode::usage, "no command to start");
    UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!log.valid())
        return fail(ExitCode::io, "{}: cannot open log: {}", log_path, std::strerror(errno));
    UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0)
        return fail(ExitCode::io, "pipe2: {}", std::strerror(errno));
    UniqueFd report_read(report[0]);
    UniqueFd report_write(report[1]);
    // Everything the child needs is prepared before fork: after it, only
    // async-signal-safe calls.
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0)
        return fail(ExitCode::io, "fork: {}", std::strerror(errno));
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent)
            ::_exit(127);
        ::dup2(null.get(), 0);
        ::dup2(log.get(), 1);
        ::dup2(log.get(), 2);
        // Nothing but stdin/out/err crosses exec, whatever the parent forgot
        // to mark close-on-exec (a back end must never inherit, say, the
        // secure memfd). The report pipe stays usable until exec.
        ::close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        ::execvp(args[0], args.data());
        const int err = errno;
        (void)!::write(report_write.get(), &err, sizeof err);
        ::_exit(127);
    }
    report_write = UniqueFd();
    int err = 0;
    ssize_t n = 0;
    do {
        n = ::read(report_read.get(), &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    DaemonProcess p;
    p.pid_ = pid;
    p.log_path_ = log_path;
    if (n == sizeof err) {
        p.stop();
        return fail(ExitCode::io, "cannot start {}: {}", argv[0], std::strerror(err));
    }
    return p;
}

DaemonProcess::DaemonProcess(DaemonProcess&& other) noexcept
    : pid_(other.pid_), log_path_(std::move(other.log_path_)), status_(other.status_) {
    other.pid_ = -1;
}

DaemonProcess::~DaemonProcess() {
    if (pid_ > 0)
        stop();
}

bool DaemonProcess::running() {
    if (pid_ <= 0 || status_)
        return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        status_ = status;
        return false;
    }
    return r == 0;
}

int DaemonProcess::stop(std::chrono::milliseconds grace) {
    if (pid_ <= 0)
        return -1;
    if (running()) {
        ::kill(pid_, SIGTERM);
        if (const auto status = wait_or_kill(pid_, grace))
            status_ = *status;
    }
    pid_ = -1;
    return status_.value_or(-1);
}

std::string DaemonProcess::log() const {
    std::ifstream in(log_path_);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> vhost_blk_command(const std::string& executable,
                                           const std::string& socket_path,
                                           const std::string& disk_path, bool read_only,
                                           const std::string& hostile_mode,
                                           const std::string& stats_path) {
    std::vector<std::string> argv{executable, "--socket", socket_path, "--disk", disk_path};
    if (read_only)
        argv.emplace_back("--read-only");
    if (hostile_mode != "none") {
        argv.emplace_back("--hostile");
        argv.push_back(hostile_mode);
    }
    if (!stats_path.empty()) {
        argv.emplace_back("--stats");
        argv.push_back(stats_path);
    }
    return argv;
}

namespace {

// QEMU option values escape a comma by doubling it.
std::string qemu_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        out += c;
        if (c == ',')
            out += ',';
    }
    return out;
}

} // namespace

std::vector<std::string> qemu_storage_daemon_command(const std::string& socket_path,
                                                     const std::string& disk_path, bool writable,
                                                     const std::string& binary) {
    return {binary,
            "--blockdev",
            "driver=file,node-name=f0,filename=" + qemu_escape(disk_path),
            "--blockdev",
            "driver=raw,node-name=d0,file=f0",
            "--export",
            "type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=" +
                qemu_escape(socket_path) + ",writable=" + (writable ? "on" : "off")};
}

} // namespace svmkit::vhost_user
