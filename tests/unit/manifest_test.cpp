// Unit tests for format/manifest and format/manifest_fdt: the manifest's
// invariants, its device-tree encoding, and the strict decoder's refusals.
//
// Malformed blobs are built with libfdt's sequential-write API from a small
// tree model that mirrors the documented layout (manifest_fdt.hpp), so each
// refusal test changes exactly one thing in an otherwise valid manifest.
#include "format/manifest.hpp"
#include "format/manifest_fdt.hpp"

#include "test_support.hpp"

#include <doctest/doctest.h>
#include <libfdt.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

using namespace svmkit;
using namespace svmkit::format;
using svmkit::test::check_error;
using svmkit::test::filled;

namespace {

constexpr std::uint64_t kBase = 0x4000000;

Component make_component(ComponentKind kind, std::uint64_t address, std::uint64_t size,
                         signer::DigestAlgorithm hash) {
    Component c;
    c.kind = kind;
    c.address = address;
    c.size = size;
    c.digest = filled(signer::digest_size(hash), 0x10 + static_cast<unsigned>(kind));
    return c;
}

// A manifest that satisfies every invariant: all six components, each 64 KiB
// aligned after the previous one, the kernel loaded below the image.
Manifest valid_manifest(signer::DigestAlgorithm hash = signer::DigestAlgorithm::sha256,
                        Arch arch = Arch::x86_64) {
    Manifest m;
    m.arch = arch;
    m.image_base = kBase;
    m.entry = kBase + 0x10;
    m.security_version = 7;
    m.creation_time = 1'700'000'000;
    m.swiotlb_size = 64ull << 20;
    m.hash = hash;
    m.components.push_back(make_component(ComponentKind::stub_text, kBase, 0x2000, hash));
    m.components.push_back(make_component(ComponentKind::stub_rodata, kBase + 0x10000, 0x40, hash));
    Component kernel = make_component(ComponentKind::kernel, kBase + 0x30000, 0x123456, hash);
    kernel.kernel = KernelPlacement{0x0, 0x200000, 0x10};
    m.components.push_back(kernel);
    m.components.push_back(make_component(ComponentKind::initrd, kBase + 0x160000, 0x54321, hash));
    m.components.push_back(make_component(ComponentKind::cmdline, kBase + 0x1c0000, 12, hash));
    m.components.push_back(make_component(ComponentKind::dtb, kBase + 0x1d0000, 0x800, hash));
    return m;
}

// The same manifest with a gzip-compressed kernel.
Manifest valid_gzip_manifest(signer::DigestAlgorithm hash = signer::DigestAlgorithm::sha256) {
    Manifest m = valid_manifest(hash);
    Component* k = m.find(ComponentKind::kernel);
    k->compression = Compression::gzip;
    k->unpacked_size = 0x1a0000;
    k->unpacked_digest = filled(signer::digest_size(hash), 0x77);
    k->kernel->memory_size = 0x300000;
    return m;
}

std::vector<Signature> some_signatures() {
    std::vector<Signature> sigs;
    const signer::SignatureAlgorithm algos[] = {signer::SignatureAlgorithm::ed25519,
                                                signer::SignatureAlgorithm::ecdsa_p384_sha384,
                                                signer::SignatureAlgorithm::rsa_pss_sha256};
    for (std::size_t i = 0; i < 3; ++i) {
        Signature s;
        s.algorithm = algos[i];
        for (std::size_t j = 0; j < s.key_id.size(); ++j)
            s.key_id[j] = static_cast<std::byte>(i * 40 + j);
        s.value = svmkit::test::random_bytes(64 + i * 100, i + 1);
        sigs.push_back(std::move(s));
    }
    return sigs;
}

void check_same(const Manifest& a, const Manifest& b) {
    CHECK(a.format_version == b.format_version);
    CHECK(a.arch == b.arch);
    CHECK(a.image_base == b.image_base);
    CHECK(a.entry == b.entry);
    CHECK(a.security_version == b.security_version);
    CHECK(a.creation_time == b.creation_time);
    CHECK(a.swiotlb_size == b.swiotlb_size);
    CHECK(a.hash == b.hash);
    REQUIRE(a.components.size() == b.components.size());
    for (std::size_t i = 0; i < a.components.size(); ++i) {
        const Component& x = a.components[i];
        const Component& y = b.components[i];
        CAPTURE(component_name(x.kind));
        CHECK(x.kind == y.kind);
        CHECK(x.address == y.address);
        CHECK(x.size == y.size);
        CHECK(x.compression == y.compression);
        CHECK(x.digest == y.digest);
        CHECK(x.unpacked_size == y.unpacked_size);
        CHECK(x.unpacked_digest == y.unpacked_digest);
        REQUIRE(x.kernel.has_value() == y.kernel.has_value());
        if (x.kernel) {
            CHECK(x.kernel->load_address == y.kernel->load_address);
            CHECK(x.kernel->memory_size == y.kernel->memory_size);
            CHECK(x.kernel->entry_offset == y.kernel->entry_offset);
        }
    }
    REQUIRE(a.signatures.size() == b.signatures.size());
    for (std::size_t i = 0; i < a.signatures.size(); ++i) {
        CHECK(a.signatures[i].algorithm == b.signatures[i].algorithm);
        CHECK(a.signatures[i].key_id == b.signatures[i].key_id);
        CHECK(a.signatures[i].value == b.signatures[i].value);
    }
}

// ---- a device-tree model for crafting blobs -----------------------------------

using Bytes = std::vector<std::byte>;

Bytes be(std::uint64_t v, int n) {
    Bytes out;
    for (int i = n - 1; i >= 0; --i)
        out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
    return out;
}
Bytes u32(std::uint32_t v) {
    return be(v, 4);
}
Bytes u64(std::uint64_t v) {
    return be(v, 8);
}
Bytes str(std::string_view s) {
    Bytes out = svmkit::test::to_bytes(s);
    out.push_back(std::byte{0});
    return out;
}

struct Node {
    std::string name;
    std::vector<std::pair<std::string, Bytes>> props;
    std::vector<Node> children;

