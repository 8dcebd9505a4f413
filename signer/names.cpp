// The names svmkit gives digests, signature algorithms, key types and key
// ids on the command line, in manifests and in messages.
#include "signer/signer_internal.hpp"

#include <openssl/evp.h>

namespace svmkit::signer {

std::string_view digest_name(DigestAlgorithm algo) {
    switch (algo) {
    case DigestAlgorithm::sha256:
        return "sha256";
    case DigestAlgorithm::sha384:
        return "sha384";
    case DigestAlgorithm::sha512:
        return "sha512";
    }
    return "";
}

std::optional<DigestAlgorithm> parse_digest_name(std::string_view name) {
    for (auto algo : {DigestAlgorithm::sha256, DigestAlgorithm::sha384, DigestAlgorithm::sha512})
        if (digest_name(algo) == name)
            return algo;
    return std::nullopt;
}

std::size_t digest_size(DigestAlgorithm algo) {
    switch (algo) {
    case DigestAlgorithm::sha256:
        return 32;
    case DigestAlgorithm::sha384:
        return 48;
    case DigestAlgorithm::sha512:
        return 64;
    }
    return 0;
}

std::string_view algorithm_name(SignatureAlgorithm algo) {
    switch (algo) {
    case SignatureAlgorithm::ed25519:
        return "ed25519";
    case SignatureAlgorithm::ecdsa_p256_sha256:
        return "ecdsa-p256-sha256";
    case SignatureAlgorithm::ecdsa_p384_sha384:
        return "ecdsa-p384-sha384";
    case SignatureAlgorithm::rsa_pss_sha256:
        return "rsa-pss-sha256";
    case SignatureAlgorithm::rsa_pss_sha384:
        return "rsa-pss-sha384";
    }
    return "";
}

std::optional<SignatureAlgorithm> parse_algorithm_name(std::string_view name) {
    for (auto algo : {SignatureAlgorithm::ed25519, SignatureAlgorithm::ecdsa_p256_sha256,
                      SignatureAlgorithm::ecdsa_p384_sha384, SignatureAlgorithm::rsa_pss_sha256,
                      SignatureAlgorithm::rsa_pss_sha384})
        if (algorithm_name(algo) == name)
            return algo;
    return std::nullopt;
}

std::optional<DigestAlgorithm> algorithm_prehash(SignatureAlgorithm algo) {
    switch (algo) {
    case SignatureAlgorithm::ed25519:
        return std::nullopt;
    case SignatureAlgorithm::ecdsa_p256_sha256:
    case SignatureAlgorithm::rsa_pss_sha256:
        return DigestAlgorithm::sha256;
    case SignatureAlgorithm::ecdsa_p384_sha384:
    case SignatureAlgorithm::rsa_pss_sha384:
        return DigestAlgorithm::sha384;
    }
    return std::nullopt;
}

std::string_view key_type_name(KeyType type) {
    switch (type) {
    case KeyType::ed25519:
        return "ed25519";
    case KeyType::ecdsa_p256:
        return "ecdsa-p256";
    case KeyType::ecdsa_p384:
        return "ecdsa-p384";
    case KeyType::rsa_3072:
        return "rsa-3072";
    case KeyType::rsa_4096:
        return "rsa-4096";
    }
    return "";
}

std::optional<KeyType> parse_key_type(std::string_view name) {
    for (auto type : {KeyType::ed25519, KeyType::ecdsa_p256, KeyType::ecdsa_p384, KeyType::rsa_3072,
                      KeyType::rsa_4096})
        if (key_type_name(type) == name)
            return type;
    return std::nullopt;
}

std::string key_id_hex(const KeyId& id) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(id.size() * 2);
    for (std::byte b : id) {
        auto v = std::to_integer<unsigned>(b);
        out.push_back(digits[v >> 4]);
        out.push_back(digits[v & 0xf]);
    }
    return out;
}

std::optional<KeyId> parse_key_id_hex(std::string_view hex) {
    KeyId id{};
    if (hex.size() != id.size() * 2)
        return std::nullopt;
    const auto nibble = detail::hex_nibble;
    for (std::size_t i = 0; i < id.size(); ++i) {
        int hi = nibble(hex[2 * i]);
        int lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        id[i] = static_cast<std::byte>((hi << 4) | lo);
    }
    return id;
}

void PkeyDeleter::operator()(EVP_PKEY* key) const {
    EVP_PKEY_free(key);
}

} // namespace svmkit::signer
