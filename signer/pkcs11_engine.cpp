// Private keys in PKCS#11 tokens, used through the OpenSSL "pkcs11" engine
// (libp11 0.4.12's engine, packaged as libengine-pkcs11-openssl; Debian 12
// has no OpenSSL 3 pkcs11 provider). The private key never leaves the token:
// OpenSSL computes the digest, the token signs it. Signing goes through the
// engine's EVP_PKEY methods (token_pkey_ctx), so the token applies RSA-PSS
// itself (CKM_RSA_PKCS_PSS) where it supports that; otherwise libp11 falls
// back to software PSS padding and a raw RSA operation (CKM_RSA_X_509).
//
// The engine instance. svmkit loads the engine library through OpenSSL's
// "dynamic" engine without adding it to OpenSSL's engine list, so its
// settings (module, PIN, a UI method that never prompts, QUIET) are its own.
// OpenSSL binds an engine library to one live ENGINE at a time and libp11
// drives one PKCS#11 module per ENGINE, so there is one instance, shared by
// every PrivateKey loaded through it (PrivateKey::token_session_); keys from
// two modules cannot be held at once. When the last such key goes, the
// instance finishes: libp11 closes its sessions, calls C_Finalize (which also
// logs out) and unloads the module. Two libp11 0.4.12 quirks are handled
// here: it caches each EVP_PKEY it returns and ties it to the engine (a
// reference cycle, broken in load_pkcs11); it registers error strings and
// methods that OpenSSL keeps pointers to (so the library stays loaded, see
// engine_library).
//
// Errors. libp11 reports little: a missing token and a missing key both end
// as "object not found". A wrong PIN is recognised by the PKCS#11 return code
// that libp11 puts on the OpenSSL error queue; a missing PIN by our UI method
// being asked for one; the rest by asking the module itself (C_GetSlotList,
// C_GetTokenInfo) which tokens it has. Exit codes (see PrivateKey::load):
// usage for what the caller fixes in options or environment (no module, a
// pin-value, no PIN, an unset PIN variable, an unsupported or ambiguous URI);
// io for what cannot be read or loaded (engine, module, pin-source file);
// malformed for a token that lacks what the URI names or refuses it (no such
// token or key, PIN rejected or locked), as for a key file that is not a key
// or has a wrong passphrase.
//
// The URI and the PIN: pkcs11_uri.cpp; the module and its tokens:
// pkcs11_module.cpp.
//
// The ENGINE API is deprecated in OpenSSL 3.0 but is the only PKCS#11 route
// available; the deprecation warnings are silenced for this file only.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "signer/pkcs11_internal.hpp"

#include "signer/openssl_util.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <dlfcn.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ui.h>
#include <openssl/x509.h>

