#include "format/attach.hpp"
#include "base/output_file.hpp"

#include "format/manifest_fdt.hpp"
#include "format/tbs.hpp"

#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace svmkit::format {

Result<Manifest> add_checked_signature(const Manifest& manifest, const signer::PublicKey& key,
                                       signer::SignatureAlgorithm algo,
                                       std::span<const std::byte> signature) {
    if (!key.supports(algo))
        return fail(ExitCode::usage, "algorithm {} does not fit the {} public key",
                    signer::algorithm_name(algo), key.description());
    for (const Signature& s : manifest.signatures)
        if (s.key_id == key.key_id())
            return fail(ExitCode::usage, "the image already carries a signature by key {}",
                        signer::key_id_hex(key.key_id()));
    if (signature.empty())
        return fail(ExitCode::verification_failed, "the signature file is empty");
    auto ok = key.verify(algo, encode_tbs(manifest), signature);
    if (!ok)
        return fail(ExitCode::verification_failed,
                    "the {} signature does not verify with key {} over this image's to-be-signed "
                    "bytes (wrong key, another image, an image changed since 'svmkit tbs', a "
                    "truncated signature, or a digest made with another hash)",
                    signer::algorithm_name(algo), signer::key_id_hex(key.key_id()));
    Manifest out = manifest;
    out.signatures.push_back(
        Signature{algo, key.key_id(), std::vector<std::byte>(signature.begin(), signature.end())});
    return out;
}

Result<void> write_with_manifest(const SecureImage& image, const Manifest& manifest,
                                 const std::string& output) {
    std::vector<std::byte> blob = encode_manifest_fdt(manifest);
    const ImageSection& section = image.manifest_section;
    if (blob.size() > section.size)
        return fail(ExitCode::usage,
                    "{}: no room for another signature: the manifest would take {} bytes, its "
                    "section holds {}",
                    image.path(), blob.size(), section.size);
    blob.resize(section.size, std::byte{0});

    SVM_TRY(out, OutputFile::create(output));
    // Copy the whole image in the kernel (reflinks where the filesystem can),
    // then replace the manifest section in place.
    loff_t in_off = 0;
    loff_t out_off = 0;
    const auto total = static_cast<loff_t>(image.file->size());
    while (in_off < total) {
        ssize_t n = ::copy_file_range(image.file->fd(), &in_off, out.fd(), &out_off,
                                      static_cast<std::size_t>(total - in_off), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(ExitCode::io, "{}: copying {}: {}", output, image.path(),
                        std::strerror(errno));
        if (n == 0)
            return fail(ExitCode::io, "{}: {} shrank while being copied", output, image.path());
    }
    SVM_CHECK(out.write_at(section.offset, blob));
    return out.commit();
}

} // namespace svmkit::format
