// The vhost-user front end: what the simulated machine's hypervisor process
// uses to drive a device back end (svmkit-vhost-blk or qemu-storage-daemon).
//
// Every call sends one request and, when the request has a reply or
// REPLY_ACK was negotiated, waits for the reply (bounded by reply_timeout)
// and validates it completely: REPLY flag, same request, exact size. A back
// end is not trusted by the front end either. Errors name the socket and the
// request: "vhost-user /run/blk.sock: SET_MEM_TABLE: back end refused (1)".
//
// Addresses: memory regions and ring addresses are given as the front end's
// own user addresses (where the hypervisor process maps the memfd), as QEMU
// does; descriptor addresses inside the rings are guest-physical.
// ACCESS_PLATFORM on this platform means an identity IOMMU: device addresses
// are guest-physical, so no IOTLB messages are ever sent.
#pragma once

#include "base/error.hpp"
#include "platform/vhost_user/channel.hpp"
#include "platform/vhost_user/protocol.hpp"

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace svmkit::vhost_user {

struct ConnectOptions {
    // Keep retrying connect() (ENOENT, ECONNREFUSED: the daemon is starting)
    // until this much time has passed.
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds retry_interval{10};
    // How long to wait for each reply.
    std::chrono::milliseconds reply_timeout{10000};
};

// One SET_MEM_TABLE region. The fd is borrowed (sent, not closed).
struct MemoryRegion {
    int fd = -1;
    std::uint64_t guest_address = 0;
    std::uint64_t size = 0;
    std::uint64_t user_address = 0; // where the front end maps guest_address
    std::uint64_t mmap_offset = 0;  // offset of guest_address in the fd
};

struct Negotiated {
    std::uint64_t offered = 0;  // the back end's GET_FEATURES
    std::uint64_t features = 0; // what SET_FEATURES acknowledged (bit 30 included if used)
    std::uint64_t offered_protocol = 0;
    std::uint64_t protocol = 0; // what SET_PROTOCOL_FEATURES acknowledged
    [[nodiscard]] bool has(std::uint64_t bits) const { return (features & bits) == bits; }
    [[nodiscard]] bool has_protocol(std::uint64_t bits) const { return (protocol & bits) == bits; }
};

// Everything one virtqueue needs to run. Fds are borrowed; kick/call must be
// eventfds; err_fd < 0 means none.
struct QueueSetup {
    std::uint32_t size = 0;
    std::uint64_t desc_user = 0;
    std::uint64_t avail_user = 0;
    std::uint64_t used_user = 0;
    std::uint16_t base = 0;
    int kick_fd = -1;
    int call_fd = -1;
    int err_fd = -1;
};

class Frontend {
  public:
    // Connects to the back end listening on `socket_path`, retrying while it
    // starts. The connection is not owned yet: call set_owner() next.
    static Result<Frontend> connect(const std::string& socket_path,
                                    const ConnectOptions& options = {});

    [[nodiscard]] const std::string& socket_path() const { return path_; }
    [[nodiscard]] const Negotiated& negotiated() const { return negotiated_; }
    // The raw connection, for tests that send malformed messages.
    Channel& channel() { return channel_; }

    Result<void> set_owner();
    Result<void> reset_owner();
    Result<std::uint64_t> get_features();
    Result<void> set_features(std::uint64_t features);
    Result<std::uint64_t> get_protocol_features();
    Result<void> set_protocol_features(std::uint64_t features);

    // The whole feature negotiation: GET_FEATURES; fail unless every bit of
    // `required` is offered; if the back end offers protocol features,
    // GET_PROTOCOL_FEATURES and SET_PROTOCOL_FEATURES with
    // `wanted_protocol & offered`; then SET_FEATURES with
    // `wanted & offered` (plus bit 30 when protocol features are in use).
    // Offer ACCESS_PLATFORM (bit 33) and VERSION_1 (bit 32) through `wanted`.
    Result<Negotiated> negotiate(std::uint64_t wanted, std::uint64_t required,
                                 std::uint64_t wanted_protocol = kProtocolReplyAck |
                                                                 kProtocolConfig | kProtocolMq);

    // Needs the MQ protocol feature.
    Result<std::uint64_t> get_queue_num();
    // Needs the CONFIG protocol feature. Returns exactly `size` bytes.
    Result<std::vector<std::byte>> get_config(std::uint32_t offset, std::uint32_t size);
    Result<void> set_config(std::uint32_t offset, std::span<const std::byte> data,
                            std::uint32_t flags = 0);

    // Sends the memory table (1..8 regions, one fd each). Callable again at
    // any time to replace the table (after ESM: only hypervisor-visible
    // shared memory); the back end unmaps the old regions.
    Result<void> set_mem_table(std::span<const MemoryRegion> regions);

    Result<void> set_vring_num(std::uint32_t index, std::uint32_t num);
    Result<void> set_vring_addr(const VringAddr& addr);
    Result<void> set_vring_base(std::uint32_t index, std::uint16_t base);
    // Stops the ring; returns the next available index the back end would
    // have processed.
    Result<std::uint16_t> get_vring_base(std::uint32_t index);
    // fd < 0 sends the "no fd" flag (polling) instead of a descriptor.
    Result<void> set_vring_kick(std::uint32_t index, int fd);
    Result<void> set_vring_call(std::uint32_t index, int fd);
    Result<void> set_vring_err(std::uint32_t index, int fd);
    // Needs protocol features (bit 30) negotiated.
    Result<void> set_vring_enable(std::uint32_t index, bool enable);

    // SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_KICK,
    // SET_VRING_CALL, (SET_VRING_ERR), SET_VRING_ENABLE 1 (when protocol
    // features are in use): QEMU's order for starting a queue.
    Result<void> start_queue(std::uint32_t index, const QueueSetup& setup);

  private:
    Frontend(Channel channel, std::string path, ConnectOptions options)
        : channel_(std::move(channel)), path_(std::move(path)), options_(options) {}

    // Sends a request. `has_reply`: the request has an explicit reply, whose
    // payload is returned (checked: REPLY flag, same request, no fds).
    // Otherwise, when REPLY_ACK is negotiated, NEED_REPLY is set and the
    // 8-byte ack must be 0; the result is then empty.
    Result<std::vector<std::byte>> call(Request request, std::span<const std::byte> payload,
                                        std::span<const int> fds, bool has_reply);
    Result<void> send_vring_fd(Request request, std::uint32_t index, int fd);
    template <typename... Args>
    Error error(Request request, fmt::format_string<Args...> format, Args&&... args) const;

    Channel channel_;
    std::string path_;
    ConnectOptions options_;
    Negotiated negotiated_;
};

} // namespace svmkit::vhost_user
