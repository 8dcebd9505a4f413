// Fuzz target: the parsers of `svmkit esm` inputs. The first byte selects
//   0: the svm-tools YAML (parse_esm_config)
//   1: a standalone ibm,esm blob (decode_esm_blob)
//   2: the digests device tree (decode_esm_digests)
// and the rest is the input. An accepted blob or digests tree must re-encode
// to a tree that decodes to the same encoding (the encoder and decoder agree).
#include "format/esm_blob.hpp"
#include "format/esm_config.hpp"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    const std::uint8_t selector = data[0];
    const auto bytes = std::as_bytes(std::span(data + 1, size - 1));
    switch (selector % 3) {
    case 0: {
        const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
        (void)svmkit::format::parse_esm_config(text, "fuzz.yml");
        break;
    }
    case 1: {
        auto blob = svmkit::format::decode_esm_blob(bytes, "fuzz.dtb");
        if (blob) {
            const auto once = svmkit::format::encode_esm_blob(*blob);
            auto again = svmkit::format::decode_esm_blob(once, "re-encoded");
            if (!again || svmkit::format::encode_esm_blob(*again) != once)
                std::abort();
        }
        break;
    }
    default: {
        auto digests = svmkit::format::decode_esm_digests(bytes, "fuzz.dtb");
        if (digests) {
            const auto once = svmkit::format::encode_esm_digests(*digests);
            auto again = svmkit::format::decode_esm_digests(once, "re-encoded");
            if (!again || svmkit::format::encode_esm_digests(*again) != once)
                std::abort();
        }
        break;
    }
    }
    return 0;
}
