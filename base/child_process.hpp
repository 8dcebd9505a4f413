// Ending a child process: the one "wait, then insist" both the hypervisor
// process and the vhost-user back ends need.
#pragma once

#include <chrono>
#include <optional>
#include <sys/types.h>

namespace svmkit {

// Waits up to `grace` for child `pid` to exit (polling, so a child that
// ignores signals cannot hang the caller), then kills it with SIGKILL and
// waits for that. Returns its wait status, or nullopt when `pid` is not a
// child of this process (already reaped, or never ours).
std::optional<int> wait_or_kill(pid_t pid, std::chrono::milliseconds grace);

} // namespace svmkit
