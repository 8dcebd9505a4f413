#include "base/file.hpp"

#include "base/file_identity.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
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

namespace {

constexpr std::size_t kStreamChunk = std::size_t{64} << 10;

// Opens without blocking: a FIFO with no writer would otherwise hang open()
// forever. Streams are then read through poll(); regular files do not care.
Result<UniqueFd> open_for_reading(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd.valid())
        return fail(ExitCode::io, "{}: cannot open: {}", path, std::strerror(errno));
    return fd;
}

Result<struct stat> stat_fd(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return fail(ExitCode::io, "{}: cannot stat: {}", path, std::strerror(errno));
    return st;
}

void set_nonblocking(int fd, bool on) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0)
        ::fcntl(fd, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK));
}

// Waits until `fd` has data or its end, at most the input timeout.
Result<void> wait_readable(int fd, const std::string& path) {
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        const int ready = ::poll(&p, 1, input_timeout_seconds() * 1000);
        if (ready > 0)
            return {};
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            return fail(ExitCode::io, "{}: cannot wait for data: {}", path, std::strerror(errno));
        return fail(ExitCode::io,
                    "{}: no data for {} s (a FIFO that nobody writes?); set "
                    "SVMKIT_INPUT_TIMEOUT to wait longer",
                    path, input_timeout_seconds());
    }
}

// Reads a non-blocking stream to its end into `sink`; more than `limit`
// bytes is refused. poll() comes before every read: a FIFO whose writer has
// not opened it yet reads as end-of-file, while poll() waits for the writer.
template <typename Sink>
Result<std::uint64_t> read_stream(int fd, const std::string& path, std::uint64_t limit,
                                  Sink&& sink) {
    std::vector<std::byte> chunk(kStreamChunk);
    std::uint64_t total = 0;
    for (;;) {
        SVM_CHECK(wait_readable(fd, path));
        const ssize_t n = ::read(fd, chunk.data(), chunk.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return fail(ExitCode::io, "{}: read error: {}", path, std::strerror(errno));
        if (n == 0)
            return total;
        total += static_cast<std::uint64_t>(n);
        if (total > limit)
            return fail(ExitCode::malformed, "{}: more than {} bytes, the limit for this input",
                        path, limit);
        SVM_CHECK(sink(std::span<const std::byte>(chunk).first(static_cast<std::size_t>(n))));
    }
}

// A duplicate of standard input, non-blocking, claimed for `name`.
Result<UniqueFd> take_stdin(const std::string& name) {
    SVM_CHECK(IoRegistry::instance().claim_stdin(name));
    UniqueFd in(::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3));
    if (!in.valid())
        return fail(ExitCode::io, "{}: standard input is closed", name);
    if (::isatty(in.get()))
        return fail(ExitCode::usage, "{}: standard input is a terminal; pipe the data in", name);
    return in;
}

// Standard input as a regular file: itself when it is one, else its bytes
// copied into an unlinked temporary file.
Result<UniqueFd> spool_stdin(const std::string& name) {
    SVM_TRY(in, take_stdin(name));
    SVM_TRY(st, stat_fd(in.get(), name));
    if (S_ISREG(st.st_mode))
        return in;
    const char* tmpdir = std::getenv("TMPDIR");
    const std::string dir = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
    UniqueFd spool(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!spool.valid())
        return fail(ExitCode::io, "{}: cannot create a temporary file in {}: {}", name, dir,
                    std::strerror(errno));
    // The flag is on the shared open file description: restored afterwards
    // so that the shell's standard input is as it was.
    set_nonblocking(in.get(), true);
    auto copied = read_stream(
        in.get(), name, InputFile::kMaxSpooledInput,
        [&](std::span<const std::byte> bytes) { return write_all_fd(spool.get(), bytes, dir); });
    set_nonblocking(in.get(), false);
    if (!copied)
        return svmkit::unexpected(std::move(copied.error()));
    return spool;
}

} // namespace

Result<void> write_all_fd(int fd, std::span<const std::byte> data, const std::string& path) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(ExitCode::io, "{}: write error: {}", path, std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
    return {};
}

int input_timeout_seconds() {
    const char* env = std::getenv("SVMKIT_INPUT_TIMEOUT");
    if (env == nullptr || *env == '\0')
        return 30;
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    return *end == '\0' && v > 0 && v < 86400 ? static_cast<int>(v) : 30;
}

Result<InputFile> InputFile::open(const std::string& path) {
    InputFile file;
    file.path_ = path == "-" ? std::string("standard input") : path;
    if (path == "-") {
        SVM_TRY(fd, spool_stdin(file.path_));
        file.fd_ = std::move(fd);
    } else {
        SVM_TRY(fd, open_for_reading(path));
        file.fd_ = std::move(fd);
    }
    SVM_TRY(st, stat_fd(file.fd_.get(), file.path_));
    if (!S_ISREG(st.st_mode))
        return fail(ExitCode::malformed,
                    "{}: is {}; this input must be a regular file (or '-' for standard input)",
                    path, file_type_name(st.st_mode));
    set_nonblocking(file.fd_.get(), false);
    if (path != "-")
        IoRegistry::instance().add_input(identity_of(st), path);
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
    const std::string name = path == "-" ? std::string("standard input") : path;
    UniqueFd fd;
    if (path == "-") {
        SVM_TRY(in, take_stdin(name));
        fd = std::move(in);
    } else {
        SVM_TRY(opened, open_for_reading(path));
        fd = std::move(opened);
    }
    SVM_TRY(st, stat_fd(fd.get(), name));
    if (S_ISDIR(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISBLK(st.st_mode))
        return fail(ExitCode::malformed, "{}: is {}, not a file to read", name,
                    file_type_name(st.st_mode));
    if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > limit)
        return fail(ExitCode::malformed, "{}: file is {} bytes, more than the limit of {}", name,
                    static_cast<std::uint64_t>(st.st_size), limit);
    if (path != "-")
        IoRegistry::instance().add_input(identity_of(st), path);
    std::vector<std::byte> data;
    if (path == "-")
        set_nonblocking(fd.get(), true);
    auto read = read_stream(fd.get(), name, limit, [&](std::span<const std::byte> bytes) {
        data.insert(data.end(), bytes.begin(), bytes.end());
        return Result<void>{};
    });
    if (path == "-")
        set_nonblocking(fd.get(), false);
    if (!read)
        return svmkit::unexpected(std::move(read.error()));
    return data;
}

} // namespace svmkit
