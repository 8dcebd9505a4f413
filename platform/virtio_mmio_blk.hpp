// A virtio-blk device as the hypervisor process presents it: virtio-mmio
// version 2 registers (the guest reaches them with H_SVMKIT_MMIO_READ/WRITE)
// in front of a vhost-user-blk back end (svmkit-vhost-blk or
// qemu-storage-daemon) that does the actual I/O.
//
// The register file follows the virtio 1.x specification, section "MMIO
// Device Register Layout". What the registers set up is handed to the back
// end when the driver sets DRIVER_OK: the acknowledged features, the memory
// table (what the hypervisor can see of guest RAM: everything for a normal
// guest, only the shared pages for a secure one), the ring addresses and the
// queue's kick and call eventfds. Those eventfds are the machine's: a
// QueueNotify write goes from the vCPU straight into the kick eventfd (KVM's
// ioeventfd), and the back end's call wakes the vCPU's H_CEDE (irqfd), so the
// hypervisor is not on the I/O path at all.
//
// A back end that fails a request moves the device to DEVICE_NEEDS_RESET; it
// never stops the machine. One virtqueue (request queue 0).
//
// Invariants: running_ is true exactly while the back end has a started
// queue; queue_ holds what the driver wrote since the last reset; status_
// only gains bits the driver wrote, plus DEVICE_NEEDS_RESET.
#pragma once

#include "base/error.hpp"
#include "platform/vhost_user/frontend.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::platform {

// What the hypervisor can currently hand to a back end (its own mapping of
// the hypervisor-visible memfd, and which parts of it the guest exposes).
struct HvMemoryView {
    int fd = -1;                 // the hypervisor-visible memfd
    std::uint64_t user_base = 0; // where the hypervisor maps it (gpa 0)
    std::uint64_t size = 0;
    // The guest-physical ranges a back end may map: [gpa, gpa + size).
    std::vector<std::pair<std::uint64_t, std::uint64_t>> visible;
};

struct VirtioBlkBackendInfo {
    std::string name; // for messages: "disk0 (svmkit-vhost-blk)"
    // ACCESS_PLATFORM is the hypervisor's promise that the device only
    // reaches memory the platform lets it (here: the memory table). Set when
    // the back end cannot advertise it itself although it honours it
    // (qemu-storage-daemon's libvhost-user does not offer bit 33).
    bool platform_supplies_access_platform = false;
};

class VirtioMmioBlk {
  public:
    static constexpr std::uint32_t kMaxQueueSize = 256;

    // Sets up the connection (owner, protocol features, config) and learns
    // the device features. kick_fd/call_fd are borrowed.
    static Result<std::unique_ptr<VirtioMmioBlk>>
    create(vhost_user::Frontend frontend, VirtioBlkBackendInfo info, int kick_fd, int call_fd);

    // Register access at `offset` in the device's window, `size` bytes.
    // nullopt: no such register (the hypercall then fails with H_PARAMETER).
    std::optional<std::uint64_t> read(std::uint64_t offset, unsigned size) const;
    bool write(std::uint64_t offset, unsigned size, std::uint64_t value,
               const HvMemoryView& memory);
    // The guest's sharing changed: a running back end gets a new memory table.
    void memory_changed(const HvMemoryView& memory);

    [[nodiscard]] std::uint32_t status() const { return status_; }

  private:
    VirtioMmioBlk(vhost_user::Frontend frontend, VirtioBlkBackendInfo info)
        : frontend_(std::move(frontend)), info_(std::move(info)) {}
    std::uint64_t device_features() const;
    void set_status(std::uint32_t value, const HvMemoryView& memory);
    Result<void> start(const HvMemoryView& memory);
    void stop();
    void reset();
    void needs_reset(const Error& why);

    struct Queue {
        std::uint32_t num = 0;
        bool ready = false;
        std::uint64_t desc = 0, driver = 0, device = 0; // guest-physical
    };

    vhost_user::Frontend frontend_;
    VirtioBlkBackendInfo info_;
    int kick_fd_ = -1, call_fd_ = -1;
    std::uint64_t backend_features_ = 0;
    std::vector<std::byte> config_; // the back end's virtio-blk config space
    std::uint32_t device_features_sel_ = 0;
    std::uint32_t driver_features_sel_ = 0;
    std::uint64_t driver_features_ = 0;
    std::uint32_t status_ = 0;
    std::uint32_t queue_sel_ = 0;
    Queue queue_;
    bool running_ = false;
    bool table_sent_ = false; // the back end has a memory table (and ring addresses)
};

} // namespace svmkit::platform
