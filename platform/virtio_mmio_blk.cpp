#include "platform/virtio_mmio_blk.hpp"

#include "base/checked.hpp"

#include <cstdio>

namespace svmkit::platform {

namespace {

// virtio-mmio v2 register offsets (virtio 1.x, "MMIO Device Register Layout").
enum Reg : std::uint64_t {
    kMagic = 0x000,
    kVersion = 0x004,
    kDeviceId = 0x008,
    kVendorId = 0x00c,
    kDeviceFeatures = 0x010,
    kDeviceFeaturesSel = 0x014,
    kDriverFeatures = 0x020,
    kDriverFeaturesSel = 0x024,
    kQueueSel = 0x030,
    kQueueNumMax = 0x034,
    kQueueNum = 0x038,
    kQueueReady = 0x044,
    kQueueNotify = 0x050,
    kInterruptStatus = 0x060,
    kInterruptAck = 0x064,
    kStatus = 0x070,
    kQueueDescLow = 0x080,
    kQueueDescHigh = 0x084,
    kQueueDriverLow = 0x090,
    kQueueDriverHigh = 0x094,
    kQueueDeviceLow = 0x0a0,
    kQueueDeviceHigh = 0x0a4,
    kConfigGeneration = 0x0fc,
    kConfig = 0x100,
};

constexpr std::uint32_t kMagicValue = 0x74726976; // "virt"
constexpr std::uint32_t kVirtioBlkId = 2;
constexpr std::uint32_t kSvmkitVendor = 0x4b4d5653; // "SVMK"

// Device status bits.
constexpr std::uint32_t kStatusFeaturesOk = 8;
constexpr std::uint32_t kStatusDriverOk = 4;
constexpr std::uint32_t kStatusNeedsReset = 64;

constexpr std::uint64_t kFeatureVersion1 = 1ull << 32;
constexpr std::uint64_t kFeatureAccessPlatform = 1ull << 33;
// Transport-level vhost-user bits the driver never sees.
constexpr std::uint64_t kHiddenFeatures = vhost_user::kFeatureProtocolFeatures | (1ull << 26);

// The virtio-blk configuration space is 60 bytes in virtio 1.2 (up to
// write_zeroes_may_unmap and padding); ask the back end for that much.
constexpr std::uint32_t kBlkConfigSize = 60;

void set_low(std::uint64_t& field, std::uint64_t v) {
    field = (field & ~0xffffffffull) | (v & 0xffffffffull);
}
void set_high(std::uint64_t& field, std::uint64_t v) {
    field = (field & 0xffffffffull) | ((v & 0xffffffffull) << 32);
}

bool inside(const HvMemoryView& m, std::uint64_t gpa, std::uint64_t len) {
    const auto end = checked_add(gpa, len);
    if (!end)
        return false;
    for (const auto& [base, size] : m.visible)
        if (gpa >= base && *end <= base + size)
            return true;
    return false;
}

} // namespace

Result<std::unique_ptr<VirtioMmioBlk>> VirtioMmioBlk::create(vhost_user::Frontend frontend,
                                                             VirtioBlkBackendInfo info, int kick_fd,
                                                             int call_fd) {
    auto dev =
        std::unique_ptr<VirtioMmioBlk>(new VirtioMmioBlk(std::move(frontend), std::move(info)));
    dev->kick_fd_ = kick_fd;
    dev->call_fd_ = call_fd;
    vhost_user::Frontend& fe = dev->frontend_;
    SVM_CHECK(fe.set_owner());
    SVM_TRY(offered, fe.get_features());
    dev->backend_features_ = offered;
    if ((offered & vhost_user::kFeatureProtocolFeatures) != 0) {
        SVM_TRY(protocol, fe.get_protocol_features());
        SVM_CHECK(fe.set_protocol_features(
            protocol & (vhost_user::kProtocolReplyAck | vhost_user::kProtocolConfig)));
    }
    if (!fe.negotiated().has_protocol(vhost_user::kProtocolConfig))
        return fail(ExitCode::io,
                    "{}: the back end cannot report its configuration (no "
                    "CONFIG protocol feature)",
                    dev->info_.name);
    SVM_TRY(config, fe.get_config(0, kBlkConfigSize));
    dev->config_ = std::move(config);
    return dev;
}

std::uint64_t VirtioMmioBlk::device_features() const {
    std::uint64_t f = backend_features_ & ~kHiddenFeatures;
    if (info_.platform_supplies_access_platform)
        f |= kFeatureAccessPlatform;
    return f;
}

std::optional<std::uint64_t> VirtioMmioBlk::read(std::uint64_t offset, unsigned size) const {
    if (offset >= kConfig) {
        const std::uint64_t at = offset - kConfig;
        if (at + size > config_.size())
            return std::nullopt;
        std::uint64_t v = 0; // little-endian, as virtio 1.x config fields
        for (unsigned i = 0; i < size; ++i)
            v |= static_cast<std::uint64_t>(config_[at + i]) << (8 * i);
        return v;
    }
    if (size != 4)
        return std::nullopt; // the register block allows 32-bit accesses only
    switch (offset) {
    case kMagic:
        return kMagicValue;
    case kVersion:
        return 2;
    case kDeviceId:
        return kVirtioBlkId;
    case kVendorId:
        return kSvmkitVendor;
    case kDeviceFeatures:
        return device_features_sel_ == 0   ? device_features() & 0xffffffffull
               : device_features_sel_ == 1 ? device_features() >> 32
                                           : 0;
    case kQueueNumMax:
        return queue_sel_ == 0 ? kMaxQueueSize : 0;
    case kQueueReady:
        return queue_sel_ == 0 && queue_.ready ? 1 : 0;
    case kInterruptStatus:
        // Used-buffer notifications go from the back end straight to the
        // vCPU (the call eventfd), and the machine answers this register
        // itself for its disks (the bit H_CEDE latched). Asked here anyway:
        // while the queue runs, one may be pending, so a driver that asks
        // checks its used ring.
        return running_ ? 1 : 0;
    case kStatus:
        return status_;
    case kConfigGeneration:
        return 0;
    default:
        return std::nullopt;
    }
}

bool VirtioMmioBlk::write(std::uint64_t offset, unsigned size, std::uint64_t value,
                          const HvMemoryView& memory) {
    if (size != 4)
        return false;
    const bool queue_writable = queue_sel_ == 0 && !queue_.ready;
    switch (offset) {
    case kDeviceFeaturesSel:
        device_features_sel_ = static_cast<std::uint32_t>(value);
        return true;
    case kDriverFeatures:
        if (driver_features_sel_ == 0)
            set_low(driver_features_, value);
        else if (driver_features_sel_ == 1)
            set_high(driver_features_, value);
        return true;
    case kDriverFeaturesSel:
        driver_features_sel_ = static_cast<std::uint32_t>(value);
        return true;
    case kQueueSel:
        queue_sel_ = static_cast<std::uint32_t>(value);
        return true;
    case kQueueNum:
        if (queue_writable)
            queue_.num = static_cast<std::uint32_t>(value);
        return true;
    case kQueueReady:
        if (queue_sel_ == 0)
            queue_.ready = (value & 1) != 0;
        return true;
    case kQueueNotify:  // normally the machine's kick eventfd; other queues: nothing to wake
    case kInterruptAck: // normally the machine's latched interrupt; nothing to acknowledge here
        return true;
    case kStatus:
        set_status(static_cast<std::uint32_t>(value), memory);
        return true;
    case kQueueDescLow:
    case kQueueDescHigh:
    case kQueueDriverLow:
    case kQueueDriverHigh:
    case kQueueDeviceLow:
    case kQueueDeviceHigh: {
        if (!queue_writable)
            return true; // ignored while the queue is live, as the spec asks
        std::uint64_t& field = offset < kQueueDriverLow   ? queue_.desc
                               : offset < kQueueDeviceLow ? queue_.driver
                                                          : queue_.device;
        if ((offset & 4) == 0)
            set_low(field, value);
        else
            set_high(field, value);
        return true;
    }
    default:
        return false;
    }
}

void VirtioMmioBlk::set_status(std::uint32_t value, const HvMemoryView& memory) {
    if (value == 0) {
        reset();
        return;
    }
    if ((value & kStatusFeaturesOk) != 0 && (status_ & kStatusFeaturesOk) == 0) {
        // The driver may only accept what was offered, and must accept VERSION_1.
        if ((driver_features_ & ~device_features()) != 0 ||
            (driver_features_ & kFeatureVersion1) == 0)
            value &= ~kStatusFeaturesOk;
    }
    const bool starting = (value & kStatusDriverOk) != 0 && (status_ & kStatusDriverOk) == 0;
    status_ = value | (status_ & kStatusNeedsReset);
    if (starting) {
        if (auto r = start(memory); !r)
            needs_reset(r.error());
    }
}

Result<void> VirtioMmioBlk::start(const HvMemoryView& memory) {
    if (!queue_.ready || queue_.num == 0 || queue_.num > kMaxQueueSize ||
        (queue_.num & (queue_.num - 1)) != 0)
        return fail(ExitCode::io, "{}: DRIVER_OK without a ready queue of a valid size",
                    info_.name);
    const std::uint64_t n = queue_.num;
    if (!inside(memory, queue_.desc, 16 * n) || !inside(memory, queue_.driver, 6 + 2 * n) ||
        !inside(memory, queue_.device, 6 + 8 * n))
        return fail(ExitCode::io,
                    "{}: the rings are not in memory the device can reach "
                    "(a secure guest must place them in shared pages)",
                    info_.name);
    std::uint64_t acked = driver_features_ & ~kFeatureAccessPlatform;
    acked |= backend_features_ & (driver_features_ & kFeatureAccessPlatform);
    acked |= backend_features_ & vhost_user::kFeatureProtocolFeatures;
    SVM_CHECK(frontend_.set_features(acked));
    // Started before and reset since (a normal guest's boot loader used the
    // device, then the secure kernel starts it inside its shared pool): the
    // back end still holds the old ring addresses, and libvhost-user remaps
    // them on every SET_MEM_TABLE, dropping the connection when the new table
    // leaves them out. Point the ring at its new place first, while the old
    // table still covers it (start_queue sends the address again).
    if (table_sent_)
        SVM_CHECK(frontend_.set_vring_addr(vhost_user::VringAddr{
            0, 0, memory.user_base + queue_.desc, memory.user_base + queue_.device,
            memory.user_base + queue_.driver, 0}));
    memory_changed(memory);
    if ((status_ & kStatusNeedsReset) != 0)
        return fail(ExitCode::io, "{}: the memory table was refused", info_.name);
    table_sent_ = true;
    vhost_user::QueueSetup q;
    q.size = queue_.num;
    q.desc_user = memory.user_base + queue_.desc;
    q.avail_user = memory.user_base + queue_.driver;
    q.used_user = memory.user_base + queue_.device;
    q.base = 0;
    q.kick_fd = kick_fd_;
    q.call_fd = call_fd_;
    SVM_CHECK(frontend_.start_queue(0, q));
    running_ = true;
    return {};
}

void VirtioMmioBlk::memory_changed(const HvMemoryView& memory) {
    if ((status_ & kStatusDriverOk) == 0 || (status_ & kStatusNeedsReset) != 0)
        return;
    if (memory.visible.empty()) {
        // A secure guest that shares nothing: the device can reach nothing.
        stop();
        needs_reset(Error{ExitCode::io, info_.name + ": no memory left that the device may reach"});
        return;
    }
    std::vector<vhost_user::MemoryRegion> regions;
    for (const auto& [gpa, size] : memory.visible)
        regions.push_back({memory.fd, gpa, size, memory.user_base + gpa, gpa});
    auto r = regions.size() > vhost_user::kMaxRegions
                 ? Result<void>(fail(ExitCode::io,
                                     "{}: {} shared ranges, a back end takes at "
                                     "most {}",
                                     info_.name, regions.size(), vhost_user::kMaxRegions))
                 : frontend_.set_mem_table(regions);
    if (!r)
        needs_reset(r.error());
}

void VirtioMmioBlk::stop() {
    if (!running_)
        return;
    running_ = false;
    if (auto r = frontend_.get_vring_base(0); !r)
        needs_reset(r.error());
}

void VirtioMmioBlk::reset() {
    stop();
    status_ = 0;
    driver_features_ = 0;
    device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
    queue_ = Queue{};
}

void VirtioMmioBlk::needs_reset(const Error& why) {
    std::fprintf(stderr, "svmkit-hypervisor: %s\n", why.message.c_str());
    status_ |= kStatusNeedsReset;
    running_ = false;
}

} // namespace svmkit::platform
