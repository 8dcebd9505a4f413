// A virtio-mmio version 2 block device played by the test: the other side of
// the real protocol, reached through the platform's hypercall gates exactly
// as the simulated machine serves them (H_SVMKIT_MMIO_READ/WRITE for
// registers, H_CEDE to idle, H_PUT_TERM_CHAR for the console). It processes
// the rings in guest RAM (platform::GuestMemory at the fixed guest base) over
// an in-memory disk, and can misbehave on request: the tests reach into its
// state and the shared rings to play a hostile device.
//
// One model is active at a time (the gates are plain function pointers).
#pragma once

#include "guest/gates.h"
#include "guest/uv_abi.h"
#include "guest/virtio.h"
#include "guest/virtio_mmio.h"
#include "platform/guest_memory.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace svmkit::test {

using namespace svmkit::guest;

// The register window the tests probe (where the platform puts virtio nodes).
inline constexpr std::uint64_t kModelMmioBase = 0x100000000000;
inline constexpr std::uint64_t kModelMmioSize = 0x200;

// One chain the device popped from the available ring.
struct ModelChain {
    std::uint16_t head = 0;
    struct Buf {
        std::uint64_t addr;
        std::uint32_t len;
        bool write;
    };
    std::vector<Buf> bufs;
};

class VirtioBlkModel {
  public:
    enum class Completion {
        on_notify, // completes every chain inside the QueueNotify write
        on_cede,   // collects on notify, completes at the next H_CEDE
        manual,    // collects; the test completes (or forges) used entries
    };

    explicit VirtioBlkModel(platform::GuestMemory& memory, std::uint64_t disk_sectors = 2048)
        : disk(disk_sectors * 512), memory_(memory) {
        for (std::size_t i = 0; i < disk.size(); ++i)
            disk[i] = static_cast<std::uint8_t>(i * 7 + i / 512);
        active() = this;
    }
    ~VirtioBlkModel() { active() = nullptr; }
    VirtioBlkModel(const VirtioBlkModel&) = delete;
    VirtioBlkModel& operator=(const VirtioBlkModel&) = delete;

    // What the device offers and how it behaves (set before the driver probes).
    std::uint32_t magic = kVirtioMmioMagic;
    std::uint32_t version = 2;
    std::uint32_t device_id = kVirtioIdBlock;
    std::uint64_t offered = virtio_bit(kVirtioFVersion1) | virtio_bit(kVirtioFAccessPlatform) |
                            virtio_bit(kVirtioBlkFFlush) | virtio_bit(kVirtioBlkFBlkSize);
    std::uint32_t queue_num_max = 64;
    bool reject_features = false;   // clears FEATURES_OK
    bool unplugged = false;         // every MMIO hypercall fails (H_FUNCTION)
    bool generation_churns = false; // ConfigGeneration changes on every read
    std::uint32_t size_max = 0;     // config values (with their feature bits)
    std::uint32_t seg_max = 0;
    Completion completion = Completion::on_notify;
    bool reverse_order = false; // completes collected chains last-first
    std::vector<std::uint8_t> disk;
    std::string id = "svmkit-test-disk";
    // Status byte the next requests get instead of the real one (-1: real;
    // -2: leave the status byte unwritten).
    int forced_status = -1;
    // When set (a restricted device), every buffer the driver hands over must
    // lie inside this guest-physical window (the bounce pool); dma_outside
    // counts those that do not.
    std::uint64_t dma_window_base = 0, dma_window_size = 0;
    unsigned dma_outside = 0;
    // Runs instead of the normal completion of a chain when set: returns true
    // when it did complete (or forge) the chain itself.
    std::function<bool(VirtioBlkModel&, const ModelChain&)> on_complete;

