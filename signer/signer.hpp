// Keys and signatures through OpenSSL 3's EVP interface.
//
// Every OpenSSL object is owned by an RAII wrapper; every failure is a Result
// error whose message names the key file and the problem.
#pragma once

#include "base/error.hpp"

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

using EVP_PKEY = struct evp_pkey_st;

namespace svmkit::signer {

// ---- digests ---------------------------------------------------------------

enum class DigestAlgorithm { sha256, sha384, sha512 };

std::string_view digest_name(DigestAlgorithm algo);                      // "sha256", ...
std::optional<DigestAlgorithm> parse_digest_name(std::string_view name); // exact names only
std::size_t digest_size(DigestAlgorithm algo);                           // 32, 48, 64

// Streaming hash. Owns its EVP_MD_CTX.
class Hasher {
  public:
    explicit Hasher(DigestAlgorithm algo);
    Hasher(Hasher&&) noexcept;
    Hasher& operator=(Hasher&&) noexcept;
    ~Hasher();
    void update(std::span<const std::byte> data);
    std::vector<std::byte> finish(); // the hasher cannot be used afterwards

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

std::vector<std::byte> digest(DigestAlgorithm algo, std::span<const std::byte> data);

// ---- signature algorithms --------------------------------------------------

// What a signature node records. ECDSA signatures are DER (as `openssl dgst
// -sign` writes them); RSA-PSS uses MGF1 with the same hash and a salt as long
// as the hash when signing (verification accepts any salt length).
enum class SignatureAlgorithm {
    ed25519,           // pure Ed25519 over the message
    ecdsa_p256_sha256, // ECDSA on P-256 over SHA-256(message)
    ecdsa_p384_sha384, // ECDSA on P-384 over SHA-384(message)
    rsa_pss_sha256,    // RSASSA-PSS over SHA-256(message)
    rsa_pss_sha384,    // RSASSA-PSS over SHA-384(message)
};

std::string_view algorithm_name(SignatureAlgorithm algo); // "ed25519", "ecdsa-p256-sha256", ...
std::optional<SignatureAlgorithm> parse_algorithm_name(std::string_view name);
// The hash applied to the message before signing; nullopt for Ed25519.
std::optional<DigestAlgorithm> algorithm_prehash(SignatureAlgorithm algo);

// The key types `svmkit keygen --algo` makes.
enum class KeyType { ed25519, ecdsa_p256, ecdsa_p384, rsa_3072, rsa_4096 };
std::string_view key_type_name(KeyType type); // "ed25519", "ecdsa-p256", "rsa-3072", ...
std::optional<KeyType> parse_key_type(std::string_view name);

// SHA-256 of the DER SubjectPublicKeyInfo.
using KeyId = std::array<std::byte, 32>;
std::string key_id_hex(const KeyId& id);
std::optional<KeyId> parse_key_id_hex(std::string_view hex);

struct PkeyDeleter {
    void operator()(EVP_PKEY* key) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// ---- key files of any type ------------------------------------------------

// Where the passphrase of an encrypted private key comes from. Never argv.
struct PassphraseSource {
    std::optional<std::string> env_var; // name of an environment variable
    std::optional<std::string> file;    // a file whose first line is the passphrase
};

// The key in a file, of any type and size OpenSSL reads (the classes below
// then restrict it to what svmkit signs with; the PEF lockboxes of
// format/esm_* take RSA keys of other sizes). Same forms, errors and
// passphrase rules as PublicKey::load and PrivateKey::load (files only);
// load_private_pkey does not check that the file held a private part: see
// pkey_has_private_part.
Result<PkeyPtr> load_public_pkey(const std::string& path);
Result<PkeyPtr> load_private_pkey(const std::string& path, const PassphraseSource& passphrase);
bool pkey_has_private_part(EVP_PKEY* key);

// ---- public keys -----------------------------------------------------------

class PublicKey {
  public:
    // Accepts a PEM or DER SubjectPublicKeyInfo, a PEM or DER X.509
    // certificate (its subject key), or an unencrypted private key file (its
    // public half). Errors: ExitCode::io (unreadable), ExitCode::malformed
    // (not a key, or a key type svmkit does not support, e.g. RSA < 3072 or a
    // curve other than P-256/P-384).
    static Result<PublicKey> load(const std::string& path);
    static Result<PublicKey> from_der(std::span<const std::byte> spki_der, const std::string& what);

    [[nodiscard]] const KeyId& key_id() const { return key_id_; }
    [[nodiscard]] std::vector<std::byte> spki_der() const;
    [[nodiscard]] std::string pem() const;
    // The algorithm svmkit signs with for this key: Ed25519 -> ed25519,
    // P-256 -> ecdsa-p256-sha256, P-384 -> ecdsa-p384-sha384,
    // RSA 3072 -> rsa-pss-sha256, RSA 4096 -> rsa-pss-sha384.
    [[nodiscard]] SignatureAlgorithm default_algorithm() const { return default_algorithm_; }
    [[nodiscard]] bool supports(SignatureAlgorithm algo) const;
    // A short description: "Ed25519", "ECDSA P-384", "RSA 3072".
    [[nodiscard]] std::string description() const;

