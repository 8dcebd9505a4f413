#include "platform/hypervisor.hpp"

#include "guest/uv_abi.h"

namespace svmkit::platform {

namespace {

// A guest printing this much is broken; the console keeps the first part.
constexpr std::size_t kMaxConsole = 16u << 20;

} // namespace

HcallResult InProcessHypervisor::put_term_char(const svmkit_regs& regs) {
    // PAPR: r4 = vterm, r5 = length (<= 16), the bytes packed big-endian in r6, r7.
    if (regs.r[4] != SVMKIT_VTERM)
        return {H_PARAMETER, {}};
    if (regs.r[5] > 16)
        return {H_PARAMETER, {}};
    char bytes[16];
    for (std::size_t i = 0; i < regs.r[5]; ++i)
        bytes[i] = static_cast<char>((regs.r[6 + i / 8] >> (56 - 8 * (i % 8))) & 0xff);
    const std::size_t n = regs.r[5];
    if (echo_ != nullptr) {
        std::fwrite(bytes, 1, n, echo_);
        std::fflush(echo_);
    }
    if (console_.size() < kMaxConsole)
        console_.append(bytes, n);
    return {H_SUCCESS, {}};
}

HcallResult InProcessHypervisor::hcall(svmkit_regs& regs) {
    switch (regs.r[3]) {
    case H_PUT_TERM_CHAR:
        return put_term_char(regs);
    case H_SVMKIT_EXIT:
        return {H_SUCCESS, regs.r[4]};
    case H_SVMKIT_TRACE: {
        TraceEvent e;
        e.event = regs.r[4];
        e.args[0] = regs.r[5];
        e.args[1] = regs.r[6];
        e.args[2] = regs.r[7];
        e.when = std::chrono::steady_clock::now();
        if (events_.size() < 1024)
            events_.push_back(e);
        return {H_SUCCESS, {}};
    }
    default:
        return {H_FUNCTION, {}};
    }
}

} // namespace svmkit::platform
