// Unit tests for private keys in PKCS#11 tokens (signer/pkcs11_*.cpp).
//
// Each test process makes its own SoftHSM2 token in a fresh temporary
// directory (SOFTHSM2_CONF points there; nothing outside it is touched),
// generates an ECDSA P-384 and an RSA-3072 key pair inside it with
// pkcs11-tool, and exports their public halves through the openssl pkcs11
// engine. The directory is removed when the process exits. Needs softhsm2,
// opensc and libengine-pkcs11-openssl (scripts/install-deps.sh).
#include "signer/signer.hpp"

#include "base/file.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

using namespace svmkit;
using namespace svmkit::signer;

namespace {

constexpr const char* softhsm_module = "/usr/lib/softhsm/libsofthsm2.so";
constexpr const char* token_label = "svmkit-test";
constexpr const char* user_pin = "5678";

// Sets (or, with nullopt, unsets) an environment variable for the lifetime of
// the object, then restores what was there before.
class ScopedEnv {
  public:
    ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
        if (const char* old = std::getenv(name_.c_str()))
            old_ = old;
        if (value)
            ::setenv(name_.c_str(), value->c_str(), 1);
        else
            ::unsetenv(name_.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;
    ~ScopedEnv() {
        if (old_)
            ::setenv(name_.c_str(), old_->c_str(), 1);
        else
            ::unsetenv(name_.c_str());
    }

  private:
    std::string name_;
    std::optional<std::string> old_;
};

// Clears the variables svmkit reads, so the caller's environment cannot leak in.
struct CleanPkcs11Env {
    ScopedEnv module{"SVMKIT_PKCS11_MODULE", std::nullopt};
    ScopedEnv module_path{"PKCS11_MODULE_PATH", std::nullopt};
    ScopedEnv pin{"SVMKIT_PKCS11_PIN", std::nullopt};
    ScopedEnv engines{"OPENSSL_ENGINES", std::nullopt};
};

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    REQUIRE(out.good());
}

std::string read_text(const std::string& path) {
    auto data = read_small_file(path);
    REQUIRE(data.has_value());
    return std::string(reinterpret_cast<const char*>(data->data()), data->size());
}

// The token, made once per process.
class Token {
  public:
    Token() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/svmkit-pkcs11-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        REQUIRE(::mkdtemp(buf.data()) != nullptr);
        dir_ = buf.data();
        std::filesystem::create_directory(file("tokens"));
        write_text(file("softhsm2.conf"), "directories.tokendir = " + file("tokens") +
                                              "\nobjectstore.backend = file\nlog.level = ERROR\n");
        // Read by SoftHSM at every C_Initialize, in this process and in the
        // tools run below. Left set until the process ends.
        ::setenv("SOFTHSM2_CONF", file("softhsm2.conf").c_str(), 1);

        for (const char* tool : {softhsm_module, "/usr/bin/softhsm2-util", "/usr/bin/pkcs11-tool"})
            if (!std::filesystem::exists(tool))
                FAIL("missing " << tool
                                << ": install softhsm2 opensc libengine-pkcs11-openssl "
                                   "(scripts/install-deps.sh)");
        run(std::string("softhsm2-util --init-token --free --label ") + token_label +
            " --so-pin 1234 --pin " + user_pin);
        // A second, empty token: URIs must say which one they mean.
        run(std::string("softhsm2-util --init-token --free --label svmkit-other --so-pin 1234 "
                        "--pin ") +
            user_pin);
        const std::string keygen = std::string("pkcs11-tool --module ") + softhsm_module +
                                   " --token-label " + token_label + " --login --pin " + user_pin +
                                   " --keypairgen";
        run(keygen + " --key-type EC:secp384r1 --label ec384 --id 01");
        run(keygen + " --key-type rsa:3072 --label rsa3072 --id 02");
        // The public keys as the engine sees them (pkcs11-tool --read-object
        // cannot export EC public keys).
        for (const char* object : {"ec384", "rsa3072"})
            run(std::string("PKCS11_MODULE_PATH=") + softhsm_module +
                " openssl pkey -engine pkcs11 -pubin -inform engine -in 'pkcs11:token=" +
                token_label + ";object=" + object + ";type=public' -pubout -out " +
                file(std::string(object) + ".pub.pem"));
        write_text(file("pin"), std::string(user_pin) + "\n");
        write_text(file("pin-crlf"), std::string(user_pin) + "\r\nsecond line\n");
        write_text(file("wrong-pin"), "0000\n");
        write_text(file("not-a-module.so"), "just text\n");
    }
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;
    ~Token() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    [[nodiscard]] std::string file(const std::string& name) const { return dir_ + "/" + name; }

