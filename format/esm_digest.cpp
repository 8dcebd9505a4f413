#include "format/esm_digest.hpp"

#include "format/kernel_input.hpp"

#include <limits>

namespace svmkit::format {

namespace {

Result<std::vector<std::byte>> sha512_of(const PayloadSource& source) {
    return copy_and_hash(source, signer::DigestAlgorithm::sha512, nullptr, 0);
}

} // namespace

Result<EsmDigests> compute_esm_digests(const PayloadSource& kernel_image,
                                       const std::optional<PayloadSource>& initrd,
                                       const std::string& bootargs) {
    if (kernel_image.size > std::numeric_limits<std::uint32_t>::max())
        return fail(ExitCode::malformed,
                    "{}: the loadable image is {} bytes; kernel-size holds at most 4 GiB - 1",
                    kernel_image.label, kernel_image.size);
    EsmDigests d;
    SVM_TRY(kernel, sha512_of(kernel_image));
    d.kernel = std::move(kernel);
    d.kernel_size = static_cast<std::uint32_t>(kernel_image.size);
    if (initrd) {
        SVM_TRY(digest, sha512_of(*initrd));
        d.initrd = std::move(digest);
    }
    d.bootargs = signer::digest(signer::DigestAlgorithm::sha512, as_bytes(bootargs));
    return d;
}

Result<EsmDigests> compute_esm_digests(const EsmDigestInputs& in) {
    SVM_TRY(kernel_file, InputFile::open(in.kernel));
    auto shared = std::make_shared<const InputFile>(std::move(kernel_file));
    // A raw image is its own loadable image; its load address does not matter here.
    auto kernel = analyze_kernel(shared, in.arch, std::nullopt);
    PayloadSource image;
    if (kernel)
        image = std::move(kernel->image);
    else if (kernel.error().code == ExitCode::usage)
        image = PayloadSource::from_file(shared);
    else
        return unexpected(std::move(kernel.error()));
    std::optional<PayloadSource> initrd;
    if (in.initrd) {
        SVM_TRY(file, InputFile::open(*in.initrd));
        initrd = PayloadSource::from_file(std::make_shared<const InputFile>(std::move(file)));
    }
    return compute_esm_digests(image, initrd, in.bootargs);
}

} // namespace svmkit::format
