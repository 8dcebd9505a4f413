// The wire between the machine (the guest's process) and the hypervisor
// process: one SOCK_SEQPACKET socket pair, one fixed-size record per message,
// strictly request/reply (the guest's vCPU waits for the answer, as it does
// for `sc 1` on POWER).
//
// The machine sends:
//   - hcall: a hypercall the hypervisor serves (registers in, registers out);
//   - event: what the hypervisor of a real PEF system learns from the
//     ultravisor or firmware: the image is loaded (QEMU's -kernel is done),
//     ESM starts (H_SVM_INIT_START) and ends (H_SVM_INIT_DONE, or the VM is
//     terminated), pages are shared or unshared, the guest exits;
//   - disk_report: the VM is over; stop disk args[0]'s back end and say
//     what it served (answered with an HvDiskReport, not an HvReply);
//   - stop: the VM is gone; the hypervisor process exits.
// Every message gets one reply. Records are plain data of a fixed size in
// host byte order (both ends run on the same host); a record of another size
// is a protocol error.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "guest/gates.h"
#include "platform/vhost_user/blk_device.hpp"

#include <cstdint>
#include <string_view>

namespace svmkit::platform {

enum class HvMessageType : std::uint32_t { hcall = 1, event = 2, stop = 3, disk_report = 4 };

enum class HvEvent : std::uint32_t {
    none = 0,
    loaded = 1,     // firmware placed the image; the guest has not run yet
    esm_start = 2,  // UV_ESM began; no page is secure yet (H_SVM_INIT_START)
    esm_done = 3,   // UV_ESM succeeded; every page is secure (H_SVM_INIT_DONE)
    esm_failed = 4, // UV_ESM refused the image; the VM will be terminated
    shared = 5,     // args = {first pfn, pages}: now hypervisor-visible (zeroed)
    unshared = 6,   // args = {first pfn, pages}: secure again
    exit = 7,       // args = {exit status}: the guest ended the VM
    // A normal guest's loader placed a secure image's segments and recorded
    // their digests (H_SVMKIT_TRACE SVMKIT_TRACE_LOADER_PLACED); its purgatory
    // has not rechecked them yet. args = {segment count, entry}.
    segments_placed = 8,
    // A secure guest's loader called UV_UNSHARE_ALL_PAGES before its jump
    // (SVMKIT_TRACE_LOADER_UNSHARED). args = {return code, first pool base}.
    loader_unshared = 9,
};
std::string_view hv_event_name(HvEvent e);

struct HvRequest {
    HvMessageType type = HvMessageType::hcall;
    HvEvent event = HvEvent::none;
    svmkit_regs regs{};
    std::uint64_t args[2] = {0, 0};
};

struct HvReply {
    static constexpr std::uint32_t kExit = 1; // H_SVMKIT_EXIT: the VM stops
    std::int64_t ret = 0;                     // into r3 (hcall)
    svmkit_regs regs{};                       // outputs in r4..r12 (hcall)
    std::uint32_t flags = 0;
    std::uint32_t reserved = 0;
    std::uint64_t exit_status = 0; // with kExit
};

// The hypervisor process's first record, sent once before it serves any
// request: whether it started (every disk's back end up and connected),
// and if not, why, so that the machine fails with that cause (naming the
// disk) instead of a closed channel.
struct HvStartup {
    std::int32_t code = 0; // 0: started; else the ExitCode of the failure
    std::uint32_t reserved = 0;
    char message[2048] = {}; // NUL-terminated (cut to fit)
};

// The answer to disk_report: the back end has been stopped.
struct HvDiskReport {
    std::uint32_t counted = 0; // 1: `counters` are the back end's own
    std::uint32_t failed = 0;  // 1: the back end had ended before it was stopped
    vhost_user::BlkCounters counters;
    char message[1024] = {}; // with `failed`: how it ended (NUL-terminated)
};

// Sends one record; retries EINTR.
Result<void> send_record(int fd, const void* record, std::size_t size);
// Receives one record of exactly `size` bytes. A closed peer or a record of
// another size is an error naming `peer`.
Result<void> receive_record(int fd, void* record, std::size_t size, std::string_view peer);

} // namespace svmkit::platform
