// Between signer.cpp and pkcs11.cpp: signing with a key held in a token.
#pragma once

#include <memory>

#include <openssl/evp.h>

namespace svmkit::signer::detail {

// A signing context for a key from the pkcs11 engine that uses the engine's
// own EVP_PKEY methods, so the token applies RSA-PSS itself
// (CKM_RSA_PKCS_PSS) where it can, rather than only a raw RSA operation on
// software-padded data (CKM_RSA_X_509, which many tokens refuse). `session`
// is the PrivateKey's token session. The caller owns the result and attaches
// it with EVP_MD_CTX_set_pkey_ctx (which does not take ownership) before
// EVP_DigestSignInit_ex: EVP_DigestSignInit with the engine would also ask
// the engine for the digest, which it does not implement. Null on failure.
EVP_PKEY_CTX* token_pkey_ctx(const std::shared_ptr<void>& session, EVP_PKEY* key);

} // namespace svmkit::signer::detail
