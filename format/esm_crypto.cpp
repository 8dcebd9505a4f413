#include "format/esm_crypto.hpp"

#include "signer/openssl_util.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <memory>
#include <new>
#include <stdexcept>

namespace svmkit::format {

namespace {

using signer::detail::ErrorQueueGuard;
using signer::detail::openssl_reason;

using signer::detail::BioPtr;
using signer::detail::CipherCtxPtr;
using signer::detail::PkeyCtxPtr;

constexpr int kMinRsaBits = 2048;
constexpr std::size_t kIvSize = 12;

unsigned char* uchar(std::byte* p) {
    return reinterpret_cast<unsigned char*>(p);
}
const unsigned char* uchar(const std::byte* p) {
    return reinterpret_cast<const unsigned char*>(p);
}

void random_bytes(std::span<std::byte> out) {
    if (RAND_bytes(uchar(out.data()), static_cast<int>(out.size())) != 1)
        throw std::runtime_error("the random number generator failed: " + openssl_reason());
}

Result<EsmKey> adopt_rsa(signer::PkeyPtr key, const std::string& path) {
    if (!EVP_PKEY_is_a(key.get(), "RSA"))
        return fail(ExitCode::malformed, "{}: not an RSA key; lockboxes use RSA-OAEP", path);
    EsmKey k;
    k.bits = EVP_PKEY_get_bits(key.get());
    if (k.bits < kMinRsaBits)
        return fail(ExitCode::malformed, "{}: RSA key of {} bits, at least {} are required", path,
                    k.bits, kMinRsaBits);
    k.fingerprint = esm_fingerprint(key.get());
    k.key = std::move(key);
    k.path = path;
    return k;
}

// An RSA-OAEP(SHA-256, MGF1-SHA-256) context for `key`.
Result<PkeyCtxPtr> oaep_context(const EsmKey& key, bool encrypt) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.key.get(), nullptr));
    if (!ctx)
        throw std::bad_alloc();
    if ((encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get())) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx.get(), "SHA256", nullptr) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx.get(), "SHA256", nullptr) != 1)
        return fail(ExitCode::malformed, "{}: cannot set up RSA-OAEP: {}", key.path,
                    openssl_reason());
    return ctx;
}

} // namespace

EsmSymKey::~EsmSymKey() {
    OPENSSL_cleanse(bytes.data(), bytes.size());
}

EsmSymKey EsmSymKey::random() {
    EsmSymKey k;
    random_bytes(k.bytes);
    return k;
}

EsmFingerprint esm_fingerprint(EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1)
        throw std::runtime_error("cannot write a public key: " + openssl_reason());
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    EsmFingerprint f{};
    unsigned int out_len = 0;
    if (len < 0 || EVP_Digest(data, static_cast<std::size_t>(len), uchar(f.data()), &out_len,
                              EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed: " + openssl_reason());
    return f;
}

Result<EsmKey> load_esm_public_key(const std::string& path) {
    ErrorQueueGuard guard;
    SVM_TRY(key, signer::load_public_pkey(path));
    return adopt_rsa(std::move(key), path);
}

Result<EsmKey> load_esm_private_key(const std::string& path,
                                    const signer::PassphraseSource& passphrase) {
    ErrorQueueGuard guard;
    SVM_TRY(key, signer::load_private_pkey(path, passphrase));
    if (!signer::pkey_has_private_part(key.get()))
        return fail(ExitCode::malformed,
                    "{}: is a public key or certificate; a private key is needed", path);
    return adopt_rsa(std::move(key), path);
}

Result<std::vector<std::byte>> esm_wrap_symkey(const EsmKey& recipient, const EsmSymKey& key) {
    ErrorQueueGuard guard;
    SVM_TRY(ctx, oaep_context(recipient, true));
    std::size_t len = 0;
    if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, uchar(key.bytes.data()), key.bytes.size()) != 1)
        return fail(ExitCode::malformed, "{}: RSA-OAEP encryption failed: {}", recipient.path,
                    openssl_reason());
    std::vector<std::byte> out(len);
    if (EVP_PKEY_encrypt(ctx.get(), uchar(out.data()), &len, uchar(key.bytes.data()),
                         key.bytes.size()) != 1)
        return fail(ExitCode::malformed, "{}: RSA-OAEP encryption failed: {}", recipient.path,
                    openssl_reason());
    out.resize(len);
    return out;
}

