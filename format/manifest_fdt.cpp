#include "format/manifest_fdt.hpp"

#include "format/dtb.hpp"
#include "format/fdt_codec.hpp"

#include <libfdt.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

namespace svmkit::format {

namespace {

constexpr const char* kRootCompatible = "ibm,esm";
constexpr const char* kManifestNode = "svmkit-manifest";

using fdt::FdtBuilder;
using fdt::FdtReader;
using fdt::PropDecoder;

Result<Component> decode_component(const FdtReader& r, int node, ComponentKind kind,
                                   const std::string& where) {
    SVM_TRY(props,
            r.properties(node, {"address", "size", "compression", "digest", "unpacked-size",
                                "unpacked-digest", "load-address", "memory-size", "entry-offset"}));
    PropDecoder d(props, "component " + std::string(component_name(kind)), where, "manifest");
    Component c;
    c.kind = kind;
    SVM_TRY(address, d.u64("address"));
    SVM_TRY(size, d.u64("size"));
    SVM_TRY(compression, d.str("compression"));
    SVM_TRY(digest, d.bytes("digest"));
    c.address = address;
    c.size = size;
    c.digest = std::move(digest);
    auto comp = parse_compression_name(compression);
    if (!comp)
        return fail(ExitCode::malformed, "{}: manifest: unknown compression '{}' for {}", where,
                    compression, component_name(kind));
    c.compression = *comp;
    if (d.has("unpacked-size")) {
        SVM_TRY(v, d.u64("unpacked-size"));
        c.unpacked_size = v;
    }
    if (d.has("unpacked-digest")) {
        SVM_TRY(v, d.bytes("unpacked-digest"));
        c.unpacked_digest = std::move(v);
    }
    if (d.has("load-address") || d.has("memory-size") || d.has("entry-offset")) {
        KernelPlacement kp;
        SVM_TRY(load, d.u64("load-address"));
        SVM_TRY(mem, d.u64("memory-size"));
        SVM_TRY(entry, d.u64("entry-offset"));
        kp.load_address = load;
        kp.memory_size = mem;
        kp.entry_offset = entry;
        c.kernel = kp;
    }
    return c;
}

Result<Signature> decode_signature(const FdtReader& r, int node, const std::string& label,
                                   const std::string& where) {
    SVM_TRY(props, r.properties(node, {"algorithm", "key-id", "value"}));
    PropDecoder d(props, label, where, "manifest");
    SVM_TRY(algo_name, d.str("algorithm"));
    SVM_TRY(key_id, d.bytes("key-id"));
    SVM_TRY(value, d.bytes("value"));
    auto algo = signer::parse_algorithm_name(algo_name);
    if (!algo)
        return fail(ExitCode::malformed, "{}: manifest: {} uses unknown algorithm '{}'", where,
                    label, algo_name);
    Signature s;
    s.algorithm = *algo;
    if (key_id.size() != s.key_id.size())
        return fail(ExitCode::malformed, "{}: manifest: {} key-id must be 32 bytes", where, label);
    std::copy(key_id.begin(), key_id.end(), s.key_id.begin());
    s.value = std::move(value);
    return s;
}

} // namespace

std::vector<std::byte> encode_manifest_fdt(const Manifest& m) {
    FdtBuilder b;
    b.finish_reservemap();
    b.begin("");
    b.prop_string("compatible", kRootCompatible);
    b.begin(kManifestNode);
    b.prop_u32("format-version", m.format_version);
    b.prop_string("arch", arch_name(m.arch));
    b.prop_u64("image-base", m.image_base);
    b.prop_u64("entry", m.entry);
    b.prop_u64("security-version", m.security_version);
    b.prop_u64("creation-time", m.creation_time);
    b.prop_u64("swiotlb-size", m.swiotlb_size);
    b.prop_string("hash", signer::digest_name(m.hash));
    b.begin("components");
    for (const Component& c : m.components) {
        b.begin(std::string(component_name(c.kind)).c_str());
        b.prop_u64("address", c.address);
        b.prop_u64("size", c.size);
        b.prop_string("compression", compression_name(c.compression));
        b.prop("digest", c.digest);
        if (c.unpacked_size)
            b.prop_u64("unpacked-size", *c.unpacked_size);
        if (c.unpacked_digest)
            b.prop("unpacked-digest", *c.unpacked_digest);
        if (c.kernel) {
            b.prop_u64("load-address", c.kernel->load_address);
            b.prop_u64("memory-size", c.kernel->memory_size);
            b.prop_u64("entry-offset", c.kernel->entry_offset);
        }
        b.end();
    }
    b.end();
    b.begin("signatures");
    for (std::size_t i = 0; i < m.signatures.size(); ++i) {
        const Signature& s = m.signatures[i];
        b.begin(("signature-" + std::to_string(i)).c_str());
        b.prop_string("algorithm", signer::algorithm_name(s.algorithm));
        b.prop("key-id", s.key_id);
        b.prop("value", s.value);
        b.end();
    }
    b.end();
    b.end();
    write_esm_nodes(b, m.esm);
    b.end();
    return b.finish();
}

std::size_t manifest_fdt_size(std::span<const std::byte> blob) {
    std::uint32_t be = 0;
    std::memcpy(&be, blob.data() + 4, 4);
    return __builtin_bswap32(be);
}

Result<Manifest> decode_manifest_fdt(std::span<const std::byte> blob, const std::string& where) {
    if (blob.size() < sizeof(fdt_header))
        return fail(ExitCode::malformed, "{}: manifest: {} bytes is too small for a device tree",
                    where, blob.size());
    if (blob.size() > kMaxManifestSize)
        return fail(ExitCode::malformed, "{}: manifest: {} bytes is larger than the {} byte limit",
                    where, blob.size(), kMaxManifestSize);
    const AlignedFdt aligned(blob);
    const void* fdt = aligned.data();
    if (fdt_magic(fdt) != FDT_MAGIC)
        return fail(ExitCode::malformed, "{}: manifest is not a device tree (bad magic)", where);
    const std::uint32_t total = fdt_totalsize(fdt);
    if (total > blob.size())
        return fail(ExitCode::malformed,
                    "{}: manifest device tree claims {} bytes, only {} present", where, total,
                    blob.size());
    for (std::size_t i = total; i < blob.size(); ++i)
        if (blob[i] != std::byte{0})
            return fail(ExitCode::malformed,
                        "{}: manifest: non-zero bytes after the device tree (offset {})", where, i);
    if (int err = fdt_check_full_strict(fdt, total); err != 0)
        return fail(ExitCode::malformed, "{}: manifest device tree is malformed: {}", where,
                    fdt_strerror(err));
    if (fdt_num_mem_rsv(fdt) != 0)
        return fail(ExitCode::malformed, "{}: manifest: unexpected memory reservation entries",
                    where);

    FdtReader r(fdt, where, "manifest");
    SVM_TRY(root_props, r.properties(0, {"compatible"}));
    PropDecoder root(root_props, "the root node", where, "manifest");
    SVM_TRY(compatible, root.str("compatible"));
    if (compatible != kRootCompatible)
        return fail(ExitCode::malformed, "{}: manifest: root compatible is '{}', expected '{}'",
                    where, compatible, kRootCompatible);
    SVM_TRY(root_children, r.children(0));
    int mnode = -1;
    EsmBlob esm;
    for (const auto& [name, off] : root_children) {
        if (is_esm_root_node(name)) {
            SVM_CHECK(read_esm_node(r, name, off, esm));
            continue;
        }
        if (name != kManifestNode)
            return fail(ExitCode::malformed, "{}: manifest: unknown node '/{}'", where, name);
        mnode = off;
    }
    SVM_CHECK(validate_esm_blob(esm, where));
    if (mnode < 0)
        return fail(ExitCode::malformed, "{}: manifest: no /{} node", where, kManifestNode);

    SVM_TRY(mprops,
            r.properties(mnode, {"format-version", "arch", "image-base", "entry",
                                 "security-version", "creation-time", "swiotlb-size", "hash"}));
    PropDecoder d(mprops, kManifestNode, where, "manifest");
    Manifest m;
    SVM_TRY(version, d.u32("format-version"));
    m.format_version = version;
    if (!is_known_format_version(m.format_version))
        return fail(ExitCode::malformed, "{}: manifest format version {} is not supported", where,
                    m.format_version);
    SVM_TRY(arch, d.str("arch"));
    if (arch == "x86_64")
        m.arch = Arch::x86_64;
    else if (arch == "ppc64le")
        m.arch = Arch::ppc64le;
    else
        return fail(ExitCode::malformed, "{}: manifest: unknown arch '{}'", where, arch);
    SVM_TRY(image_base, d.u64("image-base"));
    SVM_TRY(entry, d.u64("entry"));
    SVM_TRY(svn, d.u64("security-version"));
    SVM_TRY(ctime, d.u64("creation-time"));
    SVM_TRY(swiotlb, d.u64("swiotlb-size"));
    SVM_TRY(hash, d.str("hash"));
    m.image_base = image_base;
    m.entry = entry;
    m.security_version = svn;
    m.creation_time = ctime;
    m.swiotlb_size = swiotlb;
    auto hash_algo = signer::parse_digest_name(hash);
    if (!hash_algo)
        return fail(ExitCode::malformed, "{}: manifest: unknown hash '{}'", where, hash);
    m.hash = *hash_algo;

    SVM_TRY(mchildren, r.children(mnode));
    bool have_components = false;
    bool have_signatures = false;
    for (const auto& [name, off] : mchildren) {
        if (name == "components") {
            have_components = true;
            SVM_TRY(cprops, r.properties(off, {}));
            (void)cprops;
            SVM_TRY(kinds, r.children(off));
            for (const auto& [cname, coff] : kinds) {
                auto kind = parse_component_name(cname);
                if (!kind)
                    return fail(ExitCode::malformed, "{}: manifest: unknown component '{}'", where,
                                cname);
                SVM_TRY(grandchildren, r.children(coff));
                if (!grandchildren.empty())
                    return fail(ExitCode::malformed, "{}: manifest: unexpected node under {}",
                                where, cname);
                SVM_TRY(c, decode_component(r, coff, *kind, where));
                m.components.push_back(std::move(c));
            }
        } else if (name == "signatures") {
            have_signatures = true;
            SVM_TRY(sprops, r.properties(off, {}));
            (void)sprops;
            SVM_TRY(sigs, r.children(off));
            m.signatures.resize(sigs.size());
            std::vector<bool> filled(sigs.size(), false);
            for (const auto& [sname, soff] : sigs) {
                // Names are exactly "signature-<N>", N in [0, count), decimal, no leading zeros.
                constexpr std::string_view prefix = "signature-";
                std::size_t index = sigs.size();
                if (sname.starts_with(prefix)) {
                    std::string_view digits = std::string_view(sname).substr(prefix.size());
                    bool ok = !digits.empty() && digits.size() <= 4 &&
                              std::all_of(digits.begin(), digits.end(),
                                          [](char c) { return c >= '0' && c <= '9'; }) &&
                              (digits.size() == 1 || digits[0] != '0');
                    if (ok)
                        index = std::stoul(std::string(digits));
                }
                if (index >= sigs.size() || filled[index])
                    return fail(ExitCode::malformed, "{}: manifest: unexpected signature node '{}'",
                                where, sname);
                SVM_TRY(grandchildren, r.children(soff));
                if (!grandchildren.empty())
                    return fail(ExitCode::malformed, "{}: manifest: unexpected node under {}",
                                where, sname);
                SVM_TRY(s, decode_signature(r, soff, sname, where));
                m.signatures[index] = std::move(s);
                filled[index] = true;
            }
        } else {
            return fail(ExitCode::malformed, "{}: manifest: unknown node '{}' in /{}", where, name,
                        kManifestNode);
        }
    }
    if (!have_components)
        return fail(ExitCode::malformed, "{}: manifest: no components node", where);
    if (!have_signatures)
        return fail(ExitCode::malformed, "{}: manifest: no signatures node", where);
    std::sort(m.components.begin(), m.components.end(),
              [](const Component& a, const Component& b) { return a.kind < b.kind; });
    // Its messages say what they are about: "<file>: manifest: components ... overlap".
    SVM_CHECK(validate_manifest(m, where + ": manifest"));
    m.esm = std::move(esm);
    // One byte form per manifest: the blob must be exactly what the encoder
    // writes for what it decodes to, so no structural byte (node order, NOPs,
    // string table layout, header fields) can vary without being refused.
    const std::vector<std::byte> canonical = encode_manifest_fdt(m);
    if (canonical.size() != total || !std::equal(canonical.begin(), canonical.end(), blob.begin()))
        return fail(ExitCode::malformed, "{}: manifest device tree is not in canonical form",
                    where);
    return m;
}

} // namespace svmkit::format
