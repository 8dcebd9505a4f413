#include "platform/qemu/first_stage.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/sendfile.h>
#include <unistd.h>

namespace svmkit::platform::qemu {

namespace {

Result<UniqueFd> create_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid())
        return fail(ExitCode::io, "{}: cannot create: {}", path, std::strerror(errno));
    return fd;
}

// Appends all of `in` at out's position, inside the kernel.
Result<void> append_file(const InputFile& in, int out, const std::string& out_path) {
    off_t offset = 0;
    std::uint64_t left = in.size();
    while (left > 0) {
        const ssize_t n = ::sendfile(out, in.fd(), &offset, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(ExitCode::io, "copying {} to {}: {}", in.path(), out_path,
                        n == 0 ? "the input ended early" : std::strerror(errno));
        left -= static_cast<std::uint64_t>(n);
    }
    return {};
}

Result<void> append_bytes(int out, std::string_view bytes, const std::string& out_path) {
    return write_all_fd(out, as_bytes(std::string(bytes)), out_path);
}

std::string zeros_to_4(std::uint64_t size) {
    return std::string((4 - size % 4) % 4, '\0');
}

// One newc header and its name, padded (the data follows, then zeros_to_4).
std::string newc_header(std::string_view name, std::uint32_t mode, std::uint32_t nlink,
                        std::uint64_t size, std::uint32_t ino) {
    const auto name_size = static_cast<std::uint32_t>(name.size() + 1);
    std::string h = fmt::format("070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}"
                                "{:08X}{:08X}{:08X}{:08X}",
                                ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, name_size, 0);
    h += name;
    h += '\0';
    return h + zeros_to_4(h.size());
}

} // namespace

Result<void> copy_input(const InputFile& in, const std::string& path) {
    SVM_TRY(out, create_file(path));
    return append_file(in, out.get(), path);
}

Result<void> write_first_stage_initrd(const InputFile& initrd, const InputFile& image,
                                      const std::string& path) {
    if (image.size() > 0xffffffffu)
        return fail(ExitCode::usage, "{}: {} bytes do not fit a newc archive member (4 GiB)",
                    image.path(), image.size());
    SVM_TRY(out, create_file(path));
    SVM_CHECK(append_file(initrd, out.get(), path));
    SVM_CHECK(append_bytes(out.get(), zeros_to_4(initrd.size()), path));
    SVM_CHECK(
        append_bytes(out.get(), newc_header(kKexecImageName, 0100644, 1, image.size(), 1), path));
    SVM_CHECK(append_file(image, out.get(), path));
    SVM_CHECK(append_bytes(out.get(), zeros_to_4(image.size()), path));
    return append_bytes(out.get(), newc_header("TRAILER!!!", 0, 1, 0, 0), path);
}

} // namespace svmkit::platform::qemu
