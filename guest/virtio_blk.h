// The virtio-blk driver (freestanding): read, write, flush and get-id over
// one hardened split virtqueue (guest/virtqueue.h) on the virtio-mmio
// transport (guest/virtio_mmio.h), with every buffer going through the DMA
// API (guest/dma.h): bounced through the restricted pool in a secure guest.
//
// A request is a chain [header (device reads) | data segments | status byte
// (device writes)]. Header and status live in a per-queue array of slots in
// coherent memory (the bounce pool for a restricted device): neither is
// secret, the driver only writes headers, and it loads each status byte
// exactly once, so they need no streaming mapping and no bounce copies. The
// data is the caller's buffer, mapped in its own direction, so a write's data
// is never copied back from the device. Several requests are in flight at
// once: the caller owns BlkRequest objects, submit() makes them available
// (one notification for the batch), poll()/wait() complete them. With
// VIRTIO_F_EVENT_IDX the driver sleeps until half of what is in flight has
// completed, so a caller resubmitting what it found done does so in
// batches while the device works on the rest.
//
// What the device can do to a request, and what the driver does about it:
//   - break the ring (see virtqueue.h): the queue is marked broken, the
//     device is set FAILED, every request in flight fails with queue_broken,
//     later requests fail at once;
//   - answer IOERR / UNSUPP / a status byte that does not exist, or leave the
//     status unwritten: that request fails (io_error, unsupported,
//     bad_status);
//   - write garbage into the bounce buffers, before or after completion: the
//     data is copied out once, when the request completes (unmap), and never
//     read from shared memory again. A failed read's buffer is zeroed.
// The device's used `len` is checked by the queue (at most the writable
// bytes) but not relied on beyond that: devices differ in what they report
// (older QEMU exports leave out the status byte).
//
// One vCPU drives a VirtioBlk at a time (the caller serializes): the queue's
// private state has no lock.
//
// When the bounce pool is full, submit() waits for requests in flight to
// complete and retries; with nothing in flight it fails with dma_pool_full
// and reports the pool's numbers (a pool too small for one request).
#pragma once

#include "guest/dma.h"
#include "guest/virtio_mmio.h"
#include "guest/virtqueue.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

// Data segments per request (the chain adds two descriptors), and bytes per
// segment: 16 x 64 KiB = 1 MiB per request at most, each segment well inside
// one swiotlb mapping (256 KiB).
inline constexpr uint16_t kBlkMaxSegments = 16;
inline constexpr uint32_t kBlkMaxSegmentBytes = 64 * 1024;
// Requests in flight for the synchronous read()/write() helpers.
inline constexpr unsigned kBlkSyncDepth = 8;

enum class BlkOp : uint8_t { read, write, flush, get_id };

// One request. The caller owns it and must leave it alone (and its data
// buffer) from submit() until `done`.
struct BlkRequest {
    BlkOp op = BlkOp::read;
    uint64_t sector = 0;  // 512-byte sectors
    void* data = nullptr; // read/write: `bytes` bytes; get_id: 20 bytes
    uint32_t bytes = 0;   // read/write: a multiple of 512; get_id: 20; flush: 0

    bool done = false;
    VirtioErr result = VirtioErr::none;

    // Driver state while in flight.
    uint16_t slot_ = 0; // header + status slot
    uint16_t data_segments_ = 0;
    DmaSegment segs_[kBlkMaxSegments] = {};
};

// A request's header and status byte, in coherent memory. The device reads
// the header and writes the status.
struct BlkSlot {
    VirtioBlkReqHeader header;
    uint8_t status;
    uint8_t pad[15];
};
static_assert(sizeof(BlkSlot) == 32);

// Where a driver's time goes, for benchmarks: read_cycles() ticks
// (guest/cycles.h) spent in each stage, exclusive (a stage entered inside
// another counts only for itself), and how often the driver notified and
// slept; accumulated while set_stats() points at one. Costs two counter
// reads per stage entered, nothing when off.
struct BlkStats {
    enum Stage : uint8_t {
        copy_in,  // mapping request data: the bounce copy into the pool
        submit,   // the rest of submit(): header, descriptors, avail ring, kick
        sleep,    // H_CEDE until the device signals, and the interrupt registers
        copy_out, // unmapping request data: the bounce copy out of the pool
        reap,     // the rest of poll()/wait(): used ring, status bytes, looping
        kStages,
    };
    uint64_t ticks[kStages] = {};
    uint64_t completed = 0;         // requests the device completed
    uint64_t kicks = 0;             // QueueNotify writes
    uint64_t cedes = 0;             // H_CEDE calls
    uint64_t in_flight_at_cede = 0; // requests the device held at each H_CEDE, summed
};

