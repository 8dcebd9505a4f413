// The bounce-buffer pool (swiotlb) of a restricted-dma-pool device,
// freestanding.
//
// A secure guest's memory is invisible to the hypervisor, so every DMA goes
// through a window of pages the guest shared (UV_SHARE_PAGE): the pool. A
// streaming mapping copies the driver's buffer into pool slots (map), the
// device works on the copy, and unmap copies the result back. Linux's swiotlb
// semantics (kernel/dma/swiotlb.c), rewritten:
//
//   - the pool is cut into 2 KiB slots; 128 slots form a segment, and no
//     allocation crosses a segment, so one mapping is at most 256 KiB;
//   - the pool is split into a power-of-two number of areas (one per vCPU by
//     default), each with its own lock, used count and next-fit search index.
//     A mapping starts in the area `cpu & (areas - 1)`, tries the others in
//     turn, and is freed back to the area that holds it;
//   - a device's min_align_mask bits of the original address are kept in the
//     bounce address; alloc_align_mask aligns the allocation (and rounds it
//     to whole granules); a streaming mapping of a page or more without
//     either mask is page aligned;
//   - map copies the buffer in whatever the direction (a device that writes
//     less than the buffer must find the driver's bytes there, never stale
//     pool contents of an earlier mapping: CVE-2022-0854); unmap and
//     sync_for_cpu copy out for from_device and bidirectional; sync_for_device
//     copies in for to_device and bidirectional;
//   - every copy is checked against the record map made: the address must lie
//     in a live mapping (unmap: be its start), the size must fit it (unmap:
//     equal it), the direction must be the mapped one.
//
// Where things live:
//   - the pool: shared (hypervisor-visible) guest-physical memory, given as a
//     guest-physical Range; device addresses are guest-physical;
//   - all bookkeeping (per-area state, per-slot records): PRIVATE memory the
//     caller gives to init(), sized by metadata_bytes(). Nothing about the
//     mappings is ever stored in, or read back from, the pool: the hypervisor
//     can rewrite the pool at any time.
//
// Differences from Linux, on purpose:
//   - the allocation record (original address, size, offset, direction) is
//     kept once, in the allocation's first slot, and every slot of an
//     allocation names that first slot. Linux keeps an original address and
//     a remaining size per slot and recomputes the start from the address on
//     free, which needed "pad slots" when the min_align offset exceeded a
//     slot; here the start is looked up, never recomputed;
//   - a search jumps straight to the next slot whose address satisfies the
//     alignment (Linux steps slot by slot), and checks alignment on every
//     candidate, also after wrapping (the CVE-2024-35814 class of bug);
//   - freeing the most recent allocation of an area, or any allocation
//     below its search index, moves the index back to it: the lowest free
//     slots are reused first, so the mappings in flight cycle through the
//     same few (cache-hot) slots instead of walking the whole pool;
//   - coherent allocations are aligned to their own size rounded up to a
//     power of two, at most a page (Linux's dma_alloc_coherent promise), and
//     record their kind, so unmap of a coherent buffer or free of a streaming
//     one is refused.
//
// The per-owner cache (SlotCache, one in each DmaDevice): an unmap keeps the
// freed allocation, still allocated, in its owner's cache, and the owner's
// next map of the same or a smaller size takes it back, with no lock and no
// locked instruction. A cached allocation is not free to anyone else; it
// goes back to its area (under the area lock) when its owner drains the
// cache: on teardown, when a map does not fit the pool (the owner's own
// cache first, then every other cache is asked to drain at its owner's next
// map or unmap: the pool's drain epoch), and when the cache is full.
//
// Concurrency: map, alloc and the frees take only the lock of the area they
// search or free into; the cached map and unmap take none. The record of a live mapping belongs to
// whoever holds its dma address: a driver must not unmap or sync one mapping from two threads at
// once (as in Linux); distinct mappings may be used from any threads. init() and check_invariants()
// need the pool to be idle.
#pragma once

#include "guest/dma_types.h"
#include "guest/memory.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

