#include "guest/virtio_blk.h"

#include "guest/cycles.h"

#include <stddef.h>
#include <string.h>

namespace svmkit::guest {

namespace {

// The status byte before the device answers: not a status virtio-blk
// defines, so a device that completes without writing it is caught.
constexpr uint8_t kStatusUnwritten = 0xff;

uint16_t floor_power_of_two(uint32_t v) {
    uint32_t p = 1;
    while (p * 2 <= v)
        p *= 2;
    return static_cast<uint16_t>(p);
}

uint32_t min32(uint32_t a, uint32_t b) {
    return a < b ? a : b;
}

DmaDirection data_direction(BlkOp op) {
    return op == BlkOp::write ? DmaDirection::to_device : DmaDirection::from_device;
}

uint32_t request_type(BlkOp op) {
    switch (op) {
    case BlkOp::read:
        return kVirtioBlkTIn;
    case BlkOp::write:
        return kVirtioBlkTOut;
    case BlkOp::flush:
        return kVirtioBlkTFlush;
    case BlkOp::get_id:
        return kVirtioBlkTGetId;
    }
    return kVirtioBlkTIn;
}

} // namespace

// One stage's time while stats are on (BlkStats): from construction to
// destruction, less the spans that opened and closed inside it.
class VirtioBlk::Span {
  public:
    Span(VirtioBlk& blk, BlkStats::Stage stage) : blk_(blk), stage_(stage) {
        if (blk_.stats_ == nullptr)
            return;
        outer_children_ = blk_.span_children_;
        blk_.span_children_ = 0;
        start_ = read_cycles();
    }
    ~Span() {
        if (blk_.stats_ == nullptr)
            return;
        const uint64_t elapsed = read_cycles() - start_;
        blk_.stats_->ticks[stage_] += elapsed - blk_.span_children_;
        blk_.span_children_ = outer_children_ + elapsed;
    }
    Span(const Span&) = delete;
    Span& operator=(const Span&) = delete;

