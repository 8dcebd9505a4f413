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

// A file opened for reading, with its size. Reads are positional and exact.
class InputFile {
  public:
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

// The path of a program svmkit installs beside its own executables:
// $`env_var` when set, else `name` in the running executable's directory
// (else just `name`, for PATH).
std::string sibling_program(const char* env_var, const char* name);

// Reads a whole (small) file: keys, command lines, device trees.
Result<std::vector<std::byte>> read_small_file(const std::string& path,
                                               std::uint64_t limit = 64ull << 20);

// An output file that appears under its final name only when complete.
//
// Invariant: until commit() succeeds, the data lives in a temporary file in the
// destination's directory (same filesystem, so rename is atomic) and the
// destination is untouched; the destructor removes an uncommitted temporary.
class AtomicOutputFile {
  public:
    static Result<AtomicOutputFile> create(const std::string& path, mode_t mode = 0644);
    AtomicOutputFile(AtomicOutputFile&&) noexcept;
    AtomicOutputFile& operator=(AtomicOutputFile&&) = delete;
    AtomicOutputFile(const AtomicOutputFile&) = delete;
    AtomicOutputFile& operator=(const AtomicOutputFile&) = delete;
    ~AtomicOutputFile();

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const std::string& path() const { return path_; }

    Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data);
    Result<void> write_all(std::span<const std::byte> data) { return write_at(0, data); }
    // Flushes, renames onto the destination; afterwards the object owns nothing.
    Result<void> commit();

  private:
    AtomicOutputFile() = default;
    std::string path_;
    std::string temp_path_;
    UniqueFd fd_;
    bool committed_ = false;
};

// Writes `data` to `path` atomically (temporary + rename).
Result<void> write_file_atomic(const std::string& path, std::span<const std::byte> data,
                               mode_t mode = 0644);

inline std::span<const std::byte> as_bytes(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

} // namespace svmkit
