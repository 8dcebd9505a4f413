// Command outputs that never lose data (docs/cli.md, "Inputs and outputs").
//
// A regular file (or a new name) is written to a temporary file beside its
// destination and renamed over it only when complete, so a failed command
// leaves nothing behind and the destination is never half-written. A
// destination that is a character device, FIFO or block device, and "-" for
// standard output, is written to as a stream, never unlinked or renamed
// over: the bytes collect in an unlinked temporary file and are copied to
// the stream at commit, so writers may still seek. An output that is the
// same file as an input of the command, or as another output, is refused
// with ExitCode::usage, compared by device and inode (symlinks followed).
#pragma once

#include "base/file.hpp"

#include <sys/types.h>

namespace svmkit {

struct OutputOptions {
    mode_t mode = 0644;
    // A private key: mode 0600, never to standard output, and an existing
    // file is replaced only when `overwrite` (the CLI's --force) is set.
    bool private_key = false;
    bool overwrite = false;
};

class OutputFile {
  public:
    static Result<OutputFile> create(const std::string& path, OutputOptions options = {});
    OutputFile(OutputFile&&) noexcept;
    OutputFile& operator=(OutputFile&&) = delete;
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;
    ~OutputFile();

    // The temporary being written (seekable in every case).
    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const std::string& path() const { return path_; }

    Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data);
    Result<void> write_all(std::span<const std::byte> data) { return write_at(0, data); }
    // Puts the finished bytes in place (rename, or copy to the stream);
    // afterwards the object owns nothing.
    Result<void> commit();

  private:
    enum class Kind { replace, stream };
    OutputFile() = default;
    Result<void> open_destination(const std::string& destination);
    Result<void> open_temporary(const std::string& destination);
    Result<void> check_not_an_input() const;
    Result<void> commit_replace();
    Result<void> commit_stream();

    std::string path_;        // as the user gave it, for messages
    std::string destination_; // symlinks resolved: what a rename replaces
    std::string temp_path_;   // Kind::replace: the named temporary
    UniqueFd fd_;             // the temporary (named, or unlinked for a stream)
    UniqueFd stream_;         // Kind::stream: the device, FIFO or stdout
    Kind kind_ = Kind::replace;
    OutputOptions options_;
    bool committed_ = false;
};

// Writes `data` to `path` as an OutputFile.
Result<void> write_output_file(const std::string& path, std::span<const std::byte> data,
                               OutputOptions options = {});

} // namespace svmkit
