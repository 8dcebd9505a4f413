#include "format/esm_cpio.hpp"

#include <array>

namespace svmkit::format {

namespace {

// The longest member name accepted: the whole path stays well inside the
// 255 bytes the boot-disk cpio reader (loader/disk_layout.h) looks up.
constexpr std::size_t kMaxFileName = 200;

struct Entry {
    std::string name;
    std::uint32_t mode;
    std::uint32_t nlink;
    std::span<const std::byte> data;
};

constexpr std::uint32_t kDirectory = 040755;
constexpr std::uint32_t kRegular = 0100644;

void append(std::vector<std::byte>& out, std::span<const std::byte> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

void pad_to(std::vector<std::byte>& out, std::size_t alignment) {
    out.resize((out.size() + alignment - 1) / alignment * alignment, std::byte{0});
}

// One newc header: magic, then 13 eight-digit upper-case hex fields (ino,
// mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
// rdevminor, namesize with its NUL, check), then the name and its NUL.
void append_entry(std::vector<std::byte>& out, std::uint32_t ino, const Entry& e,
                  std::uint32_t mtime) {
    const auto size = static_cast<std::uint32_t>(e.data.size());
    const auto namesize = static_cast<std::uint32_t>(e.name.size() + 1);
    const std::string header =
        fmt::format("070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}"
                    "{:08X}{:08X}",
                    ino, e.mode, 0, 0, e.nlink, mtime, size, 0, 0, 0, 0, namesize, 0);
    append(out, std::as_bytes(std::span(header.data(), header.size())));
    append(out, std::as_bytes(std::span(e.name.c_str(), e.name.size() + 1)));
    pad_to(out, 4);
    append(out, e.data);
    pad_to(out, 4);
}

Result<void> check_file_name(const std::string& name) {
    if (name.empty() || name == "." || name == ".." || name.size() > kMaxFileName ||
        name.find_first_of(std::string_view("/\0", 2)) != std::string::npos)
        return fail(ExitCode::usage,
                    "'{}' cannot name the blob in the archive: one path component of 1 to {} "
                    "bytes, not '.' or '..'",
                    name, kMaxFileName);
    return {};
}

} // namespace

Result<std::vector<std::byte>> make_esm_cpio(std::span<const std::byte> blob,
                                             const std::string& file_name, std::uint32_t mtime) {
    SVM_CHECK(check_file_name(file_name));
    if (blob.size() > 0xffffffffu)
        return fail(ExitCode::usage, "the blob is too large for a newc cpio archive");
    const std::string dir(kEsmCpioDirectory);
    // A directory's nlink is 2 plus its subdirectories, as the file system
    // reports it to cpio: each of these has one, except the last.
    const std::array<Entry, 5> entries{{
        {".", kDirectory, 3, {}},
        {"opt", kDirectory, 3, {}},
        {"opt/ibm", kDirectory, 3, {}},
        {dir, kDirectory, 2, {}},
        {dir + "/" + file_name, kRegular, 1, blob},
    }};
    std::vector<std::byte> out;
    out.reserve(blob.size() + 1024);
    std::uint32_t ino = 0;
    for (const Entry& e : entries)
        append_entry(out, ino++, e, mtime);
    append_entry(out, 0, Entry{"TRAILER!!!", 0, 1, {}}, 0);
    pad_to(out, kEsmCpioBlockSize);
    return out;
}

} // namespace svmkit::format
