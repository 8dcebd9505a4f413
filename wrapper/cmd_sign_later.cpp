// Sign later: `svmkit tbs` hands out the to-be-signed bytes (or their digest)
// and `svmkit attach` takes a signature made elsewhere back in, after checking it.
#include "base/output_file.hpp"
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"
#include "wrapper/command.hpp"
#include "wrapper/json.hpp"

#include "format/attach.hpp"
#include "format/image_reader.hpp"
#include "format/manifest.hpp"
#include "format/tbs.hpp"

#include <cstdio>

namespace svmkit::cli {

Result<int> run_tbs(const TbsOptions& o) {
    SVM_TRY(img, format::open_image(o.image));
    std::vector<std::byte> bytes = format::encode_tbs(img.manifest);
    std::string what = "to-be-signed bytes";
    if (o.digest) {
        auto algo = signer::parse_digest_name(*o.digest);
        if (!algo)
            return fail(ExitCode::usage, "--hash: unknown digest '{}' (sha256, sha384 or sha512)",
                        *o.digest);
        bytes = signer::digest(*algo, bytes);
        what = fmt::format("{} of the to-be-signed bytes", *o.digest);
    }
    if (!o.hex && !o.output)
        return fail(ExitCode::usage, "give -o FILE or --hex");
    if (o.output)
        SVM_CHECK(write_output_file(*o.output, bytes));
    if (o.json) {
        Json j;
        j["schema"] = "svmkit-tbs-v1";
        j["image"] = o.image;
        j["hash"] = o.digest ? Json(*o.digest) : Json(nullptr);
        j["size"] = bytes.size();
        j["output"] = o.output ? Json(*o.output) : Json(nullptr);
        if (o.hex)
            j["hex"] = format::hex(bytes);
        print_json(j, o.output ? human_stream() : stdout);
        return 0;
    }
    if (o.hex)
        std::printf("%s\n", format::hex(bytes).c_str());
    else
        std::fprintf(stderr, "wrote %s: %s, %zu bytes\n", o.output->c_str(), what.c_str(),
                     bytes.size());
    return 0;
}

Result<int> run_attach(const AttachOptions& o) {
    SVM_TRY(img, format::open_image(o.image));
    SVM_TRY(key, signer::PublicKey::load(o.pubkey));
    signer::SignatureAlgorithm algo = key.default_algorithm();
    if (o.algo) {
        auto parsed = signer::parse_algorithm_name(*o.algo);
        if (!parsed)
            return fail(ExitCode::usage,
                        "--algo: unknown algorithm '{}' (ed25519, ecdsa-p256-sha256, "
                        "ecdsa-p384-sha384, rsa-pss-sha256, rsa-pss-sha384)",
                        *o.algo);
        algo = *parsed;
    }
    SVM_TRY(signature, read_small_file(o.signature, 64ull * 1024));
    auto signed_manifest = format::add_checked_signature(img.manifest, key, algo, signature);
    if (!signed_manifest)
        return svmkit::unexpected(with_context(signed_manifest.error(), o.signature));
    SVM_CHECK(format::write_with_manifest(img, *signed_manifest, o.output));
    if (o.json) {
        Json j;
        j["schema"] = "svmkit-attach-v1";
        j["output"] = o.output;
        j["algorithm"] = signer::algorithm_name(algo);
        j["key_id"] = signer::key_id_hex(key.key_id());
        j["signatures"] = signed_manifest->signatures.size();
        print_json(j, human_stream());
        return 0;
    }
    std::fprintf(human_stream(), "wrote %s: attached %s signature by key %s (%zu signature%s)\n",
                 o.output.c_str(), std::string(signer::algorithm_name(algo)).c_str(),
                 signer::key_id_hex(key.key_id()).c_str(), signed_manifest->signatures.size(),
                 signed_manifest->signatures.size() == 1 ? "" : "s");
    return 0;
}

Command add_tbs_command(CLI::App& app) {
    auto o = std::make_shared<TbsOptions>();
    auto* t =
        app.add_subcommand("tbs", "Write the to-be-signed bytes of an image, or their digest");
    t->add_option("image", o->image, "Secure image ('-': stdin)")->required();
    t->add_option("-o,--output", o->output, "Output file ('-': stdout)");
    t->add_option("--hash", o->digest, "Only the digest: sha256, sha384 or sha512");
    add_alias(t, "--digest", o->digest, "--hash");
    t->add_flag("--hex", o->hex, "Print hex to stdout instead of writing a file");
    add_json_flag(t, o->json, "What was written (with --hex: the hex too)");
    return {t, [o] { return run_tbs(*o); },
            [o] {
                return o->json;
            }};
}

Command add_attach_command(CLI::App& app) {
    auto o = std::make_shared<AttachOptions>();
    auto* a =
        app.add_subcommand("attach", "Check a signature made elsewhere and add it to an image");
    a->add_option("image", o->image, "Secure image ('-': stdin)")->required();
    a->add_option("--signature", o->signature, "Signature file (raw Ed25519, DER ECDSA, RSA-PSS)")
        ->required();
    a->add_option("--pubkey", o->pubkey, "The signer's public key or certificate")->required();
    a->add_option("--algo", o->algo, "Signature algorithm (default: the key's)");
    a->add_option("-o,--output", o->output, "Output image ('-': stdout)")->required();
    add_json_flag(a, o->json, "What was written");
    return {a, [o] { return run_attach(*o); },
            [o] {
                return o->json;
            }};
}

} // namespace svmkit::cli
