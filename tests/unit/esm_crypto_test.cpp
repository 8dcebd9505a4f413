// ibm,esm cryptography (format/esm_crypto.*): RSA-OAEP lockboxes with RSA
// 2048 and 4096 keys, SHA-256 fingerprints of the PEM public key, AES-256-GCM
// sealing with every tampering detected, authorise and revoke.
#include "format/esm_crypto.hpp"

#include "test_support.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>

using namespace svmkit;
using namespace svmkit::format;

namespace {

const std::string kData = SVMKIT_TEST_DATA_DIR "/esm";

// Writes a new key pair of `type`/`bits` as PEM: private (PKCS#8) and public (SPKI).
void write_key_pair(const std::string& priv, const std::string& pub, const char* type,
                    std::size_t bits = 0) {
    EVP_PKEY* raw = bits != 0 ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, bits)
                              : EVP_PKEY_Q_keygen(nullptr, nullptr, type, "P-256");
    REQUIRE(raw != nullptr);
    signer::PkeyPtr key(raw);
    std::FILE* f = std::fopen(priv.c_str(), "w");
    REQUIRE(f != nullptr);
    CHECK(PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
    std::fclose(f);
    f = std::fopen(pub.c_str(), "w");
    REQUIRE(f != nullptr);
    CHECK(PEM_write_PUBKEY(f, key.get()) == 1);
    std::fclose(f);
}

struct KeyPair {
    EsmKey pub;
    EsmKey priv;
};

KeyPair make_rsa(const test::TempDir& dir, const std::string& name, std::size_t bits) {
    write_key_pair(dir.file(name + ".key"), dir.file(name + ".pub"), "RSA", bits);
    auto pub = load_esm_public_key(dir.file(name + ".pub"));
    REQUIRE_MESSAGE(pub.has_value(), pub.error().message);
    auto priv = load_esm_private_key(dir.file(name + ".key"), {});
    REQUIRE_MESSAGE(priv.has_value(), priv.error().message);
    return {std::move(*pub), std::move(*priv)};
}

EsmDigests sample_digests() {
    EsmDigests d;
    d.kernel = test::random_bytes(64, 1);
    d.kernel_size = 123456;
    d.initrd = test::random_bytes(64, 2);
    d.bootargs = test::random_bytes(64, 3);
    return d;
}

void expect_error(const Result<void>& r, ExitCode code, std::string_view text) {
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == code);
    CHECK_MESSAGE(r.error().message.find(text) != std::string::npos, r.error().message);
}

template <typename T>
void expect_error(const Result<T>& r, ExitCode code, std::string_view text) {
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == code);
    CHECK_MESSAGE(r.error().message.find(text) != std::string::npos, r.error().message);
}

} // namespace

TEST_CASE("esm crypto: the fingerprint is SHA-256 of the PEM public key file") {
    test::TempDir dir("esm");
    for (const char* name : {"owner-pub.pem", "tpm-pub.pem"}) {
        const std::string path = kData + "/keys/" + name;
        auto key = load_esm_public_key(path);
        REQUIRE_MESSAGE(key.has_value(), key.error().message);
        const auto file = test::read_bytes(path);
        const auto want = signer::digest(signer::DigestAlgorithm::sha256, file);
        CHECK(std::equal(want.begin(), want.end(), key->fingerprint.begin()));
    }
    // The private half gives the same fingerprint (encrypted key, passphrase from a file).
    auto priv = load_esm_private_key(kData + "/keys/owner-priv.pem",
                                     {std::nullopt, kData + "/keys/owner-passphrase"});
    REQUIRE_MESSAGE(priv.has_value(), priv.error().message);
    CHECK(priv->fingerprint == load_esm_public_key(kData + "/keys/owner-pub.pem")->fingerprint);
    CHECK(priv->bits == 2048);
    CHECK(load_esm_public_key(kData + "/keys/tpm-pub.pem")->bits == 4096);
}

TEST_CASE("esm crypto: keys that cannot hold a lockbox are refused") {
    test::TempDir dir("esm");
    write_key_pair(dir.file("ec.key"), dir.file("ec.pub"), "EC");
    expect_error(load_esm_public_key(dir.file("ec.pub")), ExitCode::malformed, "not an RSA key");
    write_key_pair(dir.file("small.key"), dir.file("small.pub"), "RSA", 1024);
    expect_error(load_esm_public_key(dir.file("small.pub")), ExitCode::malformed,
                 "RSA key of 1024 bits");
    expect_error(load_esm_private_key(dir.file("small.pub"), {}), ExitCode::malformed,
                 "a private key is needed");
    // Encrypted, and no passphrase: a usage error, never a prompt.
    expect_error(load_esm_private_key(kData + "/keys/owner-priv.pem", {}), ExitCode::usage,
                 "encrypted");
    expect_error(load_esm_private_key(kData + "/keys/owner-priv.pem", {"SVMKIT_NO_SUCH_VAR", {}}),
                 ExitCode::usage, "SVMKIT_NO_SUCH_VAR");
    expect_error(load_esm_public_key(dir.file("missing.pub")), ExitCode::io, "missing.pub");
}

