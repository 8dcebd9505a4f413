// The mutations of the tamper matrix (svmkit issue 8), each a "case": one
// byte flipped, the file truncated, or a whole new file mixed from the
// sections of two signed images. Every case says which row of the summary it
// counts in, whether it changes a byte a signature or a check covers (then it
// must be rejected), and what a correct rejection names.
#pragma once

#include "tamper/elf_composer.hpp"
#include "tamper/image_map.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace svmkit::tamper {

// A signed image the matrix starts from or mixes with.
struct SignedImage {
    std::string label; // "A", "B", ...
    std::string what;  // how it differs from A
    std::string path;
    std::vector<std::byte> bytes;
    format::SecureImage image;
    bool accepted = false; // its own verdict under the matrix's policy
};

struct Case {
    enum class Kind { flip, truncate, whole_file };
    Kind kind = Kind::flip;
    std::string row;  // the summary row
    std::string what; // one line: what was done, where
    // flip: bytes[offset] ^= mask; truncate: the first `size` bytes.
    std::uint64_t offset = 0;
    std::uint8_t mask = 0;
    std::uint64_t size = 0;
    std::shared_ptr<const std::vector<std::byte>> file; // whole_file
    // Must be rejected: a covered byte changed. When false, `same_as` names
    // the signed image the result is byte-identical to; its verdict must be
    // that image's. (Every byte of an image is covered for verify and boot:
    // docs/format.md, "Bytes not covered by signatures".)
    bool covered = true;
    const SignedImage* same_as = nullptr;
    // A correct rejection: by the strict reader, before any digest (for
    // unsigned structure), or naming one of these (in the verify message and
    // in the boot verdict or message); empty: any rejection will do.
    bool reader_must_refuse = false;
    std::vector<std::string> verify_names;
    std::vector<std::string> boot_names;
    // Verify and boot always run (machine boots are sampled, see
    // tamper_matrix.cpp); the ultravisor alone (file bytes placed by the
    // pristine layout, reader bypassed) runs too when `uv_direct`.
    bool uv_direct = false;
    // The ultravisor alone verifies the manifest's tree and the components,
    // not the zero padding after the tree (docs/format.md).
    bool uv_covered = true;
};

struct CasePlan {
    std::size_t content_quota = 2000;  // sampled flips per large section
    std::size_t padding_samples = 600; // sampled flips over all file padding
    std::uint64_t seed = 8;            // svmkit issue 8
};

// Every byte of the ELF header, the program and section headers and the
// section name table, each flipped nine ways (each bit, and all bits).
std::vector<Case> header_flips(const ImageMap& map);

// Sampled flips in every loaded section (every byte of small ones and of the
// manifest's device tree), the manifest's zero padding and the file padding.
std::vector<Case> content_flips(const ImageMap& map, const CasePlan& plan);

// The file cut at every region boundary, one byte before and after it too,
// and bytes appended after the end.
std::vector<Case> truncations(const SignedImage& a, const ImageMap& map);

// Sections of `a` and `b` mixed (every combination of payload sections, under
// either manifest), headers rewritten to agree with the contents; and the
// manifest of each donor transplanted into `a`.
std::vector<Case> swaps(const SignedImage& a, const SignedImage& b,
                        const std::vector<const SignedImage*>& all);
std::vector<Case> transplants(const SignedImage& a, const std::vector<const SignedImage*>& donors,
                              const std::vector<const SignedImage*>& all);

} // namespace svmkit::tamper
