// The gate channel between the svmkit process (the ultravisor and machine
// control) and the vCPU process (svmkit-vcpu, which runs guest code): one
// shared memfd both map, holding a state word both wait on with futexes, the
// request the vCPU's gate trampoline fills, the reply the machine fills, the
// vCPU's own fault report, and the page table the vCPU remaps its view of
// guest RAM from (docs/platform.md, "The vCPU process").
//
// Trust: everything the vCPU writes here is untrusted input to the svmkit
// process, which copies a request out once (read_request) and validates the
// copy. The machine never decides how the guest ended from this page: that is
// the kernel's word (waitid, seccomp notifications); a fault report only adds
// the faulting address to a message when the kernel's signal agrees.
//
// Plain layout: shared by the svmkit process and the sanitizer-free vCPU.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sys/socket.h>

namespace svmkit::platform::vcpu {

inline constexpr std::uint32_t kChannelMagic = 0x55504376; // "vCPU"
inline constexpr std::uint32_t kChannelVersion = 1;

// The state word. The vCPU moves it to `request` and wakes the machine; the
// machine moves it to `reply` and wakes the vCPU; the machine alone writes
// `gone`, and only once the vCPU is dead (so nothing can overwrite it).
enum class State : std::uint32_t { idle = 0, request = 1, reply = 2, gone = 3 };

enum class RequestKind : std::uint32_t {
    ready = 1,    // set up and locked down: waiting for the first entry
    ucall = 2,    // `sc 2`: regs
    hcall = 3,    // `sc 1`: regs
    mfmsr = 4,    // `mfmsr`
    returned = 5, // guest code returned from its entry point
};

enum class ReplyAction : std::uint32_t {
    resume = 1, // return `value` from the gate, with regs written back
    enter = 2,  // leave guest code and enter it at pc (r3..r5, stack_top)
};

// Which backing the vCPU maps a page from (the page table's bytes).
enum class Backing : std::uint8_t { hypervisor = 0, secure = 1 };

struct Request {
    std::uint32_t kind = 0;
    std::uint32_t pad = 0;
    std::uint64_t r[13] = {};
};

// The kind of a request as the machine reads it: nullopt for a kind the
// protocol does not have (an illegal gate use).
constexpr std::optional<RequestKind> request_kind(const Request& request) {
    switch (static_cast<RequestKind>(request.kind)) {
    case RequestKind::ready:
    case RequestKind::ucall:
    case RequestKind::hcall:
    case RequestKind::mfmsr:
    case RequestKind::returned:
        return static_cast<RequestKind>(request.kind);
    }
    return std::nullopt;
}

struct Reply {
    std::uint32_t action = 0;
    std::uint32_t pad = 0;
    std::int64_t value = 0; // what the gate returns (rax)
    std::uint64_t r[13] = {};
    // enter: host virtual addresses in the vCPU (guest RAM is at the same
    // fixed address in both processes).
    std::uint64_t pc = 0, stack_top = 0;
    // Pages [remap_first, remap_end) changed backing: the vCPU remaps them
    // from the page table before anything else (empty when equal).
    std::uint64_t remap_first = 0, remap_end = 0;
};

// What the vCPU's fault handler saw (untrusted: see above).
struct FaultReport {
    std::uint32_t signal = 0;
    std::int32_t code = 0;
    std::uint64_t pc = 0;
    std::uint64_t address = 0;
    std::uint32_t has_address = 0;
    std::uint32_t pad = 0;
};

// Written by the machine before the vCPU starts; read by the vCPU at setup.
struct Setup {
    std::uint32_t magic = 0;
    std::uint32_t version = 0;
    std::uint64_t memory_size = 0; // bytes of guest RAM, a multiple of 64 KiB
    std::uint64_t guest_base = 0;  // where guest RAM is mapped
};

struct alignas(64) Header {
    std::atomic<std::uint32_t> state{0};
    std::uint32_t pad = 0;
    Setup setup;
    Request request;
    Reply reply;
    FaultReport fault;
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
// The offsets the hostile-guest suite's attacks write the channel at
// (tests/data/hostile_guest/hostile_guest.c, CH_*): an attacker knows them.
static_assert(offsetof(Header, request) == 32 && offsetof(Header, reply) == 144);
static_assert(offsetof(Reply, value) == 8 && offsetof(Reply, r) == 16);

// The page table follows the header at this offset: one Backing byte per
// guest page.
inline constexpr std::size_t kPageTableOffset = 4096;
static_assert(sizeof(Header) <= kPageTableOffset);

inline constexpr std::size_t channel_size(std::uint64_t page_count) {
    return kPageTableOffset + ((page_count + 4095) & ~std::uint64_t{4095});
}

// Descriptor numbers in the vCPU (svmkit-vcpu expects exactly these).
inline constexpr int kSetupSocketFd = 3; // seqpacket: the seccomp listener goes back on it
inline constexpr int kChannelFd = 4;
inline constexpr int kHypervisorMemoryFd = 5;
inline constexpr int kSecureMemoryFd = 6;
inline constexpr int kFirstFreeFd = 7;

// The startup message the vCPU sends on the setup socket: ok (with the
// seccomp listener attached as SCM_RIGHTS) or a setup error's text.
struct StartupMessage {
    std::int32_t ok = 0;
    char error[252] = {};
};

// The startup message as one sendmsg/recvmsg: the message and room for one
// SCM_RIGHTS descriptor. Points into itself: neither copied nor moved.
struct StartupEnvelope {
    StartupMessage message;
    iovec iov{&message, sizeof message};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr header{};

    StartupEnvelope() {
        header.msg_iov = &iov;
        header.msg_iovlen = 1;
        header.msg_control = control;
        header.msg_controllen = sizeof control;
    }
    StartupEnvelope(const StartupEnvelope&) = delete;
    StartupEnvelope& operator=(const StartupEnvelope&) = delete;
};

} // namespace svmkit::platform::vcpu
