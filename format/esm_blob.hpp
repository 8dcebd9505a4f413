// The PEF `ibm,esm` blob (docs/esm.md, as svm-tools makes it): lockboxes, the AES-256-GCM encrypted digests and the
// encrypted secret files, as value types, and their device-tree form.
//
// A blob of its own (what `svmkit esm make` writes and svm-tools reads):
//
//   / { compatible = "ibm,esm";
//       lockboxes {
//           origin-lockbox { untrusted-comment; encrypted-symkey;
//                            pubkey-fingerprint { algorithm = "SHA256"; hash; }; };
//           lockbox-<N> { ... };                                   N >= 1
//       };
//       digest { digests-fdt { algorithm = "AES256-GCM"; untrusted-comment;
//                              ciphertext; iv; mac; }; };     ciphertext: inner FDT
//       file { files-fdt = [inner FDT]; };
//   };
//   digests inner FDT: / { compatible = "ibm,esm"; digests { algorithm = "SHA512";
//                          kernel; kernel-size = <u32>; initrd; bootargs; [rtas]; }; };
//   files inner FDT:   / { compatible = "ibm,esm-file"; files { <name> {
//                          algorithm = "AES256-GCM"; untrusted-comment; ciphertext;
//                          iv; mac; }; }; };
//
// In a secure image the same root nodes sit beside `svmkit-manifest` in the
// `.kernel:esm_blob` tree (format/manifest_fdt.cpp); the manifest's
// signatures cover the sealed digests and files but not the lockboxes
// (format/tbs.cpp; docs/esm.md, "Signatures and lockboxes").
//
// Every decoder here treats its input as untrusted: the whole tree is checked
// (fdt_check_full) first, names are matched exactly, each node and property at
// most once, unknown ones refused, sizes checked, limits below enforced.
#pragma once

#include "base/error.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace svmkit::format {

namespace fdt {
class FdtBuilder;
class FdtReader;
} // namespace fdt

// SHA-256 of the recipient's public key in PEM (SubjectPublicKeyInfo).
using EsmFingerprint = std::array<std::byte, 32>;

inline constexpr std::size_t kEsmMaxBlobSize = 4u << 20;
inline constexpr std::size_t kEsmMaxLockboxes = 1024;
inline constexpr std::size_t kEsmMaxFiles = 256;
inline constexpr std::size_t kEsmMaxFileNameLength = 31; // a device-tree node name
inline constexpr std::size_t kEsmSymKeySize = 32;        // AES-256
inline constexpr std::size_t kEsmMacSize = 16;           // GCM tag
inline constexpr std::size_t kEsmMinIvSize = 12;         // svmkit writes 12; PyCryptodome 16
inline constexpr std::size_t kEsmMaxIvSize = 16;
inline constexpr std::size_t kEsmMinWrappedKeySize = 256;  // RSA 2048
inline constexpr std::size_t kEsmMaxWrappedKeySize = 1024; // RSA 8192
inline constexpr std::size_t kEsmDigestSize = 64;          // SHA-512

// One lockbox: the blob's symmetric key, RSA-OAEP(SHA-256)-wrapped to one key.
// Invariant (checked by the decoder): number 0 is the origin lockbox
// ("origin-lockbox"), others are "lockbox-<number>"; numbers are unique.
struct EsmLockbox {
    std::uint32_t number = 0;
    std::string comment; // untrusted: printable ASCII, no newline
    std::vector<std::byte> encrypted_symkey;
    EsmFingerprint fingerprint{};
    [[nodiscard]] std::string node_name() const;
};

// AES-256-GCM ciphertext with its IV and tag (no additional data).
struct EsmSealed {
    std::string comment;
    std::vector<std::byte> iv;
    std::vector<std::byte> mac;
    std::vector<std::byte> ciphertext;
};

struct EsmFile {
    std::string name; // [A-Za-z][0-9A-Za-z,._+-]{0,30}
    EsmSealed sealed;
};

// Invariants: lockboxes sorted by number (origin first), numbers unique, at
// most kEsmMaxLockboxes; file names unique and valid, at most kEsmMaxFiles.
struct EsmBlob {
    std::vector<EsmLockbox> lockboxes;
    std::optional<EsmSealed> digests; // /digest/digests-fdt
    std::vector<EsmFile> files;       // /file files-fdt (absent when empty)

    // No node at all (an image without PEF nodes of its own).
    [[nodiscard]] bool empty() const { return lockboxes.empty() && !digests && files.empty(); }
    [[nodiscard]] const EsmLockbox* origin() const;
    [[nodiscard]] const EsmLockbox* find(const EsmFingerprint& fingerprint) const;
    [[nodiscard]] const EsmFile* file(const std::string& name) const;
};

// The plaintext of the digests FDT.
struct EsmDigests {
    std::vector<std::byte> kernel;                // SHA-512 of the kernel's loadable image
    std::uint32_t kernel_size = 0;                // its size in bytes
    std::optional<std::vector<std::byte>> initrd; // SHA-512 of the initrd (absent: none)
    std::vector<std::byte> bootargs;              // SHA-512 of the command line, no NUL
    std::optional<std::vector<std::byte>> rtas;   // SHA-512 of RTAS (kept, not checked)
};

bool esm_file_name_valid(std::string_view name);
bool esm_comment_valid(std::string_view comment);
std::string esm_fingerprint_hex(const EsmFingerprint& f);
std::optional<EsmFingerprint> parse_esm_fingerprint_hex(std::string_view hex);

// A standalone blob (root compatible "ibm,esm" with only the nodes above).
std::vector<std::byte> encode_esm_blob(const EsmBlob& blob);
// Accepts any node order and svm-tools' empty /digest and /file nodes.
// Errors: ExitCode::malformed naming `where`.
Result<EsmBlob> decode_esm_blob(std::span<const std::byte> bytes, const std::string& where);

// The nodes alone, for the image's combined tree (format/manifest_fdt.cpp):
// writes /lockboxes, /digest, /file in that order (each only when non-empty).
void write_esm_nodes(fdt::FdtBuilder& b, const EsmBlob& blob);
// True for the root node names this file owns.
bool is_esm_root_node(std::string_view name);
// Reads one of those root nodes into `blob`.
Result<void> read_esm_node(const fdt::FdtReader& r, const std::string& name, int node,
                           EsmBlob& blob);
// Whole-blob invariants (lockbox numbers, file names); run after reading nodes.
Result<void> validate_esm_blob(const EsmBlob& blob, const std::string& where);

std::vector<std::byte> encode_esm_digests(const EsmDigests& d);
Result<EsmDigests> decode_esm_digests(std::span<const std::byte> bytes, const std::string& where);

} // namespace svmkit::format
