// Writing an svmkit boot disk (the layout loader/disk_layout.h reads,
// docs/loader.md "Disk layout"): protective MBR, primary and backup GPT with
// their CRC-32s, partition 1 "svmkit boot" holding a newc cpio archive,
// partition 2 "svmkit data" in the space left (when there is at least 1 MiB).
//
// Reproducible: the same files in the same order give the same bytes. No
// timestamps (cpio mtime 0, uid/gid 0), and the disk and partition GUIDs are
// derived from a SHA-256 of the archive instead of drawn at random.
#pragma once

#include "base/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::cli {

struct BootDiskFile {
    std::string archive_name; // "boot.cfg", "images/a.img" (directories are added)
    std::string source_path;  // where the bytes come from, unless `data` holds them
    std::optional<std::vector<std::byte>> data;
};

struct BootDiskSpec {
    std::vector<BootDiskFile> files;
    // Whole disk in bytes (a multiple of 512); 0: room for the archive plus
    // kDefaultDataSize of data partition.
    std::uint64_t disk_size = 0;
};

inline constexpr std::uint64_t kDiskAlignment = 1ull << 20; // partitions start on 1 MiB
inline constexpr std::uint64_t kDefaultDataSize = 64ull << 20;

struct BootDiskLayout {
    std::uint64_t disk_size = 0;
    std::uint64_t boot_offset = 0, boot_size = 0; // bytes
    std::uint64_t data_offset = 0, data_size = 0; // data_size 0: no data partition
    std::uint64_t archive_size = 0;               // the cpio's bytes in the boot partition
};

// Writes the disk to `output` atomically (a temporary renamed when complete).
Result<BootDiskLayout> write_boot_disk(const BootDiskSpec& spec, const std::string& output);

} // namespace svmkit::cli
