// Writing a secure image: layout, one streaming pass over the payloads that
// copies and hashes them, the signed manifest, and the ELF container through
// libelf. The output appears under its name only when complete.
#pragma once

#include "base/error.hpp"
#include "format/manifest.hpp"
#include "format/payload.hpp"
#include "format/stub_image.hpp"
#include "signer/signer.hpp"

#include <optional>
#include <string>
#include <vector>

namespace svmkit::format {

struct ComponentInput {
    ComponentKind kind = ComponentKind::kernel;
    PayloadSource stored; // the bytes the image stores
    Compression compression = Compression::none;
    std::optional<std::uint64_t> unpacked_size;
    std::optional<std::vector<std::byte>> unpacked_digest;
    std::optional<KernelPlacement> kernel;
};

struct ImageBuildRequest {
    Arch arch = Arch::x86_64;
    StubImage stub;
    std::vector<ComponentInput> payloads; // kernel, initrd, cmdline, dtb (stub parts are added)
    std::uint64_t security_version = 0;
    std::uint64_t creation_time = 0;
    std::uint64_t swiotlb_size = kDefaultSwiotlbSize;
    signer::DigestAlgorithm hash = signer::DigestAlgorithm::sha256;
    std::vector<const signer::PrivateKey*> keys; // empty: an unsigned image
    std::string output_path;
    EsmBlob esm; // PEF ibm,esm nodes stored beside the manifest (unsigned; docs/esm.md)
};

struct ImageBuildResult {
    Manifest manifest;
    std::uint64_t file_size = 0;
};

Result<ImageBuildResult> build_image(const ImageBuildRequest& request);

// Signs `manifest`'s to-be-signed bytes with each key and appends the signatures.
Result<void> sign_manifest(Manifest& manifest, const std::vector<const signer::PrivateKey*>& keys);

} // namespace svmkit::format
