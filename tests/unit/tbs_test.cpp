// Unit tests for format/tbs: the canonical to-be-signed encoding is
// deterministic, covers every manifest field but no signature, and matches the
// byte layout documented in tbs.hpp exactly (a golden vector derived by hand).
#include "format/tbs.hpp"

#include "format/manifest.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

using namespace svmkit;
using namespace svmkit::format;
using svmkit::test::filled;

namespace {

constexpr std::uint64_t kBase = 0x4000000;

Manifest full_manifest() {
    const auto hash = signer::DigestAlgorithm::sha256;
    auto comp = [&](ComponentKind kind, std::uint64_t address, std::uint64_t size) {
        Component c;
        c.kind = kind;
        c.address = address;
        c.size = size;
        c.digest = filled(signer::digest_size(hash), 0x40 + static_cast<unsigned>(kind));
        return c;
    };
    Manifest m;
    m.arch = Arch::x86_64;
    m.image_base = kBase;
    m.entry = kBase;
    m.security_version = 3;
    m.creation_time = 1'650'000'000;
    m.swiotlb_size = 64ull << 20;
    m.hash = hash;
    m.components.push_back(comp(ComponentKind::stub_text, kBase, 0x1000));
    m.components.push_back(comp(ComponentKind::stub_rodata, kBase + 0x10000, 0x100));
    Component k = comp(ComponentKind::kernel, kBase + 0x20000, 0x80000);
    k.compression = Compression::gzip;
    k.unpacked_size = 0x200000;
    k.unpacked_digest = filled(32, 0x99);
    k.kernel = KernelPlacement{0x0, 0x400000, 0x40};
    m.components.push_back(k);
    m.components.push_back(comp(ComponentKind::initrd, kBase + 0xa0000, 0x30000));
    m.components.push_back(comp(ComponentKind::cmdline, kBase + 0xd0000, 20));
    return m;
}

std::string hex_of(const std::vector<std::byte>& v) {
    return hex(v);
}

std::string repeat_hex(const char* byte_hex, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i)
        out += byte_hex;
    return out;
}

} // namespace

TEST_CASE("tbs: deterministic and independent of signatures and listing order") {
    const Manifest m = full_manifest();
    REQUIRE(validate_manifest(m, "x").has_value());
    const auto tbs = encode_tbs(m);
    CHECK(encode_tbs(m) == tbs);
    Manifest copy = m;
    CHECK(encode_tbs(copy) == tbs);

    Manifest signed_m = m;
    Signature s;
    s.algorithm = signer::SignatureAlgorithm::ecdsa_p256_sha256;
    s.key_id.fill(std::byte{0x5a});
    s.value = filled(70, 0x11);
    signed_m.signatures.push_back(s);
    CHECK(encode_tbs(signed_m) == tbs);
    s.value = filled(64, 0x22);
    s.algorithm = signer::SignatureAlgorithm::ed25519;
    signed_m.signatures.push_back(s);
    CHECK(encode_tbs(signed_m) == tbs);
    signed_m.signatures[0].value[3] = std::byte{0};
    signed_m.signatures[1].key_id[0] = std::byte{0};
    CHECK(encode_tbs(signed_m) == tbs);

    // Components are encoded in canonical kind order whatever the vector's order.
    Manifest shuffled = m;
    std::reverse(shuffled.components.begin(), shuffled.components.end());
    CHECK(encode_tbs(shuffled) == tbs);
}

