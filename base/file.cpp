#include "base/file.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace svmkit {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = other.release();
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (fd_ >= 0)
        ::close(fd_);
}

Result<InputFile> InputFile::open(const std::string& path) {
    InputFile file;
    file.path_ = path;
    file.fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file.fd_.valid())
        return fail(ExitCode::io, "{}: cannot open: {}", path, std::strerror(errno));
    struct stat st {};
    if (::fstat(file.fd_.get(), &st) != 0)
        return fail(ExitCode::io, "{}: cannot stat: {}", path, std::strerror(errno));
    if (S_ISDIR(st.st_mode))
        return fail(ExitCode::io, "{}: is a directory, not a file", path);
    file.size_ = static_cast<std::uint64_t>(st.st_size);
    return file;
}

Result<void> InputFile::read_at(std::uint64_t offset, std::span<std::byte> out) const {
    std::size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done,
                            static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(ExitCode::io, "{}: read error at offset {}: {}", path_, offset + done,
                        std::strerror(errno));
        }
        if (n == 0)
            return fail(ExitCode::malformed, "{}: truncated: needed {} bytes at offset {}", path_,
                        out.size(), offset);
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Result<std::vector<std::byte>> InputFile::read_all(std::uint64_t limit) const {
    if (size_ > limit)
        return fail(ExitCode::malformed, "{}: file is {} bytes, more than the limit of {}", path_,
                    size_, limit);
    std::vector<std::byte> data(size_);
    SVM_CHECK(read_at(0, data));
    return data;
}

Result<std::vector<std::byte>> read_small_file(const std::string& path, std::uint64_t limit) {
    SVM_TRY(file, InputFile::open(path));
    return file.read_all(limit);
}

Result<AtomicOutputFile> AtomicOutputFile::create(const std::string& path, mode_t mode) {
    AtomicOutputFile out;
    out.path_ = path;
    std::filesystem::path dest(path);
    std::string dir = dest.has_parent_path() ? dest.parent_path().string() : std::string(".");
    std::string tmpl = dir + "/." + dest.filename().string() + ".svmkit-XXXXXX";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    int fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0)
        return fail(ExitCode::io, "{}: cannot create output file in {}: {}", path, dir,
                    std::strerror(errno));
    out.fd_ = UniqueFd(fd);
    out.temp_path_ = name.data();
    if (::fchmod(fd, mode) != 0)
        return fail(ExitCode::io, "{}: cannot set mode: {}", path, std::strerror(errno));
    return out;
}

AtomicOutputFile::AtomicOutputFile(AtomicOutputFile&& other) noexcept
    : path_(std::move(other.path_)), temp_path_(std::move(other.temp_path_)),
      fd_(std::move(other.fd_)), committed_(other.committed_) {
    other.temp_path_.clear();
    other.committed_ = true;
}

AtomicOutputFile::~AtomicOutputFile() {
    if (!committed_ && !temp_path_.empty())
        ::unlink(temp_path_.c_str());
}

Result<void> AtomicOutputFile::write_at(std::uint64_t offset, std::span<const std::byte> data) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(fd_.get(), data.data() + done, data.size() - done,
                             static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(ExitCode::io, "{}: write error: {}", path_, std::strerror(errno));
        }
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Result<void> AtomicOutputFile::commit() {
    if (::fsync(fd_.get()) != 0)
        return fail(ExitCode::io, "{}: cannot flush: {}", path_, std::strerror(errno));
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
        return fail(ExitCode::io, "{}: cannot rename the finished output into place: {}", path_,
                    std::strerror(errno));
    committed_ = true;
    fd_ = UniqueFd();
    return {};
}

Result<void> write_file_atomic(const std::string& path, std::span<const std::byte> data,
                               mode_t mode) {
    SVM_TRY(out, AtomicOutputFile::create(path, mode));
    SVM_CHECK(out.write_all(data));
    return out.commit();
}

std::string sibling_program(const char* env_var, const char* name) {
    if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0')
        return env;
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec)
        return name;
    return (self.parent_path() / name).string();
}

} // namespace svmkit