    Node& child(std::string_view n) {
        for (Node& c : children)
            if (c.name == n)
                return c;
        FAIL("no child node " << std::string(n) << " in " << name);
        return children.front();
    }
    void set(const std::string& prop, Bytes value) {
        for (auto& [k, v] : props)
            if (k == prop) {
                v = std::move(value);
                return;
            }
        props.emplace_back(prop, std::move(value));
    }
    void remove(const std::string& prop) {
        std::erase_if(props, [&](const auto& p) { return p.first == prop; });
    }
};

// The documented tree for `m` (manifest_fdt.hpp), property order as encoded.
Node manifest_tree(const Manifest& m) {
    Node root{"", {{"compatible", str("ibm,esm")}}, {}};
    Node man{"svmkit-manifest", {}, {}};
    man.props = {{"format-version", u32(m.format_version)},
                 {"arch", str(arch_name(m.arch))},
                 {"image-base", u64(m.image_base)},
                 {"entry", u64(m.entry)},
                 {"security-version", u64(m.security_version)},
                 {"creation-time", u64(m.creation_time)},
                 {"swiotlb-size", u64(m.swiotlb_size)},
                 {"hash", str(signer::digest_name(m.hash))}};
    Node comps{"components", {}, {}};
    for (const Component& c : m.components) {
        Node n{std::string(component_name(c.kind)), {}, {}};
        n.props = {{"address", u64(c.address)},
                   {"size", u64(c.size)},
                   {"compression", str(compression_name(c.compression))},
                   {"digest", c.digest}};
        if (c.unpacked_size)
            n.props.emplace_back("unpacked-size", u64(*c.unpacked_size));
        if (c.unpacked_digest)
            n.props.emplace_back("unpacked-digest", *c.unpacked_digest);
        if (c.kernel) {
            n.props.emplace_back("load-address", u64(c.kernel->load_address));
            n.props.emplace_back("memory-size", u64(c.kernel->memory_size));
            n.props.emplace_back("entry-offset", u64(c.kernel->entry_offset));
        }
        comps.children.push_back(std::move(n));
    }
    Node sigs{"signatures", {}, {}};
    for (std::size_t i = 0; i < m.signatures.size(); ++i) {
        const Signature& s = m.signatures[i];
        Node n{"signature-" + std::to_string(i), {}, {}};
        n.props = {{"algorithm", str(signer::algorithm_name(s.algorithm))},
                   {"key-id", Bytes(s.key_id.begin(), s.key_id.end())},
                   {"value", s.value}};
        sigs.children.push_back(std::move(n));
    }
    man.children.push_back(std::move(comps));
    man.children.push_back(std::move(sigs));
    root.children.push_back(std::move(man));
    return root;
}

void write_node(void* fdt, const Node& n) {
    REQUIRE(fdt_begin_node(fdt, n.name.c_str()) == 0);
    for (const auto& [k, v] : n.props)
        REQUIRE(fdt_property(fdt, k.c_str(), v.data(), static_cast<int>(v.size())) == 0);
    for (const Node& c : n.children)
        write_node(fdt, c);
    REQUIRE(fdt_end_node(fdt) == 0);
}

// Packs the tree with libfdt's sequential-write API, which (unlike the
// read-write API) happily writes repeated nodes and properties.
Bytes pack(const Node& root,
           const std::vector<std::pair<std::uint64_t, std::uint64_t>>& reservations = {}) {
    std::vector<std::uint64_t> buf(1 << 17); // 1 MiB, 8-byte aligned
    void* fdt = buf.data();
    REQUIRE(fdt_create(fdt, static_cast<int>(buf.size() * 8)) == 0);
    for (const auto& [addr, size] : reservations)
        REQUIRE(fdt_add_reservemap_entry(fdt, addr, size) == 0);
    REQUIRE(fdt_finish_reservemap(fdt) == 0);
    write_node(fdt, root);
    REQUIRE(fdt_finish(fdt) == 0);
    const auto* p = reinterpret_cast<const std::byte*>(fdt);
    return Bytes(p, p + fdt_totalsize(fdt));
}

Bytes pack_manifest_with(const Manifest& m, const std::function<void(Node& root)>& change) {
    Node root = manifest_tree(m);
    change(root);
    return pack(root);
}

Node& manifest_node(Node& root) {
    return root.child("svmkit-manifest");
}
Node& components_node(Node& root) {
    return manifest_node(root).child("components");
}
Node& signatures_node(Node& root) {
    return manifest_node(root).child("signatures");
}

void check_decode_rejects(const Bytes& blob, std::string_view needle) {
    auto r = decode_manifest_fdt(blob, "img.elf");
    check_error(r, ExitCode::malformed, needle);
    if (!r)
        CHECK(r.error().message.starts_with("img.elf: "));
}

void check_invalid(const Manifest& m, std::string_view needle) {
    auto r = validate_manifest(m, "img.elf");
    check_error(r, ExitCode::malformed, needle);
    if (!r)
        CHECK(r.error().message.starts_with("img.elf: "));
}

} // namespace

