// The device side of one split virtqueue, in memory the guest (and so a
// hostile driver) can change at any moment.
//
// Invariants:
//   - desc_/avail_/used_ point into the current MemoryTable only while
//     map() found each whole ring inside one region, suitably aligned; after
//     a new memory table the session calls map() again before any use;
//   - every field read from shared memory (avail flags/idx/ring entries,
//     descriptors) is read exactly once, with an atomic load, into a local,
//     and validated before it is used: the avail idx moves by at most the
//     queue size, heads and next indices are below the queue size, a chain
//     has at most `size` descriptors (so a loop ends), no INDIRECT flag,
//     device-readable descriptors come before device-writable ones, and
//     every buffer lies inside one region of the memory table;
//   - last_avail_ and used_idx_ are private counters; the shared used idx
//     and, with VIRTIO_F_EVENT_IDX, avail_event are only ever written, never
//     read back; the driver's used_event is read once per notification
//     decision and is only a hint (any value is safe: a lying driver gets
//     fewer or more signals, nothing is indexed with it);
//   - a queue that saw one invalid chain is broken: it processes nothing
//     more until the front end stops and restarts it (GET_VRING_BASE, then
//     SET_VRING_* again).
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "platform/vhost_user/memory_table.hpp"
#include "platform/vhost_user/protocol.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::vhost_user {

// One buffer of a chain, already translated.
struct Segment {
    std::uint64_t gpa = 0;
    std::byte* host = nullptr;
    std::uint32_t len = 0;
    bool device_writable = false;
};

struct Chain {
    std::uint16_t head = 0;
    std::vector<std::uint16_t> indices; // descriptor indices in chain order
    std::vector<Segment> segments;      // readable ones first
    std::uint64_t readable_bytes = 0;
    std::uint64_t writable_bytes = 0;
};

class DeviceQueue {
  public:
    // Configuration (SET_VRING_*). Changing size or addresses unmaps the
    // rings until the next map().
    void set_size(std::uint32_t size);
    void set_base(std::uint16_t base) { last_avail_ = used_idx_ = base; }
    void set_addr(const VringAddr& addr);
    void set_kick(UniqueFd fd) { kick_ = std::move(fd); }
    void set_call(UniqueFd fd) { call_ = std::move(fd); }
    void set_err(UniqueFd fd) { err_ = std::move(fd); }
    void set_enabled(bool on) { enabled_ = on; }
    // The ring starts; `event_idx`: VIRTIO_F_EVENT_IDX was negotiated (the
    // notification hints are avail_event / used_event, not the flags).
    void start(bool event_idx) {
        started_ = true;
        event_idx_ = event_idx;
        signalled_valid_ = false;
    }
    // GET_VRING_BASE: stops the ring, forgets the kick fd and the broken
    // state; returns the next avail index it would have processed.
    std::uint16_t stop();

    // Points the rings into `table`; fails (and leaves the queue unmapped)
    // if any ring is not entirely inside one region or is misaligned.
    // Without addresses or size yet, succeeds and stays unmapped.
    Result<void> map(const MemoryTable& table);
    // Whether map() would succeed against `table` (for SET_MEM_TABLE).
    [[nodiscard]] Result<void> check_mappable(const MemoryTable& table) const;

    [[nodiscard]] std::uint32_t size() const { return size_; }
    [[nodiscard]] bool started() const { return started_; }
    [[nodiscard]] bool enabled() const { return enabled_; }
    [[nodiscard]] bool mapped() const { return desc_ != nullptr; }
    [[nodiscard]] bool broken() const { return broken_.has_value(); }
    [[nodiscard]] const std::string& broken_reason() const { return *broken_; }
    [[nodiscard]] bool running() const { return started_ && enabled_ && mapped() && !broken(); }
    [[nodiscard]] int kick_fd() const { return kick_.get(); }
    [[nodiscard]] int call_fd() const { return call_.get(); }
    [[nodiscard]] std::uint16_t used_idx() const { return used_idx_; }

    // Kick suppression while the device works through the ring
    // (VIRTQ_USED_F_NO_NOTIFY, a hint to the driver): on while processing;
    // turned off before the device goes back to sleep, followed by a full
    // barrier so that has_avail() afterwards sees every chain the driver
    // published without kicking (the driver reads the flag after a full
    // barrier too, so one of the two sees the other's store). With
    // EVENT_IDX: "off" publishes avail_event = the next chain to take (a
    // kick is wanted once the driver publishes it), "on" leaves avail_event
    // behind, where the driver's later chains do not cross it.
    void suppress_kicks(bool on);
    // Whether the driver published chains not taken yet (reads avail idx once;
    // pop() validates it).
    [[nodiscard]] bool has_avail() const;

    // Takes the next available chain (nullopt: none). An invalid chain is an
    // error; the caller marks the queue broken.
    Result<std::optional<Chain>> pop(const MemoryTable& table);
    // The chain `ahead` entries after the next one to take, read and
    // validated like pop() but left in the ring (nullopt: not published).
    [[nodiscard]] Result<std::optional<Chain>> peek(const MemoryTable& table,
                                                    std::uint16_t ahead) const;

    // Writes used entry {id, len} at the private used index and advances it;
    // the driver sees it only after publish_used().
    void add_used(std::uint32_t id, std::uint32_t len);
    // Moves the private used index without writing entries (hostile jump).
    void advance_used(std::uint16_t by) { used_idx_ = static_cast<std::uint16_t>(used_idx_ + by); }
    // Stores the used idx (release: entries are visible first).
    void publish_used();
    // Signals the call eventfd unless the driver set VRING_AVAIL_F_NO_INTERRUPT,
    // or with EVENT_IDX, unless the entries published since the last call
    // miss the driver's used_event.
    void notify();
    // Signals the call eventfd unconditionally (hostile interrupt storm).
    void force_notify();

    // Marks the queue broken (reason kept for logs), signals the err eventfd.
    void mark_broken(std::string reason);

    // The shared descriptor table (hostile rewrite-descriptors writes it).
    [[nodiscard]] std::byte* desc_table() const { return desc_; }

  private:
    struct Rings {
        std::byte* desc = nullptr;
        std::byte* avail = nullptr;
        std::byte* used = nullptr;
    };
    [[nodiscard]] Result<Rings> translate(const MemoryTable& table) const;
    void unmap() { desc_ = avail_ = used_ = nullptr; }

    std::uint32_t size_ = 0;
    std::optional<VringAddr> addr_;
    std::byte* desc_ = nullptr;
    std::byte* avail_ = nullptr;
    std::byte* used_ = nullptr;
    std::uint16_t last_avail_ = 0; // next avail ring entry to take
    std::uint16_t used_idx_ = 0;   // next used ring slot to fill
    bool started_ = false;
    bool enabled_ = false;
    bool event_idx_ = false;
    std::uint16_t signalled_used_ = 0; // used idx at the last notify() (EVENT_IDX)
    bool signalled_valid_ = false;     // false until the first notify() after start
    std::optional<std::string> broken_;
    UniqueFd kick_;
    UniqueFd call_;
    UniqueFd err_;
};

} // namespace svmkit::vhost_user