    // What the driver did.
    std::vector<std::uint32_t> status_writes;
    std::uint32_t status = 0;
    std::uint64_t driver_features = 0;
    std::uint32_t queue_num = 0;
    std::uint64_t desc_addr = 0, avail_addr = 0, used_addr = 0;
    bool queue_ready = false;
    std::uint32_t interrupt_status = 0;
    std::uint32_t config_generation = 0;
    unsigned notifies = 0, cedes = 0, acks = 0, flushes = 0, resets = 0;
    // H_CEDEs during which the driver's avail flags asked for no interrupt
    // (VIRTQ_AVAIL_F_NO_INTERRUPT set while it sleeps: it could miss a wake).
    unsigned cedes_with_interrupts_off = 0;
    // With VIRTIO_F_EVENT_IDX: at each H_CEDE, how many completions from now
    // the driver's used_event asks to be woken at (1 = the next one), and
    // the H_CEDEs where no completion still to come could reach it (the
    // driver would sleep through all of them).
    std::vector<std::uint16_t> used_event_at_cede;
    unsigned cedes_unreachable_event = 0;
    // What the device writes to avail_event after taking chains (EVENT_IDX):
    // by default the next chain it will take (a sane device going to sleep);
    // a test playing a lying device sets a value of its own.
    std::optional<std::uint16_t> forced_avail_event;
    std::size_t max_outstanding = 0; // chains popped and not completed, at most
    std::vector<ModelChain> outstanding;
    std::string console;
    // Register accesses with a width virtio-mmio forbids (the model answers
    // H_PARAMETER; a correct driver makes none).
    unsigned bad_accesses = 0;

    std::uint16_t last_avail = 0;
    std::uint16_t used_idx = 0;

    // ---- The gates guest code calls ----
    static svmkit_gates gates() { return svmkit_gates{&ucall_gate, &hcall_gate, &mfmsr_gate}; }

    // ---- Ring access for tests (what a hostile device can do) ----
    template <typename T>
    T* at(std::uint64_t gpa, std::uint64_t len = sizeof(T)) {
        auto r = memory_.range(gpa, len);
        if (!r)
            throw std::runtime_error("device model: guest address out of RAM");
        return reinterpret_cast<T*>(r->data());
    }
    VirtqDesc& desc(std::uint16_t i) { return at<VirtqDesc>(desc_addr)[i]; }
    VirtqUsedHeader& used_header() { return *at<VirtqUsedHeader>(used_addr); }
    VirtqUsedElem& used_elem(std::uint16_t slot) {
        return at<VirtqUsedElem>(used_addr + 4, 8 * queue_num)[slot % queue_num];
    }
    // Publishes one used element {id, len} (a forged one, if the test says so).
    void push_used(std::uint32_t head, std::uint32_t len) {
        VirtqUsedElem& e = used_elem(used_idx);
        e.id = head;
        e.len = len;
        ++used_idx;
        __atomic_store_n(&used_header().idx, used_idx, __ATOMIC_RELEASE);
        interrupt_status |= kVirtioMmioIntUsedBuffer;
    }
    void set_used_idx(std::uint16_t idx) {
        used_idx = idx;
        __atomic_store_n(&used_header().idx, idx, __ATOMIC_RELEASE);
    }

    bool in_window(std::uint64_t addr, std::uint64_t len) const {
        return addr >= dma_window_base && len <= dma_window_size &&
               addr - dma_window_base <= dma_window_size - len;
    }

    // Pops every newly available chain into `outstanding`.
    void collect() {
        if ((status & kVirtioStatusDriverOk) == 0 || !queue_ready)
            return;
        const auto* avail = at<VirtqAvailHeader>(avail_addr, 4 + 2 * queue_num);
        const auto* ring = at<std::uint16_t>(avail_addr + 4, 2 * queue_num);
        const std::uint16_t idx = __atomic_load_n(&avail->idx, __ATOMIC_ACQUIRE);
        while (last_avail != idx) {
            ModelChain c;
            c.head = ring[last_avail % queue_num];
            ++last_avail;
            std::uint16_t i = c.head;
            for (std::uint32_t n = 0; n < queue_num; ++n) {
                if (i >= queue_num)
                    throw std::runtime_error("device model: driver chained past the table");
                const VirtqDesc d = desc(i);
                if ((d.flags & kVirtqDescFIndirect) != 0)
                    throw std::runtime_error("device model: driver used an indirect descriptor");
                c.bufs.push_back({d.addr, d.len, (d.flags & kVirtqDescFWrite) != 0});
                if (dma_window_size != 0 && !in_window(d.addr, d.len))
                    ++dma_outside;
                if ((d.flags & kVirtqDescFNext) == 0)
                    break;
                i = d.next;
            }
            outstanding.push_back(std::move(c));
        }
        max_outstanding = std::max(max_outstanding, outstanding.size());
        if (event_idx())
            __atomic_store_n(at<std::uint16_t>(used_addr + 4 + 8 * queue_num),
                             forced_avail_event.value_or(last_avail), __ATOMIC_RELEASE);
    }