Result<EsmSymKey> esm_unwrap_symkey(const EsmKey& private_key,
                                    std::span<const std::byte> encrypted) {
    ErrorQueueGuard guard;
    SVM_TRY(ctx, oaep_context(private_key, false));
    std::size_t len = 0;
    if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, uchar(encrypted.data()), encrypted.size()) != 1)
        return fail(ExitCode::verification_failed, "{}: the lockbox does not decrypt: {}",
                    private_key.path, openssl_reason());
    std::vector<std::byte> out(len);
    const int rc = EVP_PKEY_decrypt(ctx.get(), uchar(out.data()), &len, uchar(encrypted.data()),
                                    encrypted.size());
    EsmSymKey key;
    const bool ok = rc == 1 && len == key.bytes.size();
    if (ok)
        std::copy_n(out.begin(), key.bytes.size(), key.bytes.begin());
    OPENSSL_cleanse(out.data(), out.size());
    if (!ok)
        return fail(ExitCode::verification_failed,
                    "{}: the lockbox does not decrypt to a {}-byte key{}", private_key.path,
                    key.bytes.size(), rc == 1 ? "" : ": " + openssl_reason());
    return key;
}

namespace {

// One AES-256-GCM pass over `in` into `out` (same size): encrypting, or
// decrypting with the tag set before the final step. False when the context
// cannot be set up or (decrypting) the tag does not verify.
bool gcm(bool encrypt, const EsmSymKey& key, std::span<const std::byte> iv,
         std::span<const std::byte> in, std::span<std::byte> out, std::span<std::byte> tag) {
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!ctx)
        throw std::bad_alloc();
    const int enc = encrypt ? 1 : 0;
    int len = 0;
    int tail = 0;
    if (EVP_CipherInit_ex2(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, enc, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                            nullptr) != 1 ||
        EVP_CipherInit_ex2(ctx.get(), nullptr, uchar(key.bytes.data()), uchar(iv.data()), enc,
                           nullptr) != 1 ||
        EVP_CipherUpdate(ctx.get(), uchar(out.data()), &len, uchar(in.data()),
                         static_cast<int>(in.size())) != 1)
        throw std::runtime_error("AES-256-GCM failed: " + openssl_reason());
    if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG,
                                        static_cast<int>(tag.size()), tag.data()) != 1)
        throw std::runtime_error("AES-256-GCM failed: " + openssl_reason());
    if (EVP_CipherFinal_ex(ctx.get(), uchar(out.data()) + len, &tail) != 1)
        return false;
    if (encrypt && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG,
                                       static_cast<int>(tag.size()), tag.data()) != 1)
        throw std::runtime_error("AES-256-GCM failed: " + openssl_reason());
    return true;
}

} // namespace

EsmSealed esm_seal(const EsmSymKey& key, std::span<const std::byte> plaintext,
                   std::string comment) {
    ErrorQueueGuard guard;
    EsmSealed s;
    s.comment = std::move(comment);
    s.iv.resize(kIvSize);
    random_bytes(s.iv);
    s.mac.resize(kEsmMacSize);
    s.ciphertext.resize(plaintext.size());
    if (!gcm(true, key, s.iv, plaintext, s.ciphertext, s.mac))
        throw std::runtime_error("AES-256-GCM encryption failed: " + openssl_reason());
    return s;
}

Result<std::vector<std::byte>> esm_open(const EsmSymKey& key, const EsmSealed& sealed) {
    ErrorQueueGuard guard;
    if (sealed.iv.size() < kEsmMinIvSize || sealed.iv.size() > kEsmMaxIvSize ||
        sealed.mac.size() != kEsmMacSize)
        return fail(ExitCode::malformed, "AES-256-GCM IV or tag of the wrong size");
    std::vector<std::byte> out(sealed.ciphertext.size());
    std::vector<std::byte> tag = sealed.mac; // the ctrl call takes a non-const pointer
    if (!gcm(false, key, sealed.iv, sealed.ciphertext, out, tag)) {
        OPENSSL_cleanse(out.data(), out.size());
        return fail(ExitCode::verification_failed,
                    "AES-256-GCM authentication failed (wrong key, or the ciphertext, IV or tag "
                    "was changed)");
    }
    return out;
}

