// Sign later: `svmkit tbs` hands out the to-be-signed bytes (or their digest)
// and `svmkit attach` takes a signature made elsewhere back in, after checking it.
#include "base/output_file.hpp"
#include "wrapper/commands.hpp"

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
            return fail(ExitCode::usage, "--digest: unknown digest '{}' (sha256, sha384 or sha512)",
                        *o.digest);
        bytes = signer::digest(*algo, bytes);
        what = fmt::format("{} of the to-be-signed bytes", *o.digest);
    }
    if (o.hex) {
        std::printf("%s\n", format::hex(bytes).c_str());
        return 0;
    }
    if (!o.output)
        return fail(ExitCode::usage, "give -o FILE or --hex");
    SVM_CHECK(write_output_file(*o.output, bytes));
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
    std::printf("wrote %s: attached %s signature by key %s (%zu signature%s)\n", o.output.c_str(),
                std::string(signer::algorithm_name(algo)).c_str(),
                signer::key_id_hex(key.key_id()).c_str(), signed_manifest->signatures.size(),
                signed_manifest->signatures.size() == 1 ? "" : "s");
    return 0;
}

} // namespace svmkit::cli
