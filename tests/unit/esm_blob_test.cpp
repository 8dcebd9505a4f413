// The ibm,esm device tree (format/esm_blob.*): round trips, svm-tools'
// layout, and the strict decoder refusing every malformed variant; the same
// nodes inside an image's manifest tree, where only the lockboxes stay
// outside the signed bytes.
#include "format/esm_blob.hpp"

#include "format/manifest_fdt.hpp"
#include "format/tbs.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <libfdt.h>

#include <functional>

using namespace svmkit;
using namespace svmkit::format;

namespace {

EsmSealed sealed(std::size_t size, std::uint64_t seed, std::string comment = "c") {
    return EsmSealed{std::move(comment), test::random_bytes(12, seed),
                     test::random_bytes(16, seed + 1), test::random_bytes(size, seed + 2)};
}

EsmLockbox lockbox(std::uint32_t number, std::uint64_t seed) {
    EsmLockbox b;
    b.number = number;
    b.comment = "box " + std::to_string(number);
    b.encrypted_symkey = test::random_bytes(256, seed);
    auto f = test::random_bytes(32, seed + 1);
    std::copy(f.begin(), f.end(), b.fingerprint.begin());
    return b;
}

EsmBlob sample_blob() {
    EsmBlob blob;
    blob.lockboxes = {lockbox(0, 10), lockbox(1, 20), lockbox(5, 30)};
    blob.digests = sealed(400, 40, "digests");
    blob.files = {{"disk-passphrase", sealed(68, 50)}, {"luks.key", sealed(4000, 60, "")}};
    return blob;
}

bool esm_revoke_for_test(EsmBlob& blob) {
    if (blob.lockboxes.size() < 2)
        return false;
    blob.lockboxes.erase(blob.lockboxes.begin() + 1);
    return true;
}

bool same(const EsmSealed& a, const EsmSealed& b) {
    return a.comment == b.comment && a.iv == b.iv && a.mac == b.mac && a.ciphertext == b.ciphertext;
}

void check_same(const EsmBlob& a, const EsmBlob& b) {
    REQUIRE(a.lockboxes.size() == b.lockboxes.size());
    for (std::size_t i = 0; i < a.lockboxes.size(); ++i) {
        CHECK(a.lockboxes[i].number == b.lockboxes[i].number);
        CHECK(a.lockboxes[i].comment == b.lockboxes[i].comment);
        CHECK(a.lockboxes[i].encrypted_symkey == b.lockboxes[i].encrypted_symkey);
        CHECK(a.lockboxes[i].fingerprint == b.lockboxes[i].fingerprint);
    }
    REQUIRE(a.digests.has_value() == b.digests.has_value());
    if (a.digests)
        CHECK(same(*a.digests, *b.digests));
    REQUIRE(a.files.size() == b.files.size());
    for (std::size_t i = 0; i < a.files.size(); ++i) {
        CHECK(a.files[i].name == b.files[i].name);
        CHECK(same(a.files[i].sealed, b.files[i].sealed));
    }
}

// A copy of `blob` changed through libfdt's read-write API.
std::vector<std::byte> edited(const std::vector<std::byte>& blob,
                              const std::function<void(void*)>& edit) {
    std::vector<std::byte> buf(blob.size() + 65536);
    REQUIRE(fdt_open_into(blob.data(), buf.data(), static_cast<int>(buf.size())) == 0);
    edit(buf.data());
    REQUIRE(fdt_pack(buf.data()) == 0);
    buf.resize(fdt_totalsize(buf.data()));
    return buf;
}

int node(void* fdt, const char* path) {
    const int off = fdt_path_offset(fdt, path);
    REQUIRE_MESSAGE(off >= 0, path);
    return off;
}

void set_string(void* fdt, const char* path, const char* prop, const char* value) {
    const std::string v(value);
    REQUIRE(fdt_setprop(fdt, node(fdt, path), prop, v.c_str(), static_cast<int>(v.size() + 1)) ==
            0);
}

void set_bytes(void* fdt, const char* path, const char* prop, std::size_t n) {
    const auto v = test::random_bytes(n, 99);
    REQUIRE(fdt_setprop(fdt, node(fdt, path), prop, v.data(), static_cast<int>(n)) == 0);
}

void expect_refused(const std::vector<std::byte>& bytes, std::string_view text) {
    auto r = decode_esm_blob(bytes, "blob.dtb");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ExitCode::malformed);
    CHECK_MESSAGE(r.error().message.find("blob.dtb") != std::string::npos, r.error().message);
    CHECK_MESSAGE(r.error().message.find(text) != std::string::npos, r.error().message);
}

} // namespace

