// The boot disk: the host writer (wrapper/boot_disk_writer.hpp, what
// `svmkit mkdisk` runs) and the freestanding reader (loader/disk_layout.h)
// against each other, reproducibility, the CRC-32 against known values, and
// every error of the reader on disks and archives broken one field at a time.
#include "loader/disk_layout.h"

#include "test_support.hpp"
#include "wrapper/boot_disk_writer.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

using namespace svmkit;
using loader::BootPartition;
using loader::CpioFile;
using loader::DiskError;

namespace {

struct MemDisk {
    std::vector<std::uint8_t> bytes;
    bool fail = false;
    static bool read(void* ctx, std::uint64_t offset, void* buf, std::uint64_t size) {
        auto* d = static_cast<MemDisk*>(ctx);
        if (d->fail || offset > d->bytes.size() || size > d->bytes.size() - offset)
            return false;
        std::memcpy(buf, d->bytes.data() + offset, size);
        return true;
    }
    std::uint64_t size() const { return bytes.size(); }
};

std::vector<std::uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::uint64_t get64(const std::vector<std::uint8_t>& b, std::size_t at) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8) | b[at + i];
    return v;
}
void put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put64(std::vector<std::uint8_t>& b, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
        b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// The primary GPT header and entries of a test disk, with CRCs fixed after edits.
constexpr std::size_t kHeader = 512, kEntries = 1024, kEntrySize = 128;
void fix_crcs(std::vector<std::uint8_t>& d) {
    put32(d, kHeader + 88, loader::crc32(0, d.data() + kEntries, 128 * kEntrySize));
    put32(d, kHeader + 16, 0);
    put32(d, kHeader + 16, loader::crc32(0, d.data() + kHeader, 92));
}

struct Lab {
    test::TempDir dir{"loader-disk"};
    std::vector<std::uint8_t> image_a = [] {
        auto r = test::random_bytes(100000, 1);
        return std::vector<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(r.data()),
                                         reinterpret_cast<const std::uint8_t*>(r.data()) +
                                             r.size());
    }();
    std::string cfg = "menuentry \"a\" {\n  linux /images/a.img\n}\n";

    Lab() {
        test::write_bytes(dir.file("a.img"),
                          std::as_bytes(std::span(image_a.data(), image_a.size())));
        test::write_bytes(dir.file("b.img"), test::random_bytes(5000, 2));
        test::write_bytes(dir.file("boot.cfg"), as_bytes(cfg));
    }
    cli::BootDiskSpec spec(std::uint64_t size = 0) const {
        cli::BootDiskSpec s;
        s.files = {{"boot.cfg", dir.file("boot.cfg"), std::nullopt},
                   {"images/a.img", dir.file("a.img"), std::nullopt},
                   {"images/b.img", dir.file("b.img"), std::nullopt}};
        s.disk_size = size;
        return s;
    }
    MemDisk disk(const std::string& name = "disk.img", std::uint64_t size = 0) const {
        auto r = cli::write_boot_disk(spec(size), dir.file(name));
        REQUIRE_MESSAGE(r.has_value(), r.error().message);
        return MemDisk{read_file(dir.file(name))};
    }
};

DiskError find_part(MemDisk& d, BootPartition* p) {
    return loader::find_boot_partition(MemDisk::read, &d, d.size(), p);
}

DiskError find_part(MemDisk& d) {
    BootPartition p{};
    return find_part(d, &p);
}

} // namespace

TEST_CASE("loader disk: crc32 matches the IEEE 802.3 check values") {
    CHECK(loader::crc32(0, "123456789", 9) == 0xcbf43926u);
    CHECK(loader::crc32(0, "", 0) == 0);
    // Continuation over pieces equals one pass.
    const std::string s = "The quick brown fox jumps over the lazy dog";
    CHECK(loader::crc32(0, s.data(), s.size()) == 0x414fa339u);
    CHECK(loader::crc32(loader::crc32(0, s.data(), 10), s.data() + 10, s.size() - 10) ==
          0x414fa339u);
}

