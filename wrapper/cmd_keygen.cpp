// svmkit keygen: a fresh signing key pair.
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"
#include "wrapper/command.hpp"
#include "wrapper/json.hpp"

#include "base/file.hpp"
#include "base/output_file.hpp"

#include <cstdio>
#include <unistd.h>

namespace svmkit::cli {

Result<int> run_keygen(const KeygenOptions& o) {
    SVM_CHECK(require_value(o.out, "-o/--output"));
    SVM_CHECK(require_value(o.pub, "--public-output"));
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
    const std::string key_id = signer::key_id_hex(key.public_key().key_id());
    if (o.json) {
        Json j;
        j["schema"] = "svmkit-keygen-v1";
        j["algorithm"] = signer::key_type_name(*type);
        j["key_id"] = key_id;
        j["private_key"] = o.out;
        j["public_key"] = o.pub;
        print_json(j, human_stream());
        return 0;
    }
    std::fprintf(human_stream(), "%s key %s\n  private: %s\n  public:  %s\n",
                 std::string(signer::key_type_name(*type)).c_str(), key_id.c_str(), o.out.c_str(),
                 o.pub.c_str());
    return 0;
}

Command add_keygen_command(CLI::App& app) {
    auto o = std::make_shared<KeygenOptions>();
    auto* k = app.add_subcommand("keygen", "Generate a signing key pair");
    k->add_option("--algo", o->algo, "ed25519, ecdsa-p256, ecdsa-p384, rsa-3072 or rsa-4096")
        ->required();
    k->add_option("-o,--output", o->out,
                  "Private key output (PEM, mode 0600; an existing file needs --force)");
    k->add_option("--public-output", o->pub, "Public key output (PEM; '-': stdout)");
    add_alias(k, "--out", o->out, "-o/--output");
    add_alias(k, "--pub", o->pub, "--public-output");
    k->add_flag("--force", o->force, "Replace an existing private key");
    add_json_flag(k, o->json, "The key id and files");
    return {k, [o] { return run_keygen(*o); },
            [o] {
                return o->json;
            }};
}

} // namespace svmkit::cli
