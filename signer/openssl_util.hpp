// Small OpenSSL helpers shared by the signer's translation units and the PEF
// ibm,esm cryptography (format/esm_crypto.cpp).
#pragma once

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace svmkit::signer::detail {

// ---- RAII wrappers ---------------------------------------------------------

template <typename T, void (*Free)(T*)>
struct FreeWith {
    void operator()(T* p) const { Free(p); }
};

using BioPtr = std::unique_ptr<BIO, FreeWith<BIO, BIO_free_all>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, FreeWith<EVP_MD_CTX, EVP_MD_CTX_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, FreeWith<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, FreeWith<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, FreeWith<X509, X509_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, FreeWith<BIGNUM, BN_clear_free>>;

// Clears the OpenSSL error queue when a public entry point returns, so stale
// errors from probing or handled failures never show up in later messages.
struct ErrorQueueGuard {
    ErrorQueueGuard() = default;
    ErrorQueueGuard(const ErrorQueueGuard&) = delete;
    ErrorQueueGuard& operator=(const ErrorQueueGuard&) = delete;
    ~ErrorQueueGuard() { ERR_clear_error(); }
};

// The reason of the most recent OpenSSL error, or a fallback.
inline std::string openssl_reason() {
    unsigned long code = ERR_peek_last_error();
    if (code == 0)
        return "unknown OpenSSL error";
    const char* reason = ERR_reason_error_string(code);
    if (reason != nullptr)
        return reason;
    return fmt::format("OpenSSL error {:#x}", code);
}

// The value of one hex digit, or -1.
inline int hex_nibble(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

} // namespace svmkit::signer::detail