namespace svmkit::signer {

namespace {

using detail::ErrorQueueGuard;
using detail::Module;
using detail::object_description;
using detail::openssl_reason;
using detail::Pin;
using detail::quoted_labels;
using detail::token_description;
using detail::token_matches;
using detail::TokenInfo;
using detail::UriInfo;

// ---- the engine ----------------------------------------------------------------------

// A UI method that never prompts: libp11 asks it for a PIN only when the token
// needs one and none was given, which it records. It lives for the whole
// process (engine instances keep a pointer to it).
struct UiState {
    bool asked = false;
};

UI_METHOD* refusing_ui() {
    static UI_METHOD* const method = [] {
        UI_METHOD* m = UI_create_method("svmkit (never prompts)");
        if (m == nullptr)
            throw std::bad_alloc();
        UI_method_set_reader(m, [](UI* ui, UI_STRING* uis) -> int {
            auto type = UI_get_string_type(uis);
            if (type != UIT_PROMPT && type != UIT_VERIFY)
                return 1;
            if (auto* state = static_cast<UiState*>(UI_get0_user_data(ui)))
                state->asked = true;
            return -1; // cancelled
        });
        UI_method_set_writer(m, [](UI*, UI_STRING*) -> int { return 1; });
        return m;
    }();
    return method;
}

// Where OpenSSL looks for engines: $OPENSSL_ENGINES, else its built-in
// ENGINESDIR (`openssl version -e`).
std::string engines_dir() {
    const char* env = std::getenv("OPENSSL_ENGINES");
    if (env != nullptr && *env != '\0')
        return env;
    std::string_view text = OpenSSL_version(OPENSSL_ENGINES_DIR); // ENGINESDIR: "/usr/..."
    std::size_t first = text.find('"');
    std::size_t last = text.rfind('"');
    if (first == std::string_view::npos || last <= first)
        return {};
    return std::string(text.substr(first + 1, last - first - 1));
}

// Finds the engine library and keeps it loaded for the rest of the process
// (RTLD_NODELETE): libp11 registers error strings (never unregistered) and
// keeps RSA/EC/EVP_PKEY methods in statics that OpenSSL holds pointers to;
// unloading it with the last engine instance would leave OpenSSL with
// dangling pointers.
Result<std::string> engine_library(const std::string& display) {
    static std::mutex mutex;
    static std::vector<std::string> pinned;
    std::string dir = engines_dir();
    std::string path = (dir.empty() ? std::string(".") : dir) + "/pkcs11.so";
    std::lock_guard lock(mutex);
    if (std::find(pinned.begin(), pinned.end(), path) != pinned.end())
        return path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        return fail(ExitCode::io,
                    "{}: the OpenSSL pkcs11 engine is not installed ({} does not exist); install "
                    "libengine-pkcs11-openssl",
                    display, path);
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (handle == nullptr) {
        const char* why = ::dlerror();
        return fail(ExitCode::io, "{}: cannot load the OpenSSL pkcs11 engine {}: {}", display, path,
                    why != nullptr ? why : "dlopen failed");
    }
    ::dlclose(handle); // RTLD_NODELETE keeps it loaded
    pinned.push_back(path);
    return path;
}

// One engine instance bound to one PKCS#11 module. Owns a structural and a
// functional reference to the ENGINE; finishing the last functional reference
// makes libp11 close its sessions, C_Finalize and unload the module.
class EngineSession {
  public:
    explicit EngineSession(std::shared_ptr<Module> module) : module_(std::move(module)) {}
    EngineSession(const EngineSession&) = delete;
    EngineSession& operator=(const EngineSession&) = delete;
    ~EngineSession() {
        if (initialised_)
            ENGINE_finish(engine_);
        if (engine_ != nullptr)
            ENGINE_free(engine_);
    }

    Result<void> start(const std::string& library, const std::string& display) {
        engine_ = ENGINE_by_id("dynamic"); // a fresh copy on each call
        if (engine_ == nullptr)
            return fail(ExitCode::io, "{}: OpenSSL has no dynamic engine loader: {}", display,
                        openssl_reason());
        if (ENGINE_ctrl_cmd_string(engine_, "SO_PATH", library.c_str(), 0) != 1 ||
            ENGINE_ctrl_cmd_string(engine_, "ID", "pkcs11", 0) != 1 ||
            ENGINE_ctrl_cmd_string(engine_, "LIST_ADD", "0", 0) != 1 ||
            ENGINE_ctrl_cmd_string(engine_, "LOAD", nullptr, 0) != 1)
            return fail(ExitCode::io,
                        "{}: cannot load the OpenSSL pkcs11 engine {}: {}; install "
                        "libengine-pkcs11-openssl",
                        display, library, openssl_reason());
        if (ENGINE_init(engine_) != 1)
            return fail(ExitCode::io, "{}: cannot initialise the OpenSSL pkcs11 engine: {}",
                        display, openssl_reason());
        initialised_ = true;
        // QUIET: libp11 otherwise prints its errors on stderr. The UI method
        // is also what libp11 uses for any later PIN request (e.g. keys that
        // want the PIN again for every signature): it must never prompt.
        if (ENGINE_ctrl_cmd_string(engine_, "QUIET", nullptr, 0) != 1 ||
            ENGINE_ctrl(engine_, ENGINE_CTRL_SET_USER_INTERFACE, 0, refusing_ui(), nullptr) != 1 ||
            ENGINE_ctrl_cmd_string(engine_, "MODULE_PATH", module_->path().c_str(), 0) != 1)
            return fail(ExitCode::io, "{}: cannot configure the OpenSSL pkcs11 engine: {}", display,
                        openssl_reason());
        return {};
    }

