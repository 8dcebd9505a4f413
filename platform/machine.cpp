#include "platform/machine.hpp"

#include "guest/layout.h"
#include "guest/uv_abi.h"
#include "platform/hv_hooks.hpp"
#include "platform/normal_boot.hpp"
#include "platform/platform_fdt.hpp"
#include "platform/vcpu_process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <filesystem>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace svmkit::platform {

namespace {

std::uint64_t since(std::chrono::steady_clock::time_point origin,
                    std::chrono::steady_clock::time_point t) {
    if (t < origin)
        return 0;
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(t - origin).count());
}

const char* signal_name(int sig) {
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV (bad memory access)";
    case SIGBUS:
        return "SIGBUS (bad memory access)";
    case SIGILL:
        return "SIGILL (illegal instruction or trap)";
    case SIGFPE:
        return "SIGFPE (arithmetic fault)";
    case SIGTRAP:
        return "SIGTRAP (breakpoint)";
    case SIGKILL:
        return "SIGKILL (killed)";
    default:
        return "a signal";
    }
}

// A machine-built reply that enters guest code at host address `pc`.
vcpu::Reply enter_at(std::uint64_t pc, std::uint64_t r3, std::uint64_t r4,
                     std::uint64_t stack_top) {
    vcpu::Reply reply;
    reply.action = static_cast<std::uint32_t>(vcpu::ReplyAction::enter);
    reply.pc = pc;
    reply.r[3] = r3;
    reply.r[4] = r4;
    reply.r[5] = 0; // kexec-style: there is no Open Firmware (docs/platform.md)
    reply.stack_top = stack_top;
    return reply;
}

} // namespace

std::string_view boot_outcome_name(BootOutcome o) {
    switch (o) {
    case BootOutcome::exited:
        return "exited";
    case BootOutcome::refused:
        return "refused";
    case BootOutcome::terminated:
        return "terminated";
    case BootOutcome::faulted:
        return "faulted";
    case BootOutcome::returned:
        return "returned";
    case BootOutcome::timed_out:
        return "timed-out";
    case BootOutcome::guest_violation:
        return "guest-violation";
    }
    return "?";
}

Machine::Machine(MachineConfig config, GuestMemory memory)
    : config_(std::move(config)), memory_(std::move(memory)),
      origin_(config_.origin.value_or(std::chrono::steady_clock::now())) {
    uv_ = std::make_unique<Ultravisor>(memory_, std::move(config_.policy));
}

Result<void> Machine::start_hypervisor() {
    HypervisorProcessConfig hv;
    if (config_.hypervisor_path.empty()) {
        SVM_TRY(path, default_hypervisor_path());
        hv.path = std::move(path);
    } else {
        hv.path = config_.hypervisor_path;
    }
    hv.memory_fd = memory_.hypervisor_fd();
    hv.memory_size = memory_.size();
    hv.hooks = config_.hv_hooks;
    hv.hook_log_fd = config_.hv_hook_log_fd;
    hv.console_echo = config_.console_echo;
    for (const BlockBackendSpec& disk : config_.disks) {
        QueueFds q{UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
                   UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))};
        if (!q.kick.valid() || !q.call.valid())
            return fail(ExitCode::io, "eventfd: {}", std::strerror(errno));
        hv.device_fds.push_back(q.kick.get());
        hv.device_fds.push_back(q.call.get());
        queues_.push_back(std::move(q));
        hv.extra_args.insert(hv.extra_args.end(), {"--disk", disk.disk, "--backend",
                                                   std::string(block_backend_name(disk.kind))});
        if (!disk.hostile.empty())
            hv.extra_args.insert(hv.extra_args.end(), {"--hostile", disk.hostile});
        if (disk.read_only)
            hv.extra_args.emplace_back("--read-only");
    }
    if (!config_.vhost_blk_path.empty())
        hv.extra_args.insert(hv.extra_args.end(), {"--vhost-blk", config_.vhost_blk_path});
    SVM_TRY(process, HypervisorProcess::spawn(std::move(hv)));
    hv_ = std::move(process);
    uv_->set_listener(
        [this](HvEvent e, std::uint64_t a0, std::uint64_t a1) { return hv_->notify(e, a0, a1); });
    return {};
}

