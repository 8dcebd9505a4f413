#include "platform/qemu/private_dir.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace svmkit::platform::qemu {

Result<PrivateDirectory> PrivateDirectory::create() {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = tmp != nullptr && *tmp == '/' ? tmp : "/tmp";
    // A unix socket's path has room for 107 bytes: keep the directory short.
    if (base.size() > 64)
        base = "/tmp";
    std::string pattern = base + "/svmkit-qemu-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) // mode 0700
        return fail(ExitCode::io, "{}: cannot make a private directory: {}", pattern,
                    std::strerror(errno));
    return PrivateDirectory(std::move(pattern));
}

std::string PrivateDirectory::entry(std::string_view name) {
    entries_.push_back(path_ + "/" + std::string(name));
    return entries_.back();
}

void PrivateDirectory::clear() noexcept {
    if (path_.empty())
        return;
    for (const std::string& e : entries_)
        ::unlink(e.c_str());
    entries_.clear();
    ::rmdir(path_.c_str());
    path_.clear();
}

} // namespace svmkit::platform::qemu