    // Runs a shell command with stdin closed and its output in a log that is
    // shown when it fails.
    void run(const std::string& command) const {
        const std::string log = file("command.log");
        int rc = std::system(("(" + command + ") </dev/null >" + log + " 2>&1").c_str());
        if (rc != 0)
            FAIL("command failed (" << rc << "): " << command << "\n" << read_text(log));
    }

  private:
    std::string dir_;
};

const Token& token() {
    static Token t;
    return t;
}

std::string uri(const std::string& object, const std::string& extra = "") {
    return std::string("pkcs11:token=") + token_label + ";object=" + object + ";type=private" +
           extra;
}

Pkcs11Options softhsm() {
    return {.module = softhsm_module, .pin_env = {}};
}

PrivateKey load_ok(const std::string& key_uri, const Pkcs11Options& options = softhsm()) {
    auto key = PrivateKey::load(key_uri, {}, options);
    if (!key)
        FAIL("loading " << key_uri << " failed: " << key.error().message);
    return std::move(*key);
}

Error load_error(const std::string& key_uri, const Pkcs11Options& options = softhsm()) {
    auto key = PrivateKey::load(key_uri, {}, options);
    if (key)
        FAIL("loading " << key_uri << " unexpectedly worked");
    // Messages never carry the PIN.
    CHECK(key.error().message.find(user_pin) == std::string::npos);
    return key.error();
}

std::span<const std::byte> bytes_of(const std::string& s) {
    return as_bytes(s);
}

void check_signs(const PrivateKey& key, const PublicKey& exported, SignatureAlgorithm algo) {
    const std::string message = "svmkit PKCS#11 signing test";
    auto signature = key.sign(algo, bytes_of(message));
    if (!signature)
        FAIL(key.origin() << ": signing with " << algorithm_name(algo)
                          << " failed: " << signature.error().message);
    CHECK(exported.verify(algo, bytes_of(message), *signature).has_value());
    CHECK(key.public_key().verify(algo, bytes_of(message), *signature).has_value());
    auto other = key.sign(algo, bytes_of(message + "!"));
    REQUIRE(other.has_value());
    CHECK_FALSE(exported.verify(algo, bytes_of(message), *other).has_value());
}

} // namespace

