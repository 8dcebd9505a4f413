#include "guest/virtio_mmio.h"

#include <string.h>

namespace svmkit::guest {

namespace {

// How often reset() looks for status 0 and config_read() retries a changing
// generation before giving up on the device (a device may be slow; it may
// not stall the guest forever).
constexpr int kResetPolls = 100;
constexpr int kConfigRetries = 8;

void format_name(char* out, size_t cap, uint64_t base) {
    static_assert(sizeof("virtio-mmio@0x") - 1 + 16 < 32);
    const char prefix[] = "virtio-mmio@0x";
    size_t n = sizeof(prefix) - 1;
    memcpy(out, prefix, n);
    char digits[20];
    for (size_t d = format_hex(base, digits); d < sizeof digits && n + 1 < cap; ++d)
        out[n++] = digits[d];
    out[n] = '\0';
}

} // namespace

VirtioMmio::VirtioMmio(const Calls* calls, uint64_t base, uint64_t size, VirtioReport* report)
    : calls_(calls), base_(base), size_(size), report_(report) {
    format_name(name_, sizeof(name_), base);
}

bool VirtioMmio::read(uint32_t offset, uint32_t size, uint64_t* value) {
    uint64_t end = 0;
    if (transport_failed_ || add_overflows(offset, size, &end) || end > size_) {
        transport_failed_ = true;
        return false;
    }
    svmkit_regs regs{};
    const long rc = calls_->hcall(H_SVMKIT_MMIO_READ, base_ + offset, size, 0, 0, &regs);
    if (rc != H_SUCCESS) {
        transport_failed_ = true;
        return false;
    }
    const uint64_t mask = size == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1;
    *value = regs.r[4] & mask;
    return true;
}

bool VirtioMmio::read32(uint32_t offset, uint32_t* value) {
    uint64_t v = 0;
    if (!read(offset, 4, &v))
        return false;
    *value = static_cast<uint32_t>(v);
    return true;
}

bool VirtioMmio::write32(uint32_t offset, uint32_t value) {
    if (transport_failed_ || offset + 4 > size_) {
        transport_failed_ = true;
        return false;
    }
    const long rc = calls_->hcall(H_SVMKIT_MMIO_WRITE, base_ + offset, 4, value);
    if (rc != H_SUCCESS) {
        transport_failed_ = true;
        return false;
    }
    return true;
}

bool VirtioMmio::set_status(uint32_t bits) {
    status_ |= bits;
    return write32(kVirtioMmioStatus, status_);
}

VirtioErr VirtioMmio::transport_error(uint32_t offset, const char* what) {
    if (report_ != nullptr)
        report_->begin(VirtioErr::transport, name_)
            .str("register access failed (")
            .str(what)
            .str(" at offset ")
            .hex(offset)
            .str(")")
            .end();
    return VirtioErr::transport;
}

VirtioErr VirtioMmio::refuse(VirtioErr code) {
    fail();
    return code;
}

VirtioErr VirtioMmio::probe(uint32_t device_id) {
    if (size_ < kVirtioMmioConfig || (base_ & 3) != 0) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::bad_argument, name_)
                .str("register window of ")
                .dec(size_)
                .str(" bytes is too small or misaligned")
                .end();
        return VirtioErr::bad_argument;
    }
    uint32_t magic = 0;
    uint32_t version = 0;
    uint32_t id = 0;
    if (!read32(kVirtioMmioMagicValue, &magic))
        return transport_error(kVirtioMmioMagicValue, "MagicValue");
    if (magic != kVirtioMmioMagic) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::not_virtio, name_)
                .str("magic value ")
                .hex(magic)
                .str(" is not \"virt\" (0x74726976)")
                .end();
        return VirtioErr::not_virtio;
    }
    if (!read32(kVirtioMmioVersion, &version))
        return transport_error(kVirtioMmioVersion, "Version");
    if (version != kVirtioMmioVersion2) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::bad_version, name_)
                .str("virtio-mmio version ")
                .dec(version)
                .str(" is not supported (version 2 required; 1 is the legacy interface)")
                .end();
        return VirtioErr::bad_version;
    }
    if (!read32(kVirtioMmioDeviceId, &id))
        return transport_error(kVirtioMmioDeviceId, "DeviceID");
    device_id_ = id;
    if (id != device_id) {
        if (report_ != nullptr) {
            report_->begin(VirtioErr::wrong_device, name_).str("device id ").dec(id);
            report_->str(id == 0 ? " (no device)" : "").str(", expected ").dec(device_id).end();
        }
        return VirtioErr::wrong_device;
    }
    const VirtioErr r = reset();
    if (r != VirtioErr::none)
        return r;
    if (!set_status(kVirtioStatusAcknowledge) || !set_status(kVirtioStatusDriver))
        return transport_error(kVirtioMmioStatus, "Status");
    return VirtioErr::none;
}

