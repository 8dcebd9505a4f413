// Virtio 1.x facts the guest's drivers share: feature bits, device status
// bits, the split virtqueue's ring layouts, virtio-blk's request format, and
// the one error record every virtio layer reports through.
//
// Ring structures are little-endian in the specification. Both targets of
// guest code (x86-64 for the simulated platform, ppc64le) are little-endian,
// so the fields are plain integers; the static_assert below keeps a
// big-endian port from compiling silently wrong.
#pragma once

#include "guest/console.h"

#include <stddef.h>
#include <stdint.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");

namespace svmkit::guest {

// ---- Feature bits (virtio 1.x, section 6 "Reserved Feature Bits") ----
inline constexpr unsigned kVirtioFIndirectDesc = 28;   // refused: indirect tables are device-read
inline constexpr unsigned kVirtioFEventIdx = 29;       // used_event / avail_event
inline constexpr unsigned kVirtioFVersion1 = 32;       // required
inline constexpr unsigned kVirtioFAccessPlatform = 33; // required: DMA goes through the DMA API
inline constexpr unsigned kVirtioFRingPacked = 34;     // refused
inline constexpr unsigned kVirtioFInOrder = 35;
inline constexpr unsigned kVirtioFOrderPlatform = 36;
inline constexpr unsigned kVirtioFRingReset = 40;

inline constexpr uint64_t virtio_bit(unsigned bit) {
    return uint64_t{1} << bit;
}

// ---- Device status (section 2.1) ----
inline constexpr uint32_t kVirtioStatusAcknowledge = 1;
inline constexpr uint32_t kVirtioStatusDriver = 2;
inline constexpr uint32_t kVirtioStatusDriverOk = 4;
inline constexpr uint32_t kVirtioStatusFeaturesOk = 8;
inline constexpr uint32_t kVirtioStatusNeedsReset = 64;
inline constexpr uint32_t kVirtioStatusFailed = 128;

// ---- Device ids (section 5) ----
inline constexpr uint32_t kVirtioIdBlock = 2;
inline constexpr uint32_t kVirtioIdConsole = 3;

// ---- Split virtqueue (section 2.7) ----
// Queue size Q is a power of two, at most 32768. Indices wrap at 65536.
inline constexpr uint32_t kVirtqMaxSizeSpec = 32768;

inline constexpr uint16_t kVirtqDescFNext = 1;
inline constexpr uint16_t kVirtqDescFWrite = 2;
inline constexpr uint16_t kVirtqDescFIndirect = 4;

inline constexpr uint16_t kVirtqAvailFNoInterrupt = 1;
inline constexpr uint16_t kVirtqUsedFNoNotify = 1;

// Descriptor table entry: 16 bytes, table aligned to 16.
struct VirtqDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16);

// Available ring: {le16 flags; le16 idx; le16 ring[Q]; le16 used_event},
// aligned to 2. Written by the driver only.
struct VirtqAvailHeader {
    uint16_t flags;
    uint16_t idx;
    // uint16_t ring[Q]; uint16_t used_event;
};
inline constexpr uint64_t virtq_avail_bytes(uint32_t q) {
    return 4 + 2 * uint64_t{q} + 2;
}

// Used ring: {le16 flags; le16 idx; {le32 id; le32 len}[Q]; le16 avail_event},
// aligned to 4. Written by the device: every field is untrusted.
struct VirtqUsedElem {
    uint32_t id;
    uint32_t len;
};
struct VirtqUsedHeader {
    uint16_t flags;
    uint16_t idx;
    // VirtqUsedElem ring[Q]; uint16_t avail_event;
};
inline constexpr uint64_t virtq_used_bytes(uint32_t q) {
    return 4 + 8 * uint64_t{q} + 2;
}

// ---- virtio-blk (section 5.2) ----
inline constexpr unsigned kVirtioBlkFSizeMax = 1;
inline constexpr unsigned kVirtioBlkFSegMax = 2;
inline constexpr unsigned kVirtioBlkFRo = 5;
inline constexpr unsigned kVirtioBlkFBlkSize = 6;
inline constexpr unsigned kVirtioBlkFFlush = 9;