TEST_CASE("esm blob: encode and decode round trip") {
    const EsmBlob blob = sample_blob();
    const auto bytes = encode_esm_blob(blob);
    auto back = decode_esm_blob(bytes, "blob.dtb");
    REQUIRE_MESSAGE(back.has_value(), back.error().message);
    check_same(blob, *back);
    CHECK(back->origin() == &back->lockboxes[0]);
    CHECK(back->find(blob.lockboxes[2].fingerprint) == &back->lockboxes[2]);
    CHECK(back->file("luks.key") == &back->files[1]);
    CHECK(back->file("nope") == nullptr);
    CHECK(encode_esm_blob(*back) == bytes);
    // An empty blob, as svm-tools' `esm create` leaves /digest and /file: empty nodes.
    auto empty = decode_esm_blob(encode_esm_blob(EsmBlob{}), "empty");
    REQUIRE(empty.has_value());
    CHECK(empty->lockboxes.empty());
    auto svm_tools_style = edited(encode_esm_blob(EsmBlob{}), [](void* f) {
        REQUIRE(fdt_add_subnode(f, 0, "file") >= 0);
        REQUIRE(fdt_add_subnode(f, 0, "digest") >= 0);
        REQUIRE(fdt_add_subnode(f, 0, "lockboxes") >= 0);
    });
    CHECK(decode_esm_blob(svm_tools_style, "x").has_value());
}

TEST_CASE("esm blob: lockboxes in any node order decode sorted by number") {
    EsmBlob blob = sample_blob();
    auto bytes = edited(encode_esm_blob(blob), [](void* f) {
        // Move lockbox-1 after lockbox-5: delete and re-add at the end.
        const int lb = node(f, "/lockboxes/lockbox-1");
        REQUIRE(fdt_del_node(f, lb) == 0);
        const int n = fdt_add_subnode(f, node(f, "/lockboxes"), "lockbox-1");
        REQUIRE(n >= 0);
        set_string(f, "/lockboxes/lockbox-1", "untrusted-comment", "moved");
        const auto k = test::random_bytes(256, 5);
        REQUIRE(fdt_setprop(f, n, "encrypted-symkey", k.data(), 256) == 0);
        const int fp = fdt_add_subnode(f, n, "pubkey-fingerprint");
        set_string(f, "/lockboxes/lockbox-1/pubkey-fingerprint", "algorithm", "SHA256");
        REQUIRE(fdt_setprop(f, fp, "hash", k.data(), 32) == 0);
    });
    auto back = decode_esm_blob(bytes, "x");
    REQUIRE_MESSAGE(back.has_value(), back.error().message);
    REQUIRE(back->lockboxes.size() == 3);
    CHECK(back->lockboxes[1].number == 1);
    CHECK(back->lockboxes[1].comment == "moved");
    CHECK(back->lockboxes[2].number == 5);
}

