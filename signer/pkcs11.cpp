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
// The ENGINE API is deprecated in OpenSSL 3.0 but is the only PKCS#11 route
// available; the deprecation warnings are silenced for this file only.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "signer/signer.hpp"

#include "signer/openssl_util.hpp"

#include "base/file.hpp"
#include "signer/pkcs11_internal.hpp"

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

// ---- OpenSSL helpers ------------------------------------------------------------

using detail::ErrorQueueGuard;
using detail::openssl_reason;

// A PIN: wiped when it goes out of scope. Neither copied nor moved, so no
// stray copies of it are left in freed memory.
class Pin {
  public:
    Pin() = default;
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    ~Pin() { wipe(); }
    void set(std::string_view value) {
        wipe();
        value_.assign(value);
        set_ = true;
    }
    [[nodiscard]] bool has_value() const { return set_; }
    [[nodiscard]] const char* c_str() const { return value_.c_str(); }

  private:
    void wipe() {
        if (!value_.empty())
            OPENSSL_cleanse(value_.data(), value_.size());
        value_.clear();
        set_ = false;
    }
    std::string value_;
    bool set_ = false;
};

// ---- PKCS#11 URIs -----------------------------------------------------------------

std::optional<std::string> percent_decode(std::string_view text) {
    const auto hex = detail::hex_nibble;
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        if (i + 2 >= text.size())
            return std::nullopt;
        int hi = hex(text[i + 1]);
        int lo = hex(text[i + 2]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        out.push_back(static_cast<char>((hi << 4) | lo));
        i += 2;
    }
    return out;
}

std::string hex_bytes(std::string_view bytes) {
    std::string out;
    for (char c : bytes)
        out += fmt::format("{:02x}", static_cast<unsigned char>(c));
    return out;
}

// What svmkit needs from a PKCS#11 URI.
struct UriInfo {
    std::string display;    // the URI as given, any pin-value redacted: for messages
    std::string engine_uri; // the URI without pin-source: what the engine sees
    std::optional<std::string> token, manufacturer, serial, model; // decoded
    std::optional<std::string> object;                             // label, decoded
    std::optional<std::string> id;                                 // bytes, decoded
    std::optional<std::string> pin_source;                         // decoded
};

// Splits the URI the way libp11 does (attributes separated by ';', '?' or
// '&'), checks every attribute is one the engine understands, refuses
// pin-value, and takes pin-source out for svmkit to handle.
Result<UriInfo> parse_uri(const std::string& uri) {
    static constexpr std::string_view scheme = "pkcs11:";
    UriInfo info;
    info.display = std::string(uri.substr(0, scheme.size()));
    std::vector<std::string> engine_attrs;
    bool pin_value = false;

    struct Segment {
        char separator;
        std::string_view text;
    };
    std::vector<Segment> segments;
    {
        std::string_view rest = std::string_view(uri).substr(scheme.size());
        char separator = '\0';
        while (true) {
            std::size_t end = rest.find_first_of(";?&");
            segments.push_back({separator, rest.substr(0, end)});
            if (end == std::string_view::npos)
                break;
            separator = rest[end];
            rest.remove_prefix(end + 1);
        }
    }
    // The display form first, so that every message below can use it.
    for (const Segment& s : segments) {
        if (s.separator != '\0')
            info.display.push_back(s.separator);
        if (s.text.starts_with("pin-value="))
            info.display += "pin-value=(redacted)";
        else
            info.display += s.text;
        pin_value = pin_value || s.text.starts_with("pin-value=");
    }
    if (pin_value)
        return fail(ExitCode::usage,
                    "{}: PINs in the URI end up in shell history and process lists; use "
                    "pin-source or SVMKIT_PKCS11_PIN",
                    info.display);

    std::vector<std::string> seen;
    for (const Segment& s : segments) {
        if (s.text.empty())
            continue;
        std::size_t eq = s.text.find('=');
        if (eq == std::string_view::npos)
            return fail(ExitCode::usage, "{}: '{}' is not an attribute=value pair", info.display,
                        s.text);
        std::string name(s.text.substr(0, eq));
        auto value = percent_decode(s.text.substr(eq + 1));
        if (!value)
            return fail(ExitCode::usage, "{}: bad percent-encoding in attribute {}", info.display,
                        name);
        std::string canonical = name == "object-type" ? "type" : name;
        if (std::find(seen.begin(), seen.end(), canonical) != seen.end())
            return fail(ExitCode::usage, "{}: attribute {} given twice", info.display, name);
        seen.push_back(canonical);

        if (name == "pin-source") {
            info.pin_source = std::move(*value);
            continue; // svmkit reads the file itself
        }
        if (name == "token")
            info.token = std::move(*value);
        else if (name == "manufacturer")
            info.manufacturer = std::move(*value);
        else if (name == "serial")
            info.serial = std::move(*value);
        else if (name == "model")
            info.model = std::move(*value);
        else if (name == "object")
            info.object = std::move(*value);
        else if (name == "id")
            info.id = std::move(*value);
        else if (name == "type" || name == "object-type") {
            if (*value == "public" || *value == "cert")
                return fail(ExitCode::usage,
                            "{}: names a {}; signing needs type=private (or no type)", info.display,
                            *value == "cert" ? "certificate" : "public key");
            if (*value != "private")
                return fail(ExitCode::usage, "{}: unknown object type '{}'", info.display, *value);
        } else if (name == "module-path" || name == "module-name")
            return fail(ExitCode::usage,
                        "{}: {} in the URI is not supported; pass --pkcs11-module or set "
                        "SVMKIT_PKCS11_MODULE",
                        info.display, name);
        else
            return fail(ExitCode::usage,
                        "{}: unsupported attribute {}; the pkcs11 engine understands token, "
                        "manufacturer, serial, model, object, id, type and pin-source",
                        info.display, name);
        engine_attrs.emplace_back(s.text);
    }

    info.engine_uri = std::string(scheme);
    for (std::size_t i = 0; i < engine_attrs.size(); ++i) {
        if (i > 0)
            info.engine_uri.push_back(';');
        info.engine_uri += engine_attrs[i];
    }
    return info;
}

