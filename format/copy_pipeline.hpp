// Copying a large payload into an image while hashing it, with the I/O and the
// hashing on two threads.
//
// SHA-2 of one stream cannot be split, so the hash is the floor of a build's
// critical path; this keeps reading and writing off that path. The digest is
// of exactly the buffers written to the output.
#pragma once

#include "format/payload.hpp"
#include "base/output_file.hpp"

namespace svmkit::format {

Result<std::vector<std::byte>> copy_and_hash_pipelined(const PayloadSource& source,
                                                       signer::DigestAlgorithm algo,
                                                       OutputFile& out, std::uint64_t offset);

} // namespace svmkit::format
