// What svmkit asks of a key OpenSSL has read: whether it signs with it (and
// with which algorithm by default), whether it holds a private part, its
// SubjectPublicKeyInfo; and the RSA-PSS parameters signing and verifying share.
#include "signer/signer_internal.hpp"

#include <stdexcept>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

namespace svmkit::signer::detail {

bool is_rsa_algorithm(SignatureAlgorithm algo) {
    return algo == SignatureAlgorithm::rsa_pss_sha256 || algo == SignatureAlgorithm::rsa_pss_sha384;
}

// Decides whether svmkit supports `key` and, if so, its default algorithm.
Result<SignatureAlgorithm> classify(EVP_PKEY* key, const std::string& what) {
    if (EVP_PKEY_is_a(key, "ED25519"))
        return SignatureAlgorithm::ed25519;
    if (EVP_PKEY_is_a(key, "EC")) {
        char name[80] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_group_name(key, name, sizeof name, &len) != 1)
            return fail(ExitCode::malformed,
                        "{}: unsupported EC key without a named curve, svmkit signs with P-256 or "
                        "P-384",
                        what);
        int nid = OBJ_sn2nid(name);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(name);
        if (nid == NID_X9_62_prime256v1)
            return SignatureAlgorithm::ecdsa_p256_sha256;
        if (nid == NID_secp384r1)
            return SignatureAlgorithm::ecdsa_p384_sha384;
        return fail(ExitCode::malformed,
                    "{}: unsupported EC curve {}, svmkit signs with P-256 or P-384", what, name);
    }
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits == 3072)
            return SignatureAlgorithm::rsa_pss_sha256;
        if (bits == 4096)
            return SignatureAlgorithm::rsa_pss_sha384;
        return fail(ExitCode::malformed,
                    "{}: unsupported RSA key size {} bits, svmkit signs with RSA 3072 or 4096",
                    what, bits);
    }
    const char* type = EVP_PKEY_get0_type_name(key);
    return fail(ExitCode::malformed,
                "{}: unsupported key type {}, svmkit signs with Ed25519, ECDSA P-256/P-384 or "
                "RSA 3072/4096",
                what, type != nullptr ? type : "(unknown)");
}

// True when `key` holds private material (not just a public key).
bool has_private_part(EVP_PKEY* key) {
    if (EVP_PKEY_is_a(key, "RSA")) {
        BIGNUM* d = nullptr;
        bool ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_D, &d) == 1;
        BignumPtr owned(d);
        return ok && d != nullptr;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        BIGNUM* priv = nullptr;
        bool ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv) == 1;
        BignumPtr owned(priv);
        return ok && priv != nullptr;
    }
    // Ed25519 and others: ask for the size of the raw private key.
    std::size_t len = 0;
    return EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PRIV_KEY, nullptr, 0, &len) == 1 &&
           len > 0;
}

std::vector<std::byte> spki_of(EVP_PKEY* key) {
    int len = i2d_PUBKEY(key, nullptr);
    if (len <= 0)
        throw std::runtime_error("cannot encode a public key: " + openssl_reason());
    std::vector<std::byte> der(static_cast<std::size_t>(len));
    auto* out = reinterpret_cast<unsigned char*>(der.data());
    if (i2d_PUBKEY(key, &out) != len)
        throw std::runtime_error("cannot encode a public key: " + openssl_reason());
    return der;
}

// Parses a whole DER SubjectPublicKeyInfo; trailing bytes make it fail.
PkeyPtr parse_spki_der(std::span<const std::byte> der) {
    const unsigned char* p = uchar_data(der);
    PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
    if (key && p != uchar_data(der) + der.size())
        key.reset();
    return key;
}

// A public-only copy of `key` (drops any private material).
PkeyPtr public_only(EVP_PKEY* key) {
    PkeyPtr pub = parse_spki_der(spki_of(key));
    if (!pub)
        throw std::runtime_error("cannot re-read a public key: " + openssl_reason());
    return pub;
}

// Keys from the pkcs11 engine get a legacy (ENGINE) EVP_PKEY_CTX, which takes
// the MGF1 digest only as an EVP_MD: setting it by name fails there.
bool configure_pss(EVP_PKEY_CTX* pctx, const char* md_name, int salt_len) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt_len) <= 0)
        return false;
    if (EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, md_name, nullptr) > 0)
        return true;
    const EVP_MD* md = EVP_get_digestbyname(md_name);
    return md != nullptr && EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0;
}

} // namespace svmkit::signer::detail
