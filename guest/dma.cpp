#include "guest/dma.h"

#include "guest/swiotlb.h"
#include "guest/zalloc.h"

#include <string.h>

namespace svmkit::guest {

namespace {

// Appends to a bounded, always NUL-terminated line.
struct LineWriter {
    char* out;
    size_t cap;
    size_t len = 0;

    void str(const char* s) {
        for (; *s != '\0'; ++s)
            put(*s);
    }
    void dec(uint64_t v) {
        char digits[20];
        int n = 0;
        do {
            digits[n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (n > 0)
            put(digits[--n]);
    }
    void put(char c) {
        if (cap != 0 && len + 1 < cap)
            out[len++] = c;
    }
    size_t finish() {
        if (cap != 0)
            out[len] = '\0';
        return len;
    }
};

uint64_t coherent_alignment(size_t size, uint64_t floor) {
    uint64_t align = floor;
    while (align < size && align < kPageSize)
        align <<= 1;
    return align;
}

} // namespace

size_t describe_dma_error(const DmaError& e, char* out, size_t cap) {
    LineWriter w{out, cap};
    switch (e.kind) {
    case DmaError::none:
        w.str("no DMA error");
        break;
    case DmaError::pool_full:
        w.str("swiotlb buffer is full (sz: ");
        w.dec(e.size);
        w.str(" bytes), total ");
        w.dec(e.total_slots);
        w.str(" (slots), used ");
        w.dec(e.used_slots);
        w.str(" (slots)");
        break;
    case DmaError::too_large:
        w.str("swiotlb cannot map ");
        w.dec(e.size);
        w.str(" bytes: larger than a 256 KiB segment allows, total ");
        w.dec(e.total_slots);
        w.str(" (slots)");
        break;
    case DmaError::bad_argument:
        w.str("DMA mapping refused: bad argument (sz: ");
        w.dec(e.size);
        w.str(" bytes)");
        break;
    }
    return w.finish();
}

DmaDevice DmaDevice::direct(BumpArena* coherent) {
    DmaDevice d;
    d.coherent_ = coherent;
    return d;
}

DmaDevice DmaDevice::restricted(Swiotlb* pool, uint64_t min_align_mask) {
    DmaDevice d;
    d.pool_ = pool;
    d.min_align_mask_ = min_align_mask;
    return d;
}

DmaDevice& DmaDevice::operator=(DmaDevice&& other) noexcept {
    if (this != &other) {
        drain_cache();
        take(other);
    }
    return *this;
}

void DmaDevice::take(DmaDevice& other) {
    pool_ = other.pool_;
    coherent_ = other.coherent_;
    min_align_mask_ = other.min_align_mask_;
    error_ = other.error_;
    cache_ = other.cache_;
    other.pool_ = nullptr;
    other.coherent_ = nullptr;
    other.cache_ = Swiotlb::SlotCache{};
}

void DmaDevice::drain_cache() {
    if (pool_ != nullptr)
        pool_->drain(&cache_);
}

uint64_t DmaDevice::cached_slots() const {
    uint64_t slots = 0;
    for (uint32_t i = 0; i < cache_.count; ++i)
        slots += cache_.nslots[i];
    return slots;
}

dma_addr_t DmaDevice::map_single(void* cpu, size_t size, DmaDirection dir, unsigned cpu_index) {
    if (pool_ != nullptr)
        return pool_->map(&cache_, cpu, size, dir, min_align_mask_, cpu_index, &error_);
    if (cpu == nullptr || size == 0) {
        error_ = DmaError{DmaError::bad_argument, size, 0, 0};
        return kDmaMappingError;
    }
    error_ = DmaError{};
    return ptr_gpa(cpu);
}

bool DmaDevice::unmap_single(dma_addr_t dma, size_t size, DmaDirection dir) {
    return pool_ == nullptr || pool_->unmap(&cache_, dma, size, dir);
}

bool DmaDevice::map_sg(DmaSegment* segs, size_t count, DmaDirection dir, unsigned cpu_index) {
    for (size_t i = 0; i < count; ++i) {
        segs[i].dma = map_single(segs[i].cpu, segs[i].size, dir, cpu_index);
        if (segs[i].dma != kDmaMappingError)
            continue;
        // Undo the ones mapped; unmap leaves error_ alone. With the pool
        // full their slots go back to it, not to our cache: a request that
        // waits for room holds no part of the pool while it waits.
        for (size_t j = i; j > 0; --j) {
            unmap_single(segs[j - 1].dma, segs[j - 1].size, dir);
            segs[j - 1].dma = kDmaMappingError;
        }
        if (error_.kind == DmaError::pool_full)
            drain_cache();
        return false;
    }
    return true;
}

bool DmaDevice::unmap_sg(DmaSegment* segs, size_t count, DmaDirection dir) {
    bool ok = true;
    for (size_t i = 0; i < count; ++i) {
        ok = unmap_single(segs[i].dma, segs[i].size, dir) && ok;
        segs[i].dma = kDmaMappingError;
    }
    return ok;
}

bool DmaDevice::sync_for_cpu(dma_addr_t dma, size_t size, DmaDirection dir) {
    return pool_ == nullptr || pool_->sync_for_cpu(dma, size, dir);
}

bool DmaDevice::sync_for_device(dma_addr_t dma, size_t size, DmaDirection dir) {
    return pool_ == nullptr || pool_->sync_for_device(dma, size, dir);
}

dma_addr_t DmaDevice::map_single_wait(void* cpu, size_t size, DmaDirection dir, DmaWaitFn wait,
                                      void* ctx, unsigned cpu_index) {
    for (;;) {
        dma_addr_t dma = map_single(cpu, size, dir, cpu_index);
        if (dma != kDmaMappingError || error_.kind != DmaError::pool_full || wait == nullptr ||
            !wait(ctx))
            return dma;
    }
}

bool DmaDevice::map_sg_wait(DmaSegment* segs, size_t count, DmaDirection dir, DmaWaitFn wait,
                            void* ctx, unsigned cpu_index) {
    for (;;) {
        if (map_sg(segs, count, dir, cpu_index))
            return true;
        if (error_.kind != DmaError::pool_full || wait == nullptr || !wait(ctx))
            return false;
    }
}

void* DmaDevice::alloc_coherent(size_t size, dma_addr_t* dma) {
    if (pool_ != nullptr)
        return pool_->alloc(size, dma, 0, &error_);
    if (coherent_ == nullptr || size == 0 || dma == nullptr) {
        error_ = DmaError{DmaError::bad_argument, size, 0, 0};
        return nullptr;
    }
    // Align the address itself (the arena's base need not be aligned).
    const uint64_t align = coherent_alignment(size, 16);
    const uint64_t base = reinterpret_cast<uintptr_t>(coherent_->base);
    uint64_t here = 0;
    uint64_t start = 0;
    uint64_t end = 0;
    if (add_overflows(base, coherent_->used, &here) || !align_up(here, align, &start) ||
        add_overflows(start - base, size, &end) || end > coherent_->size) {
        error_ = DmaError{DmaError::pool_full, size, 0, 0};
        return nullptr;
    }
    coherent_->used = end;
    void* p = coherent_->base + (start - base);
    memset(p, 0, size);
    *dma = ptr_gpa(p);
    error_ = DmaError{};
    return p;
}

bool DmaDevice::free_coherent(void* cpu, size_t size, dma_addr_t dma) {
    return pool_ == nullptr || pool_->free(cpu, size, dma);
}

uint64_t DmaDevice::max_mapping_size() const {
    return pool_ != nullptr ? pool_->max_mapping_size(min_align_mask_) : ~uint64_t{0};
}

} // namespace svmkit::guest