// A test-and-test-and-set spinlock on GCC atomic builtins (no libc, no
// scheduler). Interrupts are not involved on the simulated platform; a ppc64le
// kernel taking it from interrupt context would disable them first.
struct SpinLock {
    uint32_t word = 0;
    void lock();
    void unlock() { __atomic_store_n(&word, 0u, __ATOMIC_RELEASE); }
};

class Swiotlb {
  public:
    struct SlotCache; // below, with its invariants
    static constexpr uint64_t kSlotShift = 11;
    static constexpr uint64_t kSlotSize = uint64_t{1} << kSlotShift; // 2 KiB
    static constexpr uint32_t kSegmentSlots = 128;
    static constexpr uint64_t kSegmentSize = kSlotSize * kSegmentSlots; // 256 KiB
    static constexpr unsigned kMaxAreas = 256;
    // Slot indices are 32-bit: a pool of at most 2^31 slots (4 TiB).
    static constexpr uint64_t kMaxSlots = uint64_t{1} << 31;
    // The caller's metadata buffer must be aligned this much (areas are
    // cache-line padded so two vCPUs never share one).
    static constexpr uint64_t kMetadataAlign = 64;

    enum class InitError : uint8_t {
        none,
        pool_misaligned,    // base or size not a multiple of a slot
        pool_too_small,     // less than one segment
        pool_too_large,     // more than kMaxSlots slots, or base + size overflows
        bad_page_shift,     // page smaller than a slot or larger than a segment
        metadata_too_small, // smaller than metadata_bytes()
        metadata_misaligned,
    };

    // Private memory init() needs for a pool of `nslots` slots split into (at
    // most) `nareas` areas. The area count is rounded up to a power of two,
    // as init() does, so the result covers what init() uses.
    static uint64_t metadata_bytes(uint64_t nslots, unsigned nareas);
    static uint64_t slots_in(uint64_t pool_bytes) { return pool_bytes >> kSlotShift; }

    // Takes over the pool [pool.base, pool.end()) (guest-physical, shared)
    // with bookkeeping in `metadata` (private, metadata_size bytes). `nareas`
    // (the vCPU count; 0 counts as 1) is rounded up to a power of two, at
    // most kMaxAreas, then halved until every area holds a whole segment.
    // `page_shift` sets what "a page" is for the alignment rules (the
    // platform's page by default; tests also use Linux's 4 KiB). Pool
    // contents are left as they are; they are never trusted.
    InitError init(Range pool, unsigned nareas, void* metadata, uint64_t metadata_size,
                   unsigned page_shift = kPageShift);

    // Streaming mapping of `size` bytes at `orig` (private memory): the
    // device address of its bounce copy, or kDmaMappingError with `*err`
    // filled in (pool_full: no room now; too_large: never fits this pool;
    // bad_argument: size 0, null buffer, malformed masks). Masks are of the
    // form 2^k - 1 and smaller than a segment.
    dma_addr_t map(void* orig, size_t size, DmaDirection dir, uint64_t min_align_mask,
                   uint64_t alloc_align_mask, unsigned cpu, DmaError* err);
    // Ends the mapping that map() returned `dma` for: copies back for
    // from_device / bidirectional and frees its slots. False (and nothing
    // done) unless `dma` is the start of a live streaming mapping mapped with
    // exactly `size` and `dir`.
    bool unmap(dma_addr_t dma, size_t size, DmaDirection dir);
    // map() and unmap() through the owner's cache `c` (see SlotCache): the
    // same checks, copies and results. A mask-free map of at most
    // kCacheMaxBytes takes the best-fitting cached allocation that holds it
    // (page aligned from a page on); unmap keeps the allocation in `c` while
    // it has room. A map that finds the pool full drains `c` and tries
    // again, and on failure asks every other cache to drain.
    dma_addr_t map(SlotCache* c, void* orig, size_t size, DmaDirection dir, uint64_t min_align_mask,
                   unsigned cpu, DmaError* err);
    bool unmap(SlotCache* c, dma_addr_t dma, size_t size, DmaDirection dir);
    // Frees every allocation in `c` back to its area (teardown, pool
    // pressure); `c` is empty afterwards.
    void drain(SlotCache* c);