TEST_CASE("pkcs11: token keys load by URI, sign, and match the engine's public keys") {
    const Token& t = token();
    CleanPkcs11Env clean;
    ScopedEnv pin("SVMKIT_PKCS11_PIN", user_pin);

    auto ec_pub = PublicKey::load(t.file("ec384.pub.pem"));
    auto rsa_pub = PublicKey::load(t.file("rsa3072.pub.pem"));
    REQUIRE(ec_pub.has_value());
    REQUIRE(rsa_pub.has_value());

    CHECK(is_pkcs11_uri("pkcs11:token=x"));
    CHECK(is_pkcs11_uri("PKCS11:token=x"));
    CHECK_FALSE(is_pkcs11_uri("pkcs11"));
    CHECK_FALSE(is_pkcs11_uri("./pkcs11:x"));

    SUBCASE("ECDSA P-384 and RSA-3072 keys, both loaded at once") {
        // Both keys at once: they share one engine instance and module.
        PrivateKey ec = load_ok(uri("ec384"));
        PrivateKey rsa = load_ok(uri("rsa3072"));
        CHECK(ec.in_token());
        CHECK(ec.origin() == uri("ec384"));
        CHECK(ec.public_key().key_id() == ec_pub->key_id());
        CHECK(ec.public_key().spki_der() == ec_pub->spki_der());
        CHECK(ec.public_key().default_algorithm() == SignatureAlgorithm::ecdsa_p384_sha384);
        CHECK(rsa.public_key().key_id() == rsa_pub->key_id());
        CHECK(rsa.public_key().default_algorithm() == SignatureAlgorithm::rsa_pss_sha256);
        CHECK(rsa.public_key().description() == "RSA 3072");

        check_signs(ec, *ec_pub, SignatureAlgorithm::ecdsa_p384_sha384);
        check_signs(rsa, *rsa_pub, SignatureAlgorithm::rsa_pss_sha256);
        check_signs(rsa, *rsa_pub, SignatureAlgorithm::rsa_pss_sha384);
        auto wrong_algo = ec.sign(SignatureAlgorithm::rsa_pss_sha256, bytes_of(std::string("x")));
        REQUIRE_FALSE(wrong_algo.has_value());
        CHECK(wrong_algo.error().code == ExitCode::usage);
        CHECK_THROWS_AS((void)ec.pem(), std::logic_error);

        // The RSA-PSS parameters are svmkit's (salt as long as the hash),
        // checked by openssl itself.
        const std::string message = "interop";
        auto sig = rsa.sign(SignatureAlgorithm::rsa_pss_sha256, bytes_of(message));
        REQUIRE(sig.has_value());
        write_text(t.file("msg"), message);
        write_text(t.file("sig"),
                   std::string(reinterpret_cast<const char*>(sig->data()), sig->size()));
        t.run("openssl dgst -sha256 -verify " + t.file("rsa3072.pub.pem") +
              " -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -sigopt "
              "rsa_mgf1_md:sha256 -signature " +
              t.file("sig") + " " + t.file("msg"));

        // Moving keys around and dropping one leaves the other working.
        PrivateKey moved = std::move(rsa);
        rsa = load_ok(uri("rsa3072"));
        moved = std::move(ec);
        check_signs(moved, *ec_pub, SignatureAlgorithm::ecdsa_p384_sha384);
        check_signs(rsa, *rsa_pub, SignatureAlgorithm::rsa_pss_sha256);
    }

    SUBCASE("by id, and percent-encoded") {
        PrivateKey by_id = load_ok(std::string("pkcs11:token=") + token_label + ";id=%01");
        CHECK(by_id.public_key().key_id() == ec_pub->key_id());
        PrivateKey both = load_ok("pkcs11:token=svmkit%2Dtest;object=rsa%33072;id=%02");
        CHECK(both.public_key().key_id() == rsa_pub->key_id());
        check_signs(by_id, *ec_pub, SignatureAlgorithm::ecdsa_p384_sha384);
    }

    SUBCASE("the module comes from the option, then SVMKIT_PKCS11_MODULE, then "
            "PKCS11_MODULE_PATH") {
        {
            ScopedEnv m("SVMKIT_PKCS11_MODULE", t.file("no-such-module.so"));
            ScopedEnv p("PKCS11_MODULE_PATH", t.file("no-such-module.so"));
            load_ok(uri("ec384")); // the option wins
        }
        {
            ScopedEnv m("SVMKIT_PKCS11_MODULE", softhsm_module);
            ScopedEnv p("PKCS11_MODULE_PATH", t.file("no-such-module.so"));
            load_ok(uri("ec384"), {});
        }
        {
            ScopedEnv p("PKCS11_MODULE_PATH", softhsm_module);
            load_ok(uri("ec384"), {});
        }
    }

    SUBCASE("keys load again after every earlier key is gone, and log in again") {
        for (int i = 0; i < 2; ++i) {
            PrivateKey ec = load_ok(uri("ec384"));
            check_signs(ec, *ec_pub, SignatureAlgorithm::ecdsa_p384_sha384);
        }
        // The module was finalised with the last key, so the login is gone
        // and a wrong PIN counts again.
        ScopedEnv wrong("SVMKIT_PKCS11_PIN", "0000");
        Error e = load_error(uri("ec384"));
        INFO(e.message);
        CHECK(e.message.find("PIN rejected by the token") != std::string::npos);
    }
}