// "'ec384' (id 01)", "with id 01", "'ec384'" or "" for messages.
std::string object_description(const UriInfo& info) {
    std::string out;
    if (info.object)
        out = fmt::format("'{}'", *info.object);
    if (info.id)
        out += fmt::format("{}id {}", out.empty() ? "with " : " with ", hex_bytes(*info.id));
    return out;
}

// "token 'svmkit-test'", "token with serial 1234" ... or "any token".
std::string token_description(const UriInfo& info) {
    if (info.token && !info.manufacturer && !info.serial && !info.model)
        return fmt::format("token '{}'", *info.token);
    std::vector<std::string> parts;
    if (info.token)
        parts.push_back(fmt::format("label '{}'", *info.token));
    if (info.manufacturer)
        parts.push_back(fmt::format("manufacturer '{}'", *info.manufacturer));
    if (info.serial)
        parts.push_back(fmt::format("serial '{}'", *info.serial));
    if (info.model)
        parts.push_back(fmt::format("model '{}'", *info.model));
    if (parts.empty())
        return "any token";
    std::string out = "token with";
    for (std::size_t i = 0; i < parts.size(); ++i)
        out += (i == 0 ? " " : ", ") + parts[i];
    return out;
}

// ---- PIN ---------------------------------------------------------------

std::string first_line(std::string_view text) {
    std::string_view line = text.substr(0, text.find('\n'));
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    return std::string(line);
}

// The PIN from the URI's pin-source, the named variable or SVMKIT_PKCS11_PIN;
// `pin` stays empty when none of them gives one.
Result<void> resolve_pin(const UriInfo& info, const Pkcs11Options& options, Pin& pin) {
    if (info.pin_source) {
        std::string_view source = *info.pin_source;
        if (source.starts_with("|"))
            return fail(ExitCode::usage,
                        "{}: pin-source commands are not supported; use pin-source=file:PATH",
                        info.display);
        if (source.size() >= 5 && strncasecmp(source.data(), "file:", 5) == 0) {
            source.remove_prefix(5);
            // file:///path and file://localhost/path name /path.
            if (source.starts_with("///"))
                source.remove_prefix(2);
            else if (source.starts_with("//localhost/"))
                source.remove_prefix(11);
        }
        std::string path(source);
        if (path.empty())
            return fail(ExitCode::usage, "{}: pin-source names no file", info.display);
        auto content = read_small_file(path, 64ull * 1024);
        if (!content) {
            Error e = content.error();
            e.code = ExitCode::io;
            return svmkit::unexpected(with_context(std::move(e), info.display + ": pin-source"));
        }
        std::string_view text(reinterpret_cast<const char*>(content->data()), content->size());
        std::string line = first_line(text);
        OPENSSL_cleanse(content->data(), content->size());
        bool empty = line.empty();
        pin.set(line);
        OPENSSL_cleanse(line.data(), line.size());
        if (empty)
            return fail(ExitCode::usage, "{}: pin-source file {} has an empty first line",
                        info.display, path);
        return {};
    }
    if (options.pin_env) {
        const char* value = std::getenv(options.pin_env->c_str());
        if (value == nullptr || *value == '\0')
            return fail(ExitCode::usage, "{}: PIN variable {} is {}", info.display,
                        *options.pin_env, value == nullptr ? "not set" : "empty");
        pin.set(value);
        return {};
    }
    const char* value = std::getenv("SVMKIT_PKCS11_PIN");
    if (value != nullptr && *value != '\0')
        pin.set(value);
    return {};
}

