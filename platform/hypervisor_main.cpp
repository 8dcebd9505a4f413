// svmkit-hypervisor: the simulated machine's hypervisor, a process of its own.
//
// Started by the machine (platform/hypervisor.cpp), never by users:
//   svmkit-hypervisor --memory-size N --guest-pid P [--hook-log] [--hook SPEC]...
// with these descriptors and no others:
//   3  the control channel (SOCK_SEQPACKET, platform/hv_protocol.hpp)
//   4  the hypervisor-visible guest memory (memfd)
//   5  the console (the guest's output goes here)
//   6  the hook log (only with --hook-log)
//   7 + 2i, 8 + 2i  disk i's queue kick and call eventfds (with --disk)
// Disks: `--disk PATH [--backend svmkit|qemu] [--hostile MODE] [--read-only]`
// per disk (the options after a --disk apply to it); `--vhost-blk PROGRAM`
// names svmkit's back end.
// Before serving anything it gives up every capability and the right to gain
// any (no_new_privs), and dies with the machine (PDEATHSIG): from then on the
// only guest data it can reach is what is in the hypervisor-visible memfd.
#include "platform/block_backend.hpp"
#include "platform/hypervisor_core.hpp"
#include "platform/vhost_user/frontend.hpp"

#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <linux/capability.h>
#include <nlohmann/json.hpp>
#include <string_view>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace svmkit;
using namespace svmkit::platform;

constexpr int kControlFd = 3;
constexpr int kMemoryFd = 4;
constexpr int kConsoleFd = 5;
constexpr int kHookLogFd = 6;
constexpr int kFirstDeviceFd = 7;

struct Options {
    HypervisorCoreConfig core;
    std::vector<BlockBackendSpec> disks;
    std::string vhost_blk;
};

Result<std::uint64_t> number(std::string_view flag, const char* s) {
    std::uint64_t v = 0;
    const std::string_view text(s);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size())
        return fail(ExitCode::usage, "{}: not a number: {}", flag, text);
    return v;
}

Result<Options> parse_args(int argc, char** argv) {
    Options o;
    HypervisorCoreConfig& config = o.core;
    config.memory_fd = kMemoryFd;
    config.console_fd = kConsoleFd;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg(argv[i]);
        const bool has_value = i + 1 < argc;
        if (arg == "--memory-size" && has_value) {
            SVM_TRY(v, number(arg, argv[++i]));
            config.memory_size = v;
        } else if (arg == "--guest-pid" && has_value) {
            SVM_TRY(v, number(arg, argv[++i]));
            config.guest_pid = static_cast<int>(v);
        } else if (arg == "--hook" && has_value) {
            SVM_TRY(hook, parse_hv_hook(argv[++i]));
            config.hooks.push_back(std::move(hook));
        } else if (arg == "--hook-log") {
            config.hook_log_fd = kHookLogFd;
        } else if (arg == "--disk" && has_value) {
            BlockBackendSpec disk;
            disk.disk = argv[++i];
            o.disks.push_back(std::move(disk));
        } else if (arg == "--backend" && has_value && !o.disks.empty()) {
            SVM_TRY(kind, parse_block_backend(argv[++i]));
            o.disks.back().kind = kind;
        } else if (arg == "--hostile" && has_value && !o.disks.empty()) {
            o.disks.back().hostile = argv[++i];
        } else if (arg == "--read-only" && !o.disks.empty()) {
            o.disks.back().read_only = true;
        } else if (arg == "--vhost-blk" && has_value) {
            o.vhost_blk = argv[++i];
        } else {
            return fail(ExitCode::usage, "unexpected argument: {}", arg);
        }
    }
    if (config.memory_size == 0)
        return fail(ExitCode::usage, "--memory-size is required");
    return o;
}

// A private directory for the back ends' sockets, removed with everything in it.
class SocketDir {
  public:
    static Result<SocketDir> create() {
        std::string tmpl = "/tmp/svmkit-hv-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr)
            return fail(ExitCode::io, "mkdtemp: {}", std::strerror(errno));
        SocketDir d;
        d.path_ = tmpl;
        return d;
    }
    SocketDir(SocketDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}
    SocketDir& operator=(SocketDir&&) = delete;
    ~SocketDir() {
        if (!path_.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(path_, ec);
        }
    }
    [[nodiscard]] const std::string& path() const { return path_; }

  private:
    SocketDir() = default;
    std::string path_;
};

// Where disk i's svmkit-vhost-blk leaves its counters when stopped.
std::string stats_path(const SocketDir& dir, std::size_t i) {
    return fmt::format("{}/disk{}.stats", dir.path(), i);
}

