// The canonical to-be-signed (TBS) encoding of a manifest.
//
// A signature covers these bytes, never the device-tree bytes: the verifier
// re-derives them from the decoded manifest by the rules below, so no list of
// "what is signed" is ever read from the image (see docs/format.md).
//
// Encoding, version 1 (all integers big-endian):
//   magic   "svmkit-tbs-v1\n" (14 bytes)
//   fields  { u16 tag; u32 length; u8 value[length] }...  in this fixed order:
//     0x0001 format-version (u32)   0x0002 arch (ASCII)        0x0003 image-base (u64)
//     0x0004 entry (u64)            0x0005 security-version (u64)
//     0x0006 creation-time (u64)    0x0007 swiotlb-size (u64)  0x0008 hash (ASCII)
//     per component, in canonical kind order:
//       0x0100 component (ASCII kind name)  0x0101 address (u64)  0x0102 size (u64)
//       0x0103 compression (ASCII)          0x0104 digest (bytes)
//       0x0105 unpacked-size (u64)          0x0106 unpacked-digest (bytes)   [if present]
//       0x0107 load-address (u64) 0x0108 memory-size (u64) 0x0109 entry-offset (u64) [kernel]
//       0x01ff end of component (empty)
//     0xffff end (empty)
// Signatures are not part of it.
#pragma once

#include "format/manifest.hpp"

#include <cstddef>
#include <vector>

namespace svmkit::format {

std::vector<std::byte> encode_tbs(const Manifest& manifest);

} // namespace svmkit::format
