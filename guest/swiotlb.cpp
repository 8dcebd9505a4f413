#include "guest/swiotlb.h"

#include <string.h>

namespace svmkit::guest {

namespace {

// The original buffer, from the CPU address recorded at map time (kept as an
// integer in the slot table, which is plain data).
uint8_t* orig_buffer(uint64_t orig) {
    // NOLINTNEXTLINE(performance-no-int-to-ptr): guest addresses are integers by nature
    return reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(orig));
}

inline void cpu_relax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__powerpc64__)
    asm volatile("or 1,1,1\n\tor 2,2,2" ::: "memory"); // HMT_low, HMT_medium
#else
    asm volatile("" ::: "memory");
#endif
}

// A mask of the form 2^k - 1 (including 0).
constexpr bool is_low_mask(uint64_t m) {
    return (m & (m + 1)) == 0;
}

constexpr uint64_t round_up_pow2(uint64_t v) {
    uint64_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

unsigned area_count_for(unsigned nareas) {
    uint64_t n = round_up_pow2(nareas == 0 ? 1 : nareas);
    return n > Swiotlb::kMaxAreas ? Swiotlb::kMaxAreas : static_cast<unsigned>(n);
}

uint8_t kind_of(DmaDirection dir) {
    switch (dir) {
    case DmaDirection::to_device:
        return Swiotlb::kind_to_device;
    case DmaDirection::from_device:
        return Swiotlb::kind_from_device;
    case DmaDirection::bidirectional:
        return Swiotlb::kind_bidirectional;
    }
    return Swiotlb::kind_free; // not a direction: matches no mapping
}

bool copies_out(DmaDirection dir) {
    return dir == DmaDirection::from_device || dir == DmaDirection::bidirectional;
}
bool copies_in(DmaDirection dir) {
    return dir == DmaDirection::to_device || dir == DmaDirection::bidirectional;
}

} // namespace

void SpinLock::lock() {
    for (;;) {
        if (__atomic_exchange_n(&word, 1u, __ATOMIC_ACQUIRE) == 0)
            return;
        while (__atomic_load_n(&word, __ATOMIC_RELAXED) != 0)
            cpu_relax();
    }
}

uint64_t Swiotlb::metadata_bytes(uint64_t nslots, unsigned nareas) {
    if (nslots > kMaxSlots)
        nslots = kMaxSlots;
    return area_count_for(nareas) * sizeof(Area) + nslots * sizeof(Slot);
}

Swiotlb::InitError Swiotlb::init(Range pool, unsigned nareas, void* metadata,
                                 uint64_t metadata_size, unsigned page_shift) {
    *this = Swiotlb{};
    if (page_shift < kSlotShift || (uint64_t{1} << page_shift) > kSegmentSize)
        return InitError::bad_page_shift;
    uint64_t end = 0;
    if (add_overflows(pool.base, pool.size, &end))
        return InitError::pool_too_large;
    if ((pool.base & ((uint64_t{1} << page_shift) - 1)) != 0 || pool.size % kSlotSize != 0)
        return InitError::pool_misaligned;
    uint64_t nslots = pool.size >> kSlotShift;
    if (nslots < kSegmentSlots)
        return InitError::pool_too_small;
    if (nslots > kMaxSlots)
        return InitError::pool_too_large;

    unsigned areas = area_count_for(nareas);
    uint64_t full_segments = nslots / kSegmentSlots;
    while (areas > full_segments)
        areas /= 2;
    uint64_t area_bytes = uint64_t{areas} * sizeof(Area);
    if (metadata_size < area_bytes + nslots * sizeof(Slot))
        return InitError::metadata_too_small;
    if (metadata == nullptr || reinterpret_cast<uintptr_t>(metadata) % kMetadataAlign != 0)
        return InitError::metadata_misaligned;

    pool_ = pool;
    nslots_ = static_cast<uint32_t>(nslots);
    nareas_ = areas;
    page_shift_ = page_shift;
    area_slots_ = static_cast<uint32_t>(full_segments / areas * kSegmentSlots);
    page_slot_mask_ = (1u << (page_shift - kSlotShift)) - 1;
    areas_ = static_cast<Area*>(metadata);
    slots_ = reinterpret_cast<Slot*>(static_cast<uint8_t*>(metadata) + area_bytes);

    for (unsigned a = 0; a < nareas_; ++a) {
        Area& ar = areas_[a];
        ar = Area{};
        ar.begin = a * area_slots_;
        ar.nslots = a + 1 < nareas_ ? area_slots_ : nslots_ - ar.begin;
        ar.end = ar.begin + ar.nslots;
        ar.index = ar.begin;
    }
    for (uint32_t i = 0; i < nslots_; ++i) {
        Slot& s = slots_[i];
        s = Slot{};
        s.head = kFree;
        s.free_run = static_cast<uint8_t>(segment_end(i) - i);
    }
    return InitError::none;
}