    bool event_idx() const { return (driver_features & virtio_bit(kVirtioFEventIdx)) != 0; }

    // Completes every collected chain (honestly, unless on_complete says
    // otherwise).
    void complete_all() {
        std::vector<ModelChain> chains;
        chains.swap(outstanding);
        if (reverse_order)
            std::reverse(chains.begin(), chains.end());
        for (const ModelChain& c : chains)
            if (!on_complete || !on_complete(*this, c))
                complete(c);
    }

    // Executes one virtio-blk request and publishes its used element.
    void complete(const ModelChain& c) {
        std::uint32_t written = 0;
        const std::uint8_t st = execute(c, &written);
        const auto& last = c.bufs.back();
        if (forced_status != -2 && last.write && last.len >= 1)
            *at<std::uint8_t>(last.addr) =
                forced_status >= 0 ? static_cast<std::uint8_t>(forced_status) : st;
        push_used(c.head, written + 1);
    }

    // ---- The request itself ----
    std::uint8_t execute(const ModelChain& c, std::uint32_t* written) {
        if (c.bufs.size() < 2 || c.bufs[0].write || c.bufs[0].len != 16 || !c.bufs.back().write)
            return kVirtioBlkSIoErr;
        VirtioBlkReqHeader h{};
        std::memcpy(&h, at<std::uint8_t>(c.bufs[0].addr, 16), 16);
        std::uint64_t offset = h.sector * 512;
        switch (h.type) {
        case kVirtioBlkTIn:
        case kVirtioBlkTOut:
            for (std::size_t i = 1; i + 1 < c.bufs.size(); ++i) {
                const auto& b = c.bufs[i];
                if (b.write != (h.type == kVirtioBlkTIn) || offset + b.len > disk.size())
                    return kVirtioBlkSIoErr;
                auto* p = at<std::uint8_t>(b.addr, b.len);
                if (h.type == kVirtioBlkTIn) {
                    std::memcpy(p, disk.data() + offset, b.len);
                    *written += b.len;
                } else {
                    std::memcpy(disk.data() + offset, p, b.len);
                }
                offset += b.len;
            }
            return kVirtioBlkSOk;
        case kVirtioBlkTFlush:
            ++flushes;
            return kVirtioBlkSOk;
        case kVirtioBlkTGetId: {
            if (c.bufs.size() != 3 || !c.bufs[1].write)
                return kVirtioBlkSIoErr;
            const std::uint32_t n =
                std::min<std::uint32_t>(c.bufs[1].len, static_cast<std::uint32_t>(id.size()));
            std::memcpy(at<std::uint8_t>(c.bufs[1].addr, n), id.data(), n);
            *written = n;
            return kVirtioBlkSOk;
        }
        default:
            return kVirtioBlkSUnsupp;
        }
    }

  private:
    // At an H_CEDE with EVENT_IDX: where the driver's used_event points,
    // relative to the completions still to come (every chain made available
    // and not completed, collected or not).
    void note_used_event() {
        const std::uint16_t event =
            __atomic_load_n(at<std::uint16_t>(avail_addr + 4 + 2 * queue_num), __ATOMIC_ACQUIRE);
        const std::uint16_t avail =
            __atomic_load_n(&at<VirtqAvailHeader>(avail_addr, 4)->idx, __ATOMIC_ACQUIRE);
        const auto pending = static_cast<std::uint16_t>(avail - used_idx);
        const auto ahead = static_cast<std::uint16_t>(event - used_idx);
        used_event_at_cede.push_back(static_cast<std::uint16_t>(ahead + 1));
        if (ahead >= pending)
            ++cedes_unreachable_event;
    }

