// virtio-blk over a disk file: what one request chain asks for, done.
//
// Request chain (virtio 1.x 5.2.6): device-readable header {le32 type;
// le32 reserved; le64 sector}, then data (readable for OUT, writable for IN
// and GET_ID), then one device-writable status byte: the last byte of the
// last writable buffer.
//
// Invariants:
//   - the header is copied out of shared memory once, before it is used;
//   - sector arithmetic is overflow-checked and bounded by the disk's size;
//   - the status byte is the only byte written for a failed request.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "platform/vhost_user/device_queue.hpp"

#include <cstdint>
#include <string>

namespace svmkit::vhost_user {

// What the back end served from a disk, for svmkit's boot report: every
// request chain by type, how many failed (any status but OK), and the bytes
// moved between the disk and the guest by the ones that succeeded.
struct BlkCounters {
    std::uint64_t requests = 0;
    std::uint64_t reads = 0;
    std::uint64_t writes = 0;
    std::uint64_t flushes = 0;
    std::uint64_t other = 0; // GET_ID and unsupported types
    std::uint64_t errors = 0;
    std::uint64_t bytes_read = 0;    // from the disk, by reads
    std::uint64_t bytes_written = 0; // to the disk, by writes
};

class BlockDisk {
  public:
    // Opens the disk file; its size in whole 512-byte sectors is the device
    // capacity (a trailing partial sector is not addressable).
    static Result<BlockDisk> open(const std::string& path, bool read_only);

    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::uint64_t sectors() const { return sectors_; }
    [[nodiscard]] bool read_only() const { return read_only_; }
    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const BlkCounters& counters() const { return counters_; }
    // Counts one served request (serve_blk_request calls it once per chain).
    // Bookkeeping beside the const disk: the disk itself does not change.
    void count(std::uint32_t type, std::uint8_t status, std::uint64_t from_disk,
               std::uint64_t to_disk) const;

  private:
    std::string path_;
    UniqueFd fd_;
    std::uint64_t sectors_ = 0;
    bool read_only_ = false;
    mutable BlkCounters counters_;
};

// The 20-byte GET_ID string (zero-padded).
inline constexpr const char* kBlkDeviceId = "svmkit-vhost-blk";

// Serves one request chain against `disk`. Returns the used length (bytes
// written into the chain's device-writable buffers, status included). Fails
// only when the chain has no device-writable byte to carry a status: the
// caller treats that as an invalid chain.
Result<std::uint32_t> serve_blk_request(const Chain& chain, const BlockDisk& disk);

} // namespace svmkit::vhost_user