Machine::~Machine() = default;

Result<std::unique_ptr<Machine>> Machine::create(MachineConfig config) {
    if (config.memory_size < kGuestStackTop + kGuestPageSize)
        return fail(ExitCode::usage,
                    "guest memory of {} bytes is too small: the image is loaded "
                    "at {:#x}",
                    config.memory_size, std::uint64_t{SVMKIT_IMAGE_BASE});
    for (const std::string& hook : config.hv_hooks)
        SVM_CHECK(parse_hv_hook(hook));
    SVM_TRY(memory, GuestMemory::create(config.memory_size));
    auto machine = std::unique_ptr<Machine>(new Machine(std::move(config), std::move(memory)));
    SVM_CHECK(machine->start_hypervisor());
    return machine;
}

Result<void> Machine::load(const format::SecureImage& image) {
    if (loaded_)
        return fail(ExitCode::usage, "the machine is already loaded");
    if (image.arch != format::host_arch())
        return fail(ExitCode::malformed,
                    "{}: the image is for {}; the simulated machine runs {} guests", image.path(),
                    format::arch_name(image.arch), format::arch_name(format::host_arch()));
    SVM_TRY(placed, place_image(memory_, image, SVMKIT_IMAGE_BASE));
    PlatformFdtSpec spec;
    spec.memory_size = memory_.size();
    spec.reserved = {{kFirmwareFdtAddress, kPlatformFdtMaxSize},
                     {kGuestStackBase, kGuestStackTop - kGuestStackBase}};
    spec.virtio_mmio_nodes =
        std::max<unsigned>(config_.virtio_mmio_nodes, static_cast<unsigned>(config_.disks.size()));
    SVM_TRY(fdt, build_platform_fdt(spec));
    SVM_CHECK(memory_.write(kFirmwareFdtAddress, fdt));
    report_.image = image.path();
    report_.memory_size = memory_.size();
    report_.placed = placed;
    report_.fdt = kFirmwareFdtAddress;
    report_.stack_base = kGuestStackBase;
    report_.stack_top = kGuestStackTop;
    loaded_ = true;
    loaded_at_ = std::chrono::steady_clock::now();
    // As QEMU's -kernel: the hypervisor placed the image and may look at (or
    // tamper with) it before the guest runs.
    SVM_CHECK(hv_->notify(HvEvent::loaded));
    return {};
}

Result<void> Machine::load_normal(const NormalBootSpec& spec) {
    if (loaded_)
        return fail(ExitCode::usage, "the machine is already loaded");
    std::string path = spec.program;
    if (path.empty()) {
        SVM_TRY(found, default_boot_loader_path());
        path = std::move(found);
    }
    SVM_TRY(program, place_guest_program(memory_, path, firmware_ranges()));
    std::optional<InputFile> image;
    if (!spec.kexec_image.empty()) {
        SVM_TRY(file, InputFile::open(spec.kexec_image));
        image.emplace(std::move(file));
    }
    // The layout the commands that predict the loader's answer use too.
    SVM_TRY(layout, normal_boot_layout(memory_.size(), program, spec.kexec_image,
                                       image ? std::optional(image->size()) : std::nullopt));
    LoaderReport loader;
    loader.program = program;
    loader.cmdline = spec.cmdline;
    PlatformFdtSpec& fdt_spec = layout.fdt;
    fdt_spec.virtio_mmio_nodes =
        std::max<unsigned>(config_.virtio_mmio_nodes, static_cast<unsigned>(config_.disks.size()));
    fdt_spec.bootargs = spec.cmdline;
    if (layout.kexec) {
        SVM_CHECK(memory_.write_from_file(layout.kexec->base, image->fd(), 0, image->size()));
        loader.kexec_buffer = std::pair{layout.kexec->base, layout.kexec->base + image->size()};
    }
    SVM_TRY(fdt, build_platform_fdt(fdt_spec));
    SVM_CHECK(memory_.write(kFirmwareFdtAddress, fdt));
    // The report names what was booted: the kexec image, else the disks.
    report_.image = spec.kexec_image;
    for (const BlockBackendSpec& disk : config_.disks)
        if (spec.kexec_image.empty())
            report_.image += (report_.image.empty() ? "" : ", ") + disk.disk;
    report_.memory_size = memory_.size();
    report_.placed = PlacedImage{program.start, program.entry, 0, 0, program.end};
    report_.fdt = kFirmwareFdtAddress;
    report_.stack_base = kGuestStackBase;
    report_.stack_top = kGuestStackTop;
    report_.loader = std::move(loader);
    loaded_ = true;
    loaded_at_ = std::chrono::steady_clock::now();
    SVM_CHECK(hv_->notify(HvEvent::loaded));
    return {};
}

