// A split virtqueue, hardened against the device (freestanding).
//
// The device and the hypervisor behind it are untrusted (docs/architecture.md,
// "Trust boundaries"). Their only ways in are the used ring (idx, id, len) and the bytes
// of device-writable buffers; this class owns the first, the DMA API the
// second. The rules (docs/virtio.md, "The hardened split virtqueue"):
//   - The shared descriptor table and available ring are write-only for the
//     driver. The authoritative descriptors (addr, len, flags, next) and the
//     free list live in private memory (desc_, free_head_); chains are freed
//     by walking the private copy, so a device rewriting the shared table
//     changes nothing the driver relies on.
//   - The only fields the driver writes for the device's benefit beyond the
//     rings' contents are the interrupt hints: the avail flags'
//     NO_INTERRUPT, or with VIRTIO_F_EVENT_IDX the avail ring's used_event;
//     neither is ever read back.
//   - No indirect descriptors (each table would be one more shared structure
//     needing its own private shadow), no packed ring (its descriptors are
//     rewritten by the device).
//   - With VIRTIO_F_EVENT_IDX the device also writes avail_event (where it
//     wants the next kick). It is a hint like NO_NOTIFY: read once per
//     decision and checked against the window a device can be in (its next
//     chain to take lies at most `size` behind the published avail idx, and
//     never ahead); a value outside it makes the driver notify, so a lying
//     device gets more kicks, never fewer, and nothing indexes with it.
//   - Every device-written field is loaded exactly once into a local, then
//     validated before any use: used idx moves forward by at most the number
//     of chains in flight (which is at most the queue size); each used id is
//     below the queue size, is the head of a chain in flight and was not
//     completed before; each used len is at most the device-writable length
//     of that chain.
//   - A violation marks the queue broken for good: add() and get_used()
//     refuse, the owner fails its requests (detach_in_flight() hands back
//     every outstanding token once). The guest keeps running.
//
// Invariants (private state):
//   - Every descriptor index i < size_ is in exactly one of: the free list
//     (state_[i] == free, linked through desc_[i].next, num_free_ of them),
//     or one chain in flight (state_[i] == head for its first descriptor,
//     body for the others; chain_len_[head] descriptors linked through
//     desc_[].next).
//   - in_flight_ == the number of heads; num_free_ + sum(chain_len_[heads])
//     == size_.
//   - last_used_ <= used_seen_ (mod 2^16) and (u16)(used_seen_ - last_used_)
//     <= in_flight_: the device-published completions not yet consumed.
//   - The shared table and avail ring are written from the private state and
//     never read back.
#pragma once

#include "guest/dma.h"
#include "guest/virtio.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

// The largest queue this driver sets up: the private shadow is sized for it
// (about 8 KiB per queue). Devices offering more get this many.
inline constexpr uint16_t kVirtqMaxSize = 256;

// One buffer of a chain, by device address (what DmaDevice::map_* returned).
struct VirtqBuffer {
    dma_addr_t addr = 0;
    uint32_t len = 0;
    bool device_writes = false; // device-writable (VIRTQ_DESC_F_WRITE)
};

class Virtqueue {
  public:
    Virtqueue() = default;
    Virtqueue(const Virtqueue&) = delete;
    Virtqueue& operator=(const Virtqueue&) = delete;

    // Lays out the rings in one zeroed coherent allocation from `dma` (the
    // bounce pool for a restricted device: the only memory the device can
    // reach). `size` must be a power of two in [1, kVirtqMaxSize]. `who`
    // names the device in messages and must outlive the queue. `event_idx`:
    // VIRTIO_F_EVENT_IDX was negotiated (the notification hints are the
    // event indices, not the flags).
    VirtioErr init(DmaDevice* dma, uint16_t index, uint16_t size, VirtioReport* report,
                   const char* who, bool event_idx = false);
    // Frees the rings. Only once the device no longer uses them (after a
    // device reset).
    void destroy();

    bool ready() const { return rings_ != nullptr; }
    uint16_t index() const { return index_; }
    uint16_t size() const { return size_; }
    dma_addr_t desc_addr() const { return rings_dma_; }
    dma_addr_t avail_addr() const { return rings_dma_ + avail_offset_; }
    dma_addr_t used_addr() const { return rings_dma_ + used_offset_; }