uint32_t Swiotlb::segment_end(uint32_t slot) const {
    uint32_t end = (slot / kSegmentSlots + 1) * kSegmentSlots;
    return end < nslots_ ? end : nslots_;
}

unsigned Swiotlb::area_of_slot(uint32_t slot) const {
    uint32_t a = slot / area_slots_;
    return a < nareas_ ? a : nareas_ - 1;
}

uint64_t Swiotlb::area_used(unsigned area) const {
    return area < nareas_ ? __atomic_load_n(&areas_[area].used, __ATOMIC_RELAXED) : 0;
}

uint64_t Swiotlb::used_slots() const {
    uint64_t used = 0;
    for (unsigned a = 0; a < nareas_; ++a)
        used += area_used(a);
    return used;
}

uint64_t Swiotlb::max_mapping_size(uint64_t min_align_mask) const {
    // The offset an allocation keeps for min_align_mask is below a slot, and
    // the first start slot with the right address bits is at most
    // (min_align_mask + 1) / kSlotSize - 1 slots into a segment: together
    // less than min_align_mask rounded up to a slot (Linux's rule).
    uint64_t lost = 0;
    if (min_align_mask != 0 && !align_up(min_align_mask, kSlotSize, &lost))
        return 0;
    return lost >= kSegmentSize ? 0 : kSegmentSize - lost;
}

dma_addr_t Swiotlb::map_failed(DmaError* err, DmaError::Kind kind, size_t size) const {
    if (err != nullptr) {
        err->kind = kind;
        err->size = size;
        err->total_slots = nslots_;
        err->used_slots = used_slots();
    }
    return kDmaMappingError;
}

// Marks [s, s + n) allocated in area `a` (whose lock the caller holds) and
// records `rec` in slot s. [s, s + n) must be free and inside one segment
// (slots[s].free_run >= n).
inline void Swiotlb::claim(Area& ar, unsigned a, uint32_t s, uint32_t n, const Record& rec) {
    Slot* const slots = slots_; // a local: the stores below could alias the member
    Slot& h = slots[s];
    h.orig = rec.orig;
    h.size = rec.size;
    h.head = s;
    h.offset = rec.offset;
    h.nslots = static_cast<uint8_t>(n);
    h.area = static_cast<uint8_t>(a);
    h.free_run = 0;
    h.kind = rec.kind;
    for (uint32_t i = s + 1; i < s + n; ++i) {
        slots[i].free_run = 0;
        slots[i].head = s;
    }
    // The free slots before s in its segment now run up to s.
    const uint32_t seg_start = s & ~(kSegmentSlots - 1);
    uint8_t count = 0;
    for (uint32_t i = s; i > seg_start && slots[i - 1].free_run != 0; --i)
        slots[i - 1].free_run = ++count;
    const uint32_t next = s + n;
    ar.index = next >= ar.end ? ar.begin : next;
    __atomic_store_n(&ar.used, ar.used + n, __ATOMIC_RELAXED);
}

