// Signing later: the to-be-signed bytes of an existing image, and attaching a
// signature made elsewhere (an HSM, a signing service) after checking it.
#pragma once

#include "base/error.hpp"
#include "format/image_reader.hpp"
#include "signer/signer.hpp"

#include <span>
#include <string>

namespace svmkit::format {

// Checks `signature` (made with `algo` by `key`) over the manifest's
// to-be-signed bytes and returns the manifest with it appended. Errors:
// ExitCode::verification_failed when it does not verify (wrong key, wrong
// image, image changed since the tbs bytes were taken, wrong digest
// algorithm); ExitCode::usage when `algo` does not fit the key or the key
// already signed this image.
Result<Manifest> add_checked_signature(const Manifest& manifest, const signer::PublicKey& key,
                                       signer::SignatureAlgorithm algo,
                                       std::span<const std::byte> signature);

// Writes a copy of `image` to `output` whose manifest section holds
// `manifest` instead; every byte outside that section is unchanged. The
// manifest must differ from the image's only in its signatures.
Result<void> write_with_manifest(const SecureImage& image, const Manifest& manifest,
                                 const std::string& output);

} // namespace svmkit::format
