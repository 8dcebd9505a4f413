#include "base/child_process.hpp"

#include <cerrno>
#include <csignal>
#include <sys/wait.h>
#include <thread>

namespace svmkit {

namespace {

// waitpid, retried on EINTR: pid when it ended (status set), 0 while it
// runs (WNOHANG), -1 when it is not our child.
pid_t wait_child(pid_t pid, int* status, int flags) {
    for (;;) {
        const pid_t r = ::waitpid(pid, status, flags);
        if (r >= 0 || errno != EINTR)
            return r;
    }
}

} // namespace

std::optional<int> wait_or_kill(pid_t pid, std::chrono::milliseconds grace) {
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (;;) {
        const pid_t r = wait_child(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return std::nullopt;
        if (std::chrono::steady_clock::now() >= deadline)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(pid, SIGKILL);
    if (wait_child(pid, &status, 0) != pid)
        return std::nullopt;
    return status;
}

} // namespace svmkit
