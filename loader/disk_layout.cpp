// GPT and newc cpio reading for the boot disk (loader/disk_layout.h).
//
// GPT facts from the UEFI specification (chapter 5): header fields at fixed
// offsets, little-endian; CRC-32 over the header (its CRC field zeroed) and
// over the entry array. newc facts from cpio(5): a 110-byte ASCII header
// ("070701" + 13 fields of 8 hex digits), the name (namesize bytes, NUL
// included), both padded to 4 bytes, then the data padded to 4 bytes; the
// archive ends with an entry named "TRAILER!!!".
#include "loader/disk_layout.h"
#include "loader/error_text.h"
#include "loader/le_bytes.h"

#include "guest/memory.h"

#include <string.h>

namespace svmkit::loader {

namespace {

using detail::le32;
using detail::le64;
using guest::add_overflows;

// GPT header fields (UEFI 2.10, table 5-5).
constexpr uint32_t kGptRevision = 0x00010000;
constexpr uint32_t kGptMinHeaderSize = 92;
constexpr uint32_t kGptEntrySize = 128;
// The primary table, the backup table: a header LBA and 32 LBAs of entries each.
constexpr uint64_t kMinDiskLbas = 1 + 2 * (1 + 32);

DiskError check_protective_mbr(const uint8_t* mbr) {
    if (mbr[510] != 0x55 || mbr[511] != 0xaa)
        return DiskError::bad_protective_mbr;
    for (int i = 0; i < 4; ++i)
        if (mbr[446 + 16 * i + 4] == 0xee)
            return DiskError::none;
    return DiskError::bad_protective_mbr;
}

struct GptHeader {
    uint64_t first_usable, last_usable, entries_lba;
    uint32_t entry_count, entries_crc;
};

// Checks the GPT header read from `header_lba`: the primary at LBA 1, whose
// entries lie between it and the first usable LBA, or the backup at the last
// LBA, whose entries lie between the last usable LBA and it (UEFI 2.10,
// 5.3.2). Each names the other in AlternateLBA.
DiskError check_gpt_header(uint8_t* h, uint64_t disk_lbas, uint64_t header_lba, GptHeader* out) {
    const bool backup = header_lba != 1;
    if (memcmp(h, "EFI PART", 8) != 0)
        return DiskError::bad_gpt_signature;
    if (le32(h + 8) != kGptRevision)
        return DiskError::bad_gpt_revision;
    const uint32_t size = le32(h + 12);
    if (size < kGptMinHeaderSize || size > kLbaSize)
        return DiskError::bad_gpt_header_size;
    const uint32_t stored = le32(h + 16);
    memset(h + 16, 0, 4);
    if (crc32(0, h, size) != stored)
        return DiskError::bad_gpt_header_crc;
    const uint64_t my_lba = le64(h + 24), alternate_lba = le64(h + 32);
    if (my_lba != header_lba ||
        (backup ? alternate_lba != 1 : alternate_lba <= 1 || alternate_lba >= disk_lbas))
        return DiskError::bad_gpt_location;
    // The LBA the usable range must end before: the other header (primary)
    // or this one (backup).
    const uint64_t upper_header = backup ? my_lba : alternate_lba;
    out->first_usable = le64(h + 40);
    out->last_usable = le64(h + 48);
    out->entries_lba = le64(h + 72);
    out->entry_count = le32(h + 80);
    out->entries_crc = le32(h + 88);
    if (out->first_usable < 2 || out->first_usable > out->last_usable ||
        out->last_usable >= disk_lbas || out->last_usable >= upper_header)
        return DiskError::bad_gpt_usable_range;
    if (le32(h + 84) != kGptEntrySize)
        return DiskError::bad_partition_entry_size;
    if (out->entry_count > kMaxPartitionEntries)
        return DiskError::too_many_partition_entries;
    const uint64_t array_lbas =
        (uint64_t{out->entry_count} * kGptEntrySize + kLbaSize - 1) / kLbaSize;
    uint64_t array_end = 0;
    if (out->entries_lba < 2 || add_overflows(out->entries_lba, array_lbas, &array_end) ||
        array_end > disk_lbas || (backup && array_end > my_lba))
        return DiskError::partition_table_outside_disk;
    if (backup ? out->entries_lba <= out->last_usable : array_end > out->first_usable)
        return DiskError::bad_gpt_usable_range;
    return DiskError::none;
}

// newc header fields, in order after the magic.
enum CpioField {
    ino,
    mode,
    uid,
    gid,
    nlink,
    mtime,
    filesize,
    devmajor,
    devminor,
    rdevmajor,
    rdevminor,
    namesize,
    check,
    kCpioFields
};
constexpr uint64_t kCpioHeaderSize = 110;
constexpr uint64_t kCpioMaxName = 512; // namesize limit, NUL included
constexpr uint32_t kModeTypeMask = 0170000;
constexpr uint32_t kModeRegular = 0100000;

bool parse_hex8(const uint8_t* p, uint32_t* out) {
    uint32_t v = 0;
    for (int i = 0; i < 8; ++i) {
        const uint8_t c = p[i];
        uint32_t d = 0;
        if (c >= '0' && c <= '9')
            d = static_cast<uint32_t>(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = static_cast<uint32_t>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = static_cast<uint32_t>(c - 'A' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *out = v;
    return true;
}

uint64_t align4(uint64_t v) {
    return (v + 3) & ~uint64_t{3}; // callers keep v far below 2^64
}

// Drops leading "/" and "./" ("/boot.cfg", "./boot.cfg" -> "boot.cfg").
const char* strip_root(const char* s, uint64_t* len) {
    for (;;) {
        if (*len >= 1 && s[0] == '/') {
            ++s;
            --*len;
        } else if (*len >= 2 && s[0] == '.' && s[1] == '/') {
            s += 2;
            *len -= 2;
        } else {
            return s;
        }
    }
}

// Name and message of each error (loader/error_text.h).
using detail::ErrorText;

ErrorText error_text(DiskError e) {
    switch (e) {
    case DiskError::none:
        return {"none", "no error"};
    case DiskError::read_failed:
        return {"read_failed", "disk read failed"};
    case DiskError::disk_too_small:
        return {"disk_too_small", "disk too small for a GPT"};
    case DiskError::bad_protective_mbr:
        return {"bad_protective_mbr", "no protective MBR"};
    case DiskError::bad_gpt_signature:
        return {"bad_gpt_signature", "bad GPT signature (no \"EFI PART\" at LBA 1)"};
    case DiskError::bad_gpt_revision:
        return {"bad_gpt_revision", "unsupported GPT revision"};
    case DiskError::bad_gpt_header_size:
        return {"bad_gpt_header_size", "bad GPT header size"};
    case DiskError::bad_gpt_header_crc:
        return {"bad_gpt_header_crc", "GPT header CRC mismatch"};
    case DiskError::bad_gpt_location:
        return {"bad_gpt_location", "GPT header location fields wrong (MyLBA/AlternateLBA)"};
    case DiskError::bad_gpt_usable_range:
        return {"bad_gpt_usable_range", "GPT usable LBA range inconsistent"};
    case DiskError::bad_partition_entry_size:
        return {"bad_partition_entry_size", "GPT partition entry size is not 128"};
    case DiskError::too_many_partition_entries:
        return {"too_many_partition_entries", "too many GPT partition entries"};
    case DiskError::partition_table_outside_disk:
        return {"partition_table_outside_disk", "GPT partition entries outside the disk"};
    case DiskError::bad_partition_table_crc:
        return {"bad_partition_table_crc", "GPT partition entry array CRC mismatch"};
    case DiskError::no_boot_partition:
        return {"no_boot_partition", "no svmkit boot partition"};
    case DiskError::several_boot_partitions:
        return {"several_boot_partitions", "more than one svmkit boot partition"};
    case DiskError::bad_partition_range:
        return {"bad_partition_range", "boot partition LBA range invalid"};
    case DiskError::cpio_bad_magic:
        return {"cpio_bad_magic", "not a newc cpio archive (bad magic)"};
    case DiskError::cpio_bad_header:
        return {"cpio_bad_header", "malformed cpio header"};
    case DiskError::cpio_bad_name:
        return {"cpio_bad_name", "malformed cpio file name"};
    case DiskError::cpio_truncated:
        return {"cpio_truncated", "cpio archive truncated (entry beyond the partition)"};
    case DiskError::cpio_too_many_entries:
        return {"cpio_too_many_entries", "too many cpio entries"};
    case DiskError::cpio_duplicate_file:
        return {"cpio_duplicate_file", "file stored twice in the cpio archive"};
    case DiskError::cpio_not_regular_file:
        return {"cpio_not_regular_file", "not a regular file in the cpio archive"};
    case DiskError::cpio_file_not_found:
        return {"cpio_file_not_found", "file not found in the cpio archive"};
    case DiskError::path_too_long:
        return {"path_too_long", "path too long"};
    case DiskError::no_data_partition:
        return {"no_data_partition", "no svmkit data partition"};
    case DiskError::several_data_partitions:
        return {"several_data_partitions", "more than one svmkit data partition"};
    }
    return {"unknown", "unknown disk error"};
}

} // namespace

uint32_t crc32(uint32_t crc, const void* data, uint64_t size) {
    // Four bits at a time with a 16-entry table of the reflected polynomial
    // 0xEDB88320's remainders: small, no writable state.
    constexpr uint32_t kNibble[16] = {0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
                                      0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
                                      0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
                                      0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c};
    const auto* p = static_cast<const uint8_t*>(data);
    crc = ~crc;
    for (uint64_t i = 0; i < size; ++i) {
        crc ^= p[i];
        crc = (crc >> 4) ^ kNibble[crc & 15];
        crc = (crc >> 4) ^ kNibble[crc & 15];
    }
    return ~crc;
}

const char* disk_error_message(DiskError e) {
    return error_text(e).message;
}

const char* disk_error_name(DiskError e) {
    return error_text(e).name;
}

namespace {

// One GPT (header and entry array) and what it says of partitions of a type.
struct GptScan {
    GptHeader header;
    uint32_t count;       // partitions of the type
    uint64_t first, last; // LBAs of the first of them
};

// Reads the GPT whose header is at `header_lba` and scans its entry array
// for `type`. One pass computes the CRC and finds the partition together,
// so the entries used are the entries checked (the disk may change under
// us; nothing read twice is trusted twice); the caller acts on nothing
// before this returned none, i.e. the CRC matched.
DiskError scan_gpt(ReadSectors read, void* ctx, uint64_t disk_lbas, uint64_t header_lba,
                   const uint8_t* type, GptScan* out) {
    uint8_t sector[kLbaSize];
    if (!read(ctx, header_lba * kLbaSize, sector, kLbaSize))
        return DiskError::read_failed;
    GptHeader& h = out->header;
    const DiskError e = check_gpt_header(sector, disk_lbas, header_lba, &h);
    if (e != DiskError::none)
        return e;
    uint32_t crc = 0;
    out->count = 0;
    const uint64_t total = uint64_t{h.entry_count} * kGptEntrySize;
    for (uint64_t done = 0; done < total; done += kLbaSize) {
        const uint64_t n = total - done < kLbaSize ? total - done : kLbaSize;
        if (!read(ctx, h.entries_lba * kLbaSize + done, sector, n))
            return DiskError::read_failed;
        crc = crc32(crc, sector, n);
        for (uint64_t at = 0; at < n; at += kGptEntrySize) {
            const uint8_t* entry = sector + at;
            if (memcmp(entry, type, 16) != 0)
                continue;
            if (out->count++ == 0) {
                out->first = le64(entry + 32);
                out->last = le64(entry + 40);
            }
        }
    }
    return crc == h.entries_crc ? DiskError::none : DiskError::bad_partition_table_crc;
}

// The one partition of `type`; `missing` / `several` when there is none or
// more than one. The primary GPT when it is valid; when it is not (damaged
// header or entries, or unreadable), the backup at the disk's last LBA, as
// UEFI firmware does. When both are unusable, the primary's error.
DiskError find_partition(ReadSectors read, void* ctx, uint64_t disk_size, const uint8_t* type,
                         DiskError missing, DiskError several, BootPartition* out) {
    const uint64_t disk_lbas = disk_size / kLbaSize;
    if (disk_lbas < kMinDiskLbas)
        return DiskError::disk_too_small;
    uint8_t sector[kLbaSize];
    if (!read(ctx, 0, sector, kLbaSize))
        return DiskError::read_failed;
    const DiskError mbr = check_protective_mbr(sector);
    if (mbr != DiskError::none)
        return mbr;
    GptScan t{};
    bool from_backup = false;
    if (const DiskError e = scan_gpt(read, ctx, disk_lbas, 1, type, &t); e != DiskError::none) {
        GptScan b{};
        if (scan_gpt(read, ctx, disk_lbas, disk_lbas - 1, type, &b) != DiskError::none)
            return e;
        t = b;
        from_backup = true;
    }
    if (t.count == 0)
        return missing;
    if (t.count > 1)
        return several;
    if (t.first > t.last || t.first < t.header.first_usable || t.last > t.header.last_usable)
        return DiskError::bad_partition_range;
    // last_usable < disk_lbas <= 2^64 / 512: these products cannot overflow.
    out->byte_offset = t.first * kLbaSize;
    out->byte_size = (t.last - t.first + 1) * kLbaSize;
    out->from_backup_gpt = from_backup;
    return DiskError::none;
}

} // namespace

DiskError find_boot_partition(ReadSectors read, void* ctx, uint64_t disk_size, BootPartition* out) {
    return find_partition(read, ctx, disk_size, kBootPartitionType, DiskError::no_boot_partition,
                          DiskError::several_boot_partitions, out);
}

DiskError find_data_partition(ReadSectors read, void* ctx, uint64_t disk_size, BootPartition* out) {
    return find_partition(read, ctx, disk_size, kDataPartitionType, DiskError::no_data_partition,
                          DiskError::several_data_partitions, out);
}

namespace {

// One member of a newc archive, as walk_cpio() reports it.
struct CpioMember {
    const char* name; // leading "/" and "./" dropped; not NUL-terminated
    uint64_t name_len;
    CpioFile file;
    uint32_t mode;
};
// Called for each member before the trailer; anything but none stops the walk
// with that error.
using CpioVisit = DiskError (*)(void* vctx, const CpioMember& m);

// Walks the whole newc archive at the start of `part`, checking every header
// (magic, hex fields, name size and NUL, everything inside the partition, at
// most kMaxCpioEntries), up to its trailer; *end is the byte just after the
// trailer entry (partition-relative, before any padding).
DiskError walk_cpio(ReadSectors read, void* ctx, const BootPartition& part, CpioVisit visit,
                    void* vctx, uint64_t* end) {
    uint64_t pos = 0; // within the partition; invariant: pos <= part.byte_size
    for (uint32_t entries = 0;; ++entries) {
        if (entries == kMaxCpioEntries)
            return DiskError::cpio_too_many_entries;
        uint8_t header[kCpioHeaderSize];
        if (part.byte_size - pos < kCpioHeaderSize)
            return DiskError::cpio_truncated;
        if (!read(ctx, part.byte_offset + pos, header, kCpioHeaderSize))
            return DiskError::read_failed;
        if (memcmp(header, "070701", 6) != 0)
            return DiskError::cpio_bad_magic;
        uint32_t field[kCpioFields] = {};
        for (size_t i = 0; i < kCpioFields; ++i)
            if (!parse_hex8(header + 6 + 8 * i, &field[i]))
                return DiskError::cpio_bad_header;
        const uint64_t name_size = field[namesize];
        if (name_size == 0 || name_size > kCpioMaxName)
            return DiskError::cpio_bad_header;
        // Sizes are 32-bit and pos <= partition size: these sums stay far
        // below 2^64; only their place in the partition needs checking.
        const uint64_t name_at = pos + kCpioHeaderSize;
        const uint64_t data_at = align4(name_at + name_size);
        const uint64_t data_end = data_at + field[filesize];
        if (data_at > part.byte_size || data_end > part.byte_size)
            return DiskError::cpio_truncated;
        char name[kCpioMaxName];
        if (!read(ctx, part.byte_offset + name_at, name, name_size))
            return DiskError::read_failed;
        if (name[name_size - 1] != '\0' || strnlen(name, name_size) != name_size - 1)
            return DiskError::cpio_bad_name;
        const uint64_t next = align4(data_end) < part.byte_size ? align4(data_end) : part.byte_size;
        if (strcmp(name, "TRAILER!!!") == 0) {
            *end = next;
            return DiskError::none;
        }
        CpioMember m{};
        m.name_len = name_size - 1;
        m.name = strip_root(name, &m.name_len);
        m.file = CpioFile{part.byte_offset + data_at, field[filesize]};
        m.mode = field[mode];
        if (const DiskError e = visit(vctx, m); e != DiskError::none)
            return e;
        pos = next;
    }
}

struct FindFile {
    const char* want;
    uint64_t want_len;
    bool found;
    CpioFile hit;
    uint32_t hit_mode;
};

DiskError find_file_visit(void* vctx, const CpioMember& m) {
    auto& f = *static_cast<FindFile*>(vctx);
    if (m.name_len != f.want_len || memcmp(m.name, f.want, m.name_len) != 0)
        return DiskError::none;
    if (f.found)
        return DiskError::cpio_duplicate_file;
    f.found = true;
    f.hit = m.file;
    f.hit_mode = m.mode;
    return DiskError::none;
}

DiskError lead_visit(void* vctx, const CpioMember& m) {
    auto& lead = *static_cast<CpioLead*>(vctx);
    if (lead.file.size != 0 || m.file.size == 0)
        return DiskError::none; // before it: directories and empty files; after it: anything
    if (m.name_len > kMaxCpioPath)
        return DiskError::path_too_long;
    memcpy(lead.name, m.name, m.name_len);
    lead.name[m.name_len] = '\0';
    lead.file = m.file;
    lead.mode = m.mode;
    return DiskError::none;
}

} // namespace

DiskError find_cpio_file(ReadSectors read, void* ctx, const BootPartition& part, const char* path,
                         CpioFile* out) {
    uint64_t want_len = strnlen(path, kMaxCpioPath + 1);
    if (want_len > kMaxCpioPath)
        return DiskError::path_too_long;
    FindFile f{};
    f.want = strip_root(path, &want_len);
    f.want_len = want_len;
    uint64_t end = 0;
    if (const DiskError e = walk_cpio(read, ctx, part, find_file_visit, &f, &end);
        e != DiskError::none)
        return e;
    if (!f.found)
        return DiskError::cpio_file_not_found;
    if ((f.hit_mode & kModeTypeMask) != kModeRegular)
        return DiskError::cpio_not_regular_file;
    *out = f.hit;
    return DiskError::none;
}

DiskError read_cpio_lead(ReadSectors read, void* ctx, const BootPartition& part, CpioLead* out) {
    CpioLead lead{};
    if (const DiskError e = walk_cpio(read, ctx, part, lead_visit, &lead, &lead.end);
        e != DiskError::none)
        return e;
    if (lead.file.size == 0)
        return DiskError::cpio_file_not_found;
    if ((lead.mode & kModeTypeMask) != kModeRegular)
        return DiskError::cpio_not_regular_file;
    *out = lead;
    return DiskError::none;
}

bool read_cpio_file(ReadSectors read, void* ctx, const CpioFile& file, void* buf,
                    uint64_t buf_size) {
    if (file.size > buf_size)
        return false;
    return file.size == 0 || read(ctx, file.data_offset, buf, file.size);
}

} // namespace svmkit::loader
