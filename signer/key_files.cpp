// Key files of any type. A key file is PEM when it contains a "-----BEGIN "
// line anywhere (PEM readers skip leading text and unrelated blocks),
// otherwise DER. Each loader tries the forms it accepts in a fixed order on a
// fresh memory BIO. OpenSSL never prompts: every read that might need a
// passphrase gets passphrase_callback, which fails when no passphrase is
// available. The OpenSSL error queue is cleared when every public entry point
// returns.
#include "signer/signer_internal.hpp"

#include "base/file.hpp"

#include <cstdio>
#include <new>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

namespace svmkit::signer {

using detail::BioPtr;
using detail::ErrorQueueGuard;
using detail::openssl_reason;
using detail::passphrase_callback;
using detail::PassphraseState;
using detail::uchar_data;
using detail::X509Ptr;

BioPtr detail::memory_bio(std::span<const std::byte> data) {
    // Key files are read with a small limit, so the size fits in an int.
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    if (!bio)
        throw std::bad_alloc();
    return bio;
}

std::string detail::bio_contents(BIO* bio) {
    char* ptr = nullptr;
    long len = BIO_get_mem_data(bio, &ptr);
    if (len <= 0 || ptr == nullptr)
        return {};
    return std::string(ptr, static_cast<std::size_t>(len));
}

// The public key of an SPKI or certificate (PEM or DER); null if neither.
PkeyPtr detail::parse_public_forms(std::span<const std::byte> data, bool pem) {
    if (pem) {
        {
            BioPtr bio = detail::memory_bio(data);
            PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, passphrase_callback, nullptr));
            if (key)
                return key;
        }
        BioPtr bio = detail::memory_bio(data);
        // The _AUX reader accepts both "CERTIFICATE" and "TRUSTED CERTIFICATE".
        X509Ptr cert(PEM_read_bio_X509_AUX(bio.get(), nullptr, passphrase_callback, nullptr));
        if (cert)
            return PkeyPtr(X509_get_pubkey(cert.get()));
        return nullptr;
    }
    if (PkeyPtr key = detail::parse_spki_der(data))
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
PkeyPtr detail::parse_private_forms(std::span<const std::byte> data, bool pem,
                                    PassphraseState& state) {
    if (pem) {
        BioPtr bio = detail::memory_bio(data);
        return PkeyPtr(PEM_read_bio_PrivateKey_ex(bio.get(), nullptr, passphrase_callback, &state,
                                                  nullptr, nullptr));
    }
    const unsigned char* p = uchar_data(data);
    PkeyPtr key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(data.size())));
    if (key && p == uchar_data(data) + data.size())
        return key;
    BioPtr bio = detail::memory_bio(data);
    return PkeyPtr(d2i_PKCS8PrivateKey_bio(bio.get(), nullptr, passphrase_callback, &state));
}

namespace {

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

Result<PkeyPtr> load_public_pkey(const std::string& path) {
    ErrorQueueGuard guard;
    SVM_TRY(data, read_small_file(path, key_file_limit));
    const bool pem = looks_like_pem(data);
    if (!pem && (data.empty() || data[0] != std::byte{0x30}))
        return fail(ExitCode::malformed,
                    "{}: not a public key, certificate or private key (PEM or DER)", path);
    if (PkeyPtr key = detail::parse_public_forms(data, pem))
        return key;

    // An unencrypted private key: use its public half. The state never
    // supplies a passphrase, so an encrypted key fails without a prompt.
    PassphraseState state;
    state.key_path = &path;
    WipeOnExit wipe{data};
    PkeyPtr key = detail::parse_private_forms(data, pem, state);
    if (key)
        return detail::public_only(key.get());
    if (state.asked)
        return fail(ExitCode::malformed,
                    "{}: is an encrypted private key; give its public key or certificate instead",
                    path);
    return fail(ExitCode::malformed,
                "{}: not a public key, certificate or private key (PEM or DER)", path);
}

bool pkey_has_private_part(EVP_PKEY* key) {
    return detail::has_private_part(key);
}

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
    PkeyPtr key = detail::parse_private_forms(data, pem, state);
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
        if (detail::parse_public_forms(data, pem))
            return fail(ExitCode::malformed,
                        "{}: is a public key or certificate; a private key is needed", path);
        return fail(ExitCode::malformed, "{}: not a private key (PEM or DER): {}", path,
                    openssl_reason());
    }

    return key;
}

} // namespace svmkit::signer
