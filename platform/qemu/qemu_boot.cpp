#include "platform/qemu/qemu_boot.hpp"

#include "platform/qemu/attached_cpu.hpp"
#include "platform/qemu/attached_ultravisor.hpp"
#include "platform/qemu/console_stream.hpp"
#include "platform/qemu/first_stage.hpp"
#include "platform/qemu/private_dir.hpp"
#include "platform/qemu/shared_ram.hpp"
#include "platform/ultracalls.hpp"
#include "platform/vhost_user/daemon_process.hpp"

#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace svmkit::platform::qemu {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kAttachTimeout{15000};

std::uint64_t micros(Clock::time_point origin, Clock::time_point t) {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(t - origin).count());
}

// The last line of QEMU's log that starts with `prefix`, without it.
std::string log_line(const std::string& log, std::string_view prefix) {
    std::string found;
    std::size_t at = 0;
    while ((at = log.find(prefix, at)) != std::string::npos) {
        const std::size_t end = log.find('\n', at);
        found = log.substr(at + prefix.size(),
                           end == std::string::npos ? end : end - at - prefix.size());
        at += prefix.size();
    }
    return found;
}

std::string describe_status(int status) {
    if (WIFEXITED(status))
        return fmt::format("exit status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return fmt::format("killed by signal {}", WTERMSIG(status));
    return "status unknown";
}

std::string log_tail(const std::string& log) {
    constexpr std::size_t kTail = 2000;
    return log.size() > kTail ? log.substr(log.size() - kTail) : log;
}

// Everything one boot holds, in the order it is made (and torn down in reverse).
struct Boot {
    const QemuConfig& config;
    PrivateDirectory dir;
    QemuPaths paths;
    std::string append;
    Clock::time_point started{};
    std::string log_path;
    UniqueFd log; // QEMU's stdout and stderr, readable after its name is gone
};

// QEMU's log so far (the last kMaxLog bytes).
std::string read_log(const Boot& b) {
    constexpr off_t kMaxLog = 64 << 10;
    UniqueFd reopened;
    int fd = b.log.get();
    if (fd < 0) {
        reopened = UniqueFd(::open(b.log_path.c_str(), O_RDONLY | O_CLOEXEC));
        fd = reopened.get();
    }
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0)
        return {};
    const off_t from = st.st_size > kMaxLog ? st.st_size - kMaxLog : 0;
    std::string text(static_cast<std::size_t>(st.st_size - from), '\0');
    const ssize_t n = ::pread(fd, text.data(), text.size(), from);
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return text;
}

Result<void> place_inputs(const QemuBootSpec& spec, Boot& b) {
    SVM_TRY(image, InputFile::open(spec.image));
    if (spec.first_stage_kernel.empty()) {
        b.paths.kernel = b.dir.entry("image");
        return copy_input(image, b.paths.kernel);
    }
    SVM_TRY(kernel, InputFile::open(spec.first_stage_kernel));
    SVM_TRY(initrd, InputFile::open(spec.first_stage_initrd));
    b.paths.kernel = b.dir.entry("first-stage-kernel");
    b.paths.initrd = b.dir.entry("first-stage-initrd");
    b.append = spec.first_stage_cmdline;
    SVM_CHECK(copy_input(kernel, b.paths.kernel));
    return write_first_stage_initrd(initrd, image, b.paths.initrd);
}

// The gdbstub, once QEMU listens; a QEMU that ended first is its own error.
Result<gdb::Client> attach(vhost_user::DaemonProcess& qemu, const std::string& socket) {
    const auto deadline = Clock::now() + kAttachTimeout;
    for (;;) {
        if (!qemu.running())
            return fail(ExitCode::qemu_failed, "QEMU ended before svmkit could attach: {}",
                        log_tail(qemu.log()));
        auto client = gdb::Client::connect(socket, std::chrono::milliseconds(200));
        if (client)
            return client;
        if (Clock::now() >= deadline)
            return fail(ExitCode::qemu_failed, "QEMU's gdbstub did not answer within {} s: {}",
                        kAttachTimeout.count() / 1000, client.error().message);
    }
}