TEST_CASE("esm blob: the decoder refuses every malformed variant") {
    const auto good = encode_esm_blob(sample_blob());
    using Edit = std::function<void(void*)>;
    const std::vector<std::pair<Edit, std::string_view>> cases = {
        {[](void* f) { set_string(f, "/", "compatible", "ibm,esm-file"); }, "root compatible"},
        {[](void* f) { REQUIRE(fdt_delprop(f, 0, "compatible") == 0); }, "lacks property"},
        {[](void* f) { REQUIRE(fdt_add_subnode(f, 0, "extra") >= 0); }, "unknown node '/extra'"},
        {[](void* f) { set_string(f, "/", "model", "x"); }, "unknown property 'model'"},
        {[](void* f) {
             REQUIRE(fdt_set_name(f, node(f, "/lockboxes/lockbox-1"), "lockbox-0") == 0);
         },
         "unexpected lockbox name 'lockbox-0'"},
        {[](void* f) {
             REQUIRE(fdt_set_name(f, node(f, "/lockboxes/lockbox-1"), "lockbox-01") == 0);
         },
         "unexpected lockbox name"},
        {[](void* f) { REQUIRE(fdt_set_name(f, node(f, "/lockboxes/lockbox-1"), "box") == 0); },
         "unexpected lockbox name"},
        {[](void* f) { set_bytes(f, "/lockboxes/lockbox-1", "encrypted-symkey", 100); },
         "not an RSA 2048..8192 ciphertext"},
        {[](void* f) { set_bytes(f, "/lockboxes/lockbox-1", "encrypted-symkey", 2000); },
         "not an RSA 2048..8192 ciphertext"},
        {[](void* f) {
             REQUIRE(fdt_delprop(f, node(f, "/lockboxes/lockbox-1"), "untrusted-comment") == 0);
         },
         "lacks property 'untrusted-comment'"},
        {[](void* f) { set_string(f, "/lockboxes/lockbox-1", "untrusted-comment", "tab\there"); },
         "printable"},
        {[](void* f) { set_string(f, "/lockboxes/lockbox-1", "extra", "x"); },
         "unknown property 'extra'"},
        {[](void* f) {
             REQUIRE(fdt_del_node(f, node(f, "/lockboxes/lockbox-1/pubkey-fingerprint")) == 0);
         },
         "has no pubkey-fingerprint"},
        {[](void* f) {
             set_string(f, "/lockboxes/lockbox-1/pubkey-fingerprint", "algorithm", "SHA1");
         },
         "fingerprint algorithm 'SHA1'"},
        {[](void* f) { set_bytes(f, "/lockboxes/lockbox-1/pubkey-fingerprint", "hash", 20); },
         "must be 32 bytes"},
        {[](void* f) {
             REQUIRE(fdt_add_subnode(f, node(f, "/lockboxes/lockbox-1"), "other") >= 0);
         },
         "unknown node 'other'"},
        {[](void* f) { set_string(f, "/digest/digests-fdt", "algorithm", "AES128-GCM"); },
         "only AES256-GCM"},
        {[](void* f) { set_bytes(f, "/digest/digests-fdt", "iv", 8); },
         "iv must be 12 to 16 bytes"},
        {[](void* f) { set_bytes(f, "/digest/digests-fdt", "iv", 17); },
         "iv must be 12 to 16 bytes"},
        {[](void* f) { set_bytes(f, "/digest/digests-fdt", "mac", 12); }, "must be 16 bytes"},
        {[](void* f) {
             REQUIRE(fdt_delprop(f, node(f, "/digest/digests-fdt"), "ciphertext") == 0);
         },
         "lacks property 'ciphertext'"},
        {[](void* f) { REQUIRE(fdt_add_subnode(f, node(f, "/digest"), "other") >= 0); },
         "unknown node 'other' in /digest"},
        {[](void* f) { set_bytes(f, "/file", "files-fdt", 200); }, "files-fdt"},
        {[](void* f) { REQUIRE(fdt_add_subnode(f, node(f, "/file"), "x") >= 0); },
         "unexpected node 'x' in /file"},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        CAPTURE(i);
        expect_refused(edited(good, cases[i].first), cases[i].second);
    }
    // Not a tree, truncated, trailing bytes, over the size limit.
    expect_refused(test::random_bytes(100, 1), "bad magic");
    auto truncated = good;
    truncated.resize(good.size() - 10);
    expect_refused(truncated, "device tree header says");
    auto trailing = good;
    trailing.push_back(std::byte{0});
    expect_refused(trailing, "device tree header says");
    expect_refused(std::vector<std::byte>(kEsmMaxBlobSize + 1), "larger than");
}

