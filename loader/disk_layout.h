// Reading an svmkit boot disk (docs/loader.md, "Disk layout"):
//
//   LBA 0        protective MBR (one partition of type 0xEE)
//   LBA 1        primary GPT header; entries from LBA 2; 512-byte LBAs
//   partition    type kBootPartitionType ("svmkit boot"): a newc cpio archive
//                ("070701") holding boot.cfg and the secure images
//   partition    type kDataPartitionType ("svmkit data", optional): free for
//                the secure guest's own I/O
//   last LBAs    backup GPT entries and header (used when the primary is
//                damaged)
//
// Users can make such a disk with `svmkit mkdisk`, or with standard tools
// (sgdisk/sfdisk with the type GUID, `cpio -o -H newc`, dd).
//
// The disk is untrusted (the hypervisor serves it): every header is
// CRC-checked and bounds-checked against the disk and partition sizes with
// checked arithmetic before anything it points to is read. Reading goes
// through a callback so the guest can use virtio-blk and the host a file.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace svmkit::loader {

constexpr uint64_t kLbaSize = 512;
// The GPT type GUIDs, in on-disk byte order (the first three fields
// little-endian): 660bcd5f-9db5-409e-87fe-d909cdfd16cf "svmkit boot",
// 8eb3c5d8-91ca-4a30-8bdd-14936935d6d0 "svmkit data".
constexpr uint8_t kBootPartitionType[16] = {0x5f, 0xcd, 0x0b, 0x66, 0xb5, 0x9d, 0x9e, 0x40,
                                            0x87, 0xfe, 0xd9, 0x09, 0xcd, 0xfd, 0x16, 0xcf};
constexpr uint8_t kDataPartitionType[16] = {0xd8, 0xc5, 0xb3, 0x8e, 0xca, 0x91, 0x30, 0x4a,
                                            0x8b, 0xdd, 0x14, 0x93, 0x69, 0x35, 0xd6, 0xd0};
constexpr uint32_t kMaxPartitionEntries = 256;
constexpr uint32_t kMaxCpioEntries = 4096;
constexpr uint32_t kMaxCpioPath = 255; // bytes of a looked-up path, without the NUL

// Reads `size` bytes at `byte_offset` of the disk into buf (any offset, any
// size; the loader asks for at most 512 bytes at a time except in
// read_cpio_file). False on any failure.
using ReadSectors = bool (*)(void* ctx, uint64_t byte_offset, void* buf, uint64_t size);

enum class DiskError : uint8_t {
    none,
    read_failed,                  // the callback failed
    disk_too_small,               // no room for MBR, two GPT headers and their entries
    bad_protective_mbr,           // no 0x55AA signature or no 0xEE partition
    bad_gpt_signature,            // LBA 1 does not start with "EFI PART"
    bad_gpt_revision,             // not revision 1.0
    bad_gpt_header_size,          // header size < 92 or > 512
    bad_gpt_header_crc,           // header CRC32 mismatch
    bad_gpt_location,             // MyLBA is not 1, or the backup LBA is not on the disk
    bad_gpt_usable_range,         // first/last usable LBA inconsistent or off the disk
    bad_partition_entry_size,     // entry size not 128
    too_many_partition_entries,   // more than kMaxPartitionEntries
    partition_table_outside_disk, // the entry array is not inside the disk
    bad_partition_table_crc,      // entry array CRC32 mismatch
    no_boot_partition,            // no partition of type "svmkit boot"
    several_boot_partitions,      // more than one
    bad_partition_range,          // first > last LBA, or outside the usable range
    cpio_bad_magic,               // an entry does not start with "070701"
    cpio_bad_header,              // a header field is not 8 hex digits, or a bad name size
    cpio_bad_name,                // a name not NUL-terminated where its size says
    cpio_truncated,               // an entry runs past the end of the partition
    cpio_too_many_entries,        // more than kMaxCpioEntries before the trailer
    cpio_duplicate_file,          // the path appears twice
    cpio_not_regular_file,        // the path names a directory, link or device
    cpio_file_not_found,          // no such path before the trailer
    path_too_long,                // the looked-up path exceeds kMaxCpioPath
    no_data_partition,            // no partition of type "svmkit data"
    several_data_partitions,      // more than one
};
constexpr uint32_t kDiskErrorCount = static_cast<uint32_t>(DiskError::several_data_partitions) + 1;

const char* disk_error_message(DiskError e); // short, distinct, never null
const char* disk_error_name(DiskError e);    // "cpio_bad_magic", never null

// [byte_offset, byte_offset + byte_size) of a partition on the disk.
struct BootPartition {
    uint64_t byte_offset;
    uint64_t byte_size;
    bool from_backup_gpt = false; // the primary GPT was unusable; the backup said so
};

// Validates the protective MBR, the primary GPT header and its entry array
// (CRCs included), then finds the one partition of type "svmkit boot". When
// the primary GPT is damaged (header or entries) the backup GPT at the
// disk's last LBA is used instead, checked the same way; when both are, the
// primary's error is returned.
DiskError find_boot_partition(ReadSectors read, void* ctx, uint64_t disk_size, BootPartition* out);

// The same checks, then the one partition of type "svmkit data": the part of
// an svmkit boot disk the secure guest may write (the sample kernel's I/O
// workload uses it, so a boot disk survives the workload).
DiskError find_data_partition(ReadSectors read, void* ctx, uint64_t disk_size, BootPartition* out);

// A file's bytes: byte offset on the DISK, size.
struct CpioFile {
    uint64_t data_offset;
    uint64_t size;
};

// Looks `path` up in the newc archive at the start of the partition. Names
// compare exactly after dropping leading "/" and "./" on both sides
// ("/boot.cfg" finds "boot.cfg" and "./boot.cfg"). Walks the whole archive up
// to its trailer so a path stored twice is an error, not a choice.
DiskError find_cpio_file(ReadSectors read, void* ctx, const BootPartition& part, const char* path,
                         CpioFile* out);

// What the PEF ultravisor looks for in a newc cpio prepended to an initrd
// (docs/esm.md, "The blob in the initrd"): the archive's first member with
// data (directories and empty files before it are skipped), and where the
// archive ends. The whole archive is walked and checked as find_cpio_file
// does. cpio_file_not_found when no member has data; cpio_not_regular_file
// when that member is not a regular file.
struct CpioLead {
    char name[kMaxCpioPath + 1]; // NUL-terminated, leading "/" and "./" dropped
    CpioFile file;
    uint32_t mode;
    uint64_t end; // partition-relative byte just after the trailer entry
};
DiskError read_cpio_lead(ReadSectors read, void* ctx, const BootPartition& part, CpioLead* out);

// Reads a whole found file into buf (buf_size >= file.size). False when it
// does not fit or a read fails.
bool read_cpio_file(ReadSectors read, void* ctx, const CpioFile& file, void* buf,
                    uint64_t buf_size);

// CRC-32 (IEEE 802.3, reflected, as GPT uses it). Pass 0 as crc to start;
// feed the previous result to continue over more bytes.
uint32_t crc32(uint32_t crc, const void* data, uint64_t size);

} // namespace svmkit::loader
