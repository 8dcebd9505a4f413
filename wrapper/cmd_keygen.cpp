// svmkit keygen: a fresh signing key pair.
#include "wrapper/commands.hpp"

#include "base/file.hpp"

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
    if (o.out == o.pub)
        return fail(ExitCode::usage, "--out and --pub name the same file");
    SVM_TRY(key, signer::PrivateKey::generate(*type));
    // Both files are written in full before either appears, so a failure
    // (say, a missing directory for one of them) leaves neither behind.
    SVM_TRY(pub, AtomicOutputFile::create(o.pub, 0644));
    SVM_TRY(priv, AtomicOutputFile::create(o.out, 0600));
    SVM_CHECK(pub.write_all(as_bytes(key.public_key().pem())));
    SVM_CHECK(priv.write_all(as_bytes(key.pem())));
    // Public key first, so no private key is ever left without its pair; if
    // the private key cannot be put in place, the public key goes again.
    SVM_CHECK(pub.commit());
    if (auto r = priv.commit(); !r) {
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
