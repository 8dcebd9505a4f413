// Segment placement and the purgatory recheck (loader/segment_digest.h).
#include "loader/segment_digest.h"

#include "guest/sha2.h"

#include <string.h>

namespace svmkit::loader {

namespace {

// The file bytes the plan reads: [file, file + end of the furthest segment).
uint64_t file_extent(const LoadPlan& plan) {
    uint64_t end = 0;
    for (uint32_t i = 0; i < plan.count; ++i) {
        const PlannedSegment& s = plan.segments[i];
        if (s.file_size != 0 && s.file_offset + s.file_size > end)
            end = s.file_offset + s.file_size; // the plan's invariant: no overflow
    }
    return end;
}

bool pointers_overlap(const uint8_t* a, uint64_t a_size, const uint8_t* b, uint64_t b_size) {
    const auto a0 = reinterpret_cast<uintptr_t>(a);
    const auto b0 = reinterpret_cast<uintptr_t>(b);
    return a_size != 0 && b_size != 0 && a0 < b0 + b_size && b0 < a0 + a_size;
}

void digest(const uint8_t* p, uint64_t size, uint8_t* out) {
    guest::sha2(guest::HashAlgorithm::sha256, p, static_cast<size_t>(size), out);
}

} // namespace

bool place_segments(const uint8_t* file, const LoadPlan& plan, GpaToPointer to_pointer, void* ctx,
                    SegmentDigests* out) {
    const uint64_t extent = file_extent(plan);
    // Every destination is checked before the first byte is written: a plan
    // that would overwrite its own source is refused whole.
    for (uint32_t i = 0; i < plan.count; ++i) {
        const PlannedSegment& s = plan.segments[i];
        uint8_t* dst = to_pointer(ctx, s.address, s.mem_size);
        if (dst == nullptr || pointers_overlap(dst, s.mem_size, file, extent))
            return false;
    }
    for (uint32_t i = 0; i < plan.count; ++i) {
        const PlannedSegment& s = plan.segments[i];
        uint8_t* dst = to_pointer(ctx, s.address, s.mem_size);
        if (dst == nullptr)
            return false;
        memcpy(dst, file + s.file_offset, static_cast<size_t>(s.file_size));
        memset(dst + s.file_size, 0, static_cast<size_t>(s.mem_size - s.file_size));
        digest(dst, s.mem_size, out->sha256[i]);
    }
    out->count = plan.count;
    return true;
}

void digest_segment(const ElfSource& file, const PlannedSegment& s, uint8_t* chunk,
                    uint32_t chunk_size, uint8_t out[kSegmentDigestSize]) {
    guest::Sha2 h(guest::HashAlgorithm::sha256);
    for (uint64_t done = 0; done < s.file_size;) {
        const uint64_t left = s.file_size - done;
        const uint32_t n = left < chunk_size ? static_cast<uint32_t>(left) : chunk_size;
        file.read(file.ctx, s.file_offset + done, chunk, n);
        h.update(chunk, n);
        done += n;
    }
    memset(chunk, 0, chunk_size);
    for (uint64_t left = s.mem_size - s.file_size; left != 0;) {
        const uint32_t n = left < chunk_size ? static_cast<uint32_t>(left) : chunk_size;
        h.update(chunk, n);
        left -= n;
    }
    h.final(out);
}

int32_t recheck_segments(const LoadPlan& plan, const SegmentDigests& d, GpaToPointer to_pointer,
                         void* ctx) {
    for (uint32_t i = 0; i < plan.count; ++i) {
        const PlannedSegment& s = plan.segments[i];
        if (i >= d.count)
            return static_cast<int32_t>(i);
        const uint8_t* p = to_pointer(ctx, s.address, s.mem_size);
        if (p == nullptr)
            return static_cast<int32_t>(i);
        uint8_t now[kSegmentDigestSize];
        digest(p, s.mem_size, now);
        if (memcmp(now, d.sha256[i], kSegmentDigestSize) != 0)
            return static_cast<int32_t>(i);
    }
    return -1;
}

} // namespace svmkit::loader
