// svmkit keygen: a fresh signing key pair.
#include "wrapper/commands.hpp"

#include "base/file.hpp"

#include <cstdio>

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
    // Public key first: if it fails, no private key is left without its pair.
    SVM_CHECK(write_file_atomic(o.pub, as_bytes(key.public_key().pem()), 0644));
    SVM_CHECK(write_file_atomic(o.out, as_bytes(key.pem()), 0600));
    std::printf("%s key %s\n  private: %s\n  public:  %s\n",
                std::string(signer::key_type_name(*type)).c_str(),
                signer::key_id_hex(key.public_key().key_id()).c_str(), o.out.c_str(),
                o.pub.c_str());
    return 0;
}

} // namespace svmkit::cli
