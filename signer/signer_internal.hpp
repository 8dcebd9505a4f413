// What the signer's translation units share (names.cpp, digest.cpp,
// key_info.cpp, passphrase.cpp, key_files.cpp, public_key.cpp,
// private_key.cpp). Not part of the signer's interface: signer.hpp is.
#pragma once

#include "signer/openssl_util.hpp"
#include "signer/signer.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <openssl/evp.h>

namespace svmkit::signer::detail {

// ---- OpenSSL buffers (key_files.cpp) -----------------------------------------

inline const unsigned char* uchar_data(std::span<const std::byte> data) {
    return reinterpret_cast<const unsigned char*>(data.data());
}

// A read-only memory BIO over `data` (which must outlive it).
BioPtr memory_bio(std::span<const std::byte> data);
// What a memory BIO holds.
std::string bio_contents(BIO* bio);

// ---- digests (digest.cpp) ----------------------------------------------------

// The digest, fetched once per process.
const EVP_MD* fetched_md(DigestAlgorithm algo);
// OpenSSL's name of the digest: "SHA2-256", ...
const char* openssl_digest_name(DigestAlgorithm algo);

// ---- key inspection (key_info.cpp) -------------------------------------------

bool is_rsa_algorithm(SignatureAlgorithm algo);
// Whether svmkit supports `key` and, if so, its default algorithm. Messages
// name `what`.
Result<SignatureAlgorithm> classify(EVP_PKEY* key, const std::string& what);
// True when `key` holds private material (not just a public key).
bool has_private_part(EVP_PKEY* key);
// The DER SubjectPublicKeyInfo of `key`.
std::vector<std::byte> spki_of(EVP_PKEY* key);
// Parses a whole DER SubjectPublicKeyInfo; trailing bytes make it fail (null).
PkeyPtr parse_spki_der(std::span<const std::byte> der);
// A public-only copy of `key` (drops any private material).
PkeyPtr public_only(EVP_PKEY* key);
// Sets up RSA-PSS with MGF1 over `md_name` and the given salt length.
bool configure_pss(EVP_PKEY_CTX* pctx, const char* md_name, int salt_len);

// ---- passphrases (passphrase.cpp) --------------------------------------------

// State for the OpenSSL passphrase callback. The passphrase is resolved only
// when OpenSSL asks for it, i.e. when the key really is encrypted.
struct PassphraseState {
    const PassphraseSource* source = nullptr; // null: never give a passphrase
    const std::string* key_path = nullptr;
    bool asked = false;    // OpenSSL wanted a passphrase
    bool supplied = false; // and we gave it one
    bool resolved = false;
    std::optional<std::string> passphrase;
    std::optional<Error> error;

    PassphraseState() = default;
    PassphraseState(const PassphraseState&) = delete;
    PassphraseState& operator=(const PassphraseState&) = delete;
    ~PassphraseState();

    // Reads the passphrase from its source (once); a failure goes to `error`.
    void resolve();
};

// OpenSSL's pem_password_cb; `user` is a PassphraseState or null (never gives
// a passphrase).
int passphrase_callback(char* buf, int size, int rwflag, void* user) noexcept;

// ---- key files (key_files.cpp) -----------------------------------------------

// The public key of an SPKI or certificate (PEM or DER); null if neither.
PkeyPtr parse_public_forms(std::span<const std::byte> data, bool pem);
// A private key (PEM: PKCS#8, encrypted PKCS#8, traditional, encrypted
// traditional; DER: PKCS#8, traditional, encrypted PKCS#8); null if none.
// The key may turn out to hold only a public part: callers check.
PkeyPtr parse_private_forms(std::span<const std::byte> data, bool pem, PassphraseState& state);

} // namespace svmkit::signer::detail

namespace svmkit::signer {

// The helpers the key classes (public_key.cpp, private_key.cpp) use by their
// short names.
using detail::BioPtr;
using detail::ErrorQueueGuard;
using detail::is_rsa_algorithm;
using detail::MdCtxPtr;
using detail::openssl_reason;
using detail::uchar_data;

} // namespace svmkit::signer
