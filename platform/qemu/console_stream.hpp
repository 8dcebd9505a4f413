// The guest's console (its spapr-vty, Linux's hvc0) as QEMU serves it on a
// unix socket: streamed as it comes to where the user watches, and kept for
// the report (the last kMaxKept bytes).
//
// Invariants: one reader thread, started by connect() and joined by the
// destructor (which shuts the socket down first, so the join never waits on
// a guest); text() may be called at any time (the buffer is locked).
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace svmkit::platform::qemu {

class ConsoleStream {
  public:
    static constexpr std::size_t kMaxKept = 1u << 20;

    // Connects to QEMU's console socket at `path` (retrying until `timeout`)
    // and starts streaming to `echo` (null: keep only).
    static Result<std::unique_ptr<ConsoleStream>> connect(const std::string& path, std::FILE* echo,
                                                          std::chrono::milliseconds timeout);
    ConsoleStream(const ConsoleStream&) = delete;
    ConsoleStream& operator=(const ConsoleStream&) = delete;
    ~ConsoleStream();

    [[nodiscard]] std::string text() const;
    // Waits up to `timeout` for QEMU to close the console (the VM ended) so
    // its last lines are in text().
    void drain(std::chrono::milliseconds timeout);

  private:
    ConsoleStream(UniqueFd fd, std::FILE* echo) : fd_(std::move(fd)), echo_(echo) {}
    void read_loop();

    UniqueFd fd_;
    std::FILE* echo_;
    mutable std::mutex mutex_;
    std::string kept_;
    bool ended_ = false;
    std::thread reader_;
};

} // namespace svmkit::platform::qemu
