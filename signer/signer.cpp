// Keys and signatures through OpenSSL 3's EVP interface.
//
// Loading strategy: a key file is PEM when it contains a "-----BEGIN " line
// anywhere (PEM readers skip leading text and unrelated blocks), otherwise DER.
// Each loader tries the forms it accepts in a fixed order on a fresh memory
// BIO. OpenSSL never prompts: every read that might need a passphrase gets
// our callback, which fails when no passphrase is available. The OpenSSL
// error queue is cleared when every public entry point returns.
#include "signer/signer.hpp"

#include "signer/openssl_util.hpp"

#include "base/file.hpp"
#include "signer/pkcs11_internal.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

namespace svmkit::signer {

namespace {

// RAII wrappers: signer/openssl_util.hpp.
using detail::BignumPtr;
using detail::BioPtr;
using detail::MdCtxPtr;
using detail::PkeyCtxPtr;
using detail::X509Ptr;

using detail::ErrorQueueGuard;
using detail::openssl_reason;

const unsigned char* uchar_data(std::span<const std::byte> data) {
    return reinterpret_cast<const unsigned char*>(data.data());
}

BioPtr memory_bio(std::span<const std::byte> data) {
    // Key files are read with a small limit, so the size fits in an int.
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    if (!bio)
        throw std::bad_alloc();
    return bio;
}

std::string bio_contents(BIO* bio) {
    char* ptr = nullptr;
    long len = BIO_get_mem_data(bio, &ptr);
    if (len <= 0 || ptr == nullptr)
        return {};
    return std::string(ptr, static_cast<std::size_t>(len));
}

constexpr std::uint64_t key_file_limit = 1u << 20;

// Wipes a buffer that may hold private key material when it goes out of scope.
struct WipeOnExit {
    explicit WipeOnExit(std::vector<std::byte>& b) : bytes(b) {}
    WipeOnExit(const WipeOnExit&) = delete;
    WipeOnExit& operator=(const WipeOnExit&) = delete;
    ~WipeOnExit() {
        if (!bytes.empty())
            OPENSSL_cleanse(bytes.data(), bytes.size());
    }
    std::vector<std::byte>& bytes;
};

bool looks_like_pem(std::span<const std::byte> data) {
    static constexpr std::string_view marker = "-----BEGIN ";
    std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    return text.find(marker) != std::string_view::npos;
}

// ---- digests -------------------------------------------------------------------

// Fetched once per process: EVP_MD_fetch is far too slow to repeat per hash.
const EVP_MD* fetched_md(DigestAlgorithm algo) {
    auto fetch = [](const char* name) {
        EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
        if (md == nullptr)
            throw std::runtime_error(fmt::format("OpenSSL has no {} digest", name));
        return md;
    };
    switch (algo) {
    case DigestAlgorithm::sha256: {
        static EVP_MD* const md = fetch("SHA2-256");
        return md;
    }
    case DigestAlgorithm::sha384: {
        static EVP_MD* const md = fetch("SHA2-384");
        return md;
    }
    case DigestAlgorithm::sha512: {
        static EVP_MD* const md = fetch("SHA2-512");
        return md;
    }
    }
    throw std::logic_error("invalid DigestAlgorithm");
}

const char* openssl_digest_name(DigestAlgorithm algo) {
    switch (algo) {
    case DigestAlgorithm::sha256:
        return "SHA2-256";
    case DigestAlgorithm::sha384:
        return "SHA2-384";
    case DigestAlgorithm::sha512:
        return "SHA2-512";
    }
    return "";
}

// ---- key inspection --------------------------------------------------------------

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

// ---- passphrases ---------------------------------------------------------------

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
    ~PassphraseState() {
        if (passphrase && !passphrase->empty())
            OPENSSL_cleanse(passphrase->data(), passphrase->size());
    }

