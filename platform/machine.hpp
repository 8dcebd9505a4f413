// The simulated machine: guest RAM, firmware-style loading of a secure image,
// and running its guest code natively in a sandboxed vCPU process
// (svmkit-vcpu, platform/vcpu/) with the ultravisor (here, in the svmkit
// process) and the hypervisor (a process of its own) behind the gates
// (guest/gates.h) and the gate channel (platform/vcpu/channel.hpp).
//
// Boot sequence (docs/platform.md):
//   1. firmware: the image's loaded sections at SVMKIT_IMAGE_BASE (as QEMU's
//      -kernel would), a device tree at kFirmwareFdtAddress, a stack below the
//      image; both recorded in the FDT's /memreserve/ table;
//   2. the stub is entered kexec-style: r3 = FDT, r4 = kbase, r5 = 0 (there is
//      no Open Firmware on this platform);
//   3. ultracalls and hypercalls are served until the guest exits
//      (H_SVMKIT_EXIT), the VM is terminated (UV_SVM_TERMINATE), or guest
//      code faults or breaks the sandbox's rules; a successful UV_ESM
//      re-enters the guest at the stub on a fresh stack (r3 = FDT, r4 =
//      kbase, r5 = 0), now secure.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "format/image_reader.hpp"
#include "loader/boot_layout.h"
#include "platform/block_backend.hpp"
#include "platform/guest_memory.hpp"
#include "platform/guest_program.hpp"
#include "platform/hypervisor.hpp"
#include "platform/image_loader.hpp"
#include "platform/ultracalls.hpp"
#include "platform/ultravisor.hpp"
#include "platform/vcpu/channel.hpp"
#include "platform/vcpu_process.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::platform {

inline constexpr std::uint64_t kDefaultMemorySize = 1ull << 30;
// Firmware placement (guest-physical), below the image base.
inline constexpr std::uint64_t kFirmwareFdtAddress = 0x3e00000;
inline constexpr std::uint64_t kGuestStackBase = 0x3f00000;
inline constexpr std::uint64_t kGuestStackTop = 0x4000000; // == SVMKIT_IMAGE_BASE

struct MachineConfig {
    std::uint64_t memory_size = kDefaultMemorySize;
    EsmPolicy policy;
    std::FILE* console_echo = nullptr; // where the guest console streams, as it comes
    unsigned virtio_mmio_nodes = 0;    // placeholder virtio nodes in the FDT (tests)
    // Stop a guest that has not finished after this long (0: never).
    std::chrono::milliseconds timeout{0};
    // Time zero of the report's stage timings (default: when the machine is created).
    std::optional<std::chrono::steady_clock::time_point> origin;
    // The hypervisor process: its executable (empty: default_hypervisor_path())
    // and the test hooks it runs (platform/hv_hooks.hpp), logging to
    // hv_hook_log_fd (borrowed; -1: no log).
    std::string hypervisor_path;
    std::vector<std::string> hv_hooks;
    int hv_hook_log_fd = -1;
    // virtio-blk disks, each served by a vhost-user back end the hypervisor
    // starts (svmkit-vhost-blk at vhost_blk_path, empty: beside svmkit; or
    // qemu-storage-daemon). They take the first virtio-mmio windows.
    std::vector<BlockBackendSpec> disks;
    std::string vhost_blk_path;
    // svmkit-vcpu, the process guest code runs in. Empty: beside
    // hypervisor_path when that is set, else default_vcpu_path().
    std::string vcpu_path;
};

enum class BootOutcome {
    exited,     // H_SVMKIT_EXIT with a status
    refused,    // UV_ESM refused the image; the guest then stopped
    terminated, // UV_SVM_TERMINATE (or a stop) without a refused ESM
    faulted,    // guest code crashed (a trap, a bad access)
    returned,   // guest code returned from its entry point
    timed_out,  // the guest ran longer than MachineConfig::timeout
    // The guest broke the sandbox's rules: a forbidden system call (the
    // kernel's report), a call of another ABI, an illegal gate request.
    guest_violation,
};
std::string_view boot_outcome_name(BootOutcome o);

// H_SVMKIT_TRACE events as the report shows them (served by the machine
// itself: they are the platform's boot report, not the hypervisor's business).
struct TraceEvent {
    std::uint64_t event = 0;
    std::uint64_t args[3] = {0, 0, 0}; // r5..r7
    std::chrono::steady_clock::time_point when;
};