// ---- names --------------------------------------------------------------------

TEST_CASE("manifest: component and compression names") {
    const std::vector<std::tuple<ComponentKind, std::string, std::string>> expected = {
        {ComponentKind::stub_text, "stub-text", ".text"},
        {ComponentKind::stub_rodata, "stub-rodata", ".rodata"},
        {ComponentKind::kernel, "kernel", ".kernel:vmlinux.strip"},
        {ComponentKind::initrd, "initrd", ".kernel:initrd"},
        {ComponentKind::cmdline, "cmdline", ".kernel:cmdline"},
        {ComponentKind::dtb, "dtb", ".kernel:dtb"},
    };
    REQUIRE(expected.size() == kAllComponentKinds.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const auto& [kind, node, section] = expected[i];
        CHECK(kAllComponentKinds[i] == kind);
        CHECK(component_name(kind) == node);
        CHECK(component_section(kind) == section);
        CHECK(parse_component_name(node) == kind);
    }
    CHECK_FALSE(parse_component_name("Kernel").has_value());
    CHECK_FALSE(parse_component_name("stub_text").has_value());
    CHECK_FALSE(parse_component_name("").has_value());
    CHECK(compression_name(Compression::none) == "none");
    CHECK(compression_name(Compression::gzip) == "gzip");
    CHECK(parse_compression_name("gzip") == Compression::gzip);
    CHECK(parse_compression_name("none") == Compression::none);
    CHECK_FALSE(parse_compression_name("xz").has_value());
    CHECK_FALSE(parse_compression_name("GZIP").has_value());
    CHECK(hex(filled(3, 0xab)) == "ababab");
    CHECK(hex(std::vector<std::byte>{std::byte{0x01}, std::byte{0xf0}}) == "01f0");
    CHECK(hex({}).empty());
}

// ---- encoding and decoding ----------------------------------------------------

TEST_CASE("manifest: the test manifests are valid") {
    CHECK(validate_manifest(valid_manifest(), "x").has_value());
    CHECK(validate_manifest(valid_gzip_manifest(), "x").has_value());
    for (auto h : {signer::DigestAlgorithm::sha384, signer::DigestAlgorithm::sha512})
        CHECK(validate_manifest(valid_manifest(h, Arch::ppc64le), "x").has_value());
}

