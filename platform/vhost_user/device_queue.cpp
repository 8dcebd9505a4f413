#include "platform/vhost_user/device_queue.hpp"

#include "platform/vhost_user/virtio_blk.hpp"

#include <cstdint>
#include <sys/eventfd.h>
#include <unistd.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "ring fields are read with native atomic loads: little-endian hosts only");

namespace svmkit::vhost_user {

namespace {

// Shared ring memory is accessed only through these: one atomic access per
// read or write, so a value the driver changes concurrently is seen once.
template <typename T>
T load_shared(const std::byte* p) {
    return __atomic_load_n(reinterpret_cast<const T*>(p), __ATOMIC_RELAXED);
}

template <typename T>
void store_shared(std::byte* p, T v) {
    __atomic_store_n(reinterpret_cast<T*>(p), v, __ATOMIC_RELAXED);
}

void signal(int fd) {
    if (fd < 0)
        return;
    const std::uint64_t one = 1;
    // A full eventfd counter (EAGAIN) or a closed peer is not our problem.
    (void)!::write(fd, &one, sizeof one);
}

} // namespace

void DeviceQueue::set_size(std::uint32_t size) {
    size_ = size;
    unmap();
}

void DeviceQueue::set_addr(const VringAddr& addr) {
    addr_ = addr;
    unmap();
}

std::uint16_t DeviceQueue::stop() {
    started_ = false;
    kick_ = UniqueFd();
    broken_.reset();
    return last_avail_;
}

Result<DeviceQueue::Rings> DeviceQueue::translate(const MemoryTable& table) const {
    if (!addr_ || size_ == 0)
        return Rings{};
    struct Part {
        const char* name;
        std::uint64_t user;
        std::uint64_t bytes;
        std::uint64_t align;
    };
    const Part parts[3] = {
        {"descriptor table", addr_->desc_user, desc_table_bytes(size_), kDescAlign},
        {"available ring", addr_->avail_user, avail_ring_bytes(size_), kAvailAlign},
        {"used ring", addr_->used_user, used_ring_bytes(size_), kUsedAlign},
    };
    std::byte* out[3] = {};
    for (int i = 0; i < 3; ++i) {
        auto p = table.user_range(parts[i].user, parts[i].bytes);
        if (!p)
            return fail(ExitCode::malformed,
                        "ring {}: {} at user address {:#x} (+{:#x}) is not inside the memory table",
                        addr_->index, parts[i].name, parts[i].user, parts[i].bytes);
        if (reinterpret_cast<std::uintptr_t>(*p) % parts[i].align != 0)
            return fail(ExitCode::malformed, "ring {}: {} at {:#x} is not {}-byte aligned",
                        addr_->index, parts[i].name, parts[i].user, parts[i].align);
        out[i] = *p;
    }
    return Rings{out[0], out[1], out[2]};
}

Result<void> DeviceQueue::check_mappable(const MemoryTable& table) const {
    SVM_CHECK(translate(table));
    return {};
}

Result<void> DeviceQueue::map(const MemoryTable& table) {
    unmap();
    SVM_TRY(rings, translate(table));
    desc_ = rings.desc;
    avail_ = rings.avail;
    used_ = rings.used;
    return {};
}

Result<std::optional<Chain>> DeviceQueue::pop(const MemoryTable& table) {
    SVM_TRY(chain, peek(table, 0));
    if (chain)
        ++last_avail_;
    return chain;
}

Result<std::optional<Chain>> DeviceQueue::peek(const MemoryTable& table,
                                               std::uint16_t ahead) const {
    if (!running())
        return std::optional<Chain>{};
    const auto avail_idx =
        __atomic_load_n(reinterpret_cast<const std::uint16_t*>(avail_ + 2), __ATOMIC_ACQUIRE);
    const auto pending = static_cast<std::uint16_t>(avail_idx - last_avail_);
    if (pending > size_)
        return fail(ExitCode::malformed, "avail idx {} is {} entries ahead of {}, queue size {}",
                    avail_idx, pending, last_avail_, size_);
    if (ahead >= pending)
        return std::optional<Chain>{};
    const auto entry = static_cast<std::uint16_t>(last_avail_ + ahead);
    const std::uint16_t head =
        load_shared<std::uint16_t>(avail_ + 4 + std::size_t{2} * (entry % size_));
    if (head >= size_)
        return fail(ExitCode::malformed, "avail entry {} names descriptor {} >= queue size {}",
                    entry, head, size_);
    Chain chain;
    chain.head = head;
    std::uint16_t index = head;
    for (;;) {
        if (chain.indices.size() >= size_)
            return fail(ExitCode::malformed, "chain at head {} is longer than the queue (a loop)",
                        head);
        const std::byte* d = desc_ + kDescSize * index;
        const auto addr = load_shared<std::uint64_t>(d);
        const auto len = load_shared<std::uint32_t>(d + 8);
        const auto flags = load_shared<std::uint16_t>(d + 12);
        const auto next = load_shared<std::uint16_t>(d + 14);
        chain.indices.push_back(index);
        if ((flags & kDescFlagIndirect) != 0)
            return fail(ExitCode::malformed, "descriptor {} is indirect (not negotiated)", index);
        const bool writable = (flags & kDescFlagWrite) != 0;
        if (!writable && chain.writable_bytes > 0)
            return fail(ExitCode::malformed,
                        "descriptor {} is device-readable after device-writable ones", index);
        auto host = table.guest_range(addr, len);
        if (!host)
            return fail(ExitCode::malformed,
                        "descriptor {} buffer {:#x}+{:#x} is not inside the memory table", index,
                        addr, len);
        chain.segments.push_back(Segment{addr, *host, len, writable});
        (writable ? chain.writable_bytes : chain.readable_bytes) += len;
        if ((flags & kDescFlagNext) == 0)
            break;
        if (next >= size_)
            return fail(ExitCode::malformed, "descriptor {} links to {} >= queue size {}", index,
                        next, size_);
        index = next;
    }
    return std::optional<Chain>(std::move(chain));
}

void DeviceQueue::suppress_kicks(bool on) {
    if (used_ == nullptr)
        return;
    if (!event_idx_)
        store_shared<std::uint16_t>(used_, on ? kUsedFlagNoNotify : std::uint16_t{0});
    else if (!on)
        store_shared<std::uint16_t>(used_ + 4 + std::size_t{8} * size_, last_avail_);
    if (!on)
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool DeviceQueue::has_avail() const {
    if (!running())
        return false;
    const auto avail_idx =
        __atomic_load_n(reinterpret_cast<const std::uint16_t*>(avail_ + 2), __ATOMIC_ACQUIRE);
    return avail_idx != last_avail_;
}

void DeviceQueue::add_used(std::uint32_t id, std::uint32_t len) {
    std::byte* elem = used_ + 4 + std::size_t{8} * (used_idx_ % size_);
    store_shared<std::uint32_t>(elem, id);
    store_shared<std::uint32_t>(elem + 4, len);
    ++used_idx_;
}

void DeviceQueue::publish_used() {
    if (used_ == nullptr)
        return;
    __atomic_store_n(reinterpret_cast<std::uint16_t*>(used_ + 2), used_idx_, __ATOMIC_RELEASE);
}

void DeviceQueue::notify() {
    if (avail_ == nullptr)
        return;
    // Order the used idx store before reading the driver's hint.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!event_idx_) {
        if ((load_shared<std::uint16_t>(avail_) & kAvailFlagNoInterrupt) != 0)
            return;
        signal(call_.get());
        return;
    }
    // Signal when the entries published since the last call, [old, new),
    // include used_event (virtio 1.x, "vring_need_event").
    const auto event = load_shared<std::uint16_t>(avail_ + 4 + std::size_t{2} * size_);
    const std::uint16_t old = signalled_used_;
    const bool valid = signalled_valid_;
    signalled_used_ = used_idx_;
    signalled_valid_ = true;
    if (!valid || static_cast<std::uint16_t>(used_idx_ - event - 1) <
                      static_cast<std::uint16_t>(used_idx_ - old))
        signal(call_.get());
}

void DeviceQueue::force_notify() {
    signal(call_.get());
}

void DeviceQueue::mark_broken(std::string reason) {
    broken_ = std::move(reason);
    signal(err_.get());
}

} // namespace svmkit::vhost_user