    // Ownership transfers on (part of) a live streaming mapping: [dma, dma +
    // size) must lie inside it and `dir` be the mapped direction; false
    // otherwise. sync_for_cpu copies out for from_device / bidirectional;
    // sync_for_device copies in for to_device / bidirectional.
    bool sync_for_cpu(dma_addr_t dma, size_t size, DmaDirection dir);
    bool sync_for_device(dma_addr_t dma, size_t size, DmaDirection dir);

    // Coherent memory inside the pool (rings): zeroed, aligned to `size`
    // rounded up to a power of two (at least a slot, at most a page). The
    // CPU pointer, or nullptr with `*err` filled in.
    void* alloc(size_t size, dma_addr_t* dma, unsigned cpu, DmaError* err);
    // False (and nothing freed) unless (cpu, size, dma) is exactly what alloc
    // returned and is still allocated.
    bool free(void* cpu, size_t size, dma_addr_t dma);

    // The largest mapping a device with this min_align_mask can always get:
    // a segment, less the slots its offset within an allocation can take.
    uint64_t max_mapping_size(uint64_t min_align_mask) const;

    Range pool() const { return pool_; }
    bool contains(dma_addr_t dma) const {
        return dma >= pool_.base && dma - pool_.base < pool_.size;
    }
    uint64_t total_slots() const { return nslots_; }
    unsigned area_count() const { return nareas_; }
    uint64_t page_size() const { return uint64_t{1} << page_shift_; }
    // Slots in use now (a snapshot; other vCPUs may be mapping).
    uint64_t used_slots() const;
    uint64_t area_used(unsigned area) const;
    // The area holding slot `slot` (for tests and diagnostics).
    unsigned area_of_slot(uint32_t slot) const;

    // Checks every invariant written below; nullptr when all hold, else a
    // description of the first one broken. The pool must be idle.
    const char* check_invariants() const;
    // Checks the invariants of SlotCache for `c` (its owner's view: the
    // owner must not be mapping); nullptr when all hold.
    const char* check_cache(const SlotCache& c) const;
    // Slots held by every cache (a scan of the records; the pool must be
    // idle): with check_cache, what shows a cached allocation is in a cache.
    uint64_t cached_slots() const;

    // Per-area state. Invariants (under `lock`):
    //   - the area owns slots [begin, end), end == begin + nslots; begin is a
    //     segment start, and so is end unless it is the pool's end;
    //   - used == the number of its slots that are allocated;
    //   - begin <= index < end: the slot where the next search starts.
    struct alignas(64) Area {
        SpinLock lock;
        uint32_t begin = 0;
        uint32_t end = 0;
        uint32_t nslots = 0;
        uint32_t used = 0;
        uint32_t index = 0;
    };

    // Per-slot record. Invariants (under the owning area's lock):
    //   - free_run == 0 exactly when the slot is allocated (head != kFree);
    //   - a free slot's free_run is the number of free slots from it up to
    //     the first allocated slot or the end of its segment, whichever comes
    //     first: 1 + the next slot's free_run if that slot is free and in the
    //     same segment, else 1;
    //   - every slot of an allocation [h, h + nslots) has head == h, and the
    //     allocation lies inside one segment (hence inside one area);
    //   - the fields marked "head" are meaningful in slot h only: the
    //     allocation's bounce start is pool.base + h * kSlotSize + offset, and
    //     offset + size <= nslots * kSlotSize.
    struct Slot {
        uint64_t orig = 0;    // head: the original buffer's CPU address (0: coherent)
        uint32_t size = 0;    // head: bytes mapped (or allocated, for coherent)
        uint32_t head = 0;    // first slot of the allocation holding this slot, or kFree
        uint32_t offset = 0;  // head: bounce start minus the head slot's start
        uint8_t nslots = 0;   // head: slots allocated, at most kSegmentSlots
        uint8_t area = 0;     // head: the area holding the allocation
        uint8_t free_run = 0; // see above; at most kSegmentSlots
        uint8_t kind = 0;     // head: Kind
    };
    static_assert(kSegmentSlots <= 0xff && kMaxAreas <= 0x100, "Slot's 8-bit fields");
    static constexpr uint32_t kFree = ~uint32_t{0};
    enum Kind : uint8_t {
        kind_free,
        kind_to_device,
        kind_from_device,
        kind_bidirectional,
        kind_coherent,
        kind_cached, // a freed streaming allocation kept by a SlotCache
    };

