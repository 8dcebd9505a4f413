// The svmkit-vhost-blk server: listens on a unix socket, serves one front end
// at a time with an epoll loop (socket messages, ring kicks, the hostile
// interrupt-storm timer), and survives every front end: a disconnect, a
// malformed message or a hostile guest ends at most that connection.
//
// Invariants:
//   - at most one client: while one is connected the listening socket is not
//     watched, so a second front end waits in the backlog;
//   - the epoll set always holds exactly the kick fds of the session's
//     started rings (resynchronised after every message);
//   - a message must arrive whole within kMessageTimeout once its first byte
//     is readable, so a stalled front end cannot block SIGTERM handling for
//     longer than that;
//   - on SIGTERM/SIGINT the socket file is removed (if it is still ours).
#pragma once

#include "base/error.hpp"
#include "platform/vhost_user/session.hpp"

#include <chrono>
#include <cstdio>
#include <string>

namespace svmkit::vhost_user {

inline constexpr std::chrono::milliseconds kMessageTimeout{5000};

struct ServerOptions {
    std::string socket_path;
    std::string disk_path;
    bool read_only = false;
    BackendOptions backend;
    std::FILE* log = stderr;
    // When set, the disk's BlkCounters are written there as JSON when the
    // server stops (svmkit's boot report reads them).
    std::string stats_path;
};

// Serves until SIGTERM or SIGINT arrives, then writes the counters. The caller must have blocked
// both signals in every thread (main() does) so they arrive through a signalfd.
Result<void> run_server(const ServerOptions& options);

} // namespace svmkit::vhost_user
