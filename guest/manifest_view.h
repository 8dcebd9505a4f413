// The parts of the svmkit manifest (docs/format.md) that guest code needs,
// read in place from the `.kernel:esm_blob` device tree.
//
// This is not the strict decoder of format/manifest_fdt.cpp: the stub reads
// the manifest before UV_ESM only to find its own components (anything wrong
// there makes the ultravisor refuse the image), and after UV_ESM the blob is
// one the ultravisor decoded strictly and verified. It still checks every
// size and range it uses, so a bad blob gives an error, never a wild access.
#pragma once

#include "guest/memory.h"
#include "guest/sha2.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

enum class ComponentId : uint8_t { stub_text, stub_rodata, kernel, initrd, cmdline, dtb };
inline constexpr int kComponentCount = 6;
const char* component_name(ComponentId id); // the manifest's node name

struct ComponentView {
    bool present = false;
    Range stored; // guest-physical, as linked (relative to image_base)
    bool gzip = false;
    const uint8_t* digest = nullptr; // digest_size(hash) bytes, inside the blob
    uint64_t unpacked_size = 0;      // gzip only
    const uint8_t* unpacked_digest = nullptr;
    // Kernel only.
    uint64_t load_address = 0;
    uint64_t memory_size = 0;
    uint64_t entry_offset = 0;
};

struct ManifestView {
    uint64_t blob_size = 0; // the device tree's totalsize
    uint64_t image_base = 0;
    uint64_t entry = 0;
    uint64_t swiotlb_size = 0;
    HashAlgorithm hash = HashAlgorithm::sha256;
    ComponentView components[kComponentCount];

    const ComponentView& get(ComponentId id) const { return components[static_cast<int>(id)]; }
};

enum class ManifestError : uint8_t {
    none,
    bad_header,      // not a device tree, or larger than `max_size`
    bad_structure,   // fdt_check_full failed
    no_manifest,     // no /svmkit-manifest node
    bad_field,       // a required field missing or of the wrong size
    bad_hash,        // unknown hash name or digest of the wrong size
    bad_compression, // not "none"/"gzip", or gzip without its unpacked fields
    no_kernel,       // no kernel component or no placement
};
const char* manifest_error_name(ManifestError e);

// Reads the manifest at `blob`, whose device tree must fit in `max_size`
// bytes.
ManifestError read_manifest(const void* blob, uint64_t max_size, ManifestView* out);

} // namespace svmkit::guest
