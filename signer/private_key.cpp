// PrivateKey: a key svmkit signs with, from a key file, a PKCS#11 token
// (pkcs11_engine.cpp) or generated.
#include "signer/signer_internal.hpp"

#include "signer/pkcs11_internal.hpp"

#include <new>
#include <stdexcept>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

namespace svmkit::signer {

using detail::PkeyCtxPtr;

Result<PrivateKey> PrivateKey::load(const std::string& path, const PassphraseSource& passphrase,
                                    const Pkcs11Options& pkcs11) {
    if (is_pkcs11_uri(path))
        return load_pkcs11(path, pkcs11);
    ErrorQueueGuard guard;
    SVM_TRY(key, load_private_pkey(path, passphrase));
    // Classify first: an unsupported key type is reported as such, even when
    // the file only holds its public half.
    SVM_TRY(pub, PublicKey::adopt(detail::public_only(key.get()), path));
    if (!detail::has_private_part(key.get()))
        return fail(ExitCode::malformed,
                    "{}: is a public key or certificate; a private key is needed", path);
    PrivateKey result;
    result.key_ = std::move(key);
    result.public_ = std::move(pub);
    result.origin_ = path;
    return result;
}

PrivateKey& PrivateKey::operator=(PrivateKey&& other) noexcept {
    if (this != &other) {
        key_ = std::move(other.key_); // frees our old key while its session still lives
        token_session_ = std::move(other.token_session_);
        public_ = std::move(other.public_);
        origin_ = std::move(other.origin_);
    }
    return *this;
}

Result<PrivateKey> PrivateKey::generate(KeyType type) {
    ErrorQueueGuard guard;
    EVP_PKEY* raw = nullptr;
    switch (type) {
    case KeyType::ed25519:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
        break;
    case KeyType::ecdsa_p256:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
        break;
    case KeyType::ecdsa_p384:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
        break;
    case KeyType::rsa_3072:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{3072});
        break;
    case KeyType::rsa_4096:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{4096});
        break;
    }
    PkeyPtr key(raw);
    std::string origin = fmt::format("new {} key", key_type_name(type));
    if (!key)
        return fail(ExitCode::io, "cannot generate a {} key: {}", key_type_name(type),
                    openssl_reason());
    SVM_TRY(pub, PublicKey::adopt(detail::public_only(key.get()), origin));
    PrivateKey result;
    result.key_ = std::move(key);
    result.public_ = std::move(pub);
    result.origin_ = std::move(origin);
    return result;
}

Result<std::vector<std::byte>> PrivateKey::sign(SignatureAlgorithm algo,
                                                std::span<const std::byte> message) const {
    ErrorQueueGuard guard;
    if (!key_)
        return fail(ExitCode::usage, "no private key to sign with");
    if (!public_.supports(algo))
        return fail(ExitCode::usage, "algorithm {} does not fit {} key in {}", algorithm_name(algo),
                    public_.description(), origin_);
    // For a key in a token, the engine's key context; ctx uses but does not
    // own it, so it is declared first to outlive ctx.
    PkeyCtxPtr token_ctx;
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx)
        throw std::bad_alloc();
    if (token_session_) {
        token_ctx.reset(detail::token_pkey_ctx(token_session_, key_.get()));
        if (!token_ctx)
            return fail(ExitCode::malformed, "{}: cannot start signing: {}", origin_,
                        openssl_reason());
        EVP_MD_CTX_set_pkey_ctx(ctx.get(), token_ctx.get());
    }
    auto prehash = algorithm_prehash(algo);
    const char* md_name = prehash ? detail::openssl_digest_name(*prehash) : nullptr;
    EVP_PKEY_CTX* pctx = nullptr; // owned by ctx (or token_ctx)
    if (EVP_DigestSignInit_ex(ctx.get(), &pctx, md_name, nullptr, nullptr, key_.get(), nullptr) !=
        1)
        return fail(ExitCode::malformed, "{}: cannot start signing: {}", origin_, openssl_reason());
    if (is_rsa_algorithm(algo) && !detail::configure_pss(pctx, md_name, RSA_PSS_SALTLEN_DIGEST))
        return fail(ExitCode::malformed, "{}: cannot set up RSA-PSS: {}", origin_,
                    openssl_reason());
    std::size_t len = static_cast<std::size_t>(EVP_PKEY_get_size(key_.get()));
    std::vector<std::byte> signature(len);
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &len,
                       uchar_data(message), message.size()) != 1)
        return fail(ExitCode::malformed, "{}: signing failed: {}", origin_, openssl_reason());
    signature.resize(len);
    return signature;
}

std::string PrivateKey::pem() const {
    if (in_token())
        throw std::logic_error(origin_ + ": a private key in a PKCS#11 token cannot be exported");
    // BIO_s_secmem clears its buffer when freed.
    BioPtr bio(BIO_new(BIO_s_secmem()));
    if (!bio)
        throw std::bad_alloc();
    if (PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
        1) {
        std::string reason = openssl_reason();
        ERR_clear_error();
        throw std::runtime_error("cannot write a private key: " + reason);
    }
    return detail::bio_contents(bio.get());
}

} // namespace svmkit::signer
