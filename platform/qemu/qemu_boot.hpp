// Booting a ppc64le secure image on QEMU's pseries machine (TCG, POWER9)
// with svmkit's ultravisor attached (attached_ultravisor.hpp): the driver.
//
// Two entries, as on the simulated machine:
//   - firmware-style: SLOF loads the image given with -kernel and enters it
//     with r5 = the Open Firmware client interface;
//   - kexec: a first-stage kernel and initramfs (a normal guest) boot, and
//     the initramfs's /init kexecs the image, which svmkit adds to that
//     initramfs as /svmkit-kexec.img (an uncompressed newc archive appended
//     to the one given: Linux unpacks every archive of the initrd in turn).
//
// QEMU runs as a child that dies with svmkit (PR_SET_PDEATHSIG), with
// -sandbox on (no new privileges, no spawning, no obsolete or resource
// system calls), no network, no disk, no monitor; its gdbstub and console
// are unix sockets and its RAM a file, all in a directory only svmkit's
// user can enter (private_dir.hpp), removed as soon as both ends are
// connected.
#pragma once

#include "base/error.hpp"
#include "platform/machine.hpp"
#include "platform/ultravisor.hpp"

#include <chrono>
#include <cstdio>
#include <string>

namespace svmkit::platform::qemu {

struct QemuConfig {
    std::uint64_t memory_size = 1ull << 30;
    unsigned cpus = 1;
    EsmPolicy policy;
    std::FILE* console_echo = nullptr; // where the console streams (null: nowhere)
    std::chrono::seconds timeout{60};  // 0: none
    std::chrono::steady_clock::time_point origin = std::chrono::steady_clock::now();
    std::string qemu = "qemu-system-ppc64"; // searched in PATH
};

struct QemuBootSpec {
    std::string image; // the secure image
    // kexec: the first stage (both set) instead of SLOF loading the image.
    std::string first_stage_kernel;
    std::string first_stage_initrd;
    std::string first_stage_cmdline = "console=hvc0";
};

// The QEMU command line (without the program name's PATH search).
struct QemuPaths {
    std::string ram, gdb_socket, console_socket, kernel, initrd;
};
std::vector<std::string> qemu_command(const QemuConfig& config, const QemuPaths& paths,
                                      const std::string& append);

// Boots and reports. Errors are svmkit's or QEMU's failures (ExitCode::io,
// ExitCode::qemu_failed); how the guest ended is in the report.
Result<BootReport> boot_on_qemu(QemuConfig config, const QemuBootSpec& spec);

} // namespace svmkit::platform::qemu