void add_stage(BootReport& r, const char* name, Clock::time_point origin, Clock::time_point from,
               Clock::time_point to) {
    r.stages.push_back(BootStage{name, micros(origin, from), micros(from, to)});
}

void record_esm(BootReport& r, const Ultravisor& uv, const Boot& b, Clock::time_point attached,
                Clock::time_point ended) {
    const Clock::time_point origin = b.config.origin;
    add_stage(r, "qemu", origin, b.started, attached);
    if (!uv.esm()) {
        add_stage(r, "guest", origin, attached, ended);
        return;
    }
    add_stage(r, "firmware", origin, attached, uv.esm_start());
    add_stage(r, "esm", origin, uv.esm_start(), uv.esm_end());
    if (uv.secure())
        add_stage(r, "stub-secure", origin, uv.esm_end(), ended);
    r.esm = *uv.esm();
    r.esm_return_code = uv.esm_return_code();
    if (const auto& resume = uv.resume()) {
        r.placed.kbase = resume->r4;
        r.placed.entry = resume->pc;
        r.fdt = resume->r3;
        const format::Manifest& m = r.esm->manifest;
        std::uint64_t span = 0; // components are in range: UV_ESM checked them
        for (const format::Component& c : m.components)
            span = std::max(span, c.address + c.size - m.image_base);
        r.placed.end = resume->r4 + span;
    }
    r.shares = uv.shares();
}

// QEMU's exit status once it ended by itself (it may take a moment after
// its gdbstub said so), or nullopt when svmkit had to end it.
std::optional<unsigned> wait_for_qemu(vhost_user::DaemonProcess& qemu) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (qemu.running() && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (qemu.running())
        return std::nullopt;
    const int status = qemu.wait_status().value_or(-1);
    if (WIFEXITED(status))
        return static_cast<unsigned>(WEXITSTATUS(status));
    return std::nullopt;
}

void decide_outcome(BootReport& r, const AttachedEnd& end, std::optional<unsigned> qemu_status,
                    const Ultravisor& uv, const std::string& log) {
    const bool refused = uv.esm() && !uv.esm()->ok();
    const std::string os_term = log_line(log, "OS terminated: ");
    if (refused) {
        r.outcome = BootOutcome::refused;
        r.message = fmt::format("UV_ESM refused the image: {}: {}",
                                esm_failure_name(uv.esm()->failure), uv.esm()->message);
        return;
    }
    switch (end.kind) {
    case AttachedEnd::Kind::timed_out:
        r.outcome = BootOutcome::timed_out;
        r.message = "the guest ran longer than --timeout";
        return;
    case AttachedEnd::Kind::terminated:
        r.outcome = BootOutcome::terminated;
        r.message = "the guest called UV_SVM_TERMINATE";
        return;
    case AttachedEnd::Kind::qemu_ended:
        break;
    }
    if (!os_term.empty()) { // RTAS ibm,os-term: the guest stopped itself
        r.outcome = BootOutcome::terminated;
        r.message = "the guest stopped the VM: " + os_term;
        return;
    }
    if (qemu_status == 0u) {
        r.outcome = BootOutcome::exited; // powered off
        r.exit_status = 0;
        return;
    }
    r.outcome = BootOutcome::faulted;
    r.message = qemu_status
                    ? fmt::format("QEMU exited with status {}: {}", *qemu_status, log_tail(log))
                    : fmt::format("QEMU did not end by itself: {}", log_tail(log));
}

} // namespace

std::vector<std::string> qemu_command(const QemuConfig& config, const QemuPaths& paths,
                                      const std::string& append) {
    const std::string mem = fmt::format("{}M", config.memory_size >> 20);
    // TCG has none of the speculation mitigations pseries asks for by
    // default: say so instead of a warning on every boot.
    const std::string machine = "pseries,memory-backend=ram0,cap-cfpc=broken,cap-sbbc=broken,"
                                "cap-ibs=broken,cap-ccf-assist=off";
    std::vector<std::string> argv = {
        config.qemu, "-machine", machine, "-cpu", "power9", "-smp", std::to_string(config.cpus),
        "-m", mem, "-object",
        "memory-backend-file,id=ram0,size=" + mem + ",share=on,mem-path=" + paths.ram,
        "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-no-reboot",
        "-chardev", "socket,id=console,path=" + paths.console_socket + ",server=on,wait=off",
        "-serial", "chardev:console", "-chardev",
        "socket,id=gdb,path=" + paths.gdb_socket + ",server=on,wait=off", "-gdb", "chardev:gdb",
        "-S", "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        // RTAS ibm,os-term (the stub stopping the VM) ends QEMU with status 1.
        "-action", "panic=exit-failure", "-kernel", paths.kernel};
    if (!paths.initrd.empty()) {
        argv.insert(argv.end(), {"-initrd", paths.initrd});
        argv.insert(argv.end(), {"-append", append});
    }
    return argv;
}

