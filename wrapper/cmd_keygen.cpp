// svmkit keygen: a fresh signing key pair.
#include "wrapper/commands.hpp"

#include "base/file.hpp"
#include "base/output_file.hpp"

#include <cstdio>
#include <unistd.h>

namespace svmkit::cli {

Result<int> run_keygen(const KeygenOptions& o) {
    auto type = signer::parse_key_type(o.algo);
    if (!type)
        return fail(
            ExitCode::usage,
            "--algo: unknown key type '{}' (ed25519, ecdsa-p256, ecdsa-p384, rsa-3072, rsa-4096)",
            o.algo);
    // Both outputs are checked (neither an existing private key without
    // --force, nor the same file twice) before the key is generated, and
    // both are written in full before either appears, so a failure leaves
    // neither behind.
    SVM_TRY(priv, OutputFile::create(o.out, {.private_key = true, .overwrite = o.force}));
    SVM_TRY(pub, OutputFile::create(o.pub));
    SVM_TRY(key, signer::PrivateKey::generate(*type));
    SVM_CHECK(pub.write_all(as_bytes(key.public_key().pem())));
    SVM_CHECK(priv.write_all(as_bytes(key.pem())));
    // Public key first, so no private key is ever left without its pair; if
    // the private key cannot be put in place, the public key goes again.
    SVM_CHECK(pub.commit());
    if (auto r = priv.commit(); !r) {
        if (o.pub != "-")
            ::unlink(o.pub.c_str());
        return svmkit::unexpected(std::move(r.error()));
    }
    std::printf("%s key %s\n  private: %s\n  public:  %s\n",
                std::string(signer::key_type_name(*type)).c_str(),
                signer::key_id_hex(key.public_key().key_id()).c_str(), o.out.c_str(),
                o.pub.c_str());
    return 0;
}

} // namespace svmkit::cli