TEST_CASE("tbs: every field is covered") {
    using K = ComponentKind;
    const Manifest base = full_manifest();
    const auto base_tbs = encode_tbs(base);

    std::vector<std::pair<std::string, std::function<void(Manifest&)>>> changes = {
        {"format-version",
         [](Manifest& m) {
             m.format_version = 2;
         }},
        {"arch",
         [](Manifest& m) {
             m.arch = Arch::ppc64le;
         }},
        {"image-base",
         [](Manifest& m) {
             m.image_base += 0x10000;
         }},
        {"entry",
         [](Manifest& m) {
             m.entry += 4;
         }},
        {"security-version",
         [](Manifest& m) {
             m.security_version += 1;
         }},
        {"creation-time",
         [](Manifest& m) {
             m.creation_time += 1;
         }},
        {"swiotlb-size",
         [](Manifest& m) {
             m.swiotlb_size += 0x10000;
         }},
        {"hash",
         [](Manifest& m) {
             m.hash = signer::DigestAlgorithm::sha512;
         }},
        {"add dtb",
         [](Manifest& m) {
             Component c = *m.find(K::cmdline);
             c.kind = K::dtb;
             c.address = kBase + 0xe0000;
             m.components.push_back(c);
         }},
        {"remove initrd",
         [](Manifest& m) {
             std::erase_if(m.components, [](const Component& c) { return c.kind == K::initrd; });
         }},
        {"initrd becomes dtb",
         [](Manifest& m) {
             m.find(K::initrd)->kind = K::dtb;
         }},
    };
    for (K kind : {K::stub_text, K::stub_rodata, K::kernel, K::initrd, K::cmdline}) {
        const std::string n(component_name(kind));
        changes.emplace_back(n + " address", [kind](Manifest& m) { m.find(kind)->address += 1; });
        changes.emplace_back(n + " size", [kind](Manifest& m) { m.find(kind)->size += 1; });
        changes.emplace_back(n + " digest first byte",
                             [kind](Manifest& m) { m.find(kind)->digest.front() ^= std::byte{1}; });
        changes.emplace_back(n + " digest last byte",
                             [kind](Manifest& m) { m.find(kind)->digest.back() ^= std::byte{1}; });
        if (kind != K::kernel)
            changes.emplace_back(n + " compression", [kind](Manifest& m) {
                m.find(kind)->compression = Compression::gzip;
            });
    }
    changes.insert(changes.end(), {
                                      {"kernel compression",
                                       [](Manifest& m) {
                                           m.find(K::kernel)->compression = Compression::none;
                                       }},
                                      {"kernel unpacked-size",
                                       [](Manifest& m) {
                                           *m.find(K::kernel)->unpacked_size += 1;
                                       }},
                                      {"kernel unpacked-size removed",
                                       [](Manifest& m) {
                                           m.find(K::kernel)->unpacked_size.reset();
                                       }},
                                      {"kernel unpacked-digest",
                                       [](Manifest& m) {
                                           m.find(K::kernel)->unpacked_digest->back() ^=
                                               std::byte{0x80};
                                       }},
                                      {"kernel unpacked-digest removed",
                                       [](Manifest& m) {
                                           m.find(K::kernel)->unpacked_digest.reset();
                                       }},
                                      {"kernel load-address",
                                       [](Manifest& m) {
                                           m.find(K::kernel)->kernel->load_address++;
                                       }},
                                      {"kernel memory-size",
                                       [](Manifest& m) {
                                           m.find(K::kernel)->kernel->memory_size++;
                                       }},
                                      {"kernel entry-offset",
                                       [](Manifest& m) {
                                           m.find(K::kernel)->kernel->entry_offset++;
                                       }},
                                      {"kernel placement removed",
                                       [](Manifest& m) {
                                           m.find(K::kernel)->kernel.reset();
                                       }},
                                      {"initrd gains unpacked-size",
                                       [](Manifest& m) {
                                           m.find(K::initrd)->unpacked_size = 0;
                                       }},
                                      {"initrd gains a placement",
                                       [](Manifest& m) {
                                           m.find(K::initrd)->kernel = KernelPlacement{};
                                       }},
                                      {"digest one byte longer",
                                       [](Manifest& m) {
                                           m.find(K::cmdline)->digest.push_back(std::byte{0});
                                       }},
                                  });

    std::vector<std::vector<std::byte>> seen = {base_tbs};
    for (const auto& [label, change] : changes) {
        CAPTURE(label);
        Manifest m = base;
        change(m);
        const auto tbs = encode_tbs(m);
        CHECK(tbs != base_tbs);
        // Every change gives an encoding of its own.
        CHECK(std::find(seen.begin(), seen.end(), tbs) == seen.end());
        seen.push_back(tbs);
    }
}