// The first candidate of search_area(a, r, ...) alone, for a request without
// masks (r.match == 0, r.mask + 1 a slot or the page, so with the pool's base
// page aligned a slot's address fits when its index is a multiple of
// (r.mask + 1) / kSlotSize): the slot at the area's search index, if it fits
// and its free run holds `r.nslots` slots. Enough whenever the index sits on
// free slots (a map/unmap loop, an area filling up in order), and then much
// shorter than the search; when it fails, map_searching() searches from the
// same index on, so the result is what the search alone would give.
inline int64_t Swiotlb::take_at_index(unsigned a, const Request& r, const Record& rec) {
    Area& ar = areas_[a];
    ar.lock.lock();
    const uint32_t s = ar.index;
    if ((s & (r.mask >> kSlotShift)) == 0 && slots_[s].free_run >= r.nslots) {
        claim(ar, a, s, r.nslots, rec);
        ar.lock.unlock();
        return s;
    }
    ar.lock.unlock();
    return -1;
}

// Searches area `a` for `r.nslots` free slots in one segment whose first slot
// address A has (A & r.mask) == r.match. The acceptable addresses recur every
// mask + 1 bytes: from any slot the next candidate is ((match - A) & mask)
// bytes away, and after a candidate the next one is mask + 1 bytes on. Takes
// the area's lock; on success claims the slots and records `rec`.
int64_t Swiotlb::search_area(unsigned a, const Request& r, const Record& rec) {
    const uint64_t base = pool_.base;
    const uint32_t n = r.nslots;
    const uint64_t m = r.mask;
    const uint64_t match = r.match;
    const uint32_t stride = static_cast<uint32_t>((m >> kSlotShift) + 1);
    Area& ar = areas_[a];
    ar.lock.lock();
    const uint32_t begin = ar.begin;
    const uint32_t size = ar.nslots;
    if (n > size - ar.used) {
        ar.lock.unlock();
        return -1;
    }
    uint32_t idx = ar.index - begin;
    uint32_t checked = 0;
    while (checked < size) {
        const uint32_t s = begin + idx;
        uint32_t step = static_cast<uint32_t>(
            ((match - (base + (uint64_t{s} << kSlotShift))) & m) >> kSlotShift);
        if (step == 0) {
            if (slots_[s].free_run >= n) { // [s, s + n) is free and inside one segment
                claim(ar, a, s, n, rec);
                ar.lock.unlock();
                return s;
            }
            step = stride;
        }
        if (step >= size - idx) { // wrap to the area's start
            checked += size - idx;
            idx = 0;
        } else {
            checked += step;
            idx += step;
        }
    }
    ar.lock.unlock();
    return -1;
}

int64_t Swiotlb::find_slots(const Request& r, unsigned cpu, const Record& rec) {
    const unsigned start = cpu & (nareas_ - 1);
    unsigned a = start;
    do {
        int64_t s = search_area(a, r, rec);
        if (s >= 0)
            return s;
        a = (a + 1) & (nareas_ - 1);
    } while (a != start);
    return -1;
}

// Whether `r` fits an empty pool: every area holds a whole segment, and since
// M + 1 divides a segment's size, every segment offers the same candidate
// start slots, so checking the first segment answers for all.
bool Swiotlb::fits_empty_pool(const Request& r) const {
    const uint64_t m = r.mask;
    if (r.nslots > kSegmentSlots)
        return false;
    for (uint32_t k = 0; k + r.nslots <= kSegmentSlots; ++k)
        if (((r.match - slot_addr(k)) & m) == 0)
            return true;
    return false;
}