    // Checks `signature` over `message`. A mismatch is ExitCode::verification_failed;
    // an algorithm that does not fit the key too.
    Result<void> verify(SignatureAlgorithm algo, std::span<const std::byte> message,
                        std::span<const std::byte> signature) const;

    [[nodiscard]] EVP_PKEY* raw() const { return key_.get(); }

  private:
    friend class PrivateKey;
    static Result<PublicKey> adopt(PkeyPtr key, const std::string& what);
    PkeyPtr key_;
    KeyId key_id_{};
    SignatureAlgorithm default_algorithm_ = SignatureAlgorithm::ed25519;
};

// ---- private keys ----------------------------------------------------------

// How to reach a private key held in a PKCS#11 token. The PIN never comes
// from argv: see PrivateKey::load.
struct Pkcs11Options {
    // The PKCS#11 module (.so). Unset: $SVMKIT_PKCS11_MODULE, else
    // $PKCS11_MODULE_PATH.
    std::optional<std::string> module;
    // Name of an environment variable holding the user PIN. Unset:
    // $SVMKIT_PKCS11_PIN.
    std::optional<std::string> pin_env;
};

// True when `path` is a PKCS#11 URI (RFC 7512), i.e. starts with "pkcs11:"
// (in any case), rather than a file name.
bool is_pkcs11_uri(std::string_view path);

class PrivateKey {
  public:
    PrivateKey() = default;
    PrivateKey(PrivateKey&&) noexcept = default;
    // Releases the old key before the token session it came from.
    PrivateKey& operator=(PrivateKey&& other) noexcept;
    ~PrivateKey() = default;

    // Loads a PEM (optionally encrypted) or DER private key file. Errors:
    // ExitCode::io (unreadable file); ExitCode::usage (encrypted and no
    // passphrase source given, or the named variable/file missing);
    // ExitCode::malformed (not a private key, a public key given where a
    // private one is needed, wrong passphrase, unsupported key type/size).
    //
    // A `path` that is a PKCS#11 URI ("pkcs11:token=T;object=K", RFC 7512)
    // names a key inside a token instead; it is used through the OpenSSL
    // "pkcs11" engine (libengine-pkcs11-openssl) and never leaves the token.
    // `passphrase` does not apply to it. The URI may carry token,
    // manufacturer, serial, model, object, id, type=private and
    // pin-source=file:PATH. The user PIN comes from, in order: the URI's
    // pin-source (first line of the file), the variable named by
    // pkcs11.pin_env (which must then be set), $SVMKIT_PKCS11_PIN; a
    // pin-value is refused. A token that needs no PIN (or has a PIN pad)
    // works without. Keys from one PKCS#11 module at a time: loading from a
    // second module while a key from the first exists fails (usage); the
    // module is finalised when its last key is destroyed.
    // Errors, as for files: ExitCode::usage for what
    // the caller must fix in options or environment (no module configured, a
    // pin-value in the URI, no PIN available, an unset PIN variable, an
    // unsupported or ambiguous URI); ExitCode::io when something cannot be
    // read or loaded (module or pin-source file missing or unreadable, the
    // engine not installed); ExitCode::malformed when the token does not hold
    // what the URI asks for or refuses it (no such token, no such private
    // key, "PIN rejected by the token", PIN locked, unsupported key type).
    // Messages name the URI, never a PIN.
    static Result<PrivateKey> load(const std::string& path, const PassphraseSource& passphrase,
                                   const Pkcs11Options& pkcs11 = {});
    static Result<PrivateKey> generate(KeyType type);

    [[nodiscard]] const PublicKey& public_key() const { return public_; }
    [[nodiscard]] const std::string& origin() const { return origin_; } // file name, for messages

    // Signs `message` with `algo` (which must suit the key: ExitCode::usage otherwise).
    Result<std::vector<std::byte>> sign(SignatureAlgorithm algo,
                                        std::span<const std::byte> message) const;

    // True for a key that lives in a PKCS#11 token.
    [[nodiscard]] bool in_token() const { return token_session_ != nullptr; }

    // Unencrypted PKCS#8 PEM. Throws std::logic_error for a key in a token
    // (its private half cannot leave the token).
    [[nodiscard]] std::string pem() const;

  private:
    // Defined in pkcs11_engine.cpp.
    static Result<PrivateKey> load_pkcs11(const std::string& uri, const Pkcs11Options& options);

    // For a key in a token: the engine instance (and so the PKCS#11 module
    // and its login) the key lives in, shared by every key from that module.
    // Declared before key_ so that it is destroyed after it.
    std::shared_ptr<void> token_session_;
    PkeyPtr key_;
    PublicKey public_;
    std::string origin_;
};

} // namespace svmkit::signer
