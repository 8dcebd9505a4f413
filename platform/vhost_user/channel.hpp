// One end of a vhost-user connection: whole messages with their file
// descriptors over a unix stream socket.
//
// Invariants:
//   - every descriptor received is owned by a UniqueFd from the moment
//     recvmsg returns (also when the message is then refused), and is
//     close-on-exec;
//   - a message is returned only when its header and all `size` payload
//     bytes have arrived; the header is checked (check_header) before any
//     payload is read, so a peer cannot make us read more than
//     kMaxPayloadSize bytes for one message;
//   - sending never raises SIGPIPE.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "platform/vhost_user/protocol.hpp"

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace svmkit::vhost_user {

struct Message {
    Header header;
    std::vector<std::byte> payload;
    std::vector<UniqueFd> fds;
};

class Channel {
  public:
    // `name` appears in every error (the socket path, usually).
    Channel(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const std::string& name() const { return name_; }

    // Sends header + payload, with `fds` as SCM_RIGHTS on the first byte.
    // header.size is taken from payload.size().
    Result<void> send(Header header, std::span<const std::byte> payload,
                      std::span<const int> fds = {});
    // Sends raw bytes (tests build malformed messages with this).
    Result<void> send_raw(std::span<const std::byte> bytes, std::span<const int> fds = {});

    // Receives one message. `expect_reply` selects the REPLY-flag check.
    // nullopt: the peer closed the connection cleanly between messages.
    // `timeout`: how long to wait for the whole message (nullopt: forever).
    Result<std::optional<Message>> receive(bool expect_reply,
                                           std::optional<std::chrono::milliseconds> timeout);

  private:
    Result<bool> wait_readable(std::optional<std::chrono::steady_clock::time_point> deadline);

    UniqueFd fd_;
    std::string name_;
};

} // namespace svmkit::vhost_user