inline constexpr uint32_t kVirtioBlkTIn = 0;
inline constexpr uint32_t kVirtioBlkTOut = 1;
inline constexpr uint32_t kVirtioBlkTFlush = 4;
inline constexpr uint32_t kVirtioBlkTGetId = 8;

inline constexpr uint8_t kVirtioBlkSOk = 0;
inline constexpr uint8_t kVirtioBlkSIoErr = 1;
inline constexpr uint8_t kVirtioBlkSUnsupp = 2;

inline constexpr uint32_t kVirtioBlkSectorSize = 512;
inline constexpr uint32_t kVirtioBlkIdBytes = 20;

struct VirtioBlkReqHeader {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
static_assert(sizeof(VirtioBlkReqHeader) == 16);

// virtio_blk_config offsets (device configuration space).
inline constexpr uint32_t kVirtioBlkCfgCapacity = 0; // le64, in 512-byte sectors
inline constexpr uint32_t kVirtioBlkCfgSizeMax = 8;  // le32
inline constexpr uint32_t kVirtioBlkCfgSegMax = 12;  // le32
inline constexpr uint32_t kVirtioBlkCfgBlkSize = 20; // le32

// ---- Errors ----
// What went wrong, for every virtio layer (transport, queue, device driver).
// Ring violations are the device breaking the protocol: the queue is marked
// broken and never used again.
enum class VirtioErr : uint8_t {
    none,
    transport,         // an MMIO hypercall failed
    not_virtio,        // bad magic value
    bad_version,       // not virtio-mmio version 2
    wrong_device,      // device id differs from the one expected (0 = no device)
    missing_feature,   // VERSION_1 or ACCESS_PLATFORM (or another required bit) absent
    features_rejected, // the device cleared FEATURES_OK
    device_failed,     // the device set DEVICE_NEEDS_RESET, or an earlier step failed
    queue_unavailable, // QueueNumMax 0 or the queue already live
    no_memory,         // coherent ring memory could not be allocated
    bad_argument,      // a caller error (size, alignment, buffer order)
    queue_full,        // not enough free descriptors (retry after completions)
    used_idx,          // used idx moved by more than the chains in flight
    used_id_range,     // used id >= queue size
    used_not_head,     // used id is not the head of a chain in flight
    used_twice,        // used id completed again
    used_len,          // used len exceeds the chain's device-writable length
    queue_broken,      // a request failed because its queue broke earlier
    dma_pool_full,     // the bounce pool has no room (retry after completions)
    dma_error,         // another DMA mapping failure
    io_error,          // the device answered VIRTIO_BLK_S_IOERR
    unsupported,       // the device answered VIRTIO_BLK_S_UNSUPP
    bad_status,        // the device answered a status byte that does not exist
    read_only,         // a write to a read-only device
    out_of_range,      // sectors beyond the device's capacity
};

// A short name ("used_len"), for messages and tests.
const char* virtio_err_name(VirtioErr e);

// The error path every virtio layer shares: the latest error's code and a
// one-line message, echoed to the console when one is attached. Tests read
// code() and message(); a booted guest sees the console line. Messages carry
// numbers (ids, lengths, feature bits), never payload bytes: the console goes
// through the hypervisor.
class VirtioReport {
  public:
    static constexpr size_t kMessageMax = 200;

    explicit VirtioReport(Console* console = nullptr) : console_(console) {}

    // Starts a message for `code` with the device's name as prefix; finish
    // it with the builders and end().
    VirtioReport& begin(VirtioErr code, const char* who);
    VirtioReport& str(const char* s);
    VirtioReport& dec(uint64_t v);
    VirtioReport& hex(uint64_t v);
    // Stores the message and writes "virtio: <message>\n" to the console.
    void end();

    VirtioErr code() const { return code_; }
    const char* message() const { return message_; }
    uint32_t count() const { return count_; } // messages so far

  private:
    void append(const char* s, size_t n);

    Console* console_;
    VirtioErr code_ = VirtioErr::none;
    char message_[kMessageMax + 1] = {};
    size_t len_ = 0;
    uint32_t count_ = 0;
};

} // namespace svmkit::guest