    // Makes a chain of `count` buffers available; device-readable buffers
    // must precede device-writable ones, no buffer may be empty, the chain
    // at most 4 GiB. `token` comes back from get_used() (or
    // detach_in_flight()) when the chain completes. Errors: queue_full (try
    // again after completions), queue_broken, bad_argument.
    VirtioErr add(const VirtqBuffer* bufs, uint16_t count, void* token);
    // Whether the device wants a notification for chains added since the last
    // call (reads the device's NO_NOTIFY hint, or its avail_event, once; a
    // lying device only delays itself, and an impossible avail_event counts
    // as "notify").
    bool needs_notify();

    // Used-buffer notifications (VIRTQ_AVAIL_F_NO_INTERRUPT in the
    // driver-written avail flags, or with EVENT_IDX the used_event index:
    // hints the device may ignore, so a device only wakes the driver when it
    // is about to sleep). Off from init(). enable_interrupts() asks for one,
    // then looks at used idx once more (after a full barrier, so a
    // completion published before the device could see the request is not
    // missed): true when the driver may sleep, false when completions
    // arrived meanwhile (or the queue broke). With EVENT_IDX, `after` asks
    // for the notification only once that many more chains have completed
    // (1..in_flight(); other values count as 1), so a driver can sleep
    // through several completions and handle them in one wake; without it,
    // the first completion notifies.
    void disable_interrupts();
    bool enable_interrupts(uint16_t after = 1);
    bool event_idx() const { return event_idx_; }
    // avail_event values found outside the window [avail idx - size, avail
    // idx] (a lie, or a busy device's value left more than a queue behind);
    // each made the driver notify.
    uint32_t bad_avail_events() const { return bad_avail_events_; }

    // The next completed chain: true with its token and the device-written
    // length (validated: at most the chain's writable bytes). False when
    // nothing completed or the queue is broken (check broken()).
    bool get_used(void** token, uint32_t* len);
    // True when the device published completions not consumed yet (reads used
    // idx once; validates it like get_used()).
    bool has_used();

    // Marks the queue broken (a transport failure, or a violation found by the
    // owner); the first reason sticks.
    void mark_broken(VirtioErr why);
    bool broken() const { return broken_ != VirtioErr::none; }
    VirtioErr broken_reason() const { return broken_; }

    // Once the device no longer uses the queue (broken or reset): hands back
    // one outstanding chain's token and frees its descriptors; false when none
    // is left.
    bool detach_in_flight(void** token);

    uint16_t num_free() const { return num_free_; }
    uint16_t in_flight() const { return in_flight_; }

  private:
    enum State : uint8_t { kFree, kHead, kBody };

    // Reads used idx once; false (and broken) if it moved impossibly.
    bool refresh_used_idx();
    void free_chain(uint16_t head);
    void violation(VirtioErr why);

    // Shared rings (coherent memory the device reads and writes).
    uint8_t* rings_ = nullptr;
    dma_addr_t rings_dma_ = 0;
    uint64_t rings_bytes_ = 0;
    uint64_t avail_offset_ = 0;
    uint64_t used_offset_ = 0;
    VirtqDesc* table_ = nullptr;            // write-only
    VirtqAvailHeader* avail_ = nullptr;     // write-only
    uint16_t* avail_ring_ = nullptr;        // write-only
    VirtqUsedHeader* used_ = nullptr;       // device-written: read once, validate
    VirtqUsedElem* used_ring_ = nullptr;    // device-written: read once, validate
    uint16_t* used_event_ = nullptr;        // EVENT_IDX, after the avail ring: write-only
    const uint16_t* avail_event_ = nullptr; // EVENT_IDX, after the used ring: read once, check

    DmaDevice* dma_ = nullptr;
    VirtioReport* report_ = nullptr;
    const char* who_ = "virtio";
    uint16_t index_ = 0;
    uint16_t size_ = 0;

    // Private state (see the invariants above).
    VirtqDesc desc_[kVirtqMaxSize] = {};
    State state_[kVirtqMaxSize] = {};
    bool completed_[kVirtqMaxSize] = {}; // completed as a head since last made available
    void* token_[kVirtqMaxSize] = {};
    uint16_t chain_len_[kVirtqMaxSize] = {};
    uint32_t writable_[kVirtqMaxSize] = {}; // device-writable bytes of the chain
    uint16_t free_head_ = 0;
    uint16_t num_free_ = 0;
    uint16_t in_flight_ = 0;
    uint16_t avail_idx_ = 0;  // next avail idx to publish
    uint16_t last_used_ = 0;  // next used entry to consume
    uint16_t used_seen_ = 0;  // used idx as last read (validated)
    uint16_t unnotified_ = 0; // chains published since the last needs_notify()
    bool event_idx_ = false;
    uint32_t bad_avail_events_ = 0;
    VirtioErr broken_ = VirtioErr::none;
};

} // namespace svmkit::guest