    void resolve() {
        resolved = true;
        if (source == nullptr)
            return;
        if (source->env_var && source->file) {
            error = Error{ExitCode::usage, "give the passphrase through an environment variable or "
                                           "a file, not both"};
            return;
        }
        if (source->env_var) {
            const char* value = std::getenv(source->env_var->c_str());
            if (value == nullptr) {
                error = Error{ExitCode::usage, fmt::format("{}: passphrase variable {} is not set",
                                                           *key_path, *source->env_var)};
                return;
            }
            passphrase = std::string(value);
            return;
        }
        if (source->file) {
            auto content = read_small_file(*source->file, 64ull * 1024);
            if (!content) {
                error = content.error();
                return;
            }
            std::string text(reinterpret_cast<const char*>(content->data()), content->size());
            OPENSSL_cleanse(content->data(), content->size());
            std::size_t end = text.find('\n');
            std::string line = text.substr(0, end);
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            OPENSSL_cleanse(text.data(), text.size());
            passphrase = std::move(line);
        }
    }
};

int passphrase_callback(char* buf, int size, int /*rwflag*/, void* user) noexcept {
    auto* state = static_cast<PassphraseState*>(user);
    if (state == nullptr)
        return -1;
    try {
        state->asked = true;
        if (!state->resolved)
            state->resolve();
        if (state->error || !state->passphrase)
            return -1;
        if (size < 0 || state->passphrase->size() > static_cast<std::size_t>(size)) {
            state->error = Error{ExitCode::usage, fmt::format("{}: passphrase longer than {} bytes",
                                                              *state->key_path, size)};
            return -1;
        }
        // OpenSSL takes the length returned, not a terminator.
        std::memcpy(buf, state->passphrase->data(), // NOLINT(bugprone-not-null-terminated-result)
                    state->passphrase->size());
        state->supplied = true;
        return static_cast<int>(state->passphrase->size());
    } catch (...) {
        return -1;
    }
}

// ---- file parsing ----------------------------------------------------------------

// The public key of an SPKI or certificate (PEM or DER); null if neither.
PkeyPtr parse_public_forms(std::span<const std::byte> data, bool pem) {
    if (pem) {
        {
            BioPtr bio = memory_bio(data);
            PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, passphrase_callback, nullptr));
            if (key)
                return key;
        }
        BioPtr bio = memory_bio(data);
        // The _AUX reader accepts both "CERTIFICATE" and "TRUSTED CERTIFICATE".
        X509Ptr cert(PEM_read_bio_X509_AUX(bio.get(), nullptr, passphrase_callback, nullptr));
        if (cert)
            return PkeyPtr(X509_get_pubkey(cert.get()));
        return nullptr;
    }
    if (PkeyPtr key = parse_spki_der(data))
        return key;
    const unsigned char* p = uchar_data(data);
    X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(data.size())));
    if (cert && p == uchar_data(data) + data.size())
        return PkeyPtr(X509_get_pubkey(cert.get()));
    return nullptr;
}

// A private key (PEM: PKCS#8, encrypted PKCS#8, traditional, encrypted
// traditional; DER: PKCS#8, traditional, encrypted PKCS#8); null if none.
// The key may turn out to hold only a public part: callers check.
PkeyPtr parse_private_forms(std::span<const std::byte> data, bool pem, PassphraseState& state) {
    if (pem) {
        BioPtr bio = memory_bio(data);
        return PkeyPtr(PEM_read_bio_PrivateKey_ex(bio.get(), nullptr, passphrase_callback, &state,
                                                  nullptr, nullptr));
    }
    const unsigned char* p = uchar_data(data);
    PkeyPtr key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(data.size())));
    if (key && p == uchar_data(data) + data.size())
        return key;
    BioPtr bio = memory_bio(data);
    return PkeyPtr(d2i_PKCS8PrivateKey_bio(bio.get(), nullptr, passphrase_callback, &state));
}

// ---- signing parameters ------------------------------------------------------------

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

} // namespace

// ---- names ---------------------------------------------------------------------------

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

// ---- Hasher ------------------------------------------------------------------------------

struct Hasher::Impl {
    MdCtxPtr ctx;
};

