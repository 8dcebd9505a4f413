// Unit tests for the verification policy (format/verify: evaluate_policy)
// with real keys and signatures over the to-be-signed encoding.
#include "format/verify.hpp"

#include "format/tbs.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

using namespace svmkit;
using namespace svmkit::format;
using svmkit::signer::KeyType;
using svmkit::signer::PrivateKey;
using svmkit::test::filled;

namespace {

constexpr std::uint64_t kBase = 0x4000000;

Manifest base_manifest() {
    Manifest m;
    m.image_base = kBase;
    m.entry = kBase;
    m.security_version = 5;
    m.creation_time = 1'700'000'000;
    Component text;
    text.kind = ComponentKind::stub_text;
    text.address = kBase;
    text.size = 0x100;
    text.digest = filled(32, 1);
    Component kernel;
    kernel.kind = ComponentKind::kernel;
    kernel.address = kBase + 0x10000;
    kernel.size = 0x1000;
    kernel.digest = filled(32, 2);
    kernel.kernel = KernelPlacement{0, 0x2000, 0};
    m.components = {text, kernel};
    return m;
}

// Keys are slow to make (RSA especially); each test key is made once.
const PrivateKey& key(const std::string& name, KeyType type = KeyType::ed25519) {
    static std::map<std::string, PrivateKey> keys;
    auto it = keys.find(name);
    if (it == keys.end()) {
        auto k = PrivateKey::generate(type);
        REQUIRE(k.has_value());
        it = keys.emplace(name, std::move(*k)).first;
    }
    return it->second;
}

Signature sign(const Manifest& m, const PrivateKey& k) {
    auto value = k.sign(k.public_key().default_algorithm(), encode_tbs(m));
    REQUIRE(value.has_value());
    return Signature{k.public_key().default_algorithm(), k.public_key().key_id(), *value};
}

VerifyPolicy trusting(std::initializer_list<const PrivateKey*> keys) {
    VerifyPolicy p;
    for (const PrivateKey* k : keys) {
        auto pub = signer::PublicKey::from_der(k->public_key().spki_der(), "trusted key");
        REQUIRE(pub.has_value());
        p.trusted_keys.push_back(std::move(*pub));
    }
    return p;
}

void check_failure(const PolicyVerdict& v, PolicyFailure expected) {
    CHECK_MESSAGE(v.failure == expected,
                  "got " << std::string(policy_failure_name(v.failure)) << ": " << v.message);
    CHECK_FALSE(v.ok());
    CHECK_FALSE(v.message.empty());
}

void check_ok(const PolicyVerdict& v) {
    CHECK_MESSAGE(v.ok(), std::string(policy_failure_name(v.failure)) << ": " << v.message);
    CHECK(v.message.empty());
}

} // namespace

TEST_CASE("policy: names") {
    CHECK(policy_failure_name(PolicyFailure::none) == "none");
    CHECK(policy_failure_name(PolicyFailure::no_signature) == "no-signature");
    CHECK(policy_failure_name(PolicyFailure::no_trusted_signature) == "no-trusted-signature");
    CHECK(policy_failure_name(PolicyFailure::bad_signature) == "bad-signature");
    CHECK(policy_failure_name(PolicyFailure::revoked_key) == "revoked-key");
    CHECK(policy_failure_name(PolicyFailure::too_few_signatures) == "too-few-signatures");
    CHECK(policy_failure_name(PolicyFailure::rollback) == "rollback");
    CHECK(signer_status_name(SignerStatus::trusted) == "trusted");
    CHECK(signer_status_name(SignerStatus::revoked) == "revoked");
    CHECK(signer_status_name(SignerStatus::unknown) == "unknown");
}

TEST_CASE("policy: a valid signature by a trusted key passes, for every key type") {
    for (KeyType type :
         {KeyType::ed25519, KeyType::ecdsa_p256, KeyType::ecdsa_p384, KeyType::rsa_3072}) {
        CAPTURE(signer::key_type_name(type));
        const PrivateKey& k = key(std::string(signer::key_type_name(type)), type);
        Manifest m = base_manifest();
        m.signatures.push_back(sign(m, k));
        const PolicyVerdict v = evaluate_policy(m, trusting({&k}));
        check_ok(v);
        CHECK(v.good_signers == 1);
        REQUIRE(v.signatures.size() == 1);
        CHECK(v.signatures[0].status == SignerStatus::trusted);
        CHECK(v.signatures[0].valid);
        CHECK(v.signatures[0].key_id == k.public_key().key_id());
        CHECK(v.signatures[0].algorithm == k.public_key().default_algorithm());
        CHECK(v.signatures[0].detail.empty());
    }
}