bool Machine::in_guest_code(std::uint64_t pc) const {
    const std::uint64_t base = SVMKIT_SIM_GUEST_VA_BASE;
    return pc >= base && pc - base < memory_.size();
}

void Machine::leave_guest(Stop why) noexcept {
    stop_ = why;
}

long Machine::on_ucall(svmkit_regs& regs) noexcept {
    try {
        auto r = uv_->ucall(regs);
        if (!r) {
            platform_error_ = r.error();
            leave_guest(Stop::platform_error);
            return U_FUNCTION;
        }
        if (r->leave_guest)
            leave_guest(uv_->terminated() ? Stop::terminated : Stop::esm_resume);
        return static_cast<long>(regs.r[3]);
    } catch (const std::exception& e) {
        platform_error_ = Error{ExitCode::io, fmt::format("ultracall: {}", e.what())};
        leave_guest(Stop::platform_error);
        return U_FUNCTION;
    }
}

void Machine::record_trace(const svmkit_regs& regs) {
    TraceEvent e;
    e.event = regs.r[4];
    e.args[0] = regs.r[5];
    e.args[1] = regs.r[6];
    e.args[2] = regs.r[7];
    e.when = std::chrono::steady_clock::now();
    if (e.event >= SVMKIT_TRACE_LOADER_IMAGE && e.event <= SVMKIT_TRACE_LOADER_REJECTED) {
        // A loader the machine did not boot: the kernel of a secure image,
        // kexec'ing the next one. Its report starts with its first event
        // (a second loader's events, should one run, are not recorded).
        if (!report_.loader && uv_->secure()) {
            report_.loader.emplace();
            report_.loader->secure = true;
        }
        if (report_.loader && !report_.loader->purgatory_ok)
            record_loader_trace(e);
        return;
    }
    if (events_.size() < 1024)
        events_.push_back(e);
}