namespace {

// From the halted QEMU to its end: attach, serve, report.
Result<BootReport> run_attached(Boot& b, vhost_user::DaemonProcess& qemu, SharedGuestRam& ram,
                                EsmPolicy policy, const QemuBootSpec& spec) {
    SVM_TRY(client, attach(qemu, b.paths.gdb_socket));
    SVM_TRY(console,
            ConsoleStream::connect(b.paths.console_socket, b.config.console_echo, kAttachTimeout));
    // Both ends hold what they opened: nothing of the VM needs a name any
    // more, and nothing stays on disk whatever happens to svmkit from here.
    b.log = UniqueFd(::open(b.log_path.c_str(), O_RDONLY | O_CLOEXEC));
    b.dir.clear();
    SVM_TRY(cpu, AttachedCpu::attach(client));
    Ultravisor uv(ram, std::move(policy));
    AttachedUltravisor attached(client, cpu, ram, uv);
    SVM_CHECK(attached.arm());
    const Clock::time_point attached_at = Clock::now();
    const auto deadline =
        b.config.timeout.count() > 0 ? attached_at + b.config.timeout : Clock::time_point::max();
    auto end = attached.run(deadline);
    const Clock::time_point ended = Clock::now();
    std::optional<unsigned> qemu_status;
    if (end && end->kind == AttachedEnd::Kind::qemu_ended)
        qemu_status = wait_for_qemu(qemu);
    else
        client.kill();
    qemu.stop(std::chrono::milliseconds(2000));
    console->drain(std::chrono::milliseconds(2000));
    if (!end)
        return svmkit::unexpected(end.error());

    BootReport r;
    r.image = spec.image;
    r.platform = fmt::format("QEMU pseries (POWER9, TCG, {} CPU{}) with svmkit's ultravisor "
                             "attached",
                             b.config.cpus, b.config.cpus == 1 ? "" : "s");
    r.memory_size = b.config.memory_size;
    record_esm(r, uv, b, attached_at, ended);
    r.pages_shared_at_end = ram.count(PageState::shared);
    decide_outcome(r, *end, qemu_status, uv, read_log(b));
    r.console = console->text();
    r.total_us = micros(b.config.origin, Clock::now());
    return r;
}

} // namespace

Result<BootReport> boot_on_qemu(QemuConfig config, const QemuBootSpec& spec) {
    SVM_TRY(dir, PrivateDirectory::create());
    Boot b{config, std::move(dir), {}, {}, {}, {}, {}};
    b.paths.ram = b.dir.entry("ram");
    b.paths.gdb_socket = b.dir.entry("gdb.sock");
    b.paths.console_socket = b.dir.entry("console.sock");
    SVM_CHECK(place_inputs(spec, b));
    SVM_TRY(ram, SharedGuestRam::create(b.paths.ram, config.memory_size));

    b.started = Clock::now();
    b.log_path = b.dir.entry("qemu.log");
    SVM_TRY(qemu,
            vhost_user::DaemonProcess::spawn(qemu_command(config, b.paths, b.append), b.log_path));
    auto report = run_attached(b, qemu, ram, std::move(config.policy), spec);
    if (!report && !qemu.running()) // QEMU's own words say more than a broken socket
        return fail(ExitCode::qemu_failed, "{}; QEMU ended ({}): {}", report.error().message,
                    describe_status(qemu.wait_status().value_or(-1)), log_tail(read_log(b)));
    return report;
}

} // namespace svmkit::platform::qemu