class VirtioBlk {
  public:
    // `mmio`, `dma` and `report` must outlive the driver. `dma` is direct for
    // a normal guest, restricted (the device's pool) for a secure one.
    VirtioBlk(VirtioMmio* mmio, DmaDevice* dma, VirtioReport* report)
        : mmio_(mmio), dma_(dma), report_(report) {}
    VirtioBlk(const VirtioBlk&) = delete;
    VirtioBlk& operator=(const VirtioBlk&) = delete;

    // Probes and negotiates (VERSION_1 and ACCESS_PLATFORM required), reads
    // the configuration, sets up queue 0 with at most `queue_size`
    // descriptors (0: as many as the device and kVirtqMaxSize allow) and
    // makes the device live. On failure the device is left FAILED.
    VirtioErr init(uint16_t queue_size = 0);
    // Resets the device and frees the rings; requests in flight fail.
    void shutdown();

    uint64_t capacity() const { return capacity_; } // sectors
    bool read_only() const { return read_only_; }
    bool has_flush() const { return has_flush_; }
    uint32_t max_request_bytes() const { return max_request_bytes_; }
    const Virtqueue& queue() const { return vq_; }
    bool broken() const { return vq_.broken(); }
    // Starts (or, with nullptr, stops) accumulating into `stats`, which must
    // outlive the driver or the next call.
    void set_stats(BlkStats* stats) { stats_ = stats; }

    // Makes requests available to the device with one notification; when the
    // queue or the bounce pool is full, completes earlier requests first.
    // A request that cannot start is done at once with its error. Returns
    // the first such error (none when all started).
    VirtioErr submit(BlkRequest* reqs, size_t count);
    // The same for requests that are not next to each other (a caller
    // resubmitting the slots that completed): one notification for all.
    VirtioErr submit(BlkRequest* const* reqs, size_t count);
    // Completes what the device finished (and fails everything if the ring
    // broke). True when any request completed.
    bool poll();
    // Waits (H_CEDE) until `r` is done; returns its result.
    VirtioErr wait(BlkRequest& r);
    // Waits until no request is in flight.
    void wait_all();

    // Synchronous helpers: split into requests of max_request_bytes(), up to
    // kBlkSyncDepth in flight. `bytes` a multiple of 512.
    VirtioErr read(uint64_t sector, void* buf, size_t bytes);
    VirtioErr write(uint64_t sector, const void* buf, size_t bytes);
    // No-op success when the device has no volatile cache (no
    // VIRTIO_BLK_F_FLUSH: virtio then promises write-through).
    VirtioErr flush();
    // The device's id string: up to 20 bytes, NUL-terminated into `out`
    // (21 bytes, the device writes its first 20 through the DMA API); bytes
    // that are not printable ASCII become '?'.
    VirtioErr get_id(char out[kVirtioBlkIdBytes + 1]);

  private:
    class Span;

    VirtioErr check(const BlkRequest& r) const;
    template <typename Pick>
    VirtioErr submit_each(size_t count, Pick pick);
    VirtioErr make_available(BlkRequest& r);
    VirtioErr start(BlkRequest& r);
    void unmap(BlkRequest& r);
    void complete(BlkRequest& r, bool ok);
    void fail_in_flight();
    void give_up();
    void release_memory();
    void kick();
    void idle();
    VirtioErr run_sync(BlkOp op, uint64_t sector, void* buf, size_t bytes);

    VirtioMmio* mmio_;
    DmaDevice* dma_;
    VirtioReport* report_;
    Virtqueue vq_;
    // Header/status slots: slots_[0..vq_.size()) in coherent memory; the free
    // ones are free_slots_[0..free_slot_count_) (private).
    BlkSlot* slots_ = nullptr;
    dma_addr_t slots_dma_ = 0;
    uint16_t free_slots_[kVirtqMaxSize] = {};
    uint16_t free_slot_count_ = 0;
    uint64_t capacity_ = 0;
    uint32_t segment_bytes_ = kBlkMaxSegmentBytes;
    uint16_t max_segments_ = kBlkMaxSegments;
    uint32_t max_request_bytes_ = 0;
    bool read_only_ = false;
    bool has_flush_ = false;
    bool live_ = false;
    bool kick_pending_ = false;
    BlkStats* stats_ = nullptr;
    uint64_t span_children_ = 0; // ticks of the finished spans inside the open one
};

} // namespace svmkit::guest