TEST_CASE("manifest: FDT round trip keeps every field") {
    struct Case {
        const char* label;
        Manifest m;
    };
    std::vector<Case> cases;
    cases.push_back({"plain, unsigned", valid_manifest()});
    Manifest signed_plain = valid_manifest(signer::DigestAlgorithm::sha512, Arch::ppc64le);
    signed_plain.signatures = some_signatures();
    cases.push_back({"sha512, ppc64le, three signatures", signed_plain});
    Manifest gz = valid_gzip_manifest(signer::DigestAlgorithm::sha384);
    gz.signatures = some_signatures();
    gz.security_version = ~0ull;
    gz.creation_time = 0x0123456789abcdefull;
    cases.push_back({"gzip kernel, sha384, extreme values", gz});
    Manifest minimal = valid_manifest();
    std::erase_if(minimal.components, [](const Component& c) {
        return c.kind != ComponentKind::stub_text && c.kind != ComponentKind::kernel;
    });
    minimal.signatures = {some_signatures()[1]};
    cases.push_back({"only the required components", minimal});

    for (const Case& c : cases) {
        CAPTURE(c.label);
        REQUIRE(validate_manifest(c.m, "x").has_value());
        const Bytes blob = encode_manifest_fdt(c.m);
        CHECK(fdt_totalsize(blob.data()) == blob.size());
        CHECK(manifest_fdt_size(blob) == blob.size());
        // The encoder writes exactly the documented tree.
        CHECK(blob == pack(manifest_tree(c.m)));
        auto decoded = decode_manifest_fdt(blob, "img.elf");
        REQUIRE_MESSAGE(decoded.has_value(), decoded.error().message);
        check_same(*decoded, c.m);
        // Re-encoding the decoded manifest gives the same bytes.
        CHECK(encode_manifest_fdt(*decoded) == blob);
    }
}

TEST_CASE("manifest: decoding accepts zero padding after the tree only") {
    const Manifest m = valid_gzip_manifest();
    const Bytes blob = encode_manifest_fdt(m);
    Bytes padded = blob;
    padded.resize(blob.size() + 0x10000, std::byte{0});
    auto r = decode_manifest_fdt(padded, "img.elf");
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    check_same(*r, m);
    CHECK(manifest_fdt_size(padded) == blob.size());

    for (std::size_t where : {blob.size(), blob.size() + 1, padded.size() - 1}) {
        CAPTURE(where);
        Bytes dirty = padded;
        dirty[where] = std::byte{1};
        check_decode_rejects(
            dirty, fmt::format("non-zero bytes after the device tree (offset {})", where));
    }
}

TEST_CASE("manifest: decoding rejects broken device trees") {
    const Bytes blob = encode_manifest_fdt(valid_manifest());

    SUBCASE("bad magic") {
        Bytes b = blob;
        b[0] = std::byte{0xd0 ^ 0xff};
        check_decode_rejects(b, "not a device tree (bad magic)");
    }
    SUBCASE("truncated blob") {
        Bytes b(blob.begin(), blob.end() - 8);
        check_decode_rejects(
            b, fmt::format("claims {} bytes, only {} present", blob.size(), blob.size() - 8));
    }
    SUBCASE("smaller than a header") {
        Bytes b(blob.begin(), blob.begin() + 20);
        check_decode_rejects(b, "20 bytes is too small for a device tree");
        check_decode_rejects({}, "0 bytes is too small");
    }
    SUBCASE("larger than the limit") {
        Bytes b = blob;
        b.resize(kMaxManifestSize + 1, std::byte{0});
        check_decode_rejects(b, "larger than the");
    }
    SUBCASE("corrupt structure block") {
        Bytes b = blob;
        // The first structure token (FDT_BEGIN_NODE) becomes an unknown tag.
        const std::uint32_t off = fdt_off_dt_struct(blob.data());
        REQUIRE(b[off + 3] == std::byte{FDT_BEGIN_NODE});
        b[off + 3] = std::byte{0x07};
        check_decode_rejects(b, "manifest device tree is malformed");
    }
    SUBCASE("memory reservation entries") {
        Bytes b = pack(manifest_tree(valid_manifest()), {{0x1000, 0x2000}});
        check_decode_rejects(b, "unexpected memory reservation entries");
    }
}