  private:
    VirtioBlk& blk_;
    BlkStats::Stage stage_;
    uint64_t start_ = 0;
    uint64_t outer_children_ = 0;
};

VirtioErr VirtioBlk::init(uint16_t queue_size) {
    live_ = false;
    VirtioErr err = mmio_->probe(kVirtioIdBlock);
    if (err != VirtioErr::none)
        return err;
    const uint64_t wanted = virtio_bit(kVirtioBlkFRo) | virtio_bit(kVirtioBlkFFlush) |
                            virtio_bit(kVirtioBlkFSizeMax) | virtio_bit(kVirtioBlkFSegMax) |
                            virtio_bit(kVirtioBlkFBlkSize) | virtio_bit(kVirtioFEventIdx);
    err = mmio_->negotiate(0, wanted);
    if (err != VirtioErr::none)
        return err;

    const auto refuse = [&](VirtioErr e) {
        mmio_->fail();
        return e;
    };
    const auto bad_config = [&](const char* what, uint64_t v) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::device_failed, mmio_->name())
                .str("virtio-blk ")
                .str(what)
                .str(" ")
                .dec(v)
                .str(" is unusable")
                .end();
        return refuse(VirtioErr::device_failed);
    };
    uint64_t v = 0;
    if ((err = mmio_->config_read(kVirtioBlkCfgCapacity, 8, &v)) != VirtioErr::none)
        return refuse(err);
    capacity_ = v;
    segment_bytes_ = kBlkMaxSegmentBytes;
    max_segments_ = kBlkMaxSegments;
    if (mmio_->has_feature(kVirtioBlkFSizeMax)) {
        if ((err = mmio_->config_read(kVirtioBlkCfgSizeMax, 4, &v)) != VirtioErr::none)
            return refuse(err);
        // qemu-storage-daemon (QEMU 7.2's vhost-user-blk export) offers
        // SIZE_MAX and leaves the field 0: no limit beyond our own.
        if (v != 0 && v < kVirtioBlkSectorSize)
            return bad_config("size_max", v);
        // Whole sectors per segment keep every segment sector-aligned.
        if (v != 0)
            segment_bytes_ = min32(kBlkMaxSegmentBytes, static_cast<uint32_t>(v) & ~511u);
    }
    if (mmio_->has_feature(kVirtioBlkFSegMax)) {
        if ((err = mmio_->config_read(kVirtioBlkCfgSegMax, 4, &v)) != VirtioErr::none)
            return refuse(err);
        if (v == 0)
            return bad_config("seg_max", v);
        max_segments_ = static_cast<uint16_t>(min32(kBlkMaxSegments, static_cast<uint32_t>(v)));
    }
    // Every segment must fit one streaming mapping (a swiotlb segment, less
    // alignment slack, for a restricted device).
    const uint64_t mappable = dma_->max_mapping_size() & ~uint64_t{511};
    if (mappable < kVirtioBlkSectorSize)
        return bad_config("DMA mapping limit", dma_->max_mapping_size());
    if (segment_bytes_ > mappable)
        segment_bytes_ = static_cast<uint32_t>(mappable);
    read_only_ = mmio_->has_feature(kVirtioBlkFRo);
    has_flush_ = mmio_->has_feature(kVirtioBlkFFlush);

    uint16_t max = 0;
    if ((err = mmio_->queue_max(0, &max)) != VirtioErr::none)
        return refuse(err);
    uint32_t q = min32(max, kVirtqMaxSize);
    if (queue_size != 0)
        q = min32(q, queue_size);
    q = floor_power_of_two(q);
    if (q < 4) // header + one data segment + status, and room for a second request
        return bad_config("queue size", max);
    if (max_segments_ > q - 2)
        max_segments_ = static_cast<uint16_t>(q - 2);
    max_request_bytes_ = uint32_t{max_segments_} * segment_bytes_;

    if ((err = vq_.init(dma_, 0, static_cast<uint16_t>(q), report_, mmio_->name(),
                        mmio_->has_feature(kVirtioFEventIdx))) != VirtioErr::none)
        return refuse(err);
    slots_ = static_cast<BlkSlot*>(dma_->alloc_coherent(q * sizeof(BlkSlot), &slots_dma_));
    if (slots_ == nullptr) {
        vq_.destroy();
        if (report_ != nullptr)
            report_->begin(VirtioErr::no_memory, mmio_->name())
                .str("no coherent memory for ")
                .dec(q)
                .str(" request headers")
                .end();
        return refuse(VirtioErr::no_memory);
    }
    for (uint32_t i = 0; i < q; ++i)
        free_slots_[i] = static_cast<uint16_t>(i);
    free_slot_count_ = static_cast<uint16_t>(q);
    if ((err = mmio_->enable_queue(vq_)) != VirtioErr::none ||
        (err = mmio_->driver_ok()) != VirtioErr::none) {
        mmio_->reset();
        release_memory();
        return refuse(err);
    }
    live_ = true;
    return VirtioErr::none;
}

void VirtioBlk::release_memory() {
    if (slots_ != nullptr)
        dma_->free_coherent(slots_, vq_.size() * sizeof(BlkSlot), slots_dma_);
    slots_ = nullptr;
    free_slot_count_ = 0;
    vq_.destroy();
}

void VirtioBlk::shutdown() {
    if (!vq_.ready())
        return;
    if (live_) {
        live_ = false;
        mmio_->reset(); // the device stops using the rings and buffers
    }
    vq_.mark_broken(VirtioErr::queue_broken);
    fail_in_flight();
    release_memory();
}

VirtioErr VirtioBlk::check(const BlkRequest& r) const {
    if (!live_)
        return vq_.broken() ? VirtioErr::queue_broken : VirtioErr::device_failed;
    switch (r.op) {
    case BlkOp::read:
    case BlkOp::write: {
        if (r.data == nullptr || r.bytes == 0 || r.bytes % kVirtioBlkSectorSize != 0 ||
            r.bytes > max_request_bytes_)
            return VirtioErr::bad_argument;
        uint64_t end = 0;
        if (add_overflows(r.sector, r.bytes / kVirtioBlkSectorSize, &end) || end > capacity_)
            return VirtioErr::out_of_range;
        if (r.op == BlkOp::write && read_only_)
            return VirtioErr::read_only;
        return VirtioErr::none;
    }
    case BlkOp::flush:
        return r.bytes == 0 ? VirtioErr::none : VirtioErr::bad_argument;
    case BlkOp::get_id:
        return r.data != nullptr && r.bytes == kVirtioBlkIdBytes ? VirtioErr::none
                                                                 : VirtioErr::bad_argument;
    }
    return VirtioErr::bad_argument;
}

