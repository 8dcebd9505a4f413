// Unit tests for signer/: names, hashing, key loading in every form, signing
// round trips, and interoperability with the openssl command line tool.
#include "signer/signer.hpp"

#include "base/file.hpp"
#include "base/output_file.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

using namespace svmkit;
using namespace svmkit::signer;

namespace {

using test::TempDir;

std::string read_text(const std::string& path);

// Runs a shell command with stdin closed; its stderr goes to a log in `dir`
// that is shown only when the command fails.
bool run(const TempDir& dir, const std::string& command) {
    const std::string log = dir.file("command.log");
    int rc = std::system(("(" + command + ") </dev/null 2>" + log).c_str());
    if (rc != 0)
        MESSAGE("command failed (" << rc << "): " << command << "\n" << read_text(log));
    return rc == 0;
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    REQUIRE(out.good());
}

std::vector<std::byte> read_bytes(const std::string& path) {
    auto data = read_small_file(path);
    REQUIRE(data.has_value());
    return *data;
}

std::string read_text(const std::string& path) {
    auto data = read_bytes(path);
    return std::string(reinterpret_cast<const char*>(data.data()), data.size());
}

std::span<const std::byte> bytes_of(const std::string& s) {
    return as_bytes(s);
}

const std::vector<KeyType> all_key_types = {KeyType::ed25519, KeyType::ecdsa_p256,
                                            KeyType::ecdsa_p384, KeyType::rsa_3072,
                                            KeyType::rsa_4096};

// RSA key generation is slow (more so under sanitizers): one key per type.
const PrivateKey& test_key(KeyType type) {
    static std::map<KeyType, PrivateKey> keys;
    auto it = keys.find(type);
    if (it == keys.end()) {
        auto key = PrivateKey::generate(type);
        REQUIRE(key.has_value());
        it = keys.emplace(type, std::move(*key)).first;
    }
    return it->second;
}

// Sets an environment variable for the lifetime of the object.
class ScopedEnv {
  public:
    ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
        ::setenv(name_.c_str(), value.c_str(), 1);
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;
    ~ScopedEnv() { ::unsetenv(name_.c_str()); }

  private:
    std::string name_;
};

std::string unique_env_name(const char* tag) {
    return std::string("SVMKIT_TEST_") + tag + "_" + std::to_string(::getpid());
}

// The openssl dgst options that select svmkit's RSA-PSS parameters.
const char* const pss_sigopts =
    " -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -sigopt rsa_mgf1_md:";

std::string openssl_md(SignatureAlgorithm algo) {
    return std::string(digest_name(*algorithm_prehash(algo)));
}

} // namespace

TEST_CASE("signer: names parse and print") {
    for (auto d : {DigestAlgorithm::sha256, DigestAlgorithm::sha384, DigestAlgorithm::sha512})
        CHECK(parse_digest_name(digest_name(d)) == d);
    CHECK(digest_name(DigestAlgorithm::sha384) == "sha384");
    CHECK(digest_size(DigestAlgorithm::sha256) == 32);
    CHECK(digest_size(DigestAlgorithm::sha384) == 48);
    CHECK(digest_size(DigestAlgorithm::sha512) == 64);
    CHECK_FALSE(parse_digest_name("SHA256").has_value());
    CHECK_FALSE(parse_digest_name("sha-256").has_value());
    CHECK_FALSE(parse_digest_name("").has_value());

    const std::vector<std::pair<SignatureAlgorithm, std::string>> algos = {
        {SignatureAlgorithm::ed25519, "ed25519"},
        {SignatureAlgorithm::ecdsa_p256_sha256, "ecdsa-p256-sha256"},
        {SignatureAlgorithm::ecdsa_p384_sha384, "ecdsa-p384-sha384"},
        {SignatureAlgorithm::rsa_pss_sha256, "rsa-pss-sha256"},
        {SignatureAlgorithm::rsa_pss_sha384, "rsa-pss-sha384"},
    };
    for (const auto& [algo, name] : algos) {
        CHECK(algorithm_name(algo) == name);
        CHECK(parse_algorithm_name(name) == algo);
    }
    CHECK_FALSE(parse_algorithm_name("rsa-pss").has_value());
    CHECK_FALSE(parse_algorithm_name("Ed25519").has_value());
    CHECK_FALSE(algorithm_prehash(SignatureAlgorithm::ed25519).has_value());
    CHECK(algorithm_prehash(SignatureAlgorithm::ecdsa_p256_sha256) == DigestAlgorithm::sha256);
    CHECK(algorithm_prehash(SignatureAlgorithm::ecdsa_p384_sha384) == DigestAlgorithm::sha384);
    CHECK(algorithm_prehash(SignatureAlgorithm::rsa_pss_sha256) == DigestAlgorithm::sha256);
    CHECK(algorithm_prehash(SignatureAlgorithm::rsa_pss_sha384) == DigestAlgorithm::sha384);

    const std::vector<std::pair<KeyType, std::string>> types = {
        {KeyType::ed25519, "ed25519"},       {KeyType::ecdsa_p256, "ecdsa-p256"},
        {KeyType::ecdsa_p384, "ecdsa-p384"}, {KeyType::rsa_3072, "rsa-3072"},
        {KeyType::rsa_4096, "rsa-4096"},
    };
    for (const auto& [type, name] : types) {
        CHECK(key_type_name(type) == name);
        CHECK(parse_key_type(name) == type);
    }
    CHECK_FALSE(parse_key_type("rsa-2048").has_value());
    CHECK_FALSE(parse_key_type("ecdsa").has_value());
}

