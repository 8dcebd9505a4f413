// Component bytes as a stream: where they come from, and the one pass that
// copies them into an image while hashing them.
//
// Inputs are never loaded whole into memory: a payload is read in bounded
// chunks, so building or verifying an image of any size needs a few MiB.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "base/output_file.hpp"
#include "signer/signer.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace svmkit::format {

inline constexpr std::size_t kStreamChunk = 1u << 20;

// A run of input-file bytes placed at `image_offset` of the payload.
struct Extent {
    std::uint64_t file_offset = 0;
    std::uint64_t length = 0;
    std::uint64_t image_offset = 0;
};

// The bytes of one payload.
// Invariant: extents are sorted by image_offset, do not overlap, and end at or
// before `size`; bytes no extent covers are zero.
struct PayloadSource {
    std::string label;                     // for messages: a file name
    std::uint64_t size = 0;                // payload size in bytes
    std::shared_ptr<const InputFile> file; // null for memory payloads
    std::vector<Extent> extents;
    std::vector<std::byte> memory; // used when file is null (size == memory.size())

    static PayloadSource from_memory(std::string label, std::vector<std::byte> bytes);
    static PayloadSource from_file(std::shared_ptr<const InputFile> file);
};

// Calls `sink` with consecutive chunks of the payload, in order.
Result<void> stream_payload(const PayloadSource& source,
                            const std::function<Result<void>(std::span<const std::byte>)>& sink);

// Hashes the payload while writing it at `offset` of `out` (when out != null).
Result<std::vector<std::byte>> copy_and_hash(const PayloadSource& source,
                                             signer::DigestAlgorithm algo, OutputFile* out,
                                             std::uint64_t offset);

// Gzip-compresses a payload into an anonymous memory file (never the heap),
// hashing the uncompressed bytes on the way. Deterministic: no name, mtime 0.
struct CompressedPayload {
    PayloadSource stored;
    std::vector<std::byte> unpacked_digest;
};
Result<CompressedPayload> gzip_payload(const PayloadSource& source, signer::DigestAlgorithm algo);

// Streams a gzip member from `source` through `sink` as it inflates. Exactly
// one member; trailing bytes, a bad CRC or more than `max_output` bytes of
// output are errors (ExitCode::malformed naming `label`).
Result<std::uint64_t>
gunzip_stream(const PayloadSource& source, std::uint64_t max_output,
              const std::function<Result<void>(std::span<const std::byte>)>& sink);

} // namespace svmkit::format
