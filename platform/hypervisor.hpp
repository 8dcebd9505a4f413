// The hypervisor as the guest sees it: what `sc 1` reaches.
//
// The machine forwards every hypercall to a Hypervisor. For now the
// hypervisor is served inside the machine process (InProcessHypervisor: the
// console and the platform's own hypercalls); a hypervisor in a separate
// process with vhost-user device back ends replaces it behind this interface
// by forwarding the registers. It gets registers only, never guest memory:
// whatever it may see of the guest it must read from hypervisor-visible
// memory like any hypervisor.
#pragma once

#include "guest/gates.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::platform {

struct HcallResult {
    long ret = 0;                             // into r3
    std::optional<std::uint64_t> exit_status; // H_SVMKIT_EXIT: the VM stops with this status
};

class Hypervisor {
  public:
    virtual ~Hypervisor() = default;
    // Serves one hypercall: r3 = number, r4..r12 = arguments; outputs go into
    // `regs`, the return code into the result.
    virtual HcallResult hcall(svmkit_regs& regs) = 0;
};

// H_SVMKIT_TRACE events as the report shows them.
struct TraceEvent {
    std::uint64_t event = 0;
    std::uint64_t args[3] = {0, 0, 0}; // r5..r7
    std::chrono::steady_clock::time_point when;
};

// Serves H_PUT_TERM_CHAR (vterm 0), H_SVMKIT_EXIT and H_SVMKIT_TRACE; every
// other hypercall gets H_FUNCTION.
class InProcessHypervisor final : public Hypervisor {
  public:
    // `echo`: where console output streams as it comes (nullptr: nowhere).
    explicit InProcessHypervisor(std::FILE* echo) : echo_(echo) {}
    HcallResult hcall(svmkit_regs& regs) override;

    [[nodiscard]] const std::string& console() const { return console_; }
    [[nodiscard]] const std::vector<TraceEvent>& events() const { return events_; }

  private:
    HcallResult put_term_char(const svmkit_regs& regs);

    std::FILE* echo_;
    std::string console_; // everything the guest printed
    std::vector<TraceEvent> events_;
};

} // namespace svmkit::platform
