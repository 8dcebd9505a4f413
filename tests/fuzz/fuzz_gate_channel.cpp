// Fuzz target: the gate channel's requests as the machine reads them
// (platform/vcpu/channel.hpp), with the guest as the fuzzer. Every word of a
// request is the guest's: its kind, and the registers an ultracall hands the
// ultravisor (UV_ESM, sharing and unsharing pages, UV_ESMB_GET_FILE, ...).
//
// Input: a sequence of vcpu::Request records (a short last record is
// zero-filled). Each is classified as the machine does (request_kind), and an
// ultracall goes to a real Ultravisor over 16 MiB of real guest memory,
// followed by the remap range the machine would send the vCPU.
//
// Oracle, beyond no crash / no UB / no leak: an unknown kind is refused;
// every remap range lies inside guest RAM; the page states always add up to
// the page count; a secure guest never has a normal page.
#include "guest/uv_abi.h"
#include "platform/guest_memory.hpp"
#include "platform/ultracalls.hpp"
#include "platform/vcpu/channel.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>

using namespace svmkit::platform;

namespace {

constexpr std::uint64_t kMemory = 16ull << 20;

void check(bool ok) {
    if (!ok)
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto memory = GuestMemory::create(kMemory);
    if (!memory)
        std::abort(); // the fixed guest address is taken: a harness bug
    Ultravisor uv(*memory, EsmPolicy{});
    for (std::size_t at = 0; at < size; at += sizeof(vcpu::Request)) {
        vcpu::Request request;
        std::memcpy(&request, data + at, std::min(sizeof request, size - at));
        const auto kind = vcpu::request_kind(request);
        if (!kind) {
            check(request.kind < 1 || request.kind > 5);
            continue;
        }
        if (*kind != vcpu::RequestKind::ucall)
            continue;
        svmkit_regs regs{};
        std::memcpy(regs.r, request.r, sizeof regs.r);
        (void)uv.ucall(regs);
        const auto [first, end] = memory->take_remapped();
        check(first <= end && end <= memory->page_count());
        const std::uint64_t counted = memory->count(PageState::normal) +
                                      memory->count(PageState::secure) +
                                      memory->count(PageState::shared);
        check(counted == memory->page_count());
        check(!uv.secure() || memory->count(PageState::normal) == 0);
        if (uv.terminated())
            break;
    }
    return 0;
}
