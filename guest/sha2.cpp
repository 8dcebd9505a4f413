#include "guest/sha2.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace svmkit::guest {

namespace {

constexpr uint32_t kK256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

constexpr uint64_t kK512[80] = {
    0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc,
    0x3956c25bf348b538, 0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118,
    0xd807aa98a3030242, 0x12835b0145706fbe, 0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235, 0xc19bf174cf692694,
    0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
    0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5,
    0x983e5152ee66dfab, 0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2, 0xd5a79147930aa725, 0x06ca6351e003826f, 0x142929670a0e6e70,
    0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed, 0x53380d139d95b3df,
    0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
    0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30,
    0xd192e819d6ef5218, 0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8, 0x1e376c085141ab53, 0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373, 0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
    0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b,
    0xca273eceea26619c, 0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178,
    0x06f067aa72176fba, 0x0a637dc5a2c898a6, 0x113f9804bef90dae, 0x1b710b35131c471b,
    0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc, 0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817};

constexpr uint32_t kInit256[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
constexpr uint64_t kInit384[8] = {0xcbbb9d5dc1059ed8, 0x629a292a367cd507, 0x9159015a3070dd17,
                                  0x152fecd8f70e5939, 0x67332667ffc00b31, 0x8eb44a8768581511,
                                  0xdb0c2e0d64f98fa7, 0x47b5481dbefa4fa4};
constexpr uint64_t kInit512[8] = {0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b,
                                  0xa54ff53a5f1d36f1, 0x510e527fade682d1, 0x9b05688c2b3e6c1f,
                                  0x1f83d9abfb41bd6b, 0x5be0cd19137e2179};

template <typename Word>
constexpr Word rotr(Word x, unsigned n) {
    return static_cast<Word>((x >> n) | (x << (sizeof(Word) * 8 - n)));
}

uint32_t load_be32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint64_t load_be64(const uint8_t* p) {
    return (uint64_t{load_be32(p)} << 32) | load_be32(p + 4);
}
void store_be32(uint8_t* p, uint32_t v) {
    for (unsigned i = 0; i < 4; ++i)
        p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void store_be64(uint8_t* p, uint64_t v) {
    for (unsigned i = 0; i < 8; ++i)
        p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}

#if defined(__x86_64__)
// SHA-256 with the x86 SHA extensions: the same compression function, four
// rounds per step (sha256rnds2 twice), the message schedule with
// sha256msg1/sha256msg2. State in the ABEF/CDGH order the instructions use.
bool cpu_has_sha_ni() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) == 0 || (c & bit_SSSE3) == 0 || (c & bit_SSE4_1) == 0)
        return false;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0)
        return false;
    return (b & bit_SHA) != 0;
}

__attribute__((target("sha,sse4.1,ssse3"))) void
sha256_blocks_sha_ni(uint32_t* state, const uint8_t* p, size_t count) {
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0xB1);
    __m128i state1 =
        _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4)), 0x1B);
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8); // ABEF
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);      // CDGH
    for (; count > 0; --count, p += 64) {
        const __m128i abef = state0;
        const __m128i cdgh = state1;
        __m128i w[4];
        for (size_t i = 0; i < 4; ++i)
            w[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i)),
                                    byte_swap);
        for (size_t g = 0; g < 16; ++g) {
            __m128i cur = w[g & 3];
            if (g >= 4) {
                // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four at a time.
                __m128i t = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
                t = _mm_add_epi32(t, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
                cur = _mm_sha256msg2_epu32(t, w[(g + 3) & 3]);
                w[g & 3] = cur;
            }
            __m128i msg = _mm_add_epi32(
                cur, _mm_loadu_si128(reinterpret_cast<const __m128i*>(kK256 + 4 * g)));
            state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
            msg = _mm_shuffle_epi32(msg, 0x0E);
            state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
    }
    tmp = _mm_shuffle_epi32(state0, 0x1B);       // FEBA
    state1 = _mm_shuffle_epi32(state1, 0xB1);    // DCHG
    state0 = _mm_blend_epi16(tmp, state1, 0xF0); // DCBA
    state1 = _mm_alignr_epi8(state1, tmp, 8);    // HGFE
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state), state0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), state1);
}
#endif

// SHA-256 and SHA-512 share one compression function (FIPS 180-4, 6.2.2
// and 6.4.2) and differ in word size, round count, constants and the
// rotation amounts of the four sigma functions: {r1, r2, shift-or-r3}.
struct Sha256Rounds {
    using Word = uint32_t;
    static constexpr size_t kRounds = 64;
    static constexpr const Word* kK = kK256;
    static constexpr unsigned kSmall0[3] = {7, 18, 3}, kSmall1[3] = {17, 19, 10};
    static constexpr unsigned kBig0[3] = {2, 13, 22}, kBig1[3] = {6, 11, 25};
    static Word load(const uint8_t* p) { return load_be32(p); }
};
struct Sha512Rounds {
    using Word = uint64_t;
    static constexpr size_t kRounds = 80;
    static constexpr const Word* kK = kK512;
    static constexpr unsigned kSmall0[3] = {1, 8, 7}, kSmall1[3] = {19, 61, 6};
    static constexpr unsigned kBig0[3] = {28, 34, 39}, kBig1[3] = {14, 18, 41};
    static Word load(const uint8_t* p) { return load_be64(p); }
};