// The loader's events fill the report's loader stage as they come: names and
// digests are read from guest memory now (the stub may reuse it later).
void Machine::record_loader_trace(const TraceEvent& e) {
    LoaderReport& l = *report_.loader;
    switch (e.event) {
    case SVMKIT_TRACE_LOADER_IMAGE:
        l.source = e.args[0];
        l.image_gpa = e.args[1];
        l.image_size = e.args[2];
        break;
    case SVMKIT_TRACE_LOADER_MENU: {
        l.entries = e.args[0];
        l.chosen = e.args[1];
        std::array<std::byte, 64> name{};
        if (e.args[2] < memory_.size() && memory_.size() - e.args[2] >= name.size() &&
            memory_.read(e.args[2], name)) {
            const auto* c = reinterpret_cast<const char*>(name.data());
            l.chosen_name.assign(c, ::strnlen(c, name.size()));
        }
        break;
    }
    case SVMKIT_TRACE_LOADER_SEGMENT: {
        if (l.segments.size() >= 64)
            break;
        LoaderSegmentRecord seg{e.args[0], e.args[1], {}};
        (void)memory_.read(e.args[2], std::as_writable_bytes(std::span(seg.sha256)));
        l.segments.push_back(seg);
        break;
    }
    case SVMKIT_TRACE_LOADER_PLACED: {
        l.placed = true;
        l.entry = e.args[1];
        l.kbase = e.args[2];
        // The hypervisor learns it too, and its test hooks may tamper now:
        // between placement and the purgatory's recheck is the window a
        // hypervisor has over a normal guest's memory.
        auto told = hv_->notify(HvEvent::segments_placed, e.args[0], e.args[1]);
        if (!told) {
            platform_error_ = told.error();
            leave_guest(Stop::platform_error);
        }
        break;
    }
    case SVMKIT_TRACE_LOADER_UNSHARED: {
        l.unshared = LoaderUnshare{static_cast<long>(e.args[0]), e.args[1], e.args[2]};
        auto told = hv_->notify(HvEvent::loader_unshared, e.args[0], e.args[1]);
        if (!told) {
            platform_error_ = told.error();
            leave_guest(Stop::platform_error);
        }
        break;
    }
    case SVMKIT_TRACE_LOADER_REJECTED: {
        loader::LoadRefusal refusal{};
        if (memory_.read(e.args[1], std::as_writable_bytes(std::span(&refusal, 1))))
            l.refusal = refusal;
        else // a record it could not read: the error alone
            l.refusal =
                loader::LoadRefusal{e.args[0], loader::kNoIndex, 0, 0, 0, loader::kNoIndex, 0, 0};
        l.refusal->error = e.args[0];
        break;
    }
    case SVMKIT_TRACE_LOADER_PURGATORY:
        l.purgatory_ok = e.args[0] == 0;
        l.bad_segment = e.args[1];
        if (e.args[0] == 0)
            loader_jump_at_ = e.when;
        break;
    default:
        break;
    }
}

// The disk whose window holds 32-bit register `reg` at `addr`, or -1.
long Machine::disk_register(std::uint64_t addr, std::uint64_t width, std::uint64_t reg) const {
    if (width != 4 || addr < kVirtioMmioBase)
        return -1;
    const std::uint64_t index = (addr - kVirtioMmioBase) / kVirtioMmioStride;
    if (index >= queues_.size() || (addr - kVirtioMmioBase) % kVirtioMmioStride != reg)
        return -1;
    return static_cast<long>(index);
}

// A QueueNotify write to a disk's window goes straight into its kick eventfd,
// as KVM's ioeventfd does: no round trip to the hypervisor on the I/O path.
// InterruptAck clears the latched used-buffer interrupt here too (irqfd's
// other half): the hypervisor process has no interrupt state of its own.
bool Machine::notify_queue(const svmkit_regs& regs) {
    if (const long ack = disk_register(regs.r[4], regs.r[5], kVirtioMmioInterruptAck); ack >= 0) {
        queues_[static_cast<std::size_t>(ack)].interrupt &= ~static_cast<std::uint32_t>(regs.r[6]);
        return true;
    }
    const long index = disk_register(regs.r[4], regs.r[5], kVirtioMmioQueueNotify);
    if (index < 0 || regs.r[6] != 0)
        return false;
    const std::uint64_t one = 1;
    // A full counter (2^64 - 2 kicks not yet seen) still wakes the back end.
    (void)!::write(queues_[static_cast<std::size_t>(index)].kick.get(), &one, sizeof one);
    return true;
}

// InterruptStatus of a disk: the used-buffer interrupt H_CEDE latched.
bool Machine::read_interrupt_status(svmkit_regs& regs) {
    const long index = disk_register(regs.r[4], regs.r[5], kVirtioMmioInterruptStatus);
    if (index < 0)
        return false;
    regs.r[4] = queues_[static_cast<std::size_t>(index)].interrupt;
    return true;
}