// "exited with status 4", "killed by signal 9".
std::string exit_text(int status) {
    if (WIFEXITED(status))
        return fmt::format("exited with status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return fmt::format("killed by signal {}", WTERMSIG(status));
    return fmt::format("ended (wait status {:#x})", status);
}

// The last non-empty line a back end printed: where both say why they stop.
std::string last_line(const std::string& log) {
    std::size_t end = log.find_last_not_of(" \t\r\n");
    if (end == std::string::npos)
        return "(it printed nothing)";
    const std::size_t start = log.rfind('\n', end);
    return log.substr(start == std::string::npos ? 0 : start + 1,
                      end + 1 - (start == std::string::npos ? 0 : start + 1));
}

// A back end that failed to come up, as svmkit reports it: the disk, the
// program, its own last word and how it ended. svmkit-vhost-blk exits with
// svmkit's codes; QEMU's daemon failing is qemu-failed.
Error backend_failure(const BlockBackendSpec& spec, vhost_user::DaemonProcess& daemon,
                      const std::string& what) {
    ExitCode code = ExitCode::io;
    std::string how;
    if (!daemon.running() && daemon.wait_status()) {
        const int status = *daemon.wait_status();
        how = " (" + exit_text(status) + ")";
        if (spec.kind == BlockBackendKind::qemu)
            code = ExitCode::qemu_failed;
        else if (WIFEXITED(status) && WEXITSTATUS(status) >= 2 && WEXITSTATUS(status) <= 4)
            code = static_cast<ExitCode>(WEXITSTATUS(status));
    }
    return Error{code, fmt::format("{}: the {} back end failed: {}{}", spec.disk,
                                   block_backend_program(spec.kind), what, how)};
}

// Connects to a back end that is starting; stops waiting as soon as it has
// exited (a back end refusing its disk exits at once).
Result<vhost_user::Frontend> connect_backend(const BlockBackendSpec& spec,
                                             const std::string& socket,
                                             vhost_user::DaemonProcess& daemon) {
    constexpr auto kPatience = std::chrono::seconds(10);
    vhost_user::ConnectOptions once;
    once.connect_timeout = std::chrono::milliseconds(50);
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    for (;;) {
        auto frontend = vhost_user::Frontend::connect(socket, once);
        if (frontend)
            return frontend;
        if (!daemon.running())
            return svmkit::unexpected(backend_failure(spec, daemon, last_line(daemon.log())));
        if (std::chrono::steady_clock::now() > deadline)
            return svmkit::unexpected(
                backend_failure(spec, daemon,
                                fmt::format("no connection within {} s ({})", kPatience.count(),
                                            frontend.error().message)));
    }
}

// Starts each disk's back end, connects to it and puts a virtio-mmio device
// in front of it.
Result<void> attach_disks(const Options& o, HypervisorCore& core, const SocketDir& dir,
                          std::vector<vhost_user::DaemonProcess>& backends) {
    std::string vhost_blk = o.vhost_blk;
    for (std::size_t i = 0; i < o.disks.size(); ++i) {
        const BlockBackendSpec& spec = o.disks[i];
        // Looked up only for a disk that needs it (QEMU's back end does not).
        if (vhost_blk.empty() && spec.kind == BlockBackendKind::svmkit) {
            auto found = default_vhost_blk_path();
            if (!found)
                return svmkit::unexpected(
                    with_context(std::move(found.error()),
                                 fmt::format("{}: the svmkit-vhost-blk back end", spec.disk)));
            vhost_blk = std::move(*found);
        }
        const std::string socket = fmt::format("{}/disk{}.sock", dir.path(), i);
        const std::string log = fmt::format("{}/disk{}.log", dir.path(), i);
        auto started = start_block_backend(spec, vhost_blk, socket, log, stats_path(dir, i));
        if (!started)
            return svmkit::unexpected(with_context(
                std::move(started.error()),
                fmt::format("{}: the {} back end", spec.disk, block_backend_program(spec.kind))));
        backends.push_back(std::move(*started));
        SVM_TRY(frontend, connect_backend(spec, socket, backends.back()));
        VirtioBlkBackendInfo info;
        info.name =
            fmt::format("disk{} ({}, {} back end)", i, spec.disk, block_backend_name(spec.kind));
        info.platform_supplies_access_platform = spec.kind == BlockBackendKind::qemu;
        const int kick = kFirstDeviceFd + 2 * static_cast<int>(i);
        auto device = VirtioMmioBlk::create(std::move(frontend), std::move(info), kick, kick + 1);
        if (!device)
            return svmkit::unexpected(
                backend_failure(spec, backends.back(), device.error().message));
        core.add_device(std::move(*device));
    }
    return {};
}

Result<void> drop_privileges() {
    // Die with the machine, whatever happens to it.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return fail(ExitCode::io, "prctl(PR_SET_PDEATHSIG): {}", std::strerror(errno));
    if (::getppid() == 1)
        return fail(ExitCode::io, "the machine is already gone");
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fail(ExitCode::io, "prctl(PR_SET_NO_NEW_PRIVS): {}", std::strerror(errno));
    // No capabilities at all: in particular no CAP_SYS_PTRACE, so the
    // kernel's ptrace access check (which also guards /proc/<pid>/mem)
    // refuses the non-dumpable machine process even when both run as root.
    __user_cap_header_struct header{};
    header.version = _LINUX_CAPABILITY_VERSION_3;
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capset, &header, data) != 0)
        return fail(ExitCode::io, "capset: {}", std::strerror(errno));
    return {};
}

