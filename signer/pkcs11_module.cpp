// The PKCS#11 module svmkit loads itself, through p11-kit's <p11-kit/pkcs11.h>
// declarations of the interface: which module is configured, whether it is
// one, and which tokens it has (for messages when the engine finds no key).
#include "signer/pkcs11_internal.hpp"

#include <cstdlib>
#include <filesystem>
#include <system_error>

#include <dlfcn.h>

namespace svmkit::signer::detail {

namespace {

std::optional<std::string> from_env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0')
        return std::nullopt;
    return std::string(value);
}

// A fixed-width, blank-padded PKCS#11 string, trimmed as libp11 does.
template <std::size_t N>
std::string padded(const unsigned char (&field)[N]) {
    std::size_t len = N;
    while (len > 0 && field[len - 1] == ' ')
        --len;
    return std::string(reinterpret_cast<const char*>(field), len);
}

} // namespace

Result<std::shared_ptr<Module>> Module::open(const UriInfo& info, const Pkcs11Options& options) {
    auto module = std::shared_ptr<Module>(new Module());
    SVM_CHECK(module->locate(info, options));
    SVM_CHECK(module->load(info.display));
    return module;
}

// Which module: the option, then $SVMKIT_PKCS11_MODULE, then $PKCS11_MODULE_PATH.
Result<void> Module::locate(const UriInfo& info, const Pkcs11Options& options) {
    if (options.module) {
        given_ = *options.module;
        origin_ = "--pkcs11-module";
    } else if (auto m = from_env("SVMKIT_PKCS11_MODULE")) {
        given_ = *m;
        origin_ = "SVMKIT_PKCS11_MODULE";
    } else if (auto p = from_env("PKCS11_MODULE_PATH")) {
        given_ = *p;
        origin_ = "PKCS11_MODULE_PATH";
    } else {
        return fail(ExitCode::usage,
                    "{}: no PKCS#11 module given; pass --pkcs11-module PATH or set "
                    "SVMKIT_PKCS11_MODULE",
                    info.display);
    }
    std::error_code ec;
    auto canonical = std::filesystem::canonical(given_, ec);
    if (ec)
        return fail(ExitCode::io, "{}: PKCS#11 module {} (from {}): {}", info.display, given_,
                    origin_, ec.message());
    path_ = canonical.string();
    return {};
}

Result<void> Module::load(const std::string& display) {
    handle_ = ::dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
        const char* why = ::dlerror();
        return fail(ExitCode::io, "{}: cannot load PKCS#11 module {} (from {}): {}", display,
                    given_, origin_, why != nullptr ? why : "dlopen failed");
    }
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle_, "C_GetFunctionList"));
    if (get_list == nullptr || get_list(&functions_) != CKR_OK || functions_ == nullptr)
        return fail(ExitCode::io, "{}: {} (from {}) is not a PKCS#11 module", display, given_,
                    origin_);
    return {};
}

Module::~Module() {
    if (handle_ != nullptr)
        ::dlclose(handle_);
}

// The slots with a token present.
Result<std::vector<CK_SLOT_ID>> Module::slots(const std::string& display) const {
    std::vector<CK_SLOT_ID> slots;
    CK_RV rv = CKR_OK;
    for (int attempt = 0; attempt < 4; ++attempt) {
        CK_ULONG count = 0;
        rv = functions_->C_GetSlotList(CK_TRUE, nullptr, &count);
        if (rv != CKR_OK)
            break;
        slots.resize(count);
        rv = functions_->C_GetSlotList(CK_TRUE, slots.data(), &count);
        if (rv == CKR_OK) {
            slots.resize(count);
            break;
        }
        if (rv != CKR_BUFFER_TOO_SMALL)
            break;
    }
    if (rv != CKR_OK)
        return fail(ExitCode::io, "{}: PKCS#11 module {}: C_GetSlotList failed ({:#x})", display,
                    given_, rv);
    return slots;
}

Result<std::vector<TokenInfo>> Module::tokens(const std::string& display) const {
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = functions_->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return fail(ExitCode::io, "{}: PKCS#11 module {}: C_Initialize failed ({:#x})", display,
                    given_, rv);
    struct Finalize {
        CK_FUNCTION_LIST* functions;
        bool owned;
        ~Finalize() {
            if (owned)
                functions->C_Finalize(nullptr);
        }
    } finalize{functions_, rv == CKR_OK};

    SVM_TRY(slots, this->slots(display));
    std::vector<TokenInfo> tokens;
    for (CK_SLOT_ID slot : slots) {
        CK_TOKEN_INFO ti{};
        if (functions_->C_GetTokenInfo(slot, &ti) != CKR_OK ||
            (ti.flags & CKF_TOKEN_INITIALIZED) == 0)
            continue;
        tokens.push_back({padded(ti.label), padded(ti.manufacturerID), padded(ti.model),
                          padded(ti.serialNumber)});
    }
    return tokens;
}

bool token_matches(const UriInfo& info, const TokenInfo& token) {
    return (!info.token || *info.token == token.label) &&
           (!info.manufacturer || *info.manufacturer == token.manufacturer) &&
           (!info.serial || *info.serial == token.serial) &&
           (!info.model || *info.model == token.model);
}

std::string quoted_labels(const std::vector<TokenInfo>& tokens) {
    std::string out;
    for (const TokenInfo& t : tokens)
        out += fmt::format("{}'{}'", out.empty() ? "" : ", ", t.label);
    return out;
}

} // namespace svmkit::signer::detail
