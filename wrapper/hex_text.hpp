// Hexadecimal text the commands print: addresses as 0x..., digests as bytes.
#pragma once

#include "format/manifest.hpp"

#include <cstddef>
#include <cstdint>
#include <fmt/format.h>
#include <span>
#include <string>

namespace svmkit::cli {

inline std::string hex_address(std::uint64_t v) {
    return fmt::format("{:#x}", v);
}

inline std::string hex_bytes(const std::uint8_t* p, std::size_t n) {
    return format::hex(std::as_bytes(std::span(p, n)));
}

} // namespace svmkit::cli
