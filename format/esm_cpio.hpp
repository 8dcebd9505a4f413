// The newc cpio archive that carries an ibm,esm blob in front of an initrd,
// byte for byte as svm-tools' `svm add` makes it (docs/esm.md, "The blob in
// the initrd"; platform/esm_initrd.hpp reads it back as the ultravisor does).
//
// svm-tools copies the blob into an empty directory tree opt/ibm/pef/ and
// archives that tree with `find . -print0 | cpio --null --create
// --format=newc`. GNU cpio then writes, in find's order:
//
//   "."                  directory 040755, nlink 3
//   "opt"                directory 040755, nlink 3
//   "opt/ibm"            directory 040755, nlink 3
//   "opt/ibm/pef"        directory 040755, nlink 2
//   "opt/ibm/pef/NAME"   regular file 0100644, nlink 1, the blob's bytes
//   "TRAILER!!!"         mode 0, nlink 1
//
// each header and name padded to 4 bytes, each file's data to 4 bytes, and
// the whole archive padded with zeros to a multiple of 512 bytes (cpio's
// block size), which is where the ultravisor starts the sealed initrd.
//
// What svm-tools takes from the file system, svmkit fixes so the archive is
// reproducible: uid and gid 0, device numbers 0, inode numbers 0, 1, 2, ...
// in archive order (GNU cpio's --reproducible numbering, the trailer 0), one
// mtime for every entry (SOURCE_DATE_EPOCH in the CLI), and the blob's mode
// 0644 (what svm-tools copies from a blob `svm-tool esm make` wrote under
// umask 022). tests/data/esm/add/README.md records how the golden archive
// was derived from svm-tools' procedure.
#pragma once

#include "base/error.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace svmkit::format {

inline constexpr std::uint64_t kEsmCpioBlockSize = 512;
inline constexpr std::string_view kEsmCpioDirectory = "opt/ibm/pef";

// The archive for `blob` stored as opt/ibm/pef/`file_name`, every entry
// stamped `mtime` (seconds since the epoch). `file_name` must be one path
// component (no '/', not "." or "..", no NUL, 1..200 bytes): otherwise
// ExitCode::usage. The blob is taken as it is (callers check it).
Result<std::vector<std::byte>> make_esm_cpio(std::span<const std::byte> blob,
                                             const std::string& file_name, std::uint32_t mtime);

} // namespace svmkit::format