// H_CEDE: idle until a back end signals a call eventfd (irqfd) or a tick
// passes; consume the signals so the next cede waits again, and latch them
// as the disk's used-buffer interrupt.
long Machine::cede() {
    constexpr int kTickMs = 10;
    std::vector<pollfd> fds;
    fds.reserve(queues_.size());
    for (const QueueFds& q : queues_)
        fds.push_back(pollfd{q.call.get(), POLLIN, 0});
    if (fds.empty()) {
        ::poll(nullptr, 0, kTickMs);
        return H_SUCCESS;
    }
    if (::poll(fds.data(), fds.size(), kTickMs) > 0)
        for (std::size_t i = 0; i < fds.size(); ++i)
            if ((fds[i].revents & POLLIN) != 0) {
                std::uint64_t count = 0;
                if (::read(fds[i].fd, &count, sizeof count) == sizeof count && count != 0)
                    queues_[i].interrupt |= 1; // VIRTIO_MMIO_INT_VRING
            }
    return H_SUCCESS;
}

long Machine::on_hcall(svmkit_regs& regs) noexcept {
    try {
        if (regs.r[3] == H_SVMKIT_TRACE) {
            record_trace(regs);
            regs.r[3] = H_SUCCESS;
            return H_SUCCESS;
        }
        if (regs.r[3] == H_SVMKIT_TIMEBASE) {
            regs.r[4] =
                static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::steady_clock::now() - origin_)
                                               .count());
            regs.r[3] = H_SUCCESS;
            return H_SUCCESS;
        }
        if (regs.r[3] == H_CEDE || (regs.r[3] == H_SVMKIT_MMIO_WRITE && notify_queue(regs)) ||
            (regs.r[3] == H_SVMKIT_MMIO_READ && read_interrupt_status(regs))) {
            const long ret = regs.r[3] == H_CEDE ? cede() : H_SUCCESS;
            regs.r[3] = static_cast<std::uint64_t>(ret);
            return ret;
        }
        auto r = hv_->hcall(regs);
        if (!r) {
            platform_error_ = r.error();
            leave_guest(Stop::platform_error);
            return H_HARDWARE;
        }
        // The hypervisor answers in r3..r12 only.
        for (int i = 4; i <= 12; ++i)
            regs.r[i] = r->regs.r[i];
        regs.r[3] = static_cast<std::uint64_t>(r->ret);
        if ((r->flags & HvReply::kExit) != 0) {
            report_.exit_status = r->exit_status;
            leave_guest(Stop::exited);
        }
        return static_cast<long>(r->ret);
    } catch (const std::exception& e) {
        platform_error_ = Error{ExitCode::io, fmt::format("hypercall: {}", e.what())};
        leave_guest(Stop::platform_error);
        return H_HARDWARE;
    }
}

std::uint64_t Machine::on_mfmsr() noexcept {
    return SVMKIT_MSR_SF | SVMKIT_MSR_LE | (uv_->secure() ? SVMKIT_MSR_S : 0);
}

Result<std::string> Machine::vcpu_path() const {
    if (!config_.vcpu_path.empty())
        return config_.vcpu_path;
    // Helpers sit together: beside a hypervisor chosen by path, so is the vCPU.
    if (!config_.hypervisor_path.empty())
        return (std::filesystem::path(config_.hypervisor_path).parent_path() / "svmkit-vcpu")
            .string();
    return default_vcpu_path();
}

// Pages [first, end) into the vCPU's page table, and the reply tells it to
// remap them: its view of guest RAM follows the ultravisor's.
void Machine::attach_remaps(VcpuProcess& vcpu, vcpu::Reply& reply, std::uint64_t first,
                            std::uint64_t end) {
    std::uint8_t* table = vcpu.page_table();
    for (std::uint64_t p = first; p < end; ++p)
        table[p] = static_cast<std::uint8_t>(memory_.state(p) == PageState::secure
                                                 ? vcpu::Backing::secure
                                                 : vcpu::Backing::hypervisor);
    reply.remap_first = first;
    reply.remap_end = end;
}

