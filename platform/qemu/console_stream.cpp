#include "platform/qemu/console_stream.hpp"

#include "base/unix_socket.hpp"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace svmkit::platform::qemu {

Result<std::unique_ptr<ConsoleStream>> ConsoleStream::connect(const std::string& path,
                                                              std::FILE* echo,
                                                              std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto fd = svmkit::connect_unix(path, "the console socket", "QEMU's console",
                                       ExitCode::qemu_failed);
        if (fd) {
            std::unique_ptr<ConsoleStream> c(new ConsoleStream(std::move(*fd), echo));
            c->reader_ = std::thread([p = c.get()] { p->read_loop(); });
            return c;
        }
        if (std::chrono::steady_clock::now() >= deadline)
            return svmkit::unexpected(fd.error());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

ConsoleStream::~ConsoleStream() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    if (reader_.joinable())
        reader_.join();
}

void ConsoleStream::read_loop() {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        const auto len = static_cast<std::size_t>(n);
        if (echo_ != nullptr) {
            std::fwrite(buf, 1, len, echo_);
            std::fflush(echo_);
        }
        std::lock_guard lock(mutex_);
        kept_.append(buf, len);
        if (kept_.size() > kMaxKept)
            kept_.erase(0, kept_.size() - kMaxKept);
    }
    std::lock_guard lock(mutex_);
    ended_ = true;
}

std::string ConsoleStream::text() const {
    std::lock_guard lock(mutex_);
    return kept_;
}

void ConsoleStream::drain(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        {
            std::lock_guard lock(mutex_);
            if (ended_)
                return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

} // namespace svmkit::platform::qemu