TEST_CASE("loader disk: what the writer writes, the reader finds") {
    Lab lab;
    MemDisk d = lab.disk();
    // Default size: 1 MiB head + 1 MiB boot partition + 64 MiB data + 1 MiB tail.
    CHECK(d.size() == (1 + 1 + 64 + 1) << 20);
    BootPartition part{};
    REQUIRE(find_part(d, &part) == DiskError::none);
    CHECK(part.byte_offset == 1 << 20);
    CHECK(part.byte_size == 1 << 20);

    CpioFile f{};
    for (const char* path : {"/boot.cfg", "boot.cfg", "./boot.cfg", "//boot.cfg"}) {
        CAPTURE(path);
        REQUIRE(loader::find_cpio_file(MemDisk::read, &d, part, path, &f) == DiskError::none);
        std::string text(f.size, '\0');
        REQUIRE(loader::read_cpio_file(MemDisk::read, &d, f, text.data(), text.size()));
        CHECK(text == lab.cfg);
    }
    REQUIRE(loader::find_cpio_file(MemDisk::read, &d, part, "/images/a.img", &f) ==
            DiskError::none);
    std::vector<std::uint8_t> got(f.size);
    REQUIRE(loader::read_cpio_file(MemDisk::read, &d, f, got.data(), got.size()));
    CHECK(got == lab.image_a);
    CHECK(f.data_offset % 4 == 0);
    CHECK_FALSE(loader::read_cpio_file(MemDisk::read, &d, f, got.data(), got.size() - 1));

    CHECK(loader::find_cpio_file(MemDisk::read, &d, part, "/images", &f) ==
          DiskError::cpio_not_regular_file);
    CHECK(loader::find_cpio_file(MemDisk::read, &d, part, "/images/c.img", &f) ==
          DiskError::cpio_file_not_found);
    CHECK(loader::find_cpio_file(MemDisk::read, &d, part, "/images/a.im", &f) ==
          DiskError::cpio_file_not_found); // exact names only
    CHECK(loader::find_cpio_file(MemDisk::read, &d, part, "/boot.cfgx", &f) ==
          DiskError::cpio_file_not_found);
    const std::string long_path = "/" + std::string(255, 'p');
    CHECK(loader::find_cpio_file(MemDisk::read, &d, part, long_path.c_str(), &f) ==
          DiskError::path_too_long);
    CHECK(loader::find_cpio_file(MemDisk::read, &d, part, long_path.c_str() + 1, &f) ==
          DiskError::cpio_file_not_found); // 255 bytes: long but allowed

    // The backup header at the last LBA mirrors the primary.
    const std::size_t last = d.size() - 512;
    CHECK(std::memcmp(d.bytes.data() + last, "EFI PART", 8) == 0);
    CHECK(get64(d.bytes, last + 24) == d.size() / 512 - 1);
    CHECK(get64(d.bytes, last + 32) == 1);
    CHECK(std::memcmp(d.bytes.data() + d.size() - 33 * 512, d.bytes.data() + kEntries,
                      128 * kEntrySize) == 0);
}

TEST_CASE("loader disk: the data partition is found, and its absence or a second one is an error") {
    Lab lab;
    MemDisk d = lab.disk();
    BootPartition data{};
    REQUIRE(loader::find_data_partition(MemDisk::read, &d, d.size(), &data) == DiskError::none);
    CHECK(data.byte_offset == 2 << 20); // after the 1 MiB head and the 1 MiB boot partition
    CHECK(data.byte_size == 64 << 20);

    // Entry 2 (the data partition) retyped as boot: no data partition, two boot partitions.
    MemDisk retyped = d;
    std::memcpy(retyped.bytes.data() + kEntries + kEntrySize, loader::kBootPartitionType, 16);
    fix_crcs(retyped.bytes);
    CHECK(loader::find_data_partition(MemDisk::read, &retyped, retyped.size(), &data) ==
          DiskError::no_data_partition);
    // Entry 1 (boot) retyped as data: two data partitions.
    MemDisk twice = d;
    std::memcpy(twice.bytes.data() + kEntries, loader::kDataPartitionType, 16);
    fix_crcs(twice.bytes);
    CHECK(loader::find_data_partition(MemDisk::read, &twice, twice.size(), &data) ==
          DiskError::several_data_partitions);
    // The same header checks and backup fallback as for the boot partition.
    MemDisk broken = d;
    broken.bytes[kHeader] ^= 1;
    BootPartition backup{};
    REQUIRE(loader::find_data_partition(MemDisk::read, &broken, broken.size(), &backup) ==
            DiskError::none);
    CHECK(backup.from_backup_gpt);
    CHECK(backup.byte_offset == 2 << 20);
    std::fill(broken.bytes.end() - 512, broken.bytes.end(), 0);
    CHECK(loader::find_data_partition(MemDisk::read, &broken, broken.size(), &data) ==
          DiskError::bad_gpt_signature);
}