// Maps the request's data, fills its header slot and makes the chain
// available (no notification). queue_full / dma_pool_full: nothing is left
// mapped; try again later.
VirtioErr VirtioBlk::start(BlkRequest& r) {
    if (vq_.broken())
        return VirtioErr::queue_broken;
    // r.bytes <= max_request_bytes_ (check()): at most max_segments_ segments.
    const auto segments = static_cast<uint16_t>((r.bytes + segment_bytes_ - 1) / segment_bytes_);
    const uint16_t descriptors = static_cast<uint16_t>(segments + 2);
    if (vq_.num_free() < descriptors || free_slot_count_ == 0)
        return VirtioErr::queue_full;

    auto* bytes = static_cast<uint8_t*>(r.data);
    for (uint16_t i = 0; i < segments; ++i) {
        const uint32_t off = uint32_t{i} * segment_bytes_;
        r.segs_[i] =
            DmaSegment{bytes + off, min32(segment_bytes_, r.bytes - off), kDmaMappingError};
    }
    bool mapped = true;
    if (segments > 0) {
        const Span span(*this, BlkStats::copy_in);
        mapped = dma_->map_sg(r.segs_, segments, data_direction(r.op));
    }
    if (!mapped) {
        const DmaError& e = dma_->last_error();
        return e.kind == DmaError::pool_full ? VirtioErr::dma_pool_full : VirtioErr::dma_error;
    }
    r.data_segments_ = segments;

    r.slot_ = free_slots_[--free_slot_count_];
    BlkSlot& slot = slots_[r.slot_];
    slot.header = VirtioBlkReqHeader{request_type(r.op), 0, r.op == BlkOp::flush ? 0 : r.sector};
    slot.status = kStatusUnwritten;
    const dma_addr_t slot_dma = slots_dma_ + uint64_t{r.slot_} * sizeof(BlkSlot);

    VirtqBuffer bufs[kBlkMaxSegments + 2];
    bufs[0] = VirtqBuffer{slot_dma, sizeof(VirtioBlkReqHeader), false};
    for (uint16_t i = 0; i < segments; ++i)
        bufs[1 + i] = VirtqBuffer{r.segs_[i].dma, static_cast<uint32_t>(r.segs_[i].size),
                                  r.op != BlkOp::write};
    bufs[1 + segments] = VirtqBuffer{slot_dma + offsetof(BlkSlot, status), 1, true};
    const VirtioErr e = vq_.add(bufs, descriptors, &r);
    if (e != VirtioErr::none) {
        unmap(r);
        free_slots_[free_slot_count_++] = r.slot_;
        return e;
    }
    kick_pending_ = true;
    return VirtioErr::none;
}

// Ends the data mapping: a read's data is copied out of the bounce pool here,
// once.
void VirtioBlk::unmap(BlkRequest& r) {
    if (r.data_segments_ > 0) {
        const Span span(*this, BlkStats::copy_out);
        dma_->unmap_sg(r.segs_, r.data_segments_, data_direction(r.op));
    }
    r.data_segments_ = 0;
}

void VirtioBlk::complete(BlkRequest& r, bool ring_ok) {
    unmap(r);
    // The status byte is device-written shared memory: loaded exactly once.
    const uint8_t status = __atomic_load_n(&slots_[r.slot_].status, __ATOMIC_RELAXED);
    free_slots_[free_slot_count_++] = r.slot_;
    VirtioErr result = VirtioErr::queue_broken;
    if (ring_ok) {
        if (status == kVirtioBlkSOk)
            result = VirtioErr::none;
        else if (status == kVirtioBlkSIoErr)
            result = VirtioErr::io_error;
        else if (status == kVirtioBlkSUnsupp)
            result = VirtioErr::unsupported;
        else
            result = VirtioErr::bad_status;
        if (result == VirtioErr::bad_status && report_ != nullptr) {
            report_->begin(VirtioErr::bad_status, mmio_->name());
            if (status == kStatusUnwritten)
                report_->str("device completed a request without writing its status").end();
            else
                report_->str("device answered undefined status ").dec(status).end();
        }
    }
    // What a failed read leaves behind is the device's word only: not data.
    if (result != VirtioErr::none && r.op != BlkOp::write && r.op != BlkOp::flush)
        memset(r.data, 0, r.bytes);
    r.result = result;
    r.done = true;
    if (stats_ != nullptr && ring_ok)
        ++stats_->completed;
}

