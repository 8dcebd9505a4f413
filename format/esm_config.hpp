// The svm-tools YAML that describes an ibm,esm blob (input of `svm-tool esm
// make` and of `svmkit esm make`; docs/esm.md, "The YAML"):
//
//   - origin:    { pubkey: PATH, seckey: PATH, comment: TEXT }    exactly one
//   - recipient: { pubkey: PATH, comment: TEXT }                  any number
//   - digest:    { args: TEXT, initramfs: PATH, kernel: PATH, comment: TEXT }
//                                                                 exactly one
//   - file:      { name: NAME, path: PATH, comment: TEXT }        any number
//
// The document is untrusted input: only these keys, scalar values, each key
// at most once per entry; seckey, comment and initramfs are optional. Paths
// are taken as written (relative ones from the current directory, as
// svm-tools does).
#pragma once

#include "base/error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace svmkit::format {

inline constexpr std::size_t kEsmMaxConfigSize = 1u << 20;

struct EsmConfig {
    struct Origin {
        std::string pubkey;
        std::optional<std::string> seckey;
        std::string comment;
    };
    struct Recipient {
        std::string pubkey;
        std::string comment;
    };
    struct Digest {
        std::string args;
        std::optional<std::string> initramfs;
        std::string kernel;
        std::string comment;
    };
    struct File {
        std::string name;
        std::string path;
        std::string comment;
    };
    Origin origin;
    std::vector<Recipient> recipients;
    Digest digest;
    std::vector<File> files;
};

// Errors: ExitCode::malformed naming `where` and the entry.
Result<EsmConfig> parse_esm_config(std::string_view text, const std::string& where);

} // namespace svmkit::format
