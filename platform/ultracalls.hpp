// The simulated ultravisor as the guest sees it: what `sc 2` reaches.
//
// Numbers, arguments and return codes are those of the POWER ultravisor
// (guest/uv_abi.h; Linux arch/powerpc/include/asm/ultravisor-api.h):
//   UV_ESM(r4 = kbase, r5 = FDT)        only once, only from a non-secure guest;
//                                       on success the guest does not return
//                                       from the call but resumes at kbase
//                                       (r3 = FDT, r4 = kbase, r5 = 0), secure
//   UV_SHARE_PAGE(r4 = pfn, r5 = count)   secure guests only
//   UV_UNSHARE_PAGE(r4 = pfn, r5 = count) secure guests only
//   UV_UNSHARE_ALL_PAGES                  secure guests only
//   UV_ESMB_GET_FILE(r4 = offset, r5..r12 = name)  secure guests only: up to
//                                       64 bytes of a secret file of the
//                                       image's ibm,esm blob in r4..r11, the
//                                       count in r3 (0 at the end); any
//                                       number of calls, any offset order
//   UV_SVM_TERMINATE                      the VM stops
//   anything else                         U_FUNCTION
// Share calls from a guest that is not secure get U_PERMISSION; a page range
// outside guest RAM or pages in the wrong state get U_PARAMETER.
#pragma once

#include "base/error.hpp"
#include "guest/gates.h"
#include "platform/guest_ram.hpp"
#include "platform/hv_protocol.hpp"
#include "platform/ultravisor.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace svmkit::platform {

struct ShareRecord {
    bool share = true; // false: UV_UNSHARE_PAGE / UV_UNSHARE_ALL_PAGES
    std::uint64_t pfn = 0;
    std::uint64_t pages = 0;
    long ret = 0;
};

// Where a guest resumes after a successful UV_ESM.
struct EsmResume {
    std::uint64_t pc = 0;
    std::uint64_t r3 = 0; // FDT
    std::uint64_t r4 = 0; // kbase
};

struct UcallResult {
    bool leave_guest = false; // the guest does not return from the call (ESM resume, terminate)
};

// Invariants: secure() is true exactly after a UV_ESM that succeeded; esm()
// holds the outcome of the one UV_ESM that ran (later ones are refused
// without running); after a refused UV_ESM only UV_SVM_TERMINATE is served.
class Ultravisor {
  public:
    Ultravisor(GuestRam& memory, EsmPolicy policy)
        : memory_(memory), policy_(std::move(policy)) {}
    Ultravisor(const Ultravisor&) = delete;
    Ultravisor& operator=(const Ultravisor&) = delete;
    ~Ultravisor(); // wipes the secret files

    // Serves one ultracall; sets r3. Platform faults (I/O) are errors.
    Result<UcallResult> ucall(svmkit_regs& regs);

    // What the hypervisor of a real PEF machine learns from the ultravisor
    // (H_SVM_INIT_START / H_SVM_INIT_DONE, page sharing): esm_start before
    // any page is secured, esm_done or esm_failed after the checks, shared /
    // unshared {pfn, pages} after the pages changed. A listener error is a
    // platform fault.
    using Listener = std::function<Result<void>(HvEvent, std::uint64_t, std::uint64_t)>;
    void set_listener(Listener listener) { listener_ = std::move(listener); }

    [[nodiscard]] bool secure() const { return secure_; }
    [[nodiscard]] bool terminated() const { return terminated_; }
    [[nodiscard]] const std::optional<EsmResult>& esm() const { return esm_; }
    [[nodiscard]] long esm_return_code() const { return esm_code_; }
    [[nodiscard]] std::chrono::steady_clock::time_point esm_start() const { return esm_start_; }
    [[nodiscard]] std::chrono::steady_clock::time_point esm_end() const { return esm_end_; }
    [[nodiscard]] const std::optional<EsmResume>& resume() const { return resume_; }
    [[nodiscard]] const std::vector<ShareRecord>& shares() const { return shares_; }

  private:
    Result<UcallResult> esm(svmkit_regs& regs);
    Result<long> share(bool share, std::uint64_t pfn, std::uint64_t count);
    long get_file(svmkit_regs& regs) const;
    Result<void> tell(HvEvent e, std::uint64_t a0 = 0, std::uint64_t a1 = 0) {
        return listener_ ? listener_(e, a0, a1) : Result<void>{};
    }

    GuestRam& memory_;
    EsmPolicy policy_;
    bool secure_ = false;
    bool terminated_ = false;
    std::optional<EsmResult> esm_;
    long esm_code_ = 0;
    std::chrono::steady_clock::time_point esm_start_, esm_end_;
    std::optional<EsmResume> resume_;
    std::vector<ShareRecord> shares_;
    Listener listener_;
    // The secret files of the image's ibm,esm blob, decrypted at UV_ESM
    // (platform/esm_check.hpp); only UV_ESMB_GET_FILE reads them.
    std::vector<format::EsmSecretFile> esm_files_;
};

} // namespace svmkit::platform
