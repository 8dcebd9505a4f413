// The boot disk writer (wrapper/boot_disk_writer.hpp). The archive is
// streamed from the input files into the boot partition (images can be
// large), hashed on the way for the GUIDs; the GPT structures are written last.
#include "wrapper/boot_disk_writer.hpp"

#include "base/checked.hpp"
#include "base/file.hpp"
#include "base/output_file.hpp"
#include "loader/disk_layout.h"
#include "signer/signer.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <set>

namespace svmkit::cli {

namespace {

constexpr std::uint64_t kLba = loader::kLbaSize;
constexpr std::uint64_t kEntryCount = 128; // GPT entries, 128 bytes each: 32 LBAs
constexpr std::uint64_t kEntrySize = 128;
constexpr std::uint64_t kEntryArrayLbas = kEntryCount * kEntrySize / kLba;
constexpr std::uint64_t kFirstUsableLba = 2 + kEntryArrayLbas;
constexpr std::uint64_t kCopyChunk = 1ull << 20;

struct Member {
    std::string name;
    std::uint32_t mode = 0;
    std::uint64_t size = 0;
    const BootDiskFile* file = nullptr; // null for a directory and the trailer
    const InputFile* input = nullptr;   // where file's bytes are, unless file->data holds them
};

std::uint64_t align4(std::uint64_t v) {
    return (v + 3) & ~std::uint64_t{3};
}

std::string cpio_header(std::uint32_t ino, const Member& m) {
    const bool dir = m.file == nullptr && m.name != "TRAILER!!!";
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    return fmt::format("070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}"
                       "{:08X}{:08X}",
                       ino, m.mode, 0, 0, dir ? 2 : 1, 0, m.size, 0, 0, 0, 0, m.name.size() + 1, 0);
}

// Archive names: relative, no empty, "." or ".." components, short enough for
// the loader's lookup.
Result<void> check_archive_name(const std::string& name) {
    if (name.empty() || name.size() > loader::kMaxCpioPath || name.front() == '/')
        return fail(ExitCode::usage, "bad name in the boot archive: '{}'", name);
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t slash = std::min(name.find('/', start), name.size());
        const std::string part = name.substr(start, slash - start);
        if (part.empty() || part == "." || part == "..")
            return fail(ExitCode::usage, "bad name in the boot archive: '{}'", name);
        start = slash + 1;
    }
    return {};
}

// `inputs` keeps the opened files alive (a deque: members point into it).
Result<std::vector<Member>> archive_members(const BootDiskSpec& spec,
                                            std::deque<InputFile>& inputs) {
    std::vector<Member> members;
    std::set<std::string> names;
    for (const BootDiskFile& f : spec.files) {
        SVM_CHECK(check_archive_name(f.archive_name));
        // Parent directories first, once each.
        for (std::size_t slash = f.archive_name.find('/'); slash != std::string::npos;
             slash = f.archive_name.find('/', slash + 1)) {
            const std::string dir = f.archive_name.substr(0, slash);
            if (names.insert(dir).second)
                members.push_back(Member{dir, 040755, 0, nullptr, nullptr});
        }
        if (!names.insert(f.archive_name).second)
            return fail(ExitCode::usage, "'{}' twice in the boot archive", f.archive_name);
        Member m{f.archive_name, 0100644, 0, &f, nullptr};
        if (f.data) {
            m.size = f.data->size();
        } else {
            SVM_TRY(in, InputFile::open(f.source_path));
            inputs.push_back(std::move(in));
            m.input = &inputs.back();
            m.size = m.input->size();
        }
        if (m.size > 0xffffffffu)
            return fail(ExitCode::usage, "{}: too large for a newc cpio archive (4 GiB)",
                        f.data ? f.archive_name : f.source_path);
        members.push_back(std::move(m));
    }
    members.push_back(Member{"TRAILER!!!", 0, 0, nullptr, nullptr});
    return members;
}

std::uint64_t archive_size(const std::vector<Member>& members) {
    std::uint64_t size = 0;
    for (const Member& m : members)
        size = align4(align4(size + 110 + m.name.size() + 1) + m.size);
    return size;
}

// Streams the archive to `out` at `offset`, hashing what it writes.
Result<void> write_archive(OutputFile& out, std::uint64_t offset,
                           const std::vector<Member>& members, signer::Hasher& hash) {
    std::vector<std::byte> chunk(kCopyChunk);
    std::uint64_t pos = 0;
    auto emit = [&](std::span<const std::byte> bytes) -> Result<void> {
        SVM_CHECK(out.write_at(offset + pos, bytes));
        hash.update(bytes);
        pos += bytes.size();
        return {};
    };
    auto pad = [&]() -> Result<void> {
        static constexpr std::array<std::byte, 3> kZeros{};
        return emit(std::span(kZeros).first(align4(pos) - pos));
    };
    std::uint32_t ino = 1;
    for (const Member& m : members) {
        const std::string header = cpio_header(m.name == "TRAILER!!!" ? 0 : ino++, m);
        SVM_CHECK(emit(as_bytes(header)));
        SVM_CHECK(emit(std::as_bytes(std::span(m.name.c_str(), m.name.size() + 1))));
        SVM_CHECK(pad());
        if (m.file == nullptr)
            continue;
        if (m.file->data) {
            SVM_CHECK(emit(*m.file->data));
            SVM_CHECK(pad());
            continue;
        }
        const InputFile& in = *m.input;
        for (std::uint64_t done = 0; done < m.size;) {
            const auto n =
                static_cast<std::size_t>(std::min<std::uint64_t>(kCopyChunk, m.size - done));
            SVM_CHECK(in.read_at(done, std::span(chunk).first(n)));
            SVM_CHECK(emit(std::span(chunk).first(n)));
            done += n;
        }
        SVM_CHECK(pad());
    }
    return {};
}

void put16(std::byte* p, std::uint16_t v) {
    for (int i = 0; i < 2; ++i)
        p[i] = static_cast<std::byte>(v >> (8 * i));
}
void put32(std::byte* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        p[i] = static_cast<std::byte>(v >> (8 * i));
}
void put64(std::byte* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
        p[i] = static_cast<std::byte>(v >> (8 * i));
}

using Guid = std::array<std::byte, 16>;

// A version-4-shaped GUID from the archive digest and a label: stable for the
// same archive, distinct per use.
Guid derived_guid(const std::vector<std::byte>& archive_digest, std::string_view label) {
    std::vector<std::byte> input = archive_digest;
    const std::string text(label);
    const auto l = as_bytes(text);
    input.insert(input.end(), l.begin(), l.end());
    const auto d = signer::digest(signer::DigestAlgorithm::sha256, input);
    Guid g{};
    std::copy_n(d.begin(), 16, g.begin());
    g[7] = (g[7] & std::byte{0x0f}) | std::byte{0x40}; // version 4 (field stored little-endian)
    g[8] = (g[8] & std::byte{0x3f}) | std::byte{0x80}; // RFC 4122 variant
    return g;
}

void put_entry(std::byte* e, const std::uint8_t (&type)[16], const Guid& unique,
               std::uint64_t first_lba, std::uint64_t last_lba, std::string_view name) {
    std::memcpy(e, type, 16);
    std::memcpy(e + 16, unique.data(), 16);
    put64(e + 32, first_lba);
    put64(e + 40, last_lba);
    for (std::size_t i = 0; i < name.size() && i < 36; ++i) // UTF-16LE, ASCII names
        put16(e + 56 + 2 * i, static_cast<std::uint16_t>(name[i]));
}

std::vector<std::byte> gpt_header(std::uint64_t my_lba, std::uint64_t alternate_lba,
                                  std::uint64_t last_usable, const Guid& disk_guid,
                                  std::uint64_t entries_lba, std::uint32_t entries_crc) {
    std::vector<std::byte> h(kLba);
    std::memcpy(h.data(), "EFI PART", 8);
    put32(&h[8], 0x00010000);
    put32(&h[12], 92);
    put64(&h[24], my_lba);
    put64(&h[32], alternate_lba);
    put64(&h[40], kFirstUsableLba);
    put64(&h[48], last_usable);
    std::memcpy(&h[56], disk_guid.data(), 16);
    put64(&h[72], entries_lba);
    put32(&h[80], static_cast<std::uint32_t>(kEntryCount));
    put32(&h[84], static_cast<std::uint32_t>(kEntrySize));
    put32(&h[88], entries_crc);
    put32(&h[16], loader::crc32(0, h.data(), 92));
    return h;
}

std::vector<std::byte> protective_mbr(std::uint64_t disk_lbas) {
    std::vector<std::byte> m(kLba);
    std::byte* e = &m[446];
    e[1] = std::byte{0x00}; // CHS of LBA 1: head 0, sector 2, cylinder 0
    e[2] = std::byte{0x02};
    e[4] = std::byte{0xee};
    e[5] = e[6] = e[7] = std::byte{0xff};
    put32(e + 8, 1);
    put32(e + 12, static_cast<std::uint32_t>(std::min<std::uint64_t>(disk_lbas - 1, 0xffffffff)));
    m[510] = std::byte{0x55};
    m[511] = std::byte{0xaa};
    return m;
}

} // namespace

