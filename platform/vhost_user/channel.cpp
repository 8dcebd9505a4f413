#include "platform/vhost_user/channel.hpp"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>

namespace svmkit::vhost_user {

namespace {

using Clock = std::chrono::steady_clock;

// Control buffer large enough for kMaxFds descriptors, suitably aligned.
union ControlBuffer {
    char bytes[CMSG_SPACE(sizeof(int) * kMaxFds)];
    cmsghdr align;
};

} // namespace

Result<void> Channel::send(Header header, std::span<const std::byte> payload,
                           std::span<const int> fds) {
    header.size = static_cast<std::uint32_t>(payload.size());
    std::vector<std::byte> bytes = encode_header(header);
    bytes.insert(bytes.end(), payload.begin(), payload.end());
    if (auto r = send_raw(bytes, fds); !r)
        return unexpected(
            with_context(std::move(r.error()), "sending " + request_name(header.request)));
    return {};
}

Result<void> Channel::send_raw(std::span<const std::byte> bytes, std::span<const int> fds) {
    if (fds.size() > kMaxFds)
        return fail(ExitCode::usage, "{}: {} file descriptors in one message, at most {}", name_,
                    fds.size(), kMaxFds);
    std::size_t done = 0;
    bool fds_sent = fds.empty();
    while (done < bytes.size() || !fds_sent) {
        iovec iov{const_cast<std::byte*>(bytes.data() + done), bytes.size() - done};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        ControlBuffer control{};
        if (!fds_sent) {
            msg.msg_control = control.bytes;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        }
        ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(ExitCode::io, "{}: send failed: {}", name_, std::strerror(errno));
        fds_sent = true;
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Result<bool> Channel::wait_readable(std::optional<Clock::time_point> deadline) {
    for (;;) {
        int wait_ms = -1;
        if (deadline) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
            if (left.count() <= 0)
                return false;
            wait_ms = static_cast<int>(left.count());
        }
        pollfd p{fd_.get(), POLLIN, 0};
        int r = ::poll(&p, 1, wait_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return fail(ExitCode::io, "{}: poll failed: {}", name_, std::strerror(errno));
        if (r == 0)
            return false;
        return true;
    }
}

Result<std::optional<Message>> Channel::receive(bool expect_reply,
                                                std::optional<std::chrono::milliseconds> timeout) {
    std::optional<Clock::time_point> deadline;
    if (timeout)
        deadline = Clock::now() + *timeout;
    Message m;
    std::byte header[kHeaderSize];
    std::vector<std::byte> payload;
    std::size_t want = kHeaderSize;
    std::size_t got = 0;
    bool header_done = false;
    while (got < want) {
        SVM_TRY(ready, wait_readable(deadline));
        if (!ready)
            return fail(ExitCode::io, "{}: no {} within {} ms", name_,
                        got == 0 && !header_done ? "message" : "complete message",
                        timeout ? timeout->count() : 0);
        std::byte* into = header_done ? payload.data() + got : header + got;
        iovec iov{into, want - got};
        ControlBuffer control{};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.bytes;
        msg.msg_controllen = sizeof control.bytes;
        ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return fail(ExitCode::io, "{}: receive failed: {}", name_, std::strerror(errno));
        // Take ownership of every descriptor first, whatever happens next.
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd = -1;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                m.fds.emplace_back(fd);
            }
        }
        if ((msg.msg_flags & MSG_CTRUNC) != 0)
            return fail(ExitCode::malformed, "{}: message came with more than {} file descriptors",
                        name_, kMaxFds);
        if (n == 0) {
            if (!header_done && got == 0 && m.fds.empty())
                return std::optional<Message>{};
            return fail(ExitCode::malformed,
                        "{}: connection closed in the middle of a message (truncated after {} "
                        "bytes)",
                        name_, (header_done ? kHeaderSize : 0) + got);
        }
        got += static_cast<std::size_t>(n);
        if (!header_done && got == kHeaderSize) {
            m.header = Header{load_le32(header), load_le32(header + 4), load_le32(header + 8)};
            if (auto r = check_header(m.header, expect_reply); !r)
                return unexpected(with_context(std::move(r.error()), name_));
            header_done = true;
            payload.assign(m.header.size, std::byte{0});
            want = m.header.size;
            got = 0;
        }
    }
    m.payload = std::move(payload);
    return std::optional<Message>(std::move(m));
}

} // namespace svmkit::vhost_user