TEST_CASE("pkcs11: PIN sources") {
    const Token& t = token();
    CleanPkcs11Env clean;
    auto ec_pub = PublicKey::load(t.file("ec384.pub.pem"));
    REQUIRE(ec_pub.has_value());
    const std::string var = "SVMKIT_TEST_PIN_" + std::to_string(::getpid());

    SUBCASE("SVMKIT_PKCS11_PIN") {
        ScopedEnv pin("SVMKIT_PKCS11_PIN", user_pin);
        check_signs(load_ok(uri("ec384")), *ec_pub, SignatureAlgorithm::ecdsa_p384_sha384);
    }
    SUBCASE("pin-source=file:PATH, file:///PATH and a bare path") {
        for (const std::string& source :
             {"file:" + t.file("pin"), "file://" + t.file("pin"), t.file("pin-crlf")}) {
            CAPTURE(source);
            check_signs(load_ok(uri("ec384", ";pin-source=" + source)), *ec_pub,
                        SignatureAlgorithm::ecdsa_p384_sha384);
        }
        // RFC 7512 puts pin-source in the query.
        check_signs(load_ok(uri("ec384", "?pin-source=file:" + t.file("pin"))), *ec_pub,
                    SignatureAlgorithm::ecdsa_p384_sha384);
    }
    SUBCASE("pin-source comes before the environment") {
        ScopedEnv pin("SVMKIT_PKCS11_PIN", "0000");
        load_ok(uri("ec384", ";pin-source=file:" + t.file("pin")));
    }
    SUBCASE("a named variable, before SVMKIT_PKCS11_PIN") {
        ScopedEnv named(var, user_pin);
        ScopedEnv pin("SVMKIT_PKCS11_PIN", "0000");
        load_ok(uri("ec384"), {.module = softhsm_module, .pin_env = var});
    }
    SUBCASE("a named variable that is not set") {
        ScopedEnv pin("SVMKIT_PKCS11_PIN", user_pin); // no fallback to it
        Error e = load_error(uri("ec384"), {.module = softhsm_module, .pin_env = var});
        INFO(e.message);
        CHECK(e.code == ExitCode::usage);
        CHECK(e.message.find(var + " is not set") != std::string::npos);
    }
    SUBCASE("an unreadable pin-source file") {
        Error e = load_error(uri("ec384", ";pin-source=file:" + t.file("no-such-pin")));
        INFO(e.message);
        CHECK(e.code == ExitCode::io);
        CHECK(e.message.find(t.file("no-such-pin")) != std::string::npos);
    }
    SUBCASE("pin-value is refused, and not repeated") {
        ScopedEnv pin("SVMKIT_PKCS11_PIN", user_pin);
        Error e = load_error(uri("ec384", "?pin-value=" + std::string(user_pin)));
        INFO(e.message);
        CHECK(e.code == ExitCode::usage);
        CHECK(e.message.find("PINs in the URI end up in shell history and process lists; use "
                             "pin-source or SVMKIT_PKCS11_PIN") != std::string::npos);
    }
    SUBCASE("no PIN at all") {
        Error e = load_error(uri("ec384"));
        INFO(e.message);
        CHECK(e.code == ExitCode::usage);
        CHECK(e.message.find("needs a PIN") != std::string::npos);
        CHECK(e.message.find("SVMKIT_PKCS11_PIN") != std::string::npos);
    }
    SUBCASE("no PIN for a second key while the first holds the engine") {
        PrivateKey first = load_ok(uri("ec384", ";pin-source=file:" + t.file("pin")));
        Error e = load_error(uri("rsa3072"));
        INFO(e.message);
        CHECK(e.code == ExitCode::usage);
        CHECK(e.message.find("no PIN") != std::string::npos);
    }
}

