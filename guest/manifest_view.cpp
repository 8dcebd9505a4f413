#include "guest/manifest_view.h"

#include "guest/fdt_util.h"

#include <libfdt.h>
#include <string.h>

namespace svmkit::guest {

const char* component_name(ComponentId id) {
    switch (id) {
    case ComponentId::stub_text:
        return "stub-text";
    case ComponentId::stub_rodata:
        return "stub-rodata";
    case ComponentId::kernel:
        return "kernel";
    case ComponentId::initrd:
        return "initrd";
    case ComponentId::cmdline:
        return "cmdline";
    case ComponentId::dtb:
        return "dtb";
    }
    return "?";
}

const char* manifest_error_name(ManifestError e) {
    switch (e) {
    case ManifestError::none:
        return "none";
    case ManifestError::bad_header:
        return "no device tree at __stub_end";
    case ManifestError::bad_structure:
        return "malformed device tree";
    case ManifestError::no_manifest:
        return "no /svmkit-manifest node";
    case ManifestError::bad_field:
        return "a manifest field is missing or malformed";
    case ManifestError::bad_hash:
        return "unknown hash or wrong digest size";
    case ManifestError::bad_compression:
        return "bad compression fields";
    case ManifestError::no_kernel:
        return "no kernel component";
    }
    return "?";
}

namespace {

bool read_bytes(const void* fdt, int node, const char* name, size_t want, const uint8_t** out) {
    int len = 0;
    const void* p = fdt_getprop(fdt, node, name, &len);
    if (p == nullptr || len < 0 || static_cast<size_t>(len) != want)
        return false;
    *out = static_cast<const uint8_t*>(p);
    return true;
}

ManifestError read_component(const void* fdt, int node, ComponentId id, size_t digest_len,
                             ComponentView* c) {
    uint64_t address = 0;
    uint64_t size = 0;
    if (!fdt_read_u64_exact(fdt, node, "address", &address) ||
        !fdt_read_u64_exact(fdt, node, "size", &size) || !make_range(address, size, &c->stored))
        return ManifestError::bad_field;
    if (!read_bytes(fdt, node, "digest", digest_len, &c->digest))
        return ManifestError::bad_hash;
    const char* compression = fdt_read_string(fdt, node, "compression", nullptr);
    if (compression == nullptr)
        return ManifestError::bad_compression;
    if (strcmp(compression, "gzip") == 0) {
        c->gzip = true;
        if (!fdt_read_u64_exact(fdt, node, "unpacked-size", &c->unpacked_size) ||
            !read_bytes(fdt, node, "unpacked-digest", digest_len, &c->unpacked_digest))
            return ManifestError::bad_compression;
    } else if (strcmp(compression, "none") != 0) {
        return ManifestError::bad_compression;
    }
    if (id == ComponentId::kernel) {
        if (!fdt_read_u64_exact(fdt, node, "load-address", &c->load_address) ||
            !fdt_read_u64_exact(fdt, node, "memory-size", &c->memory_size) ||
            !fdt_read_u64_exact(fdt, node, "entry-offset", &c->entry_offset))
            return ManifestError::no_kernel;
    }
    c->present = true;
    return ManifestError::none;
}

} // namespace

ManifestError read_manifest(const void* blob, uint64_t max_size, ManifestView* out) {
    *out = ManifestView{};
    if (max_size < sizeof(fdt_header) || fdt_magic(blob) != FDT_MAGIC ||
        fdt_totalsize(blob) > max_size || fdt_totalsize(blob) < sizeof(fdt_header))
        return ManifestError::bad_header;
    out->blob_size = fdt_totalsize(blob);
    if (fdt_check_full_strict(blob, static_cast<uint32_t>(out->blob_size)) != 0)
        return ManifestError::bad_structure;
    const int m = fdt_path_offset(blob, "/svmkit-manifest");
    if (m < 0)
        return ManifestError::no_manifest;
    if (!fdt_read_u64_exact(blob, m, "image-base", &out->image_base) ||
        !fdt_read_u64_exact(blob, m, "entry", &out->entry) ||
        !fdt_read_u64_exact(blob, m, "swiotlb-size", &out->swiotlb_size))
        return ManifestError::bad_field;
    const char* hash = fdt_read_string(blob, m, "hash", nullptr);
    if (hash == nullptr)
        return ManifestError::bad_hash;
    if (strcmp(hash, "sha256") == 0)
        out->hash = HashAlgorithm::sha256;
    else if (strcmp(hash, "sha384") == 0)
        out->hash = HashAlgorithm::sha384;
    else if (strcmp(hash, "sha512") == 0)
        out->hash = HashAlgorithm::sha512;
    else
        return ManifestError::bad_hash;
    const size_t digest_len = digest_size(out->hash);

    const int components = fdt_subnode_offset(blob, m, "components");
    if (components < 0)
        return ManifestError::no_kernel;
    for (int i = 0; i < kComponentCount; ++i) {
        const auto id = static_cast<ComponentId>(i);
        const int node = fdt_subnode_offset(blob, components, component_name(id));
        if (node == -FDT_ERR_NOTFOUND)
            continue;
        if (node < 0)
            return ManifestError::bad_structure;
        const ManifestError e = read_component(blob, node, id, digest_len, &out->components[i]);
        if (e != ManifestError::none)
            return e;
    }
    if (!out->get(ComponentId::kernel).present)
        return ManifestError::no_kernel;
    return ManifestError::none;
}

} // namespace svmkit::guest
