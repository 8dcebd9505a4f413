// Fuzz target: the boot disk reader (loader/disk_layout): GPT, then the newc
// cpio in the boot partition; and the whole input as a cpio prepended to an
// initrd (read_cpio_lead, what the ultravisor reads for the PEF blob). The
// input is the disk, after one control byte:
// bit 0 set makes the harness recompute both GPT CRC-32s first (as a hostile
// hypervisor serving the disk can), so the fuzzer also reaches the fields
// behind the CRCs instead of stopping at them.
#include "loader/disk_layout.h"

#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using namespace svmkit::loader;

struct Disk {
    std::vector<uint8_t> bytes;
};

bool read(void* ctx, uint64_t offset, void* buf, uint64_t size) {
    const auto& d = static_cast<Disk*>(ctx)->bytes;
    if (offset > d.size() || size > d.size() - offset)
        return false;
    std::memcpy(buf, d.data() + offset, size);
    return true;
}

void put32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i)
        p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint32_t get32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
           static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

void fix_crcs(std::vector<uint8_t>& d) {
    if (d.size() < 2 * kLbaSize)
        return;
    uint8_t* h = d.data() + kLbaSize;
    uint64_t entries_lba = 0;
    std::memcpy(&entries_lba, h + 72, 8);
    const uint64_t count = get32(h + 80), entry_size = get32(h + 84);
    if (entries_lba < d.size() / kLbaSize && count * entry_size <= 1u << 20 &&
        count * entry_size <= d.size() - entries_lba * kLbaSize)
        put32(h + 88, crc32(0, d.data() + entries_lba * kLbaSize, count * entry_size));
    const uint32_t header_size = get32(h + 12);
    if (header_size <= kLbaSize) {
        put32(h + 16, 0);
        put32(h + 16, crc32(0, h, header_size));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1)
        return 0;
    Disk disk{std::vector<uint8_t>(data + 1, data + size)};
    if (data[0] & 1)
        fix_crcs(disk.bytes);
    CpioLead lead{};
    const BootPartition whole{0, disk.bytes.size()};
    if (read_cpio_lead(read, &disk, whole, &lead) == DiskError::none &&
        (lead.end > whole.byte_size || lead.file.data_offset > whole.byte_size ||
         lead.file.size > whole.byte_size - lead.file.data_offset || lead.file.size == 0 ||
         std::strlen(lead.name) > kMaxCpioPath))
        std::abort(); // the lead and the archive's end must lie in the input
    BootPartition part{};
    if (find_boot_partition(read, &disk, disk.bytes.size(), &part) != DiskError::none)
        return 0;
    if (part.byte_offset > disk.bytes.size() ||
        part.byte_size > disk.bytes.size() - part.byte_offset)
        std::abort(); // a partition the reader accepted must lie on the disk
    for (const char* path : {"/boot.cfg", "/images/a.img"}) {
        CpioFile f{};
        if (find_cpio_file(read, &disk, part, path, &f) != DiskError::none)
            continue;
        if (f.data_offset < part.byte_offset || f.data_offset - part.byte_offset > part.byte_size ||
            f.size > part.byte_size - (f.data_offset - part.byte_offset))
            std::abort(); // a file the reader found must lie in its partition
        std::vector<uint8_t> buf(f.size);
        if (!read_cpio_file(read, &disk, f, buf.data(), buf.size()))
            std::abort();
    }
    return 0;
}