// One gate request from the vCPU (a copy, every word the guest's): its
// reply, or nullopt when the guest stops here.
std::optional<vcpu::Reply> Machine::serve(VcpuProcess& vcpu, const vcpu::Request& request,
                                          std::uint64_t stack_top) {
    svmkit_regs regs{};
    std::copy(std::begin(request.r), std::end(request.r), regs.r);
    vcpu::Reply reply;
    reply.action = static_cast<std::uint32_t>(vcpu::ReplyAction::resume);
    const std::optional<vcpu::RequestKind> kind = vcpu::request_kind(request);
    if (!kind || *kind == vcpu::RequestKind::ready) {
        illegal_gate_ =
            kind ? std::string("illegal gate use: the vCPU said it was ready a second time")
                 : fmt::format("illegal gate use: a gate request of unknown kind {}", request.kind);
        return std::nullopt;
    }
    switch (*kind) {
    case vcpu::RequestKind::ucall:
        // As on POWER, the vCPU is in the ultravisor during an ultracall: no
        // guest instruction runs while the ultravisor reads guest memory
        // (UV_ESM verifies what will run, not what a racing guest rewrote).
        if (!vcpu.freeze())
            return std::nullopt;
        reply.value = on_ucall(regs);
        vcpu.thaw();
        break;
    case vcpu::RequestKind::hcall:
        reply.value = on_hcall(regs);
        break;
    case vcpu::RequestKind::mfmsr:
        reply.value = static_cast<std::int64_t>(on_mfmsr());
        break;
    case vcpu::RequestKind::returned:
        returned_ = true;
        return std::nullopt;
    case vcpu::RequestKind::ready: // refused above
        return std::nullopt;
    }
    if (stop_ == Stop::esm_resume) {
        // Secure now: the guest resumes at the stub on a fresh stack.
        stop_ = Stop::none;
        const EsmResume& resume = *uv_->resume();
        auto pc = memory_.host_address(resume.pc);
        if (!pc) {
            platform_error_ = pc.error();
            return std::nullopt;
        }
        reply = enter_at(*pc, resume.r3, resume.r4, stack_top);
    } else if (stop_ != Stop::none) {
        return std::nullopt;
    } else {
        std::copy(std::begin(regs.r), std::end(regs.r), reply.r);
    }
    const auto [first, end] = memory_.take_remapped();
    if (first != end)
        attach_remaps(vcpu, reply, first, end);
    return reply;
}

Result<void> Machine::run() {
    if (!loaded_)
        return fail(ExitCode::usage, "nothing is loaded");
    if (ran_)
        return fail(ExitCode::usage, "the machine has run already");
    ran_ = true;
    SVM_TRY(path, vcpu_path());
    SVM_TRY(entry, memory_.host_address(report_.placed.entry));
    // The guest stack grows down from the image base; host_address() takes an
    // address inside RAM, so translate the last 16 bytes below the top.
    SVM_TRY(below_stack_top, memory_.host_address(kGuestStackTop - 16));
    const std::uint64_t stack_top = below_stack_top + 16; // 64 KiB aligned, so 16-byte aligned
    SVM_TRY(vcpu, VcpuProcess::spawn(VcpuConfig{path, memory_.hypervisor_fd(), memory_.secure_fd(),
                                                memory_.size(), config_.timeout}));

    const auto entered = std::chrono::steady_clock::now();
    // The first entry maps every page as the page table says.
    (void)memory_.take_remapped();
    vcpu::Reply first = enter_at(entry, report_.fdt, report_.placed.kbase, stack_top);
    attach_remaps(*vcpu, first, 0, memory_.page_count());
    bool ready = false;
    while (const auto request = vcpu->next_request()) {
        std::optional<vcpu::Reply> reply;
        if (ready) {
            reply = serve(*vcpu, *request, stack_top);
        } else if (request->kind == static_cast<std::uint32_t>(vcpu::RequestKind::ready)) {
            ready = true;
            reply = first;
        } else {
            illegal_gate_ = "illegal gate use: a gate request before the vCPU was ready";
        }
        if (!reply)
            break;
        vcpu->reply(*reply);
    }
    vcpu->stop();
    const auto stopped = std::chrono::steady_clock::now();
    for (const std::string_view name : namespace_names(vcpu->namespaces()))
        report_.vcpu_namespaces.emplace_back(name);

    if (platform_error_)
        return svmkit::unexpected(*platform_error_);
    // The VM is over: the hypervisor sees the final state of its memory,
    // then goes away.
    SVM_CHECK(hv_->notify(HvEvent::exit, report_.exit_status.value_or(0)));
    SVM_CHECK(collect_disk_reports());
    SVM_CHECK(hv_->stop());
    decide_outcome(vcpu->end(), vcpu->fault_report());
    finish_report(entered, stopped);
    return {};
}

