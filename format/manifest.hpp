// The signed manifest of a secure image, as a value type.
//
// On disk the manifest is a flattened device tree stored in the image's
// `.kernel:esm_blob` section (format/manifest_fdt.*); what a signature covers
// is the canonical to-be-signed encoding of this struct (format/tbs.*). The
// decoder accepts only what is described here, so nothing in the blob escapes
// the signature except the signatures themselves and the PEF ibm,esm
// lockboxes (docs/esm.md).
#pragma once

#include "base/error.hpp"
#include "format/arch.hpp"
#include "format/esm_blob.hpp"
#include "signer/signer.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace svmkit::format {

// Format versions differ only in the ELF container's program headers
// (docs/format.md): version 1 has one PT_LOAD per loaded section; version 2
// one PT_LOAD over the whole image, as a Linux vmlinux has, because the
// loaders users already run on POWER treat an ELF that way (kexec-tools moves
// PT_LOAD[0] alone and enters its first byte). svmkit writes version 2 for
// ppc64le and version 1 for the simulated platform, whose loaders (svmkit
// boot, the svmkit boot loader) place every segment at its p_paddr; it reads
// both.
inline constexpr std::uint32_t kFormatVersionSegmentPerSection = 1;
inline constexpr std::uint32_t kFormatVersionOneSegment = 2;
inline constexpr std::uint32_t kManifestFormatVersion = kFormatVersionSegmentPerSection;
// The version svmkit writes for `arch`.
constexpr std::uint32_t format_version_for(Arch arch) {
    return arch == Arch::ppc64le ? kFormatVersionOneSegment : kFormatVersionSegmentPerSection;
}
constexpr bool is_known_format_version(std::uint32_t v) {
    return v == kFormatVersionSegmentPerSection || v == kFormatVersionOneSegment;
}
inline constexpr std::uint64_t kPageSize = 0x10000; // 64 KiB, PEF's secure page size
inline constexpr std::uint64_t kDefaultSwiotlbSize = 64ull << 20;
inline constexpr std::uint64_t kMinSwiotlbSize = 1ull << 20;

// The parts of an image a manifest describes, in canonical order: the order of
// the to-be-signed encoding, of the image's sections and of every listing.
enum class ComponentKind { stub_text, stub_rodata, kernel, initrd, cmdline, dtb };
inline constexpr std::array kAllComponentKinds = {
    ComponentKind::stub_text, ComponentKind::stub_rodata, ComponentKind::kernel,
    ComponentKind::initrd,    ComponentKind::cmdline,     ComponentKind::dtb};

std::string_view component_name(ComponentKind kind);    // node name: "stub-text", "kernel", ...
std::string_view component_section(ComponentKind kind); // ".text", ".kernel:vmlinux.strip", ...
std::optional<ComponentKind> parse_component_name(std::string_view name);

enum class Compression { none, gzip };
std::string_view compression_name(Compression c);
std::optional<Compression> parse_compression_name(std::string_view name);

// What the kernel needs beyond its stored bytes: where it runs.
struct KernelPlacement {
    std::uint64_t load_address = 0; // guest-physical address of the unpacked image
    std::uint64_t memory_size = 0;  // bytes it occupies when running (image + bss), >= image size
    std::uint64_t entry_offset = 0; // entry point relative to load_address
};

// Invariants (checked by validate_manifest):
//   - address..address+size lies inside the image and overlaps no other component;
//   - digest has the manifest's hash length;
//   - compression != none only for the kernel, and then unpacked_size and
//     unpacked_digest are present; with compression == none they are absent;
//   - kernel is set exactly for ComponentKind::kernel.
struct Component {
    ComponentKind kind = ComponentKind::kernel;
    std::uint64_t address = 0; // guest-physical address of the stored bytes in the loaded image
    std::uint64_t size = 0;    // stored size in bytes
    Compression compression = Compression::none;
    std::vector<std::byte> digest; // of the stored bytes
    std::optional<std::uint64_t> unpacked_size;
    std::optional<std::vector<std::byte>> unpacked_digest;
    std::optional<KernelPlacement> kernel;
};

struct Signature {
    signer::SignatureAlgorithm algorithm = signer::SignatureAlgorithm::ed25519;
    signer::KeyId key_id{};
    std::vector<std::byte> value;
};

struct Manifest {
    std::uint32_t format_version = kManifestFormatVersion;
    Arch arch = Arch::x86_64;
    std::uint64_t image_base = 0; // guest-physical address the image is linked for
    std::uint64_t entry = 0;      // guest-physical entry point (the stub's first byte)
    std::uint64_t security_version = 0;
    std::uint64_t creation_time = 0; // seconds since the epoch (SOURCE_DATE_EPOCH when set)
    std::uint64_t swiotlb_size = kDefaultSwiotlbSize;
    signer::DigestAlgorithm hash = signer::DigestAlgorithm::sha256;
    std::vector<Component> components; // sorted by kind, each kind at most once
    std::vector<Signature> signatures;
    // The PEF ibm,esm nodes (lockboxes, encrypted digests and files) stored
    // beside the manifest in the same tree; empty when the image has none.
    // The sealed digests and files are part of the to-be-signed encoding;
    // the lockboxes are not, like the signatures (docs/esm.md).
    EsmBlob esm;

    [[nodiscard]] const Component* find(ComponentKind kind) const;
    Component* find(ComponentKind kind);
};

// Checks every invariant above plus: known version, entry inside stub-text,
// the kernel's load range clear of the image, swiotlb size a multiple of 64 KiB
// and at least 1 MiB, required components (stub-text, kernel) present.
// `where` names the file for messages. Errors are ExitCode::malformed.
Result<void> validate_manifest(const Manifest& m, const std::string& where);

std::string hex(std::span<const std::byte> bytes);

} // namespace svmkit::format
