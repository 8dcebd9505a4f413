// Placing a planned image and the purgatory-style recheck of what was placed
// (docs/loader.md, "kexec-style load").
//
// Like kexec's purgatory: the loader records a SHA-256 of every placed
// segment (its whole memory range, zero fill included) when it places it, and
// the last step before jumping to the image recomputes each one, so a segment
// changed in between (by a bug, a DMA, a hostile hypervisor writing a normal
// guest's memory) stops the boot with the index of the segment. This is
// integrity between placing and jumping, not authenticity: the ultravisor
// checks the signature after ESM.
#pragma once

#include "loader/elf_plan.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::loader {

constexpr uint32_t kSegmentDigestSize = 32; // SHA-256

// Invariant: count == the plan's count; sha256[i] is the digest of segment i's
// [address, address + mem_size) as placed.
struct SegmentDigests {
    uint8_t sha256[kMaxSegments][kSegmentDigestSize];
    uint32_t count;
};

// Maps a guest-physical range to a writable pointer, or null when the range
// is not memory the caller can reach (guest: gpa_ptr; host tests: a buffer).
using GpaToPointer = uint8_t* (*)(void* ctx, uint64_t gpa, uint64_t size);

// Copies each planned segment from the file (the same bytes plan_elf_load()
// validated) to to_pointer(address, mem_size), zero-fills mem_size -
// file_size, and records SHA-256 of the placed mem_size bytes in *out.
// Returns false, with *out undefined, when to_pointer gives null for a
// segment or a destination overlaps the file bytes the plan still reads
// (the buffer holding the file belongs in LoadConstraints::reserved).
bool place_segments(const uint8_t* file, const LoadPlan& plan, GpaToPointer to_pointer, void* ctx,
                    SegmentDigests* out);

// The digest place_segments() records for segment `s`, computed from the file
// without placing it: its file bytes read through `file` into `chunk`, at
// most chunk_size bytes at a time (larger pieces than plan_elf_load asks
// for), then mem_size - file_size zeros. What `svmkit load --plan` prints
// while holding at most one chunk of the image.
void digest_segment(const ElfSource& file, const PlannedSegment& s, uint8_t* chunk,
                    uint32_t chunk_size, uint8_t out[kSegmentDigestSize]);

// Purgatory: recomputes every segment's digest. Returns the index of the first
// segment whose bytes changed (or that to_pointer no longer maps), or -1 when
// all match.
int32_t recheck_segments(const LoadPlan& plan, const SegmentDigests& d, GpaToPointer to_pointer,
                         void* ctx);

} // namespace svmkit::loader
