// The manifest's on-disk form: a flattened device tree (libfdt).
//
//   / {
//       compatible = "ibm,esm";          (so the ibm,esm nodes of PEF can join it)
//       svmkit-manifest {
//           format-version = <u32>;  arch = "x86_64" | "ppc64le";
//           image-base, entry, security-version, creation-time, swiotlb-size = <u64>;
//           hash = "sha256" | "sha384" | "sha512";
//           components {
//               <kind> { address, size = <u64>; compression = "none" | "gzip";
//                        digest = [bytes];
//                        unpacked-size = <u64>; unpacked-digest = [bytes];   (compressed)
//                        load-address, memory-size, entry-offset = <u64>;  (kernel) };
//           };
//           signatures {
//               signature-<N> { algorithm = "..."; key-id = [32 bytes]; value = [bytes]; };
//           };
//       };
//   };
//
// The decoder validates the whole tree (fdt_check_full) before any lookup,
// matches names exactly, accepts each node and property at most once and
// rejects anything it does not know, so every byte of meaning in the blob is
// either in the to-be-signed encoding or a signature.
#pragma once

#include "format/manifest.hpp"

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace svmkit::format {

inline constexpr std::size_t kMaxManifestSize = 4u << 20;

// The packed device tree (totalsize == returned size).
std::vector<std::byte> encode_manifest_fdt(const Manifest& manifest);

// Decodes `blob` (which may be followed by zero padding up to its section's
// size) and validates the manifest. `where` names the file in messages.
// Errors: ExitCode::malformed.
// The device tree's own size (its header's totalsize); only for blobs that
// decode_manifest_fdt accepted.
std::size_t manifest_fdt_size(std::span<const std::byte> blob);

Result<Manifest> decode_manifest_fdt(std::span<const std::byte> blob, const std::string& where);

} // namespace svmkit::format