// Frees allocation `head` back to its area.
inline void Swiotlb::release(uint32_t head) {
    Slot* const slots = slots_; // a local: the stores below could alias the member
    const uint32_t total = nslots_;
    Slot& h = slots[head];
    Area& ar = areas_[h.area];
    ar.lock.lock();
    if (h.head != head || h.kind == kind_free) { // freed concurrently: a driver bug
        ar.lock.unlock();
        return;
    }
    const uint32_t n = h.nslots;
    const uint32_t end = head + n;
    // The freed run joins the free run after it (same segment only: a
    // segment ends at a multiple of kSegmentSlots or at the pool's end) ...
    uint8_t count = end % kSegmentSlots != 0 && end < total ? slots[end].free_run : 0;
    h.kind = kind_free; // the other head fields mean nothing once head == kFree
    for (uint32_t i = end; i > head; --i) {
        slots[i - 1].free_run = ++count;
        slots[i - 1].head = kFree;
    }
    // ... and the free slots before it in its segment run through it.
    const uint32_t seg_start = head & ~(kSegmentSlots - 1);
    for (uint32_t i = head; i > seg_start && slots[i - 1].free_run != 0; --i)
        slots[i - 1].free_run = ++count;
    // Freeing the area's latest allocation, or any below the search index,
    // moves the search back to it: the lowest free slots are reused first,
    // so requests in flight keep cycling through the same few, cache-hot
    // slots (a map/unmap loop through one; a queue of 8 through 8) instead
    // of walking the whole pool, whose lines would then come from memory
    // for every copy in, every device write and every copy out.
    if (head < ar.index || ar.index == (end >= ar.end ? ar.begin : end))
        ar.index = head;
    __atomic_store_n(&ar.used, ar.used - n, __ATOMIC_RELAXED);
    ar.lock.unlock();
}

DmaError::Kind Swiotlb::map_request(const void* orig, size_t size, uint8_t kind,
                                    uint64_t min_align_mask, uint64_t alloc_align_mask, Request* r,
                                    uint64_t* offset) const {
    if (nslots_ == 0 || orig == nullptr || size == 0 || kind == kind_free ||
        !is_low_mask(min_align_mask) || !is_low_mask(alloc_align_mask) ||
        (min_align_mask | alloc_align_mask) >= kSegmentSize)
        return DmaError::bad_argument;
    if (size > kSegmentSize)
        return DmaError::too_large;
    if ((min_align_mask | alloc_align_mask) == 0) { // map()'s fast case, its slots taken
        r->nslots = static_cast<uint32_t>((size + kSlotSize - 1) >> kSlotShift);
        r->mask = size >= page_size() ? page_size() - 1 : kSlotSize - 1;
        r->match = 0;
        *offset = 0;
        return DmaError::none;
    }
    // An explicit alloc_align_mask is a granule the allocation covers whole
    // (Linux's IOMMU use); it is at least a slot. The bits of min_align_mask
    // inside it are kept as the offset from the allocation's start; the ones
    // above must match in the start.
    const uint64_t orig_addr = ptr_gpa(orig);
    const bool whole_granules = alloc_align_mask != 0;
    alloc_align_mask |= kSlotSize - 1;
    *offset = orig_addr & min_align_mask & alloc_align_mask;
    uint64_t need = *offset + size;
    if (whole_granules)
        need = (need + alloc_align_mask) & ~alloc_align_mask;
    if (need > kSegmentSize)
        return DmaError::too_large;
    const uint64_t match_mask = min_align_mask & ~alloc_align_mask;
    r->nslots = static_cast<uint32_t>((need + kSlotSize - 1) >> kSlotShift);
    r->mask = alloc_align_mask | match_mask;
    r->match = orig_addr & match_mask;
    return DmaError::none;
}

dma_addr_t Swiotlb::copy_in(dma_addr_t bounce, const void* orig, size_t size) {
    // Always copy in, whatever the direction (CVE-2022-0854). Plain stores:
    // the slots are reused lowest first (release()), so their lines are
    // in cache, and the device's writes find them there.
    return ptr_gpa(memcpy(gpa_ptr(bounce), orig, size));
}

