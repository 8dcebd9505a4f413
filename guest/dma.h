// The guest's DMA API (freestanding): how drivers hand memory to devices.
//
// Linux's DMA API in miniature. A DmaDevice is one device's view:
//   - direct: a normal (non-secure) guest, or a device without a restricted
//     pool. Device addresses are guest-physical addresses of the buffers
//     themselves; coherent memory comes from a private arena the caller gives.
//   - restricted: a secure guest's device bound to a restricted-dma-pool
//     (the FDT's memory-region). Every streaming mapping bounces through the
//     pool (guest/swiotlb.h) and coherent memory (rings) is allocated from
//     the pool, because it is the only memory the hypervisor can read.
//
// Device addresses (dma_addr_t) are guest-physical on this platform. The
// mapping calls never trust a size or address the device could have changed:
// drivers pass back what map returned, and swiotlb checks it against its own
// record.
//
// No virtual functions: freestanding images must not carry vtables (they
// would be data needing relocation); the mode is a field.
//
// A driver may keep one DmaDevice per queue or per vCPU over the same
// Swiotlb (which is thread-safe); one DmaDevice is not (its last_error and
// its cache of freed bounce slots, Swiotlb::SlotCache, which lets a map reuse
// the last unmapped slots without a lock). It can be moved, not copied (two
// copies would own the same cached slots); destroying it gives its cached
// slots back. Direct devices check nothing: there is nothing recorded.
#pragma once

#include "guest/dma_types.h"
#include "guest/memory.h"
#include "guest/swiotlb.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

struct BumpArena;

// What the waiting map variants call when the pool is full: reap completed
// requests (whose unmaps free slots), waiting for at least one if needed, and
// return true to retry; return false to give up (nothing of ours is in
// flight, so no room will come).
using DmaWaitFn = bool (*)(void* ctx);

class DmaDevice {
  public:
    // A device that DMAs straight to guest RAM; coherent allocations come
    // from `coherent` (private memory; may be nullptr if none are needed).
    static DmaDevice direct(BumpArena* coherent);
    // A device bound to a restricted pool; `min_align_mask` is the device's
    // (Linux's dma_get_min_align_mask; 0 for virtio).
    static DmaDevice restricted(Swiotlb* pool, uint64_t min_align_mask = 0);

    DmaDevice() = default;
    DmaDevice(const DmaDevice&) = delete;
    DmaDevice& operator=(const DmaDevice&) = delete;
    DmaDevice(DmaDevice&& other) noexcept { take(other); }
    DmaDevice& operator=(DmaDevice&& other) noexcept;
    ~DmaDevice() { drain_cache(); }

    // Gives the slots this device keeps for reuse back to the pool (a driver
    // going idle for long; teardown does it). Restricted devices only.
    void drain_cache();
    // Slots this device keeps for reuse (counted as used by the pool).
    uint64_t cached_slots() const;
    const Swiotlb::SlotCache& cache() const { return cache_; }

    bool is_restricted() const { return pool_ != nullptr; }
    Swiotlb* pool() const { return pool_; }

    // Streaming mappings. map_single copies the buffer into the bounce slot
    // whatever the direction (a device writing less than the buffer must not
    // expose stale pool bytes); unmap_single copies back for from_device and
    // bidirectional. kDmaMappingError on failure, with last_error() set.
    // `cpu_index` picks the swiotlb area to start in (the vCPU's).
    dma_addr_t map_single(void* cpu, size_t size, DmaDirection dir, unsigned cpu_index = 0);
    // False (restricted: nothing copied or freed) unless `dma` is what
    // map_single returned and `size`, `dir` are what it was given.
    bool unmap_single(dma_addr_t dma, size_t size, DmaDirection dir);
    // Maps every segment or none (on failure the ones mapped are undone and
    // every dma is kDmaMappingError); returns false on failure.
    bool map_sg(DmaSegment* segs, size_t count, DmaDirection dir, unsigned cpu_index = 0);
    // Unmaps every segment; false if any unmap was refused.
    bool unmap_sg(DmaSegment* segs, size_t count, DmaDirection dir);
    // Ownership transfers for a mapping kept across several transfers;
    // [dma, dma + size) may be part of a mapping. False when it lies outside
    // every live mapping or `dir` is not the mapped direction.
    bool sync_for_cpu(dma_addr_t dma, size_t size, DmaDirection dir);
    bool sync_for_device(dma_addr_t dma, size_t size, DmaDirection dir);

    // Block I/O: like map_single / map_sg, but when the pool is full calls
    // `wait(ctx)` and retries while it returns true. Any other failure (and
    // `wait` returning false) fails at once, with last_error() set.
    dma_addr_t map_single_wait(void* cpu, size_t size, DmaDirection dir, DmaWaitFn wait, void* ctx,
                               unsigned cpu_index = 0);
    bool map_sg_wait(DmaSegment* segs, size_t count, DmaDirection dir, DmaWaitFn wait, void* ctx,
                     unsigned cpu_index = 0);

    // Coherent memory both sides use in place (virtqueue rings), zeroed,
    // aligned to `size` rounded up to a power of two (at least 16 bytes
    // direct, a 2 KiB slot restricted; at most a page). nullptr on failure.
    void* alloc_coherent(size_t size, dma_addr_t* dma);
    // Restricted: false (nothing freed) unless the three are what
    // alloc_coherent gave. Direct: the arena frees everything at once.
    bool free_coherent(void* cpu, size_t size, dma_addr_t dma);

    // The largest size map_single always accepts (a driver's max segment
    // size); unlimited for direct devices.
    uint64_t max_mapping_size() const;

    const DmaError& last_error() const { return error_; }

  private:
    // Takes over `other`'s pool, arena and cache; `other` is left direct,
    // without any.
    void take(DmaDevice& other);

    Swiotlb* pool_ = nullptr;
    Swiotlb::SlotCache cache_;
    BumpArena* coherent_ = nullptr;
    uint64_t min_align_mask_ = 0;
    DmaError error_;
};

} // namespace svmkit::guest