    // A cache of freed streaming allocations, owned by one caller (a
    // DmaDevice: by the DMA API's contract one thread at a time), which is
    // the only one that reads or writes it and the records of the
    // allocations in it; so it needs no lock. Invariants (checked by
    // check_cache):
    //   - count <= kCacheEntries; head[0..count) are distinct allocations:
    //     slots_[head[i]].head == head[i], its kind is kind_cached and its
    //     orig, size and offset are 0 (no mapping lives there: unmap, sync
    //     and free of an address in it are refused);
    //   - nslots[i] == slots_[head[i]].nslots <= kCacheMaxSlots, so an idle
    //     owner holds at most kCacheEntries * kCacheMaxSlots slots;
    //   - a kind_cached allocation is in exactly one cache, and its slots
    //     count in its area's `used` (they are not free to others);
    //   - epoch is the pool's drain epoch when the cache was last checked:
    //     while they differ the cache neither gives nor takes (it drains).
    static constexpr unsigned kCacheEntries = 8;
    static constexpr uint32_t kCacheMaxSlots = 16;
    static constexpr uint64_t kCacheMaxBytes = kCacheMaxSlots * kSlotSize; // 32 KiB
    struct SlotCache {
        uint32_t head[kCacheEntries] = {};
        uint8_t nslots[kCacheEntries] = {};
        uint32_t count = 0;
        uint32_t epoch = 0;
    };
    static_assert(kCacheMaxSlots <= kSegmentSlots, "a cached allocation is one allocation");

  private:
    // What a search looks for: `nslots` free slots in one segment whose first
    // slot's address A has (A & mask) == match. `mask` joins the allocation's
    // alignment (match has zeros there) and the min_align_mask bits above it.
    struct Request {
        uint32_t nslots;
        uint64_t mask; // 2^k - 1, at least kSlotSize - 1
        uint64_t match;
    };

    // What claim() records in an allocation's first slot.
    struct Record {
        uint64_t orig;   // the original buffer's CPU address; 0 for coherent memory
        uint32_t size;   // bytes mapped or allocated
        uint32_t offset; // bounce start minus the first slot's start
        uint8_t kind;    // Kind
    };