// ---- the PKCS#11 module ------------------------------------------------------------

// The PKCS#11 (v2.40) declarations svmkit uses itself, with the layout every
// Unix module has (no packing, CK_ULONG = unsigned long).
namespace ck {
using ULONG = unsigned long;
using RV = ULONG;
using SLOT_ID = ULONG;
constexpr RV OK = 0;
constexpr RV BUFFER_TOO_SMALL = 0x150;
constexpr RV CRYPTOKI_ALREADY_INITIALIZED = 0x191;
constexpr RV PIN_INCORRECT = 0xA0;
constexpr RV PIN_INVALID = 0xA1;
constexpr RV PIN_LEN_RANGE = 0xA2;
constexpr RV PIN_EXPIRED = 0xA3;
constexpr RV PIN_LOCKED = 0xA4;
constexpr ULONG OS_LOCKING_OK = 0x2;
constexpr ULONG TOKEN_INITIALIZED = 0x400;

struct VERSION {
    unsigned char major, minor;
};
struct TOKEN_INFO {
    unsigned char label[32];
    unsigned char manufacturerID[32];
    unsigned char model[16];
    unsigned char serialNumber[16];
    ULONG flags;
    ULONG ulMaxSessionCount, ulSessionCount, ulMaxRwSessionCount, ulRwSessionCount;
    ULONG ulMaxPinLen, ulMinPinLen;
    ULONG ulTotalPublicMemory, ulFreePublicMemory, ulTotalPrivateMemory, ulFreePrivateMemory;
    VERSION hardwareVersion, firmwareVersion;
    unsigned char utcTime[16];
};
struct C_INITIALIZE_ARGS {
    void* CreateMutex;
    void* DestroyMutex;
    void* LockMutex;
    void* UnlockMutex;
    ULONG flags;
    void* pReserved;
};
// The first entries of CK_FUNCTION_LIST; only ever used through a pointer.
struct FUNCTION_LIST_HEAD {
    VERSION version;
    RV (*C_Initialize)(void*);
    RV (*C_Finalize)(void*);
    RV (*C_GetInfo)(void*);
    RV (*C_GetFunctionList)(void*);
    RV (*C_GetSlotList)(unsigned char, SLOT_ID*, ULONG*);
    RV (*C_GetSlotInfo)(SLOT_ID, void*);
    RV (*C_GetTokenInfo)(SLOT_ID, TOKEN_INFO*);
};
} // namespace ck

struct TokenInfo {
    std::string label, manufacturer, model, serial;
};

// A fixed-width, blank-padded PKCS#11 string, trimmed as libp11 does.
template <std::size_t N>
std::string padded(const unsigned char (&field)[N]) {
    std::size_t len = N;
    while (len > 0 && field[len - 1] == ' ')
        --len;
    return std::string(reinterpret_cast<const char*>(field), len);
}

