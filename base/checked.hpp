// Checked integer arithmetic for sizes and addresses taken from untrusted input.
#pragma once

#include <cstdint>
#include <optional>

namespace svmkit {

// a + b, or nullopt when the sum does not fit in 64 bits.
constexpr std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) {
    std::uint64_t r = 0;
    if (__builtin_add_overflow(a, b, &r))
        return std::nullopt;
    return r;
}

constexpr std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
    std::uint64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r))
        return std::nullopt;
    return r;
}

// Rounds v up to a multiple of `align` (a power of two), or nullopt on overflow.
constexpr std::optional<std::uint64_t> checked_align_up(std::uint64_t v, std::uint64_t align) {
    auto sum = checked_add(v, align - 1);
    if (!sum)
        return std::nullopt;
    return *sum & ~(align - 1);
}

// True when [a, a+alen) and [b, b+blen) share a byte. Lengths of 0 never overlap.
constexpr bool ranges_overlap(std::uint64_t a, std::uint64_t alen, std::uint64_t b,
                              std::uint64_t blen) {
    if (alen == 0 || blen == 0)
        return false;
    return a < b + blen && b < a + alen;
}

} // namespace svmkit