VirtioErr VirtioMmio::reset() {
    status_ = 0;
    features_ = 0;
    if (!write32(kVirtioMmioStatus, 0))
        return transport_error(kVirtioMmioStatus, "Status");
    for (int i = 0; i < kResetPolls; ++i) {
        uint32_t s = 0;
        if (!read32(kVirtioMmioStatus, &s))
            return transport_error(kVirtioMmioStatus, "Status");
        if (s == 0)
            return VirtioErr::none;
        calls_->hcall(H_CEDE);
    }
    if (report_ != nullptr)
        report_->begin(VirtioErr::device_failed, name_).str("device did not reset").end();
    return VirtioErr::device_failed;
}

VirtioErr VirtioMmio::negotiate(uint64_t required, uint64_t wanted) {
    uint32_t lo = 0;
    uint32_t hi = 0;
    if (!write32(kVirtioMmioDeviceFeaturesSel, 0) || !read32(kVirtioMmioDeviceFeatures, &lo) ||
        !write32(kVirtioMmioDeviceFeaturesSel, 1) || !read32(kVirtioMmioDeviceFeatures, &hi)) {
        transport_error(kVirtioMmioDeviceFeatures, "DeviceFeatures");
        return refuse(VirtioErr::transport);
    }
    const uint64_t offered = (uint64_t{hi} << 32) | lo;
    required |= kVirtioRequiredFeatures;
    const uint64_t missing = required & ~offered;
    if (missing != 0) {
        if (report_ != nullptr) {
            report_->begin(VirtioErr::missing_feature, name_).str("device refused: ");
            if ((missing & virtio_bit(kVirtioFVersion1)) != 0)
                report_->str("it lacks VIRTIO_F_VERSION_1 (feature bit 32; legacy devices are "
                             "not supported)");
            else if ((missing & virtio_bit(kVirtioFAccessPlatform)) != 0)
                report_->str("it lacks VIRTIO_F_ACCESS_PLATFORM (feature bit 33; without it "
                             "the device would bypass the DMA API and the bounce pool)");
            else
                report_->str("it lacks required feature bits ").hex(missing);
            report_->str("; offered ").hex(offered).end();
        }
        return refuse(VirtioErr::missing_feature);
    }
    const uint64_t accept = offered & (required | wanted) & ~kVirtioRefusedFeatures;
    if (!write32(kVirtioMmioDriverFeaturesSel, 0) ||
        !write32(kVirtioMmioDriverFeatures, static_cast<uint32_t>(accept)) ||
        !write32(kVirtioMmioDriverFeaturesSel, 1) ||
        !write32(kVirtioMmioDriverFeatures, static_cast<uint32_t>(accept >> 32)) ||
        !set_status(kVirtioStatusFeaturesOk)) {
        transport_error(kVirtioMmioDriverFeatures, "DriverFeatures");
        return refuse(VirtioErr::transport);
    }
    uint32_t s = 0;
    if (!read32(kVirtioMmioStatus, &s)) {
        transport_error(kVirtioMmioStatus, "Status");
        return refuse(VirtioErr::transport);
    }
    if ((s & kVirtioStatusFeaturesOk) == 0) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::features_rejected, name_)
                .str("device rejected features ")
                .hex(accept)
                .end();
        return refuse(VirtioErr::features_rejected);
    }
    features_ = accept;
    return VirtioErr::none;
}

VirtioErr VirtioMmio::queue_max(uint16_t index, uint16_t* max) {
    uint32_t ready = 0;
    uint32_t num_max = 0;
    if (!write32(kVirtioMmioQueueSel, index) || !read32(kVirtioMmioQueueReady, &ready) ||
        !read32(kVirtioMmioQueueNumMax, &num_max))
        return transport_error(kVirtioMmioQueueNumMax, "QueueNumMax");
    if (ready != 0 || num_max == 0) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::queue_unavailable, name_)
                .str("queue ")
                .dec(index)
                .str(ready != 0 ? " is already live" : " does not exist")
                .end();
        return VirtioErr::queue_unavailable;
    }
    *max = num_max > kVirtqMaxSizeSpec ? static_cast<uint16_t>(kVirtqMaxSizeSpec)
                                       : static_cast<uint16_t>(num_max);
    return VirtioErr::none;
}