dma_addr_t Swiotlb::map(void* orig, size_t size, DmaDirection dir, uint64_t min_align_mask,
                        uint64_t alloc_align_mask, unsigned cpu, DmaError* err) {
    const uint8_t kind = kind_of(dir);
    if ((min_align_mask | alloc_align_mask) == 0 && size - 1 < kSegmentSize && orig != nullptr &&
        kind != kind_free && nslots_ != 0) {
        // The common case (virtio): slot aligned, page aligned from a page on;
        // and the slots at the search index are free (a map/unmap loop).
        // Success is written first (map_searching() writes over it if this
        // path does not take the slots), so `err` is not live across the
        // allocation.
        if (err != nullptr)
            *err = DmaError{};
        const uint64_t page = page_size();
        const Request r{static_cast<uint32_t>((size + kSlotSize - 1) >> kSlotShift),
                        size >= page ? page - 1 : kSlotSize - 1, 0};
        const int64_t head = take_at_index(
            cpu & (nareas_ - 1), r,
            Record{reinterpret_cast<uintptr_t>(orig), static_cast<uint32_t>(size), 0, kind});
        if (head >= 0)
            return copy_in(slot_addr(static_cast<uint64_t>(head)), orig, size);
    }
    return map_searching(orig, size, dir, min_align_mask, alloc_align_mask, cpu, err);
}

dma_addr_t Swiotlb::map_searching(void* orig, size_t size, DmaDirection dir,
                                  uint64_t min_align_mask, uint64_t alloc_align_mask, unsigned cpu,
                                  DmaError* err) {
    const uint8_t kind = kind_of(dir);
    Request r{};
    uint64_t offset = 0;
    const DmaError::Kind bad =
        map_request(orig, size, kind, min_align_mask, alloc_align_mask, &r, &offset);
    if (bad != DmaError::none)
        return map_failed(err, bad, size);
    const Record rec{reinterpret_cast<uintptr_t>(orig), static_cast<uint32_t>(size),
                     static_cast<uint32_t>(offset), kind};
    const int64_t head = find_slots(r, cpu, rec);
    if (head < 0)
        return map_failed(err, fits_empty_pool(r) ? DmaError::pool_full : DmaError::too_large,
                          size);
    if (err != nullptr)
        *err = DmaError{};
    return copy_in(slot_addr(static_cast<uint64_t>(head)) + offset, orig, size);
}

uint32_t Swiotlb::lookup_streaming(dma_addr_t dma, size_t size, DmaDirection dir) const {
    if (!contains(dma) || size == 0)
        return kFree;
    const uint32_t head = slots_[(dma - pool_.base) >> kSlotShift].head;
    if (head == kFree)
        return kFree;
    const Slot& h = slots_[head];
    if (h.kind != kind_of(dir) || h.kind == kind_coherent || h.kind == kind_free)
        return kFree;
    const uint64_t start = slot_addr(head) + h.offset;
    if (dma < start || dma - start > h.size || size > h.size - (dma - start))
        return kFree;
    return head;
}

// lookup_streaming's checks, narrowed to "exactly the mapping's start and
// size": the hot path of every request.
inline uint32_t Swiotlb::lookup_exact(dma_addr_t dma, size_t size, DmaDirection dir) const {
    const uint64_t rel = dma - pool_.base; // wraps when dma < base: then >= pool_.size
    if (rel >= pool_.size)
        return kFree;
    const uint32_t head = slots_[rel >> kSlotShift].head;
    if (head == kFree)
        return kFree;
    const Slot& h = slots_[head];
    const uint8_t kind = kind_of(dir);
    if (h.kind != kind || kind == kind_free || rel != (uint64_t{head} << kSlotShift) + h.offset ||
        size != h.size)
        return kFree;
    return head;
}

bool Swiotlb::unmap(dma_addr_t dma, size_t size, DmaDirection dir) {
    const uint32_t head = lookup_exact(dma, size, dir);
    if (head == kFree)
        return false;
    if (copies_out(dir))
        return copy_out_and_release(head, dma, size);
    release(head);
    return true;
}

bool Swiotlb::copy_out_and_release(uint32_t head, dma_addr_t dma, size_t size) {
    memcpy(orig_buffer(slots_[head].orig), gpa_ptr(dma), size);
    release(head);
    return true;
}