// The queue broke (or the device was reset): every request in flight fails.
void VirtioBlk::fail_in_flight() {
    void* token = nullptr;
    while (vq_.detach_in_flight(&token))
        complete(*static_cast<BlkRequest*>(token), false);
}

// A broken ring: the driver gives up on the device (reset, so a merely buggy
// device stops touching the buffers, then FAILED) and fails what it held.
void VirtioBlk::give_up() {
    if (live_) {
        live_ = false;
        mmio_->reset();
        mmio_->fail();
    }
    fail_in_flight();
}

void VirtioBlk::kick() {
    if (!kick_pending_)
        return;
    kick_pending_ = false;
    if (!vq_.needs_notify())
        return;
    if (stats_ != nullptr)
        ++stats_->kicks;
    if (mmio_->notify(vq_.index()) != VirtioErr::none)
        vq_.mark_broken(VirtioErr::transport);
}

void VirtioBlk::idle() {
    kick();
    // The device notifies only while the driver sleeps, and costs nothing
    // while it works. With EVENT_IDX the driver sleeps until half of what is
    // in flight has completed: it then copies those out and resubmits them
    // in one wake (one notification, one kick) while the device still works
    // on the other half. Without it, the first completion wakes it.
    const uint16_t half = static_cast<uint16_t>(vq_.in_flight() / 2);
    if (!vq_.enable_interrupts(half > 0 ? half : 1)) {
        vq_.disable_interrupts();
        return; // completed (or broke) meanwhile: nothing to wait for
    }
    if (stats_ != nullptr) {
        ++stats_->cedes;
        stats_->in_flight_at_cede += vq_.in_flight();
    }
    uint32_t bits = 0;
    {
        const Span span(*this, BlkStats::sleep);
        bits = mmio_->wait();
    }
    vq_.disable_interrupts();
    if ((bits & kVirtioMmioIntConfigChange) != 0 && mmio_->check_device() != VirtioErr::none)
        vq_.mark_broken(VirtioErr::device_failed);
    if (mmio_->transport_failed())
        vq_.mark_broken(VirtioErr::transport);
}

bool VirtioBlk::poll() {
    const Span span(*this, BlkStats::reap);
    bool any = false;
    void* token = nullptr;
    uint32_t len = 0;
    // Tokens are the queue's private record of what was submitted, never a
    // device-supplied value.
    while (vq_.get_used(&token, &len)) {
        complete(*static_cast<BlkRequest*>(token), true);
        any = true;
    }
    if (vq_.broken()) {
        any = any || vq_.in_flight() > 0;
        give_up();
    }
    return any;
}

// Makes each request pick(i) available, then notifies once.
template <typename Pick>
VirtioErr VirtioBlk::submit_each(size_t count, Pick pick) {
    const Span span(*this, BlkStats::submit);
    VirtioErr first = VirtioErr::none;
    for (size_t i = 0; i < count; ++i) {
        const VirtioErr err = make_available(pick(i));
        if (err != VirtioErr::none && first == VirtioErr::none)
            first = err;
    }
    kick();
    return first;
}

VirtioErr VirtioBlk::submit(BlkRequest* reqs, size_t count) {
    return submit_each(count, [reqs](size_t i) -> BlkRequest& { return reqs[i]; });
}

VirtioErr VirtioBlk::submit(BlkRequest* const* reqs, size_t count) {
    return submit_each(count, [reqs](size_t i) -> BlkRequest& { return *reqs[i]; });
}