Hasher::Hasher(DigestAlgorithm algo) : impl_(std::make_unique<Impl>()) {
    impl_->ctx.reset(EVP_MD_CTX_new());
    if (!impl_->ctx)
        throw std::bad_alloc();
    if (EVP_DigestInit_ex2(impl_->ctx.get(), fetched_md(algo), nullptr) != 1) {
        ERR_clear_error();
        throw std::runtime_error("cannot start a digest");
    }
}

Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;
Hasher::~Hasher() = default;

void Hasher::update(std::span<const std::byte> data) {
    if (!impl_)
        throw std::logic_error("Hasher::update after finish");
    if (EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()) != 1) {
        ERR_clear_error();
        throw std::runtime_error("digest update failed");
    }
}

std::vector<std::byte> Hasher::finish() {
    if (!impl_)
        throw std::logic_error("Hasher::finish called twice");
    std::vector<std::byte> out(EVP_MAX_MD_SIZE);
    unsigned len = 0;
    int ok =
        EVP_DigestFinal_ex(impl_->ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len);
    impl_.reset();
    if (ok != 1) {
        ERR_clear_error();
        throw std::runtime_error("digest finish failed");
    }
    out.resize(len);
    return out;
}

std::vector<std::byte> digest(DigestAlgorithm algo, std::span<const std::byte> data) {
    std::vector<std::byte> out(EVP_MAX_MD_SIZE);
    unsigned len = 0;
    if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
                   fetched_md(algo), nullptr) != 1) {
        ERR_clear_error();
        throw std::runtime_error("digest failed");
    }
    out.resize(len);
    return out;
}

// ---- PublicKey ---------------------------------------------------------------------------

Result<PublicKey> PublicKey::adopt(PkeyPtr key, const std::string& what) {
    SVM_TRY(algo, classify(key.get(), what));
    PublicKey pub;
    auto der = spki_of(key.get());
    auto hash = digest(DigestAlgorithm::sha256, der);
    std::copy(hash.begin(), hash.end(), pub.key_id_.begin());
    pub.key_ = std::move(key);
    pub.default_algorithm_ = algo;
    return pub;
}

Result<PkeyPtr> load_public_pkey(const std::string& path) {
    ErrorQueueGuard guard;
    SVM_TRY(data, read_small_file(path, key_file_limit));
    const bool pem = looks_like_pem(data);
    if (!pem && (data.empty() || data[0] != std::byte{0x30}))
        return fail(ExitCode::malformed,
                    "{}: not a public key, certificate or private key (PEM or DER)", path);
    if (PkeyPtr key = parse_public_forms(data, pem))
        return key;

    // An unencrypted private key: use its public half. The state never
    // supplies a passphrase, so an encrypted key fails without a prompt.
    PassphraseState state;
    state.key_path = &path;
    WipeOnExit wipe{data};
    PkeyPtr key = parse_private_forms(data, pem, state);
    if (key)
        return public_only(key.get());
    if (state.asked)
        return fail(ExitCode::malformed,
                    "{}: is an encrypted private key; give its public key or certificate instead",
                    path);
    return fail(ExitCode::malformed,
                "{}: not a public key, certificate or private key (PEM or DER)", path);
}

Result<PublicKey> PublicKey::load(const std::string& path) {
    ErrorQueueGuard guard;
    SVM_TRY(key, load_public_pkey(path));
    return adopt(std::move(key), path);
}

bool pkey_has_private_part(EVP_PKEY* key) {
    return has_private_part(key);
}

Result<PublicKey> PublicKey::from_der(std::span<const std::byte> spki_der,
                                      const std::string& what) {
    ErrorQueueGuard guard;
    PkeyPtr key = parse_spki_der(spki_der);
    if (!key)
        return fail(ExitCode::malformed, "{}: not a DER SubjectPublicKeyInfo: {}", what,
                    openssl_reason());
    return adopt(std::move(key), what);
}