TEST_CASE("manifest: decoding rejects unknown or repeated nodes and properties") {
    const Manifest m = valid_gzip_manifest();
    Manifest signed_m = m;
    signed_m.signatures = some_signatures();

    SUBCASE("the unchanged model decodes (control)") {
        auto r = decode_manifest_fdt(pack_manifest_with(signed_m, [](Node&) {}), "img.elf");
        REQUIRE_MESSAGE(r.has_value(), r.error().message);
        check_same(*r, signed_m);
    }
    SUBCASE("unknown property in the manifest node") {
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { manifest_node(root).set("comment", str("hello")); }),
            "unknown property 'comment' in /svmkit-manifest");
    }
    SUBCASE("unknown property in the root node") {
        check_decode_rejects(pack_manifest_with(m, [](Node& root) { root.set("model", str("x")); }),
                             "unknown property 'model' in /");
    }
    SUBCASE("unknown property in a component") {
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { components_node(root).child("initrd").set("offset", u64(0)); }),
            "unknown property 'offset' in /svmkit-manifest/components/initrd");
    }
    SUBCASE("property on the components node") {
        check_decode_rejects(
            pack_manifest_with(m, [](Node& root) { components_node(root).set("count", u32(6)); }),
            "unknown property 'count'");
    }
    SUBCASE("repeated property") {
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    manifest_node(root).props.emplace_back(
                                                        "entry", u64(kBase + 0x20));
                                                }),
                             "property 'entry' repeated in /svmkit-manifest");
    }
    SUBCASE("unknown node at the root") {
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    root.children.push_back({"chosen", {}, {}});
                                                }),
                             "unknown node '/chosen'");
    }
    SUBCASE("no manifest node") {
        check_decode_rejects(pack_manifest_with(m, [](Node& root) { root.children.clear(); }),
                             "no /svmkit-manifest node");
    }
    SUBCASE("repeated manifest node") {
        check_decode_rejects(
            pack_manifest_with(m, [](Node& root) { root.children.push_back(root.children[0]); }),
            "node 'svmkit-manifest' repeated");
    }
    SUBCASE("unknown node in the manifest node") {
        check_decode_rejects(
            pack_manifest_with(m,
                               [](Node& root) {
                                   manifest_node(root).children.push_back({"extensions", {}, {}});
                               }),
            "unknown node 'extensions' in /svmkit-manifest");
    }
    SUBCASE("node under a component") {
        check_decode_rejects(
            pack_manifest_with(
                m,
                [](Node& root) {
                    components_node(root).child("kernel").children.push_back({"extra", {}, {}});
                }),
            "unexpected node under kernel");
    }
    SUBCASE("unknown component name") {
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    Node fw = components_node(root).child("dtb");
                                                    fw.name = "firmware";
                                                    components_node(root).children.push_back(fw);
                                                }),
                             "unknown component 'firmware'");
    }
    SUBCASE("repeated component node") {
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    Node& comps = components_node(root);
                                                    comps.children.insert(comps.children.begin() +
                                                                              3,
                                                                          comps.child("kernel"));
                                                }),
                             "node 'kernel' repeated in /svmkit-manifest/components");
    }
    SUBCASE("missing components node") {
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    std::erase_if(manifest_node(root).children,
                                                                  [](const Node& n) {
                                                                      return n.name == "components";
                                                                  });
                                                }),
                             "no components node");
    }
    SUBCASE("missing signatures node") {
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    std::erase_if(manifest_node(root).children,
                                                                  [](const Node& n) {
                                                                      return n.name == "signatures";
                                                                  });
                                                }),
                             "no signatures node");
    }
    SUBCASE("missing property") {
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { components_node(root).child("cmdline").remove("digest"); }),
            "component cmdline lacks property 'digest'");
        check_decode_rejects(
            pack_manifest_with(m, [](Node& root) { manifest_node(root).remove("swiotlb-size"); }),
            "svmkit-manifest lacks property 'swiotlb-size'");
    }
    SUBCASE("partial kernel placement") {
        check_decode_rejects(
            pack_manifest_with(
                m,
                [](Node& root) { components_node(root).child("kernel").remove("entry-offset"); }),
            "component kernel lacks property 'entry-offset'");
    }
}

TEST_CASE("manifest: decoding rejects badly typed values") {
    const Manifest m = valid_manifest();

    SUBCASE("a u64 property with 4 bytes") {
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { manifest_node(root).set("image-base", u32(kBase)); }),
            "svmkit-manifest/image-base must be a 64-bit value");
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { components_node(root).child("dtb").set("size", u32(0x800)); }),
            "component dtb/size must be a 64-bit value");
    }
    SUBCASE("a u32 property with 8 bytes") {
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { manifest_node(root).set("format-version", u64(1)); }),
            "format-version must be a 32-bit value");
    }
    SUBCASE("a string without its NUL") {
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    manifest_node(root).set(
                                                        "arch", svmkit::test::to_bytes("x86_64"));
                                                }),
                             "svmkit-manifest/arch must be a string");
        check_decode_rejects(
            pack_manifest_with(m, [](Node& root) { manifest_node(root).set("hash", {}); }),
            "svmkit-manifest/hash must be a string");
    }
    SUBCASE("a string with a control character or an embedded NUL") {
        for (std::string_view bad :
             {std::string_view("sha\n256\0", 8), std::string_view("sha256\0\0", 8),
              std::string_view("sha\x7f"
                               "256\0",
                               8),
              std::string_view("sha\xc3\xa9\0", 6)}) {
            CAPTURE(std::string(bad));
            Bytes value = svmkit::test::to_bytes(bad);
            check_decode_rejects(
                pack_manifest_with(m, [&](Node& root) { manifest_node(root).set("hash", value); }),
                "svmkit-manifest/hash must be one printable string");
        }
    }
    SUBCASE("unknown names in strings") {
        check_decode_rejects(
            pack_manifest_with(m,
                               [](Node& root) { manifest_node(root).set("arch", str("aarch64")); }),
            "unknown arch 'aarch64'");
        check_decode_rejects(
            pack_manifest_with(m, [](Node& root) { manifest_node(root).set("hash", str("md5")); }),
            "unknown hash 'md5'");
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    components_node(root).child("kernel").set(
                                                        "compression", str("xz"));
                                                }),
                             "unknown compression 'xz' for kernel");
    }
    SUBCASE("wrong root compatible") {
        for (const char* compat : {"ibm,esm2", "ibm,ESM", "svmkit"}) {
            CAPTURE(compat);
            check_decode_rejects(
                pack_manifest_with(m, [&](Node& root) { root.set("compatible", str(compat)); }),
                fmt::format("root compatible is '{}', expected 'ibm,esm'", compat));
        }
        check_decode_rejects(pack_manifest_with(m, [](Node& root) { root.remove("compatible"); }),
                             "the root node lacks property 'compatible'");
    }
    SUBCASE("format version 3") {
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { manifest_node(root).set("format-version", u32(3)); }),
            "manifest format version 3 is not supported");
    }
    SUBCASE("the decoded manifest is validated") {
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    components_node(root).child("initrd").set(
                                                        "digest", filled(31, 1));
                                                }),
                             "component initrd digest is 31 bytes, sha256 needs 32");
        check_decode_rejects(
            pack_manifest_with(m,
                               [](Node& root) {
                                   components_node(root).child("dtb").set("load-address", u64(0));
                                   components_node(root).child("dtb").set("memory-size",
                                                                          u64(0x800));
                                   components_node(root).child("dtb").set("entry-offset", u64(0));
                               }),
            "component dtb must not have a placement");
    }
}

