#include "base/output_file.hpp"

#include "base/file_identity.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace svmkit {

namespace {

// The file a rename of `path` must replace: symlinks are followed so that a
// link to an output keeps pointing at the new file.
std::string resolve_destination(const std::string& path) {
    std::error_code ec;
    auto resolved = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
    return ec ? path : resolved.string();
}

std::optional<struct stat> stat_path(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return std::nullopt;
    return st;
}

Result<UniqueFd> unlinked_temporary(const std::string& path) {
    const char* tmpdir = std::getenv("TMPDIR");
    const std::string dir = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
    UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd.valid())
        return fail(ExitCode::io, "{}: cannot create a temporary file in {}: {}", path, dir,
                    std::strerror(errno));
    return fd;
}

// Opens an existing device or FIFO for writing, without creating or
// truncating anything; a FIFO with no reader is an error, not a hang.
Result<UniqueFd> open_stream(const std::string& path, const struct stat& st) {
    if (S_ISSOCK(st.st_mode))
        return fail(ExitCode::usage, "{}: is a socket; cannot write an output there", path);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd.valid() && errno == ENXIO)
        return fail(ExitCode::io, "{}: a FIFO with no reader", path);
    if (!fd.valid())
        return fail(ExitCode::io, "{}: cannot open for writing: {}", path, std::strerror(errno));
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    return fd;
}

} // namespace

Result<OutputFile> OutputFile::create(const std::string& path, OutputOptions options) {
    OutputFile out;
    out.path_ = path;
    out.options_ = options;
    if (options.private_key)
        out.options_.mode = 0600;
    auto& registry = IoRegistry::instance();
    if (path == "-") {
        if (options.private_key)
            return fail(ExitCode::usage,
                        "-: a private key is never written to standard output; name a file");
        SVM_CHECK(registry.claim_stdout("-"));
        out.kind_ = Kind::stream;
        out.path_ = "standard output";
        out.stream_ = UniqueFd(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
        if (!out.stream_.valid())
            return fail(ExitCode::io, "standard output is closed");
        SVM_TRY(spool, unlinked_temporary(out.path_));
        out.fd_ = std::move(spool);
        return out;
    }
    const std::string destination = resolve_destination(path);
    SVM_CHECK(out.open_destination(destination));
    return out;
}

Result<void> OutputFile::open_destination(const std::string& destination) {
    auto& registry = IoRegistry::instance();
    destination_ = destination;
    const auto st = stat_path(destination);
    std::optional<FileIdentity> id;
    if (st) {
        id = identity_of(*st);
        if (S_ISDIR(st->st_mode))
            return fail(ExitCode::usage, "{}: is a directory; name the output file", path_);
        // A character device is not destroyed by being written to (and
        // /dev/null may well be an input too); every other file is.
        if (!S_ISCHR(st->st_mode))
            SVM_CHECK(check_not_an_input());
    }
    if (auto other = registry.output_named(id, destination))
        return fail(ExitCode::usage, "{}: is the same file as the output {}", path_, *other);
    if (st && !S_ISREG(st->st_mode)) {
        SVM_TRY(stream, open_stream(path_, *st));
        stream_ = std::move(stream);
        kind_ = Kind::stream;
        SVM_TRY(spool, unlinked_temporary(path_));
        fd_ = std::move(spool);
    } else {
        if (st && options_.private_key && !options_.overwrite)
            return fail(ExitCode::usage,
                        "{}: already exists; refusing to overwrite a private key (use --force)",
                        path_);
        SVM_CHECK(open_temporary(destination));
    }
    registry.add_output(id, destination, path_);
    return {};
}

Result<void> OutputFile::open_temporary(const std::string& destination) {
    std::filesystem::path dest(destination);
    const std::string dir = dest.has_parent_path() ? dest.parent_path().string() : ".";
    std::string tmpl = dir + "/." + dest.filename().string() + ".svmkit-XXXXXX";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    const int fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0)
        return fail(ExitCode::io, "{}: cannot create the output in {}: {}", path_, dir,
                    std::strerror(errno));
    fd_ = UniqueFd(fd);
    temp_path_ = name.data();
    if (::fchmod(fd, options_.mode) != 0)
        return fail(ExitCode::io, "{}: cannot set mode: {}", path_, std::strerror(errno));
    return {};
}

Result<void> OutputFile::check_not_an_input() const {
    const auto st = stat_path(destination_);
    if (!st || S_ISCHR(st->st_mode))
        return {};
    if (auto input = IoRegistry::instance().input_named(identity_of(*st)))
        return fail(ExitCode::usage,
                    "{}: is the same file as the input {}; refusing to overwrite an input", path_,
                    *input);
    return {};
}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : path_(std::move(other.path_)), destination_(std::move(other.destination_)),
      temp_path_(std::move(other.temp_path_)), fd_(std::move(other.fd_)),
      stream_(std::move(other.stream_)), kind_(other.kind_), options_(other.options_),
      committed_(other.committed_) {
    other.temp_path_.clear();
    other.committed_ = true;
}

OutputFile::~OutputFile() {
    if (!committed_ && !temp_path_.empty())
        ::unlink(temp_path_.c_str());
}

Result<void> OutputFile::write_at(std::uint64_t offset, std::span<const std::byte> data) {
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

Result<void> OutputFile::commit() {
    // Inputs opened after create() are known now.
    if (kind_ == Kind::replace)
        SVM_CHECK(check_not_an_input());
    SVM_CHECK(kind_ == Kind::replace ? commit_replace() : commit_stream());
    committed_ = true;
    fd_ = UniqueFd();
    stream_ = UniqueFd();
    return {};
}

Result<void> OutputFile::commit_replace() {
    if (::fsync(fd_.get()) != 0)
        return fail(ExitCode::io, "{}: cannot flush: {}", path_, std::strerror(errno));
    const bool keep_existing = options_.private_key && !options_.overwrite;
    const unsigned flags = keep_existing ? RENAME_NOREPLACE : 0;
    if (::renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, destination_.c_str(), flags) != 0) {
        const int err = errno;
        ::unlink(temp_path_.c_str());
        temp_path_.clear();
        if (err == EEXIST)
            return fail(ExitCode::usage,
                        "{}: appeared meanwhile; refusing to overwrite a private key (use --force)",
                        path_);
        return fail(ExitCode::io, "{}: cannot rename the finished output into place: {}", path_,
                    std::strerror(err));
    }
    return {};
}

Result<void> OutputFile::commit_stream() {
    std::vector<std::byte> chunk(1 << 20);
    std::uint64_t offset = 0;
    for (;;) {
        const ssize_t n =
            ::pread(fd_.get(), chunk.data(), chunk.size(), static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(ExitCode::io, "{}: reading back the output: {}", path_,
                        std::strerror(errno));
        if (n == 0)
            return {};
        SVM_CHECK(write_all_fd(stream_.get(),
                               std::span<const std::byte>(chunk).first(static_cast<std::size_t>(n)),
                               path_));
        offset += static_cast<std::uint64_t>(n);
    }
}

Result<void> write_output_file(const std::string& path, std::span<const std::byte> data,
                               OutputOptions options) {
    SVM_TRY(out, OutputFile::create(path, options));
    SVM_CHECK(out.write_all(data));
    return out.commit();
}

} // namespace svmkit