TEST_CASE("loader disk: the writer is reproducible and sizes as asked") {
    Lab lab;
    MemDisk a = lab.disk("disk-a");
    MemDisk b = lab.disk("disk-b");
    CHECK(a.bytes == b.bytes);
    // Different content: different GUIDs (disk GUID at header + 56).
    test::write_bytes(lab.dir.file("b.img"), test::random_bytes(5000, 3));
    MemDisk c = lab.disk("disk-c");
    CHECK(std::memcmp(a.bytes.data() + kHeader + 56, c.bytes.data() + kHeader + 56, 16) != 0);

    MemDisk sized = lab.disk("disk-s", 8 << 20);
    CHECK(sized.size() == 8 << 20);
    CHECK(find_part(sized) == DiskError::none);
    // Partition 2 ("svmkit data") from 2 MiB to the last 1 MiB boundary before
    // the backup table; its GUID differs from partition 1's.
    CHECK(std::memcmp(sized.bytes.data() + kEntries + kEntrySize, loader::kDataPartitionType, 16) ==
          0);
    CHECK(get64(sized.bytes, kEntries + kEntrySize + 32) == (2 << 20) / 512);
    CHECK(get64(sized.bytes, kEntries + kEntrySize + 40) == (7 << 20) / 512 - 1);
    CHECK(std::memcmp(sized.bytes.data() + kEntries + 16,
                      sized.bytes.data() + kEntries + kEntrySize + 16, 16) != 0);
    // Just enough for the boot partition: no data partition.
    MemDisk tight = lab.disk("disk-t", (2 << 20) + 33 * 512);
    CHECK(find_part(tight) == DiskError::none);
    CHECK(get64(tight.bytes, kEntries + kEntrySize + 32) == 0);

    auto small = cli::write_boot_disk(lab.spec((2 << 20) + 32 * 512), lab.dir.file("x.img"));
    REQUIRE_FALSE(small.has_value());
    CHECK(test::contains(small.error().message, "too small"));
    auto odd = cli::write_boot_disk(lab.spec((8 << 20) + 1), lab.dir.file("x.img"));
    REQUIRE_FALSE(odd.has_value());
    CHECK(test::contains(odd.error().message, "multiple of 512"));
    CHECK_FALSE(std::filesystem::exists(lab.dir.file("x.img")));
}

