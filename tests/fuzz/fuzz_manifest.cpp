// Fuzz target: the manifest decoder (untrusted FDT bytes) and the canonical
// to-be-signed encoding. Oracle: whatever decodes must re-encode to exactly
// the same bytes (one byte form per manifest) and have a TBS encoding.
#include "format/manifest_fdt.hpp"
#include "format/tbs.hpp"

#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto bytes = std::as_bytes(std::span(data, size));
    auto m = svmkit::format::decode_manifest_fdt(bytes, "fuzz");
    if (!m)
        return 0;
    const auto again = svmkit::format::encode_manifest_fdt(*m);
    if (again.size() > size || std::memcmp(again.data(), data, again.size()) != 0)
        std::abort(); // accepted a non-canonical blob
    (void)svmkit::format::encode_tbs(*m);
    return 0;
}