// Which module, where that came from, and the module loaded (dlopen) by
// svmkit itself: to report a broken module clearly before libp11 sees it
// (libp11 prints dlerror() on stderr), and to list its tokens when the engine
// cannot find a key. libp11's own dlopen of the same file gives the same
// library instance.
class Module {
  public:
    static Result<std::shared_ptr<Module>> open(const UriInfo& info, const Pkcs11Options& options) {
        auto module = std::shared_ptr<Module>(new Module());
        auto from_env = [](const char* name) -> std::optional<std::string> {
            const char* value = std::getenv(name);
            if (value == nullptr || *value == '\0')
                return std::nullopt;
            return std::string(value);
        };
        if (options.module) {
            module->given_ = *options.module;
            module->origin_ = "--pkcs11-module";
        } else if (auto m = from_env("SVMKIT_PKCS11_MODULE")) {
            module->given_ = *m;
            module->origin_ = "SVMKIT_PKCS11_MODULE";
        } else if (auto p = from_env("PKCS11_MODULE_PATH")) {
            module->given_ = *p;
            module->origin_ = "PKCS11_MODULE_PATH";
        } else {
            return fail(ExitCode::usage,
                        "{}: no PKCS#11 module given; pass --pkcs11-module PATH or set "
                        "SVMKIT_PKCS11_MODULE",
                        info.display);
        }
        std::error_code ec;
        auto canonical = std::filesystem::canonical(module->given_, ec);
        if (ec)
            return fail(ExitCode::io, "{}: PKCS#11 module {} (from {}): {}", info.display,
                        module->given_, module->origin_, ec.message());
        module->path_ = canonical.string();
        module->handle_ = ::dlopen(module->path_.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (module->handle_ == nullptr) {
            const char* why = ::dlerror();
            return fail(ExitCode::io, "{}: cannot load PKCS#11 module {} (from {}): {}",
                        info.display, module->given_, module->origin_,
                        why != nullptr ? why : "dlopen failed");
        }
        using GetFunctionList = ck::RV (*)(ck::FUNCTION_LIST_HEAD**);
        auto get_list =
            reinterpret_cast<GetFunctionList>(::dlsym(module->handle_, "C_GetFunctionList"));
        if (get_list == nullptr || get_list(&module->functions_) != ck::OK ||
            module->functions_ == nullptr)
            return fail(ExitCode::io, "{}: {} (from {}) is not a PKCS#11 module", info.display,
                        module->given_, module->origin_);
        return module;
    }

    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    ~Module() {
        if (handle_ != nullptr)
            ::dlclose(handle_);
    }

    [[nodiscard]] const std::string& given() const { return given_; }
    [[nodiscard]] const std::string& path() const { return path_; } // canonical

    // The initialised tokens. Normally the engine has initialised the module
    // already, and it stays so; otherwise it is finalised again afterwards.
    Result<std::vector<TokenInfo>> tokens(const std::string& display) const {
        ck::C_INITIALIZE_ARGS args{};
        args.flags = ck::OS_LOCKING_OK;
        ck::RV rv = functions_->C_Initialize(&args);
        if (rv != ck::OK && rv != ck::CRYPTOKI_ALREADY_INITIALIZED)
            return fail(ExitCode::io, "{}: PKCS#11 module {}: C_Initialize failed ({:#x})", display,
                        given_, rv);
        struct Finalize {
            ck::FUNCTION_LIST_HEAD* functions;
            bool owned;
            ~Finalize() {
                if (owned)
                    functions->C_Finalize(nullptr);
            }
        } finalize{functions_, rv == ck::OK};

        std::vector<ck::SLOT_ID> slots;
        for (int attempt = 0; attempt < 4; ++attempt) {
            ck::ULONG count = 0;
            rv = functions_->C_GetSlotList(1, nullptr, &count);
            if (rv != ck::OK)
                break;
            slots.resize(count);
            rv = functions_->C_GetSlotList(1, slots.data(), &count);
            if (rv == ck::OK) {
                slots.resize(count);
                break;
            }
            if (rv != ck::BUFFER_TOO_SMALL)
                break;
        }
        if (rv != ck::OK)
            return fail(ExitCode::io, "{}: PKCS#11 module {}: C_GetSlotList failed ({:#x})",
                        display, given_, rv);

        std::vector<TokenInfo> tokens;
        for (ck::SLOT_ID slot : slots) {
            ck::TOKEN_INFO ti{};
            if (functions_->C_GetTokenInfo(slot, &ti) != ck::OK ||
                (ti.flags & ck::TOKEN_INITIALIZED) == 0)
                continue;
            tokens.push_back({padded(ti.label), padded(ti.manufacturerID), padded(ti.model),
                              padded(ti.serialNumber)});
        }
        return tokens;
    }

  private:
    Module() = default;
    std::string given_;  // as configured, for messages
    std::string origin_; // the option or variable it came from
    std::string path_;
    void* handle_ = nullptr;
    ck::FUNCTION_LIST_HEAD* functions_ = nullptr;
};

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
std::vector<ck::RV> module_errors() {
    std::vector<ck::RV> codes;
    while (unsigned long code = ERR_get_error()) {
        const char* lib = ERR_lib_error_string(code);
        if (lib != nullptr && std::strcmp(lib, "PKCS#11 module") == 0)
            codes.push_back(static_cast<ck::RV>(ERR_GET_REASON(code)));
    }
    return codes;
}

// Why ENGINE_load_private_key failed, from the most to the least specific.
Error explain_failure(const UriInfo& info, const EngineSession& session, bool had_pin,
                      const UiState& ui) {
    auto codes = module_errors();
    auto has = [&](std::initializer_list<ck::RV> wanted) {
        return std::any_of(codes.begin(), codes.end(), [&](ck::RV c) {
            return std::find(wanted.begin(), wanted.end(), c) != wanted.end();
        });
    };
    auto error = [](ExitCode code, std::string message) {
        return Error{code, std::move(message)};
    };
    if (has({ck::PIN_LOCKED}))
        return error(
            ExitCode::malformed,
            fmt::format("{}: the token's user PIN is locked (too many wrong PINs)", info.display));
    if (has({ck::PIN_EXPIRED}))
        return error(ExitCode::malformed,
                     fmt::format("{}: the token's user PIN has expired", info.display));
    if (has({ck::PIN_INCORRECT, ck::PIN_INVALID, ck::PIN_LEN_RANGE}))
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

} // namespace

bool is_pkcs11_uri(std::string_view path) {
    return path.size() >= 7 && strncasecmp(path.data(), "pkcs11:", 7) == 0;
}

Result<PrivateKey> PrivateKey::load_pkcs11(const std::string& uri, const Pkcs11Options& options) {
    ErrorQueueGuard guard;
    SVM_TRY(info, parse_uri(uri));
    Pin pin;
    SVM_CHECK(resolve_pin(info, options, pin));
    SVM_TRY(session, open_session(info, options));

    std::lock_guard lock(session->mutex);
    // libp11 keeps the last PIN it was given and would try it on this key's
    // token too: refuse rather than risk a wrong-PIN count with another PIN.
    if (!pin.has_value() && session->pin_given)
        return fail(ExitCode::usage,
                    "{}: no PIN for this key; set SVMKIT_PKCS11_PIN or add pin-source=file:PATH "
                    "to the URI",
                    info.display);
    if (pin.has_value()) {
        if (ENGINE_ctrl_cmd_string(session->engine(), "PIN", pin.c_str(), 0) != 1)
            return fail(ExitCode::io, "{}: cannot pass the PIN to the pkcs11 engine: {}",
                        info.display, openssl_reason());
        session->pin_given = true;
    }

    UiState ui;
    ERR_clear_error();
    PkeyPtr key(
        ENGINE_load_private_key(session->engine(), info.engine_uri.c_str(), refusing_ui(), &ui));
    if (!key)
        return svmkit::unexpected(explain_failure(info, *session, pin.has_value(), ui));
    // libp11 caches the EVP_PKEY until the engine finishes, and makes it hold
    // a functional reference to the engine (EVP_PKEY_set1_engine, i.e. its
    // pmeth_engine). Together that is a cycle: the engine would never finish,
    // leaving the module initialised and logged in and the ENGINE allocated
    // (and OpenSSL refuses a new instance while it exists). Drop the key's
    // reference; signing names the engine explicitly (token_pkey_ctx).
    EVP_PKEY_set1_engine(key.get(), nullptr);

    // The public half, from the key object the engine built.
    int len = i2d_PUBKEY(key.get(), nullptr);
    if (len <= 0)
        return fail(ExitCode::malformed,
                    "{}: the token gives no public key for this private key; store its public "
                    "key (same id and label) in the token",
                    info.display);
    std::vector<std::byte> spki(static_cast<std::size_t>(len));
    auto* out = reinterpret_cast<unsigned char*>(spki.data());
    if (i2d_PUBKEY(key.get(), &out) != len)
        return fail(ExitCode::malformed, "{}: cannot encode the public key: {}", info.display,
                    openssl_reason());
    SVM_TRY(pub, PublicKey::from_der(spki, info.display));

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