    static VirtioBlkModel*& active() {
        static VirtioBlkModel* model = nullptr;
        return model;
    }

    void reset_device() {
        ++resets;
        status = 0;
        driver_features = 0;
        queue_num = 0;
        queue_ready = false;
        desc_addr = avail_addr = used_addr = 0;
        interrupt_status = 0;
        last_avail = 0;
        used_idx = 0;
        outstanding.clear();
    }

    std::uint32_t config_byte(std::uint32_t off) const {
        std::uint8_t cfg[24] = {};
        const std::uint64_t capacity = disk.size() / 512;
        std::memcpy(cfg + kVirtioBlkCfgCapacity, &capacity, 8);
        std::memcpy(cfg + kVirtioBlkCfgSizeMax, &size_max, 4);
        std::memcpy(cfg + kVirtioBlkCfgSegMax, &seg_max, 4);
        const std::uint32_t blk_size = 512;
        std::memcpy(cfg + kVirtioBlkCfgBlkSize, &blk_size, 4);
        return off < sizeof(cfg) ? cfg[off] : 0;
    }

    long mmio_read(std::uint64_t gpa, std::uint64_t size, std::uint64_t* value) {
        if (unplugged || gpa < kModelMmioBase || gpa + size > kModelMmioBase + kModelMmioSize)
            return H_FUNCTION;
        const auto off = static_cast<std::uint32_t>(gpa - kModelMmioBase);
        if (off >= kVirtioMmioConfig) {
            if ((size != 1 && size != 2 && size != 4) || off % size != 0) {
                ++bad_accesses;
                return H_PARAMETER;
            }
            std::uint64_t v = 0;
            for (std::uint64_t i = 0; i < size; ++i)
                v |= std::uint64_t{config_byte(off - kVirtioMmioConfig +
                                               static_cast<std::uint32_t>(i))}
                     << (8 * i);
            *value = v;
            return H_SUCCESS;
        }
        if (size != 4 || off % 4 != 0) {
            ++bad_accesses;
            return H_PARAMETER;
        }
        switch (off) {
        case kVirtioMmioMagicValue:
            *value = magic;
            break;
        case kVirtioMmioVersion:
            *value = version;
            break;
        case kVirtioMmioDeviceId:
            *value = device_id;
            break;
        case kVirtioMmioVendorId:
            *value = 0x554d4551;
            break;
        case kVirtioMmioDeviceFeatures:
            *value = dev_features_sel_ == 0   ? static_cast<std::uint32_t>(offered)
                     : dev_features_sel_ == 1 ? static_cast<std::uint32_t>(offered >> 32)
                                              : 0;
            break;
        case kVirtioMmioQueueNumMax:
            *value = queue_sel_ == 0 ? queue_num_max : 0;
            break;
        case kVirtioMmioQueueReady:
            *value = queue_sel_ == 0 && queue_ready ? 1 : 0;
            break;
        case kVirtioMmioInterruptStatus:
            *value = interrupt_status;
            break;
        case kVirtioMmioStatus:
            *value = status;
            break;
        case kVirtioMmioConfigGeneration:
            *value = generation_churns ? ++config_generation : config_generation;
            break;
        default:
            *value = 0;
            break;
        }
        return H_SUCCESS;
    }

    static void set_low(std::uint64_t& v, std::uint32_t low) {
        v = (v & ~std::uint64_t{0xffffffff}) | low;
    }
    static void set_high(std::uint64_t& v, std::uint32_t high) {
        v = (v & 0xffffffff) | (std::uint64_t{high} << 32);
    }