Result<BootDiskLayout> write_boot_disk(const BootDiskSpec& spec, const std::string& output) {
    std::deque<InputFile> inputs;
    SVM_TRY(members, archive_members(spec, inputs));

    BootDiskLayout layout;
    layout.archive_size = archive_size(members);
    layout.boot_offset = kDiskAlignment;
    layout.boot_size = *checked_align_up(layout.archive_size, kDiskAlignment);
    const std::uint64_t backup_bytes = (1 + kEntryArrayLbas) * kLba;
    const std::uint64_t minimum = layout.boot_offset + layout.boot_size + backup_bytes;
    if (spec.disk_size == 0) {
        layout.disk_size =
            layout.boot_offset + layout.boot_size + kDefaultDataSize + kDiskAlignment;
    } else {
        if (spec.disk_size % kLba != 0)
            return fail(ExitCode::usage, "--size: {} is not a multiple of 512", spec.disk_size);
        if (spec.disk_size < minimum)
            return fail(ExitCode::usage, "--size: {} is too small, the boot partition needs {}",
                        spec.disk_size, minimum);
        layout.disk_size = spec.disk_size;
    }
    const std::uint64_t disk_lbas = layout.disk_size / kLba;
    const std::uint64_t last_usable = disk_lbas - 1 - kEntryArrayLbas - 1;
    const std::uint64_t boot_first = layout.boot_offset / kLba;
    const std::uint64_t boot_last = boot_first + layout.boot_size / kLba - 1;
    // The data partition ends on a 1 MiB boundary too (what partitioning tools
    // advise), and exists when at least 1 MiB is left.
    const std::uint64_t data_first = boot_last + 1;
    const std::uint64_t data_end =
        (last_usable + 1) / (kDiskAlignment / kLba) * (kDiskAlignment / kLba);
    if (data_end > data_first && (data_end - data_first) * kLba >= kDiskAlignment) {
        layout.data_offset = data_first * kLba;
        layout.data_size = (data_end - data_first) * kLba;
    }
    const std::uint64_t data_last = data_end - 1;

    SVM_TRY(out, OutputFile::create(output));
    signer::Hasher hash(signer::DigestAlgorithm::sha256);
    SVM_CHECK(write_archive(out, layout.boot_offset, members, hash));
    const std::vector<std::byte> archive_digest = hash.finish();

    std::vector<std::byte> entries(kEntryCount * kEntrySize);
    put_entry(&entries[0], loader::kBootPartitionType, derived_guid(archive_digest, "boot"),
              boot_first, boot_last, "svmkit boot");
    if (layout.data_size != 0)
        put_entry(&entries[kEntrySize], loader::kDataPartitionType,
                  derived_guid(archive_digest, "data"), data_first, data_last, "svmkit data");
    const std::uint32_t entries_crc = loader::crc32(0, entries.data(), entries.size());
    const Guid disk_guid = derived_guid(archive_digest, "disk");
    const std::uint64_t backup_entries_lba = disk_lbas - 1 - kEntryArrayLbas;

    SVM_CHECK(out.write_at(0, protective_mbr(disk_lbas)));
    SVM_CHECK(
        out.write_at(kLba, gpt_header(1, disk_lbas - 1, last_usable, disk_guid, 2, entries_crc)));
    SVM_CHECK(out.write_at(2 * kLba, entries));
    SVM_CHECK(out.write_at(backup_entries_lba * kLba, entries));
    SVM_CHECK(
        out.write_at((disk_lbas - 1) * kLba, gpt_header(disk_lbas - 1, 1, last_usable, disk_guid,
                                                        backup_entries_lba, entries_crc)));
    SVM_CHECK(out.commit());
    return layout;
}

} // namespace svmkit::cli