struct BootStage {
    std::string name;
    std::uint64_t start_us = 0; // since the origin
    std::uint64_t duration_us = 0;
};

struct KernelEntry {
    std::uint64_t entry = 0; // guest-physical
    std::uint64_t fdt = 0;
    std::uint64_t stack_top = 0;
};

struct KernelUnpacked {
    std::uint64_t load_address = 0;
    std::uint64_t size = 0;
    bool inflated = false;
};

// Booting a normal guest program, the boot loader (docs/loader-boot.md),
// instead of a secure image: it loads the image itself, kexec-style from a
// buffer the firmware placed like an initrd, or grub-style from a disk.
struct NormalBootSpec {
    std::string program;     // the loader's ELF; empty: default_boot_loader_path()
    std::string cmdline;     // the platform command line: /chosen/bootargs
    std::string kexec_image; // a file placed in RAM like an initrd; empty: none
};

struct LoaderSegmentRecord {
    std::uint64_t address = 0;
    std::uint64_t size = 0; // memory size
    std::array<std::uint8_t, 32> sha256{};
};

// The loader stage of the report: what the firmware gave the loader, then
// what the loader reported (H_SVMKIT_TRACE SVMKIT_TRACE_LOADER_*).
struct LoaderUnshare {
    long return_code = 0;                       // of UV_UNSHARE_ALL_PAGES
    std::uint64_t pool_base = 0, pool_size = 0; // the first pool its FDT named (0: none)
};

// The boot loader's stage. Either the machine booted it as a normal guest
// (load_normal: program, cmdline, kexec_buffer set), or it ran as the kernel
// of a secure image and kexec'd the next one (secure: its first trace made
// this report; program and kexec_buffer stay empty).
struct LoaderReport {
    bool secure = false;
    PlacedProgram program;
    std::string cmdline;
    std::optional<std::pair<std::uint64_t, std::uint64_t>> kexec_buffer; // [start, end)
    std::uint64_t source = 0; // SVMKIT_LOADER_SOURCE_*, 0 until the loader has an image
    std::uint64_t image_gpa = 0, image_size = 0;
    std::optional<std::uint64_t> entries; // boot menu entries (grub-style)
    std::uint64_t chosen = 0;
    std::string chosen_name;
    std::vector<LoaderSegmentRecord> segments;
    bool placed = false; // every segment placed and its digest recorded
    std::uint64_t entry = 0, kbase = 0;
    std::optional<bool> purgatory_ok; // the recheck right before the jump
    std::uint64_t bad_segment = 0;
    std::optional<LoaderUnshare> unshared; // secure: before the purgatory's recheck
    // The loader refused the image: the error, the segment and the range it
    // hits, as the loader reported them (SVMKIT_TRACE_LOADER_REJECTED).
    std::optional<loader::LoadRefusal> refusal;
};

// What one disk's back end served, collected when the VM is over (in the
// order of MachineConfig::disks).
struct DiskIo {
    // The back end's own counters; nullopt when it keeps none
    // (qemu-storage-daemon's vhost-user-blk export).
    std::optional<vhost_user::BlkCounters> counters;
    std::string failure; // set when the back end ended before the VM did: how
};

struct BootReport {
    std::string image;
    // Which machine ran it: the simulated PEF machine, or QEMU pseries with
    // the ultravisor attached (platform/qemu/qemu_boot.hpp).
    std::string platform = "simulated PEF machine";
    std::uint64_t memory_size = 0;
    std::vector<BootStage> stages;
    // Load.
    PlacedImage placed;
    std::uint64_t fdt = 0;
    std::uint64_t stack_base = 0, stack_top = 0;
    // ESM (when the guest called it).
    std::optional<EsmResult> esm;
    long esm_return_code = 0;
    // Pages shared and unshared, in call order.
    std::vector<ShareRecord> shares;
    std::uint64_t pages_shared_at_end = 0;
    // What the stub reported (H_SVMKIT_TRACE).
    // The last stub run's kernel, initrd and entry: the kernel that ran last.
    std::optional<KernelUnpacked> kernel;
    std::optional<std::pair<std::uint64_t, std::uint64_t>> initrd; // [start, end)
    std::optional<KernelEntry> kernel_entry;
    // A secure kexec (loader->secure): what the first stub run unpacked, the
    // loader that then kexec'd the image `kernel` comes from.
    std::optional<KernelUnpacked> first_kernel;
    // A normal guest's boot loader (load_normal()).
    std::optional<LoaderReport> loader;
    // How it ended.
    BootOutcome outcome = BootOutcome::returned;
    std::optional<std::uint64_t> exit_status;
    std::string message; // why it ended, for everything but a clean exit
    std::uint64_t total_us = 0;
    std::string console;
    std::vector<DiskIo> disks; // one per MachineConfig::disks
    // The new namespaces the vCPU ran in, as the clone that started it used
    // them ("user", "pid", "net", "mount", "ipc", "uts"); empty: none (the
    // seccomp filter and the limits held without them).
    std::vector<std::string> vcpu_namespaces;
};