    // The hot path of every request:
    //   - take_at_index: only the candidate at area `a`'s search index (a
    //     map/unmap loop finds its slots there every time); -1 if it does not
    //     fit, and then map_searching() runs the full search from there;
    //   - claim: marks [s, s + n) allocated in area `a` and records `rec`;
    //   - release: frees the allocation whose first slot is `head`.
    // map's and unmap's fast paths call nothing but these (inlined) and, as
    // their last step (a tail call), the copy: the request and the record
    // stay in registers instead of being built on the stack for a callee.
    [[gnu::always_inline]] int64_t take_at_index(unsigned a, const Request& r, const Record& rec);
    [[gnu::always_inline]] void claim(Area& ar, unsigned a, uint32_t s, uint32_t n,
                                      const Record& rec);
    [[gnu::always_inline]] void release(uint32_t head);
    // unmap()'s checks: the head of the live streaming mapping that starts
    // at `dma` with exactly `size` and `dir`, else kFree.
    [[gnu::always_inline]] uint32_t lookup_exact(dma_addr_t dma, size_t size,
                                                 DmaDirection dir) const;
    // The cached map() beyond its fast path: a stale epoch, no fitting
    // entry, masks, errors; drains and retries when the pool is full.
    [[gnu::noinline]] dma_addr_t map_refilling(SlotCache* c, void* orig, size_t size,
                                               DmaDirection dir, uint64_t min_align_mask,
                                               unsigned cpu, DmaError* err);
    // The cached map() taking allocation `head` out of a cache for a new
    // mapping (slots and offset 0 kept, record rewritten, copied in).
    [[gnu::always_inline]] dma_addr_t reuse(uint32_t head, void* orig, size_t size, uint8_t kind,
                                            DmaError* err);
    static uint32_t best_fit(const SlotCache& c, uint32_t n, uint32_t align);
    // The cached unmap()'s last steps: the copy out for from_device /
    // bidirectional, then keep: `head` into `c` if it has room (else
    // release_uncached).
    [[gnu::noinline]] bool copy_out_and_keep(SlotCache* c, uint32_t head, dma_addr_t dma,
                                             size_t size);
    [[gnu::always_inline]] void keep(SlotCache* c, uint32_t head);
    // The cached unmap() when the allocation does not go into `c`.
    [[gnu::noinline]] void release_uncached(SlotCache* c, uint32_t head);
    uint32_t epoch() const { return __atomic_load_n(&drain_epoch_, __ATOMIC_RELAXED); }
    // The copy into the pool of a new mapping at `bounce`; returns `bounce`.
    [[gnu::noinline]] static dma_addr_t copy_in(dma_addr_t bounce, const void* orig, size_t size);
    // unmap's last steps for from_device / bidirectional.
    [[gnu::noinline]] bool copy_out_and_release(uint32_t head, dma_addr_t dma, size_t size);
    // map() beyond its fast path: requests with alignment masks, bad
    // arguments, and the full search when the index's candidate is taken.
    [[gnu::noinline]] dma_addr_t map_searching(void* orig, size_t size, DmaDirection dir,
                                               uint64_t min_align_mask, uint64_t alloc_align_mask,
                                               unsigned cpu, DmaError* err);
    // The full search for `r`, starting in the area of `cpu` and trying the
    // others in turn: the first slot of the allocation (claimed, `rec`
    // recorded), or -1 when no area has room.
    int64_t find_slots(const Request& r, unsigned cpu, const Record& rec);
    int64_t search_area(unsigned a, const Request& r, const Record& rec);
    // The request of map_searching(): DmaError::none and `*r`, `*offset`
    // filled in, or the kind of error for bad arguments and sizes.
    DmaError::Kind map_request(const void* orig, size_t size, uint8_t kind, uint64_t min_align_mask,
                               uint64_t alloc_align_mask, Request* r, uint64_t* offset) const;
    bool fits_empty_pool(const Request& r) const;
    // The live streaming mapping holding `dma` whose record covers [dma, dma
    // + size) with direction `dir`; kFree if there is none.
    uint32_t lookup_streaming(dma_addr_t dma, size_t size, DmaDirection dir) const;
    // The error of a map() that found no slots (or was refused), filled in.
    [[gnu::cold]] dma_addr_t map_failed(DmaError* err, DmaError::Kind kind, size_t size) const;
    uint64_t slot_addr(uint64_t slot) const { return pool_.base + (slot << kSlotShift); }
    uint32_t segment_end(uint32_t slot) const;

    Range pool_;
    Area* areas_ = nullptr;
    Slot* slots_ = nullptr;
    uint32_t nslots_ = 0;
    unsigned nareas_ = 0;
    unsigned page_shift_ = kPageShift;
    uint32_t area_slots_ = 0;     // nslots of every area but the last
    uint32_t page_slot_mask_ = 0; // slots in a page, less 1: page-aligned slot numbers have none
    // Bumped (atomically) by a map that found the pool full even after
    // draining its own cache; every cache drains when it sees a new value.
    uint32_t drain_epoch_ = 0;
};

} // namespace svmkit::guest
