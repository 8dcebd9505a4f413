// The stub's freestanding SHA-2 (guest/sha2.cpp), compiled here from the same
// source with the host compiler, against the FIPS 180 example vectors and
// OpenSSL.
#include "guest/sha2.cpp" // NOLINT(bugprone-suspicious-include): the very source the stub links

#include "signer/signer.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using svmkit::guest::HashAlgorithm;

namespace {

std::string hex(const std::uint8_t* p, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i)
        out += fmt::format("{:02x}", p[i]);
    return out;
}

std::string one_shot(HashAlgorithm a, std::string_view message, bool cpu_extensions) {
    svmkit::guest::Sha2 h(a, cpu_extensions);
    h.update(message.data(), message.size());
    std::uint8_t out[svmkit::guest::kMaxDigestSize];
    h.final(out);
    return hex(out, svmkit::guest::digest_size(a));
}

struct Vector {
    HashAlgorithm algorithm;
    std::string message;
    const char* digest;
};

const std::string kTwoBlocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
const std::string kMillionA(1000000, 'a');

const Vector kVectors[] = {
    {HashAlgorithm::sha256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {HashAlgorithm::sha256, "abc",
     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {HashAlgorithm::sha256, kTwoBlocks,
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {HashAlgorithm::sha256, kMillionA,
     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    {HashAlgorithm::sha384, "",
     "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f1489"
     "8b95b"},
    {HashAlgorithm::sha384, "abc",
     "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c"
     "825a7"},
    {HashAlgorithm::sha384, kTwoBlocks,
     "3391fdddfc8dc7393707a65b1b4709397cf8b1d162af05abfe8f450de5f36bc6b0455a8520bc4e6f5fe95b1fe3c"
     "8452b"},
    {HashAlgorithm::sha384, kMillionA,
     "9d0e1809716474cb086e834e310a4a1ced149e9c00f248527972cec5704c2a5b07b8b3dc38ecc4ebae97ddd87f3"
     "d8985"},
    {HashAlgorithm::sha512, "",
     "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877"
     "eec2f63b931bd47417a81a538327af927da3e"},
    {HashAlgorithm::sha512, "abc",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3f"
     "eebbd454d4423643ce80e2a9ac94fa54ca49f"},
    {HashAlgorithm::sha512, kTwoBlocks,
     "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c33596fd15c13b1b07f9aa1d3bea577"
     "89ca031ad85c7a71dd70354ec631238ca3445"},
    {HashAlgorithm::sha512, kMillionA,
     "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce57"
     "7c31beb009c5c2c49aa2e4eadb217ad8cc09b"},
};

svmkit::signer::DigestAlgorithm openssl_algorithm(HashAlgorithm a) {
    switch (a) {
    case HashAlgorithm::sha256:
        return svmkit::signer::DigestAlgorithm::sha256;
    case HashAlgorithm::sha384:
        return svmkit::signer::DigestAlgorithm::sha384;
    case HashAlgorithm::sha512:
        return svmkit::signer::DigestAlgorithm::sha512;
    }
    return svmkit::signer::DigestAlgorithm::sha256;
}

} // namespace

// Both code paths: the CPU's SHA instructions where it has them (x86-64
// SHA-NI, SHA-256 only) and the portable code.
TEST_CASE("guest SHA-2: the FIPS 180 example vectors") {
    for (bool cpu_extensions : {true, false}) {
        CAPTURE(cpu_extensions);
        for (const Vector& v : kVectors) {
            CAPTURE(svmkit::guest::digest_size(v.algorithm));
            CAPTURE(v.message.size());
            CHECK(one_shot(v.algorithm, v.message, cpu_extensions) == v.digest);
        }
    }
    std::uint8_t out[svmkit::guest::kMaxDigestSize];
    svmkit::guest::sha2(HashAlgorithm::sha256, "abc", 3, out);
    CHECK(hex(out, 32) == kVectors[1].digest);
}

TEST_CASE("guest SHA-2: fed in pieces of every size, it agrees with OpenSSL") {
    const auto data = svmkit::test::random_bytes(3000, 7);
    for (HashAlgorithm a : {HashAlgorithm::sha256, HashAlgorithm::sha384, HashAlgorithm::sha512}) {
        CAPTURE(svmkit::guest::digest_size(a));
        // Lengths around both block sizes and their padding boundaries.
        for (std::size_t len :
             {0u, 1u, 55u, 56u, 63u, 64u, 65u, 111u, 112u, 127u, 128u, 129u, 1000u, 3000u}) {
            CAPTURE(len);
            const std::span<const std::byte> message(data.data(), len);
            const auto want = svmkit::signer::digest(openssl_algorithm(a), message);
            for (std::size_t piece : {1u, 3u, 64u, 200u, 4096u})
                for (bool cpu_extensions : {true, false}) {
                    CAPTURE(piece);
                    CAPTURE(cpu_extensions);
                    svmkit::guest::Sha2 h(a, cpu_extensions);
                    for (std::size_t at = 0; at < len; at += piece)
                        h.update(data.data() + at, std::min(piece, len - at));
                    std::uint8_t out[svmkit::guest::kMaxDigestSize];
                    h.final(out);
                    CHECK(hex(out, svmkit::guest::digest_size(a)) ==
                          hex(reinterpret_cast<const std::uint8_t*>(want.data()), want.size()));
                }
        }
    }
}