    [[nodiscard]] ENGINE* engine() const { return engine_; }
    [[nodiscard]] const Module& module() const { return *module_; }

    std::mutex mutex;       // serialises PIN setting and key loading
    bool pin_given = false; // the engine holds a PIN from an earlier load

  private:
    std::shared_ptr<Module> module_; // outlives the engine: released after the destructor body
    ENGINE* engine_ = nullptr;
    bool initialised_ = false;
};

using SessionPtr = std::shared_ptr<EngineSession>;

// The engine instance, shared by every key loaded from its module. OpenSSL
// binds a dynamically loaded engine library to one live ENGINE at a time, and
// libp11's engine drives one module per instance: keys from two modules
// cannot be held at once.
Result<SessionPtr> open_session(const UriInfo& info, const Pkcs11Options& options) {
    static std::mutex mutex;
    static std::weak_ptr<EngineSession> current;
    SVM_TRY(module, Module::open(info, options));
    SVM_TRY(library, engine_library(info.display));
    std::lock_guard lock(mutex);
    if (SessionPtr session = current.lock()) {
        if (session->module().path() == module->path())
            return session;
        return fail(ExitCode::usage,
                    "{}: keys from two PKCS#11 modules cannot be used at once (already using {} "
                    "for another key)",
                    info.display, session->module().given());
    }
    auto session = std::make_shared<EngineSession>(std::move(module));
    SVM_CHECK(session->start(library, info.display));
    current = session;
    return session;
}

// The PKCS#11 return codes libp11 put on the error queue (as the reasons of
// its "PKCS#11 module" error library).
std::vector<CK_RV> module_errors() {
    std::vector<CK_RV> codes;
    while (unsigned long code = ERR_get_error()) {
        const char* lib = ERR_lib_error_string(code);
        if (lib != nullptr && std::strcmp(lib, "PKCS#11 module") == 0)
            codes.push_back(static_cast<CK_RV>(ERR_GET_REASON(code)));
    }
    return codes;
}

// Why ENGINE_load_private_key failed, from the most to the least specific.
Error explain_failure(const UriInfo& info, const EngineSession& session, bool had_pin,
                      const UiState& ui) {
    auto codes = module_errors();
    auto has = [&](std::initializer_list<CK_RV> wanted) {
        return std::any_of(codes.begin(), codes.end(), [&](CK_RV c) {
            return std::find(wanted.begin(), wanted.end(), c) != wanted.end();
        });
    };
    auto error = [](ExitCode code, std::string message) {
        return Error{code, std::move(message)};
    };
    if (has({CKR_PIN_LOCKED}))
        return error(
            ExitCode::malformed,
            fmt::format("{}: the token's user PIN is locked (too many wrong PINs)", info.display));
    if (has({CKR_PIN_EXPIRED}))
        return error(ExitCode::malformed,
                     fmt::format("{}: the token's user PIN has expired", info.display));
    if (has({CKR_PIN_INCORRECT, CKR_PIN_INVALID, CKR_PIN_LEN_RANGE}))
        return error(ExitCode::malformed,
                     fmt::format("{}: PIN rejected by the token", info.display));
    if (ui.asked && !had_pin)
        return error(ExitCode::usage,
                     fmt::format("{}: the token needs a PIN; set SVMKIT_PKCS11_PIN or add "
                                 "pin-source=file:PATH to the URI",
                                 info.display));

    const Module& module = session.module();
    auto tokens = module.tokens(info.display);
    if (!tokens)
        return tokens.error();
    std::vector<TokenInfo> matching;
    std::copy_if(tokens->begin(), tokens->end(), std::back_inserter(matching),
                 [&](const TokenInfo& t) { return token_matches(info, t); });
    if (matching.empty())
        return error(ExitCode::malformed,
                     fmt::format("{}: no {} in PKCS#11 module {} ({})", info.display,
                                 token_description(info), module.given(),
                                 tokens->empty() ? std::string("it has no initialised token")
                                                 : "its tokens: " + quoted_labels(*tokens)));
    if (matching.size() > 1)
        return error(ExitCode::usage,
                     fmt::format("{}: matches {} tokens ({}); add token=LABEL or serial=SERIAL",
                                 info.display, matching.size(), quoted_labels(matching)));
    std::string object = object_description(info);
    return error(ExitCode::malformed,
                 fmt::format("{}: no private key {}{}in token '{}'", info.display, object,
                             object.empty() ? "" : " ", matching.front().label));
}

// Gives the engine the PIN, if there is one. libp11 keeps the last PIN it was
// given and would try it on this key's token too: with no PIN for this key
// after another key's, refuse rather than risk a wrong-PIN count.
Result<void> pass_pin(const UriInfo& info, const Pin& pin, EngineSession& session) {
    if (!pin.has_value() && session.pin_given)
        return fail(ExitCode::usage,
                    "{}: no PIN for this key; set SVMKIT_PKCS11_PIN or add pin-source=file:PATH "
                    "to the URI",
                    info.display);
    if (pin.has_value()) {
        if (ENGINE_ctrl_cmd_string(session.engine(), "PIN", pin.c_str(), 0) != 1)
            return fail(ExitCode::io, "{}: cannot pass the PIN to the pkcs11 engine: {}",
                        info.display, openssl_reason());
        session.pin_given = true;
    }
    return {};
}

// The private key the URI names, from the engine (the session's mutex held).
Result<PkeyPtr> engine_private_key(const UriInfo& info, const EngineSession& session,
                                   bool had_pin) {
    UiState ui;
    ERR_clear_error();
    PkeyPtr key(
        ENGINE_load_private_key(session.engine(), info.engine_uri.c_str(), refusing_ui(), &ui));
    if (!key)
        return svmkit::unexpected(explain_failure(info, session, had_pin, ui));
    // libp11 caches the EVP_PKEY until the engine finishes, and makes it hold
    // a functional reference to the engine (EVP_PKEY_set1_engine, i.e. its
    // pmeth_engine). Together that is a cycle: the engine would never finish,
    // leaving the module initialised and logged in and the ENGINE allocated
    // (and OpenSSL refuses a new instance while it exists). Drop the key's
    // reference; signing names the engine explicitly (token_pkey_ctx).
    EVP_PKEY_set1_engine(key.get(), nullptr);
    return key;
}

// The public half, from the key object the engine built.
Result<PublicKey> token_public_key(const UriInfo& info, EVP_PKEY* key) {
    int len = i2d_PUBKEY(key, nullptr);
    if (len <= 0)
        return fail(ExitCode::malformed,
                    "{}: the token gives no public key for this private key; store its public "
                    "key (same id and label) in the token",
                    info.display);
    std::vector<std::byte> spki(static_cast<std::size_t>(len));
    auto* out = reinterpret_cast<unsigned char*>(spki.data());
    if (i2d_PUBKEY(key, &out) != len)
        return fail(ExitCode::malformed, "{}: cannot encode the public key: {}", info.display,
                    openssl_reason());
    return PublicKey::from_der(spki, info.display);
}

} // namespace

bool is_pkcs11_uri(std::string_view path) {
    return path.size() >= 7 && strncasecmp(path.data(), "pkcs11:", 7) == 0;
}

Result<PrivateKey> PrivateKey::load_pkcs11(const std::string& uri, const Pkcs11Options& options) {
    ErrorQueueGuard guard;
    SVM_TRY(info, detail::parse_uri(uri));
    Pin pin;
    SVM_CHECK(detail::resolve_pin(info, options, pin));
    SVM_TRY(session, open_session(info, options));

    std::lock_guard lock(session->mutex);
    SVM_CHECK(pass_pin(info, pin, *session));
    SVM_TRY(key, engine_private_key(info, *session, pin.has_value()));
    SVM_TRY(pub, token_public_key(info, key.get()));

    PrivateKey result;
    result.token_session_ = std::move(session);
    result.key_ = std::move(key);
    result.public_ = std::move(pub);
    result.origin_ = info.display;
    return result;
}

EVP_PKEY_CTX* detail::token_pkey_ctx(const std::shared_ptr<void>& session, EVP_PKEY* key) {
    return EVP_PKEY_CTX_new(key, static_cast<const EngineSession*>(session.get())->engine());
}

} // namespace svmkit::signer
