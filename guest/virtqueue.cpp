#include "guest/virtqueue.h"

#include <string.h>

namespace svmkit::guest {

namespace {

// Device-written fields are loaded through these: exactly one load the
// compiler cannot repeat or split (the TOCTOU rule), acquire for used idx so
// the elements it publishes are read after it.
inline uint16_t load_acquire(const uint16_t* p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
inline uint32_t load_once(const uint32_t* p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
inline uint16_t load_once(const uint16_t* p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

bool power_of_two(uint32_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}

} // namespace

VirtioErr Virtqueue::init(DmaDevice* dma, uint16_t index, uint16_t size, VirtioReport* report,
                          const char* who, bool event_idx) {
    report_ = report;
    who_ = who != nullptr ? who : "virtio";
    index_ = index;
    if (dma == nullptr || !power_of_two(size) || size > kVirtqMaxSize || rings_ != nullptr) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::bad_argument, who_)
                .str("queue ")
                .dec(index)
                .str(": bad queue size ")
                .dec(size)
                .end();
        return VirtioErr::bad_argument;
    }
    // desc[Q] (align 16) | avail (align 2) | pad | used (align 4).
    avail_offset_ = 16 * uint64_t{size};
    used_offset_ = (avail_offset_ + virtq_avail_bytes(size) + 3) & ~uint64_t{3};
    rings_bytes_ = used_offset_ + virtq_used_bytes(size);
    dma_addr_t at = 0;
    void* mem = dma->alloc_coherent(rings_bytes_, &at);
    if (mem == nullptr || (reinterpret_cast<uintptr_t>(mem) & 15) != 0 || (at & 15) != 0) {
        if (mem != nullptr)
            dma->free_coherent(mem, rings_bytes_, at);
        if (report_ != nullptr)
            report_->begin(VirtioErr::no_memory, who_)
                .str("queue ")
                .dec(index)
                .str(": no 16-byte aligned coherent memory for ")
                .dec(rings_bytes_)
                .str(" bytes of rings")
                .end();
        return VirtioErr::no_memory;
    }
    dma_ = dma;
    rings_ = static_cast<uint8_t*>(mem);
    rings_dma_ = at;
    table_ = reinterpret_cast<VirtqDesc*>(rings_);
    avail_ = reinterpret_cast<VirtqAvailHeader*>(rings_ + avail_offset_);
    avail_ring_ = reinterpret_cast<uint16_t*>(rings_ + avail_offset_ + 4);
    used_ = reinterpret_cast<VirtqUsedHeader*>(rings_ + used_offset_);
    used_ring_ = reinterpret_cast<VirtqUsedElem*>(rings_ + used_offset_ + 4);
    used_event_ = reinterpret_cast<uint16_t*>(rings_ + avail_offset_ + 4 + 2 * uint64_t{size});
    avail_event_ =
        reinterpret_cast<const uint16_t*>(rings_ + used_offset_ + 4 + 8 * uint64_t{size});
    event_idx_ = event_idx;
    bad_avail_events_ = 0;
    size_ = size;
    for (uint16_t i = 0; i < size; ++i) {
        desc_[i] = VirtqDesc{0, 0, 0, static_cast<uint16_t>(i + 1)};
        state_[i] = kFree;
        completed_[i] = false;
        token_[i] = nullptr;
        chain_len_[i] = 0;
        writable_[i] = 0;
    }
    free_head_ = 0;
    num_free_ = size;
    in_flight_ = 0;
    avail_idx_ = 0;
    last_used_ = 0;
    used_seen_ = 0;
    unnotified_ = 0;
    broken_ = VirtioErr::none;
    disable_interrupts(); // the owner asks for them before it sleeps
    return VirtioErr::none;
}

void Virtqueue::destroy() {
    if (rings_ != nullptr)
        dma_->free_coherent(rings_, rings_bytes_, rings_dma_);
    rings_ = nullptr;
    table_ = nullptr;
    avail_ = nullptr;
    avail_ring_ = nullptr;
    used_ = nullptr;
    used_ring_ = nullptr;
    used_event_ = nullptr;
    avail_event_ = nullptr;
    size_ = 0;
    num_free_ = 0;
    in_flight_ = 0;
}

VirtioErr Virtqueue::add(const VirtqBuffer* bufs, uint16_t count, void* token) {
    if (broken())
        return VirtioErr::queue_broken;
    if (rings_ == nullptr || bufs == nullptr || count == 0 || count > size_)
        return VirtioErr::bad_argument;
    uint64_t total = 0;
    uint64_t writable = 0;
    bool seen_writable = false;
    for (uint16_t i = 0; i < count; ++i) {
        if (bufs[i].len == 0 || (seen_writable && !bufs[i].device_writes))
            return VirtioErr::bad_argument;
        seen_writable = bufs[i].device_writes;
        total += bufs[i].len;
        if (bufs[i].device_writes)
            writable += bufs[i].len;
    }
    if (total > 0xffffffffu) // the specification's limit for one chain
        return VirtioErr::bad_argument;
    if (num_free_ < count)
        return VirtioErr::queue_full;

    // Take `count` descriptors off the private free list, fill the private
    // copy first, then write the shared entry from it.
    const uint16_t head = free_head_;
    uint16_t i = head;
    for (uint16_t n = 0; n < count; ++n) {
        const uint16_t next_free = desc_[i].next;
        const bool last = n + 1 == count;
        desc_[i].addr = bufs[n].addr;
        desc_[i].len = bufs[n].len;
        desc_[i].flags = static_cast<uint16_t>((bufs[n].device_writes ? kVirtqDescFWrite : 0) |
                                               (last ? 0 : kVirtqDescFNext));
        desc_[i].next = last ? 0 : next_free;
        state_[i] = n == 0 ? kHead : kBody;
        completed_[i] = false;
        table_[i] = desc_[i];
        if (last)
            free_head_ = next_free;
        else
            i = next_free;
    }
    num_free_ = static_cast<uint16_t>(num_free_ - count);
    token_[head] = token;
    chain_len_[head] = count;
    writable_[head] = static_cast<uint32_t>(writable);
    ++in_flight_;

    avail_ring_[avail_idx_ & (size_ - 1)] = head;
    ++avail_idx_;
    // The descriptors and the ring entry become visible before the new idx.
    __atomic_store_n(&avail_->idx, avail_idx_, __ATOMIC_RELEASE);
    ++unnotified_;
    return VirtioErr::none;
}

bool Virtqueue::needs_notify() {
    if (rings_ == nullptr || broken() || unnotified_ == 0)
        return false;
    const uint16_t published = unnotified_;
    unnotified_ = 0;
    // The idx store must be visible before the hint is read, or a device
    // going to sleep between the two would never see the new chains.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!event_idx_) {
        const uint16_t flags = load_once(&used_->flags);
        return (flags & kVirtqUsedFNoNotify) == 0;
    }
    // The device asks for a kick once avail idx passes avail_event: notify
    // when the chains published since the last decision,
    // [avail_idx_ - published, avail_idx_), include that index. A device's
    // next chain to take lies in [avail_idx_ - size_, avail_idx_]; any other
    // value is a lie or garbage, and notifying is the safe answer.
    const uint16_t event = load_once(avail_event_);
    if (static_cast<uint16_t>(avail_idx_ - event) > size_) {
        ++bad_avail_events_;
        return true;
    }
    return static_cast<uint16_t>(avail_idx_ - event - 1) < published;
}

// With EVENT_IDX, "no interrupt" is a used_event the device cannot reach
// before the driver writes it again: half the index space away.
void Virtqueue::disable_interrupts() {
    if (rings_ == nullptr)
        return;
    if (event_idx_)
        __atomic_store_n(used_event_, static_cast<uint16_t>(last_used_ + 0x8000), __ATOMIC_RELAXED);
    else
        __atomic_store_n(&avail_->flags, kVirtqAvailFNoInterrupt, __ATOMIC_RELAXED);
}

bool Virtqueue::enable_interrupts(uint16_t after) {
    if (rings_ == nullptr || broken())
        return false;
    if (event_idx_) {
        // The device notifies when it publishes used entry `used_event`: the
        // `after`-th completion from now.
        if (after == 0 || after > in_flight_)
            after = 1;
        __atomic_store_n(used_event_, static_cast<uint16_t>(last_used_ + after - 1),
                         __ATOMIC_RELAXED);
    } else {
        __atomic_store_n(&avail_->flags, uint16_t{0}, __ATOMIC_RELAXED);
    }
    // The flag store must be visible before used idx is read again: a device
    // publishing in between either sees the flag clear (and notifies) or is
    // seen here.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return !has_used() && !broken();
}

void Virtqueue::violation(VirtioErr why) {
    mark_broken(why);
    if (report_ != nullptr)
        report_->str("; queue ").dec(index_).str(" marked broken").end();
}

void Virtqueue::mark_broken(VirtioErr why) {
    if (broken_ == VirtioErr::none)
        broken_ = why;
}

bool Virtqueue::refresh_used_idx() {
    const uint16_t idx = load_acquire(&used_->idx);
    const uint16_t fresh = static_cast<uint16_t>(idx - last_used_);
    // Completions can never outnumber the chains in flight (at most the queue
    // size); idx moving backwards shows up here as a huge count too.
    if (fresh > in_flight_) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::used_idx, who_)
                .str("queue ")
                .dec(index_)
                .str(": used idx moved from ")
                .dec(last_used_)
                .str(" to ")
                .dec(idx)
                .str(", ")
                .dec(fresh)
                .str(" completions with ")
                .dec(in_flight_)
                .str(" chains in flight (queue size ")
                .dec(size_)
                .str(")");
        violation(VirtioErr::used_idx);
        return false;
    }
    used_seen_ = idx;
    return true;
}

