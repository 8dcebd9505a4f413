// Virtio facts the vhost-user front end, the back end and the test driver
// share: feature bits, the split-ring layout, virtio-blk requests and config.
// Values from the virtio 1.x specification (docs/virtio.md, docs/vhost-user.md).
#pragma once

#include <cstddef>
#include <cstdint>

namespace svmkit::vhost_user {

// Device-independent feature bits.
inline constexpr std::uint64_t kVirtioIndirectDesc = 1ull << 28;
inline constexpr std::uint64_t kVirtioEventIdx = 1ull << 29;
inline constexpr std::uint64_t kVirtioVersion1 = 1ull << 32;
inline constexpr std::uint64_t kVirtioAccessPlatform = 1ull << 33;
inline constexpr std::uint64_t kVirtioRingPacked = 1ull << 34;

// virtio-blk feature bits.
inline constexpr std::uint64_t kBlkSegMax = 1ull << 2;
inline constexpr std::uint64_t kBlkReadOnly = 1ull << 5;
inline constexpr std::uint64_t kBlkBlockSize = 1ull << 6;
inline constexpr std::uint64_t kBlkFlush = 1ull << 9;
inline constexpr std::uint64_t kBlkMq = 1ull << 12;

// Split virtqueue layout (sizes in bytes for queue size q).
inline constexpr std::uint64_t kMaxQueueSize = 32768;
inline constexpr std::size_t kDescSize = 16; // {le64 addr; le32 len; le16 flags; le16 next}
inline constexpr std::uint16_t kDescFlagNext = 1;
inline constexpr std::uint16_t kDescFlagWrite = 2;
inline constexpr std::uint16_t kDescFlagIndirect = 4;
inline constexpr std::uint16_t kAvailFlagNoInterrupt = 1;
inline constexpr std::uint16_t kUsedFlagNoNotify = 1; // VIRTQ_USED_F_NO_NOTIFY
constexpr std::uint64_t desc_table_bytes(std::uint64_t q) {
    return kDescSize * q;
}
// {le16 flags; le16 idx; le16 ring[q]; le16 used_event}
constexpr std::uint64_t avail_ring_bytes(std::uint64_t q) {
    return 6 + 2 * q;
}
// {le16 flags; le16 idx; {le32 id; le32 len}[q]; le16 avail_event}
constexpr std::uint64_t used_ring_bytes(std::uint64_t q) {
    return 6 + 8 * q;
}
inline constexpr std::uint64_t kDescAlign = 16;
inline constexpr std::uint64_t kAvailAlign = 2;
inline constexpr std::uint64_t kUsedAlign = 4;

// virtio-blk requests: header {le32 type; le32 reserved; le64 sector}, data,
// then one status byte the device writes.
inline constexpr std::size_t kBlkHeaderSize = 16;
inline constexpr std::uint32_t kBlkTypeIn = 0;
inline constexpr std::uint32_t kBlkTypeOut = 1;
inline constexpr std::uint32_t kBlkTypeFlush = 4;
inline constexpr std::uint32_t kBlkTypeGetId = 8;
inline constexpr std::uint8_t kBlkStatusOk = 0;
inline constexpr std::uint8_t kBlkStatusIoErr = 1;
inline constexpr std::uint8_t kBlkStatusUnsupported = 2;
inline constexpr std::uint64_t kSectorSize = 512;
inline constexpr std::size_t kBlkIdBytes = 20;

// virtio-blk config space offsets (struct virtio_blk_config).
inline constexpr std::uint32_t kBlkConfigCapacity = 0;   // le64, in 512-byte sectors
inline constexpr std::uint32_t kBlkConfigSizeMax = 8;    // le32
inline constexpr std::uint32_t kBlkConfigSegMax = 12;    // le32
inline constexpr std::uint32_t kBlkConfigBlkSize = 20;   // le32
inline constexpr std::uint32_t kBlkConfigNumQueues = 34; // le16
// The part of the config space svmkit's back end fills (through num_queues,
// rounded up to the next field); reads beyond it return zeroes.
inline constexpr std::uint32_t kBlkConfigSize = 60;
// seg_max svmkit's back end reports (QEMU's default: 128 - 2).
inline constexpr std::uint32_t kBlkSegMaxValue = 126;

} // namespace svmkit::vhost_user