VirtioErr VirtioMmio::enable_queue(const Virtqueue& vq) {
    const auto lo = [](uint64_t v) {
        return static_cast<uint32_t>(v);
    };
    const auto hi = [](uint64_t v) {
        return static_cast<uint32_t>(v >> 32);
    };
    if (!vq.ready())
        return VirtioErr::bad_argument;
    if (!write32(kVirtioMmioQueueSel, vq.index()) || !write32(kVirtioMmioQueueNum, vq.size()) ||
        !write32(kVirtioMmioQueueDescLow, lo(vq.desc_addr())) ||
        !write32(kVirtioMmioQueueDescHigh, hi(vq.desc_addr())) ||
        !write32(kVirtioMmioQueueDriverLow, lo(vq.avail_addr())) ||
        !write32(kVirtioMmioQueueDriverHigh, hi(vq.avail_addr())) ||
        !write32(kVirtioMmioQueueDeviceLow, lo(vq.used_addr())) ||
        !write32(kVirtioMmioQueueDeviceHigh, hi(vq.used_addr())) ||
        !write32(kVirtioMmioQueueReady, 1))
        return transport_error(kVirtioMmioQueueReady, "queue setup");
    return VirtioErr::none;
}

VirtioErr VirtioMmio::driver_ok() {
    if (!set_status(kVirtioStatusDriverOk))
        return transport_error(kVirtioMmioStatus, "Status");
    return check_device();
}

void VirtioMmio::fail() {
    // Best effort: a failing transport cannot be told anything anyway.
    const bool failed = transport_failed_;
    transport_failed_ = false;
    set_status(kVirtioStatusFailed);
    transport_failed_ = transport_failed_ || failed;
}

VirtioErr VirtioMmio::notify(uint16_t queue) {
    if (!write32(kVirtioMmioQueueNotify, queue))
        return transport_error(kVirtioMmioQueueNotify, "QueueNotify");
    return VirtioErr::none;
}

uint32_t VirtioMmio::wait() {
    calls_->hcall(H_CEDE);
    uint32_t bits = 0;
    if (!read32(kVirtioMmioInterruptStatus, &bits))
        return 0;
    bits &= kVirtioMmioIntUsedBuffer | kVirtioMmioIntConfigChange;
    if (bits != 0)
        write32(kVirtioMmioInterruptAck, bits);
    return bits;
}

VirtioErr VirtioMmio::check_device() {
    uint32_t s = 0;
    if (!read32(kVirtioMmioStatus, &s))
        return transport_error(kVirtioMmioStatus, "Status");
    if ((s & kVirtioStatusNeedsReset) != 0) {
        if (report_ != nullptr)
            report_->begin(VirtioErr::device_failed, name_)
                .str("device needs a reset (status ")
                .hex(s)
                .str(")")
                .end();
        return VirtioErr::device_failed;
    }
    return VirtioErr::none;
}

VirtioErr VirtioMmio::config_read(uint32_t offset, uint32_t size, uint64_t* value) {
    uint64_t end = 0;
    if ((size != 1 && size != 2 && size != 4 && size != 8) ||
        offset % (size == 8 ? 4 : size) != 0 ||
        add_overflows(uint64_t{kVirtioMmioConfig} + offset, size, &end) || end > size_)
        return VirtioErr::bad_argument;
    const uint32_t at = kVirtioMmioConfig + offset;
    for (int attempt = 0; attempt < kConfigRetries; ++attempt) {
        uint32_t before = 0;
        uint32_t after = 0;
        uint64_t v = 0;
        uint64_t high = 0;
        if (!read32(kVirtioMmioConfigGeneration, &before) || !read(at, size == 8 ? 4 : size, &v) ||
            (size == 8 && !read(at + 4, 4, &high)) || !read32(kVirtioMmioConfigGeneration, &after))
            return transport_error(at, "config space");
        if (before == after) {
            *value = v | (high << 32);
            return VirtioErr::none;
        }
    }
    if (report_ != nullptr)
        report_->begin(VirtioErr::device_failed, name_)
            .str("configuration space at ")
            .hex(offset)
            .str(" kept changing")
            .end();
    return VirtioErr::device_failed;
}

} // namespace svmkit::guest
