// One front end's session with the vhost-user-blk back end: the protocol
// state (features, memory table, rings) and the device work done on kicks.
// No sockets and no epoll here: the server feeds messages and kicks in, the
// fuzz target does the same without a server.
//
// Error policy (every refusal is logged):
//   - a message that does not parse, or asks for something invalid in the
//     current state, is refused; the state stays as it was;
//   - if REPLY_ACK was negotiated and the message had NEED_REPLY, the
//     refusal is an ack of 1 and the connection stays up; otherwise the
//     front end cannot learn of the refusal, so the connection is closed.
//   - a request that has its own reply and fails gets the spec's error form
//     (GET_CONFIG: an empty payload) and the connection stays up.
// A guest that puts an invalid chain into a ring breaks only that ring
// (device_queue.hpp); nothing a front end or guest sends ends the process.
#pragma once

#include "base/error.hpp"
#include "platform/vhost_user/blk_device.hpp"
#include "platform/vhost_user/channel.hpp"
#include "platform/vhost_user/device_queue.hpp"
#include "platform/vhost_user/hostile.hpp"
#include "platform/vhost_user/memory_table.hpp"

#include <cstdint>
#include <cstdio>
#include <optional>
#include <vector>

namespace svmkit::vhost_user {

struct BackendOptions {
    HostileMode hostile = HostileMode::none;
    std::uint64_t hostile_after = 0; // requests completed honestly before `hostile` starts
    std::size_t queues = 1;          // virtio-blk request queues (1..8)
};

struct Reply {
    Header header;
    std::vector<std::byte> payload;
};

struct Response {
    std::optional<Reply> reply;
    std::optional<Error> refused; // what was refused and why
    bool close = false;           // drop the connection (after sending `reply`)
};

class Session {
  public:
    // `log`: where refusals and broken rings are reported (nullptr: nowhere).
    Session(const BlockDisk& disk, BackendOptions options, std::FILE* log);

    // Features this back end offers (depends on the disk and hostile mode).
    [[nodiscard]] std::uint64_t offered_features() const;
    [[nodiscard]] static std::uint64_t offered_protocol_features();

    // Handles one message from the front end (fds owned by the message).
    Response handle(Message message);

    // Processes every available request of ring `index` (after a kick).
    void process_queue(std::size_t index);
    // Interrupt storm hostile mode: whether the periodic timer should run,
    // and one tick of it.
    [[nodiscard]] bool storm_active() const;
    void storm_tick();

    [[nodiscard]] std::size_t queue_count() const { return queues_.size(); }
    [[nodiscard]] const DeviceQueue& queue(std::size_t i) const { return queues_.at(i); }
    // The server could not watch the kick fd (not pollable, or it hung up).
    void kick_failed(std::size_t index, const std::string& why);
    [[nodiscard]] const MemoryTable& memory() const { return memory_; }

  private:
    Result<std::optional<Reply>> dispatch(const ParsedRequest& request, std::vector<UniqueFd> fds);
    Result<DeviceQueue*> ring(std::uint32_t index);
    Result<std::vector<std::byte>> config_bytes(std::uint32_t offset, std::size_t size) const;
    void complete(DeviceQueue& q, const Chain& chain, std::uint32_t len);
    void rewrite_completed_buffers(const DeviceQueue& q, const Chain& current);
    void write_outside_shared();
    void logf(const std::string& message) const;
    // The hostile mode once hostile_after requests have completed, else none
    // (no-access-platform, which acts before any request, is not delayed).
    [[nodiscard]] HostileMode active_hostile() const {
        return completions_ >= options_.hostile_after ? options_.hostile : HostileMode::none;
    }

    const BlockDisk& disk_;
    BackendOptions options_;
    std::FILE* log_;
    std::uint64_t features_ = 0;
    std::uint64_t protocol_features_ = 0;
    bool features_set_ = false;
    MemoryTable memory_;
    std::vector<DeviceQueue> queues_;
    // rewrite-bounce-after-completion: buffers (guest address, length) of
    // completed requests, overwritten at the next kick.
    std::vector<std::pair<std::uint64_t, std::uint32_t>> completed_buffers_;
    std::uint64_t completions_ = 0; // requests completed on every ring
};

} // namespace svmkit::vhost_user