// How the guest ended. What the guest did wrong comes from the kernel (the
// vCPU's wait status, the seccomp notification) and from the machine's own
// reading of the channel, never from the vCPU's word: its fault report only
// adds the address to a fault the kernel confirmed.
void Machine::decide_outcome(const VcpuEnd& end, const vcpu::FaultReport& fault) {
    BootReport& r = report_;
    if (end.timed_out) {
        r.outcome = BootOutcome::timed_out;
        r.message =
            fmt::format("the guest did not finish within {} ms; stopped", config_.timeout.count());
    } else if (end.forbidden) {
        const std::string_view name = syscall_name(end.forbidden->number);
        r.outcome = BootOutcome::guest_violation;
        r.message = fmt::format("the guest made a forbidden system call: {}{}(number {}); its "
                                "vCPU was stopped",
                                name, name.empty() ? "" : " ", end.forbidden->number);
    } else if (illegal_gate_) {
        r.outcome = BootOutcome::guest_violation;
        r.message = *illegal_gate_;
    } else if (!end.stopped_by_machine || end.signal != SIGKILL) {
        // It ended before the machine stopped it.
        if (end.signal == SIGSYS) {
            r.outcome = BootOutcome::guest_violation;
            r.message = "the guest made a system call of another ABI (x32 or i386); the kernel "
                        "killed its vCPU";
        } else if (end.signal != 0) {
            r.outcome = BootOutcome::faulted;
            r.message = fault_message(end.signal, fault);
        } else {
            r.outcome = BootOutcome::guest_violation;
            r.message = fmt::format("the vCPU exited by itself (status {})", end.exit_status);
        }
    } else if (returned_) {
        r.outcome = BootOutcome::returned;
        r.message = "guest code returned from its entry point";
    } else if (uv_->esm() && !uv_->esm()->ok()) {
        r.outcome = BootOutcome::refused;
        r.message = fmt::format("the ultravisor refused the image: {}: {}",
                                esm_failure_name(uv_->esm()->failure), uv_->esm()->message);
    } else if (stop_ == Stop::exited) {
        r.outcome = BootOutcome::exited;
    } else {
        r.outcome = BootOutcome::terminated;
        r.message = "the guest terminated the VM (UV_SVM_TERMINATE)";
    }
}

std::string Machine::fault_message(int signal, const vcpu::FaultReport& fault) const {
    std::string message = fmt::format("guest code faulted: {}", signal_name(signal));
    if (fault.signal != static_cast<std::uint32_t>(signal))
        return message; // no report, or one the kernel does not confirm
    const std::uint64_t base = SVMKIT_SIM_GUEST_VA_BASE;
    const std::uint64_t address = fault.has_address != 0 ? fault.address : 0;
    // A tampered stub can jump out of guest RAM: then the pc is no guest address.
    const bool jumped_out = !in_guest_code(fault.pc);
    message += jumped_out ? fmt::format(": it jumped to {:#x}, outside guest RAM", fault.pc)
                          : fmt::format(" at guest address {:#x}", fault.pc - base);
    const bool said = address == 0 || (jumped_out && address == fault.pc);
    if (!said && in_guest_code(address))
        message += fmt::format(" accessing guest address {:#x}", address - base);
    else if (!said)
        message += fmt::format(" accessing {:#x}, outside guest RAM", address);
    return message;
}

Result<void> Machine::collect_disk_reports() {
    for (std::size_t i = 0; i < config_.disks.size(); ++i) {
        SVM_TRY(hv, hv_->disk_report(i));
        DiskIo io;
        if (hv.counted != 0)
            io.counters = hv.counters;
        if (hv.failed != 0)
            io.failure = hv.message;
        report_.disks.push_back(std::move(io));
    }
    return {};
}