TEST_CASE("manifest: decoding rejects bad signature nodes") {
    Manifest m = valid_manifest();
    m.signatures = some_signatures();

    SUBCASE("signature-1 without signature-0") {
        Manifest one = valid_manifest();
        one.signatures = {some_signatures()[0]};
        check_decode_rejects(
            pack_manifest_with(
                one, [](Node& root) { signatures_node(root).children[0].name = "signature-1"; }),
            "unexpected signature node 'signature-1'");
    }
    SUBCASE("signature-01") {
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { signatures_node(root).children[1].name = "signature-01"; }),
            "unexpected signature node 'signature-01'");
    }
    SUBCASE("other odd names") {
        for (const char* name : {"signature-", "signature-+1", "signature-1x", "Signature-1",
                                 "signature_1", "sig-1", "signature-00001"}) {
            CAPTURE(name);
            check_decode_rejects(
                pack_manifest_with(
                    m, [&](Node& root) { signatures_node(root).children[1].name = name; }),
                fmt::format("signature node '{}'", name));
        }
    }
    SUBCASE("the same number twice") {
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { signatures_node(root).children[1].name = "signature-0"; }),
            "node 'signature-0' repeated in /svmkit-manifest/signatures");
    }
    SUBCASE("nodes out of order are not the canonical form") {
        // Same meaning, different bytes: refused, so the blob has one form only.
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    auto& c = signatures_node(root).children;
                                                    std::reverse(c.begin(), c.end());
                                                }),
                             "not in canonical form");
    }
    SUBCASE("wrong key-id length") {
        for (std::size_t len : {0u, 31u, 33u, 64u}) {
            CAPTURE(len);
            check_decode_rejects(
                pack_manifest_with(
                    m,
                    [&](Node& root) {
                        signatures_node(root).child("signature-2").set("key-id", filled(len, 0xaa));
                    }),
                "signature-2 key-id must be 32 bytes");
        }
    }
    SUBCASE("unknown algorithm") {
        check_decode_rejects(pack_manifest_with(m,
                                                [](Node& root) {
                                                    signatures_node(root)
                                                        .child("signature-0")
                                                        .set("algorithm", str("rsa-pkcs1-sha256"));
                                                }),
                             "signature-0 uses unknown algorithm 'rsa-pkcs1-sha256'");
    }
    SUBCASE("unknown property, missing property, child node") {
        check_decode_rejects(
            pack_manifest_with(
                m,
                [](Node& root) {
                    signatures_node(root).child("signature-1").set("signer", str("me"));
                }),
            "unknown property 'signer'");
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { signatures_node(root).child("signature-1").remove("value"); }),
            "signature-1 lacks property 'value'");
        check_decode_rejects(
            pack_manifest_with(
                m,
                [](Node& root) {
                    signatures_node(root).child("signature-1").children.push_back({"x", {}, {}});
                }),
            "unexpected node under signature-1");
    }
    SUBCASE("empty signature value") {
        check_decode_rejects(
            pack_manifest_with(
                m, [](Node& root) { signatures_node(root).child("signature-1").set("value", {}); }),
            "a signature has an empty value");
    }
}

// ---- validate_manifest --------------------------------------------------------