TEST_CASE("pkcs11: failures are distinct and name the URI") {
    const Token& t = token();
    CleanPkcs11Env clean;
    ScopedEnv pin("SVMKIT_PKCS11_PIN", user_pin);

    SUBCASE("no such token") {
        const std::string u = "pkcs11:token=no-such-token;object=ec384;type=private";
        Error e = load_error(u);
        INFO(e.message);
        CHECK(e.code == ExitCode::malformed);
        CHECK(e.message.find(u) != std::string::npos);
        CHECK(e.message.find("no token 'no-such-token'") != std::string::npos);
        CHECK(e.message.find("'svmkit-test'") != std::string::npos); // what is there
    }
    SUBCASE("no such object") {
        Error e = load_error(uri("no-such-key"));
        INFO(e.message);
        CHECK(e.code == ExitCode::malformed);
        CHECK(e.message.find(uri("no-such-key")) != std::string::npos);
        CHECK(e.message.find("no private key 'no-such-key' in token 'svmkit-test'") !=
              std::string::npos);
        Error by_id = load_error(std::string("pkcs11:token=") + token_label + ";id=%09");
        INFO(by_id.message);
        CHECK(by_id.message.find("no private key with id 09 in token 'svmkit-test'") !=
              std::string::npos);
    }
    SUBCASE("wrong PIN") {
        for (const char* wrong : {"0000", "123456789"}) {
            ScopedEnv bad("SVMKIT_PKCS11_PIN", wrong);
            Error e = load_error(uri("ec384"));
            INFO(e.message);
            CHECK(e.code == ExitCode::malformed);
            CHECK(e.message.find("PIN rejected by the token") != std::string::npos);
            CHECK(e.message.find(uri("ec384")) != std::string::npos);
            CHECK(e.message.find(wrong) == std::string::npos);
        }
        Error e = load_error(uri("ec384", ";pin-source=file:" + t.file("wrong-pin")));
        INFO(e.message);
        CHECK(e.message.find("PIN rejected by the token") != std::string::npos);
    }
    SUBCASE("no module configured") {
        Error e = load_error(uri("ec384"), {});
        INFO(e.message);
        CHECK(e.code == ExitCode::usage);
        CHECK(e.message.find("--pkcs11-module") != std::string::npos);
        CHECK(e.message.find("SVMKIT_PKCS11_MODULE") != std::string::npos);
    }
    SUBCASE("a module that does not exist") {
        Error e = load_error(uri("ec384"), {.module = t.file("no-such-module.so"), .pin_env = {}});
        INFO(e.message);
        CHECK(e.code == ExitCode::io);
        CHECK(e.message.find(t.file("no-such-module.so")) != std::string::npos);
        ScopedEnv env_module("SVMKIT_PKCS11_MODULE", t.file("no-such-module.so"));
        Error from_env = load_error(uri("ec384"), {});
        INFO(from_env.message);
        CHECK(from_env.code == ExitCode::io);
        CHECK(from_env.message.find("SVMKIT_PKCS11_MODULE") != std::string::npos);
    }
    SUBCASE("a module that is not a PKCS#11 library") {
        Error e = load_error(uri("ec384"), {.module = t.file("not-a-module.so"), .pin_env = {}});
        INFO(e.message);
        CHECK(e.code == ExitCode::io);
        CHECK(e.message.find(t.file("not-a-module.so")) != std::string::npos);
    }
    SUBCASE("a URI that matches several tokens") {
        Error e = load_error("pkcs11:object=ec384;type=private");
        INFO(e.message);
        CHECK(e.code == ExitCode::usage);
        CHECK(e.message.find("matches 2 tokens") != std::string::npos);
    }
    SUBCASE("keys from a second module while the first is in use") {
        std::filesystem::copy_file(softhsm_module, t.file("other-module.so"),
                                   std::filesystem::copy_options::overwrite_existing);
        PrivateKey first = load_ok(uri("ec384"));
        Error e = load_error(uri("rsa3072"), {.module = t.file("other-module.so"), .pin_env = {}});
        INFO(e.message);
        CHECK(e.code == ExitCode::usage);
        CHECK(e.message.find("two PKCS#11 modules") != std::string::npos);
    }
    SUBCASE("the engine is not installed") {
        std::filesystem::create_directories(t.file("no-engines"));
        ScopedEnv engines("OPENSSL_ENGINES", t.file("no-engines"));
        Error e = load_error(uri("ec384"));
        INFO(e.message);
        CHECK(e.code == ExitCode::io);
        CHECK(e.message.find("libengine-pkcs11-openssl") != std::string::npos);
    }
    SUBCASE("URIs the engine cannot use") {
        for (const std::string& bad :
             {uri("ec384", ";slot-id=3"), uri("ec384", "?module-path=/x.so"),
              std::string("pkcs11:token=") + token_label + ";object=ec384;type=public",
              uri("ec384", ";object=again"), uri("ec384", ";id=%zz"), uri("ec384", ";junk")}) {
            CAPTURE(bad);
            Error e = load_error(bad);
            INFO(e.message);
            CHECK(e.code == ExitCode::usage);
            CHECK(e.message.find("pkcs11:token=") != std::string::npos);
        }
    }
    SUBCASE("a file name is still a file name") {
        auto e = PrivateKey::load(t.file("pkcs11:token=x"), {});
        REQUIRE_FALSE(e.has_value());
        CHECK(e.error().code == ExitCode::io);
    }
}