TEST_CASE("tbs: golden bytes from the documented encoding") {
    Manifest m;
    m.format_version = 1;
    m.arch = Arch::x86_64;
    m.image_base = 0x4000000;
    m.entry = 0x4000000;
    m.security_version = 2;
    m.creation_time = 0x65000000;
    m.swiotlb_size = 0x100000;
    m.hash = signer::DigestAlgorithm::sha256;
    Component text;
    text.kind = ComponentKind::stub_text;
    text.address = 0x4000000;
    text.size = 0x10;
    text.digest = filled(32, 0x11);
    Component kernel;
    kernel.kind = ComponentKind::kernel;
    kernel.address = 0x4010000;
    kernel.size = 0x20;
    kernel.compression = Compression::gzip;
    kernel.digest = filled(32, 0x22);
    kernel.unpacked_size = 0x40;
    kernel.unpacked_digest = filled(32, 0x33);
    kernel.kernel = KernelPlacement{0x0, 0x1000, 0x8};
    m.components = {text, kernel};
    REQUIRE(validate_manifest(m, "golden").has_value());

    // Written out by hand from tbs.hpp: u16 tag, u32 length, value, big-endian.
    const std::string expected =
        // magic "svmkit-tbs-v1\n"
        std::string("73766d6b69742d7462732d76310a")
        // 0x0001 format-version u32 1
        + "0001" + "00000004" +
        "00000001"
        // 0x0002 arch "x86_64"
        + "0002" + "00000006" +
        "7838365f3634"
        // 0x0003 image-base
        + "0003" + "00000008" +
        "0000000004000000"
        // 0x0004 entry
        + "0004" + "00000008" +
        "0000000004000000"
        // 0x0005 security-version
        + "0005" + "00000008" +
        "0000000000000002"
        // 0x0006 creation-time
        + "0006" + "00000008" +
        "0000000065000000"
        // 0x0007 swiotlb-size
        + "0007" + "00000008" +
        "0000000000100000"
        // 0x0008 hash "sha256"
        + "0008" + "00000006" +
        "736861323536"
        // component "stub-text"
        + "0100" + "00000009" + "737475622d74657874" //
        + "0101" + "00000008" + "0000000004000000"   // address
        + "0102" + "00000008" + "0000000000000010"   // size
        + "0103" + "00000004" + "6e6f6e65"           // compression "none"
        + "0104" + "00000020" + repeat_hex("11", 32) // digest
        + "01ff" + "00000000"                        // end of component
        + "0100" + "00000006" + "6b65726e656c"       // component "kernel"
        + "0101" + "00000008" + "0000000004010000"   // address
        + "0102" + "00000008" + "0000000000000020"   // size
        + "0103" + "00000004" + "677a6970"           // compression "gzip"
        + "0104" + "00000020" + repeat_hex("22", 32) // digest
        + "0105" + "00000008" + "0000000000000040"   // unpacked-size
        + "0106" + "00000020" + repeat_hex("33", 32) // unpacked-digest
        + "0107" + "00000008" + "0000000000000000"   // load-address
        + "0108" + "00000008" + "0000000000001000"   // memory-size
        + "0109" + "00000008" + "0000000000000008"   // entry-offset
        + "01ff" + "00000000"                        // end of component
        + "ffff" + "00000000";                       // end

    const std::string actual = hex_of(encode_tbs(m));
    // The first fields on their own, so a failure points at the header.
    CHECK(actual.substr(0, 28) == "73766d6b69742d7462732d76310a");
    CHECK(actual.substr(28, 20) == "00010000000400000001");
    CHECK(actual == expected);
    // magic 14, header fields 10 + 12 + 5 * 14 + 12, stub-text 15 + 14 + 14 + 10 + 38 + 6,
    // kernel 12 + 14 + 14 + 10 + 38 + 14 + 38 + 3 * 14 + 6, end 6.
    CHECK(actual.size() / 2 == 409);
}