    long mmio_write(std::uint64_t gpa, std::uint64_t size, std::uint64_t value) {
        if (unplugged || gpa < kModelMmioBase || gpa + size > kModelMmioBase + kModelMmioSize)
            return H_FUNCTION;
        const auto off = static_cast<std::uint32_t>(gpa - kModelMmioBase);
        if (size != 4 || off % 4 != 0 || off >= kVirtioMmioConfig) {
            ++bad_accesses;
            return H_PARAMETER;
        }
        const auto v = static_cast<std::uint32_t>(value);
        switch (off) {
        case kVirtioMmioDeviceFeaturesSel:
            dev_features_sel_ = v;
            break;
        case kVirtioMmioDriverFeaturesSel:
            drv_features_sel_ = v;
            break;
        case kVirtioMmioDriverFeatures:
            if (drv_features_sel_ == 0)
                set_low(driver_features, v);
            else if (drv_features_sel_ == 1)
                set_high(driver_features, v);
            break;
        case kVirtioMmioQueueSel:
            queue_sel_ = v;
            break;
        case kVirtioMmioQueueNum:
            if (queue_sel_ == 0)
                queue_num = v;
            break;
        case kVirtioMmioQueueDescLow:
            set_low(desc_addr, v);
            break;
        case kVirtioMmioQueueDescHigh:
            set_high(desc_addr, v);
            break;
        case kVirtioMmioQueueDriverLow:
            set_low(avail_addr, v);
            break;
        case kVirtioMmioQueueDriverHigh:
            set_high(avail_addr, v);
            break;
        case kVirtioMmioQueueDeviceLow:
            set_low(used_addr, v);
            break;
        case kVirtioMmioQueueDeviceHigh:
            set_high(used_addr, v);
            break;
        case kVirtioMmioQueueReady:
            if (queue_sel_ == 0)
                queue_ready = v == 1;
            break;
        case kVirtioMmioQueueNotify:
            ++notifies;
            if (v == 0 && completion != Completion::manual) {
                collect();
                if (completion == Completion::on_notify)
                    complete_all();
            } else if (v == 0) {
                collect();
            }
            break;
        case kVirtioMmioInterruptAck:
            ++acks;
            interrupt_status &= ~v;
            break;
        case kVirtioMmioStatus:
            status_writes.push_back(v);
            if (v == 0) {
                reset_device();
                break;
            }
            status = v;
            if (reject_features)
                status &= ~kVirtioStatusFeaturesOk;
            break;
        default:
            break;
        }
        return H_SUCCESS;
    }

    long hcall(svmkit_regs& r) {
        switch (r.r[3]) {
        case H_SVMKIT_MMIO_READ: {
            std::uint64_t v = 0;
            const long rc = mmio_read(r.r[4], r.r[5], &v);
            r.r[4] = v;
            return rc;
        }
        case H_SVMKIT_MMIO_WRITE:
            return mmio_write(r.r[4], r.r[5], r.r[6]);
        case H_CEDE:
            if (++cedes > 100000)
                throw std::runtime_error("device model: the driver waits forever");
            if (avail_addr != 0 &&
                (__atomic_load_n(&at<VirtqAvailHeader>(avail_addr, 4)->flags, __ATOMIC_ACQUIRE) &
                 kVirtqAvailFNoInterrupt) != 0)
                ++cedes_with_interrupts_off;
            if (avail_addr != 0 && event_idx())
                note_used_event();
            if (completion == Completion::on_cede) {
                collect();
                complete_all();
            }
            return H_SUCCESS;
        case H_PUT_TERM_CHAR:
            for (std::uint64_t i = 0; i < r.r[5] && i < 16; ++i)
                console.push_back(static_cast<char>((r.r[6 + i / 8] >> (56 - 8 * (i % 8))) & 0xff));
            return H_SUCCESS;
        default:
            return H_FUNCTION;
        }
    }

    static long hcall_gate(svmkit_regs* r) {
        REQUIRE(active() != nullptr);
        return active()->hcall(*r);
    }
    static long ucall_gate(svmkit_regs*) { return H_FUNCTION; }
    static std::uint64_t mfmsr_gate() { return SVMKIT_MSR_SF | SVMKIT_MSR_LE; }

    platform::GuestMemory& memory_;
    std::uint32_t dev_features_sel_ = 0;
    std::uint32_t drv_features_sel_ = 0;
    std::uint32_t queue_sel_ = 0;
};

} // namespace svmkit::test
