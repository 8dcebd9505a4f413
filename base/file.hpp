// File handles and whole-file helpers. Every descriptor and mapping is owned
// by an RAII object; every error names the file.
#pragma once

#include "base/error.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <sys/types.h>
#include <vector>

namespace svmkit {

// Owns one file descriptor; closes it on destruction. -1 means "none".
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();

    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool valid() const { return fd_ >= 0; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

  private:
    int fd_ = -1;
};

// A large input (kernel, initrd, image, disk image): a regular file opened
// for reading, with its size. Reads are positional and exact.
//
// Only regular files are accepted: a pipe, FIFO or device is refused with
// ExitCode::malformed naming the file, so nothing is signed or digested from
// a stream that could end early or never. "-" is standard input, copied into
// an unlinked temporary file first (at most kMaxSpooledInput bytes) unless it
// already is a regular file. Every file opened is registered as an input of
// the command (base/file_identity.hpp), so no output can replace it.
class InputFile {
  public:
    static constexpr std::uint64_t kMaxSpooledInput = 16ull << 30;

    // Opens `path` read-only. Missing or unreadable files give ExitCode::io.
    static Result<InputFile> open(const std::string& path);

    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::uint64_t size() const { return size_; }
    [[nodiscard]] int fd() const { return fd_.get(); }

    // Reads exactly out.size() bytes at `offset`; a short file is ExitCode::malformed
    // ("truncated"), a read error ExitCode::io.
    Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) const;

    // Reads the whole file, refusing files larger than `limit` bytes.
    Result<std::vector<std::byte>> read_all(std::uint64_t limit) const;

  private:
    std::string path_;
    UniqueFd fd_;
    std::uint64_t size_ = 0;
};

// Reads a whole small input (keys, command lines, passphrases, device trees,
// ESM secret files): a regular file, or a stream (pipe, FIFO, character
// device, "-" for standard input) read to its end. More than `limit` bytes
// is refused with ExitCode::malformed; a stream that gives no data for
// input_timeout_seconds() is refused with ExitCode::io (a FIFO nobody
// writes); directories, sockets and block devices are ExitCode::malformed.
Result<std::vector<std::byte>> read_small_file(const std::string& path,
                                               std::uint64_t limit = 64ull << 20);

// Writes all of `data` to `fd` at its current position; errors name `path`.
Result<void> write_all_fd(int fd, std::span<const std::byte> data, const std::string& path);

// How long a stream input may stay silent: $SVMKIT_INPUT_TIMEOUT seconds,
// default 30.
int input_timeout_seconds();

inline std::span<const std::byte> as_bytes(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

} // namespace svmkit
