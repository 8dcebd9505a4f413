#include "platform/ultracalls.hpp"

#include "base/checked.hpp"
#include "guest/uv_abi.h"

#include <openssl/crypto.h>

namespace svmkit::platform {

namespace {

constexpr std::size_t kMaxShareRecords = 4096;

} // namespace

Result<UcallResult> Ultravisor::esm(svmkit_regs& regs) {
    if (esm_ || secure_) {
        // ESM runs once: a second call (secure or after a refusal) is refused
        // without touching memory.
        regs.r[3] = static_cast<std::uint64_t>(U_PERMISSION);
        return UcallResult{};
    }
    const std::uint64_t kbase = regs.r[4];
    const std::uint64_t fdt = regs.r[5];
    SVM_CHECK(tell(HvEvent::esm_start));
    esm_start_ = std::chrono::steady_clock::now();
    SVM_TRY(result, enter_secure_mode(memory_, kbase, fdt, policy_));
    esm_files_ = std::move(result.esm_files);
    result.esm_files.clear();
    esm_end_ = std::chrono::steady_clock::now();
    SVM_CHECK(tell(result.ok() ? HvEvent::esm_done : HvEvent::esm_failed));
    esm_code_ = esm_failure_code(result.failure);
    const bool ok = result.ok();
    const std::uint64_t resume_pc = result.resume_pc;
    esm_ = std::move(result);
    if (!ok) {
        // As the real ultravisor: an error code back to the guest, which must
        // report it and stop; it gets nothing else from here on.
        regs.r[3] = static_cast<std::uint64_t>(esm_code_);
        return UcallResult{};
    }
    secure_ = true;
    resume_ = EsmResume{resume_pc, fdt, kbase};
    return UcallResult{true};
}

Result<long> Ultravisor::share(bool do_share, std::uint64_t pfn, std::uint64_t count) {
    if (!secure_)
        return U_PERMISSION;
    auto end = checked_add(pfn, count);
    if (count == 0 || !end || *end > memory_.page_count())
        return U_PARAMETER;
    const PageState from = do_share ? PageState::secure : PageState::shared;
    for (std::uint64_t p = pfn; p < *end; ++p)
        if (memory_.state(p) != from)
            return U_PARAMETER;
    // The pages were checked: a failure now is the platform's (I/O), not the guest's.
    SVM_CHECK(do_share ? memory_.share(pfn, count) : memory_.unshare(pfn, count));
    SVM_CHECK(tell(do_share ? HvEvent::shared : HvEvent::unshared, pfn, count));
    return U_SUCCESS;
}

Ultravisor::~Ultravisor() {
    for (auto& f : esm_files_)
        OPENSSL_cleanse(f.data.data(), f.data.size());
}

long Ultravisor::get_file(svmkit_regs& regs) const {
    if (!secure_)
        return U_PERMISSION;
    std::uint8_t name_bytes[UV_ESMB_NAME_MAX];
    svmkit_uv_unpack_bytes(&regs.r[5], UV_ESMB_NAME_MAX / 8, name_bytes);
    std::size_t len = 0;
    while (len < sizeof name_bytes && name_bytes[len] != 0)
        ++len;
    const std::string name(reinterpret_cast<const char*>(name_bytes), len);
    const format::EsmSecretFile* file = nullptr;
    for (const auto& f : esm_files_)
        if (f.name == name)
            file = &f;
    const std::uint64_t offset = regs.r[4];
    if (file == nullptr || offset > file->data.size())
        return U_PARAMETER;
    const std::uint64_t count = std::min<std::uint64_t>(UV_ESMB_CHUNK, file->data.size() - offset);
    svmkit_uv_pack_bytes(reinterpret_cast<const std::uint8_t*>(file->data.data()) + offset, count,
                         &regs.r[4], UV_ESMB_CHUNK / 8);
    return static_cast<long>(count);
}

Result<UcallResult> Ultravisor::ucall(svmkit_regs& regs) {
    const std::uint64_t number = regs.r[3];
    if (number == UV_SVM_TERMINATE) {
        terminated_ = true;
        regs.r[3] = U_SUCCESS;
        return UcallResult{true};
    }
    if (esm_ && !esm_->ok()) {
        regs.r[3] = static_cast<std::uint64_t>(U_PERMISSION);
        return UcallResult{};
    }
    long ret = U_FUNCTION;
    switch (number) {
    case UV_ESM:
        return esm(regs);
    case UV_SHARE_PAGE:
    case UV_UNSHARE_PAGE: {
        const bool do_share = number == UV_SHARE_PAGE;
        SVM_TRY(r, share(do_share, regs.r[4], regs.r[5]));
        ret = r;
        if (shares_.size() < kMaxShareRecords)
            shares_.push_back(ShareRecord{do_share, regs.r[4], regs.r[5], ret});
        break;
    }
    case UV_UNSHARE_ALL_PAGES: {
        if (!secure_) {
            ret = U_PERMISSION;
            break;
        }
        ret = U_SUCCESS;
        // Unshare every run of shared pages.
        for (std::uint64_t p = 0; p < memory_.page_count() && ret == U_SUCCESS;) {
            if (memory_.state(p) != PageState::shared) {
                ++p;
                continue;
            }
            std::uint64_t n = 0;
            while (p + n < memory_.page_count() && memory_.state(p + n) == PageState::shared)
                ++n;
            SVM_TRY(r, share(false, p, n));
            ret = r;
            if (shares_.size() < kMaxShareRecords)
                shares_.push_back(ShareRecord{false, p, n, ret});
            p += n;
        }
        break;
    }
    case UV_ESMB_GET_FILE:
        ret = get_file(regs);
        break;
    default:
        break;
    }
    regs.r[3] = static_cast<std::uint64_t>(ret);
    return UcallResult{};
}

} // namespace svmkit::platform
