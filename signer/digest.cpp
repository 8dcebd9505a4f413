// Digests through OpenSSL's EVP interface: the streaming Hasher and the
// one-shot digest().
#include "signer/signer_internal.hpp"

#include <new>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/evp.h>

namespace svmkit::signer {

using detail::fetched_md;
using detail::MdCtxPtr;

// Fetched once per process: EVP_MD_fetch is far too slow to repeat per hash.
const EVP_MD* detail::fetched_md(DigestAlgorithm algo) {
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

const char* detail::openssl_digest_name(DigestAlgorithm algo) {
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

} // namespace svmkit::signer