bool Virtqueue::has_used() {
    if (rings_ == nullptr || broken())
        return false;
    if (used_seen_ != last_used_)
        return true;
    return refresh_used_idx() && used_seen_ != last_used_;
}

bool Virtqueue::get_used(void** token, uint32_t* len) {
    if (!has_used())
        return false;
    const VirtqUsedElem* e = &used_ring_[last_used_ & (size_ - 1)];
    const uint32_t id = load_once(&e->id);
    const uint32_t written = load_once(&e->len);

    if (id >= size_) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::used_id_range, who_)
                .str("queue ")
                .dec(index_)
                .str(": used id ")
                .dec(id)
                .str(" out of range (queue size ")
                .dec(size_)
                .str(")");
        violation(VirtioErr::used_id_range);
        return false;
    }
    if (state_[id] != kHead) {
        const VirtioErr why = completed_[id] ? VirtioErr::used_twice : VirtioErr::used_not_head;
        if (report_ != nullptr) {
            report_->begin(why, who_).str("queue ").dec(index_).str(": used id ").dec(id);
            if (why == VirtioErr::used_twice)
                report_->str(" completed twice");
            else if (state_[id] == kBody)
                report_->str(" is inside a chain, not its head");
            else
                report_->str(" is not in flight");
        }
        violation(why);
        return false;
    }
    if (written > writable_[id]) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::used_len, who_)
                .str("queue ")
                .dec(index_)
                .str(": used len ")
                .dec(written)
                .str(" for chain ")
                .dec(id)
                .str(" exceeds its ")
                .dec(writable_[id])
                .str(" device-writable bytes");
        violation(VirtioErr::used_len);
        return false;
    }

    *token = token_[id];
    *len = written;
    free_chain(static_cast<uint16_t>(id));
    completed_[id] = true;
    ++last_used_;
    return true;
}

// Walks the private copy of the chain (never the shared table) and puts its
// descriptors back on the free list.
void Virtqueue::free_chain(uint16_t head) {
    const uint16_t count = chain_len_[head];
    uint16_t i = head;
    for (uint16_t n = 0; n < count; ++n) {
        state_[i] = kFree;
        if (n + 1 < count)
            i = desc_[i].next;
    }
    desc_[i].next = free_head_; // i is the chain's last descriptor
    free_head_ = head;
    num_free_ = static_cast<uint16_t>(num_free_ + count);
    token_[head] = nullptr;
    chain_len_[head] = 0;
    writable_[head] = 0;
    --in_flight_;
}

bool Virtqueue::detach_in_flight(void** token) {
    for (uint16_t i = 0; i < size_; ++i) {
        if (state_[i] != kHead)
            continue;
        *token = token_[i];
        free_chain(i);
        return true;
    }
    return false;
}

} // namespace svmkit::guest