TEST_CASE("signer: hasher matches known vectors and one-shot digest") {
    const std::string abc = "abc";
    auto hex = [](const std::vector<std::byte>& v) {
        std::string out;
        for (auto b : v)
            out += fmt::format("{:02x}", std::to_integer<unsigned>(b));
        return out;
    };
    CHECK(hex(digest(DigestAlgorithm::sha256, bytes_of(abc))) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(hex(digest(DigestAlgorithm::sha384, bytes_of(abc))) ==
          "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
          "8086072ba1e7cc2358baeca134c825a7");
    CHECK(hex(digest(DigestAlgorithm::sha512, bytes_of(abc))) ==
          "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
          "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    CHECK(hex(digest(DigestAlgorithm::sha256, {})) ==
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    std::string big(1'000'003, '\0');
    for (std::size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>(i * 7 + 3);
    for (auto algo : {DigestAlgorithm::sha256, DigestAlgorithm::sha384, DigestAlgorithm::sha512}) {
        Hasher h(algo);
        auto all = bytes_of(big);
        for (std::size_t off = 0; off < all.size(); off += 4093)
            h.update(all.subspan(off, std::min<std::size_t>(4093, all.size() - off)));
        Hasher moved(std::move(h));
        auto streamed = moved.finish();
        CHECK(streamed.size() == digest_size(algo));
        CHECK(streamed == digest(algo, all));
    }
}

TEST_CASE("signer: key id hex") {
    KeyId id{};
    for (std::size_t i = 0; i < id.size(); ++i)
        id[i] = static_cast<std::byte>(i * 9 + 0xa0);
    std::string hex = key_id_hex(id);
    CHECK(hex.size() == 64);
    CHECK(hex.substr(0, 6) == "a0a9b2");
    for (char c : hex)
        CHECK(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
    CHECK(parse_key_id_hex(hex) == id);
    std::string upper = hex;
    for (char& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(parse_key_id_hex(upper) == id);
    CHECK_FALSE(parse_key_id_hex(hex.substr(0, 63)).has_value());
    CHECK_FALSE(parse_key_id_hex(hex + "0").has_value());
    CHECK_FALSE(parse_key_id_hex("").has_value());
    std::string bad = hex;
    bad[10] = 'g';
    CHECK_FALSE(parse_key_id_hex(bad).has_value());
    bad = hex;
    bad[0] = ' ';
    CHECK_FALSE(parse_key_id_hex(bad).has_value());
}

TEST_CASE("signer: generate, sign and verify every key type") {
    const std::string message = "the quick brown fox jumps over the lazy dog";
    const std::map<KeyType, std::pair<SignatureAlgorithm, std::string>> expected = {
        {KeyType::ed25519, {SignatureAlgorithm::ed25519, "Ed25519"}},
        {KeyType::ecdsa_p256, {SignatureAlgorithm::ecdsa_p256_sha256, "ECDSA P-256"}},
        {KeyType::ecdsa_p384, {SignatureAlgorithm::ecdsa_p384_sha384, "ECDSA P-384"}},
        {KeyType::rsa_3072, {SignatureAlgorithm::rsa_pss_sha256, "RSA 3072"}},
        {KeyType::rsa_4096, {SignatureAlgorithm::rsa_pss_sha384, "RSA 4096"}},
    };
    for (KeyType type : all_key_types) {
        CAPTURE(key_type_name(type));
        const PrivateKey& key = test_key(type);
        const PublicKey& pub = key.public_key();
        CHECK(pub.default_algorithm() == expected.at(type).first);
        CHECK(pub.description() == expected.at(type).second);

        std::vector<SignatureAlgorithm> usable = {pub.default_algorithm()};
        if (type == KeyType::rsa_3072 || type == KeyType::rsa_4096)
            usable = {SignatureAlgorithm::rsa_pss_sha256, SignatureAlgorithm::rsa_pss_sha384};
        for (auto algo : usable) {
            CAPTURE(algorithm_name(algo));
            CHECK(pub.supports(algo));
            auto sig = key.sign(algo, bytes_of(message));
            REQUIRE(sig.has_value());
            CHECK(pub.verify(algo, bytes_of(message), *sig).has_value());

            std::string tampered = message;
            tampered[3] ^= 1;
            auto bad = pub.verify(algo, bytes_of(tampered), *sig);
            REQUIRE_FALSE(bad.has_value());
            CHECK(bad.error().code == ExitCode::verification_failed);
            CHECK(bad.error().message == "signature does not verify");

            for (std::size_t pos : {std::size_t{0}, sig->size() / 2, sig->size() - 1}) {
                auto flipped = *sig;
                flipped[pos] ^= std::byte{0x01};
                auto r = pub.verify(algo, bytes_of(message), flipped);
                REQUIRE_FALSE(r.has_value());
                CHECK(r.error().code == ExitCode::verification_failed);
                CHECK(r.error().message == "signature does not verify");
            }
            auto truncated = std::span<const std::byte>(*sig).first(sig->size() - 1);
            auto r = pub.verify(algo, bytes_of(message), truncated);
            REQUIRE_FALSE(r.has_value());
            CHECK(r.error().code == ExitCode::verification_failed);
            CHECK(r.error().message == "signature does not verify");
            auto empty = pub.verify(algo, bytes_of(message), {});
            REQUIRE_FALSE(empty.has_value());
            CHECK(empty.error().code == ExitCode::verification_failed);
            CHECK(empty.error().message == "signature does not verify");
        }
        // Empty messages sign too.
        auto empty_sig = key.sign(pub.default_algorithm(), {});
        REQUIRE(empty_sig.has_value());
        CHECK(pub.verify(pub.default_algorithm(), {}, *empty_sig).has_value());

        // An algorithm for another key type is refused by sign and verify.
        for (auto algo :
             {SignatureAlgorithm::ed25519, SignatureAlgorithm::ecdsa_p256_sha256,
              SignatureAlgorithm::ecdsa_p384_sha384, SignatureAlgorithm::rsa_pss_sha256}) {
            if (pub.supports(algo))
                continue;
            auto s = key.sign(algo, bytes_of(message));
            REQUIRE_FALSE(s.has_value());
            CHECK(s.error().code == ExitCode::usage);
            CHECK(s.error().message.find(fmt::format("algorithm {} does not fit {} key in",
                                                     algorithm_name(algo), pub.description())) ==
                  0);
            auto good = key.sign(pub.default_algorithm(), bytes_of(message));
            REQUIRE(good.has_value());
            auto v = pub.verify(algo, bytes_of(message), *good);
            REQUIRE_FALSE(v.has_value());
            CHECK(v.error().code == ExitCode::verification_failed);
            CHECK(v.error().message == fmt::format("algorithm {} does not fit {} key {}",
                                                   algorithm_name(algo), pub.description(),
                                                   key_id_hex(pub.key_id())));
        }
    }

    // Ed25519 is deterministic; two keys of the same type differ.
    const PrivateKey& ed = test_key(KeyType::ed25519);
    CHECK(*ed.sign(SignatureAlgorithm::ed25519, bytes_of(message)) ==
          *ed.sign(SignatureAlgorithm::ed25519, bytes_of(message)));
    auto other = PrivateKey::generate(KeyType::ed25519);
    REQUIRE(other.has_value());
    CHECK(other->public_key().key_id() != ed.public_key().key_id());
    auto sig = other->sign(SignatureAlgorithm::ed25519, bytes_of(message));
    REQUIRE(sig.has_value());
    auto r = ed.public_key().verify(SignatureAlgorithm::ed25519, bytes_of(message), *sig);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ExitCode::verification_failed);
    CHECK(r.error().message == "signature does not verify");
}

TEST_CASE("signer: key id is SHA-256 of the DER SPKI that openssl writes") {
    TempDir dir;
    for (KeyType type : all_key_types) {
        CAPTURE(key_type_name(type));
        const PrivateKey& key = test_key(type);
        const std::string priv = dir.file("priv.pem"), pub_pem = dir.file("pub.pem"),
                          pub_der = dir.file("pub.der"), hash = dir.file("hash.txt");
        write_text(priv, key.pem());
        write_text(pub_pem, key.public_key().pem());
        CHECK(key.pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        CHECK(key.public_key().pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        REQUIRE(run(dir, "openssl pkey -pubin -in " + pub_pem + " -outform DER -out " + pub_der));
        REQUIRE(run(dir, "openssl dgst -sha256 -r " + pub_der + " > " + hash));
        std::string expected_id = read_text(hash).substr(0, 64);
        CHECK(key_id_hex(key.public_key().key_id()) == expected_id);
        CHECK(key.public_key().spki_der() == read_bytes(pub_der));

        // The same id whichever form the key is loaded from.
        REQUIRE(run(dir, "openssl pkey -in " + priv + " -pubout -out " + dir.file("pub2.pem")));
        for (const auto& path : {pub_pem, pub_der, priv, dir.file("pub2.pem")}) {
            CAPTURE(path);
            auto loaded = PublicKey::load(path);
            REQUIRE(loaded.has_value());
            CHECK(key_id_hex(loaded->key_id()) == expected_id);
            CHECK(loaded->default_algorithm() == key.public_key().default_algorithm());
        }
        auto from_der = PublicKey::from_der(read_bytes(pub_der), "embedded key");
        REQUIRE(from_der.has_value());
        CHECK(from_der->key_id() == key.public_key().key_id());

        // PEM written by pem() loads back as the same private key.
        auto reloaded = PrivateKey::load(priv, {});
        REQUIRE(reloaded.has_value());
        CHECK(reloaded->public_key().key_id() == key.public_key().key_id());
        CHECK(reloaded->origin() == priv);
        auto sig = reloaded->sign(key.public_key().default_algorithm(), bytes_of(expected_id));
        REQUIRE(sig.has_value());
        CHECK(key.public_key()
                  .verify(key.public_key().default_algorithm(), bytes_of(expected_id), *sig)
                  .has_value());
    }
}

TEST_CASE("signer: from_der refuses trailing bytes and garbage") {
    auto der = test_key(KeyType::ecdsa_p256).public_key().spki_der();
    der.push_back(std::byte{0});
    auto r = PublicKey::from_der(der, "blob");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ExitCode::malformed);
    CHECK(r.error().message.starts_with("blob: "));
    auto empty = PublicKey::from_der({}, "blob");
    REQUIRE_FALSE(empty.has_value());
    CHECK(empty.error().code == ExitCode::malformed);
    CHECK(empty.error().message.starts_with("blob: not a DER SubjectPublicKeyInfo: "));
}

TEST_CASE("signer: private keys load from PEM, DER, traditional and encrypted forms") {
    TempDir dir;
    const std::string pass_var = unique_env_name("PASS");
    const std::string pass_file = dir.file("pass.txt");
    const std::string pass_file_crlf = dir.file("pass-crlf.txt");
    write_text(pass_file, "s3cret phrase\nsecond line ignored\n");
    write_text(pass_file_crlf, "s3cret phrase\r\n");
    ScopedEnv env(pass_var, "s3cret phrase");
    const std::string pass_arg = " -passout 'pass:s3cret phrase'";

    for (KeyType type : {KeyType::ed25519, KeyType::ecdsa_p384, KeyType::rsa_3072}) {
        CAPTURE(key_type_name(type));
        const PrivateKey& key = test_key(type);
        const std::string pem = dir.file("k.pem");
        write_text(pem, key.pem());
        std::map<std::string, bool> forms; // file -> encrypted
        forms[pem] = false;
        REQUIRE(run(dir, "openssl pkey -in " + pem + " -outform DER -out " + dir.file("k.der")));
        forms[dir.file("k.der")] = false;
        REQUIRE(run(dir,
                    "openssl pkcs8 -topk8 -in " + pem + " -out " + dir.file("enc.pem") + pass_arg));
        forms[dir.file("enc.pem")] = true;
        REQUIRE(run(dir, "openssl pkcs8 -topk8 -in " + pem + " -outform DER -out " +
                             dir.file("enc.der") + pass_arg));
        forms[dir.file("enc.der")] = true;
        if (type != KeyType::ed25519) {
            // Traditional ("RSA PRIVATE KEY" / "EC PRIVATE KEY"), plain and encrypted.
            REQUIRE(
                run(dir, "openssl pkey -in " + pem + " -traditional -out " + dir.file("trad.pem")));
            CHECK(read_text(dir.file("trad.pem")).find("-----BEGIN PRIVATE KEY") ==
                  std::string::npos);
            forms[dir.file("trad.pem")] = false;
            // `openssl pkey -traditional` ignores the flag for DER output.
            const std::string tool =
                type == KeyType::rsa_3072 ? "openssl rsa -traditional" : "openssl ec";
            REQUIRE(run(dir, tool + " -in " + pem + " -outform DER -out " + dir.file("trad.der")));
            forms[dir.file("trad.der")] = false;
            REQUIRE(run(dir, "openssl pkey -in " + pem + " -traditional -aes-256-cbc -out " +
                                 dir.file("trad-enc.pem") + pass_arg));
            CHECK(read_text(dir.file("trad-enc.pem")).find("Proc-Type: 4,ENCRYPTED") !=
                  std::string::npos);
            forms[dir.file("trad-enc.pem")] = true;
        }
        // Leading text before the PEM block is skipped.
        write_text(dir.file("text.pem"), "Bag Attributes\n    friendlyName: test\n" + key.pem());
        forms[dir.file("text.pem")] = false;

        for (const auto& [path, encrypted] : forms) {
            CAPTURE(path);
            auto check_loaded = [&](const Result<PrivateKey>& loaded) {
                REQUIRE(loaded.has_value());
                CHECK(loaded->public_key().key_id() == key.public_key().key_id());
                auto sig = loaded->sign(loaded->public_key().default_algorithm(), bytes_of(path));
                REQUIRE(sig.has_value());
                CHECK(key.public_key()
                          .verify(key.public_key().default_algorithm(), bytes_of(path), *sig)
                          .has_value());
            };
            check_loaded(PrivateKey::load(path, {.env_var = pass_var, .file = {}}));
            check_loaded(PrivateKey::load(path, {.env_var = {}, .file = pass_file}));
            check_loaded(PrivateKey::load(path, {.env_var = {}, .file = pass_file_crlf}));
            // A passphrase for an unencrypted key is ignored, even a missing one.
            if (!encrypted) {
                check_loaded(PrivateKey::load(path, {}));
                check_loaded(
                    PrivateKey::load(path, {.env_var = unique_env_name("UNSET"), .file = {}}));
                continue;
            }
            auto none = PrivateKey::load(path, {});
            REQUIRE_FALSE(none.has_value());
            CHECK(none.error().code == ExitCode::usage);
            CHECK(none.error().message.find("--key-passphrase-env") != std::string::npos);
            CHECK(none.error().message.find("--key-passphrase-file") != std::string::npos);
            CHECK(none.error().message.starts_with(path + ": "));

            const std::string unset = unique_env_name("UNSET");
            auto unset_var = PrivateKey::load(path, {.env_var = unset, .file = {}});
            REQUIRE_FALSE(unset_var.has_value());
            CHECK(unset_var.error().code == ExitCode::usage);
            CHECK(unset_var.error().message.find("passphrase variable " + unset + " is not set") !=
                  std::string::npos);

            auto missing_file =
                PrivateKey::load(path, {.env_var = {}, .file = dir.file("no-such-file")});
            REQUIRE_FALSE(missing_file.has_value());
            CHECK(missing_file.error().code == ExitCode::io);

            const std::string wrong_var = unique_env_name("WRONG");
            ScopedEnv wrong(wrong_var, "not the passphrase");
            auto wrong_pass = PrivateKey::load(path, {.env_var = wrong_var, .file = {}});
            REQUIRE_FALSE(wrong_pass.has_value());
            CHECK(wrong_pass.error().code == ExitCode::malformed);
            CHECK(wrong_pass.error().message ==
                  path + ": cannot decrypt private key (wrong passphrase?)");
        }
    }
}

TEST_CASE("signer: EC keys with a leading EC PARAMETERS block load") {
    TempDir dir;
    const std::string path = dir.file("ec.pem");
    REQUIRE(run(dir, "openssl ecparam -name secp384r1 -genkey -out " + path));
    CHECK(read_text(path).starts_with("-----BEGIN EC PARAMETERS-----"));
    auto key = PrivateKey::load(path, {});
    REQUIRE(key.has_value());
    CHECK(key->public_key().default_algorithm() == SignatureAlgorithm::ecdsa_p384_sha384);
    auto pub = PublicKey::load(path);
    REQUIRE(pub.has_value());
    CHECK(pub->key_id() == key->public_key().key_id());
}

TEST_CASE("signer: certificates give their subject key") {
    TempDir dir;
    for (KeyType type : {KeyType::ed25519, KeyType::ecdsa_p256, KeyType::rsa_4096}) {
        CAPTURE(key_type_name(type));
        const PrivateKey& key = test_key(type);
        const std::string priv = dir.file("k.pem"), cert = dir.file("c.pem"),
                          cert_der = dir.file("c.der");
        write_text(priv, key.pem());
        REQUIRE(
            run(dir, "openssl req -x509 -new -key " + priv + " -subj /CN=t -days 1 -out " + cert));
        REQUIRE(run(dir, "openssl x509 -in " + cert + " -outform DER -out " + cert_der));
        for (const auto& path : {cert, cert_der}) {
            CAPTURE(path);
            auto pub = PublicKey::load(path);
            REQUIRE(pub.has_value());
            CHECK(pub->key_id() == key.public_key().key_id());
            auto as_private = PrivateKey::load(path, {});
            REQUIRE_FALSE(as_private.has_value());
            CHECK(as_private.error().code == ExitCode::malformed);
            CHECK(as_private.error().message ==
                  path + ": is a public key or certificate; a private key is needed");
        }
        // A certificate followed by its key: the certificate wins, same key.
        write_text(dir.file("both.pem"), read_text(cert) + key.pem());
        auto both = PublicKey::load(dir.file("both.pem"));
        REQUIRE(both.has_value());
        CHECK(both->key_id() == key.public_key().key_id());
    }
}

TEST_CASE("signer: public keys are refused where a private key is needed") {
    TempDir dir;
    for (KeyType type : {KeyType::ed25519, KeyType::ecdsa_p256, KeyType::rsa_3072}) {
        CAPTURE(key_type_name(type));
        const PrivateKey& key = test_key(type);
        write_text(dir.file("pub.pem"), key.public_key().pem());
        auto der = key.public_key().spki_der();
        REQUIRE(write_output_file(dir.file("pub.der"), der).has_value());
        for (const auto& path : {dir.file("pub.pem"), dir.file("pub.der")}) {
            CAPTURE(path);
            auto r = PrivateKey::load(path, {});
            REQUIRE_FALSE(r.has_value());
            CHECK(r.error().code == ExitCode::malformed);
            CHECK(r.error().message ==
                  path + ": is a public key or certificate; a private key is needed");
        }
    }
}

TEST_CASE("signer: garbage, empty, missing and encrypted files") {
    TempDir dir;
    write_text(dir.file("empty"), "");
    write_text(dir.file("garbage"), "this is not a key at all\n");
    write_text(dir.file("binary"), std::string("\x30\x82\x01\x00garbage", 12));
    write_text(dir.file("bad.pem"), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    for (const char* name : {"empty", "garbage", "binary", "bad.pem"}) {
        const std::string path = dir.file(name);
        CAPTURE(path);
        auto pub = PublicKey::load(path);
        REQUIRE_FALSE(pub.has_value());
        CHECK(pub.error().code == ExitCode::malformed);
        CHECK(pub.error().message ==
              path + ": not a public key, certificate or private key (PEM or DER)");
        auto priv = PrivateKey::load(path, {});
        REQUIRE_FALSE(priv.has_value());
        CHECK(priv.error().code == ExitCode::malformed);
        CHECK(priv.error().message.starts_with(path + ": not a private key"));
    }
    // A missing file cannot be read (io); a directory is not a key file (malformed).
    for (const auto& [path, code] : {std::pair{dir.file("missing.pem"), ExitCode::io},
                                     std::pair{dir.file(""), ExitCode::malformed}}) {
        auto pub = PublicKey::load(path);
        REQUIRE_FALSE(pub.has_value());
        CHECK(pub.error().code == code);
        auto priv = PrivateKey::load(path, {});
        REQUIRE_FALSE(priv.has_value());
        CHECK(priv.error().code == code);
    }

    // An encrypted private key as public key: refused without a prompt.
    write_text(dir.file("k.pem"), test_key(KeyType::ed25519).pem());
    REQUIRE(run(dir, "openssl pkcs8 -topk8 -in " + dir.file("k.pem") + " -out " +
                         dir.file("enc.pem") + " -passout pass:x"));
    auto pub = PublicKey::load(dir.file("enc.pem"));
    REQUIRE_FALSE(pub.has_value());
    CHECK(pub.error().code == ExitCode::malformed);
    CHECK(pub.error().message.find("encrypted private key") != std::string::npos);
}

TEST_CASE("signer: unsupported key types and sizes are refused") {
    TempDir dir;
    struct Case {
        std::string genpkey_args;
        std::string message_part;
    };
    const std::vector<Case> cases = {
        {"-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
         "unsupported RSA key size 2048 bits, svmkit signs with RSA 3072 or 4096"},
        {"-algorithm EC -pkeyopt ec_paramgen_curve:secp256k1",
         "unsupported EC curve secp256k1, svmkit signs with P-256 or P-384"},
        {"-algorithm EC -pkeyopt ec_paramgen_curve:secp521r1",
         "unsupported EC curve secp521r1, svmkit signs with P-256 or P-384"},
        {"-algorithm ED448", "unsupported key type ED448"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.genpkey_args);
        const std::string priv = dir.file("k.pem"), pub = dir.file("pub.pem");
        REQUIRE(run(dir, "openssl genpkey -quiet " + c.genpkey_args + " -out " + priv));
        REQUIRE(run(dir, "openssl pkey -in " + priv + " -pubout -out " + pub));
        auto p = PrivateKey::load(priv, {});
        REQUIRE_FALSE(p.has_value());
        CHECK(p.error().code == ExitCode::malformed);
        CHECK(p.error().message == priv + ": " + c.message_part +
                                       (c.message_part.find("type") != std::string::npos
                                            ? ", svmkit signs with Ed25519, ECDSA P-256/P-384 "
                                              "or RSA 3072/4096"
                                            : ""));
        for (const auto& path : {pub, priv}) {
            auto q = PublicKey::load(path);
            REQUIRE_FALSE(q.has_value());
            CHECK(q.error().code == ExitCode::malformed);
            CHECK(q.error().message.find(c.message_part) != std::string::npos);
        }
    }
}

TEST_CASE("signer: signatures made by the openssl command line verify") {
    TempDir dir;
    const std::string msg = dir.file("msg"), sig = dir.file("sig"), dig = dir.file("digest.bin");
    std::string message = "svmkit interop message\n";
    for (int i = 0; i < 200; ++i)
        message += static_cast<char>(i);
    write_text(msg, message);

    for (KeyType type : all_key_types) {
        CAPTURE(key_type_name(type));
        const PrivateKey& key = test_key(type);
        const PublicKey& pub = key.public_key();
        const std::string priv = dir.file("k.pem"), pub_pem = dir.file("pub.pem");
        write_text(priv, key.pem());
        write_text(pub_pem, pub.pem());

        auto verify_file = [&](SignatureAlgorithm algo) {
            auto r = pub.verify(algo, bytes_of(message), read_bytes(sig));
            if (!r)
                MESSAGE(r.error().message);
            CHECK(r.has_value());
        };

        if (type == KeyType::ed25519) {
            REQUIRE(run(dir, "openssl pkeyutl -sign -rawin -inkey " + priv + " -in " + msg +
                                 " -out " + sig));
            verify_file(SignatureAlgorithm::ed25519);
            // And the other way round.
            auto ours = key.sign(SignatureAlgorithm::ed25519, bytes_of(message));
            REQUIRE(ours.has_value());
            REQUIRE(write_output_file(sig, *ours).has_value());
            CHECK(run(dir, "openssl pkeyutl -verify -rawin -pubin -inkey " + pub_pem + " -in " +
                               msg + " -sigfile " + sig + " >/dev/null"));
            continue;
        }

        std::vector<SignatureAlgorithm> algos = {pub.default_algorithm()};
        if (type == KeyType::rsa_3072 || type == KeyType::rsa_4096)
            algos = {SignatureAlgorithm::rsa_pss_sha256, SignatureAlgorithm::rsa_pss_sha384};
        for (auto algo : algos) {
            CAPTURE(algorithm_name(algo));
            const std::string md = openssl_md(algo);
            const bool rsa = algo == SignatureAlgorithm::rsa_pss_sha256 ||
                             algo == SignatureAlgorithm::rsa_pss_sha384;
            const std::string sigopts = rsa ? pss_sigopts + md : "";

            // openssl dgst -sign over the message.
            REQUIRE(run(dir, "openssl dgst -" + md + " -sign " + priv + sigopts + " -out " + sig +
                                 " " + msg));
            verify_file(algo);

            // openssl pkeyutl -sign over a digest computed separately.
            REQUIRE(run(dir, "openssl dgst -" + md + " -binary -out " + dig + " " + msg));
            std::string pkeyopts =
                rsa ? " -pkeyopt digest:" + md +
                          " -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest"
                    : "";
            REQUIRE(run(dir, "openssl pkeyutl -sign -inkey " + priv + " -in " + dig + pkeyopts +
                                 " -out " + sig));
            verify_file(algo);

            if (rsa) {
                // Verification accepts any salt length: openssl's default (max) and 0.
                for (const char* salt : {"max", "0", "20"}) {
                    REQUIRE(run(dir, "openssl dgst -" + md + " -sign " + priv +
                                         " -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:" +
                                         salt + " -out " + sig + " " + msg));
                    verify_file(algo);
                }
                // PKCS#1 v1.5 is not PSS.
                REQUIRE(run(dir,
                            "openssl dgst -" + md + " -sign " + priv + " -out " + sig + " " + msg));
                CHECK_FALSE(pub.verify(algo, bytes_of(message), read_bytes(sig)).has_value());
            }

            // Our signature verifies with openssl, with the salt length fixed to the digest.
            auto ours = key.sign(algo, bytes_of(message));
            REQUIRE(ours.has_value());
            REQUIRE(write_output_file(sig, *ours).has_value());
            CHECK(run(dir, "openssl dgst -" + md + " -verify " + pub_pem + sigopts +
                               " -signature " + sig + " " + msg + " >/dev/null"));
        }
    }
}