TEST_CASE("loader disk: the writer refuses bad archive names") {
    Lab lab;
    for (const char* name : {"", "/abs", "a/../b", "./a", "a//b", "a/"}) {
        CAPTURE(name);
        cli::BootDiskSpec s;
        s.files = {{name, lab.dir.file("a.img"), std::nullopt}};
        auto r = cli::write_boot_disk(s, lab.dir.file("x.img"));
        CHECK_FALSE(r.has_value());
    }
    cli::BootDiskSpec twice;
    twice.files = {{"a", lab.dir.file("a.img"), std::nullopt},
                   {"a", lab.dir.file("b.img"), std::nullopt}};
    CHECK_FALSE(cli::write_boot_disk(twice, lab.dir.file("x.img")).has_value());
    cli::BootDiskSpec missing;
    missing.files = {{"a", lab.dir.file("nope"), std::nullopt}};
    auto r = cli::write_boot_disk(missing, lab.dir.file("x.img"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ExitCode::io);
}

TEST_CASE("loader disk: each broken GPT field is its own error") {
    Lab lab;
    const MemDisk good = lab.disk();
    const std::uint64_t lbas = good.size() / 512;
    struct Case {
        const char* what;
        void (*edit)(std::vector<std::uint8_t>&, std::uint64_t lbas);
        DiskError want;
    };
    const Case cases[] = {
        {"MBR signature", [](auto& d, auto) { d[510] = 0; }, DiskError::bad_protective_mbr},
        {"MBR partition type", [](auto& d, auto) { d[446 + 4] = 0x83; },
         DiskError::bad_protective_mbr},
        {"GPT signature", [](auto& d, auto) { d[kHeader] = 'X'; }, DiskError::bad_gpt_signature},
        {"GPT revision", [](auto& d, auto) { d[kHeader + 10] = 2; }, DiskError::bad_gpt_revision},
        {"header size below 92", [](auto& d, auto) { put32(d, kHeader + 12, 91); },
         DiskError::bad_gpt_header_size},
        {"header size above 512", [](auto& d, auto) { put32(d, kHeader + 12, 513); },
         DiskError::bad_gpt_header_size},
        {"a header byte (the disk GUID)", [](auto& d, auto) { d[kHeader + 60] ^= 1; },
         DiskError::bad_gpt_header_crc},
        {"header CRC itself", [](auto& d, auto) { d[kHeader + 16] ^= 1; },
         DiskError::bad_gpt_header_crc},
        {"MyLBA",
         [](auto& d, auto) {
             put64(d, kHeader + 24, 2);
             fix_crcs(d);
         },
         DiskError::bad_gpt_location},
        {"AlternateLBA beyond the disk",
         [](auto& d, auto n) {
             put64(d, kHeader + 32, n);
             fix_crcs(d);
         },
         DiskError::bad_gpt_location},
        {"first usable after last usable",
         [](auto& d, auto n) {
             put64(d, kHeader + 40, n - 30);
             fix_crcs(d);
         },
         DiskError::bad_gpt_usable_range},
        {"last usable beyond the backup",
         [](auto& d, auto n) {
             put64(d, kHeader + 48, n - 1);
             fix_crcs(d);
         },
         DiskError::bad_gpt_usable_range},
        {"entries overlapping the usable area",
         [](auto& d, auto) {
             put64(d, kHeader + 40, 20);
             fix_crcs(d);
         },
         DiskError::bad_gpt_usable_range},
        {"entry size",
         [](auto& d, auto) {
             put32(d, kHeader + 84, 256);
             fix_crcs(d);
         },
         DiskError::bad_partition_entry_size},
        {"entry count",
         [](auto& d, auto) {
             put32(d, kHeader + 80, 257);
             fix_crcs(d);
         },
         DiskError::too_many_partition_entries},
        {"entries beyond the disk",
         [](auto& d, auto n) {
             put64(d, kHeader + 72, n - 2);
             fix_crcs(d);
         },
         DiskError::partition_table_outside_disk},
        {"entries at LBA 1",
         [](auto& d, auto) {
             put64(d, kHeader + 72, 1);
             fix_crcs(d);
         },
         DiskError::partition_table_outside_disk},
        {"an entry byte", [](auto& d, auto) { d[kEntries + 300] ^= 1; },
         DiskError::bad_partition_table_crc},
        {"no boot partition",
         [](auto& d, auto) {
             d[kEntries] ^= 1;
             fix_crcs(d);
         },
         DiskError::no_boot_partition},
        {"two boot partitions",
         [](auto& d, auto) {
             std::memcpy(d.data() + kEntries + kEntrySize, loader::kBootPartitionType, 16);
             fix_crcs(d);
         },
         DiskError::several_boot_partitions},
        {"boot partition first > last",
         [](auto& d, auto) {
             put64(d, kEntries + 32, get64(d, kEntries + 40) + 1);
             fix_crcs(d);
         },
         DiskError::bad_partition_range},
        {"boot partition before the first usable LBA",
         [](auto& d, auto) {
             put64(d, kEntries + 32, 33);
             fix_crcs(d);
         },
         DiskError::bad_partition_range},
        {"boot partition past the last usable LBA",
         [](auto& d, auto n) {
             put64(d, kEntries + 40, n - 33);
             fix_crcs(d);
         },
         DiskError::bad_partition_range},
    };
    MemDisk healthy = good;
    BootPartition want{};
    REQUIRE(find_part(healthy, &want) == DiskError::none);
    CHECK_FALSE(want.from_backup_gpt);
    for (const Case& c : cases) {
        CAPTURE(c.what);
        MemDisk d = good;
        c.edit(d.bytes, lbas);
        // Without a usable backup GPT: the primary's own error.
        MemDisk no_backup = d;
        std::fill(no_backup.bytes.end() - 512, no_backup.bytes.end(), 0);
        CHECK(std::string(loader::disk_error_name(find_part(no_backup))) ==
              loader::disk_error_name(c.want));
        // With it: a damaged primary table gives way to the backup; a valid
        // one whose partitions are wrong, and a bad MBR, do not.
        const bool table_damaged = c.want != DiskError::bad_protective_mbr &&
                                   c.want != DiskError::no_boot_partition &&
                                   c.want != DiskError::several_boot_partitions &&
                                   c.want != DiskError::bad_partition_range;
        BootPartition p{};
        const DiskError got = find_part(d, &p);
        if (table_damaged) {
            CHECK(got == DiskError::none);
            CHECK(p.from_backup_gpt);
            CHECK(p.byte_offset == want.byte_offset);
            CHECK(p.byte_size == want.byte_size);
        } else {
            CHECK(std::string(loader::disk_error_name(got)) == loader::disk_error_name(c.want));
        }
    }
    // The backup header is checked as strictly (a few of its fields).
    struct BackupCase {
        const char* what;
        std::size_t field;
        std::uint64_t value;
        DiskError want;
    };
    const std::size_t last = good.size() - 512;
    const BackupCase backup_cases[] = {
        {"MyLBA not the last LBA", 24, lbas - 2, DiskError::bad_gpt_location},
        {"AlternateLBA not 1", 32, 2, DiskError::bad_gpt_location},
        {"entries inside the usable range", 72, lbas - 100, DiskError::bad_gpt_usable_range},
        {"entries over the header", 72, lbas - 32, DiskError::partition_table_outside_disk},
    };
    for (const BackupCase& c : backup_cases) {
        CAPTURE(c.what);
        MemDisk d = good;
        d.bytes[kHeader] ^= 1; // the primary unusable
        put64(d.bytes, last + c.field, c.value);
        put32(d.bytes, last + 16, 0);
        put32(d.bytes, last + 16, loader::crc32(0, d.bytes.data() + last, 92));
        BootPartition p{};
        // Unusable too: the primary's error (without the edit the backup
        // is used, as the loop above shows).
        CHECK(find_part(d, &p) == DiskError::bad_gpt_signature);
    }
    {
        // Backup entries damaged: its CRC fails, the primary's error stands.
        MemDisk d = good;
        d.bytes[kHeader] ^= 1;
        d.bytes[good.size() - 33 * 512 + 300] ^= 1;
        CHECK(find_part(d) == DiskError::bad_gpt_signature);
    }
    MemDisk tiny{std::vector<std::uint8_t>(good.bytes.begin(), good.bytes.begin() + 66 * 512)};
    CHECK(find_part(tiny) == DiskError::disk_too_small);
    MemDisk failing = good;
    failing.fail = true;
    CHECK(find_part(failing) == DiskError::read_failed);
}

namespace {

// A hand-made newc member (for archives the writer would never produce).
std::string newc(const std::string& name, std::uint32_t mode, const std::string& data,
                 std::uint32_t namesize = 0) {
    std::string h = fmt::format("070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}"
                                "{:08X}{:08X}{:08X}{:08X}",
                                1, mode, 0, 0, 1, 0, data.size(), 0, 0, 0, 0,
                                namesize != 0 ? namesize : name.size() + 1, 0);
    h += name;
    h.push_back('\0');
    while (h.size() % 4)
        h.push_back('\0');
    h += data;
    while (h.size() % 4)
        h.push_back('\0');
    return h;
}

const std::string kTrailer = newc("TRAILER!!!", 0, "");

DiskError lookup(const std::string& archive, const char* path, CpioFile* f = nullptr) {
    MemDisk d{std::vector<std::uint8_t>(archive.begin(), archive.end())};
    CpioFile unused{};
    return loader::find_cpio_file(MemDisk::read, &d, BootPartition{0, d.size()}, path,
                                  f != nullptr ? f : &unused);
}

} // namespace

TEST_CASE("loader disk: each broken cpio archive is its own error") {
    const std::string good = newc("boot.cfg", 0100644, "x") + newc("a", 0100644, "yy") + kTrailer;
    CpioFile f{};
    REQUIRE(lookup(good, "/a", &f) == DiskError::none);
    CHECK(f.size == 2);

    std::string bad = good;
    bad[5] = '2'; // "070702": the CRC variant is not accepted
    CHECK(lookup(bad, "/a") == DiskError::cpio_bad_magic);
    bad = good;
    bad[6 + 8 * 6 + 3] = 'g'; // a filesize digit
    CHECK(lookup(bad, "/a") == DiskError::cpio_bad_header);
    CHECK(lookup(newc("a", 0100644, "", 0x1000) + kTrailer, "/a") == DiskError::cpio_bad_header);
    // namesize 0 cannot be written by newc() (0 means "compute"): patch it.
    bad = good;
    bad.replace(6 + 8 * 11, 8, "00000000");
    CHECK(lookup(bad, "/a") == DiskError::cpio_bad_header);
    bad = good;
    bad[110 + 8] = 'X'; // the NUL after "boot.cfg"
    CHECK(lookup(bad, "/a") == DiskError::cpio_bad_name);
    CHECK(lookup(newc("a", 0100644, "", 4) + kTrailer, "/a") == DiskError::cpio_bad_name);
    bad = good;
    bad.replace(6 + 8 * 6, 8, "FFFFFFFF"); // first file's size
    CHECK(lookup(bad, "/a") == DiskError::cpio_truncated);
    CHECK(lookup(good.substr(0, good.size() - kTrailer.size()), "/a") ==
          DiskError::cpio_truncated); // no trailer
    CHECK(lookup(good.substr(0, good.size() - 4), "/a") == DiskError::cpio_truncated);
    CHECK(lookup(newc("a", 0100644, "1") + newc("./a", 0100644, "2") + kTrailer, "/a") ==
          DiskError::cpio_duplicate_file);
    CHECK(lookup(newc("a", 040755, "") + kTrailer, "a") == DiskError::cpio_not_regular_file);
    CHECK(lookup(newc("a", 0120777, "b") + kTrailer, "a") == DiskError::cpio_not_regular_file);
    CHECK(lookup(good, "/b") == DiskError::cpio_file_not_found);
    // A file after the trailer does not exist.
    CHECK(lookup(good + newc("b", 0100644, "z"), "/b") == DiskError::cpio_file_not_found);

    std::string many;
    for (std::uint32_t i = 0; i < loader::kMaxCpioEntries; ++i)
        many += newc("f" + std::to_string(i), 0100644, "");
    CHECK(lookup(many + kTrailer, "/f1") == DiskError::cpio_too_many_entries);
    many.resize(many.size() - newc("f4095", 0100644, "").size());
    CHECK(lookup(many + kTrailer, "/f4094") == DiskError::none);

    MemDisk failing{std::vector<std::uint8_t>(good.begin(), good.end()), true};
    CHECK(loader::find_cpio_file(MemDisk::read, &failing, BootPartition{0, good.size()}, "/a",
                                 &f) == DiskError::read_failed);
}

TEST_CASE("loader disk: each error has a distinct message and name") {
    std::set<std::string> messages, names;
    for (std::uint32_t i = 0; i < loader::kDiskErrorCount; ++i) {
        const auto e = static_cast<DiskError>(i);
        messages.insert(loader::disk_error_message(e));
        names.insert(loader::disk_error_name(e));
    }
    CHECK(messages.size() == loader::kDiskErrorCount);
    CHECK(names.size() == loader::kDiskErrorCount);
    CHECK(std::string(loader::disk_error_name(static_cast<DiskError>(200))) == "unknown");
}

TEST_CASE("loader disk: a GPT made by another writer (the fuzz seed's Python) is read") {
    // tests/data/loader/make_fuzz_disk_seed.py: an independent GPT and newc
    // writer (zlib's CRC-32, struct layouts from the specifications).
    const auto seed = read_file(std::string(SVMKIT_FUZZ_DIR) + "/corpus/loader_disk/tiny-disk.bin");
    REQUIRE(seed.size() == 1 + 96 * 512);
    MemDisk d{std::vector<std::uint8_t>(seed.begin() + 1, seed.end())};
    BootPartition part{};
    REQUIRE(find_part(d, &part) == DiskError::none);
    CHECK(part.byte_offset == 34 * 512);
    CHECK(part.byte_size == 29 * 512);
    CpioFile f{};
    REQUIRE(loader::find_cpio_file(MemDisk::read, &d, part, "/images/a.img", &f) ==
            DiskError::none);
    REQUIRE(f.size == 2048);
    std::vector<std::uint8_t> got(f.size);
    REQUIRE(loader::read_cpio_file(MemDisk::read, &d, f, got.data(), got.size()));
    for (std::size_t i = 0; i < got.size(); ++i)
        REQUIRE(got[i] == static_cast<std::uint8_t>(i));
}

TEST_CASE("loader disk: the lead of a cpio prepended to an initrd (the PEF blob's archive)") {
    auto lead_of = [](const std::string& archive, loader::CpioLead* lead) {
        MemDisk d{std::vector<std::uint8_t>(archive.begin(), archive.end())};
        return loader::read_cpio_lead(MemDisk::read, &d, BootPartition{0, d.size()}, lead);
    };
    // Directories first (as `find opt | cpio -o` writes them), then the file;
    // what follows the trailer is not the archive's.
    const std::string dirs =
        newc("opt", 040755, "") + newc("opt/ibm", 040755, "") + newc("opt/ibm/pef", 040755, "");
    const std::string blob = newc("./opt/ibm/pef/esmb.dtb", 0100644, "BLOB!") +
                             newc("opt/ibm/pef/other", 0100644, "zz") + kTrailer;
    const std::string archive = dirs + blob;
    loader::CpioLead lead{};
    REQUIRE(lead_of(archive + std::string(700, 'i'), &lead) == DiskError::none);
    CHECK(std::string(lead.name) == "opt/ibm/pef/esmb.dtb");
    CHECK(lead.file.size == 5);
    CHECK(archive.substr(lead.file.data_offset, 5) == "BLOB!");
    CHECK(lead.end == archive.size());
    // An empty regular file before it is skipped like a directory.
    REQUIRE(lead_of(newc("empty", 0100644, "") + archive, &lead) == DiskError::none);
    CHECK(std::string(lead.name) == "opt/ibm/pef/esmb.dtb");
    // No member with data; a symlink as the lead; a broken archive.
    CHECK(lead_of(dirs + kTrailer, &lead) == DiskError::cpio_file_not_found);
    CHECK(lead_of(newc("opt/ibm/pef/link", 0120777, "target") + kTrailer, &lead) ==
          DiskError::cpio_not_regular_file);
    CHECK(lead_of(dirs + blob.substr(0, blob.size() - kTrailer.size()), &lead) ==
          DiskError::cpio_truncated);
    std::string bad = archive;
    bad[dirs.size()] = '1'; // the file's magic
    CHECK(lead_of(bad, &lead) == DiskError::cpio_bad_magic);
}