TEST_CASE("esm crypto: RSA-OAEP lockboxes round trip with RSA 2048 and 4096") {
    test::TempDir dir("esm");
    for (std::size_t bits : {2048u, 4096u}) {
        CAPTURE(bits);
        KeyPair k = make_rsa(dir, "rsa" + std::to_string(bits), bits);
        KeyPair other = make_rsa(dir, "other" + std::to_string(bits), bits);
        const EsmSymKey key = EsmSymKey::random();
        auto wrapped = esm_wrap_symkey(k.pub, key);
        REQUIRE(wrapped.has_value());
        CHECK(wrapped->size() == bits / 8);
        auto back = esm_unwrap_symkey(k.priv, *wrapped);
        REQUIRE_MESSAGE(back.has_value(), back.error().message);
        CHECK(back->bytes == key.bytes);
        // Randomised padding: the same key wraps differently each time.
        CHECK(*esm_wrap_symkey(k.pub, key) != *wrapped);
        expect_error(esm_unwrap_symkey(other.priv, *wrapped), ExitCode::verification_failed,
                     "does not decrypt");
        auto tampered = *wrapped;
        tampered[tampered.size() / 2] ^= std::byte{1};
        expect_error(esm_unwrap_symkey(k.priv, tampered), ExitCode::verification_failed,
                     "does not decrypt");
    }
}

TEST_CASE("esm crypto: AES-256-GCM detects a changed ciphertext, IV, tag or key") {
    const EsmSymKey key = EsmSymKey::random();
    const auto plain = test::random_bytes(1000, 7);
    const EsmSealed sealed = esm_seal(key, plain, "comment");
    CHECK(sealed.iv.size() == 12);
    CHECK(sealed.mac.size() == 16);
    CHECK(sealed.ciphertext != plain);
    auto opened = esm_open(key, sealed);
    REQUIRE(opened.has_value());
    CHECK(*opened == plain);
    for (int part = 0; part < 3; ++part) {
        CAPTURE(part);
        EsmSealed t = sealed;
        auto& bytes = part == 0 ? t.ciphertext : part == 1 ? t.iv : t.mac;
        bytes[bytes.size() - 1] ^= std::byte{0x80};
        expect_error(esm_open(key, t), ExitCode::verification_failed, "authentication failed");
    }
    EsmSymKey wrong = key;
    wrong.bytes[0] ^= std::byte{1};
    expect_error(esm_open(wrong, sealed), ExitCode::verification_failed, "authentication failed");
    EsmSealed short_iv = sealed;
    short_iv.iv.resize(8);
    expect_error(esm_open(key, short_iv), ExitCode::malformed, "wrong size");
    // An empty plaintext seals and opens too.
    auto empty = esm_open(key, esm_seal(key, {}, ""));
    REQUIRE(empty.has_value());
    CHECK(empty->empty());
}

