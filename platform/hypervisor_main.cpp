// svmkit-hypervisor: the simulated machine's hypervisor, a process of its own.
//
// Started by the machine (platform/hypervisor.cpp), never by users:
//   svmkit-hypervisor --memory-size N --guest-pid P [--hook-log] [--hook SPEC]...
// with these descriptors and no others:
//   3  the control channel (SOCK_SEQPACKET, platform/hv_protocol.hpp)
//   4  the hypervisor-visible guest memory (memfd)
//   5  the console (the guest's output goes here)
//   6  the hook log (only with --hook-log)
// Before serving anything it gives up every capability and the right to gain
// any (no_new_privs), and dies with the machine (PDEATHSIG): from then on the
// only guest data it can reach is what is in the hypervisor-visible memfd.
#include "platform/hypervisor_core.hpp"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
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

Result<std::uint64_t> number(std::string_view flag, const char* s) {
    std::uint64_t v = 0;
    const std::string_view text(s);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size())
        return fail(ExitCode::usage, "{}: not a number: {}", flag, text);
    return v;
}

Result<HypervisorCoreConfig> parse_args(int argc, char** argv) {
    HypervisorCoreConfig config;
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
        } else {
            return fail(ExitCode::usage, "unexpected argument: {}", arg);
        }
    }
    if (config.memory_size == 0)
        return fail(ExitCode::usage, "--memory-size is required");
    return config;
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
    SVM_TRY(config, parse_args(argc, argv));
    SVM_TRY(core, HypervisorCore::create(std::move(config)));
    SVM_CHECK(drop_privileges());
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