Result<EsmBlob> make_esm_blob(const EsmMakeRequest& req) {
    if (!req.origin && req.recipients.empty())
        return fail(ExitCode::usage, "an ESM blob needs an origin or at least one recipient key");
    if (req.recipients.size() + 1 > kEsmMaxLockboxes)
        return fail(ExitCode::usage, "at most {} recipients", kEsmMaxLockboxes - 1);
    if (req.files.size() > kEsmMaxFiles)
        return fail(ExitCode::usage, "at most {} files", kEsmMaxFiles);
    const EsmSymKey symkey = EsmSymKey::random();
    EsmBlob blob;
    auto add = [&](const EsmRecipient& r, std::uint32_t number) -> Result<void> {
        if (!esm_comment_valid(r.comment))
            return fail(ExitCode::usage, "{}: the comment must be printable ASCII on one line",
                        r.key->path);
        if (const EsmLockbox* other = blob.find(r.key->fingerprint))
            return fail(ExitCode::usage, "{}: the key is already in {} (fingerprint {})",
                        r.key->path, other->node_name(), esm_fingerprint_hex(r.key->fingerprint));
        SVM_TRY(wrapped, esm_wrap_symkey(*r.key, symkey));
        blob.lockboxes.push_back(
            EsmLockbox{number, r.comment, std::move(wrapped), r.key->fingerprint});
        return {};
    };
    if (req.origin)
        SVM_CHECK(add(*req.origin, 0));
    for (std::size_t i = 0; i < req.recipients.size(); ++i)
        SVM_CHECK(add(req.recipients[i], static_cast<std::uint32_t>(i + 1)));
    if (req.digests) {
        if (!esm_comment_valid(req.digests_comment))
            return fail(ExitCode::usage, "the digest comment must be printable ASCII on one line");
        blob.digests = esm_seal(symkey, encode_esm_digests(*req.digests), req.digests_comment);
    }
    for (const EsmSecretFile& f : req.files) {
        if (!esm_file_name_valid(f.name))
            return fail(ExitCode::usage,
                        "file name '{}' is not valid: 1 to {} characters [A-Za-z0-9,._+-], "
                        "starting with a letter",
                        f.name, kEsmMaxFileNameLength);
        if (!esm_comment_valid(f.comment))
            return fail(ExitCode::usage, "{}: the comment must be printable ASCII on one line",
                        f.name);
        if (blob.file(f.name) != nullptr)
            return fail(ExitCode::usage, "file name '{}' is given twice", f.name);
        blob.files.push_back(EsmFile{f.name, esm_seal(symkey, f.data, f.comment)});
    }
    return blob;
}

EsmOpened esm_open_lockbox(const EsmBlob& blob, const EsmKey& key) {
    EsmOpened r;
    r.lockbox = blob.find(key.fingerprint);
    if (r.lockbox == nullptr) {
        r.failure = EsmOpenFailure::no_lockbox;
        r.message =
            fmt::format("no lockbox for key {} (fingerprint {}) among {} lockboxes", key.path,
                        esm_fingerprint_hex(key.fingerprint), blob.lockboxes.size());
        return r;
    }
    auto symkey = esm_unwrap_symkey(key, r.lockbox->encrypted_symkey);
    if (!symkey) {
        r.failure = EsmOpenFailure::unwrap;
        r.message = fmt::format("{}: {}", r.lockbox->node_name(), symkey.error().message);
        return r;
    }
    r.symkey = *symkey;
    return r;
}

Result<void> esm_authorize(EsmBlob& blob, const EsmSymKey& key, const EsmKey& recipient,
                           std::string comment) {
    if (!esm_comment_valid(comment))
        return fail(ExitCode::usage, "the comment must be printable ASCII on one line");
    if (const EsmLockbox* other = blob.find(recipient.fingerprint))
        return fail(ExitCode::usage, "{}: already authorised in {} (fingerprint {})",
                    recipient.path, other->node_name(), esm_fingerprint_hex(recipient.fingerprint));
    if (blob.lockboxes.size() >= kEsmMaxLockboxes)
        return fail(ExitCode::usage, "the blob already has {} lockboxes", blob.lockboxes.size());
    std::uint32_t next = 1;
    for (const EsmLockbox& box : blob.lockboxes)
        next = std::max(next, box.number + 1);
    if (next == 0)
        return fail(ExitCode::usage, "no lockbox number left");
    SVM_TRY(wrapped, esm_wrap_symkey(recipient, key));
    blob.lockboxes.push_back(
        EsmLockbox{next, std::move(comment), std::move(wrapped), recipient.fingerprint});
    return {};
}

Result<void> esm_revoke(EsmBlob& blob, const EsmFingerprint& fingerprint) {
    auto it = std::find_if(blob.lockboxes.begin(), blob.lockboxes.end(),
                           [&](const EsmLockbox& b) { return b.fingerprint == fingerprint; });
    if (it == blob.lockboxes.end())
        return fail(ExitCode::usage, "no lockbox has fingerprint {}",
                    esm_fingerprint_hex(fingerprint));
    if (it->number == 0)
        return fail(ExitCode::usage,
                    "fingerprint {} is the origin lockbox, which cannot be revoked",
                    esm_fingerprint_hex(fingerprint));
    blob.lockboxes.erase(it);
    return {};
}

} // namespace svmkit::format
