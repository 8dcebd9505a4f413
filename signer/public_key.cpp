// PublicKey: a key svmkit verifies signatures with, identified by the SHA-256
// of its SubjectPublicKeyInfo.
#include "signer/signer_internal.hpp"

#include <algorithm>
#include <new>
#include <stdexcept>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

namespace svmkit::signer {

Result<PublicKey> PublicKey::adopt(PkeyPtr key, const std::string& what) {
    SVM_TRY(algo, detail::classify(key.get(), what));
    PublicKey pub;
    auto der = detail::spki_of(key.get());
    auto hash = digest(DigestAlgorithm::sha256, der);
    std::copy(hash.begin(), hash.end(), pub.key_id_.begin());
    pub.key_ = std::move(key);
    pub.default_algorithm_ = algo;
    return pub;
}

Result<PublicKey> PublicKey::load(const std::string& path) {
    ErrorQueueGuard guard;
    SVM_TRY(key, load_public_pkey(path));
    return adopt(std::move(key), path);
}

Result<PublicKey> PublicKey::from_der(std::span<const std::byte> spki_der,
                                      const std::string& what) {
    ErrorQueueGuard guard;
    PkeyPtr key = detail::parse_spki_der(spki_der);
    if (!key)
        return fail(ExitCode::malformed, "{}: not a DER SubjectPublicKeyInfo: {}", what,
                    openssl_reason());
    return adopt(std::move(key), what);
}

std::vector<std::byte> PublicKey::spki_der() const {
    return detail::spki_of(key_.get());
}

std::string PublicKey::pem() const {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio)
        throw std::bad_alloc();
    if (PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) {
        std::string reason = openssl_reason();
        ERR_clear_error();
        throw std::runtime_error("cannot write a public key: " + reason);
    }
    return detail::bio_contents(bio.get());
}

bool PublicKey::supports(SignatureAlgorithm algo) const {
    // An RSA key signs with either hash; the default follows the key size.
    if (is_rsa_algorithm(default_algorithm_))
        return is_rsa_algorithm(algo);
    return algo == default_algorithm_;
}

std::string PublicKey::description() const {
    switch (default_algorithm_) {
    case SignatureAlgorithm::ed25519:
        return "Ed25519";
    case SignatureAlgorithm::ecdsa_p256_sha256:
        return "ECDSA P-256";
    case SignatureAlgorithm::ecdsa_p384_sha384:
        return "ECDSA P-384";
    case SignatureAlgorithm::rsa_pss_sha256:
    case SignatureAlgorithm::rsa_pss_sha384:
        return fmt::format("RSA {}", key_ ? EVP_PKEY_get_bits(key_.get()) : 0);
    }
    return "unknown";
}

Result<void> PublicKey::verify(SignatureAlgorithm algo, std::span<const std::byte> message,
                               std::span<const std::byte> signature) const {
    ErrorQueueGuard guard;
    if (!key_)
        return fail(ExitCode::verification_failed, "no public key to verify with");
    if (!supports(algo))
        return fail(ExitCode::verification_failed, "algorithm {} does not fit {} key {}",
                    algorithm_name(algo), description(), key_id_hex(key_id_));
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx)
        throw std::bad_alloc();
    auto prehash = algorithm_prehash(algo);
    const char* md_name = prehash ? detail::openssl_digest_name(*prehash) : nullptr;
    EVP_PKEY_CTX* pctx = nullptr; // owned by ctx
    if (EVP_DigestVerifyInit_ex(ctx.get(), &pctx, md_name, nullptr, nullptr, key_.get(), nullptr) !=
        1)
        return fail(ExitCode::verification_failed, "cannot start verification: {}",
                    openssl_reason());
    // Any salt length verifies; signing uses the digest length.
    if (is_rsa_algorithm(algo) && !detail::configure_pss(pctx, md_name, RSA_PSS_SALTLEN_AUTO))
        return fail(ExitCode::verification_failed, "cannot set up RSA-PSS verification: {}",
                    openssl_reason());
    int rc = EVP_DigestVerify(ctx.get(), uchar_data(signature), signature.size(),
                              uchar_data(message), message.size());
    if (rc != 1)
        return fail(ExitCode::verification_failed, "signature does not verify");
    return {};
}

} // namespace svmkit::signer
