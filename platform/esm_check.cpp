#include "platform/esm_check.hpp"

#include "format/payload.hpp"

#include <openssl/crypto.h>

namespace svmkit::platform {

namespace {

constexpr auto kSha512 = signer::DigestAlgorithm::sha512;

EsmCheck refuse(EsmFailure f, std::string message) {
    EsmCheck c;
    c.failure = f;
    c.message = std::move(message);
    return c;
}

std::span<std::byte> component_bytes(GuestRam& memory, std::uint64_t kbase,
                                     const format::Manifest& m, const format::Component& c) {
    // In range: enter_secure_mode checked every component before.
    return *memory.range(kbase + (c.address - m.image_base), c.size);
}

// SHA-512 and size of the kernel's loadable image, as stored or inflated.
Result<std::pair<std::vector<std::byte>, std::uint64_t>>
loadable_image_digest(GuestRam& memory, std::uint64_t kbase, const format::Manifest& m,
                      const format::Component& kernel) {
    const std::span<std::byte> stored = component_bytes(memory, kbase, m, kernel);
    if (kernel.compression == format::Compression::none)
        return std::pair{signer::digest(kSha512, stored), std::uint64_t{stored.size()}};
    signer::Hasher hasher(kSha512);
    const auto source = format::PayloadSource::from_memory(
        "the kernel", std::vector<std::byte>(stored.begin(), stored.end()));
    SVM_TRY(size, format::gunzip_stream(source, kernel.unpacked_size.value_or(0),
                                        [&](std::span<const std::byte> chunk) -> Result<void> {
                                            hasher.update(chunk);
                                            return {};
                                        }));
    return std::pair{hasher.finish(), size};
}

} // namespace

EsmCheck check_esm_nodes(GuestRam& memory, std::uint64_t kbase, const format::Manifest& m,
                         const format::EsmBlob& blob, std::uint64_t initrd_skip,
                         const std::string& bootargs, const format::EsmKey* machine_key) {
    if (machine_key == nullptr)
        return refuse(EsmFailure::esm_no_lockbox,
                      fmt::format("the ESM blob has {} lockboxes and this machine has no key",
                                  blob.lockboxes.size()));
    format::EsmOpened opened = format::esm_open_lockbox(blob, *machine_key);
    if (opened.failure == format::EsmOpenFailure::no_lockbox)
        return refuse(EsmFailure::esm_no_lockbox, opened.message);
    if (opened.failure != format::EsmOpenFailure::none)
        return refuse(EsmFailure::esm_unwrap_failed, opened.message);
    const std::string lockbox = opened.lockbox->node_name();

    if (!blob.digests)
        return refuse(EsmFailure::esm_digests_malformed,
                      "the ESM blob has lockboxes but no /digest/digests-fdt");
    auto plain = format::esm_open(opened.symkey, *blob.digests);
    if (!plain)
        return refuse(EsmFailure::esm_auth_failed, "/digest/digests-fdt: " + plain.error().message);
    auto digests = format::decode_esm_digests(*plain, "ESM blob");
    if (!digests)
        return refuse(EsmFailure::esm_digests_malformed, digests.error().message);

    const format::Component* kernel = m.find(format::ComponentKind::kernel);
    auto image = loadable_image_digest(memory, kbase, m, *kernel);
    if (!image)
        return refuse(EsmFailure::esm_kernel_digest_mismatch, image.error().message);
    if (image->second != digests->kernel_size || image->first != digests->kernel)
        return refuse(EsmFailure::esm_kernel_digest_mismatch,
                      fmt::format("the kernel's loadable image ({} bytes, SHA-512 {}) is not the "
                                  "sealed one ({} bytes, SHA-512 {})",
                                  image->second, format::hex(image->first), digests->kernel_size,
                                  format::hex(digests->kernel)));

    // The initrd as sealed: all of it, or what follows the blob's archive.
    std::span<std::byte> sealed_initrd;
    if (const format::Component* c = m.find(format::ComponentKind::initrd))
        sealed_initrd = component_bytes(memory, kbase, m, *c).subspan(initrd_skip);
    const bool has_initrd = !sealed_initrd.empty();
    if (has_initrd != digests->initrd.has_value())
        return refuse(EsmFailure::esm_initrd_digest_mismatch,
                      !has_initrd ? "the image has no initrd but the ESM blob seals one"
                                  : "the image has an initrd but the ESM blob seals none");
    if (has_initrd) {
        const auto d = signer::digest(kSha512, sealed_initrd);
        if (d != *digests->initrd)
            return refuse(EsmFailure::esm_initrd_digest_mismatch,
                          fmt::format("initrd SHA-512 {} is not the sealed {}", format::hex(d),
                                      format::hex(*digests->initrd)));
    }

    const auto args = signer::digest(kSha512, as_bytes(bootargs));
    if (args != digests->bootargs)
        return refuse(EsmFailure::esm_bootargs_mismatch,
                      fmt::format("SHA-512 of /chosen/bootargs \"{}\" is not the sealed command "
                                  "line's",
                                  bootargs));

    EsmCheck ok;
    ok.lockbox = lockbox;
    for (const format::EsmFile& f : blob.files) {
        auto data = format::esm_open(opened.symkey, f.sealed);
        if (!data)
            return refuse(EsmFailure::esm_auth_failed,
                          fmt::format("file {}: {}", f.name, data.error().message));
        ok.files.push_back({f.name, {}, std::move(*data)});
    }
    return ok;
}

} // namespace svmkit::platform