TEST_CASE("manifest: validation rejects broken invariants") {
    using K = ComponentKind;
    const Manifest good = valid_manifest();
    auto with = [&](const std::function<void(Manifest&)>& change, Manifest base = {}) {
        Manifest m = base.components.empty() ? good : std::move(base);
        change(m);
        return m;
    };

    SUBCASE("overlapping components") {
        check_invalid(with([](Manifest& m) { m.find(K::initrd)->address -= 0x10000; }),
                      "components initrd and kernel overlap");
        // One byte of overlap is enough; touching is fine.
        check_invalid(with([](Manifest& m) {
                          m.find(K::cmdline)->address =
                              m.find(K::initrd)->address + m.find(K::initrd)->size - 1;
                      }),
                      "components cmdline and initrd overlap");
        CHECK(validate_manifest(with([](Manifest& m) {
                                    m.find(K::cmdline)->address =
                                        m.find(K::initrd)->address + m.find(K::initrd)->size;
                                }),
                                "x")
                  .has_value());
        // Not only neighbours: the dtb over the stub's code.
        check_invalid(with([](Manifest& m) { m.find(K::dtb)->address = kBase + 0x1000; }),
                      "components dtb and stub-text overlap");
    }
    SUBCASE("component below the image base") {
        check_invalid(with([](Manifest& m) { m.find(K::dtb)->address = kBase - 0x10000; }),
                      "component dtb at 0x3ff0000 lies below the image base 0x4000000");
    }
    SUBCASE("empty component") {
        check_invalid(with([](Manifest& m) { m.find(K::cmdline)->size = 0; }),
                      "component cmdline is empty");
    }
    SUBCASE("component range overflows") {
        check_invalid(with([](Manifest& m) { m.find(K::dtb)->size = ~0ull; }),
                      "component dtb range overflows");
    }
    SUBCASE("digest of the wrong length") {
        check_invalid(with([](Manifest& m) { m.find(K::initrd)->digest.pop_back(); }),
                      "component initrd digest is 31 bytes, sha256 needs 32");
        check_invalid(with([](Manifest& m) { m.hash = signer::DigestAlgorithm::sha384; }),
                      "component stub-text digest is 32 bytes, sha384 needs 48");
    }
    SUBCASE("compressed initrd") {
        check_invalid(with([](Manifest& m) {
                          Component* c = m.find(K::initrd);
                          c->compression = Compression::gzip;
                          c->unpacked_size = 0x100000;
                          c->unpacked_digest = filled(32, 1);
                      }),
                      "component initrd is compressed; only the kernel may be");
    }
    SUBCASE("compressed kernel without its unpacked fields") {
        const Manifest gz = valid_gzip_manifest();
        REQUIRE(validate_manifest(gz, "x").has_value());
        check_invalid(with([](Manifest& m) { m.find(K::kernel)->unpacked_digest.reset(); }, gz),
                      "compressed kernel lacks its unpacked size or digest");
        check_invalid(with([](Manifest& m) { m.find(K::kernel)->unpacked_size.reset(); }, gz),
                      "compressed kernel lacks its unpacked size or digest");
        check_invalid(
            with([](Manifest& m) { m.find(K::kernel)->unpacked_digest->push_back({}); }, gz),
            "kernel unpacked digest has the wrong length");
    }
    SUBCASE("uncompressed component with unpacked fields") {
        check_invalid(with([](Manifest& m) { m.find(K::kernel)->unpacked_size = 0x200000; }),
                      "component kernel is not compressed but records unpacked bytes");
        check_invalid(with([](Manifest& m) { m.find(K::dtb)->unpacked_digest = filled(32, 2); }),
                      "component dtb is not compressed but records unpacked bytes");
    }
    SUBCASE("kernel placement only on the kernel") {
        check_invalid(with([](Manifest& m) { m.find(K::kernel)->kernel.reset(); }),
                      "component kernel lacks its placement");
        check_invalid(with([](Manifest& m) { m.find(K::initrd)->kernel = KernelPlacement{}; }),
                      "component initrd must not have a placement");
    }
    SUBCASE("kernel load range overlapping the image") {
        // The image spans [kBase, kBase + 0x1d0800).
        check_invalid(with([](Manifest& m) {
                          m.find(K::kernel)->kernel->load_address = kBase - 0x200000 + 1;
                      }),
                      "kernel load range [0x3e00001, 0x4000001) overlaps the image [0x4000000, "
                      "0x41d0800)");
        check_invalid(with([](Manifest& m) {
                          m.find(K::kernel)->kernel->load_address = kBase + 0x1d0800 - 1;
                      }),
                      "overlaps the image");
        // Right below and right after the image is fine.
        for (std::uint64_t load : {kBase - 0x200000, kBase + 0x1d0800}) {
            CAPTURE(load);
            CHECK(
                validate_manifest(
                    with([&](Manifest& m) { m.find(K::kernel)->kernel->load_address = load; }), "x")
                    .has_value());
        }
        check_invalid(
            with([](Manifest& m) { m.find(K::kernel)->kernel->load_address = ~0ull - 0x1000; }),
            "kernel load range overflows");
    }
    SUBCASE("memory size smaller than the image") {
        check_invalid(with([](Manifest& m) {
                          m.find(K::kernel)->kernel->memory_size = m.find(K::kernel)->size - 1;
                      }),
                      "kernel memory size 1193045 is smaller than its image (1193046)");
        // A compressed kernel is measured unpacked.
        const Manifest gz = valid_gzip_manifest();
        check_invalid(with(
                          [](Manifest& m) {
                              Component* k = m.find(K::kernel);
                              k->kernel->memory_size = *k->unpacked_size - 1;
                          },
                          gz),
                      "is smaller than its image (1703936)");
        CHECK(validate_manifest(with(
                                    [](Manifest& m) {
                                        Component* k = m.find(K::kernel);
                                        k->kernel->memory_size = *k->unpacked_size;
                                    },
                                    gz),
                                "x")
                  .has_value());
    }
    SUBCASE("kernel entry outside the kernel") {
        check_invalid(with([](Manifest& m) {
                          m.find(K::kernel)->kernel->entry_offset =
                              m.find(K::kernel)->kernel->memory_size;
                      }),
                      "kernel entry offset 0x200000 is outside the kernel");
    }
    SUBCASE("entry outside stub-text") {
        const std::uint64_t text_end = kBase + good.find(K::stub_text)->size;
        for (std::uint64_t entry : {kBase - 1, text_end, kBase + 0x10000}) {
            CAPTURE(entry);
            check_invalid(with([&](Manifest& m) { m.entry = entry; }),
                          fmt::format("entry point {:#x} is outside the stub's code", entry));
        }
        for (std::uint64_t entry : {kBase, text_end - 1}) {
            CAPTURE(entry);
            CHECK(validate_manifest(with([&](Manifest& m) { m.entry = entry; }), "x").has_value());
        }
    }
    SUBCASE("stub not at the image base") {
        check_invalid(with([](Manifest& m) {
                          m.find(K::stub_text)->address += 0x1000;
                          m.entry += 0x1000;
                      }),
                      "the stub does not start at the image base");
    }
    SUBCASE("image base not aligned") {
        check_invalid(with([](Manifest& m) { m.image_base -= 0x1000; }),
                      "image base 0x3fff000 is not 64 KiB aligned");
    }
    SUBCASE("swiotlb size") {
        for (std::uint64_t size :
             {0ull, 1ull, (1ull << 20) - 0x10000, (2ull << 20) + 0x1000, (64ull << 20) + 1}) {
            CAPTURE(size);
            check_invalid(with([&](Manifest& m) { m.swiotlb_size = size; }),
                          fmt::format("bounce-pool size {} must be a multiple of 64 KiB and at "
                                      "least 1 MiB",
                                      size));
        }
        for (std::uint64_t size : {1ull << 20, (1ull << 20) + 0x10000, 1ull << 40}) {
            CAPTURE(size);
            CHECK(validate_manifest(with([&](Manifest& m) { m.swiotlb_size = size; }), "x")
                      .has_value());
        }
    }
    SUBCASE("missing kernel") {
        check_invalid(with([](Manifest& m) {
                          std::erase_if(m.components,
                                        [](const Component& c) { return c.kind == K::kernel; });
                      }),
                      "manifest has no kernel component");
    }
    SUBCASE("missing stub-text") {
        check_invalid(with([](Manifest& m) {
                          std::erase_if(m.components,
                                        [](const Component& c) { return c.kind == K::stub_text; });
                      }),
                      "manifest has no stub-text component");
    }
    SUBCASE("components out of order or repeated") {
        check_invalid(with([](Manifest& m) { std::swap(m.components[2], m.components[3]); }),
                      "manifest lists component kernel twice or out of order");
        check_invalid(with([](Manifest& m) {
                          Component again = *m.find(K::cmdline);
                          again.address = kBase + 0x300000;
                          m.components.push_back(again);
                      }),
                      "manifest lists component cmdline twice or out of order");
    }
    SUBCASE("format version") {
        check_invalid(with([](Manifest& m) { m.format_version = 3; }),
                      "manifest format version 3 is not supported (expected 1 or 2)");
        check_invalid(with([](Manifest& m) { m.format_version = 0; }),
                      "manifest format version 0 is not supported");
    }
    SUBCASE("empty signature value") {
        check_invalid(with([](Manifest& m) {
                          m.signatures = some_signatures();
                          m.signatures[2].value.clear();
                      }),
                      "a signature has an empty value");
    }
}