inline dma_addr_t Swiotlb::reuse(uint32_t head, void* orig, size_t size, uint8_t kind,
                                 DmaError* err) {
    // The allocation keeps its slots, area and offset 0; only the mapping's
    // part of the record is new.
    Slot& h = slots_[head];
    h.orig = reinterpret_cast<uintptr_t>(orig);
    h.size = static_cast<uint32_t>(size);
    h.kind = kind;
    if (err != nullptr)
        *err = DmaError{};
    return copy_in(slot_addr(head), orig, size);
}

dma_addr_t Swiotlb::map(SlotCache* c, void* orig, size_t size, DmaDirection dir,
                        uint64_t min_align_mask, unsigned cpu, DmaError* err) {
    const uint8_t kind = kind_of(dir);
    const uint32_t count = c->count;
    if (min_align_mask == 0 && size - 1 < kCacheMaxBytes && orig != nullptr && kind != kind_free &&
        count != 0 && c->epoch == epoch()) {
        // The common case: the last allocation unmapped is just as large
        // (a map/unmap loop, a queue reusing its buffers). From a page on
        // the start must be page aligned (the pool's base is, so the slot
        // index is what counts).
        const uint32_t top = count - 1;
        const uint32_t head = c->head[top];
        const uint32_t align = size >= page_size() ? page_slot_mask_ : 0;
        if (c->nslots[top] == ((size + kSlotSize - 1) >> kSlotShift) && (head & align) == 0) {
            c->count = top;
            return reuse(head, orig, size, kind, err);
        }
    }
    return map_refilling(c, orig, size, dir, min_align_mask, cpu, err);
}

// The best fit in `c` for a mask-free request of `n` slots (page aligned
// when `align` is not 0): the entry closest to the top that is just as
// large, else the smallest larger one; its index, or kCacheEntries.
uint32_t Swiotlb::best_fit(const SlotCache& c, uint32_t n, uint32_t align) {
    uint32_t best = kCacheEntries;
    for (uint32_t i = c.count; i-- > 0;) {
        const uint32_t have = c.nslots[i];
        if (have < n || (c.head[i] & align) != 0)
            continue;
        if (best == kCacheEntries || have < c.nslots[best])
            best = i;
        if (have == n)
            break;
    }
    return best;
}

dma_addr_t Swiotlb::map_refilling(SlotCache* c, void* orig, size_t size, DmaDirection dir,
                                  uint64_t min_align_mask, unsigned cpu, DmaError* err) {
    if (c->epoch != epoch())
        drain(c); // another map found the pool full: give the slots back first
    const uint8_t kind = kind_of(dir);
    if (min_align_mask == 0 && size - 1 < kCacheMaxBytes && orig != nullptr && kind != kind_free) {
        const uint32_t n = static_cast<uint32_t>((size + kSlotSize - 1) >> kSlotShift);
        const uint32_t best = best_fit(*c, n, size >= page_size() ? page_slot_mask_ : 0);
        if (best != kCacheEntries) {
            const uint32_t head = c->head[best];
            const uint32_t last = c->count - 1;
            c->head[best] = c->head[last];
            c->nslots[best] = c->nslots[last];
            c->count = last;
            return reuse(head, orig, size, kind, err);
        }
    }
    DmaError local{};
    if (err == nullptr)
        err = &local;
    dma_addr_t dma = map(orig, size, dir, min_align_mask, 0, cpu, err);
    if (dma != kDmaMappingError || err->kind != DmaError::pool_full)
        return dma;
    if (c->count != 0) { // our own cache first: it may be all that is missing
        drain(c);
        dma = map(orig, size, dir, min_align_mask, 0, cpu, err);
        if (dma != kDmaMappingError || err->kind != DmaError::pool_full)
            return dma;
    }
    // Still full: every other cache drains at its owner's next map or unmap
    // (a block driver waiting here reaps its completions, whose unmaps then
    // free instead of caching). Our cache is empty, so it is up to date.
    c->epoch = __atomic_add_fetch(&drain_epoch_, 1, __ATOMIC_RELAXED);
    return dma;
}