std::vector<std::byte> PublicKey::spki_der() const {
    return spki_of(key_.get());
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
    return bio_contents(bio.get());
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
    const char* md_name = prehash ? openssl_digest_name(*prehash) : nullptr;
    EVP_PKEY_CTX* pctx = nullptr; // owned by ctx
    if (EVP_DigestVerifyInit_ex(ctx.get(), &pctx, md_name, nullptr, nullptr, key_.get(), nullptr) !=
        1)
        return fail(ExitCode::verification_failed, "cannot start verification: {}",
                    openssl_reason());
    // Any salt length verifies; signing uses the digest length.
    if (is_rsa_algorithm(algo) && !configure_pss(pctx, md_name, RSA_PSS_SALTLEN_AUTO))
        return fail(ExitCode::verification_failed, "cannot set up RSA-PSS verification: {}",
                    openssl_reason());
    int rc = EVP_DigestVerify(ctx.get(), uchar_data(signature), signature.size(),
                              uchar_data(message), message.size());
    if (rc != 1)
        return fail(ExitCode::verification_failed, "signature does not verify");
    return {};
}

// ---- PrivateKey ----------------------------------------------------------------------------

namespace {

// A private key others can read is a key others may have copied: said,
// not refused (CI runners often check keys out 0644), once per load.
void warn_if_exposed(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0)
        std::fprintf(stderr,
                     "svmkit: warning: %s: the private key is readable by group or others "
                     "(mode %04o); chmod 600 it\n",
                     path.c_str(), static_cast<unsigned>(st.st_mode & 07777));
}

} // namespace

Result<PkeyPtr> load_private_pkey(const std::string& path, const PassphraseSource& passphrase) {
    ErrorQueueGuard guard;
    SVM_TRY(data, read_small_file(path, key_file_limit));
    warn_if_exposed(path);
    const bool pem = looks_like_pem(data);
    if (!pem && (data.empty() || data[0] != std::byte{0x30}))
        return fail(ExitCode::malformed, "{}: not a private key (PEM or DER)", path);

    WipeOnExit wipe{data};
    PassphraseState state;
    state.source = &passphrase;
    state.key_path = &path;
    PkeyPtr key = parse_private_forms(data, pem, state);
    if (!key) {
        if (state.error)
            return svmkit::unexpected(std::move(*state.error));
        if (state.asked && !state.supplied)
            return fail(ExitCode::usage,
                        "{}: the private key is encrypted; pass --key-passphrase-env VAR or "
                        "--key-passphrase-file FILE",
                        path);
        if (state.supplied)
            return fail(ExitCode::malformed, "{}: cannot decrypt private key (wrong passphrase?)",
                        path);
        if (parse_public_forms(data, pem))
            return fail(ExitCode::malformed,
                        "{}: is a public key or certificate; a private key is needed", path);
        return fail(ExitCode::malformed, "{}: not a private key (PEM or DER): {}", path,
                    openssl_reason());
    }

    return key;
}

Result<PrivateKey> PrivateKey::load(const std::string& path, const PassphraseSource& passphrase,
                                    const Pkcs11Options& pkcs11) {
    if (is_pkcs11_uri(path))
        return load_pkcs11(path, pkcs11);
    ErrorQueueGuard guard;
    SVM_TRY(key, load_private_pkey(path, passphrase));
    // Classify first: an unsupported key type is reported as such, even when
    // the file only holds its public half.
    SVM_TRY(pub, PublicKey::adopt(public_only(key.get()), path));
    if (!has_private_part(key.get()))
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
    SVM_TRY(pub, PublicKey::adopt(public_only(key.get()), origin));
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
    const char* md_name = prehash ? openssl_digest_name(*prehash) : nullptr;
    EVP_PKEY_CTX* pctx = nullptr; // owned by ctx (or token_ctx)
    if (EVP_DigestSignInit_ex(ctx.get(), &pctx, md_name, nullptr, nullptr, key_.get(), nullptr) !=
        1)
        return fail(ExitCode::malformed, "{}: cannot start signing: {}", origin_, openssl_reason());
    if (is_rsa_algorithm(algo) && !configure_pss(pctx, md_name, RSA_PSS_SALTLEN_DIGEST))
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
    return bio_contents(bio.get());
}

} // namespace svmkit::signer
