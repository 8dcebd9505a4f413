// What the PKCS#11 translation units share (pkcs11_uri.cpp: URIs and PINs;
// pkcs11_module.cpp: the module and its tokens; pkcs11_engine.cpp: the
// OpenSSL pkcs11 engine), and what private_key.cpp needs for signing with a
// key held in a token. Not part of the signer's interface: signer.hpp is.
#pragma once

#include "signer/signer.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

namespace svmkit::signer::detail {

// ---- signing with a key in a token (pkcs11_engine.cpp) ------------------------

// A signing context for a key from the pkcs11 engine that uses the engine's
// own EVP_PKEY methods, so the token applies RSA-PSS itself
// (CKM_RSA_PKCS_PSS) where it can, rather than only a raw RSA operation on
// software-padded data (CKM_RSA_X_509, which many tokens refuse). `session`
// is the PrivateKey's token session. The caller owns the result and attaches
// it with EVP_MD_CTX_set_pkey_ctx (which does not take ownership) before
// EVP_DigestSignInit_ex: EVP_DigestSignInit with the engine would also ask
// the engine for the digest, which it does not implement. Null on failure.
EVP_PKEY_CTX* token_pkey_ctx(const std::shared_ptr<void>& session, EVP_PKEY* key);

// ---- URIs and PINs (pkcs11_uri.cpp) -------------------------------------------

// What svmkit needs from a PKCS#11 URI (RFC 7512). Values are decoded.
struct UriInfo {
    std::string display;    // the URI as given, any pin-value redacted: for messages
    std::string engine_uri; // the URI without pin-source: what the engine sees
    std::optional<std::string> token, manufacturer, serial, model; // token fields
    std::optional<std::string> object;                             // label
    std::optional<std::string> id;                                 // bytes
    std::optional<std::string> pin_source;
};

// Checks `uri` is one svmkit and the pkcs11 engine can use: attributes split
// the way libp11 splits them (at ';', '?' and '&'), each given once, each one
// the engine understands (token, manufacturer, serial, model, object, id,
// type=private) or pin-source, which svmkit takes out and reads itself;
// pin-value is refused. p11-kit decodes and interprets each attribute.
// Errors: ExitCode::usage, naming the URI (pin-value redacted) and the
// attribute; ExitCode::malformed for a token field longer than PKCS#11 allows
// (no token can match it).
Result<UriInfo> parse_uri(const std::string& uri);

// "'ec384' (id 01)", "with id 01", "'ec384'" or "" for messages.
std::string object_description(const UriInfo& info);
// "token 'svmkit-test'", "token with serial 1234" ... or "any token".
std::string token_description(const UriInfo& info);

// A PIN: wiped when it goes out of scope. Neither copied nor moved, so no
// stray copies of it are left in freed memory.
class Pin {
  public:
    Pin() = default;
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    ~Pin() { wipe(); }
    void set(std::string_view value);
    [[nodiscard]] bool has_value() const { return set_; }
    [[nodiscard]] const char* c_str() const { return value_.c_str(); }

  private:
    void wipe();
    std::string value_;
    bool set_ = false;
};

// The PIN from the URI's pin-source, the named variable or SVMKIT_PKCS11_PIN;
// `pin` stays empty when none of them gives one.
Result<void> resolve_pin(const UriInfo& info, const Pkcs11Options& options, Pin& pin);

// ---- the PKCS#11 module (pkcs11_module.cpp) -----------------------------------

struct TokenInfo {
    std::string label, manufacturer, model, serial; // trimmed as libp11 trims them
};

// Which module, where that came from, and the module loaded (dlopen) by
// svmkit itself: to report a broken module clearly before libp11 sees it
// (libp11 prints dlerror() on stderr), and to list its tokens when the engine
// cannot find a key. libp11's own dlopen of the same file gives the same
// library instance.
class Module {
  public:
    // The module from the options, $SVMKIT_PKCS11_MODULE or
    // $PKCS11_MODULE_PATH, loaded. Messages name `info.display`.
    static Result<std::shared_ptr<Module>> open(const UriInfo& info, const Pkcs11Options& options);

    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    ~Module();

    [[nodiscard]] const std::string& given() const { return given_; }
    [[nodiscard]] const std::string& path() const { return path_; } // canonical

    // The initialised tokens. Normally the engine has initialised the module
    // already, and it stays so; otherwise it is finalised again afterwards.
    [[nodiscard]] Result<std::vector<TokenInfo>> tokens(const std::string& display) const;

  private:
    Module() = default;
    Result<void> locate(const UriInfo& info, const Pkcs11Options& options);
    Result<void> load(const std::string& display);
    [[nodiscard]] Result<std::vector<CK_SLOT_ID>> slots(const std::string& display) const;

    std::string given_;  // as configured, for messages
    std::string origin_; // the option or variable it came from
    std::string path_;
    void* handle_ = nullptr;
    CK_FUNCTION_LIST* functions_ = nullptr;
};

// True when `token` has every token field `info` names.
bool token_matches(const UriInfo& info, const TokenInfo& token);
// "'a', 'b'" for messages.
std::string quoted_labels(const std::vector<TokenInfo>& tokens);

} // namespace svmkit::signer::detail