TEST_CASE("esm blob: the files device tree is checked like the outer one") {
    EsmBlob blob = sample_blob();
    // A file whose name is not a valid node name cannot be encoded by make;
    // one smuggled into files-fdt is refused.
    const auto inner_bad = [&](const std::function<void(void*)>& edit, std::string_view text) {
        EsmBlob one;
        one.files = {{"name", sealed(10, 1)}};
        const auto outer = encode_esm_blob(one);
        const int file = fdt_path_offset(outer.data(), "/file");
        int len = 0;
        const void* inner = fdt_getprop(outer.data(), file, "files-fdt", &len);
        REQUIRE(inner != nullptr);
        std::vector<std::byte> in(static_cast<const std::byte*>(inner),
                                  static_cast<const std::byte*>(inner) + len);
        const auto changed = edited(in, edit);
        const auto rebuilt = edited(outer, [&](void* f) {
            REQUIRE(fdt_setprop(f, node(f, "/file"), "files-fdt", changed.data(),
                                static_cast<int>(changed.size())) == 0);
        });
        expect_refused(rebuilt, text);
    };
    inner_bad([](void* f) { set_string(f, "/", "compatible", "ibm,esm"); }, "ibm,esm-file");
    inner_bad([](void* f) { REQUIRE(fdt_set_name(f, node(f, "/files/name"), "9name") == 0); },
              "file name '9name' is not valid");
    inner_bad([](void* f) { set_string(f, "/files/name", "algorithm", "none"); },
              "only AES256-GCM");
    inner_bad([](void* f) { REQUIRE(fdt_add_subnode(f, 0, "more") >= 0); }, "unknown node '/more'");
}

TEST_CASE("esm blob: file names follow the device-tree node name rules") {
    CHECK(esm_file_name_valid("a"));
    CHECK(esm_file_name_valid("disk-passphrase"));
    CHECK(esm_file_name_valid("A,b.c_d+e-9"));
    CHECK(esm_file_name_valid(std::string(31, 'x')));
    CHECK_FALSE(esm_file_name_valid(std::string(32, 'x')));
    CHECK_FALSE(esm_file_name_valid(""));
    CHECK_FALSE(esm_file_name_valid("1abc"));
    CHECK_FALSE(esm_file_name_valid("a/b"));
    CHECK_FALSE(esm_file_name_valid("a b"));
    CHECK(esm_comment_valid(""));
    CHECK_FALSE(esm_comment_valid("a\nb"));
}

TEST_CASE("esm blob: fingerprints print and parse as 64 hex digits") {
    EsmFingerprint f{};
    for (std::size_t i = 0; i < f.size(); ++i)
        f[i] = static_cast<std::byte>(i * 7);
    const std::string hex = esm_fingerprint_hex(f);
    CHECK(hex.size() == 64);
    CHECK(parse_esm_fingerprint_hex(hex) == f);
    CHECK_FALSE(parse_esm_fingerprint_hex(hex.substr(2)).has_value());
    CHECK_FALSE(parse_esm_fingerprint_hex("zz" + hex.substr(2)).has_value());
}

TEST_CASE("esm blob: the digests device tree round trips and is checked") {
    EsmDigests d;
    d.kernel = test::random_bytes(64, 1);
    d.kernel_size = 0x12345678;
    d.bootargs = test::random_bytes(64, 3);
    for (int variant = 0; variant < 2; ++variant) {
        if (variant == 1) {
            d.initrd = test::random_bytes(64, 2);
            d.rtas = test::random_bytes(64, 4);
        }
        auto back = decode_esm_digests(encode_esm_digests(d), "x");
        REQUIRE_MESSAGE(back.has_value(), back.error().message);
        CHECK(back->kernel == d.kernel);
        CHECK(back->kernel_size == d.kernel_size);
        CHECK(back->initrd == d.initrd);
        CHECK(back->bootargs == d.bootargs);
        CHECK(back->rtas == d.rtas);
    }
    const auto good = encode_esm_digests(d);
    const auto refused = [&](const std::function<void(void*)>& edit, std::string_view text) {
        auto r = decode_esm_digests(edited(good, edit), "x");
        REQUIRE_FALSE(r.has_value());
        CHECK_MESSAGE(r.error().message.find(text) != std::string::npos, r.error().message);
    };
    refused([](void* f) { set_string(f, "/digests", "algorithm", "SHA256"); }, "is not SHA512");
    refused([](void* f) { set_bytes(f, "/digests", "kernel", 32); }, "must be 64 bytes");
    refused([](void* f) { set_bytes(f, "/digests", "kernel-size", 8); }, "32-bit");
    refused([](void* f) { REQUIRE(fdt_delprop(f, node(f, "/digests"), "bootargs") == 0); },
            "lacks property 'bootargs'");
    refused([](void* f) { set_bytes(f, "/digests", "dtb", 64); }, "unknown property 'dtb'");
    refused([](void* f) { REQUIRE(fdt_add_subnode(f, 0, "more") >= 0); }, "exactly one /digests");
    refused([](void* f) { set_string(f, "/", "compatible", "x"); }, "root compatible");
}