// What the hypervisor holds while it serves (destroyed in reverse: the
// back ends stop before their socket directory goes).
struct Running {
    std::unique_ptr<HypervisorCore> core;
    std::vector<BlockBackendSpec> disks;
    SocketDir sockets;
    std::vector<vhost_user::DaemonProcess> backends;
};

Result<Running> start(int argc, char** argv) {
    SVM_TRY(options, parse_args(argc, argv));
    SVM_TRY(core, HypervisorCore::create(options.core));
    SVM_CHECK(drop_privileges());
    // Back ends start without privileges too, and die with this process.
    SVM_TRY(sockets, SocketDir::create());
    Running running{std::move(core), options.disks, std::move(sockets), {}};
    SVM_CHECK(attach_disks(options, *running.core, running.sockets, running.backends));
    return running;
}

Result<void> send_startup(const Result<Running>& started) {
    HvStartup startup;
    if (!started) {
        startup.code = static_cast<std::int32_t>(started.error().code);
        const std::string& m = started.error().message;
        m.copy(startup.message, std::min(m.size(), sizeof startup.message - 1));
    }
    return send_record(kControlFd, &startup, sizeof startup);
}

// The counters svmkit-vhost-blk wrote when it stopped.
Result<vhost_user::BlkCounters> read_stats(const std::string& path) {
    SVM_TRY(bytes, read_small_file(path, 4096));
    const auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (!j.is_object())
        return fail(ExitCode::malformed, "{}: not a JSON object", path);
    vhost_user::BlkCounters c;
    for (auto [field, name] : {std::pair{&c.requests, "requests"},
                               {&c.reads, "reads"},
                               {&c.writes, "writes"},
                               {&c.flushes, "flushes"},
                               {&c.other, "other"},
                               {&c.errors, "errors"},
                               {&c.bytes_read, "bytes_read"},
                               {&c.bytes_written, "bytes_written"}}) {
        if (!j.contains(name) || !j[name].is_number_unsigned())
            return fail(ExitCode::malformed, "{}: no counter '{}'", path, name);
        *field = j[name].get<std::uint64_t>();
    }
    return c;
}

// Stops disk `index`'s back end (it may be stopped only once the VM is
// over) and collects what it served, or how it had ended.
HvDiskReport disk_report(Running& running, std::uint64_t index) {
    HvDiskReport report;
    auto say = [&report](const std::string& text) {
        text.copy(report.message, std::min(text.size(), sizeof report.message - 1));
    };
    if (index >= running.backends.size()) {
        report.failed = 1;
        say(fmt::format("no disk {}", index));
        return report;
    }
    const BlockBackendSpec& spec = running.disks[index];
    vhost_user::DaemonProcess& daemon = running.backends[index];
    if (!daemon.running()) {
        report.failed = 1;
        say(backend_failure(spec, daemon, last_line(daemon.log())).message);
        return report;
    }
    daemon.stop(); // SIGTERM: svmkit-vhost-blk writes its counters and exits
    if (spec.kind != BlockBackendKind::svmkit)
        return report;
    auto counters = read_stats(stats_path(running.sockets, index));
    if (counters) {
        report.counted = 1;
        report.counters = *counters;
    } else {
        report.failed = 1;
        say(backend_failure(spec, daemon, counters.error().message).message);
    }
    return report;
}

Result<void> serve(Running& running) {
    for (;;) {
        HvRequest request;
        SVM_CHECK(receive_record(kControlFd, &request, sizeof request, "the machine"));
        if (request.type == HvMessageType::disk_report) {
            const HvDiskReport report = disk_report(running, request.args[0]);
            SVM_CHECK(send_record(kControlFd, &report, sizeof report));
            continue;
        }
        SVM_TRY(reply, running.core->serve(request));
        SVM_CHECK(send_record(kControlFd, &reply, sizeof reply));
        if (request.type == HvMessageType::stop)
            return {};
    }
}

} // namespace

int main(int argc, char** argv) {
    auto started = start(argc, argv);
    // A failure to start is the machine's to report (HvStartup), not ours;
    // printed here only when the machine cannot hear it.
    auto told = send_startup(started);
    if (!started) {
        if (!told)
            std::fprintf(stderr, "svmkit-hypervisor: %s\n", started.error().message.c_str());
        return static_cast<int>(started.error().code);
    }
    auto r = told ? serve(*started) : told;
    if (!r) {
        std::fprintf(stderr, "svmkit-hypervisor: %s\n", r.error().message.c_str());
        return static_cast<int>(r.error().code);
    }
    return 0;
}