TEST_CASE("policy: no signature") {
    const Manifest m = base_manifest();
    const PolicyVerdict v = evaluate_policy(m, trusting({&key("a")}));
    check_failure(v, PolicyFailure::no_signature);
    CHECK(v.good_signers == 0);
    CHECK(v.signatures.empty());
}

TEST_CASE("policy: only an unknown key signed") {
    Manifest m = base_manifest();
    m.signatures.push_back(sign(m, key("stranger")));
    const PolicyVerdict v = evaluate_policy(m, trusting({&key("a"), &key("b")}));
    check_failure(v, PolicyFailure::no_trusted_signature);
    REQUIRE(v.signatures.size() == 1);
    CHECK(v.signatures[0].status == SignerStatus::unknown);
    CHECK_FALSE(v.signatures[0].valid); // not checked
    CHECK(v.signatures[0].detail == "key is not in the trusted set");
    // No trusted keys at all.
    check_failure(evaluate_policy(m, VerifyPolicy{}), PolicyFailure::no_trusted_signature);
}

TEST_CASE("policy: the manifest changed after signing") {
    const PrivateKey& a = key("a");
    Manifest m = base_manifest();
    m.signatures.push_back(sign(m, a));
    REQUIRE(evaluate_policy(m, trusting({&a})).ok());

    const std::vector<std::pair<const char*, std::function<void(Manifest&)>>> tamper = {
        {"security version",
         [](Manifest& x) {
             x.security_version += 1;
         }},
        {"kernel digest",
         [](Manifest& x) {
             x.components[1].digest[0] ^= std::byte{1};
         }},
        {"kernel load address",
         [](Manifest& x) {
             x.components[1].kernel->load_address += 1;
         }},
        {"signature value",
         [](Manifest& x) {
             x.signatures[0].value[5] ^= std::byte{0x40};
         }},
        {"signature algorithm",
         [](Manifest& x) {
             x.signatures[0].algorithm = signer::SignatureAlgorithm::ecdsa_p256_sha256;
         }},
    };
    for (const auto& entry : tamper) {
        // Not a structured binding: clang 14 cannot capture those in CAPTURE's lambda.
        const auto& label = entry.first;
        const auto& change = entry.second;
        CAPTURE(label);
        Manifest t = m;
        change(t);
        const PolicyVerdict v = evaluate_policy(t, trusting({&a}));
        check_failure(v, PolicyFailure::bad_signature);
        CHECK(v.good_signers == 0);
        REQUIRE(v.signatures.size() == 1);
        CHECK(v.signatures[0].status == SignerStatus::trusted);
        CHECK_FALSE(v.signatures[0].valid);
        CHECK_FALSE(v.signatures[0].detail.empty());
        CHECK(svmkit::test::contains(v.message, signer::key_id_hex(a.public_key().key_id())));
    }
}

TEST_CASE("policy: a revoked signer fails the policy even next to a good one") {
    const PrivateKey& a = key("a");
    const PrivateKey& b = key("b");
    Manifest m = base_manifest();
    m.signatures.push_back(sign(m, a));
    m.signatures.push_back(sign(m, b));

    SUBCASE("revoked and not trusted") {
        VerifyPolicy p = trusting({&a});
        p.revoked_keys.push_back(b.public_key().key_id());
        const PolicyVerdict v = evaluate_policy(m, p);
        check_failure(v, PolicyFailure::revoked_key);
        REQUIRE(v.signatures.size() == 2);
        CHECK(v.signatures[0].status == SignerStatus::trusted);
        CHECK(v.signatures[0].valid);
        CHECK(v.signatures[1].status == SignerStatus::revoked);
    }
    SUBCASE("revoked and also trusted") {
        VerifyPolicy p = trusting({&a, &b});
        p.revoked_keys.push_back(b.public_key().key_id());
        const PolicyVerdict v = evaluate_policy(m, p);
        check_failure(v, PolicyFailure::revoked_key);
        REQUIRE(v.signatures.size() == 2);
        CHECK(v.signatures[1].status == SignerStatus::revoked);
        // A revoked key's signature does not count towards the required number.
        CHECK(v.good_signers == 1);
    }
    SUBCASE("revoking an absent key changes nothing") {
        VerifyPolicy p = trusting({&a, &b});
        p.revoked_keys.push_back(key("stranger").public_key().key_id());
        const PolicyVerdict v = evaluate_policy(m, p);
        check_ok(v);
        CHECK(v.good_signers == 2);
    }
}