// One request of a submit(): checked, started (waiting for room when the
// queue or the pool is full), or done at once with its error.
VirtioErr VirtioBlk::make_available(BlkRequest& r) {
    r.done = false;
    r.result = VirtioErr::none;
    r.data_segments_ = 0;
    VirtioErr err = check(r);
    if (err == VirtioErr::none && r.op == BlkOp::flush && !has_flush_) {
        r.done = true; // write-through device: nothing to flush
        return VirtioErr::none;
    }
    while (err == VirtioErr::none) {
        err = start(r);
        if ((err != VirtioErr::queue_full && err != VirtioErr::dma_pool_full) ||
            vq_.in_flight() == 0)
            break;
        // Wait for room: earlier requests complete and give back
        // descriptors and bounce slots.
        kick();
        if (!poll())
            idle();
        err = VirtioErr::none;
    }
    if ((err == VirtioErr::dma_pool_full || err == VirtioErr::dma_error) && report_ != nullptr) {
        // Nothing of ours is in flight: no room will come. Say why, with
        // the numbers that size the pool (svmkit.swiotlb=<bytes> on the command
        // line).
        char line[120];
        describe_dma_error(dma_->last_error(), line, sizeof(line));
        report_->begin(err, mmio_->name())
            .str("request of ")
            .dec(r.bytes)
            .str(" bytes cannot be mapped: ")
            .str(line)
            .end();
    }
    if (err != VirtioErr::none) {
        r.result = err;
        r.done = true;
    }
    return err;
}

VirtioErr VirtioBlk::wait(BlkRequest& r) {
    const Span span(*this, BlkStats::reap);
    while (!r.done) {
        if (vq_.in_flight() == 0 && !poll())
            return VirtioErr::bad_argument; // never submitted
        if (!poll())
            idle();
    }
    return r.result;
}

void VirtioBlk::wait_all() {
    const Span span(*this, BlkStats::reap);
    while (vq_.in_flight() > 0)
        if (!poll())
            idle();
}

VirtioErr VirtioBlk::run_sync(BlkOp op, uint64_t sector, void* buf, size_t bytes) {
    if (bytes % kVirtioBlkSectorSize != 0 || bytes == 0 || buf == nullptr)
        return VirtioErr::bad_argument;
    if (max_request_bytes_ == 0)
        return VirtioErr::device_failed;
    auto* p = static_cast<uint8_t*>(buf);
    size_t off = 0;
    while (off < bytes) {
        BlkRequest reqs[kBlkSyncDepth];
        size_t n = 0;
        for (; n < kBlkSyncDepth && off < bytes; ++n) {
            const size_t left = bytes - off;
            const uint32_t chunk =
                left < max_request_bytes_ ? static_cast<uint32_t>(left) : max_request_bytes_;
            reqs[n].op = op;
            reqs[n].sector = sector + off / kVirtioBlkSectorSize;
            reqs[n].data = p + off;
            reqs[n].bytes = chunk;
            off += chunk;
        }
        submit(reqs, n);
        VirtioErr first = VirtioErr::none;
        for (size_t i = 0; i < n; ++i) {
            const VirtioErr e = wait(reqs[i]);
            if (first == VirtioErr::none)
                first = e;
        }
        if (first != VirtioErr::none)
            return first;
    }
    return VirtioErr::none;
}

VirtioErr VirtioBlk::read(uint64_t sector, void* buf, size_t bytes) {
    return run_sync(BlkOp::read, sector, buf, bytes);
}

VirtioErr VirtioBlk::write(uint64_t sector, const void* buf, size_t bytes) {
    // The driver never writes a write request's buffer (mapped to_device only).
    return run_sync(BlkOp::write, sector, const_cast<void*>(buf), bytes);
}

VirtioErr VirtioBlk::flush() {
    BlkRequest r;
    r.op = BlkOp::flush;
    submit(&r, 1);
    return wait(r);
}

VirtioErr VirtioBlk::get_id(char out[kVirtioBlkIdBytes + 1]) {
    memset(out, 0, kVirtioBlkIdBytes + 1);
    BlkRequest r;
    r.op = BlkOp::get_id;
    r.data = out;
    r.bytes = kVirtioBlkIdBytes;
    submit(&r, 1);
    const VirtioErr err = wait(r);
    // `out` is private again (copied out once, or zeroed on failure).
    size_t n = 0;
    for (; err == VirtioErr::none && n < kVirtioBlkIdBytes && out[n] != 0; ++n) {
        const auto c = static_cast<unsigned char>(out[n]);
        out[n] = c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
    }
    out[n] = '\0';
    return err;
}

} // namespace svmkit::guest