template <typename R>
void compress(typename R::Word* state, const uint8_t* p) {
    using Word = typename R::Word;
    const auto small = [](Word x, const unsigned(&r)[3]) {
        return static_cast<Word>(rotr(x, r[0]) ^ rotr(x, r[1]) ^ (x >> r[2]));
    };
    const auto big = [](Word x, const unsigned(&r)[3]) {
        return static_cast<Word>(rotr(x, r[0]) ^ rotr(x, r[1]) ^ rotr(x, r[2]));
    };
    Word w[R::kRounds];
    for (size_t i = 0; i < 16; ++i)
        w[i] = R::load(p + sizeof(Word) * i);
    for (size_t i = 16; i < R::kRounds; ++i)
        w[i] = static_cast<Word>(w[i - 16] + small(w[i - 15], R::kSmall0) + w[i - 7] +
                                 small(w[i - 2], R::kSmall1));
    Word a = state[0], b = state[1], c = state[2], d = state[3];
    Word e = state[4], f = state[5], g = state[6], h = state[7];
    for (size_t i = 0; i < R::kRounds; ++i) {
        const Word t1 =
            static_cast<Word>(h + big(e, R::kBig1) + ((e & f) ^ (~e & g)) + R::kK[i] + w[i]);
        const Word t2 = static_cast<Word>(big(a, R::kBig0) + ((a & b) ^ (a & c) ^ (b & c)));
        h = g;
        g = f;
        f = e;
        e = static_cast<Word>(d + t1);
        d = c;
        c = b;
        b = a;
        a = static_cast<Word>(t1 + t2);
    }
    const Word out[8] = {a, b, c, d, e, f, g, h};
    for (size_t i = 0; i < 8; ++i)
        state[i] = static_cast<Word>(state[i] + out[i]);
}

} // namespace

size_t digest_size(HashAlgorithm a) {
    switch (a) {
    case HashAlgorithm::sha256:
        return 32;
    case HashAlgorithm::sha384:
        return 48;
    case HashAlgorithm::sha512:
        return 64;
    }
    return 0;
}

Sha2::Sha2(HashAlgorithm a, bool cpu_extensions) : algorithm_(a), h32_{}, h64_{}, buf_{} {
#if defined(__x86_64__)
    sha_ni_ = cpu_extensions && a == HashAlgorithm::sha256 && cpu_has_sha_ni();
#else
    (void)cpu_extensions;
#endif
    const uint64_t* init64 = a == HashAlgorithm::sha384 ? kInit384 : kInit512;
    for (int i = 0; i < 8; ++i) {
        h32_[i] = kInit256[i];
        h64_[i] = init64[i];
    }
}

void Sha2::blocks(const uint8_t* p, size_t count) {
#if defined(__x86_64__)
    if (sha_ni_) {
        sha256_blocks_sha_ni(h32_, p, count);
        return;
    }
#endif
    for (; count > 0; --count, p += block_size())
        algorithm_ == HashAlgorithm::sha256 ? compress<Sha256Rounds>(h32_, p)
                                            : compress<Sha512Rounds>(h64_, p);
}

void Sha2::update(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    const size_t bs = block_size();
    length_ += n;
    if (used_ > 0) {
        while (n > 0 && used_ < bs) {
            buf_[used_++] = *p++;
            --n;
        }
        if (used_ < bs)
            return;
        blocks(buf_, 1);
        used_ = 0;
    }
    const size_t whole = n / bs;
    blocks(p, whole);
    p += whole * bs;
    n -= whole * bs;
    for (size_t i = 0; i < n; ++i)
        buf_[used_++] = p[i];
}

void Sha2::final(uint8_t* out) {
    const size_t bs = block_size();
    const size_t length_field = bs == 64 ? 8 : 16;
    const uint64_t bits = length_ * 8;
    buf_[used_++] = 0x80;
    if (used_ > bs - length_field) {
        while (used_ < bs)
            buf_[used_++] = 0;
        blocks(buf_, 1);
        used_ = 0;
    }
    while (used_ < bs - 8)
        buf_[used_++] = 0; // includes the high half of SHA-512's 128-bit length
    store_be64(buf_ + bs - 8, bits);
    blocks(buf_, 1);
    used_ = 0;
    if (algorithm_ == HashAlgorithm::sha256) {
        for (size_t i = 0; i < 8; ++i)
            store_be32(out + 4 * i, h32_[i]);
        return;
    }
    const size_t words = digest_size(algorithm_) / 8;
    for (size_t i = 0; i < words; ++i)
        store_be64(out + 8 * i, h64_[i]);
}

void sha2(HashAlgorithm a, const void* data, size_t n, uint8_t* out) {
    Sha2 h(a);
    h.update(data, n);
    h.final(out);
}

} // namespace svmkit::guest