TEST_CASE("esm blob: in an image's manifest tree the nodes round trip, and only the lockboxes stay "
          "outside the signed bytes") {
    Manifest m;
    m.arch = host_arch();
    m.image_base = 0x4000000;
    m.entry = 0x4000000;
    m.hash = signer::DigestAlgorithm::sha256;
    const std::vector<std::byte> digest(32, std::byte{1});
    m.components.push_back(Component{
        ComponentKind::stub_text, 0x4000000, 0x1000, Compression::none, digest, {}, {}, {}});
    m.components.push_back(Component{ComponentKind::kernel,
                                     0x4020000,
                                     0x1000,
                                     Compression::none,
                                     digest,
                                     {},
                                     {},
                                     KernelPlacement{0x200000, 0x1000, 0}});
    const auto tbs_without = encode_tbs(m);
    const auto plain = encode_manifest_fdt(m);
    m.esm = sample_blob();
    const auto tbs_with = encode_tbs(m);
    CHECK(tbs_with != tbs_without);
    // Every sealed byte is signed: any change to an IV, tag, ciphertext or
    // file name changes the TBS bytes; comments and lockboxes do not.
    auto changed = [&](auto edit) {
        Manifest c = m;
        edit(c.esm);
        return encode_tbs(c) != tbs_with;
    };
    CHECK(changed([](EsmBlob& b) { b.digests->iv[0] ^= std::byte{1}; }));
    CHECK(changed([](EsmBlob& b) { b.digests->mac[15] ^= std::byte{1}; }));
    CHECK(changed([](EsmBlob& b) { b.digests->ciphertext.back() ^= std::byte{1}; }));
    CHECK(changed([](EsmBlob& b) { b.digests.reset(); }));
    CHECK(changed([](EsmBlob& b) { b.files[1].sealed.ciphertext[7] ^= std::byte{1}; }));
    CHECK(changed([](EsmBlob& b) { b.files[0].name = "disk-passphrasf"; }));
    CHECK(changed([](EsmBlob& b) { b.files.pop_back(); }));
    CHECK(changed([](EsmBlob& b) { std::swap(b.files[0].sealed, b.files[1].sealed); }));
    CHECK_FALSE(changed([](EsmBlob& b) { b.digests->comment = "another comment"; }));
    CHECK_FALSE(changed([](EsmBlob& b) { b.files[0].sealed.comment = "x"; }));
    CHECK_FALSE(changed([](EsmBlob& b) { b.lockboxes.push_back(lockbox(9, 90)); }));
    const auto with = encode_manifest_fdt(m);
    CHECK(with.size() > plain.size());
    auto back = decode_manifest_fdt(with, "img");
    REQUIRE_MESSAGE(back.has_value(), back.error().message);
    check_same(m.esm, back->esm);
    auto none = decode_manifest_fdt(plain, "img");
    REQUIRE(none.has_value());
    CHECK(none->esm.lockboxes.empty());
    // Lockboxes can be removed (revoked) without touching the signed bytes.
    Manifest fewer = *back;
    REQUIRE(esm_revoke_for_test(fewer.esm));
    auto revoked = decode_manifest_fdt(encode_manifest_fdt(fewer), "img");
    REQUIRE_MESSAGE(revoked.has_value(), revoked.error().message);
    CHECK(revoked->esm.lockboxes.size() == 2);
    CHECK(encode_tbs(*revoked) == tbs_with);
    // Edited with libfdt, the tree is no longer in its one canonical form.
    auto relaid = edited(
        with, [](void* f) { REQUIRE(fdt_del_node(f, node(f, "/lockboxes/lockbox-1")) == 0); });
    auto r0 = decode_manifest_fdt(relaid, "img");
    REQUIRE_FALSE(r0.has_value());
    CHECK_MESSAGE(r0.error().message.find("canonical") != std::string::npos, r0.error().message);
    auto junk = edited(with, [](void* f) { set_string(f, "/lockboxes", "x", "y"); });
    auto r = decode_manifest_fdt(junk, "img");
    REQUIRE_FALSE(r.has_value());
    CHECK_MESSAGE(r.error().message.find("unknown property 'x'") != std::string::npos,
                  r.error().message);
}