class Machine {
  public:
    static Result<std::unique_ptr<Machine>> create(MachineConfig config);
    ~Machine();
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;

    // Firmware: places the image and the FDT. Once, before run().
    Result<void> load(const format::SecureImage& image);
    // Firmware for a normal guest: places the boot loader program, the FDT
    // (bootargs, and the kexec image's range as linux,initrd-start/end) and
    // the kexec image at the top of RAM. Once, before run(), instead of load().
    Result<void> load_normal(const NormalBootSpec& spec);
    // Runs the guest until the VM stops. Errors are platform faults; how the
    // guest ended (including refusals) is in report().
    Result<void> run();

    [[nodiscard]] const BootReport& report() const { return report_; }
    GuestMemory& memory() { return memory_; }

  private:
    Machine(MachineConfig config, GuestMemory memory);
    Result<void> start_hypervisor();
    Result<std::string> vcpu_path() const;
    std::optional<vcpu::Reply> serve(VcpuProcess& vcpu, const vcpu::Request& request,
                                     std::uint64_t stack_top);
    void attach_remaps(VcpuProcess& vcpu, vcpu::Reply& reply, std::uint64_t first,
                       std::uint64_t end);
    void decide_outcome(const VcpuEnd& end, const vcpu::FaultReport& fault);
    std::string fault_message(int signal, const vcpu::FaultReport& fault) const;
    [[nodiscard]] bool in_guest_code(std::uint64_t host_address) const;
    // Gate handlers, on the machine's thread, with a copy of the guest's registers.
    long on_ucall(svmkit_regs& regs) noexcept;
    long on_hcall(svmkit_regs& regs) noexcept;
    std::uint64_t on_mfmsr() noexcept;
    bool notify_queue(const svmkit_regs& regs);
    bool read_interrupt_status(svmkit_regs& regs);
    long disk_register(std::uint64_t addr, std::uint64_t width, std::uint64_t reg) const;
    long cede();
    void record_trace(const svmkit_regs& regs);
    void record_loader_trace(const TraceEvent& e);
    enum class Stop { none, esm_resume, exited, terminated, platform_error };
    void leave_guest(Stop why) noexcept;
    // Each disk's back end, stopped: what it served (report_.disks).
    Result<void> collect_disk_reports();
    void finish_report(std::chrono::steady_clock::time_point entered,
                       std::chrono::steady_clock::time_point stopped);

    MachineConfig config_;
    GuestMemory memory_;
    std::chrono::steady_clock::time_point origin_;
    std::chrono::steady_clock::time_point loaded_at_;
    bool loaded_ = false;
    std::unique_ptr<Ultravisor> uv_;
    std::unique_ptr<HypervisorProcess> hv_;
    std::vector<TraceEvent> events_; // H_SVMKIT_TRACE, in order (bounded)
    // When the loader's purgatory jumped to the stub (normal-guest boot).
    std::optional<std::chrono::steady_clock::time_point> loader_jump_at_;
    // Per disk: its request queue's kick and call eventfds (ioeventfd and
    // irqfd: the back end reads kicks and writes calls directly), and the
    // used-buffer interrupt a call latched (InterruptStatus bit 0) until the
    // driver acknowledges it.
    struct QueueFds {
        UniqueFd kick, call;
        std::uint32_t interrupt = 0;
    };
    std::vector<QueueFds> queues_;
    Stop stop_ = Stop::none;
    std::optional<Error> platform_error_;
    bool ran_ = false;
    bool returned_ = false;                   // the vCPU said guest code returned
    std::optional<std::string> illegal_gate_; // what the machine read that broke the protocol
    BootReport report_;
};

} // namespace svmkit::platform
