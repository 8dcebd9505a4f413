// SHA-256, SHA-384 and SHA-512 (FIPS 180-4) for freestanding guest code.
//
// The stub checks the unpacked kernel's digest with these before entering it.
// The same source is compiled into the host unit tests
// (tests/unit/guest_sha2_test.cpp) and checked against known vectors and
// OpenSSL, so it depends on nothing but <stdint.h> and <stddef.h>.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

enum class HashAlgorithm : uint8_t { sha256, sha384, sha512 };

inline constexpr size_t kMaxDigestSize = 64;
size_t digest_size(HashAlgorithm a); // 32, 48, 64

// Incremental hashing. Invariants: `used` < block size; `length` counts every
// byte passed to update() (SHA-384/512 lengths beyond 2^64 bits are not
// needed: guest memory is far smaller).
class Sha2 {
  public:
    // `cpu_extensions`: use the CPU's SHA instructions for SHA-256 when it has
    // them (x86-64 SHA-NI); false forces the portable code (tests compare both).
    explicit Sha2(HashAlgorithm a, bool cpu_extensions = true);
    void update(const void* data, size_t n);
    // Writes digest_size(algorithm) bytes to `out`. The object is spent after.
    void final(uint8_t* out);

  private:
    void blocks(const uint8_t* p, size_t count);
    size_t block_size() const { return algorithm_ == HashAlgorithm::sha256 ? 64 : 128; }

    HashAlgorithm algorithm_;
    // SHA-256 blocks through the SHA-NI instructions (x86-64 only).
    [[maybe_unused]] bool sha_ni_ = false;
    uint32_t h32_[8];
    uint64_t h64_[8];
    uint8_t buf_[128];
    size_t used_ = 0;
    uint64_t length_ = 0; // bytes
};

// One-shot digest of [data, data + n).
void sha2(HashAlgorithm a, const void* data, size_t n, uint8_t* out);

} // namespace svmkit::guest