void Machine::finish_report(std::chrono::steady_clock::time_point entered,
                            std::chrono::steady_clock::time_point stopped) {
    BootReport& r = report_;
    r.console = hv_->console();
    r.shares = uv_->shares();
    r.pages_shared_at_end = memory_.count(PageState::shared);
    if (uv_->esm()) {
        r.esm = *uv_->esm();
        r.esm_return_code = uv_->esm_return_code();
    }
    // Kernel entries in order: one per stub run that reached its kernel (two
    // when a secure image's kernel, the loader, kexec'd the next image).
    std::vector<std::chrono::steady_clock::time_point> kernel_entries;
    // One KERNEL event per stub run that unpacked its kernel: two in a secure
    // kexec (the loader, then the kexec'd image's kernel).
    std::vector<KernelUnpacked> unpacked;
    for (const TraceEvent& e : events_) {
        switch (e.event) {
        case SVMKIT_TRACE_KERNEL:
            if (!unpacked.empty())
                r.initrd.reset(); // a second run: the first one's initrd was the kexec'd image
            unpacked.push_back(KernelUnpacked{e.args[0], e.args[1], e.args[2] != 0});
            break;
        case SVMKIT_TRACE_INITRD:
            r.initrd = std::pair{e.args[0], e.args[1]};
            break;
        case SVMKIT_TRACE_KERNEL_ENTRY:
            r.kernel_entry = KernelEntry{e.args[0], e.args[1], e.args[2]};
            kernel_entries.push_back(e.when);
            break;
        default:
            break;
        }
    }
    if (!unpacked.empty())
        r.kernel = unpacked.back();
    if (unpacked.size() > 1)
        r.first_kernel = unpacked.front();
    if (r.loader && r.loader->secure && !unpacked.empty()) {
        // The secure loader's own extent: where the first stub unpacked it.
        r.loader->program.start = unpacked.front().load_address;
        r.loader->program.end = unpacked.front().load_address + unpacked.front().size;
    }
    std::optional<std::chrono::steady_clock::time_point> kernel_at;
    if (!kernel_entries.empty())
        kernel_at = kernel_entries.front();
    auto stage = [&](std::string name, std::chrono::steady_clock::time_point from,
                     std::chrono::steady_clock::time_point to) {
        r.stages.push_back(BootStage{std::move(name), since(origin_, from), since(from, to)});
    };
    stage("load", origin_, loaded_at_);
    if (r.loader && !r.loader->secure) {
        // A normal guest's boot loader ran first; the stub starts at its jump.
        stage("loader", entered, loader_jump_at_.value_or(stopped));
        if (!loader_jump_at_) {
            r.total_us = since(origin_, stopped);
            return;
        }
        entered = *loader_jump_at_;
    }
    if (uv_->esm()) {
        stage("stub", entered, uv_->esm_start());
        stage("esm", uv_->esm_start(), uv_->esm_end());
        if (uv_->secure())
            stage("stub-secure", uv_->esm_end(), kernel_at.value_or(stopped));
    } else {
        stage("stub", entered, kernel_at.value_or(stopped)); // a normal VM: no ESM
    }
    if (kernel_at && r.loader && r.loader->secure) {
        // The secure image's kernel was a loader: it kexec'd the next image,
        // whose stub ran secure without UV_ESM, then that image's kernel.
        const auto next_kernel = kernel_entries.size() > 1
                                     ? std::optional{kernel_entries[1]}
                                     : std::optional<std::chrono::steady_clock::time_point>{};
        stage("loader", *kernel_at, loader_jump_at_.value_or(stopped));
        if (loader_jump_at_)
            stage("stub-kexec", *loader_jump_at_, next_kernel.value_or(stopped));
        kernel_at = loader_jump_at_ ? next_kernel : std::nullopt;
    }
    if (kernel_at)
        stage("kernel", *kernel_at, stopped);
    r.total_us = since(origin_, stopped);
}

} // namespace svmkit::platform
