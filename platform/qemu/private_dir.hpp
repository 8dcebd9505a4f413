// The directory a QEMU boot keeps its rendezvous in: the gdbstub's and the
// console's unix sockets and the guest RAM file. Mode 0700, made with
// mkdtemp under $TMPDIR (else /tmp): on a shared machine nobody but svmkit's
// user can reach the sockets (connecting needs search permission on the
// directory) or the RAM.
//
// Invariants: path() exists from create() until clear() or destruction;
// clear() removes the entries this boot made and the directory itself, once
// both ends hold what they opened (nothing of the VM stays on disk even if
// svmkit is killed later); the destructor does the same for the paths of an
// earlier failure.
#pragma once

#include "base/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace svmkit::platform::qemu {

class PrivateDirectory {
  public:
    static Result<PrivateDirectory> create();
    PrivateDirectory(PrivateDirectory&& o) noexcept
        : path_(std::move(o.path_)), entries_(std::move(o.entries_)) {
        o.path_.clear();
    }
    PrivateDirectory& operator=(PrivateDirectory&&) = delete;
    PrivateDirectory(const PrivateDirectory&) = delete;
    PrivateDirectory& operator=(const PrivateDirectory&) = delete;
    ~PrivateDirectory() { clear(); }

    [[nodiscard]] const std::string& path() const { return path_; }
    // The path of entry `name` (recorded, so clear() removes it).
    std::string entry(std::string_view name);
    void clear() noexcept;

  private:
    explicit PrivateDirectory(std::string path) : path_(std::move(path)) {}
    std::string path_;
    std::vector<std::string> entries_;
};

} // namespace svmkit::platform::qemu
