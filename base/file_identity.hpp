// Which files a command reads and writes, by what they are rather than how
// they were spelled: an output must never be one of the command's inputs or
// another of its outputs, however the path reaches it (relative path,
// symlink, hard link). docs/cli.md, "Inputs and outputs".
#pragma once

#include "base/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace svmkit {

// A file as the kernel names it. Two paths are the same file exactly when
// their identities are equal.
struct FileIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

inline FileIdentity identity_of(const struct stat& st) {
    return {st.st_dev, st.st_ino};
}

// What a path names, in words for messages ("a FIFO", "a directory").
const char* file_type_name(mode_t mode);

// The files the running command has opened as inputs and the outputs it
// has created. Process-wide because a command's inputs are opened deep
// inside its components (keys in signer/, payloads in format/); it records
// and checks only while a Scope (one command: main.cpp) is alive, so
// library users and test processes that run many operations are not bound
// by an earlier one's files.
class IoRegistry {
  public:
    static IoRegistry& instance();

    class Scope {
      public:
        Scope();
        ~Scope();
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;
    };
    [[nodiscard]] bool active() const { return active_; }

    void add_input(FileIdentity id, const std::string& path);
    // An input the command edits in place (`esm authorize` without -o):
    // an output may replace it, atomically, all the same.
    void allow_in_place(const std::string& path);
    // The input that `id` is, if any (inputs edited in place excepted).
    [[nodiscard]] std::optional<std::string> input_named(FileIdentity id) const;

    // An output is known by the file it replaces (when it exists) and by
    // its resolved destination path (for outputs that do not exist yet).
    void add_output(std::optional<FileIdentity> id, const std::string& resolved,
                    const std::string& path);
    [[nodiscard]] std::optional<std::string> output_named(std::optional<FileIdentity> id,
                                                          const std::string& resolved) const;

    // Standard input can be read once; the second reader is told who had it.
    Result<void> claim_stdin(const std::string& who);
    // Standard output carries at most one output's bytes; when it does,
    // every human-readable line goes to standard error.
    Result<void> claim_stdout(const std::string& who);
    [[nodiscard]] bool stdout_is_data() const { return !stdout_owner_.empty(); }

  private:
    void reset();
    struct Input {
        FileIdentity id;
        std::string path;
    };
    struct Output {
        std::optional<FileIdentity> id;
        std::string resolved;
        std::string path;
    };
    std::vector<Input> inputs_;
    std::vector<FileIdentity> in_place_;
    std::vector<Output> outputs_;
    std::string stdin_owner_;
    std::string stdout_owner_;
    bool active_ = false;
};

// Where human-readable lines go: stdout, or stderr once stdout carries data.
std::FILE* human_stream();

} // namespace svmkit
