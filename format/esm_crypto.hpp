// The cryptography of PEF ibm,esm blobs (OpenSSL 3 EVP): RSA-OAEP(SHA-256)
// lockboxes around a random 32-byte key, AES-256-GCM for the digests and the
// secret files, SHA-256 public-key fingerprints; and the operations svm-tools
// offers on a blob (make, authorize, revoke, open).
//
// Failures keep their cause apart, because the simulated ultravisor reports
// each one differently: no lockbox for a key, a lockbox that does not unwrap,
// a ciphertext whose GCM tag does not verify.
#pragma once

#include "base/error.hpp"
#include "format/esm_blob.hpp"
#include "signer/signer.hpp"

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::format {

// The blob's symmetric key; wiped when destroyed.
class EsmSymKey {
  public:
    EsmSymKey() = default;
    EsmSymKey(const EsmSymKey&) = default;
    EsmSymKey& operator=(const EsmSymKey&) = default;
    ~EsmSymKey();
    static EsmSymKey random();
    std::array<std::byte, kEsmSymKeySize> bytes{};
};

// An RSA key that can hold a lockbox (2048 bits or more). `private_key`
// keys also have their private half.
struct EsmKey {
    signer::PkeyPtr key;
    EsmFingerprint fingerprint{};
    int bits = 0;
    std::string path; // for messages
};

// Fingerprint: SHA-256 of the key's SubjectPublicKeyInfo in PEM as OpenSSL
// writes it (64-column base64, final newline), which is also the byte form of
// `openssl rsa -pubout` and of svm-tools' own keys, whose file bytes svm-tools
// hashes.
EsmFingerprint esm_fingerprint(EVP_PKEY* key);

// Errors: ExitCode::io (unreadable), ExitCode::malformed (not an RSA key of
// at least 2048 bits; a public key where a private one is needed), and for
// private keys ExitCode::usage when encrypted without a passphrase source.
Result<EsmKey> load_esm_public_key(const std::string& path);
Result<EsmKey> load_esm_private_key(const std::string& path,
                                    const signer::PassphraseSource& passphrase);

// RSA-OAEP with SHA-256 (and MGF1-SHA-256), as svm-tools' PKCS1_OAEP.
Result<std::vector<std::byte>> esm_wrap_symkey(const EsmKey& recipient, const EsmSymKey& key);
// ExitCode::verification_failed when the ciphertext does not decrypt to a
// 32-byte key with this private key.
Result<EsmSymKey> esm_unwrap_symkey(const EsmKey& private_key,
                                    std::span<const std::byte> encrypted);

// AES-256-GCM with a fresh random 12-byte IV, no additional data.
EsmSealed esm_seal(const EsmSymKey& key, std::span<const std::byte> plaintext, std::string comment);
// ExitCode::verification_failed when the tag does not verify (wrong key, or
// tampered ciphertext, IV or tag).
Result<std::vector<std::byte>> esm_open(const EsmSymKey& key, const EsmSealed& sealed);

// What `esm make` puts in a blob.
struct EsmRecipient {
    const EsmKey* key = nullptr;
    std::string comment;
};
struct EsmSecretFile {
    std::string name;
    std::string comment;
    std::vector<std::byte> data;
};
struct EsmMakeRequest {
    std::optional<EsmRecipient> origin; // the image owner (origin-lockbox)
    std::vector<EsmRecipient> recipients;
    std::optional<EsmDigests> digests;
    std::string digests_comment;
    std::vector<EsmSecretFile> files;
};
// Errors: ExitCode::usage (duplicate recipient or file name, invalid name or
// comment, no key at all).
Result<EsmBlob> make_esm_blob(const EsmMakeRequest& request);

// The blob's key through the lockbox matching `key` (any position). Errors:
// ExitCode::verification_failed with the message saying which step failed.
enum class EsmOpenFailure { none, no_lockbox, unwrap };
struct EsmOpened {
    EsmOpenFailure failure = EsmOpenFailure::none;
    std::string message;
    EsmSymKey symkey;
    const EsmLockbox* lockbox = nullptr;
};
EsmOpened esm_open_lockbox(const EsmBlob& blob, const EsmKey& key);

// Adds a lockbox for `recipient` numbered one above the highest. Errors:
// ExitCode::usage (already authorised, too many lockboxes).
Result<void> esm_authorize(EsmBlob& blob, const EsmSymKey& key, const EsmKey& recipient,
                           std::string comment);
// Removes the recipient lockbox with `fingerprint`. Errors: ExitCode::usage
// (no such lockbox; the origin lockbox cannot be revoked).
Result<void> esm_revoke(EsmBlob& blob, const EsmFingerprint& fingerprint);

} // namespace svmkit::format
