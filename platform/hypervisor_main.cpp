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
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <linux/capability.h>
#include <string_view>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

// Starts each disk's back end, connects to it and puts a virtio-mmio device
// in front of it.
Result<void> attach_disks(const Options& o, HypervisorCore& core, const SocketDir& dir,
                          std::vector<vhost_user::DaemonProcess>& backends) {
    std::string vhost_blk = o.vhost_blk;
    for (std::size_t i = 0; i < o.disks.size(); ++i) {
        const BlockBackendSpec& spec = o.disks[i];
        // Looked up only for a disk that needs it (QEMU's back end does not).
        if (vhost_blk.empty() && spec.kind == BlockBackendKind::svmkit) {
            SVM_TRY(found, default_vhost_blk_path());
            vhost_blk = std::move(found);
        }
        const std::string socket = fmt::format("{}/disk{}.sock", dir.path(), i);
        const std::string log = fmt::format("{}/disk{}.log", dir.path(), i);
        SVM_TRY(backend, start_block_backend(spec, vhost_blk, socket, log));
        backends.push_back(std::move(backend));
        auto frontend = vhost_user::Frontend::connect(socket);
        if (!frontend)
            return fail(ExitCode::io, "disk {}: the {} back end did not come up: {}\n{}", spec.disk,
                        block_backend_name(spec.kind), frontend.error().message,
                        backends.back().log());
        VirtioBlkBackendInfo info;
        info.name =
            fmt::format("disk{} ({}, {} back end)", i, spec.disk, block_backend_name(spec.kind));
        info.platform_supplies_access_platform = spec.kind == BlockBackendKind::qemu;
        const int kick = kFirstDeviceFd + 2 * static_cast<int>(i);
        SVM_TRY(device,
                VirtioMmioBlk::create(std::move(*frontend), std::move(info), kick, kick + 1));
        core.add_device(std::move(device));
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

Result<void> serve(int argc, char** argv) {
    SVM_TRY(options, parse_args(argc, argv));
    SVM_TRY(core, HypervisorCore::create(options.core));
    SVM_CHECK(drop_privileges());
    // Back ends start without privileges too, and die with this process.
    SVM_TRY(sockets, SocketDir::create());
    std::vector<vhost_user::DaemonProcess> backends;
    SVM_CHECK(attach_disks(options, *core, sockets, backends));
    for (;;) {
        HvRequest request;
        SVM_CHECK(receive_record(kControlFd, &request, sizeof request, "the machine"));
        SVM_TRY(reply, core->serve(request));
        SVM_CHECK(send_record(kControlFd, &reply, sizeof reply));
        if (request.type == HvMessageType::stop)
            return {};
    }
}

} // namespace

int main(int argc, char** argv) {
    auto r = serve(argc, argv);
    if (!r) {
        std::fprintf(stderr, "svmkit-hypervisor: %s\n", r.error().message.c_str());
        return static_cast<int>(r.error().code);
    }
    return 0;
}
