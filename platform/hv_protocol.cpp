#include "platform/hv_protocol.hpp"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>

namespace svmkit::platform {

std::string_view hv_event_name(HvEvent e) {
    switch (e) {
    case HvEvent::none:
        return "none";
    case HvEvent::loaded:
        return "loaded";
    case HvEvent::esm_start:
        return "esm-start";
    case HvEvent::esm_done:
        return "esm-done";
    case HvEvent::esm_failed:
        return "esm-failed";
    case HvEvent::shared:
        return "shared";
    case HvEvent::unshared:
        return "unshared";
    case HvEvent::exit:
        return "exit";
    case HvEvent::segments_placed:
        return "segments-placed";
    case HvEvent::loader_unshared:
        return "loader-unshared";
    }
    return "?";
}

Result<void> send_record(int fd, const void* record, std::size_t size) {
    for (;;) {
        const ssize_t n = ::send(fd, record, size, MSG_NOSIGNAL);
        if (n == static_cast<ssize_t>(size))
            return {};
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(ExitCode::io, "hypervisor channel: send: {}", std::strerror(errno));
        return fail(ExitCode::io, "hypervisor channel: short send ({} of {} bytes)", n, size);
    }
}

Result<void> receive_record(int fd, void* record, std::size_t size, std::string_view peer) {
    for (;;) {
        // MSG_TRUNC: the return value is the record's real length, so a
        // longer record is detected rather than silently cut.
        const ssize_t n = ::recv(fd, record, size, MSG_TRUNC);
        if (n == static_cast<ssize_t>(size))
            return {};
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return fail(ExitCode::io, "{} closed the channel (exited?)", peer);
        if (n < 0)
            return fail(ExitCode::io, "{}: receive: {}", peer, std::strerror(errno));
        return fail(ExitCode::io, "{} sent a record of {} bytes, expected {}", peer, n, size);
    }
}

} // namespace svmkit::platform