TEST_CASE("policy: required number of distinct trusted signers") {
    const PrivateKey& a = key("a");
    const PrivateKey& b = key("b");
    Manifest m = base_manifest();
    m.signatures.push_back(sign(m, a));

    VerifyPolicy p = trusting({&a, &b});
    p.required_signatures = 2;
    const PolicyVerdict one = evaluate_policy(m, p);
    check_failure(one, PolicyFailure::too_few_signatures);
    CHECK(one.good_signers == 1);
    CHECK(svmkit::test::contains(one.message, "1 distinct trusted signers, policy requires 2"));

    SUBCASE("the same key twice counts once") {
        Manifest twice = m;
        twice.signatures.push_back(sign(m, a)); // Ed25519: the same bytes again
        twice.signatures.push_back(twice.signatures[0]);
        const PolicyVerdict v = evaluate_policy(twice, p);
        check_failure(v, PolicyFailure::too_few_signatures);
        CHECK(v.good_signers == 1);
        CHECK(v.signatures.size() == 3);
        // Same key, different (randomised ECDSA) signatures: still one signer.
        const PrivateKey& e = key("ecdsa", KeyType::ecdsa_p256);
        Manifest ec = base_manifest();
        ec.signatures.push_back(sign(ec, e));
        ec.signatures.push_back(sign(ec, e));
        REQUIRE(ec.signatures[0].value != ec.signatures[1].value);
        VerifyPolicy pe = trusting({&e, &a});
        pe.required_signatures = 2;
        check_failure(evaluate_policy(ec, pe), PolicyFailure::too_few_signatures);
    }
    SUBCASE("an unknown signer does not count") {
        Manifest with_stranger = m;
        with_stranger.signatures.push_back(sign(m, key("stranger")));
        check_failure(evaluate_policy(with_stranger, p), PolicyFailure::too_few_signatures);
    }
    SUBCASE("two distinct trusted signers pass") {
        Manifest both = m;
        both.signatures.push_back(sign(m, b));
        const PolicyVerdict v = evaluate_policy(both, p);
        check_ok(v);
        CHECK(v.good_signers == 2);
        p.required_signatures = 3;
        check_failure(evaluate_policy(both, p), PolicyFailure::too_few_signatures);
    }
}

TEST_CASE("policy: security version below the minimum is a rollback") {
    const PrivateKey& a = key("a");
    Manifest m = base_manifest();
    m.security_version = 5;
    m.signatures.push_back(sign(m, a));
    VerifyPolicy p = trusting({&a});
    p.min_security_version = 6;
    const PolicyVerdict v = evaluate_policy(m, p);
    check_failure(v, PolicyFailure::rollback);
    CHECK(svmkit::test::contains(v.message, "security version 5 is below the minimum 6"));
    p.min_security_version = 5;
    check_ok(evaluate_policy(m, p));
    p.min_security_version = 0;
    check_ok(evaluate_policy(m, p));
}

TEST_CASE("policy: an invalid signature by an unknown key is ignored") {
    const PrivateKey& a = key("a");
    const PrivateKey& stranger = key("stranger");
    Manifest m = base_manifest();
    Signature bogus = sign(m, stranger);
    bogus.value.assign(bogus.value.size(), std::byte{0});
    m.signatures.push_back(bogus);
    m.signatures.push_back(sign(m, a));
    const PolicyVerdict v = evaluate_policy(m, trusting({&a}));
    check_ok(v);
    CHECK(v.good_signers == 1);
    REQUIRE(v.signatures.size() == 2);
    CHECK(v.signatures[0].status == SignerStatus::unknown);
    CHECK_FALSE(v.signatures[0].valid);
    CHECK(v.signatures[1].status == SignerStatus::trusted);
    CHECK(v.signatures[1].valid);
}

TEST_CASE("policy: a bad signature by a trusted key fails even next to a good one") {
    const PrivateKey& a = key("a");
    const PrivateKey& b = key("b");
    Manifest m = base_manifest();
    m.signatures.push_back(sign(m, a));
    Signature bad = sign(m, b);
    bad.value[0] ^= std::byte{1};
    m.signatures.push_back(bad);
    const PolicyVerdict v = evaluate_policy(m, trusting({&a, &b}));
    check_failure(v, PolicyFailure::bad_signature);
    CHECK(svmkit::test::contains(v.message, signer::key_id_hex(b.public_key().key_id())));
}