TEST_CASE("esm crypto: every lockbox of a blob opens it, in any position") {
    test::TempDir dir("esm");
    KeyPair owner = make_rsa(dir, "owner", 2048);
    KeyPair a = make_rsa(dir, "a", 2048);
    KeyPair b = make_rsa(dir, "b", 4096);
    KeyPair stranger = make_rsa(dir, "stranger", 2048);
    EsmMakeRequest req;
    req.origin = EsmRecipient{&owner.pub, "owner"};
    req.recipients = {{&a.pub, "a"}, {&b.pub, "b"}};
    req.digests = sample_digests();
    req.files = {{"secret", "", test::to_bytes("hello")}};
    auto blob = make_esm_blob(req);
    REQUIRE_MESSAGE(blob.has_value(), blob.error().message);
    REQUIRE(blob->lockboxes.size() == 3);
    CHECK(blob->lockboxes[0].node_name() == "origin-lockbox");
    CHECK(blob->lockboxes[2].node_name() == "lockbox-2");
    for (const KeyPair* k : {&owner, &a, &b}) {
        EsmOpened o = esm_open_lockbox(*blob, k->priv);
        REQUIRE_MESSAGE(o.failure == EsmOpenFailure::none, o.message);
        auto digests = esm_open(o.symkey, *blob->digests);
        REQUIRE(digests.has_value());
        auto decoded = decode_esm_digests(*digests, "test");
        REQUIRE(decoded.has_value());
        CHECK(decoded->kernel == req.digests->kernel);
        CHECK(decoded->kernel_size == 123456);
        CHECK(*esm_open(o.symkey, blob->files[0].sealed) == test::to_bytes("hello"));
    }
    EsmOpened none = esm_open_lockbox(*blob, stranger.priv);
    CHECK(none.failure == EsmOpenFailure::no_lockbox);
    CHECK(none.message.find(esm_fingerprint_hex(stranger.priv.fingerprint)) != std::string::npos);
    EsmBlob broken = *blob;
    broken.lockboxes[2].encrypted_symkey[3] ^= std::byte{1};
    EsmOpened bad = esm_open_lockbox(broken, b.priv);
    CHECK(bad.failure == EsmOpenFailure::unwrap);
    CHECK(bad.message.find("lockbox-2") != std::string::npos);
}

TEST_CASE("esm crypto: make refuses duplicate keys and names and bad comments") {
    test::TempDir dir("esm");
    KeyPair owner = make_rsa(dir, "owner", 2048);
    KeyPair a = make_rsa(dir, "a", 2048);
    EsmMakeRequest req;
    expect_error(make_esm_blob(req), ExitCode::usage, "needs an origin");
    req.origin = EsmRecipient{&owner.pub, "owner"};
    req.recipients = {{&a.pub, ""}, {&a.pub, ""}};
    expect_error(make_esm_blob(req), ExitCode::usage, "already in lockbox-1");
    req.recipients = {{&a.pub, "line\nbreak"}};
    expect_error(make_esm_blob(req), ExitCode::usage, "printable");
    req.recipients = {{&a.pub, ""}};
    req.files = {{"1bad", "", {}}};
    expect_error(make_esm_blob(req), ExitCode::usage, "not valid");
    req.files = {{"same", "", {}}, {"same", "", {}}};
    expect_error(make_esm_blob(req), ExitCode::usage, "given twice");
    req.files = {{"ok", "", {}}};
    CHECK(make_esm_blob(req).has_value());
}

TEST_CASE("esm crypto: authorize adds a working lockbox, revoke removes it") {
    test::TempDir dir("esm");
    KeyPair owner = make_rsa(dir, "owner", 2048);
    KeyPair a = make_rsa(dir, "a", 2048);
    KeyPair late = make_rsa(dir, "late", 4096);
    EsmMakeRequest req;
    req.origin = EsmRecipient{&owner.pub, "owner"};
    req.recipients = {{&a.pub, "a"}};
    req.digests = sample_digests();
    EsmBlob blob = *make_esm_blob(req);
    CHECK(esm_open_lockbox(blob, late.priv).failure == EsmOpenFailure::no_lockbox);

    EsmOpened o = esm_open_lockbox(blob, owner.priv);
    REQUIRE(o.failure == EsmOpenFailure::none);
    REQUIRE(esm_authorize(blob, o.symkey, late.pub, "late").has_value());
    REQUIRE(blob.lockboxes.size() == 3);
    CHECK(blob.lockboxes.back().node_name() == "lockbox-2");
    EsmOpened l = esm_open_lockbox(blob, late.priv);
    REQUIRE(l.failure == EsmOpenFailure::none);
    CHECK(esm_open(l.symkey, *blob.digests).has_value());
    expect_error(esm_authorize(blob, o.symkey, late.pub, ""), ExitCode::usage,
                 "already authorised in lockbox-2");

    // Revoking lockbox-1 keeps lockbox-2's number; a new one gets 3.
    REQUIRE(esm_revoke(blob, a.pub.fingerprint).has_value());
    CHECK(esm_open_lockbox(blob, a.priv).failure == EsmOpenFailure::no_lockbox);
    CHECK(esm_open_lockbox(blob, late.priv).failure == EsmOpenFailure::none);
    expect_error(esm_revoke(blob, a.pub.fingerprint), ExitCode::usage, "no lockbox has");
    expect_error(esm_revoke(blob, owner.pub.fingerprint), ExitCode::usage, "cannot be revoked");
    REQUIRE(esm_authorize(blob, o.symkey, a.pub, "again").has_value());
    CHECK(blob.lockboxes.back().node_name() == "lockbox-3");
}