bool Swiotlb::unmap(SlotCache* c, dma_addr_t dma, size_t size, DmaDirection dir) {
    const uint32_t head = lookup_exact(dma, size, dir);
    if (head == kFree)
        return false;
    if (copies_out(dir))
        return copy_out_and_keep(c, head, dma, size);
    keep(c, head);
    return true;
}

bool Swiotlb::copy_out_and_keep(SlotCache* c, uint32_t head, dma_addr_t dma, size_t size) {
    memcpy(orig_buffer(slots_[head].orig), gpa_ptr(dma), size);
    keep(c, head);
    return true;
}

inline void Swiotlb::keep(SlotCache* c, uint32_t head) {
    Slot& h = slots_[head];
    const uint32_t count = c->count;
    if (h.nslots <= kCacheMaxSlots && count < kCacheEntries && c->epoch == epoch()) {
        h.orig = 0;
        h.size = 0;
        h.offset = 0; // a min_align_mask mapping's offset: the cached map starts at the slot
        h.kind = kind_cached;
        c->head[count] = head;
        c->nslots[count] = h.nslots;
        c->count = count + 1;
        return;
    }
    release_uncached(c, head);
}

void Swiotlb::release_uncached(SlotCache* c, uint32_t head) {
    release(head);
    if (c->epoch != epoch())
        drain(c);
}

void Swiotlb::drain(SlotCache* c) {
    // Read the epoch first: a bump after this read is seen at the next check.
    const uint32_t now = epoch();
    for (uint32_t i = 0; i < c->count; ++i)
        release(c->head[i]);
    c->count = 0;
    c->epoch = now;
}

bool Swiotlb::sync_for_cpu(dma_addr_t dma, size_t size, DmaDirection dir) {
    const uint32_t head = lookup_streaming(dma, size, dir);
    if (head == kFree)
        return false;
    const Slot& h = slots_[head];
    if (copies_out(dir)) {
        const uint64_t at = dma - (slot_addr(head) + h.offset);
        memcpy(orig_buffer(h.orig) + at, gpa_ptr(dma), size);
    }
    return true;
}

bool Swiotlb::sync_for_device(dma_addr_t dma, size_t size, DmaDirection dir) {
    const uint32_t head = lookup_streaming(dma, size, dir);
    if (head == kFree)
        return false;
    const Slot& h = slots_[head];
    if (copies_in(dir)) {
        const uint64_t at = dma - (slot_addr(head) + h.offset);
        memcpy(gpa_ptr(dma), orig_buffer(h.orig) + at, size);
    }
    return true;
}

void* Swiotlb::alloc(size_t size, dma_addr_t* dma, unsigned cpu, DmaError* err) {
    if (nslots_ == 0 || size == 0 || dma == nullptr) {
        map_failed(err, DmaError::bad_argument, size);
        return nullptr;
    }
    if (size > kSegmentSize) {
        map_failed(err, DmaError::too_large, size);
        return nullptr;
    }
    uint64_t align = round_up_pow2(size);
    if (align > page_size())
        align = page_size();
    if (align < kSlotSize)
        align = kSlotSize;
    Request r{};
    r.nslots = static_cast<uint32_t>((size + kSlotSize - 1) >> kSlotShift);
    r.mask = align - 1;
    const int64_t head =
        find_slots(r, cpu, Record{0, static_cast<uint32_t>(size), 0, kind_coherent});
    if (head < 0) {
        map_failed(err, fits_empty_pool(r) ? DmaError::pool_full : DmaError::too_large, size);
        return nullptr;
    }
    *dma = slot_addr(static_cast<uint64_t>(head));
    void* p = gpa_ptr(*dma);
    memset(p, 0, size);
    if (err != nullptr)
        *err = DmaError{};
    return p;
}

