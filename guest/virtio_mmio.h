// The virtio-mmio transport, version 2 ("modern") register semantics
// (virtio 1.x, section 4.2.2), freestanding.
//
// The simulated machine cannot trap loads and stores, so every register
// access is a hypercall: H_SVMKIT_MMIO_READ / H_SVMKIT_MMIO_WRITE with the
// register's guest-physical address and width (on POWER they would be
// cache-inhibited loads and stores; only mmio_read/mmio_write change). A
// write to QueueNotify becomes a write to the queue's kick eventfd in the
// platform (KVM's ioeventfd), so notifying costs one hypercall and no round
// trip to the hypervisor process. Used-buffer notifications wake H_CEDE.
//
// Register values come from the hypervisor: untrusted like the rings. The
// driver keeps its own copy of the status it set (status_) and never
// read-modify-writes a device-supplied value; everything it reads is checked
// before use (magic, version, device id, feature bits, queue sizes).
#pragma once

#include "guest/hcall.h"
#include "guest/virtio.h"
#include "guest/virtqueue.h"

#include <stdint.h>

namespace svmkit::guest {

// Register offsets of virtio-mmio version 2.
inline constexpr uint32_t kVirtioMmioMagicValue = 0x000;
inline constexpr uint32_t kVirtioMmioVersion = 0x004;
inline constexpr uint32_t kVirtioMmioDeviceId = 0x008;
inline constexpr uint32_t kVirtioMmioVendorId = 0x00c;
inline constexpr uint32_t kVirtioMmioDeviceFeatures = 0x010;
inline constexpr uint32_t kVirtioMmioDeviceFeaturesSel = 0x014;
inline constexpr uint32_t kVirtioMmioDriverFeatures = 0x020;
inline constexpr uint32_t kVirtioMmioDriverFeaturesSel = 0x024;
inline constexpr uint32_t kVirtioMmioQueueSel = 0x030;
inline constexpr uint32_t kVirtioMmioQueueNumMax = 0x034;
inline constexpr uint32_t kVirtioMmioQueueNum = 0x038;
inline constexpr uint32_t kVirtioMmioQueueReady = 0x044;
inline constexpr uint32_t kVirtioMmioQueueNotify = 0x050;
inline constexpr uint32_t kVirtioMmioInterruptStatus = 0x060;
inline constexpr uint32_t kVirtioMmioInterruptAck = 0x064;
inline constexpr uint32_t kVirtioMmioStatus = 0x070;
inline constexpr uint32_t kVirtioMmioQueueDescLow = 0x080;
inline constexpr uint32_t kVirtioMmioQueueDescHigh = 0x084;
inline constexpr uint32_t kVirtioMmioQueueDriverLow = 0x090; // available ring
inline constexpr uint32_t kVirtioMmioQueueDriverHigh = 0x094;
inline constexpr uint32_t kVirtioMmioQueueDeviceLow = 0x0a0; // used ring
inline constexpr uint32_t kVirtioMmioQueueDeviceHigh = 0x0a4;
inline constexpr uint32_t kVirtioMmioConfigGeneration = 0x0fc;
inline constexpr uint32_t kVirtioMmioConfig = 0x100;

inline constexpr uint32_t kVirtioMmioMagic = 0x74726976; // "virt"
inline constexpr uint32_t kVirtioMmioVersion2 = 2;

inline constexpr uint32_t kVirtioMmioIntUsedBuffer = 1;
inline constexpr uint32_t kVirtioMmioIntConfigChange = 2;

// The features every device must offer to this guest: modern virtio, and DMA
// through the platform's DMA API (the bounce pool of a secure guest).
inline constexpr uint64_t kVirtioRequiredFeatures =
    virtio_bit(kVirtioFVersion1) | virtio_bit(kVirtioFAccessPlatform);
// Never accepted, whatever a driver asks for (see virtqueue.h).
inline constexpr uint64_t kVirtioRefusedFeatures =
    virtio_bit(kVirtioFIndirectDesc) | virtio_bit(kVirtioFRingPacked) |
    virtio_bit(kVirtioFInOrder) | virtio_bit(kVirtioFOrderPlatform) | virtio_bit(kVirtioFRingReset);

class VirtioMmio {
  public:
    // `base`/`size`: the device's register window (the FDT node's reg).
    // `calls` and `report` must outlive the transport.
    VirtioMmio(const Calls* calls, uint64_t base, uint64_t size, VirtioReport* report);
    VirtioMmio(const VirtioMmio&) = delete;
    VirtioMmio& operator=(const VirtioMmio&) = delete;

    // Checks magic, version 2 and that the device id is `device_id` (0 means
    // no device behind the window), resets the device and sets ACKNOWLEDGE
    // and DRIVER.
    VirtioErr probe(uint32_t device_id);
    // Reads the 64 offered feature bits. Refuses the device (FAILED status,
    // missing_feature) unless it offers every bit of kVirtioRequiredFeatures
    // and `required`; accepts offered & (required | wanted), minus
    // kVirtioRefusedFeatures; sets FEATURES_OK and checks the device kept it.
    VirtioErr negotiate(uint64_t required, uint64_t wanted);
    uint64_t features() const { return features_; }
    bool has_feature(unsigned bit) const { return (features_ & virtio_bit(bit)) != 0; }

    // The device's largest size for queue `index`, after checking the queue
    // exists and is not live yet.
    VirtioErr queue_max(uint16_t index, uint16_t* max);
    // Programs QueueNum and the ring addresses of `vq`, then QueueReady = 1.
    VirtioErr enable_queue(const Virtqueue& vq);
    // DRIVER_OK: the device is live.
    VirtioErr driver_ok();
    // FAILED: the driver gave up on the device (refused, or a ring broke).
    void fail();
    // Status 0 (device reset), waiting (bounded) for the device to show it.
    VirtioErr reset();

    // QueueNotify (the platform's kick eventfd).
    VirtioErr notify(uint16_t queue);
    // Idles the vCPU (H_CEDE) until an interrupt or the platform tick, then
    // acknowledges what InterruptStatus shows. Returns the interrupt bits.
    uint32_t wait();
    // DEVICE_NEEDS_RESET in the device's status (device_failed), or a
    // transport error.
    VirtioErr check_device();

    // Reads `size` (1, 2, 4 or 8) bytes of device configuration at `offset`,
    // retrying while ConfigGeneration changes (bounded). 8-byte fields are
    // read as two 32-bit halves, as virtio-mmio requires.
    VirtioErr config_read(uint32_t offset, uint32_t size, uint64_t* value);

    const char* name() const { return name_; }
    uint64_t base() const { return base_; }
    uint32_t device_id() const { return device_id_; }
    // True once any register access failed (the hypercall returned an error).
    bool transport_failed() const { return transport_failed_; }

  private:
    bool read32(uint32_t offset, uint32_t* value);
    bool read(uint32_t offset, uint32_t size, uint64_t* value);
    bool write32(uint32_t offset, uint32_t value);
    bool set_status(uint32_t bits);
    VirtioErr transport_error(uint32_t offset, const char* what);
    VirtioErr refuse(VirtioErr code);

    const Calls* calls_;
    uint64_t base_;
    uint64_t size_;
    VirtioReport* report_;
    char name_[32] = {};
    uint32_t device_id_ = 0;
    uint32_t status_ = 0; // what the driver set, never re-read from the device
    uint64_t features_ = 0;
    bool transport_failed_ = false;
};

} // namespace svmkit::guest