bool Swiotlb::free(void* cpu, size_t size, dma_addr_t dma) {
    if (cpu == nullptr || !contains(dma) || ptr_gpa(cpu) != dma ||
        (dma - pool_.base) % kSlotSize != 0)
        return false;
    const uint32_t head = static_cast<uint32_t>((dma - pool_.base) >> kSlotShift);
    const Slot& h = slots_[head];
    if (h.head != head || h.kind != kind_coherent || h.size != size)
        return false;
    release(head);
    return true;
}

const char* Swiotlb::check_invariants() const {
    if (nslots_ == 0)
        return "not initialised";
    uint32_t expect_begin = 0;
    for (unsigned a = 0; a < nareas_; ++a) {
        const Area& ar = areas_[a];
        if (ar.begin != expect_begin || ar.begin % kSegmentSlots != 0 || ar.nslots == 0)
            return "areas do not tile the pool at segment starts";
        if (ar.end != ar.begin + ar.nslots)
            return "area end is not its begin plus its size";
        if (ar.index < ar.begin || ar.index >= ar.end)
            return "area search index outside its area";
        uint32_t used = 0;
        for (uint32_t i = ar.begin; i < ar.begin + ar.nslots; ++i)
            used += slots_[i].head != kFree ? 1 : 0;
        if (used != ar.used)
            return "area used count differs from its allocated slots";
        expect_begin = ar.begin + ar.nslots;
    }
    if (expect_begin != nslots_)
        return "areas do not cover the pool";
    for (uint32_t i = nslots_; i-- > 0;) {
        const Slot& s = slots_[i];
        if (s.head == kFree) {
            uint32_t next =
                i + 1 < segment_end(i) && slots_[i + 1].head == kFree ? slots_[i + 1].free_run : 0;
            if (s.free_run != next + 1)
                return "free slot with a wrong free-run count";
            continue;
        }
        if (s.free_run != 0)
            return "allocated slot with a free-run count";
        if (s.head > i)
            return "slot names a head after it";
        const Slot& h = slots_[s.head];
        if (h.head != s.head || h.kind == kind_free || h.nslots == 0)
            return "slot names a head that is not an allocation";
        if (i >= s.head + h.nslots)
            return "slot outside the allocation it names";
        if (s.head + h.nslots > segment_end(s.head))
            return "allocation crosses a segment";
        if (h.area != area_of_slot(s.head))
            return "allocation records another area than the one holding it";
        if (uint64_t{h.offset} + h.size > uint64_t{h.nslots} * kSlotSize)
            return "allocation record larger than its slots";
        if ((h.kind == kind_coherent || h.kind == kind_cached) != (h.orig == 0))
            return "coherent or cached allocation with an original buffer, or mapping without one";
        if (h.kind == kind_cached && (h.size != 0 || h.offset != 0))
            return "cached allocation with a mapping's size or offset";
    }
    return nullptr;
}

const char* Swiotlb::check_cache(const SlotCache& c) const {
    if (c.count > kCacheEntries)
        return "cache holds more than kCacheEntries";
    for (uint32_t i = 0; i < c.count; ++i) {
        const uint32_t head = c.head[i];
        if (head >= nslots_ || slots_[head].head != head)
            return "cache entry is not the head of an allocation";
        const Slot& h = slots_[head];
        if (h.kind != kind_cached || h.orig != 0 || h.size != 0 || h.offset != 0)
            return "cache entry's allocation is not marked cached";
        if (c.nslots[i] != h.nslots || h.nslots > kCacheMaxSlots)
            return "cache entry's size differs from its allocation or exceeds kCacheMaxSlots";
        for (uint32_t j = 0; j < i; ++j)
            if (c.head[j] == head)
                return "cache holds an allocation twice";
    }
    return nullptr;
}

uint64_t Swiotlb::cached_slots() const {
    uint64_t cached = 0;
    for (uint32_t i = 0; i < nslots_; ++i) {
        const uint32_t head = slots_[i].head;
        cached += head != kFree && slots_[head].kind == kind_cached ? 1 : 0;
    }
    return cached;
}

} // namespace svmkit::guest
